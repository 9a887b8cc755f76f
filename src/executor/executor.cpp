#include "executor/executor.h"

#include <algorithm>
#include <chrono>
#include <span>
#include <string>
#include <utility>

#include "core/check.h"
#include "core/logging.h"
#include "sampling/cpu_sampler.h"
#include "structured/bitmask.h"

namespace kite {

Executor::Executor(ModelRunner* runner, const ExecutorOptions& options)
    : runner_(runner),
      options_(options),
      vocab_(runner->config().vocab_size),
      filler_(options.grammar_threads) {
  if (options_.async) device_thread_ = std::thread([this] { device_loop(); });
}

Executor::~Executor() {
  if (device_thread_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    device_thread_.join();
  }
}

Status Executor::apply_diffs(const SchedulerOutput& out) {
  for (int64_t id : out.finished_seq_ids) seqs_.erase(id);
  for (int64_t id : out.preempted_seq_ids) seqs_.erase(id);
  for (const NewSequenceData& d : out.new_seqs) {
    SeqState& s = seqs_[d.seq_id];
    s.request = d.request;
    s.choice = d.choice;
    s.token_ids = d.token_ids;
    s.block_ids = d.block_ids;
    s.num_computed_tokens = d.num_computed_tokens;
    s.matcher.reset();
    s.pool_sum.clear();
    s.pool_count = 0;
    if (d.request->grammar != nullptr) {
      // A new, resumed (after preemption) or forked sequence: the matcher is rebuilt from the
      // tokens it has generated, so its state always equals the token list.
      const RequestInfo& req = *d.request;
      std::vector<int32_t> stops = req.eos_token_ids;
      stops.insert(stops.end(), req.params.stop_token_ids.begin(), req.params.stop_token_ids.end());
      s.matcher = std::make_unique<structured::GrammarMatcher>(req.grammar, stops,
                                                               req.grammar_after_token);
      for (size_t i = static_cast<size_t>(req.num_prompt_tokens()); i < s.token_ids.size(); ++i) {
        if (!s.matcher->accept(s.token_ids[i])) {
          KITE_LOG_WARN("request {}: replaying output token {} into its grammar failed",
                        req.request_id, s.token_ids[i]);
        }
      }
    }
  }
  for (const CachedSequenceData& d : out.cached_seqs) {
    auto it = seqs_.find(d.seq_id);
    if (it == seqs_.end()) {
      return internal_error("executor: diff for unknown sequence " + std::to_string(d.seq_id));
    }
    if (it->second.num_computed_tokens != d.num_computed_tokens) {
      return internal_error("executor: sequence " + std::to_string(d.seq_id) + " has " +
                            std::to_string(it->second.num_computed_tokens) +
                            " computed tokens, the scheduler says " +
                            std::to_string(d.num_computed_tokens));
    }
    it->second.block_ids.insert(it->second.block_ids.end(), d.new_block_ids.begin(),
                                d.new_block_ids.end());
  }
  return ok_status();
}

Status Executor::build_inputs(const SchedulerOutput& out) {
  const int bs = options_.block_size;
  ForwardBatch& b = batch_;
  b = ForwardBatch{};
  b.query_start_loc.push_back(0);
  b.block_table_indptr.push_back(0);
  sampling_.reset();
  plan_.clear();
  failed_seqs_.clear();
  masks_.clear();
  num_sample_rows_ = 0;
  num_prompt_rows_ = 0;
  num_pool_rows_ = 0;
  std::vector<int32_t> prompt_rows;  // token rows of prompt-logprob positions
  std::vector<int32_t> pool_rows;    // token rows of pooled positions
  for (const ScheduledSequence& sc : out.scheduled) {
    auto it = seqs_.find(sc.seq_id);
    if (it == seqs_.end()) {
      return internal_error("executor: scheduled unknown sequence " + std::to_string(sc.seq_id));
    }
    const SeqState& s = it->second;
    const int64_t start = s.num_computed_tokens;
    const int64_t end = start + sc.num_new_tokens;
    const int64_t num_blocks = (end + bs - 1) / bs;
    if (sc.num_new_tokens <= 0 || end > static_cast<int64_t>(s.token_ids.size()) ||
        num_blocks > static_cast<int64_t>(s.block_ids.size())) {
      return internal_error("executor: sequence " + std::to_string(sc.seq_id) +
                            " is scheduled past its tokens or blocks");
    }
    const int32_t first_row = b.num_tokens();
    for (int64_t pos = start; pos < end; ++pos) {
      b.token_ids.push_back(s.token_ids[static_cast<size_t>(pos)]);
      b.positions.push_back(static_cast<int32_t>(pos));
      b.slot_mapping.push_back(s.block_ids[static_cast<size_t>(pos / bs)] * bs +
                               static_cast<int32_t>(pos % bs));
    }
    b.query_start_loc.push_back(b.num_tokens());
    b.seq_lens.push_back(static_cast<int32_t>(end));
    b.block_table.insert(b.block_table.end(), s.block_ids.begin(),
                         s.block_ids.begin() + static_cast<std::ptrdiff_t>(num_blocks));
    b.block_table_indptr.push_back(static_cast<int32_t>(b.block_table.size()));
    b.max_query_len = std::max(b.max_query_len, static_cast<int32_t>(sc.num_new_tokens));
    b.max_seq_len = std::max(b.max_seq_len, static_cast<int32_t>(end));

    RowPlan plan;
    plan.seq_id = sc.seq_id;
    const RequestInfo& req = *s.request;
    const int64_t prompt_len = req.num_prompt_tokens();
    if (sc.num_samples > 0) {
      if (end != static_cast<int64_t>(s.token_ids.size())) {
        return internal_error("executor: sequence " + std::to_string(sc.seq_id) +
                              " samples before its last token");
      }
      plan.num_samples = sc.num_samples;
      plan.first_sample_row = num_sample_rows_;
      if (s.matcher != nullptr) masks_.push_back({sc.seq_id, num_sample_rows_, sc.num_samples, 0});
      const std::span<const int32_t> prompt(req.prompt_token_ids);
      const std::span<const int32_t> outputs =
          std::span<const int32_t>(s.token_ids).subspan(static_cast<size_t>(prompt_len));
      for (int i = 0; i < sc.num_samples; ++i) {
        // A forking sequence samples the first token of every choice from its last row.
        const int choice = sc.num_samples > 1 ? i : s.choice;
        SamplingRow row;
        row.params = &req.params;
        row.seed = choice_seed(req.seed, choice);
        row.step = static_cast<uint32_t>(outputs.size());
        row.prompt_token_ids = prompt;
        row.output_token_ids = outputs;
        row.eos_token_ids = req.eos_token_ids;
        Status row_status = sampling_.add_row(row);
        if (!row_status.ok() && (failed_seqs_.empty() || failed_seqs_.back().first != sc.seq_id)) {
          failed_seqs_.emplace_back(sc.seq_id, std::move(row_status));
        }
        b.logits_indices.push_back(first_row + static_cast<int32_t>(sc.num_new_tokens) - 1);
        ++num_sample_rows_;
      }
    }
    if (sc.prompt_logprobs && req.params.prompt_logprobs.has_value()) {
      // Position p's logits score prompt token p + 1; the last prompt position scores the
      // first output instead.
      const int64_t last = std::min(end, prompt_len - 1);
      if (last > start) {
        plan.prompt_logprobs_start = start + 1;
        plan.num_prompt_rows = static_cast<int>(last - start);
        plan.first_prompt_row = num_prompt_rows_;
        plan.num_top_prompt = *req.params.prompt_logprobs;
        for (int64_t p = start; p < last; ++p) {
          prompt_rows.push_back(first_row + static_cast<int32_t>(p - start));
          plan.prompt_targets.push_back(req.prompt_token_ids[static_cast<size_t>(p + 1)]);
        }
        num_prompt_rows_ += plan.num_prompt_rows;
      } else if (start == 0) {
        plan.prompt_logprobs_start = 1;  // a one-token prompt: nothing to score
      }
    }
    if (sc.pooling) {
      plan.pool_final = end == static_cast<int64_t>(s.token_ids.size());
      plan.first_pool_row = num_pool_rows_;
      for (int64_t pos = start; pos < end; ++pos) {
        const bool pooled = req.pooling == PoolingType::kMean ||
                            (req.pooling == PoolingType::kLast && pos == end - 1 &&
                             plan.pool_final) ||
                            (req.pooling == PoolingType::kCls && pos == 0);
        if (pooled) pool_rows.push_back(first_row + static_cast<int32_t>(pos - start));
      }
      plan.num_pool_rows = static_cast<int>(pool_rows.size()) - num_pool_rows_;
      num_pool_rows_ = static_cast<int>(pool_rows.size());
    }
    plan_.push_back(std::move(plan));
  }
  b.logits_indices.insert(b.logits_indices.end(), prompt_rows.begin(), prompt_rows.end());
  b.logits_indices.insert(b.logits_indices.end(), pool_rows.begin(), pool_rows.end());
  b.num_pooling_rows = num_pool_rows_;
  sampling_.finish();
  return ok_status();
}

void Executor::start_masks() {
  if (masks_.empty()) return;
  SamplingBatch& sb = sampling_.batch();
  const int64_t words = structured::bitmask_words(vocab_);
  sb.bitmask_words = words;
  sb.token_bitmask.assign(static_cast<size_t>(sb.num_rows()) * static_cast<size_t>(words), 0);
  sb.has_bitmask.assign(static_cast<size_t>(sb.num_rows()), 0);
  std::vector<structured::BitmaskFiller::Job> jobs;
  jobs.reserve(masks_.size());
  for (MaskPlan& m : masks_) {
    structured::BitmaskFiller::Job job;
    job.matcher = seqs_.at(m.seq_id).matcher.get();
    job.mask = sb.token_bitmask.data() + static_cast<size_t>(m.first_row) * static_cast<size_t>(words);
    job.constrained = &m.constrained;
    jobs.push_back(job);
  }
  filler_.start(std::move(jobs));
}

void Executor::finish_masks() {
  if (masks_.empty()) return;
  const auto t0 = std::chrono::steady_clock::now();
  const double fill_ms = filler_.wait();
  const double wait_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  SamplingBatch& sb = sampling_.batch();
  const size_t words = static_cast<size_t>(sb.bitmask_words);
  int64_t num_masks = 0;
  for (const MaskPlan& m : masks_) {
    if (m.constrained == 0) continue;  // reasoning: not constrained yet
    ++num_masks;
    const int32_t* first = sb.token_bitmask.data() + static_cast<size_t>(m.first_row) * words;
    for (int i = 0; i < m.num_rows; ++i) {
      const size_t row = static_cast<size_t>(m.first_row + i);
      sb.has_bitmask[row] = 1;
      if (i > 0) std::copy(first, first + words, sb.token_bitmask.data() + row * words);
    }
  }
  if (num_masks == 0) {  // nothing constrained: no masks at all
    sb.token_bitmask.clear();
    sb.has_bitmask.clear();
    sb.bitmask_words = 0;
  }
  std::lock_guard<std::mutex> lock(stats_mu_);
  ++grammar_stats_.num_steps;
  grammar_stats_.num_masks += num_masks;
  grammar_stats_.fill_ms_total += fill_ms;
  grammar_stats_.wait_ms_total += wait_ms;
}

GrammarStepStats Executor::grammar_stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return grammar_stats_;
}

