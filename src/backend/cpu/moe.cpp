#include "backend/cpu/moe.h"

#include <cmath>
#include <cstring>

#include "backend/cpu/ops.h"
#include "core/check.h"

namespace kite::cpu {

void moe_route(const float* router_logits, int64_t n, int64_t num_experts, int top_k,
               bool renormalize, int32_t* experts, float* weights) {
  std::vector<float> p(static_cast<size_t>(num_experts));
  std::vector<char> taken(static_cast<size_t>(num_experts));
  for (int64_t t = 0; t < n; ++t) {
    softmax(router_logits + t * num_experts, 1, num_experts, p.data());
    std::fill(taken.begin(), taken.end(), 0);
    float sum = 0.f;
    for (int j = 0; j < top_k; ++j) {
      int64_t best = -1;
      for (int64_t e = 0; e < num_experts; ++e) {
        if (taken[static_cast<size_t>(e)] != 0) continue;
        const float v = p[static_cast<size_t>(e)];
        if (best < 0 || v > p[static_cast<size_t>(best)] ||
            (std::isnan(p[static_cast<size_t>(best)]) && !std::isnan(v))) {
          best = e;
        }
      }
      taken[static_cast<size_t>(best)] = 1;
      experts[t * top_k + j] = static_cast<int32_t>(best);
      weights[t * top_k + j] = p[static_cast<size_t>(best)];
      sum += p[static_cast<size_t>(best)];
    }
    if (renormalize) {
      for (int j = 0; j < top_k; ++j) weights[t * top_k + j] /= sum;
    }
  }
}

void moe(const float* x, int64_t n, int64_t hidden, int64_t inter,
         std::span<const TensorView> router, std::span<const MoeExpert> experts, int top_k,
         bool renormalize, float* out, MoeScratch* s, ThreadPool* pool) {
  const auto num_experts = static_cast<int64_t>(experts.size());
  const int64_t rows = n * top_k;
  KITE_CHECK(top_k > 0 && top_k <= num_experts) << "top_k " << top_k;
  auto grow = [](auto& v, int64_t size) {
    if (v.size() < static_cast<size_t>(size)) v.resize(static_cast<size_t>(size));
  };
  grow(s->router_logits, n * num_experts);
  grow(s->experts, rows);
  grow(s->weights, rows);
  grow(s->row_token, rows);
  grow(s->slot_row, rows);
  grow(s->xs, rows * hidden);
  grow(s->gate_up, rows * 2 * inter);
  grow(s->act, rows * inter);
  grow(s->ys, rows * hidden);
  s->offsets.assign(static_cast<size_t>(num_experts + 1), 0);

  // Router logits and gating.
  float* logits = s->router_logits.data();
  int64_t col = 0;
  for (const TensorView& part : router) {
    linear(x, n, hidden, part, nullptr, logits + col, num_experts, pool);
    col += part.dim(0);
  }
  KITE_CHECK(col == num_experts) << "router rows " << col << " for " << num_experts << " experts";
  moe_route(logits, n, num_experts, top_k, renormalize, s->experts.data(), s->weights.data());

  // Permutation: a counting sort of the (token, j) pairs by expert, tokens ascending within one.
  const int32_t* chosen = s->experts.data();
  int64_t* offsets = s->offsets.data();
  int32_t* row_token = s->row_token.data();
  int64_t* slot_row = s->slot_row.data();
  for (int64_t i = 0; i < rows; ++i) ++offsets[chosen[i] + 1];
  for (int64_t e = 0; e < num_experts; ++e) offsets[e + 1] += offsets[e];
  std::vector<int64_t> fill(s->offsets.begin(), s->offsets.end() - 1);
  for (int64_t i = 0; i < rows; ++i) {
    const int64_t r = fill[static_cast<size_t>(chosen[i])]++;
    row_token[r] = static_cast<int32_t>(i / top_k);
    slot_row[i] = r;
  }
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(s->xs.data() + r * hidden, x + row_token[r] * hidden,
                static_cast<size_t>(hidden) * sizeof(float));
  }

  // Each expert's GEMMs over its rows; experts no token chose are skipped.
  for (int64_t e = 0; e < num_experts; ++e) {
    const int64_t begin = offsets[e];
    const int64_t count = offsets[e + 1] - begin;
    if (count == 0) continue;
    const MoeExpert& ex = experts[static_cast<size_t>(e)];
    float* gu = s->gate_up.data() + begin * 2 * inter;
    int64_t gu_col = 0;
    for (const TensorView& part : ex.gate_up) {
      linear(s->xs.data() + begin * hidden, count, hidden, part, nullptr, gu + gu_col, 2 * inter,
             pool);
      gu_col += part.dim(0);
    }
    float* act = s->act.data() + begin * inter;
    silu_mul(gu, count, inter, act, pool);
    linear(act, count, inter, *ex.down, nullptr, s->ys.data() + begin * hidden, hidden, pool);
  }

  // Weighted combine, in the order of each token's choices.
  for (int64_t t = 0; t < n; ++t) {
    float* o = out + t * hidden;
    std::fill(o, o + hidden, 0.f);
    for (int j = 0; j < top_k; ++j) {
      const float w = s->weights.data()[t * top_k + j];
      const float* y = s->ys.data() + slot_row[t * top_k + j] * hidden;
      for (int64_t d = 0; d < hidden; ++d) o[d] += w * y[d];
    }
  }
}

}  // namespace kite::cpu
