// kite_cuda_model_check: runs a real model directory (or GGUF file) through CudaModelRunner for
// the whole-model checks of scripts/gpu-check.sh.
//
//   kite_cuda_model_check --model PATH --prompts FILE --out DIR [--max-new 64]
//                         [--gpu-mem 0.9] [--compare-cpu] [--load-format auto]
//                         [--dtype auto|bfloat16|float32]
//
// FILE holds one prompt per line as space-separated token ids. For prompt i it writes
//   DIR/logits_i.f32   float32 [prompt_len, vocab]: logits of every prompt position
//   DIR/greedy_i.txt   the greedy continuation (max-new ids, no EOS stop)
//   DIR/steps_i.txt    per generated token: top-1 id and logit, top-2 id and logit
// --compare-cpu also runs the CPU backend on the same weights and reports where the two greedy
// continuations first differ (exit status 3 when they do).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "backend/cpu/cpu_model_runner.h"
#include "backend/cuda/cuda_model_runner.h"
#include "checkpoint/weights.h"
#include "core/logging.h"
#include "models/load.h"

namespace kite {
namespace {

struct Args {
  std::string model, prompts, out, load_format = "auto", dtype = "auto";
  int max_new = 64;
  double gpu_mem = 0.9;
  bool compare_cpu = false;
};

struct Generation {
  std::vector<float> prompt_logits;  // [len, vocab]
  std::vector<int32_t> tokens;
  std::vector<std::string> steps;
  double prefill_ms = 0, decode_ms = 0;
};

std::pair<int32_t, int32_t> top2(const float* x, int64_t n) {
  int32_t a = 0, b = -1;
  for (int64_t i = 1; i < n; ++i) {
    if (x[i] > x[a]) {
      b = a;
      a = static_cast<int32_t>(i);
    } else if (b < 0 || x[i] > x[b]) {
      b = static_cast<int32_t>(i);
    }
  }
  return {a, b};
}

Result<Generation> generate(ModelRunner& r, const std::vector<int32_t>& prompt, int max_new,
                            int block_size, bool all_logits) {
  const int64_t V = r.config().vocab_size;
  Generation g;
  std::vector<int32_t> blocks;
  const int total = static_cast<int>(prompt.size()) + max_new;
  for (int i = 0; i < total / block_size + 1; ++i) blocks.push_back(i + 1);
  SamplingBatch sb;
  sb.temperature = {0.f};
  sb.top_k = {0};
  sb.top_p = {1.f};
  sb.min_p = {0.f};
  sb.repetition_penalty = {1.f};
  sb.frequency_penalty = {0.f};
  sb.presence_penalty = {0.f};
  sb.seed = {0};
  sb.step = {0};
  sb.num_logprobs = {-1};
  sb.all_greedy = true;
  std::vector<int32_t> seq = prompt;
  std::vector<float> row(static_cast<size_t>(V));
  using clock = std::chrono::steady_clock;
  for (int step = 0; step < max_new; ++step) {
    const int start = step == 0 ? 0 : static_cast<int>(seq.size()) - 1;
    const int end = static_cast<int>(seq.size());
    ForwardBatch b;
    for (int i = start; i < end; ++i) {
      b.token_ids.push_back(seq[i]);
      b.positions.push_back(i);
      b.slot_mapping.push_back(blocks[i / block_size] * block_size + i % block_size);
    }
    const int n = end - start;
    b.query_start_loc = {0, n};
    b.seq_lens = {end};
    const int nb = (end + block_size - 1) / block_size;
    b.block_table_indptr = {0, nb};
    b.block_table.assign(blocks.begin(), blocks.begin() + nb);
    if (step == 0 && all_logits) {
      for (int i = 0; i < n; ++i) b.logits_indices.push_back(i);
    } else {
      b.logits_indices = {n - 1};
    }
    b.max_query_len = n;
    b.max_seq_len = end;
    const auto t0 = clock::now();
    TensorView logits;
    KITE_RETURN_IF_ERROR(r.forward(b, &logits));
    SamplerOutput so;
    if (b.num_logits() == 1) {
      KITE_RETURN_IF_ERROR(r.sample(logits, sb, &so));
    }
    const auto t1 = clock::now();
    const double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    (step == 0 ? g.prefill_ms : g.decode_ms) += ms;
    int32_t next;
    if (b.num_logits() > 1) {
      g.prompt_logits.resize(static_cast<size_t>(n) * V);
      KITE_RETURN_IF_ERROR(r.logits_to_host(logits, g.prompt_logits.data()));
      std::copy_n(g.prompt_logits.end() - V, V, row.begin());
      next = top2(row.data(), V).first;  // argmax, lowest id on ties
    } else {
      KITE_RETURN_IF_ERROR(r.logits_to_host(logits, row.data()));
      next = so.token_ids[0];
    }
    const auto [a, c] = top2(row.data(), V);
    std::ostringstream line;
    line << a << " " << row[a] << " " << c << " " << row[c];
    g.steps.push_back(line.str());
    g.tokens.push_back(next);
    seq.push_back(next);
  }
  return g;
}

Status setup_cache(ModelRunner& r, double gpu_mem, int64_t cpu_budget) {
  KvCacheConfig kc;
  kc.block_size = 16;
  kc.dtype = r.device() == Device::kCuda ? DType::kBF16 : DType::kF32;
  kc.max_num_seqs = 16;
  kc.max_num_batched_tokens = 2048;
  kc.gpu_memory_utilization = gpu_mem;
  kc.memory_budget_bytes = cpu_budget;
  KITE_ASSIGN_OR_RETURN(int64_t blocks, r.determine_num_kv_blocks(kc));
  return r.allocate_kv_cache(std::min<int64_t>(blocks, 4096), kc);
}

int run(const Args& a) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  LoadOptions lo;
  lo.load_format = a.load_format;
  auto store = load_model(a.model, lo);
  if (!store.ok()) {
    std::fprintf(stderr, "load: %s\n", store.status().to_string().c_str());
    return 1;
  }
  std::shared_ptr<const WeightStore> ws(std::move(*store));
  const auto t1 = clock::now();
  cuda::WeightLookup lookup = [&](std::string_view name) { return ws->get(name); };
  auto dtype = cuda::choose_compute_dtype(ws->config(), lookup, a.dtype);
  if (!dtype.ok()) {
    std::fprintf(stderr, "dtype: %s\n", dtype.status().to_string().c_str());
    return 1;
  }
  cuda::CudaRunnerOptions opts;
  opts.dtype = *dtype;
  auto gpu = cuda::CudaModelRunner::create(ws->config(), lookup, opts);
  if (!gpu.ok()) {
    std::fprintf(stderr, "cuda runner: %s\n", gpu.status().to_string().c_str());
    return 1;
  }
  const auto t2 = clock::now();
  Status st = setup_cache(**gpu, a.gpu_mem, 0);
  if (!st.ok()) {
    std::fprintf(stderr, "kv cache: %s\n", st.to_string().c_str());
    return 1;
  }
  const auto t3 = clock::now();
  auto secs = [](auto x, auto y) { return std::chrono::duration<double>(y - x).count(); };
  std::printf(
      "model %s: %s, %lld layers; mmap %.2f s, weights to device %.2f s, profile+KV+graphs "
      "%.2f s; %s compute, attention path %s\n",
      a.model.c_str(), ws->config().architecture.c_str(),
      static_cast<long long>(ws->config().num_hidden_layers), secs(t0, t1), secs(t1, t2),
      secs(t2, t3), std::string(dtype_name(*dtype)).c_str(), (*gpu)->attention_path_name());

