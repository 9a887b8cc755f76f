// The CPU mixture-of-experts reference (backend/cpu/moe.h): routing (top-k order, ties,
// renormalization), the permuted per-expert GEMMs against a direct per-token sum, and a token's
// output independent of the other tokens of the step.
#include "backend/cpu/moe.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "core/thread_pool.h"

namespace kite::cpu {
namespace {

TEST(MoeRouteTest, TopKOrderTiesAndRenormalization) {
  // Token 0: experts 2 > 0 > 1 = 3. Token 1: all equal (ties go to the lower index).
  const std::vector<float> logits = {1.f, 0.f, 2.f, 0.f, 0.5f, 0.5f, 0.5f, 0.5f};
  std::vector<int32_t> experts(4);
  std::vector<float> weights(4);
  moe_route(logits.data(), 2, 4, 2, false, experts.data(), weights.data());
  EXPECT_EQ(experts, (std::vector<int32_t>{2, 0, 0, 1}));
  const double z = std::exp(1.0) + 2 + std::exp(2.0);
  EXPECT_NEAR(weights[0], std::exp(2.0) / z, 1e-7);
  EXPECT_NEAR(weights[1], std::exp(1.0) / z, 1e-7);
  EXPECT_NEAR(weights[2], 0.25, 1e-7);
  moe_route(logits.data(), 2, 4, 2, true, experts.data(), weights.data());
  EXPECT_NEAR(weights[0], std::exp(2.0) / (std::exp(2.0) + std::exp(1.0)), 1e-7);
  EXPECT_NEAR(weights[0] + weights[1], 1.0, 1e-7);
  EXPECT_NEAR(weights[2], 0.5, 1e-7);
  // A NaN logit makes every probability NaN: the choice is still top_k distinct valid experts.
  const std::vector<float> nan_first = {NAN, 0.f, 1.f};
  moe_route(nan_first.data(), 1, 3, 2, false, experts.data(), weights.data());
  EXPECT_EQ(experts[0], 0);
  EXPECT_EQ(experts[1], 1);
}

struct RandomMoe {
  int64_t hidden = 24, inter = 10, num_experts = 6;
  int top_k = 2;
  std::vector<float> router;                // [E, H]
  std::vector<std::vector<float>> gate_up;  // per expert [2I, H]
  std::vector<std::vector<float>> down;     // per expert [H, I]
  std::vector<TensorView> router_view;
  std::vector<std::vector<TensorView>> gate_up_views;
  std::vector<TensorView> down_views;
  std::vector<MoeExpert> experts;

  explicit RandomMoe(uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> u(-0.5f, 0.5f);
    auto fill = [&](int64_t n) {
      std::vector<float> v(static_cast<size_t>(n));
      for (float& x : v) x = u(rng);
      return v;
    };
    router = fill(num_experts * hidden);
    for (int64_t e = 0; e < num_experts; ++e) {
      gate_up.push_back(fill(2 * inter * hidden));
      down.push_back(fill(hidden * inter));
    }
    router_view.push_back(TensorView(router.data(), DType::kF32, {num_experts, hidden}));
    for (int64_t e = 0; e < num_experts; ++e) {
      const auto i = static_cast<size_t>(e);
      // gate and up as two row blocks, as a checkpoint's separate tensors bind.
      gate_up_views.push_back(
          {TensorView(gate_up[i].data(), DType::kF32, {inter, hidden}),
           TensorView(gate_up[i].data() + inter * hidden, DType::kF32, {inter, hidden})});
      down_views.push_back(TensorView(down[i].data(), DType::kF32, {hidden, inter}));
    }
    for (size_t e = 0; e < static_cast<size_t>(num_experts); ++e) {
      experts.push_back(MoeExpert{gate_up_views[e], &down_views[e]});
    }
  }

  std::vector<float> run(const std::vector<float>& x, int64_t n, bool renormalize,
                         ThreadPool* pool) {
    std::vector<float> out(static_cast<size_t>(n * hidden));
    MoeScratch scratch;
    moe(x.data(), n, hidden, inter, router_view, experts, top_k, renormalize, out.data(), &scratch,
        pool);
    return out;
  }

