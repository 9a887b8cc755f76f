#include "structured/grammar_compiler.h"

#include <xgrammar/xgrammar.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <future>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "core/logging.h"
#include "structured/compiled_grammar_impl.h"

namespace kite::structured {

namespace bj = boost::json;
namespace xg = xgrammar;
using SteadyClock = std::chrono::steady_clock;

namespace {

// JSON-schema keywords whose numbers become repetition counts in the grammar.
constexpr const char* kRepeatKeys[] = {"minLength",   "maxLength",     "minItems",
                                       "maxItems",    "minProperties", "maxProperties",
                                       "minContains", "maxContains"};

Status check_schema_bounds(const bj::value& v, int64_t max_repeat, int depth) {
  if (depth > 128) return invalid_argument("the JSON schema nests deeper than 128 levels");
  if (const bj::object* o = v.if_object()) {
    for (const char* key : kRepeatKeys) {
      const bj::value* n = o->if_contains(key);
      if (n == nullptr || !n->is_number()) continue;
      const double x = n->to_number<double>();
      if (x > static_cast<double>(max_repeat)) {
        return resource_exhausted(std::string("the JSON schema's ") + key + " (" +
                                  bj::serialize(*n) + ") exceeds the limit " +
                                  std::to_string(max_repeat));
      }
    }
    for (const auto& kv : *o)
      KITE_RETURN_IF_ERROR(check_schema_bounds(kv.value(), max_repeat, depth + 1));
  } else if (const bj::array* a = v.if_array()) {
    for (const bj::value& x : *a)
      KITE_RETURN_IF_ERROR(check_schema_bounds(x, max_repeat, depth + 1));
  }
  return ok_status();
}

// Counted repetitions "{n}", "{n,}", "{n,m}" in a regex or EBNF text.
Status check_text_bounds(const std::string& text, int64_t max_repeat, const char* what) {
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '{') continue;
    size_t j = i + 1;
    for (int part = 0; part < 2; ++part) {
      int64_t value = 0;
      size_t digits = 0;
      while (j < text.size() && text[j] >= '0' && text[j] <= '9') {
        value = std::min<int64_t>(value * 10 + (text[j] - '0'), int64_t{1} << 40);
        ++j;
        ++digits;
      }
      if (digits > 0 && value > max_repeat) {
        return resource_exhausted(std::string("the ") + what + "'s repetition count " +
                                  std::to_string(value) + " exceeds the limit " +
                                  std::to_string(max_repeat));
      }
      if (j < text.size() && text[j] == ',') {
        ++j;
      } else {
        break;
      }
    }
  }
  return ok_status();
}

// An EBNF string literal of `s`.
std::string ebnf_literal(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

xg::Grammar literal_grammar(const std::string& s) {
  return xg::Grammar::FromEBNF("root ::= " + ebnf_literal(s));
}

xg::Grammar tool_calls_grammar(const ToolCallGrammar& t, bool any_ws) {
  std::vector<xg::Grammar> alternatives;
  for (const ToolCallGrammar::Call& c : t.calls) {
    std::vector<xg::Grammar> parts;
    if (!c.begin.empty()) parts.push_back(literal_grammar(c.begin));
    parts.push_back(xg::Grammar::FromJSONSchema(c.parameters, any_ws));
    if (!c.end.empty()) parts.push_back(literal_grammar(c.end));
    alternatives.push_back(xg::Grammar::Concat(parts));
  }
  xg::Grammar call = alternatives.size() == 1 ? alternatives[0] : xg::Grammar::Union(alternatives);
  std::vector<xg::Grammar> seq;
  if (!t.prefix.empty()) seq.push_back(literal_grammar(t.prefix));
  seq.push_back(call);
  if (t.parallel) {
    // call (separator call)*: xgrammar's Concat/Union have no repetition, so the calls are
    // unrolled up to kMaxParallelToolCalls.
    std::vector<xg::Grammar> tails;
    for (int k = 1; k < kMaxParallelToolCalls; ++k) {
      std::vector<xg::Grammar> more;
      for (int i = 0; i < k; ++i) {
        if (!t.separator.empty()) more.push_back(literal_grammar(t.separator));
        more.push_back(call);
      }
      tails.push_back(xg::Grammar::Concat(more));
    }
    // Zero extra calls: an empty tail; Union needs grammars, so fold it into the suffix choice.
    std::vector<xg::Grammar> endings;
    if (!t.suffix.empty()) {
      endings.push_back(literal_grammar(t.suffix));
      for (xg::Grammar& tail : tails) {
        endings.push_back(xg::Grammar::Concat({tail, literal_grammar(t.suffix)}));
      }
      seq.push_back(xg::Grammar::Union(endings));
    } else {
      std::vector<xg::Grammar> whole;
      std::vector<xg::Grammar> first = seq;
      whole.push_back(xg::Grammar::Concat(first));
      for (xg::Grammar& tail : tails) {
        std::vector<xg::Grammar> w = first;
        w.push_back(tail);
        whole.push_back(xg::Grammar::Concat(w));
      }
      return xg::Grammar::Union(whole);
    }
  } else if (!t.suffix.empty()) {
    seq.push_back(literal_grammar(t.suffix));
  }
  return seq.size() == 1 ? seq[0] : xg::Grammar::Concat(seq);
}

xg::VocabType to_xg(VocabKind k) {
  switch (k) {
    case VocabKind::kByteFallback:
      return xg::VocabType::BYTE_FALLBACK;
    case VocabKind::kByteLevel:
      return xg::VocabType::BYTE_LEVEL;
    case VocabKind::kRaw:
      break;
  }
  return xg::VocabType::RAW;
}

}  // namespace

