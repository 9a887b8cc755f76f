// The communicator contract (SingleCommunicator, agree) and tensor parallelism of the CPU runner
// run in one process: ranks as threads over an in-process communicator, whose logits must equal
// one rank's (the all-reduce changes only the order of float sums). mpirun runs of `kite
// generate` are in tests/e2e/test_tensor_parallel.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/cpu_model_runner.h"
#include "backend/cpu/sequence_runner.h"
#include "backend/cpu/tensor_parallel.h"
#include "checkpoint/dequant.h"
#include "models/load.h"
#include "models/model_weights.h"
#include "models/registry.h"
#include "models/tensor_parallel.h"
#include "parallel/communicator.h"
#include "parallel/launch.h"

namespace kite {
namespace {

// Ranks as threads: each collective publishes its buffer, waits for every rank, reads the
// others', and waits again before anyone reuses a buffer.
struct ThreadWorld {
  explicit ThreadWorld(int n) : size(n), sync(n), ptrs(static_cast<size_t>(n)) {}
  int size;
  std::barrier<> sync;
  std::vector<const void*> ptrs;
};

class ThreadCommunicator final : public parallel::Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<ThreadWorld> w, int rank) : w_(std::move(w)), rank_(rank) {}
  int rank() const override { return rank_; }
  int world_size() const override { return w_->size; }
  std::string_view name() const override { return "threads"; }
  Status all_reduce_sum(float* data, int64_t count) override {
    publish(data);
    std::vector<float> sum(static_cast<size_t>(count), 0.f);
    for (const void* p : w_->ptrs) {
      const auto* f = static_cast<const float*>(p);
      for (int64_t i = 0; i < count; ++i) sum[static_cast<size_t>(i)] += f[i];
    }
    w_->sync.arrive_and_wait();
    std::copy(sum.begin(), sum.end(), data);
    return ok_status();
  }
  Status broadcast(void* data, int64_t bytes, int root, parallel::Wait /*wait*/) override {
    publish(data);
    if (rank_ != root) std::memcpy(data, w_->ptrs[static_cast<size_t>(root)], bytes);
    w_->sync.arrive_and_wait();
    return ok_status();
  }
  Status all_gather(const void* in, int64_t bytes, void* out) override {
    publish(in);
    for (int r = 0; r < w_->size; ++r) {
      std::memcpy(static_cast<char*>(out) + r * bytes, w_->ptrs[static_cast<size_t>(r)], bytes);
    }
    w_->sync.arrive_and_wait();
    return ok_status();
  }
  Status send(const void*, int64_t, int) override { return unimplemented("send"); }
  Status recv(void*, int64_t, int) override { return unimplemented("recv"); }
  Result<std::shared_ptr<parallel::Communicator>> split(int, int) override {
    return unimplemented("split");
  }
  void abort(int /*code*/) override { std::abort(); }

 private:
  void publish(const void* p) {
    w_->ptrs[static_cast<size_t>(rank_)] = p;
    w_->sync.arrive_and_wait();
  }
  std::shared_ptr<ThreadWorld> w_;
  int rank_;
};

const std::string kTiny = std::string(KITE_SOURCE_DIR) + "/tests/data/models/tinystories-656k";

TEST(SingleCommunicator, CollectivesOfOneRank) {
  parallel::SingleCommunicator c;
  float x[3] = {1, 2, 3};
  ASSERT_TRUE(c.all_reduce_sum(x, 3).ok());
  EXPECT_EQ(x[2], 3.f);
  int64_t in = 7, out = 0;
  ASSERT_TRUE(c.all_gather(&in, sizeof(in), &out).ok());
  EXPECT_EQ(out, 7);
  EXPECT_FALSE(c.broadcast(x, 4, 1, parallel::Wait::kBounded).ok());  // no rank 1
}

TEST(SelfLaunch, CommandStartsTheRanksOfThisCommandLine) {
  const std::vector<std::string> args = {"serve", "m", "--tensor-parallel-size", "2"};
  EXPECT_EQ(parallel::self_launch_command("/usr/bin/mpirun", 2, "/opt/kite", args, false),
            (std::vector<std::string>{"/usr/bin/mpirun", "-np", "2", "--oversubscribe", "--bind-to",
                                      "none", "/opt/kite", "serve", "m", "--tensor-parallel-size",
                                      "2"}));
  // Root (containers) adds the flag mpirun demands, and only then.
  const auto root = parallel::self_launch_command("mpirun", 4, "/opt/kite", args, true);
  EXPECT_EQ(std::count(root.begin(), root.end(), "--allow-run-as-root"), 1);
  EXPECT_EQ(root[2], "4");
}