Status Executor::run_step() {
  TensorView logits;
  const Status forward_status = runner_->forward(batch_, &logits);
  finish_masks();  // always: the bitmask threads must be done before the next step
  KITE_RETURN_IF_ERROR(forward_status);
  if (num_sample_rows_ > 0) {
    TensorView rows = logits;
    rows.shape[0] = num_sample_rows_;
    KITE_RETURN_IF_ERROR(runner_->sample(rows, sampling_.batch(), &sampler_out_));
    if (static_cast<int>(sampler_out_.token_ids.size()) != num_sample_rows_) {
      return internal_error("sampler returned " + std::to_string(sampler_out_.token_ids.size()) +
                            " tokens for " + std::to_string(num_sample_rows_) + " rows");
    }
  }
  if (num_prompt_rows_ > 0) {
    // Rows [num_sample_rows_, +num_prompt_rows_) of the logits.
    char* base = static_cast<char*>(logits.data) + static_cast<size_t>(num_sample_rows_) *
                                                       static_cast<size_t>(vocab_) * sizeof(float);
    TensorView rows(base, DType::kF32, {num_prompt_rows_, vocab_}, logits.device);
    prompt_logits_.resize(static_cast<size_t>(num_prompt_rows_) * static_cast<size_t>(vocab_));
    KITE_RETURN_IF_ERROR(runner_->logits_to_host(rows, prompt_logits_.data()));
  }
  if (num_pool_rows_ > 0) {
    pool_hidden_.resize(static_cast<size_t>(num_pool_rows_) *
                        static_cast<size_t>(runner_->config().hidden_size));
    KITE_RETURN_IF_ERROR(runner_->hidden_states_to_host(0, num_pool_rows_, pool_hidden_.data()));
  }
  // Assemble the step's output (raw prompt logprobs are computed here, off the engine thread
  // in async mode).
  result_.seqs.clear();
  const SamplingBatch& sb = sampling_.batch();
  const int max_top = sb.max_num_logprobs;
  for (const RowPlan& plan : plan_) {
    if (plan.num_samples == 0 && plan.num_prompt_rows == 0) continue;
    SequenceStepOutput r;
    r.seq_id = plan.seq_id;
    for (int i = 0; i < plan.num_samples; ++i) {
      const int row = plan.first_sample_row + i;
      r.token_ids.push_back(sampler_out_.token_ids[static_cast<size_t>(row)]);
      const int k = sb.num_logprobs[static_cast<size_t>(row)];
      if (k < 0) continue;
      LogprobEntry e;
      e.token_id = r.token_ids.back();
      e.logprob = sampler_out_.logprobs[static_cast<size_t>(row)];
      e.rank = sampler_out_.ranks[static_cast<size_t>(row)];
      for (int j = 0; j < k; ++j) {
        const size_t at =
            static_cast<size_t>(row) * static_cast<size_t>(max_top) + static_cast<size_t>(j);
        e.top.push_back({sampler_out_.top_token_ids[at], sampler_out_.top_logprobs[at]});
      }
      r.logprobs.push_back(std::move(e));
    }
    r.prompt_logprobs_start = plan.prompt_logprobs_start;
    std::vector<int32_t> top_ids(static_cast<size_t>(plan.num_top_prompt));
    std::vector<float> top_lps(static_cast<size_t>(plan.num_top_prompt));
    for (int i = 0; i < plan.num_prompt_rows; ++i) {
      const float* x = prompt_logits_.data() +
                       static_cast<size_t>(plan.first_prompt_row + i) * static_cast<size_t>(vocab_);
      LogprobEntry e;
      e.token_id = plan.prompt_targets[static_cast<size_t>(i)];
      compute_logprobs(x, vocab_, e.token_id, plan.num_top_prompt, plan.num_top_prompt, &e.logprob,
                       &e.rank, top_ids.data(), top_lps.data());
      for (int j = 0; j < plan.num_top_prompt; ++j) {
        e.top.push_back({top_ids[static_cast<size_t>(j)], top_lps[static_cast<size_t>(j)]});
      }
      r.prompt_logprobs.push_back(std::move(e));
    }
    result_.seqs.push_back(std::move(r));
  }
  return ok_status();
}