VocabKind detect_vocab_kind(const std::vector<std::string>& encoded) {
  bool byte_fallback = false, byte_level = false;
  size_t metaspace = 0;  // pieces starting with "▁" (SentencePiece's space)
  for (const std::string& t : encoded) {
    if (t == "<0x0A>") byte_fallback = true;
    if (t == "\xC4\x8A" || t == "\xC4\xA0") byte_level = true;  // "Ċ", "Ġ"
    if (t.rfind("\xE2\x96\x81", 0) == 0) ++metaspace;
  }
  // A SentencePiece vocabulary without byte tokens still spells spaces "▁".
  if (byte_fallback || metaspace * 200 > encoded.size()) return VocabKind::kByteFallback;
  if (byte_level) return VocabKind::kByteLevel;
  return VocabKind::kRaw;
}

// ---- CompiledGrammar --------------------------------------------------------------------------

CompiledGrammar::CompiledGrammar(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CompiledGrammar::~CompiledGrammar() = default;
int64_t CompiledGrammar::memory_bytes() const { return impl_->memory_bytes; }
int64_t CompiledGrammar::vocab_size() const { return impl_->vocab_size; }
const std::string& CompiledGrammar::kind() const { return impl_->kind; }

// ---- GrammarCompiler --------------------------------------------------------------------------

struct GrammarCompiler::Impl {
  using GrammarPtr = std::shared_ptr<const CompiledGrammar>;
  struct Task {
    std::string key;
    GrammarSpec spec;
    std::promise<Result<GrammarPtr>> promise;
    std::shared_future<Result<GrammarPtr>> future;
    std::atomic<int64_t> start_ms{-1};  // steady-clock ms when a worker took it
    std::atomic<bool> abandoned{false};
  };

  Impl(StructuredVocab v, GrammarCompilerOptions o, xg::TokenizerInfo info)
      : vocab(std::move(v)),
        options(o),
        tokenizer_info(std::move(info)),
        compiler(tokenizer_info, std::max(1, o.num_threads), /*cache_enabled=*/false) {}

  static int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               SteadyClock::now().time_since_epoch())
        .count();
  }

  Status precheck(const GrammarSpec& spec) const {
    int64_t bytes = static_cast<int64_t>(spec.text.size());
    for (const std::string& c : spec.choices) bytes += static_cast<int64_t>(c.size());
    for (const auto& c : spec.tools.calls) {
      bytes += static_cast<int64_t>(c.parameters.size() + c.begin.size() + c.end.size());
    }
    if (bytes > options.max_spec_bytes) {
      return resource_exhausted(std::string("the ") + spec.kind_name() + " constraint has " +
                                std::to_string(bytes) + " bytes, more than the limit " +
                                std::to_string(options.max_spec_bytes));
    }
    switch (spec.kind) {
      case GrammarSpec::Kind::kJsonSchema: {
        boost::system::error_code ec;
        auto v = bj::parse(spec.text, ec);
        if (ec) return invalid_argument("the JSON schema is not valid JSON");
        return check_schema_bounds(v, options.max_repeat, 0);
      }
      case GrammarSpec::Kind::kToolCalls:
        for (const auto& c : spec.tools.calls) {
          boost::system::error_code ec;
          auto v = bj::parse(c.parameters, ec);
          if (ec) return invalid_argument("a tool's parameters are not valid JSON");
          KITE_RETURN_IF_ERROR(check_schema_bounds(v, options.max_repeat, 0));
        }
        return ok_status();
      case GrammarSpec::Kind::kRegex:
        return check_text_bounds(spec.text, options.max_repeat, "regex");
      case GrammarSpec::Kind::kEbnf:
        return check_text_bounds(spec.text, options.max_repeat, "grammar");
      case GrammarSpec::Kind::kChoice:
        for (const std::string& c : spec.choices) {
          if (c.empty()) return invalid_argument("a choice must not be the empty string");
        }
        return ok_status();
      case GrammarSpec::Kind::kJsonObject:
        return ok_status();
    }
    return ok_status();
  }

  Result<GrammarPtr> build(const GrammarSpec& spec) {
    const bool ws = spec.any_whitespace;
    try {
      std::optional<xg::CompiledGrammar> cg;
      switch (spec.kind) {
        case GrammarSpec::Kind::kJsonSchema:
          cg = compiler.CompileJSONSchema(spec.text, ws);
          break;
        case GrammarSpec::Kind::kJsonObject:
          cg = compiler.CompileJSONSchema("{\"type\": \"object\"}", ws);
          break;
        case GrammarSpec::Kind::kRegex:
          cg = compiler.CompileRegex(spec.text);
          break;
        case GrammarSpec::Kind::kChoice: {
          std::string ebnf = "root ::= ";
          for (size_t i = 0; i < spec.choices.size(); ++i) {
            if (i > 0) ebnf += " | ";
            ebnf += ebnf_literal(spec.choices[i]);
          }
          cg = compiler.CompileGrammar(ebnf, "root");
          break;
        }
        case GrammarSpec::Kind::kEbnf:
          cg = compiler.CompileGrammar(spec.text, "root");
          break;
        case GrammarSpec::Kind::kToolCalls:
          cg = compiler.CompileGrammar(tool_calls_grammar(spec.tools, ws));
          break;
      }
      auto impl = std::make_unique<CompiledGrammar::Impl>(std::move(*cg));
      impl->memory_bytes = static_cast<int64_t>(impl->grammar.MemorySizeBytes());
      impl->vocab_size = vocab.model_vocab_size;
      impl->kind = spec.kind_name();
      if (impl->memory_bytes > options.max_grammar_bytes) {
        return resource_exhausted(std::string("the compiled ") + spec.kind_name() +
                                  " grammar takes " + std::to_string(impl->memory_bytes) +
                                  " bytes, more than the limit " +
                                  std::to_string(options.max_grammar_bytes));
      }
      return GrammarPtr(std::make_shared<CompiledGrammar>(std::move(impl)));
    } catch (const std::exception& e) {
      std::string what = e.what();
      // xgrammar prefixes errors with a source location in brackets: keep the message only.
      if (!what.empty() && what[0] == '[') {
        const size_t close = what.find("] ");
        if (close != std::string::npos) what = what.substr(close + 2);
      }
      const std::string name = spec.kind == GrammarSpec::Kind::kJsonSchema ? "JSON schema"
                               : spec.kind == GrammarSpec::Kind::kToolCalls
                                   ? "tool parameters schema"
                                   : spec.kind_name();
      return invalid_argument("invalid or unsupported " + name + ": " + what);
    }
  }

  void worker() {
    for (;;) {
      std::shared_ptr<Task> task;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stop || !queue.empty(); });
        if (stop && queue.empty()) return;
        task = std::move(queue.front());
        queue.pop_front();
      }
      const int64_t start = now_ms();
      task->start_ms = start;
      Result<GrammarPtr> r = build(task->spec);
      const int64_t elapsed = now_ms() - start;
      {
        std::lock_guard<std::mutex> lock(mu);
        inflight.erase(task->key);
        if (elapsed > options.max_compile_ms || task->abandoned) {
          too_slow.insert(task->key);
          ++stats.num_rejected;
          r = invalid_argument(slow_message());
        } else if (r.ok()) {
          ++stats.num_compiled;
          stats.total_compile_ms += static_cast<double>(elapsed);
          insert_cache(task->key, *r);
        } else {
          ++stats.num_rejected;
        }
      }
      task->promise.set_value(std::move(r));
    }
  }

  std::string slow_message() const {
    return "grammar compilation took longer than " + std::to_string(options.max_compile_ms) +
           " ms: simplify the schema";
  }

  void insert_cache(const std::string& key, const GrammarPtr& g) {  // REQUIRES: mu held
    lru.push_front(key);
    cache[key] = {g, lru.begin()};
    stats.cached_bytes += g->memory_bytes();
    while (stats.cached_bytes > options.cache_bytes && lru.size() > 1) {
      const std::string& victim = lru.back();
      auto it = cache.find(victim);
      stats.cached_bytes -= it->second.grammar->memory_bytes();
      cache.erase(it);
      lru.pop_back();
    }
    stats.num_cached = static_cast<int64_t>(cache.size());
  }

  Result<GrammarPtr> compile(const GrammarSpec& spec) {
    KITE_RETURN_IF_ERROR(precheck(spec));
    std::string key = spec.cache_key();
    std::shared_ptr<Task> task;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto hit = cache.find(key);
      if (hit != cache.end()) {
        lru.splice(lru.begin(), lru, hit->second.lru_pos);
        ++stats.num_cache_hits;
        return hit->second.grammar;
      }
      if (too_slow.count(key) != 0) return invalid_argument(slow_message());
      auto running = inflight.find(key);
      if (running != inflight.end()) {
        task = running->second;  // shares the compilation in progress: counted as a hit
        ++stats.num_cache_hits;
      } else {
        task = std::make_shared<Task>();
        task->key = key;
        task->spec = spec;
        task->future = task->promise.get_future().share();
        inflight.emplace(key, task);
        queue.push_back(task);
        cv.notify_one();
      }
    }
    // Wait for the result; give up once the compilation has run longer than allowed (time in
    // the queue behind other compilations does not count).
    while (task->future.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
      const int64_t start = task->start_ms.load();
      if (start >= 0 && now_ms() - start > options.max_compile_ms) {
        task->abandoned = true;
        return invalid_argument(slow_message());
      }
    }
    return task->future.get();
  }

  StructuredVocab vocab;
  GrammarCompilerOptions options;
  xg::TokenizerInfo tokenizer_info;
  xg::GrammarCompiler compiler;

  mutable std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  std::deque<std::shared_ptr<Task>> queue;
  std::unordered_map<std::string, std::shared_ptr<Task>> inflight;
  struct CacheEntry {
    GrammarPtr grammar;
    std::list<std::string>::iterator lru_pos;
  };
  std::unordered_map<std::string, CacheEntry> cache;
  std::list<std::string> lru;  // most recent first
  std::unordered_set<std::string> too_slow;
  GrammarCompilerStats stats;
  std::vector<std::thread> workers;
};