TEST(Agree, EveryRankLearnsAFailure) {
  auto world = std::make_shared<ThreadWorld>(3);
  std::vector<Status> got(3);
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] {
      ThreadCommunicator c(world, r);
      const Status local = r == 1 ? invalid_argument("bad shard") : ok_status();
      got[static_cast<size_t>(r)] = parallel::agree(c, local, "loading");
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(got[1].code(), StatusCode::kInvalidArgument);
  for (int r : {0, 2}) {
    EXPECT_EQ(got[static_cast<size_t>(r)].code(), StatusCode::kAborted);
    EXPECT_NE(got[static_cast<size_t>(r)].message().find("rank 1 failed"), std::string::npos);
  }
}

TEST(TpLayout, SplitsAndReplicatesHeads) {
  ModelConfig c;
  c.num_attention_heads = 12;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.intermediate_size = 200;
  c.vocab_size = 1001;
  auto t = cpu::make_tp_layout(c, 3, 4);
  ASSERT_TRUE(t.ok()) << t.status().to_string();
  EXPECT_EQ(t->num_q_heads, 3);
  EXPECT_EQ(t->q_head_begin, 9);
  EXPECT_EQ(t->num_kv_heads, 1);  // 2 KV heads over 4 ranks: replicated
  EXPECT_EQ(t->kv_head_begin, 1);
  EXPECT_EQ(t->vocab_stride, 251);
  EXPECT_EQ(t->vocab_begin, 753);
  EXPECT_EQ(t->vocab_rows, 248);  // the last rank's shorter shard
  EXPECT_EQ(cpu::make_tp_layout(c, 0, 5).status().code(), StatusCode::kInvalidArgument);
  c.num_key_value_heads = 3;  // 3 KV heads: 2 ranks neither divide nor are a multiple
  EXPECT_EQ(cpu::make_tp_layout(c, 0, 2).status().code(), StatusCode::kInvalidArgument);
  c.num_key_value_heads = 12;
  c.intermediate_size = 201;
  EXPECT_EQ(cpu::make_tp_layout(c, 0, 2).status().code(), StatusCode::kInvalidArgument);
}

// The model layer's cut of bound weights (the CUDA backend's shard): every weight gets the
// shape a graph of the rank's local config declares, and the ranks' row-parallel columns put side
// by side are the full matrix.
TEST(ModelShard, BoundWeightsTakeTheLocalGraphsShapes) {
  auto store = load_model(kTiny, {});
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  const WeightStore& ws = **store;
  const ModelConfig& c = ws.config();
  auto graph = build_model_graph(c);
  ASSERT_TRUE(graph.ok());
  TensorLookup lookup = [&ws](std::string_view name) { return ws.find(name); };
  std::vector<std::vector<float>> o_proj_cols(2);
  int64_t o_rows = 0, o_cols = 0;
  WeightId o_id = kNoWeight;
  for (int rank = 0; rank < 2; ++rank) {
    auto bound = bind_weights(*graph, lookup);
    ASSERT_TRUE(bound.ok()) << bound.status().to_string();
    auto t = make_tp_layout(c, rank, 2);
    ASSERT_TRUE(t.ok()) << t.status().to_string();
    std::deque<std::vector<float>> owned;
    ASSERT_TRUE(shard_model_weights(*graph, c, *t, &*bound, &owned).ok());
    auto local = build_model_graph(local_config(c, *t));
    ASSERT_TRUE(local.ok());
    ASSERT_EQ(local->weights.size(), graph->weights.size());
    for (size_t i = 0; i < local->weights.size(); ++i) {
      const Weight& w = bound->weights[i];
      if (!w.present()) continue;
      int64_t rows = 0;
      for (const TensorView& p : w.parts) rows += p.dim(0);
      EXPECT_EQ(rows, local->weights[i].rows) << local->weights[i].name;
      if (w.parts[0].ndim == 2) {
        EXPECT_EQ(w.parts[0].dim(1), local->weights[i].cols) << local->weights[i].name;
      }
      if (o_id == kNoWeight && graph->weights[i].shard == ShardDim::kRow) {
        o_id = static_cast<WeightId>(i);
      }
    }
    ASSERT_NE(o_id, kNoWeight);
    const TensorView& part = bound->weights[static_cast<size_t>(o_id)].parts[0];
    ASSERT_EQ(part.dtype, DType::kF32);
    o_rows = part.dim(0);
    o_cols = part.dim(1);
    o_proj_cols[static_cast<size_t>(rank)].assign(part.as<float>(),
                                                  part.as<float>() + o_rows * o_cols);
  }
  // Rank 0's columns then rank 1's, row by row, are the checkpoint's rows.
  auto full = bind_weights(*graph, lookup);
  ASSERT_TRUE(full.ok());
  auto whole = dequantize_to_f32(full->weights[static_cast<size_t>(o_id)].parts[0]);
  ASSERT_TRUE(whole.ok());
  for (int64_t r = 0; r < o_rows; ++r) {
    for (int rank = 0; rank < 2; ++rank) {
      for (int64_t k = 0; k < o_cols; ++k) {
        ASSERT_EQ(o_proj_cols[static_cast<size_t>(rank)][static_cast<size_t>(r * o_cols + k)],
                  (*whole)[static_cast<size_t>(r * 2 * o_cols + rank * o_cols + k)])
            << r << " " << rank << " " << k;
      }
    }
  }
}