  // Every expert computed for every token in float64, combined with the routing weights.
  std::vector<double> reference(const std::vector<float>& x, int64_t n, bool renormalize) {
    std::vector<double> out(static_cast<size_t>(n * hidden), 0.0);
    for (int64_t t = 0; t < n; ++t) {
      const float* xt = x.data() + t * hidden;
      std::vector<double> p(static_cast<size_t>(num_experts));
      double mx = -1e300, z = 0;
      for (int64_t e = 0; e < num_experts; ++e) {
        double s = 0;
        for (int64_t k = 0; k < hidden; ++k) s += double{router[e * hidden + k]} * xt[k];
        p[static_cast<size_t>(e)] = s;
        mx = std::max(mx, s);
      }
      for (double& v : p) z += (v = std::exp(v - mx));
      for (double& v : p) v /= z;
      std::vector<int64_t> order(static_cast<size_t>(num_experts));
      for (int64_t e = 0; e < num_experts; ++e) order[static_cast<size_t>(e)] = e;
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        return p[static_cast<size_t>(a)] > p[static_cast<size_t>(b)];
      });
      double sum = 0;
      for (int j = 0; j < top_k; ++j) sum += p[static_cast<size_t>(order[static_cast<size_t>(j)])];
      for (int j = 0; j < top_k; ++j) {
        const auto e = static_cast<size_t>(order[static_cast<size_t>(j)]);
        const double w = p[e] / (renormalize ? sum : 1.0);
        std::vector<double> act(static_cast<size_t>(inter));
        for (int64_t i = 0; i < inter; ++i) {
          double g = 0, up = 0;
          for (int64_t k = 0; k < hidden; ++k) {
            g += double{gate_up[e][static_cast<size_t>(i * hidden + k)]} * xt[k];
            up += double{gate_up[e][static_cast<size_t>((inter + i) * hidden + k)]} * xt[k];
          }
          act[static_cast<size_t>(i)] = g / (1 + std::exp(-g)) * up;
        }
        for (int64_t d = 0; d < hidden; ++d) {
          double y = 0;
          for (int64_t i = 0; i < inter; ++i) {
            y += double{down[e][static_cast<size_t>(d * inter + i)]} * act[static_cast<size_t>(i)];
          }
          out[static_cast<size_t>(t * hidden + d)] += w * y;
        }
      }
    }
    return out;
  }
};

TEST(MoeTest, MatchesPerTokenReferenceAndIgnoresTheRestOfTheBatch) {
  RandomMoe m(7);
  ThreadPool pool(3);
  const int64_t n = 9;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  std::vector<float> x(static_cast<size_t>(n * m.hidden));
  for (float& v : x) v = u(rng);
  for (bool renormalize : {false, true}) {
    const std::vector<float> all = m.run(x, n, renormalize, &pool);
    const std::vector<double> ref = m.reference(x, n, renormalize);
    double worst = 0;
    for (size_t i = 0; i < all.size(); ++i) worst = std::max(worst, std::fabs(all[i] - ref[i]));
    EXPECT_LT(worst, 1e-5) << "renormalize " << renormalize;
    // Each token alone (other experts chosen by the batch, other row counts per expert, one
    // thread): bit-identical.
    ThreadPool one(1);
    for (int64_t t = 0; t < n; ++t) {
      std::vector<float> xt(x.begin() + t * m.hidden, x.begin() + (t + 1) * m.hidden);
      const std::vector<float> alone = m.run(xt, 1, renormalize, &one);
      EXPECT_EQ(std::memcmp(alone.data(), all.data() + t * m.hidden,
                            static_cast<size_t>(m.hidden) * sizeof(float)),
                0)
          << "token " << t;
    }
  }
  // top_k = every expert.
  m.top_k = static_cast<int>(m.num_experts);
  const std::vector<float> dense = m.run(x, n, true, &pool);
  const std::vector<double> ref = m.reference(x, n, true);
  for (size_t i = 0; i < dense.size(); ++i) EXPECT_NEAR(dense[i], ref[i], 1e-5);
}

}  // namespace
}  // namespace kite::cpu