Result<std::unique_ptr<GrammarCompiler>> GrammarCompiler::create(StructuredVocab vocab,
                                                                 GrammarCompilerOptions options) {
  if (vocab.encoded.empty()) return invalid_argument("structured outputs: empty vocabulary");
  if (vocab.model_vocab_size < static_cast<int64_t>(vocab.encoded.size())) {
    vocab.model_vocab_size = static_cast<int64_t>(vocab.encoded.size());
  }
  try {
    xg::TokenizerInfo info(vocab.encoded, to_xg(vocab.kind),
                           static_cast<int>(vocab.model_vocab_size), vocab.stop_token_ids,
                           vocab.add_prefix_space);
    auto impl = std::make_unique<Impl>(std::move(vocab), options, std::move(info));
    const int n = std::max(1, options.num_threads);
    for (int i = 0; i < n; ++i) impl->workers.emplace_back([p = impl.get()] { p->worker(); });
    return std::unique_ptr<GrammarCompiler>(new GrammarCompiler(std::move(impl)));
  } catch (const std::exception& e) {
    return invalid_argument(std::string("structured outputs: the vocabulary: ") + e.what());
  }
}

GrammarCompiler::GrammarCompiler(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

GrammarCompiler::~GrammarCompiler() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->cv.notify_all();
  for (std::thread& t : impl_->workers) t.join();
}

Result<std::shared_ptr<const CompiledGrammar>> GrammarCompiler::compile(const GrammarSpec& spec) {
  return impl_->compile(spec);
}

GrammarCompilerStats GrammarCompiler::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

int64_t GrammarCompiler::vocab_size() const { return impl_->vocab.model_vocab_size; }
const std::vector<int32_t>& GrammarCompiler::stop_token_ids() const {
  return impl_->vocab.stop_token_ids;
}

}  // namespace kite::structured