void Executor::finish_step() {
  // Advance the executor's copy of each scheduled sequence: computed tokens and the sampled
  // token (choice 0's for a forking sequence; its children arrive as new sequences).
  for (const RowPlan& plan : plan_) {
    auto it = seqs_.find(plan.seq_id);
    if (it == seqs_.end()) continue;
    if (plan.num_samples > 0) {
      const int32_t token = sampler_out_.token_ids[static_cast<size_t>(plan.first_sample_row)];
      it->second.token_ids.push_back(token);
      if (it->second.matcher != nullptr && !it->second.matcher->accept(token) &&
          !it->second.matcher->terminated()) {
        // Only possible when no allowed token had a finite logit (the sampler then takes the
        // lowest allowed one, which a grammar accepts): count it, keep the state.
        std::lock_guard<std::mutex> lock(stats_mu_);
        ++grammar_stats_.num_rejected;
      }
    }
  }
  // Embedding requests: fold this step's pooled rows in; emit the vector at the prompt's end.
  const auto hidden = static_cast<size_t>(runner_->config().hidden_size);
  for (const RowPlan& plan : plan_) {
    if (plan.num_pool_rows == 0 && !plan.pool_final) continue;
    auto it = seqs_.find(plan.seq_id);
    if (it == seqs_.end()) continue;
    SeqState& s = it->second;
    s.pool_sum.resize(hidden, 0.0);
    for (int r = 0; r < plan.num_pool_rows; ++r) {
      const float* x = pool_hidden_.data() + static_cast<size_t>(plan.first_pool_row + r) * hidden;
      for (size_t j = 0; j < hidden; ++j) s.pool_sum[j] += x[j];
    }
    s.pool_count += plan.num_pool_rows;
    if (!plan.pool_final) continue;
    SequenceStepOutput out;
    out.seq_id = plan.seq_id;
    out.embedding.resize(hidden);
    const double count = static_cast<double>(std::max<int64_t>(s.pool_count, 1));
    for (size_t j = 0; j < hidden; ++j) {
      out.embedding[j] = static_cast<float>(s.pool_sum[j] / count);
    }
    result_.seqs.push_back(std::move(out));
  }
  for (int32_t i = 0; i < batch_.num_seqs(); ++i) {
    auto it = seqs_.find(plan_[static_cast<size_t>(i)].seq_id);
    if (it != seqs_.end()) it->second.num_computed_tokens = batch_.seq_lens[static_cast<size_t>(i)];
  }
}

