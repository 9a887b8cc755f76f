#include "scheduler/scheduler.h"

#include <algorithm>
#include <tuple>
#include <unordered_set>
#include <utility>

#include "core/check.h"

namespace kite {
namespace {

using StopReason = std::variant<std::monostate, std::string, int32_t>;

bool contains(const std::vector<int32_t>& v, int32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

Status SchedulerConfig::validate() const {
  if (max_num_seqs < 1) return invalid_argument("max_num_seqs must be >= 1");
  if (max_num_batched_tokens < 1) return invalid_argument("max_num_batched_tokens must be >= 1");
  if (max_model_len < 2) return invalid_argument("max_model_len must be >= 2");
  if (!enable_chunked_prefill && max_num_batched_tokens < max_model_len) {
    return invalid_argument("max_num_batched_tokens (" + std::to_string(max_num_batched_tokens) +
                            ") must be >= max_model_len (" + std::to_string(max_model_len) +
                            ") when chunked prefill is disabled");
  }
  return ok_status();
}

void SchedulerEvents::clear() {
  choices.clear();
  prompt_logprobs.clear();
  finished.clear();
  first_scheduled.clear();
}

bool SchedulerEvents::empty() const {
  return choices.empty() && prompt_logprobs.empty() && finished.empty() && first_scheduled.empty();
}

Scheduler::Scheduler(const SchedulerConfig& config, KvCacheManager* kv) : config_(config), kv_(kv) {
  KITE_CHECK(config_.validate().ok()) << config_.validate().to_string();
}

Status Scheduler::add_request(std::shared_ptr<const RequestInfo> info) {
  if (requests_.count(info->request_id) != 0) {
    return invalid_argument("request_id '" + info->request_id + "' is already in use");
  }
  if (info->prompt_token_ids.empty()) return invalid_argument("prompt must not be empty");
  if (info->n() > config_.max_num_seqs) {
    return invalid_argument("n (" + std::to_string(info->n()) + ") exceeds max_num_seqs (" +
                            std::to_string(config_.max_num_seqs) + ")");
  }
  if (info->is_pooling()) {
    if (info->n() != 1) return invalid_argument("an embedding request has exactly one choice");
    if (info->num_prompt_tokens() > config_.max_model_len) {
      return out_of_range("prompt has " + std::to_string(info->num_prompt_tokens()) +
                          " tokens, more than max_model_len " +
                          std::to_string(config_.max_model_len));
    }
  } else if (info->num_prompt_tokens() >= config_.max_model_len) {
    return out_of_range("prompt has " + std::to_string(info->num_prompt_tokens()) +
                        " tokens; max_model_len " + std::to_string(config_.max_model_len) +
                        " leaves no room for output");
  }
  KITE_CHECK_GE(info->max_tokens, info->is_pooling() ? 0 : 1);
  KITE_CHECK_LE(info->num_prompt_tokens() + info->max_tokens, config_.max_model_len);
  auto req = std::make_unique<RequestState>();
  req->info = std::move(info);
  req->arrival_index = next_arrival_++;
  req->num_unfinished_choices = req->info->n();
  req->num_prompt_logprobs_emitted = 1;  // prompt token 0 has no logprob
  Sequence* seq = new_sequence(req.get(), 0);
  seq->samples_all_choices = true;
  seq->token_ids = req->info->prompt_token_ids;
  waiting_.push_back(seq);
  requests_.emplace(req->info->request_id, std::move(req));
  return ok_status();
}

Sequence* Scheduler::new_sequence(RequestState* req, int choice) {
  auto seq = std::make_unique<Sequence>();
  seq->seq_id = next_seq_id_++;
  seq->request = req;
  seq->choice = choice;
  Sequence* raw = seq.get();
  seqs_.emplace(raw->seq_id, std::move(seq));
  req->seqs.push_back(raw);
  return raw;
}

Sequence* Scheduler::find_seq(int64_t seq_id) const {
  auto it = seqs_.find(seq_id);
  return it == seqs_.end() ? nullptr : it->second.get();
}

int Scheduler::running_seats() const {
  int seats = 0;
  for (const Sequence* s : running_) seats += s->seats();
  return seats;
}

std::deque<Sequence*>::iterator Scheduler::next_waiting() {
  if (config_.policy == SchedulingPolicy::kFcfs) return waiting_.begin();
  return std::min_element(
      waiting_.begin(), waiting_.end(), [](const Sequence* a, const Sequence* b) {
        return std::make_tuple(a->request->info->priority, a->request->arrival_index, a->choice) <
               std::make_tuple(b->request->info->priority, b->request->arrival_index, b->choice);
      });
}

Sequence* Scheduler::pick_victim() const {
  KITE_CHECK(!running_.empty());
  if (config_.policy == SchedulingPolicy::kFcfs) return running_.back();
  return *std::max_element(
      running_.begin(), running_.end(), [](const Sequence* a, const Sequence* b) {
        return std::make_tuple(a->request->info->priority, a->request->arrival_index, a->choice) <
               std::make_tuple(b->request->info->priority, b->request->arrival_index, b->choice);
      });
}

void Scheduler::preempt(Sequence* seq, SchedulerOutput* out) {
  kv_->free(seq->seq_id);
  seq->num_computed_tokens = 0;
  seq->status = SeqStatus::kWaiting;
  seq->new_to_executor = true;
  seq->num_blocks_sent = 0;
  ++seq->num_preemptions;
  ++num_preemptions_;
  running_.erase(std::find(running_.begin(), running_.end(), seq));
  waiting_.push_front(seq);
  out->preempted_seq_ids.push_back(seq->seq_id);
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  out.finished_seq_ids = std::move(finished_seq_ids_);
  finished_seq_ids_.clear();
  int64_t budget = config_.max_num_batched_tokens;
  std::vector<std::pair<Sequence*, int64_t>> sched;  // (sequence, tokens this step)
  bool preempted_any = false;

  // 1. Running sequences, in order.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* seq = running_[i];
    const int64_t num_new = std::min(seq->num_tokens() - seq->num_computed_tokens, budget);
    KITE_CHECK_GT(num_new, 0) << "running sequence " << seq->seq_id << " has nothing to compute";
    bool allocated = false;
    for (;;) {
      if (kv_->allocate(seq->seq_id, nullptr, seq->num_computed_tokens + num_new)) {
        allocated = true;
        break;
      }
      Sequence* victim = pick_victim();
      const size_t victim_index = static_cast<size_t>(
          std::find(running_.begin(), running_.end(), victim) - running_.begin());
      auto in_sched = std::find_if(sched.begin(), sched.end(),
                                   [&](const auto& p) { return p.first == victim; });
      if (in_sched != sched.end()) {  // already scheduled this step: take its tokens back
        budget += in_sched->second;
        sched.erase(in_sched);
      }
      preempt(victim, &out);
      preempted_any = true;
      if (victim == seq) break;
      if (victim_index < i) --i;
    }
    if (!allocated) continue;  // seq itself left running_: index i is the next one
    sched.emplace_back(seq, num_new);
    budget -= num_new;
    ++i;
  }

  // 2. Waiting sequences, unless this step had to preempt (memory is tight).
  while (!preempted_any && !waiting_.empty() && budget > 0) {
    auto it = next_waiting();
    Sequence* seq = *it;
    RequestState* req = seq->request;
    if (running_seats() + seq->seats() > config_.max_num_seqs) break;
    PrefixHit hit;
    // Prompt logprobs need the logits of every prompt position, and pooling the hidden state
    // of its positions: no prefix reuse for them.
    const bool wants_prompt_logprobs =
        seq->samples_all_choices && req->info->params.prompt_logprobs.has_value();
    if (!wants_prompt_logprobs && !req->info->is_pooling()) {
      hit = kv_->find_cached_prefix(seq->seq_id, seq->token_ids, req->info->cache_salt);
    }
    const int64_t remaining = seq->num_tokens() - hit.num_tokens;
    if (!config_.enable_chunked_prefill && remaining > budget) break;
    const int64_t num_new = std::min(remaining, budget);
    if (!kv_->allocate(seq->seq_id, &hit, hit.num_tokens + num_new)) break;
    waiting_.erase(it);
    seq->status = SeqStatus::kRunning;
    seq->num_computed_tokens = hit.num_tokens;
    running_.push_back(seq);
    sched.emplace_back(seq, num_new);
    budget -= num_new;
    if (!req->scheduled_once) {
      req->scheduled_once = true;
      first_scheduled_.emplace_back(req->info, hit.num_tokens);
    }
  }

  // 3. The executor's diffs, in batch order.
  for (const auto& [seq, num_new] : sched) {
    const std::vector<int32_t>& blocks = kv_->block_ids(seq->seq_id);
    if (seq->new_to_executor) {
      NewSequenceData d;
      d.seq_id = seq->seq_id;
      d.request = seq->request->info;
      d.choice = seq->choice;
      d.token_ids = seq->token_ids;
      d.block_ids = blocks;
      d.num_computed_tokens = seq->num_computed_tokens;
      out.new_seqs.push_back(std::move(d));
      seq->new_to_executor = false;
    } else {
      CachedSequenceData d;
      d.seq_id = seq->seq_id;
      d.new_block_ids.assign(blocks.begin() + static_cast<std::ptrdiff_t>(seq->num_blocks_sent),
                             blocks.end());
      d.num_computed_tokens = seq->num_computed_tokens;
      out.cached_seqs.push_back(std::move(d));
    }
    seq->num_blocks_sent = blocks.size();
    ScheduledSequence s;
    s.seq_id = seq->seq_id;
    s.num_new_tokens = num_new;
    const RequestInfo& info = *seq->request->info;
    s.pooling = info.is_pooling();
    if (!s.pooling && seq->num_computed_tokens + num_new == seq->num_tokens()) {
      s.num_samples = seq->samples_all_choices ? info.n() : 1;
    }
    s.prompt_logprobs =
        !s.pooling && seq->samples_all_choices && info.params.prompt_logprobs.has_value();
    out.scheduled.push_back(s);
    out.total_num_scheduled_tokens += num_new;
  }
  return out;
}

FinishReason Scheduler::check_stop(const Sequence& seq, int32_t token,
                                   StopReason* stop_reason) const {
  const RequestInfo& info = *seq.request->info;
  // The k-th output (1-based) was sampled at step k - 1: stop tokens were banned (and do not
  // stop) while k - 1 < min_tokens.
  if (seq.num_output_tokens() > info.params.min_tokens) {
    if (!info.params.ignore_eos && contains(info.eos_token_ids, token)) return FinishReason::kStop;
    if (contains(info.params.stop_token_ids, token)) {
      *stop_reason = token;
      return FinishReason::kStop;
    }
  }
  if (seq.num_output_tokens() >= info.max_tokens) return FinishReason::kLength;
  return FinishReason::kNone;
}

void Scheduler::append_token(Sequence* seq, int32_t token, const LogprobEntry* logprob,
                             SchedulerEvents* events) {
  seq->token_ids.push_back(token);
  ChoiceEvent ev;
  ev.request = seq->request->info;
  ev.choice = seq->choice;
  ev.new_token_ids.push_back(token);
  if (logprob != nullptr) ev.logprobs.push_back(*logprob);
  events->choices.push_back(std::move(ev));
  StopReason stop_reason;
  const FinishReason reason = check_stop(*seq, token, &stop_reason);
  if (reason != FinishReason::kNone) finish_seq(seq, reason, std::move(stop_reason), events);
}

void Scheduler::fork_choices(Sequence* parent, const SequenceStepOutput& res,
                             SchedulerEvents* events) {
  RequestState* req = parent->request;
  const int n = req->info->n();
  parent->samples_all_choices = false;
  const int64_t prompt_len = req->info->num_prompt_tokens();
  const int64_t shared_blocks = prompt_len / kv_->block_size();
  // Children first: they share the parent's full prompt blocks before the parent's own first
  // token can finish it and free them.
  std::vector<Sequence*> children;
  for (int c = 1; c < n; ++c) {
    Sequence* child = new_sequence(req, c);
    child->token_ids = req->info->prompt_token_ids;
    child->status = SeqStatus::kRunning;
    kv_->fork(parent->seq_id, child->seq_id, shared_blocks);
    // The partial last block stays with the parent: the child recomputes those few tokens
    // into a block of its own (copy-on-write without a device copy).
    child->num_computed_tokens = shared_blocks * kv_->block_size();
    running_.push_back(child);
    children.push_back(child);
  }
  auto logprob_at = [&](int c) -> const LogprobEntry* {
    return res.logprobs.empty() ? nullptr : &res.logprobs[static_cast<size_t>(c)];
  };
  for (int c = 1; c < n; ++c) {
    append_token(children[static_cast<size_t>(c - 1)], res.token_ids[static_cast<size_t>(c)],
                 logprob_at(c), events);
  }
  append_token(parent, res.token_ids[0], logprob_at(0), events);
}

void Scheduler::update(const SchedulerOutput& out, const ModelStepOutput& result,
                       SchedulerEvents* events) {
  std::unordered_map<int64_t, const SequenceStepOutput*> by_seq;
  for (const SequenceStepOutput& r : result.seqs) by_seq.emplace(r.seq_id, &r);
  for (const ScheduledSequence& s : out.scheduled) {
    Sequence* seq = find_seq(s.seq_id);
    if (seq == nullptr || seq->status != SeqStatus::kRunning) continue;  // ended meanwhile
    RequestState* req = seq->request;
    seq->num_computed_tokens += s.num_new_tokens;
    KITE_CHECK_LE(seq->num_computed_tokens, seq->num_tokens());
    kv_->cache_blocks(seq->seq_id, seq->token_ids, seq->num_computed_tokens, req->info->cache_salt);
    auto it = by_seq.find(s.seq_id);
    const SequenceStepOutput* res = it == by_seq.end() ? nullptr : it->second;
    if (res != nullptr && !res->prompt_logprobs.empty()) {
      // Entries already emitted before a preemption are not repeated.
      const int64_t end =
          res->prompt_logprobs_start + static_cast<int64_t>(res->prompt_logprobs.size());
      if (end > req->num_prompt_logprobs_emitted) {
        KITE_CHECK_LE(res->prompt_logprobs_start, req->num_prompt_logprobs_emitted);
        SchedulerEvents::PromptLogprobs pl;
        pl.request = req->info;
        pl.start = req->num_prompt_logprobs_emitted;
        pl.entries.assign(res->prompt_logprobs.begin() +
                              (req->num_prompt_logprobs_emitted - res->prompt_logprobs_start),
                          res->prompt_logprobs.end());
        req->num_prompt_logprobs_emitted = end;
        events->prompt_logprobs.push_back(std::move(pl));
      }
    }
    if (s.pooling && seq->num_computed_tokens == seq->num_tokens()) {
      KITE_CHECK(res != nullptr && !res->embedding.empty())
          << "no embedding for sequence " << s.seq_id;
      ChoiceEvent ev;
      ev.request = req->info;
      ev.embedding = res->embedding;
      events->choices.push_back(std::move(ev));
      finish_seq(seq, FinishReason::kStop, {}, events);
      continue;
    }
    if (s.num_samples == 0) continue;
    KITE_CHECK(res != nullptr) << "no sampled tokens for sequence " << s.seq_id;
    KITE_CHECK_EQ(static_cast<int>(res->token_ids.size()), s.num_samples);
    if (seq->samples_all_choices) {
      fork_choices(seq, *res, events);
    } else {
      append_token(seq, res->token_ids[0], res->logprobs.empty() ? nullptr : &res->logprobs[0],
                   events);
    }
  }
  for (auto& fs : first_scheduled_) events->first_scheduled.push_back(std::move(fs));
  first_scheduled_.clear();
}

void Scheduler::finish_seq(Sequence* seq, FinishReason reason, StopReason stop_reason,
                           SchedulerEvents* events) {
  RequestState* req = seq->request;
  const int64_t seq_id = seq->seq_id;
  kv_->free(seq_id);
  if (seq->status == SeqStatus::kRunning) {
    running_.erase(std::find(running_.begin(), running_.end(), seq));
  } else if (seq->status == SeqStatus::kWaiting) {
    waiting_.erase(std::find(waiting_.begin(), waiting_.end(), seq));
  }
  seq->status = SeqStatus::kFinished;
  if (!seq->new_to_executor) finished_seq_ids_.push_back(seq_id);
  // A sequence that has not forked yet stands for every choice of its request.
  const int first = seq->choice;
  const int last = seq->samples_all_choices ? req->info->n() - 1 : seq->choice;
  for (int c = first; c <= last; ++c) {
    ChoiceEvent ev;
    ev.request = req->info;
    ev.choice = c;
    ev.finish_reason = reason;
    ev.stop_reason = stop_reason;
    events->choices.push_back(std::move(ev));
    --req->num_unfinished_choices;
  }
  KITE_CHECK_GE(req->num_unfinished_choices, 0);
  req->seqs.erase(std::find(req->seqs.begin(), req->seqs.end(), seq));
  const int64_t preemptions = seq->num_preemptions;
  seq = nullptr;
  seqs_.erase(seq_id);
  req->total_preemptions += preemptions;
  if (req->num_unfinished_choices == 0) {
    KITE_CHECK(req->seqs.empty());
    events->finished.push_back({req->info, req->total_preemptions});
    requests_.erase(req->info->request_id);
  }
}

void Scheduler::finish_choice(const std::string& request_id, int choice, FinishReason reason,
                              StopReason stop_reason, SchedulerEvents* events) {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return;
  for (Sequence* seq : it->second->seqs) {
    if (seq->choice == choice && !seq->samples_all_choices) {
      finish_seq(seq, reason, std::move(stop_reason), events);
      return;
    }
  }
}

void Scheduler::finish_request(const std::string& request_id, FinishReason reason,
                               SchedulerEvents* events) {
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return;
  RequestState* req = it->second.get();
  // finish_seq erases the request after its last choice: stop before touching it again.
  while (requests_.count(request_id) != 0 && !req->seqs.empty()) {
    finish_seq(req->seqs.back(), reason, {}, events);
  }
}

bool Scheduler::has_request(const std::string& request_id) const {
  return requests_.count(request_id) != 0;
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats st;
  st.num_running_seqs = static_cast<int64_t>(running_.size());
  st.num_waiting_seqs = static_cast<int64_t>(waiting_.size());
  std::unordered_set<const RequestState*> running;
  for (const Sequence* s : running_) running.insert(s->request);
  st.num_running_requests = static_cast<int64_t>(running.size());
  st.num_waiting_requests = static_cast<int64_t>(requests_.size()) - st.num_running_requests;
  st.num_preemptions = num_preemptions_;
  st.num_requests = static_cast<int64_t>(requests_.size());
  return st;
}

}  // namespace kite