// Prefill then decode through rank 0's runner while the other ranks run run_worker().
std::vector<std::vector<float>> run_sequence(ModelRunner* runner) {
  KvCacheConfig cfg;
  cfg.block_size = 16;
  cfg.memory_budget_bytes = 1 << 20;
  auto blocks = runner->determine_num_kv_blocks(cfg);
  EXPECT_TRUE(blocks.ok()) << blocks.status().to_string();
  EXPECT_TRUE(runner->allocate_kv_cache(*blocks, cfg).ok());
  SequenceRunner seq(runner, cfg.block_size, *blocks);
  std::vector<std::vector<float>> out;
  const std::vector<int32_t> prompt = {1, 5, 9, 200, 31, 7, 1500, 42};
  auto logits = seq.feed(prompt, /*all_logits=*/true);
  EXPECT_TRUE(logits.ok()) << logits.status().to_string();
  out.push_back(*logits);
  for (int32_t t : {11, 12, 13}) {
    auto l = seq.feed(std::vector<int32_t>{t});
    EXPECT_TRUE(l.ok());
    out.push_back(*l);
  }
  return out;
}

class TensorParallelRunner : public ::testing::TestWithParam<int> {};

TEST_P(TensorParallelRunner, LogitsEqualOneRank) {
  const int n = GetParam();
  auto store = load_model(kTiny, {});
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  std::shared_ptr<const WeightStore> weights = std::move(*store);
  CpuRunnerOptions one_options;
  one_options.num_threads = 1;
  auto one = CpuModelRunner::create(weights, one_options);
  ASSERT_TRUE(one.ok());
  const auto want = run_sequence(one->get());

  auto world = std::make_shared<ThreadWorld>(n);
  std::vector<std::vector<float>> got;
  std::vector<Status> worker_status(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) {
    threads.emplace_back([&, r] {
      CpuRunnerOptions o;
      o.num_threads = 1;
      o.comm = std::make_shared<ThreadCommunicator>(world, r);
      auto runner = CpuModelRunner::create(weights, o);
      ASSERT_TRUE(runner.ok()) << runner.status().to_string();
      if (r == 0) {
        got = [&] {
          auto rank0 = std::move(*runner);  // its destructor releases the workers
          return run_sequence(rank0.get());
        }();
      } else {
        worker_status[static_cast<size_t>(r)] = (*runner)->run_worker();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 1; r < n; ++r) EXPECT_TRUE(worker_status[static_cast<size_t>(r)].ok());
  ASSERT_EQ(got.size(), want.size());
  for (size_t s = 0; s < want.size(); ++s) {
    ASSERT_EQ(got[s].size(), want[s].size());
    float max_diff = 0.f;
    for (size_t i = 0; i < want[s].size(); ++i) {
      max_diff = std::max(max_diff, std::abs(got[s][i] - want[s][i]));
    }
    EXPECT_LT(max_diff, 1e-4f) << "step " << s;  // float sums in another order
  }
}

// 2 ranks split the 4 KV heads; 8 ranks replicate each on 2 ranks (1 query head per rank).
INSTANTIATE_TEST_SUITE_P(Ranks, TensorParallelRunner, ::testing::Values(2, 4, 8));

}  // namespace
}  // namespace kite
