// Engine (include/kite/engine.h): the public face; Engine::Impl runs the engine thread.
#include "kite/engine.h"

#include <algorithm>
#include <cmath>
#include <chrono>
#include <map>
#include <utility>

#include "core/check.h"
#include "core/logging.h"
#include "core/version.h"
#include "engine/engine_impl.h"
#include "kv_cache/block_hash.h"

namespace kite {

namespace {

// Matryoshka truncation, then L2 normalisation (as vLLM's pooler + `dimensions`).
std::vector<float> finish_embedding(const RequestInfo& info, std::vector<float> v) {
  if (info.pooling_dimensions > 0 && info.pooling_dimensions < static_cast<int64_t>(v.size())) {
    v.resize(static_cast<size_t>(info.pooling_dimensions));
  }
  if (info.pooling_normalize) {
    double sum = 0.0;
    for (float x : v) sum += static_cast<double>(x) * x;
    const double norm = std::max(std::sqrt(sum), 1e-12);  // torch's F.normalize eps
    for (float& x : v) x = static_cast<float>(x / norm);
  }
  return v;
}

}  // namespace


std::string version_string() {
  return std::string("kite ") + KITE_VERSION_STRING + " (commit " + KITE_GIT_COMMIT + ")";
}

// ---- Engine -----------------------------------------------------------------------------------

Engine::Engine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Engine::~Engine() {
  if (impl_) impl_->shutdown(0);
}
const ModelInfo& Engine::model_info() const { return impl_->info_; }
Result<std::shared_ptr<RequestStream>> Engine::add_request(GenerateRequest request) {
  return impl_->add_request(std::move(request));
}
void Engine::abort(const std::string& request_id) { impl_->abort(request_id); }
void Engine::shutdown(int64_t timeout_ms) { impl_->shutdown(timeout_ms); }
EngineStats Engine::stats() const { return impl_->stats(); }

Result<std::vector<int32_t>> Engine::tokenize(std::string_view text,
                                              bool add_special_tokens) const {
  if (!impl_->text_) return failed_precondition("the engine has no tokenizer");
  return impl_->text_->tokenize(text, add_special_tokens);
}
Result<std::string> Engine::detokenize(const std::vector<int32_t>& ids,
                                       bool skip_special_tokens) const {
  if (!impl_->text_) return failed_precondition("the engine has no tokenizer");
  for (int32_t id : ids) {
    if (id < 0 || id >= impl_->info_.vocab_size) {
      return invalid_argument("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                              std::to_string(impl_->info_.vocab_size) + ")");
    }
  }
  return impl_->text_->detokenize(ids, skip_special_tokens);
}
Result<std::string> Engine::apply_chat_template(std::string_view messages_json,
                                                const ChatTemplateOptions& options) const {
  if (!impl_->text_) return failed_precondition("the engine has no tokenizer");
  return impl_->text_->apply_chat_template(messages_json, options);
}

// ---- creation ---------------------------------------------------------------------------------

Result<std::unique_ptr<Engine>> EngineFactory::create(EngineParts parts) {
  auto impl = std::make_unique<Engine::Impl>();
  KITE_RETURN_IF_ERROR(impl->init(std::move(parts)));
  return std::unique_ptr<Engine>(new Engine(std::move(impl)));
}

namespace {

constexpr int64_t kDefaultCpuKvBytes = int64_t{1} << 30;  // 1 GiB
constexpr int64_t kDefaultBatchedTokens = 8192;

}  // namespace

Status Engine::Impl::init(EngineParts parts) {
  config_ = std::move(parts.config);
  info_ = std::move(parts.info);
  runner_ = std::move(parts.runner);
  text_ = std::move(parts.text);
  make_grammar_compiler_ = std::move(parts.make_grammar_compiler);
  think_start_token_ = parts.think_start_token;
  think_end_token_ = parts.think_end_token;
  KITE_CHECK(runner_ != nullptr);
  if (!config_.reasoning_parser.empty() && config_.reasoning_parser != "qwen3" &&
      config_.reasoning_parser != "deepseek_r1") {
    return invalid_argument("reasoning_parser must be qwen3 or deepseek_r1, got '" +
                            config_.reasoning_parser + "'");
  }
  const ModelConfig& mc = runner_->config();
  EngineConfig& c = config_;
  if (c.block_size < 1 || c.block_size > 1024) {
    return invalid_argument("block_size must be in [1, 1024], got " + std::to_string(c.block_size));
  }
  if (c.max_num_seqs < 1) {
    return invalid_argument("max_num_seqs must be >= 1, got " + std::to_string(c.max_num_seqs));
  }
  if (c.max_queued_tokens < -1) {
    return invalid_argument("max_queued_tokens must be -1 (auto), 0 (unbounded) or positive");
  }
  if (c.max_model_len < 0 || c.max_num_batched_tokens < 0 || c.kv_cache_memory_bytes < 0 ||
      c.max_waiting_requests < 0) {
    return invalid_argument(
        "max_model_len, max_num_batched_tokens, kv_cache_memory_bytes and max_waiting_requests "
        "must not be negative");
  }
  int64_t max_model_len = mc.max_position_embeddings;
  if (c.max_model_len > 0) {
    if (mc.max_position_embeddings > 0 && c.max_model_len > mc.max_position_embeddings) {
      return invalid_argument("max_model_len (" + std::to_string(c.max_model_len) +
                              ") exceeds the model's max_position_embeddings (" +
                              std::to_string(mc.max_position_embeddings) + ")");
    }
    max_model_len = c.max_model_len;
  }
  if (max_model_len < 2) return invalid_argument("max_model_len must be >= 2");
  int64_t batched = c.max_num_batched_tokens;
  if (batched == 0) {
    batched = std::max<int64_t>(kDefaultBatchedTokens, c.max_num_seqs);
    if (!c.enable_chunked_prefill) batched = std::max(batched, max_model_len);
  }
  SchedulerConfig sc;
  sc.max_num_seqs = c.max_num_seqs;
  sc.max_num_batched_tokens = batched;
  sc.max_model_len = max_model_len;
  sc.enable_chunked_prefill = c.enable_chunked_prefill;
  if (c.scheduling_policy == "fcfs") {
    sc.policy = SchedulingPolicy::kFcfs;
  } else if (c.scheduling_policy == "priority") {
    sc.policy = SchedulingPolicy::kPriority;
  } else {
    return invalid_argument("scheduling_policy must be fcfs or priority, got '" +
                            c.scheduling_policy + "'");
  }
  KITE_RETURN_IF_ERROR(sc.validate());

  KvCacheConfig kvc;
  kvc.block_size = c.block_size;
  kvc.gpu_memory_utilization = c.gpu_memory_utilization;
  kvc.max_num_seqs = c.max_num_seqs;
  kvc.max_num_batched_tokens = batched;
  // Every block beyond what max_num_seqs sequences of max_model_len can use is wasted.
  const int64_t useful_blocks =
      static_cast<int64_t>(c.max_num_seqs) * ((max_model_len + c.block_size - 1) / c.block_size) +
      1;
  if (c.kv_cache_memory_bytes > 0) {
    kvc.memory_budget_bytes = c.kv_cache_memory_bytes;
  } else if (runner_->device() == Device::kCpu) {
    kvc.memory_budget_bytes =
        std::min(kDefaultCpuKvBytes, useful_blocks * runner_->kv_block_bytes(c.block_size));
  }
  KITE_ASSIGN_OR_RETURN(int64_t num_blocks, runner_->determine_num_kv_blocks(kvc));
  if (c.kv_cache_memory_bytes == 0) num_blocks = std::min(num_blocks, useful_blocks);
  const int64_t per_seq = (max_model_len + c.block_size - 1) / c.block_size;
  if (num_blocks - 1 < per_seq && c.max_model_len == 0 && (num_blocks - 1) * c.block_size >= 2) {
    // The model's full context does not fit and none was asked for: serve what fits.
    const int64_t fit = (num_blocks - 1) * c.block_size;
    KITE_LOG_WARN("max_model_len lowered from {} to {}: that is what {} KV blocks hold (give "
                  "more KV cache memory for longer contexts)",
                  max_model_len, fit, num_blocks - 1);
    max_model_len = fit;
    sc.max_model_len = fit;
  } else if (num_blocks - 1 < per_seq) {
    return resource_exhausted(
        "the KV cache has " + std::to_string(std::max<int64_t>(0, num_blocks - 1)) + " blocks of " +
        std::to_string(c.block_size) + " tokens, fewer than one max_model_len (" +
        std::to_string(max_model_len) + ") sequence needs (" + std::to_string(per_seq) +
        "): raise the KV cache memory or lower max_model_len");
  }
  KITE_RETURN_IF_ERROR(runner_->allocate_kv_cache(num_blocks, kvc));

  info_.backend = runner_->device() == Device::kCuda ? "cuda" : "cpu";
  info_.max_model_len = max_model_len;
  info_.vocab_size = mc.vocab_size;
  info_.num_kv_blocks = num_blocks;
  info_.block_size = c.block_size;
  const DType kv_dtype = runner_->kv_cache_dtype();
  info_.kv_cache_dtype = kv_dtype == DType::kF8E4M3 ? "fp8_e4m3"
                         : kv_dtype == DType::kBF16 ? "bfloat16"
                                                    : "float32";
  info_.kv_cache_bytes = num_blocks * runner_->kv_block_bytes(c.block_size);
  max_queued_tokens_ = c.max_queued_tokens >= 0
                           ? c.max_queued_tokens
                           : std::max<int64_t>(2 * num_blocks * c.block_size, max_model_len);
  if (info_.architecture.empty()) info_.architecture = mc.architecture;
  if (info_.eos_token_ids.empty()) info_.eos_token_ids = mc.eos_token_ids;
  if (!info_.bos_token_id) info_.bos_token_id = mc.bos_token_id;
  info_.has_chat_template = text_ != nullptr && text_->has_chat_template();
  if (info_.served_model_name.empty()) {
    info_.served_model_name = c.served_model_name;
    if (info_.served_model_name.empty()) {
      std::string m = c.model;
      while (!m.empty() && m.back() == '/') m.pop_back();
      info_.served_model_name = m.substr(m.find_last_of('/') + 1);
    }
  }

  EngineCoreConfig cc;
  cc.scheduler = sc;
  cc.block_size = c.block_size;
  cc.enable_prefix_caching = c.enable_prefix_caching;
  cc.num_kv_blocks = num_blocks;
  // Overlap only pays where the device works apart from the host.
  cc.async_execution = parts.async_execution.value_or(runner_->device() == Device::kCuda);
  async_ = cc.async_execution;
  // Bitmasks overlap the forward on their own threads when the device works apart from the host;
  // on the CPU the forward uses every core, so they are computed inline before it.
  cc.grammar_threads =
      async_ ? static_cast<int>(std::clamp<unsigned>(std::thread::hardware_concurrency() / 4, 1, 8))
             : 0;
  core_ = std::make_unique<EngineCore>(cc, runner_.get());
  seed_rng_.seed(c.seed);
  publish_stats();
  KITE_LOG_INFO(
      "engine: {} on {}, max_model_len {}, {} KV blocks of {} tokens ({} cache, {:.1f} MiB), {} "
      "seqs / {} tokens per step",
      info_.served_model_name, info_.backend, max_model_len, num_blocks - 1, c.block_size,
      info_.kv_cache_dtype, static_cast<double>(info_.kv_cache_bytes) / (1 << 20), c.max_num_seqs,
      batched);
  thread_ = std::thread([this] { run(); });
  return ok_status();
}

Engine::Impl::~Impl() { shutdown(0); }

// ---- callers' side ----------------------------------------------------------------------------

Result<std::shared_ptr<RequestStream>> Engine::Impl::add_request(GenerateRequest request) {
  const bool pooling = request.pooling.has_value();
  if (pooling != (info_.runner == "pooling")) {
    return pooling ? invalid_argument("this model is served for generation, not embeddings (the "
                                      "pooling runner serves embeddings: --runner pooling)")
                   : invalid_argument("this model is served for embeddings (--runner pooling), "
                                      "not generation");
  }
  if (pooling) {
    request.params = SamplingParams{};  // n = 1; nothing is sampled
    KITE_RETURN_IF_ERROR(check_pooling_params(*request.pooling));
  }
  const SamplingParams& params = request.params;
  KITE_RETURN_IF_ERROR(params.validate(info_.vocab_size));
  if (!params.stop.empty() && (text_ == nullptr || !text_->supports_stop_strings())) {
    return unimplemented(
        "stop strings need the tokenizer's incremental detokenizer, which this "
        "engine does not have");
  }
  if (params.n > config_.max_num_seqs) {
    return invalid_argument("n (" + std::to_string(params.n) + ") exceeds max_num_seqs (" +
                            std::to_string(config_.max_num_seqs) + ")");
  }
  auto info = std::make_shared<RequestInfo>();
  if (auto* text = std::get_if<std::string>(&request.prompt)) {
    if (text->empty()) return invalid_argument("prompt must not be empty");
    if (!text_) return failed_precondition("text prompts need a tokenizer; pass token ids");
    KITE_ASSIGN_OR_RETURN(info->prompt_token_ids,
                          text_->tokenize(*text, request.add_special_tokens));
  } else {
    info->prompt_token_ids = std::get<std::vector<int32_t>>(std::move(request.prompt));
  }
  if (info->prompt_token_ids.empty()) return invalid_argument("prompt must not be empty");
  for (size_t i = 0; i < info->prompt_token_ids.size(); ++i) {
    const int32_t t = info->prompt_token_ids[i];
    if (t < 0 || t >= info_.vocab_size) {
      return invalid_argument("prompt token " + std::to_string(i) + ": token id " +
                              std::to_string(t) + " is outside the vocabulary [0, " +
                              std::to_string(info_.vocab_size) + ")");
    }
  }
  const int64_t prompt_len = info->num_prompt_tokens();
  if (pooling && prompt_len > info_.max_model_len) {
    return out_of_range("this model's maximum context length is " +
                        std::to_string(info_.max_model_len) + " tokens, but the input has " +
                        std::to_string(prompt_len) + " tokens");
  }
  if (!pooling && prompt_len >= info_.max_model_len) {
    return out_of_range("prompt has " + std::to_string(prompt_len) +
                        " tokens, which leaves no room for output within max_model_len " +
                        std::to_string(info_.max_model_len));
  }
  info->params = params;
  info->max_tokens = std::min<int64_t>(params.max_tokens, info_.max_model_len - prompt_len);
  if (pooling) {
    const std::string& type = info_.pooling.type;
    info->pooling = type == "MEAN" ? PoolingType::kMean
                    : type == "CLS" ? PoolingType::kCls
                                    : PoolingType::kLast;
    info->pooling_dimensions = request.pooling->dimensions;
    info->pooling_normalize = info_.pooling.normalize;
    info->max_tokens = 0;
  }
  if (params.structured_outputs) KITE_RETURN_IF_ERROR(prepare_grammar(params, info.get()));
  info->eos_token_ids = info_.eos_token_ids;
  info->priority = request.priority;
  info->cache_salt = request.cache_salt.empty() ? 0 : cache_salt_key(request.cache_salt);

  auto arrival = Clock::now();
  std::shared_ptr<RequestStream> stream;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!accepting_) return unavailable("the engine is shutting down");
    if (config_.max_waiting_requests > 0 && num_waiting_ >= config_.max_waiting_requests) {
      return unavailable("too many waiting requests (max_waiting_requests " +
                         std::to_string(config_.max_waiting_requests) + ")");
    }
    const int64_t tokens = prompt_len * params.n;
    if (max_queued_tokens_ > 0 && tokens > max_queued_tokens_) {
      return invalid_argument("the request holds " + std::to_string(tokens) +
                              " tokens (prompt × n), more than max_queued_tokens " +
                              std::to_string(max_queued_tokens_) + " allows at all");
    }
    if (max_queued_tokens_ > 0 && live_tokens_ + tokens > max_queued_tokens_) {
      return unavailable("too many queued tokens (max_queued_tokens " +
                         std::to_string(max_queued_tokens_) + ")");
    }
    if (request.request_id.empty()) {
      request.request_id = "req-" + std::to_string(next_request_number_++);
      while (live_ids_.count(request.request_id) != 0) {
        request.request_id = "req-" + std::to_string(next_request_number_++);
      }
    } else if (live_ids_.count(request.request_id) != 0) {
      return invalid_argument("request_id '" + request.request_id + "' is already in use");
    }
    info->request_id = request.request_id;
    info->seed = params.seed.has_value() ? *params.seed : seed_rng_();
    stream = std::make_shared<RequestStream>(info->request_id);
    // Installed before the request is queued, so no push can precede it.
    if (request.notifier) stream->set_notifier(std::move(request.notifier));
    live_ids_.insert(info->request_id);
    live_tokens_by_id_[info->request_id] = tokens;
    live_tokens_ += tokens;
    ++inbox_adds_;
    ++num_waiting_;
    InboxItem item;
    item.kind = InboxItem::Kind::kAdd;
    item.info = std::move(info);
    item.stream = stream;
    item.arrival = arrival;
    inbox_.push_back(std::move(item));
  }
  cv_.notify_all();
  return stream;
}