Status Executor::submit(const SchedulerOutput& out) {
  KITE_CHECK(!in_flight_) << "submit() with a step in flight";
  KITE_RETURN_IF_ERROR(apply_diffs(out));
  KITE_RETURN_IF_ERROR(build_inputs(out));
  start_masks();
  in_flight_ = true;
  if (!options_.async) {
    step_status_ = run_step();
    return ok_status();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ready_ = true;
    job_done_ = false;
  }
  cv_.notify_all();
  return ok_status();
}

Status Executor::wait(ModelStepOutput* result) {
  KITE_CHECK(in_flight_) << "wait() without a step";
  if (options_.async) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return job_done_; });
  }
  in_flight_ = false;
  if (!step_status_.ok()) return step_status_;
  finish_step();
  *result = std::move(result_);
  result_ = ModelStepOutput{};
  result->failed_seqs = std::move(failed_seqs_);
  failed_seqs_.clear();
  return ok_status();
}

Status Executor::execute(const SchedulerOutput& out, ModelStepOutput* result) {
  KITE_RETURN_IF_ERROR(submit(out));
  return wait(result);
}

void Executor::device_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || job_ready_; });
    if (stop_) return;
    job_ready_ = false;
    lock.unlock();
    Status s = run_step();
    lock.lock();
    step_status_ = std::move(s);
    job_done_ = true;
    cv_.notify_all();
  }
}

}  // namespace kite
