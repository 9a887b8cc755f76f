// Encode/decode throughput of kite's tokenizer on one core (run pinned: `taskset -c 0`).
// tests/bench/tokenizer/run_bench.py prepares the inputs, runs this binary and the same
// measurements with Hugging Face `tokenizers`, and prints MB/s for both.
//
// Inputs (environment): KITE_TOKENIZER_BENCH_DIR holds <name>/tokenizer.json for each tokenizer
// and the texts: repo.txt (English prose and C++ from this repository) and corpus.txt (the
// multilingual parity corpus, one string per line).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "frontend/incremental_detokenizer.h"
#include "frontend/tokenizer.h"

namespace {

std::string bench_dir() {
  const char* d = std::getenv("KITE_TOKENIZER_BENCH_DIR");
  return d ? d : "build/tokenizer_bench";
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const kite::Tokenizer* tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<kite::Tokenizer>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second.get();
  auto tok = kite::Tokenizer::from_pretrained(bench_dir() + "/" + name);
  auto* ptr = tok.ok() ? tok->get() : nullptr;
  cache[name] = tok.ok() ? std::move(tok).value() : nullptr;
  return ptr;
}

const std::string& text(const std::string& name) {
  static std::map<std::string, std::string> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, slurp(bench_dir() + "/" + name)).first;
  return it->second;
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

// One call on the whole document.
void BM_EncodeDocument(benchmark::State& state, std::string tok_name, std::string text_name) {
  const kite::Tokenizer* tok = tokenizer(tok_name);
  const std::string& doc = text(text_name);
  if (tok == nullptr || doc.empty()) {
    state.SkipWithError("inputs missing: run tests/bench/tokenizer/run_bench.py");
    return;
  }
  size_t n_tokens = 0;
  for (auto _ : state) {
    std::vector<int32_t> ids = tok->encode(doc, false);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * doc.size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
}

// One call per line (request-sized inputs).
void BM_EncodeLines(benchmark::State& state, std::string tok_name, std::string text_name) {
  const kite::Tokenizer* tok = tokenizer(tok_name);
  static std::map<std::string, std::vector<std::string>> split;
  if (!split.count(text_name)) split[text_name] = lines(text(text_name));
  const std::vector<std::string>& ls = split[text_name];
  if (tok == nullptr || ls.empty()) {
    state.SkipWithError("inputs missing: run tests/bench/tokenizer/run_bench.py");
    return;
  }
  size_t bytes = 0;
  for (const std::string& l : ls) bytes += l.size();
  for (auto _ : state) {
    for (const std::string& l : ls) {
      std::vector<int32_t> ids = tok->encode(l, false);
      benchmark::DoNotOptimize(ids.data());
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

void BM_Decode(benchmark::State& state, std::string tok_name, std::string text_name) {
  const kite::Tokenizer* tok = tokenizer(tok_name);
  const std::string& doc = text(text_name);
  if (tok == nullptr || doc.empty()) {
    state.SkipWithError("inputs missing: run tests/bench/tokenizer/run_bench.py");
    return;
  }
  std::vector<int32_t> ids = tok->encode(doc, false);
  for (auto _ : state) {
    std::string out = tok->decode(ids);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * doc.size()));
}

void BM_StreamDecode(benchmark::State& state, std::string tok_name, std::string text_name) {
  const kite::Tokenizer* tok = tokenizer(tok_name);
  const std::string& doc = text(text_name);
  if (tok == nullptr || doc.empty()) {
    state.SkipWithError("inputs missing: run tests/bench/tokenizer/run_bench.py");
    return;
  }
  std::vector<int32_t> ids = tok->encode(doc, false);
  for (auto _ : state) {
    kite::IncrementalDetokenizer d(*tok, true);
    size_t n = 0;
    for (int32_t id : ids) n += d.step(id).size();
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * ids.size()));
}

const char* const kTokenizers[] = {"llama3.1", "qwen2.5", "gemma3", "llama2"};

int register_all() {
  for (const char* t : kTokenizers) {
    for (const char* txt : {"repo.txt", "corpus.txt"}) {
      std::string suffix = std::string(t) + "/" + txt;
      benchmark::RegisterBenchmark(("EncodeDocument/" + suffix).c_str(), BM_EncodeDocument, t, txt)
          ->Unit(benchmark::kMillisecond);
      benchmark::RegisterBenchmark(("EncodeLines/" + suffix).c_str(), BM_EncodeLines, t, txt)
          ->Unit(benchmark::kMillisecond);
    }
    benchmark::RegisterBenchmark((std::string("Decode/") + t + "/repo.txt").c_str(), BM_Decode, t,
                                 "repo.txt")
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("StreamDecode/") + t + "/repo.txt").c_str(),
                                 BM_StreamDecode, t, "repo.txt")
        ->Unit(benchmark::kMillisecond);
  }
  return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