Status Engine::Impl::check_pooling_params(const PoolingParams& p) const {
  const PoolingInfo& pi = info_.pooling;
  if (p.dimensions == 0) return ok_status();
  if (p.dimensions < 0) return invalid_argument("dimensions must be greater than 0");
  if (!pi.is_matryoshka) {
    return invalid_argument("model \"" + info_.served_model_name +
                            "\" does not support matryoshka representation (config.json sets "
                            "neither is_matryoshka nor matryoshka_dimensions): dimensions "
                            "cannot be changed");
  }
  if (!pi.matryoshka_dimensions.empty() &&
      std::find(pi.matryoshka_dimensions.begin(), pi.matryoshka_dimensions.end(),
                p.dimensions) == pi.matryoshka_dimensions.end()) {
    std::string dims;
    for (int64_t d : pi.matryoshka_dimensions) dims += (dims.empty() ? "" : ", ") + std::to_string(d);
    return invalid_argument("model \"" + info_.served_model_name + "\" only supports the "
                            "matryoshka dimensions [" + dims + "]");
  }
  if (p.dimensions > pi.embedding_size) {
    return invalid_argument("dimensions (" + std::to_string(p.dimensions) +
                            ") exceeds the embedding size " + std::to_string(pi.embedding_size));
  }
  return ok_status();
}