  std::unique_ptr<CpuModelRunner> cpu;
  if (a.compare_cpu) {
    auto c = CpuModelRunner::create(ws);
    if (!c.ok() || !setup_cache(**c, 0, 256ll << 20).ok()) {
      std::fprintf(stderr, "cpu runner failed\n");
      return 1;
    }
    cpu = std::move(*c);
  }
  std::ifstream in(a.prompts);
  std::string line;
  int index = 0, status = 0;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<int32_t> prompt;
    for (int32_t t; ls >> t;) prompt.push_back(t);
    if (prompt.empty()) continue;
    auto g = generate(**gpu, prompt, a.max_new, 16, !a.out.empty());
    if (!g.ok()) {
      std::fprintf(stderr, "prompt %d: %s\n", index, g.status().to_string().c_str());
      return 1;
    }
    std::printf("prompt %d (%zu tokens): prefill %.1f ms, decode %.2f ms/token\n", index,
                prompt.size(), g->prefill_ms, g->decode_ms / std::max(1, a.max_new - 1));
    if (!a.out.empty()) {
      const std::string p = a.out + "/";
      std::ofstream lf(p + "logits_" + std::to_string(index) + ".f32", std::ios::binary);
      lf.write(reinterpret_cast<const char*>(g->prompt_logits.data()),
               static_cast<std::streamsize>(g->prompt_logits.size() * sizeof(float)));
      std::ofstream gf(p + "greedy_" + std::to_string(index) + ".txt");
      for (int32_t t : g->tokens) gf << t << " ";
      std::ofstream sf(p + "steps_" + std::to_string(index) + ".txt");
      for (const auto& s : g->steps) sf << s << "\n";
    }
    if (cpu != nullptr) {
      auto c = generate(*cpu, prompt, a.max_new, 16, false);
      if (!c.ok()) {
        std::fprintf(stderr, "cpu prompt %d: %s\n", index, c.status().to_string().c_str());
        return 1;
      }
      size_t same = 0;
      while (same < c->tokens.size() && c->tokens[same] == g->tokens[same]) ++same;
      std::printf("prompt %d: gpu and cpu greedy agree on %zu of %zu tokens\n", index, same,
                  c->tokens.size());
      std::printf("  gpu:");
      for (int32_t t : g->tokens) std::printf(" %d", t);
      std::printf("\n  cpu:");
      for (int32_t t : c->tokens) std::printf(" %d", t);
      std::printf("\n");
      if (same < c->tokens.size()) {
        std::printf("  first difference at step %zu: gpu top-2 [%s], cpu top-2 [%s]\n", same,
                    g->steps[same].c_str(), c->steps[same].c_str());
        status = 3;
      }
    }
    ++index;
  }
  return status;
}

}  // namespace
}  // namespace kite

int main(int argc, char** argv) {
  kite::Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (s == "--model")
      a.model = next();
    else if (s == "--prompts")
      a.prompts = next();
    else if (s == "--out")
      a.out = next();
    else if (s == "--max-new")
      a.max_new = std::atoi(next().c_str());
    else if (s == "--gpu-mem")
      a.gpu_mem = std::atof(next().c_str());
    else if (s == "--load-format")
      a.load_format = next();
    else if (s == "--dtype")
      a.dtype = next();
    else if (s == "--compare-cpu")
      a.compare_cpu = true;
    else {
      std::fprintf(stderr, "unknown argument %s\n", s.c_str());
      return 2;
    }
  }
  if (a.model.empty() || a.prompts.empty() || a.max_new < 1) {
    std::fprintf(stderr,
                 "usage: kite_cuda_model_check --model PATH --prompts FILE [--out DIR] "
                 "[--max-new N] [--gpu-mem F] [--compare-cpu] [--load-format F]\n");
    return 2;
  }
  kite::init_logging("warn");
  return kite::run(a);
}
