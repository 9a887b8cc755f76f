#include "sampling/cpu_sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "sampling/philox.h"

namespace kite {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Per-thread scratch, reused across rows and calls (rows of 100k+ floats).
struct RowScratch {
  std::vector<float> x;                         // processed logits of the row
  std::vector<float> values;                    // top_k selection
  std::vector<int32_t> ids;                     // penalty token lists
  std::vector<std::pair<float, int32_t>> cand;  // surviving (logit, token)
};
thread_local RowScratch t_scratch;

// (logit desc, id asc): a strict total order on candidates.
bool before(const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

Status check_csr(const std::vector<int32_t>& indptr, size_t num_ids, int32_t rows,
                 const char* name) {
  if (indptr.empty()) {
    if (num_ids != 0) return invalid_argument(std::string(name) + ": ids without offsets");
    return ok_status();
  }
  if (indptr.size() != static_cast<size_t>(rows) + 1) {
    return invalid_argument(std::string(name) + ": expected " + std::to_string(rows + 1) +
                            " offsets, got " + std::to_string(indptr.size()));
  }
  if (indptr[0] != 0 || static_cast<size_t>(indptr[rows]) != num_ids) {
    return invalid_argument(std::string(name) + ": offsets do not span the id list");
  }
  for (int32_t r = 0; r < rows; ++r) {
    if (indptr[r + 1] < indptr[r]) {
      return invalid_argument(std::string(name) + ": offsets decrease at row " + std::to_string(r));
    }
  }
  return ok_status();
}

Status check_ids(const std::vector<int32_t>& ids, int64_t vocab, const char* name) {
  for (int32_t t : ids) {
    if (t < 0 || t >= vocab) {
      return invalid_argument(std::string(name) + ": token id " + std::to_string(t) +
                              " outside [0, " + std::to_string(vocab) + ")");
    }
  }
  return ok_status();
}

// [begin, end) of row r in a CSR list (empty offsets: no entries).
std::pair<int32_t, int32_t> csr_range(const std::vector<int32_t>& indptr, int32_t r) {
  if (indptr.empty()) return {0, 0};
  return {indptr[r], indptr[r + 1]};
}

bool is_greedy(const SamplingBatch& b, int32_t r) { return b.temperature[r] < kGreedyTemperature; }

bool has_mask(const SamplingBatch& b, int32_t r) {
  return !b.has_bitmask.empty() && b.has_bitmask[static_cast<size_t>(r)] != 0;
}

const int32_t* mask_row(const SamplingBatch& b, int32_t r) {
  return b.token_bitmask.data() + static_cast<size_t>(r) * static_cast<size_t>(b.bitmask_words);
}

bool mask_allows(const int32_t* mask, int64_t t) {
  return (static_cast<uint32_t>(mask[t >> 5]) >> (t & 31)) & 1u;
}

// The lowest token a mask allows within [0, vocab) (0 when none).
int32_t first_allowed(const int32_t* mask, int64_t vocab) {
  for (int64_t t = 0; t < vocab; ++t) {
    if (mask_allows(mask, t)) return static_cast<int32_t>(t);
  }
  return 0;
}

bool needs_processing(const SamplingBatch& b, int32_t r) {
  if (has_mask(b, r)) return true;
  auto nonempty = [&](const std::vector<int32_t>& indptr) {
    auto [s, e] = csr_range(indptr, r);
    return e > s;
  };
  if (nonempty(b.bias_indptr) || nonempty(b.banned_indptr)) return true;
  if (b.repetition_penalty[r] != 1.0f || b.frequency_penalty[r] != 0.0f ||
      b.presence_penalty[r] != 0.0f) {
    return true;
  }
  return !is_greedy(b, r) && b.temperature[r] != 1.0f;
}

// Lowest id among the maxima; NaN never wins. All -inf (or NaN): token 0.
int32_t argmax_lowest(const float* x, int64_t vocab) {
  int32_t best = 0;
  float best_v = x[0];
  for (int64_t t = 1; t < vocab; ++t) {
    if (x[t] > best_v || (std::isnan(best_v) && !std::isnan(x[t]))) {
      best_v = x[t];
      best = static_cast<int32_t>(t);
    }
  }
  return best;
}

float race_key(uint64_t seed, uint32_t step, int32_t t) {
  const Philox4x32Counter bits = sampling_block_bits(seed, step, static_cast<uint32_t>(t) >> 2);
  return race_key_from_uniform(uniform_open01(bits.v[t & 3]));
}

// Exponential race over every token whose logit is >= thr (and finite).
int32_t race_dense(const float* x, int64_t vocab, float thr, uint64_t seed, uint32_t step) {
  int32_t best = -1;
  float best_score = kNegInf;
  for (int64_t base = 0; base < vocab; base += 4) {
    const Philox4x32Counter bits =
        sampling_block_bits(seed, step, static_cast<uint32_t>(base >> 2));
    const int64_t end = std::min<int64_t>(vocab, base + 4);
    for (int64_t t = base; t < end; ++t) {
      const float v = x[t];
      if (!(v >= thr) || v == kNegInf) continue;
      const float score = v + race_key_from_uniform(uniform_open01(bits.v[t - base]));
      if (best < 0 || score > best_score) {  // ascending t: ties keep the lower id
        best_score = score;
        best = static_cast<int32_t>(t);
      }
    }
  }
  return best;
}

int32_t race_candidates(const std::vector<std::pair<float, int32_t>>& cand, uint64_t seed,
                        uint32_t step) {
  int32_t best = -1;
  float best_score = kNegInf;
  for (const auto& [v, t] : cand) {
    const float score = v + race_key(seed, step, t);
    if (best < 0 || score > best_score || (score == best_score && t < best)) {
      best_score = score;
      best = t;
    }
  }
  return best;
}

// Steps 6-9 for a non-greedy row whose processed logits are x.
int32_t sample_row(const float* x, int64_t vocab, const SamplingBatch& b, int32_t r,
                   RowScratch& s) {
  const uint64_t seed = b.seed[r];
  const uint32_t step = b.step[r];
  float thr = kNegInf;
  const int32_t k = b.top_k[r];
  if (k > 0 && k < vocab) {
    s.values.assign(x, x + vocab);
    std::nth_element(s.values.begin(), s.values.begin() + (k - 1), s.values.end(),
                     [](float a, float c) { return a > c; });
    thr = s.values[static_cast<size_t>(k - 1)];
  }
  const bool use_top_p = b.top_p[r] < 1.0f;
  const bool use_min_p = b.min_p[r] > 0.0f;
  int32_t token = -1;
  if (!use_top_p && !use_min_p) {
    token = race_dense(x, vocab, thr, seed, step);
  } else {
    s.cand.clear();
    float max_v = kNegInf;
    for (int64_t t = 0; t < vocab; ++t) {
      if (x[t] >= thr && x[t] != kNegInf) {
        s.cand.emplace_back(x[t], static_cast<int32_t>(t));
        max_v = std::max(max_v, x[t]);
      }
    }
    if (!s.cand.empty() && use_top_p) {
      double total = 0.0;
      for (const auto& c : s.cand) total += std::exp(static_cast<double>(c.first) - max_v);
      const double target = static_cast<double>(b.top_p[r]) * total;
      // Sort a growing prefix: the (value desc, id asc) order is total, so a longer sorted
      // prefix extends the shorter one and the running sum carries over.
      size_t sorted = 0, keep = s.cand.size();
      double cum = 0.0;
      size_t want = std::min<size_t>(s.cand.size(), 64);
      for (;;) {
        std::partial_sort(s.cand.begin() + static_cast<std::ptrdiff_t>(sorted),
                          s.cand.begin() + static_cast<std::ptrdiff_t>(want), s.cand.end(), before);
        bool done = false;
        for (size_t i = sorted; i < want; ++i) {
          cum += std::exp(static_cast<double>(s.cand[i].first) - max_v);
          if (cum >= target) {
            keep = i + 1;
            done = true;
            break;
          }
        }
        sorted = want;
        if (done || sorted == s.cand.size()) break;
        want = std::min(s.cand.size(), want * 4);
      }
      s.cand.resize(keep);
    }
    if (use_min_p) {
      const float min_p = b.min_p[r];
      std::erase_if(s.cand, [&](const std::pair<float, int32_t>& c) {
        return std::exp(c.first - max_v) < min_p;
      });
    }
    token = race_candidates(s.cand, seed, step);
  }
  return token >= 0 ? token : argmax_lowest(x, vocab);
}

void sample_one_row(const float* logits, int64_t vocab, const SamplingBatch& b, int32_t r,
                    SamplerOutput* out) {
  RowScratch& s = t_scratch;
  const float* in = logits + static_cast<int64_t>(r) * vocab;
  const float* x = in;
  if (needs_processing(b, r)) {
    s.x.assign(in, in + vocab);
    apply_logits_processing(s.x.data(), vocab, b, r);
    x = s.x.data();
  }
  int32_t token = is_greedy(b, r) ? argmax_lowest(x, vocab) : sample_row(x, vocab, b, r, s);
  if (has_mask(b, r) && !mask_allows(mask_row(b, r), token)) {
    token = first_allowed(mask_row(b, r), vocab);  // nothing allowed was finite
  }
  out->token_ids[static_cast<size_t>(r)] = token;
  if (b.max_num_logprobs < 0) return;
  const size_t max_top = static_cast<size_t>(b.max_num_logprobs);
  float* top_lps = out->top_logprobs.data() + static_cast<size_t>(r) * max_top;
  int32_t* top_ids = out->top_token_ids.data() + static_cast<size_t>(r) * max_top;
  if (b.num_logprobs[r] < 0) {
    out->logprobs[static_cast<size_t>(r)] = 0.0f;
    out->ranks[static_cast<size_t>(r)] = 0;
    std::fill(top_ids, top_ids + max_top, -1);
    std::fill(top_lps, top_lps + max_top, kNegInf);
    return;
  }
  compute_logprobs(x, vocab, token, b.num_logprobs[r], b.max_num_logprobs,
                   &out->logprobs[static_cast<size_t>(r)], &out->ranks[static_cast<size_t>(r)],
                   top_ids, top_lps);
}

}  // namespace

void compute_logprobs(const float* x, int64_t vocab, int32_t token, int32_t num_top,
                      int32_t max_top, float* chosen_lp, int32_t* rank, int32_t* top_ids,
                      float* top_lps) {
  float max_v = kNegInf;
  for (int64_t t = 0; t < vocab; ++t) max_v = std::max(max_v, x[t]);
  double lse = -std::numeric_limits<double>::infinity();
  if (max_v != kNegInf) {
    double sum = 0.0;
    for (int64_t t = 0; t < vocab; ++t) sum += std::exp(static_cast<double>(x[t]) - max_v);
    lse = max_v + std::log(sum);
  }
  auto lp = [&](float v) { return static_cast<float>(static_cast<double>(v) - lse); };
  const float chosen = x[token];
  int32_t greater = 0;
  for (int64_t t = 0; t < vocab; ++t) greater += x[t] > chosen ? 1 : 0;
  *chosen_lp = lp(chosen);
  *rank = greater + 1;
  // Top num_top by (logit desc, id asc): an insertion-sorted list, rejecting early.
  std::vector<std::pair<float, int32_t>> top;
  top.reserve(static_cast<size_t>(num_top) + 1);
  for (int64_t t = 0; t < vocab && num_top > 0; ++t) {
    const std::pair<float, int32_t> c{x[t], static_cast<int32_t>(t)};
    if (static_cast<int32_t>(top.size()) == num_top && !before(c, top.back())) continue;
    top.insert(std::upper_bound(top.begin(), top.end(), c, before), c);
    if (static_cast<int32_t>(top.size()) > num_top) top.pop_back();
  }
  for (int32_t i = 0; i < max_top; ++i) {
    if (i < static_cast<int32_t>(top.size())) {
      top_ids[i] = top[static_cast<size_t>(i)].second;
      top_lps[i] = lp(top[static_cast<size_t>(i)].first);
    } else {
      top_ids[i] = -1;
      top_lps[i] = kNegInf;
    }
  }
}

Status check_sampling_batch(const SamplingBatch& b, int64_t vocab) {
  if (vocab <= 0) return invalid_argument("sampling: vocab must be positive");
  const int32_t rows = b.num_rows();
  const size_t n = static_cast<size_t>(rows);
  if (b.top_k.size() != n || b.top_p.size() != n || b.min_p.size() != n ||
      b.repetition_penalty.size() != n || b.frequency_penalty.size() != n ||
      b.presence_penalty.size() != n || b.seed.size() != n || b.step.size() != n ||
      b.num_logprobs.size() != n) {
    return invalid_argument("sampling: per-row arrays must all have num_rows entries");
  }
  KITE_RETURN_IF_ERROR(check_csr(b.bias_indptr, b.bias_token_ids.size(), rows, "logit_bias"));
  if (b.bias_values.size() != b.bias_token_ids.size()) {
    return invalid_argument("logit_bias: values and token ids differ in length");
  }
  KITE_RETURN_IF_ERROR(check_csr(b.banned_indptr, b.banned_token_ids.size(), rows, "banned"));
  KITE_RETURN_IF_ERROR(
      check_csr(b.prompt_tokens_indptr, b.prompt_token_ids.size(), rows, "prompt tokens"));
  KITE_RETURN_IF_ERROR(
      check_csr(b.output_tokens_indptr, b.output_token_ids.size(), rows, "output tokens"));
  KITE_RETURN_IF_ERROR(check_ids(b.bias_token_ids, vocab, "logit_bias"));
  KITE_RETURN_IF_ERROR(check_ids(b.banned_token_ids, vocab, "banned"));
  KITE_RETURN_IF_ERROR(check_ids(b.prompt_token_ids, vocab, "prompt tokens"));
  KITE_RETURN_IF_ERROR(check_ids(b.output_token_ids, vocab, "output tokens"));
  if (!b.has_bitmask.empty()) {
    if (b.has_bitmask.size() != n) {
      return invalid_argument("sampling: has_bitmask must have num_rows entries");
    }
    if (b.bitmask_words < (vocab + 31) / 32 ||
        b.token_bitmask.size() != n * static_cast<size_t>(b.bitmask_words)) {
      return invalid_argument("sampling: token_bitmask must hold num_rows * ceil(vocab / 32) words");
    }
  }
  for (int32_t r = 0; r < rows; ++r) {
    if (b.num_logprobs[r] > b.max_num_logprobs) {
      return invalid_argument("sampling: num_logprobs of row " + std::to_string(r) +
                              " exceeds max_num_logprobs");
    }
    KITE_RETURN_IF_ERROR(check_sampling_row(b, r));
  }
  return ok_status();
}

Status check_sampling_row(const SamplingBatch& b, int32_t r) {
  const auto i = static_cast<size_t>(r);
  auto bad = [r](const char* what) {
    return invalid_argument(std::string("sampling: bad ") + what + " in row " + std::to_string(r));
  };
  if (!(b.temperature[i] >= 0.0f) || !std::isfinite(b.temperature[i])) return bad("temperature");
  if (!(b.top_p[i] > 0.0f && b.top_p[i] <= 1.0f)) return bad("top_p");
  if (!(b.min_p[i] >= 0.0f && b.min_p[i] <= 1.0f)) return bad("min_p");
  if (!(b.repetition_penalty[i] > 0.0f) || !std::isfinite(b.repetition_penalty[i])) {
    return bad("repetition_penalty");
  }
  if (!std::isfinite(b.frequency_penalty[i]) || !std::isfinite(b.presence_penalty[i])) {
    return bad("penalty");
  }
  if (b.top_k[i] < 0) return bad("top_k");
  auto [s, e] = csr_range(b.bias_indptr, r);
  for (int32_t k = s; k < e; ++k) {
    if (!std::isfinite(b.bias_values[static_cast<size_t>(k)])) return bad("logit_bias");
  }
  return ok_status();
}

void apply_logits_processing(float* row, int64_t vocab, const SamplingBatch& b, int32_t r) {
  if (has_mask(b, r)) {  // 0. grammar mask
    const int32_t* mask = mask_row(b, r);
    for (int64_t t = 0; t < vocab; ++t) {
      if (!mask_allows(mask, t)) row[t] = kNegInf;
    }
  }
  {  // 1. logit_bias
    auto [s, e] = csr_range(b.bias_indptr, r);
    for (int32_t i = s; i < e; ++i) row[b.bias_token_ids[i]] += b.bias_values[i];
  }
  {  // 2. min_tokens bans
    auto [s, e] = csr_range(b.banned_indptr, r);
    for (int32_t i = s; i < e; ++i) row[b.banned_token_ids[i]] = kNegInf;
  }
  auto [os, oe] = csr_range(b.output_tokens_indptr, r);
  std::vector<int32_t>& ids = t_scratch.ids;
  const float rep = b.repetition_penalty[r];
  if (rep != 1.0f) {  // 3. repetition, once per distinct token of prompt ∪ output
    auto [ps, pe] = csr_range(b.prompt_tokens_indptr, r);
    ids.assign(b.prompt_token_ids.begin() + ps, b.prompt_token_ids.begin() + pe);
    ids.insert(ids.end(), b.output_token_ids.begin() + os, b.output_token_ids.begin() + oe);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (int32_t t : ids) row[t] = row[t] > 0.0f ? row[t] / rep : row[t] * rep;
  }
  const float f = b.frequency_penalty[r], p = b.presence_penalty[r];
  if (f != 0.0f || p != 0.0f) {  // 4. frequency / presence, per distinct output token
    ids.assign(b.output_token_ids.begin() + os, b.output_token_ids.begin() + oe);
    std::sort(ids.begin(), ids.end());
    for (size_t i = 0; i < ids.size();) {
      size_t j = i;
      while (j < ids.size() && ids[j] == ids[i]) ++j;
      row[ids[i]] -= f * static_cast<float>(j - i) + p;
      i = j;
    }
  }
  const float temp = b.temperature[r];  // 5. temperature (greedy rows keep their logits)
  if (temp >= kGreedyTemperature && temp != 1.0f) {
    for (int64_t t = 0; t < vocab; ++t) row[t] /= temp;
  }
}

Status cpu_sample(const float* logits, int64_t vocab, const SamplingBatch& batch,
                  SamplerOutput* out, ThreadPool* pool) {
  KITE_RETURN_IF_ERROR(check_sampling_batch(batch, vocab));
  const int32_t rows = batch.num_rows();
  out->token_ids.assign(static_cast<size_t>(rows), 0);
  if (batch.max_num_logprobs >= 0) {
    const size_t top = static_cast<size_t>(rows) * static_cast<size_t>(batch.max_num_logprobs);
    out->logprobs.assign(static_cast<size_t>(rows), 0.0f);
    out->ranks.assign(static_cast<size_t>(rows), 0);
    out->top_token_ids.assign(top, -1);
    out->top_logprobs.assign(top, kNegInf);
  } else {
    out->logprobs.clear();
    out->ranks.clear();
    out->top_token_ids.clear();
    out->top_logprobs.clear();
  }
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      sample_one_row(logits, vocab, batch, static_cast<int32_t>(r), out);
    }
  };
  if (pool != nullptr && rows > 1) {
    pool->parallel_for(rows, run);
  } else {
    run(0, rows);
  }
  return ok_status();
}

}  // namespace kite