Status Engine::Impl::prepare_grammar(const SamplingParams& params, RequestInfo* info) {
  if (!make_grammar_compiler_) {
    return failed_precondition("structured outputs need the model's tokenizer, which this engine "
                               "does not have");
  }
  std::call_once(grammar_once_, [&] {
    auto compiler = make_grammar_compiler_();
    if (compiler.ok()) {
      grammar_compiler_ = std::move(*compiler);
      grammar_compiler_ready_ = true;
    } else {
      grammar_compiler_status_ = compiler.status();
    }
  });
  if (grammar_compiler_ == nullptr) return grammar_compiler_status_;
  KITE_ASSIGN_OR_RETURN(structured::GrammarSpec spec,
                        structured::grammar_spec_from(*params.structured_outputs));
  auto grammar = grammar_compiler_->compile(spec);
  if (!grammar.ok()) {
    // Too large or too slow is the request's fault too: a 400 that says what to change.
    return invalid_argument(grammar.status().message());
  }
  info->grammar = std::move(*grammar);
  // With a reasoning parser the grammar waits for the end of thinking, unless the prompt has
  // already closed it (e.g. Qwen3 with enable_thinking=false ends its prompt with
  // "<think>\n\n</think>\n\n").
  if (!config_.reasoning_parser.empty() && think_end_token_) {
    const std::vector<int32_t>& p = info->prompt_token_ids;
    bool ended = false;
    const size_t tail = std::min<size_t>(p.size(), 8);
    for (size_t i = p.size() - tail; i < p.size(); ++i) {
      if (p[i] == *think_end_token_) ended = true;
      if (think_start_token_ && p[i] == *think_start_token_) ended = false;
    }
    if (!ended) info->grammar_after_token = think_end_token_;
  }
  return ok_status();
}

void Engine::Impl::abort(const std::string& request_id) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (live_ids_.count(request_id) == 0) return;
    InboxItem item;
    item.kind = InboxItem::Kind::kAbort;
    item.request_id = request_id;
    inbox_.push_back(std::move(item));
  }
  cv_.notify_all();
}

void Engine::Impl::shutdown(int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  if (joined_ || !thread_.joinable()) return;
  accepting_ = false;
  idle_cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(0, timeout_ms)),
                    [&] { return live_ids_.empty(); });
  abort_all_ = true;
  cv_.notify_all();
  idle_cv_.wait(lock, [&] { return live_ids_.empty(); });
  stop_ = true;
  cv_.notify_all();
  lock.unlock();
  thread_.join();
  lock.lock();
  joined_ = true;
}

EngineStats Engine::Impl::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

// ---- engine thread ----------------------------------------------------------------------------

void Engine::Impl::end_live_id(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  live_ids_.erase(id);
  if (auto it = live_tokens_by_id_.find(id); it != live_tokens_by_id_.end()) {
    live_tokens_ -= it->second;
    live_tokens_by_id_.erase(it);
  }
  if (live_ids_.empty()) idle_cv_.notify_all();
}

void Engine::Impl::publish_stats() {
  const EngineCoreStats cs = core_->stats();
  EngineStats st;
  st.num_running = cs.num_running_requests;
  st.num_waiting = cs.scheduler.num_waiting_requests;
  st.kv_cache_usage = cs.kv.usage;
  st.num_kv_blocks_used = cs.kv.num_blocks - cs.kv.num_free_blocks;
  st.prefix_cache_queries = cs.kv.prefix_cache_queries;
  st.prefix_cache_hits = cs.kv.prefix_cache_hits;
  st.num_preemptions = cs.scheduler.num_preemptions;
  st.prompt_tokens_total = prompt_tokens_total_;
  st.generation_tokens_total = generation_tokens_total_;
  st.num_steps = cs.num_steps;
  st.num_computed_tokens_total = cs.num_scheduled_tokens;
  st.requests_finished_total = requests_finished_total_;
  st.requests_aborted_total = requests_aborted_total_;
  st.grammar_mask_steps_total = cs.grammar.num_steps;
  st.grammar_masks_total = cs.grammar.num_masks;
  st.grammar_mask_fill_ms_total = cs.grammar.fill_ms_total;
  st.grammar_mask_wait_ms_total = cs.grammar.wait_ms_total;
  if (grammar_compiler_ready_.load()) {
    const structured::GrammarCompilerStats gs = grammar_compiler_->stats();
    st.grammar_compiles_total = gs.num_compiled;
    st.grammar_cache_hits_total = gs.num_cache_hits;
    st.grammar_compile_ms_total = gs.total_compile_ms;
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    stats_ = st;
  }
  publish_waiting();
}

void Engine::Impl::publish_waiting() {
  const int64_t waiting = core_->stats().scheduler.num_waiting_requests;
  std::lock_guard<std::mutex> lock(mu_);
  num_waiting_ = inbox_adds_ + waiting;
}

void Engine::Impl::run() {
  SchedulerEvents pending;  // async: the previous step's events, processed during this step
  std::vector<std::pair<std::string, Status>> pending_errors;
  for (;;) {
    std::deque<InboxItem> items;
    bool abort_all = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!core_->has_unfinished() && inbox_.empty() && pending.empty() && !stop_) {
        cv_.wait(lock, [&] { return stop_ || !inbox_.empty() || (abort_all_ && !live_.empty()); });
      }
      if (stop_ && inbox_.empty() && live_.empty() && pending.empty()) break;
      items.swap(inbox_);
      for (const InboxItem& item : items) inbox_adds_ -= item.kind == InboxItem::Kind::kAdd ? 1 : 0;
      abort_all = abort_all_;
    }
    SchedulerEvents events;
    std::vector<std::pair<std::string, Status>> errors;
    for (InboxItem& item : items) {
      if (item.kind == InboxItem::Kind::kAdd) {
        const std::string id = item.info->request_id;
        LiveRequest r;
        r.info = item.info;
        r.stream = item.stream;
        r.metrics.arrival_time = item.arrival;
        r.metrics.num_prompt_tokens = item.info->num_prompt_tokens();
        r.choices.resize(static_cast<size_t>(item.info->n()));
        if (text_) {
          for (ChoiceState& c : r.choices) c.decoder = text_->new_decoder(*item.info);
        }
        Status s = core_->add_request(item.info);
        if (!s.ok()) {  // validated on the caller's side; a race at most
          RequestOutput out;
          out.request_id = id;
          out.finished = true;
          out.error = s;
          out.prompt_token_ids = item.info->prompt_token_ids;
          for (int c = 0; c < item.info->n(); ++c) {
            ChoiceDelta d;
            d.index = c;
            d.finish_reason = FinishReason::kError;
            out.choices.push_back(std::move(d));
          }
          item.stream->push(std::move(out));
          end_live_id(id);
          continue;
        }
        live_.emplace(id, std::move(r));
      } else {
        core_->abort_request(item.request_id, &events);
      }
    }
    if (abort_all) {
      std::vector<std::string> ids;
      for (const auto& [id, r] : live_) ids.push_back(id);
      for (const std::string& id : ids) core_->abort_request(id, &events);
    }
    process(&events, &errors);

    bool processed_pending = false;
    auto process_pending = [&] {
      process(&pending, &pending_errors);
      processed_pending = true;
    };
    EngineCore::StepHooks hooks;
    hooks.after_schedule = [this] { publish_waiting(); };
    if (async_) hooks.during_device = process_pending;
    const bool stepped = core_->step(&events, &errors, hooks);
    if (!processed_pending) process(&pending, &pending_errors);
    if (async_ && stepped) {
      pending = std::move(events);
      pending_errors = std::move(errors);
      events.clear();
      errors.clear();
    } else {
      process(&events, &errors);
    }
    publish_stats();
  }
  publish_stats();
}

void Engine::Impl::process(SchedulerEvents* events,
                           std::vector<std::pair<std::string, Status>>* errors) {
  const Clock::time_point now = Clock::now();
  std::map<std::string, RequestOutput> outs;  // one output per request with news
  std::vector<std::string> finished;
  // Stop strings end choices, which adds events: loop until none are left.
  while (!events->empty() || !errors->empty()) {
    SchedulerEvents ev = std::move(*events);
    events->clear();
    for (auto& [id, status] : *errors) {
      auto it = live_.find(id);
      if (it != live_.end()) it->second.error = status;
    }
    errors->clear();
    for (auto& [info, cached] : ev.first_scheduled) {
      auto it = live_.find(info->request_id);
      if (it == live_.end()) continue;
      it->second.metrics.first_scheduled_time = now;
      it->second.metrics.num_cached_tokens = cached;
    }
    for (auto& pl : ev.prompt_logprobs) {
      auto it = live_.find(pl.request->request_id);
      if (it == live_.end()) continue;
      LiveRequest& r = it->second;
      if (r.prompt_logprobs.empty()) {
        LogprobEntry first;  // the first prompt token has no logprob
        first.token_id = r.info->prompt_token_ids[0];
        r.prompt_logprobs.push_back(first);
      }
      KITE_CHECK_EQ(static_cast<int64_t>(r.prompt_logprobs.size()), pl.start);
      for (LogprobEntry& e : pl.entries) r.prompt_logprobs.push_back(std::move(e));
    }
    for (ChoiceEvent& ce : ev.choices) {
      auto it = live_.find(ce.request->request_id);
      if (it == live_.end()) continue;
      LiveRequest& r = it->second;
      RequestOutput& out = outs[ce.request->request_id];
      auto d = std::find_if(out.choices.begin(), out.choices.end(),
                            [&](const ChoiceDelta& x) { return x.index == ce.choice; });
      if (d == out.choices.end()) {
        out.choices.emplace_back();
        d = out.choices.end() - 1;
        d->index = ce.choice;
      }
      ChoiceState& cs = r.choices[static_cast<size_t>(ce.choice)];
      if (!ce.embedding.empty()) {
        out.embedding = finish_embedding(*r.info, std::move(ce.embedding));
        prompt_tokens_total_ += r.info->num_prompt_tokens();
        r.metrics.first_token_time = r.metrics.last_token_time = now;
      }
      if (!ce.new_token_ids.empty()) {
        const auto n = static_cast<int64_t>(ce.new_token_ids.size());
        if (r.metrics.first_token_time == Clock::time_point{}) {
          r.metrics.first_token_time = now;
          prompt_tokens_total_ += r.info->num_prompt_tokens();
        }
        r.metrics.last_token_time = now;
        r.metrics.num_generation_tokens += n;
        generation_tokens_total_ += n;
        d->token_ids.insert(d->token_ids.end(), ce.new_token_ids.begin(), ce.new_token_ids.end());
        for (LogprobEntry& e : ce.logprobs) d->logprobs.push_back(std::move(e));
        if (cs.decoder && !cs.finished && !cs.stop_string) {
          d->text += cs.decoder->append(ce.new_token_ids, &cs.stop_string);
          // The stop string ends the choice (a no-op if it has just ended anyway); text after
          // it is dropped.
          if (cs.stop_string) {
            core_->finish_choice(ce.request->request_id, ce.choice, *cs.stop_string, events);
          }
        }
      }
      if (ce.finish_reason != FinishReason::kNone) {
        if (cs.decoder && !cs.finished && !cs.stop_string) {
          d->text += cs.decoder->flush(&cs.stop_string);
        }
        cs.finished = true;
        d->finish_reason = ce.finish_reason;
        d->stop_reason = ce.stop_reason;
        // A stop string in the text wins over length or a stop token (as in vLLM).
        if (cs.stop_string && ce.finish_reason != FinishReason::kAbort &&
            ce.finish_reason != FinishReason::kError) {
          d->finish_reason = FinishReason::kStop;
          d->stop_reason = *cs.stop_string;
        }
        if (ce.finish_reason == FinishReason::kAbort) r.aborted = true;
      }
    }
    for (auto& f : ev.finished) {
      auto it = live_.find(f.request->request_id);
      if (it == live_.end()) continue;
      it->second.metrics.num_preemptions = f.num_preemptions;
      outs[f.request->request_id].finished = true;
      finished.push_back(f.request->request_id);
    }
  }
  if (outs.empty()) return;
  for (auto& [id, out] : outs) {
    auto it = live_.find(id);
    if (it == live_.end()) continue;
    LiveRequest& r = it->second;
    out.request_id = id;
    if (!r.sent_first) {
      r.sent_first = true;
      out.prompt_token_ids = r.info->prompt_token_ids;
      out.prompt_logprobs = std::move(r.prompt_logprobs);
    }
    if (out.finished) {
      r.metrics.finished_time = now;
      out.metrics = r.metrics;
      out.error = r.error;
      ++requests_finished_total_;
      if (r.aborted) ++requests_aborted_total_;
    }
  }
  publish_stats();
  for (auto& [id, out] : outs) {
    auto it = live_.find(id);
    if (it != live_.end()) it->second.stream->push(std::move(out));
  }
  for (const std::string& id : finished) {
    live_.erase(id);
    end_live_id(id);
  }
}

}  // namespace kite
