// The CUDA backend's NCCL communicator (backend/cuda/nccl_communicator.h) with one rank, and the
// CUDA runner on the worker path (CudaRunnerOptions::comm, connect_ranks) against the plain
// runner; a rank of two's shard, short of any collective.
// One GPU suffices; without one every test that needs it is skipped (visibly). Several ranks
// (all-reduce sums, a dead peer ending every rank) need several GPUs: docs/parallel.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/ops.h"
#include "backend/cpu/sequence_runner.h"
#include "backend/cuda/cuda_model_runner.h"
#include "backend/cuda/nccl_communicator.h"
#include "gpu_test_util.h"
#include "models/load.h"
#include "parallel/communicator.h"

namespace kite::cuda::test {
namespace {

// Sets an environment variable for a scope and restores it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    if (value != nullptr) {
      setenv(name, value, 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_, old_.c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

// Rank 0 of a world of two whose collectives must not be called (the runner makes none before
// connect_ranks()).
class TwoRankWorld final : public parallel::Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  std::string_view name() const override { return "fake"; }
  Status all_reduce_sum(float*, int64_t) override { return internal_error("used"); }
  Status broadcast(void*, int64_t, int, parallel::Wait) override { return internal_error("used"); }
  Status all_gather(const void*, int64_t, void*) override { return internal_error("used"); }
  Status send(const void*, int64_t, int) override { return internal_error("used"); }
  Status recv(void*, int64_t, int) override { return internal_error("used"); }
  Result<std::shared_ptr<Communicator>> split(int, int) override { return internal_error("used"); }
  [[noreturn]] void abort(int code) override { std::_Exit(code); }
};

std::shared_ptr<parallel::Communicator> one_rank() {
  return std::make_shared<parallel::SingleCommunicator>();
}

TEST(NcclOptions, TimeoutsComeFromTheEnvironment) {
  {
    ScopedEnv a("KITE_COLLECTIVE_TIMEOUT_S", "7");
    ScopedEnv b("KITE_PARALLEL_INIT_TIMEOUT_S", "3");
    const NcclOptions o = nccl_options_from_env();
    EXPECT_EQ(o.collective_timeout.count(), 7000);
    EXPECT_EQ(o.init_timeout.count(), 3000);
  }
  {
    ScopedEnv a("KITE_COLLECTIVE_TIMEOUT_S", nullptr);
    ScopedEnv b("KITE_PARALLEL_INIT_TIMEOUT_S", "0");  // not a bound: the default
    const NcclOptions o = nccl_options_from_env();
    EXPECT_EQ(o.collective_timeout.count(), 300'000);
    EXPECT_EQ(o.init_timeout.count(), 120'000);
  }
}

TEST(NcclOptions, LocalRankFromTheLauncher) {
  ScopedEnv a("OMPI_COMM_WORLD_LOCAL_RANK", nullptr);
  ScopedEnv b("SLURM_LOCALID", nullptr);
  ScopedEnv c("MPI_LOCALRANKID", nullptr);
  ScopedEnv d("PMI_LOCAL_RANK", nullptr);
  EXPECT_EQ(local_rank_from_env(5), 5);
  {
    ScopedEnv e("SLURM_LOCALID", "2");
    EXPECT_EQ(local_rank_from_env(5), 2);
    ScopedEnv f("OMPI_COMM_WORLD_LOCAL_RANK", "3");  // Open MPI's first
    EXPECT_EQ(local_rank_from_env(5), 3);
  }
}

TEST(NcclCommunicator, MoreRanksThanGpusIsAClearError) {
  KITE_REQUIRE_GPU();
  int count = 0;
  KITE_TEST_CUDA(cudaGetDeviceCount(&count));
  auto first = device_for_local_rank(0);
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  EXPECT_EQ(*first, 0);
  auto past = device_for_local_rank(count);
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(past.status().message().find("rank(s) per node"), std::string::npos)
      << past.status().to_string();
}

TEST(NcclCommunicator, OneRankCollectivesLeaveTheDataAsItIs) {
  KITE_REQUIRE_GPU();
  ScopedEnv nvls("NCCL_NVLS_ENABLE", nullptr);
  KITE_TEST_CUDA(cudaSetDevice(0));
  cudaStream_t stream = nullptr;
  KITE_TEST_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  NcclOptions options;
  options.init_timeout = std::chrono::milliseconds(30'000);
  options.collective_timeout = std::chrono::milliseconds(30'000);
  auto comm = NcclCommunicator::create(one_rank(), 0, stream, options);
  ASSERT_TRUE(comm.ok()) << comm.status().to_string();
  NcclCommunicator& c = **comm;
  EXPECT_EQ(c.name(), "nccl");
  EXPECT_EQ(c.rank(), 0);
  EXPECT_EQ(c.world_size(), 1);
  ASSERT_NE(std::getenv("NCCL_NVLS_ENABLE"), nullptr);
  EXPECT_STREQ(std::getenv("NCCL_NVLS_ENABLE"), "0");

  const std::vector<float> host = {1.5f, -2.f, 3.25f, 0.f, 7.f};
  const int64_t n = static_cast<int64_t>(host.size());
  DeviceArray<float> a(host);
  DeviceArray<float> gathered(host.size());
  std::vector<uint16_t> bf = {0x3f80, 0x4000, 0xc040};  // 1, 2, -3
  DeviceArray<uint16_t> b(bf);
  ASSERT_TRUE(c.all_reduce_sum(a.get(), n).ok());
  ASSERT_TRUE(c.all_reduce_sum(b.get(), 3, DType::kBF16).ok());
  ASSERT_TRUE(c.broadcast(a.get(), n * 4, 0).ok());
  ASSERT_TRUE(c.all_gather(a.get(), n * 4, gathered.get()).ok());
  const Status synced = c.synchronize();
  ASSERT_TRUE(synced.ok()) << synced.to_string();
  EXPECT_EQ(a.download(), host);
  EXPECT_EQ(gathered.download(), host);
  EXPECT_EQ(b.download(), bf);
  // Misuse is an error, not a hang.
  EXPECT_EQ(c.broadcast(a.get(), 4, 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.send(a.get(), 4, 0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.recv(a.get(), 4, 1).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.all_reduce_sum(a.get(), 1, DType::kI32).code(), StatusCode::kInvalidArgument);
  // Sub-groups are not built on CUDA (pipeline stages are refused there): a clear error.
  EXPECT_EQ(c.split(0, 0).status().code(), StatusCode::kUnimplemented);
  comm->reset();
  KITE_TEST_CUDA(cudaStreamDestroy(stream));
}

// The shipped TinyStories model through the CUDA runner with and without the worker path's
// communicator (one rank): the same kernels run and the collectives do nothing, so the greedy
// tokens are equal and the logits too (to 1e-6 relative L2, in case a kernel's reduction order
// varies) over a prefill and decode steps (CUDA-graph replays).
TEST(CudaRunnerWorkerPath, OneRankEqualsThePlainRunner) {
  KITE_REQUIRE_GPU();
  const std::string path = std::string(KITE_SOURCE_DIR) + "/tests/data/models/tinystories-656k";
  auto store = load_model(path, LoadOptions{});
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  std::shared_ptr<const WeightStore> ws(std::move(*store));
  const ModelConfig& cfg = ws->config();
  WeightLookup lookup = [&](std::string_view name) { return ws->get(name); };
  KvCacheConfig kc;
  kc.max_num_seqs = 4;
  kc.max_num_batched_tokens = 128;
  CudaRunnerOptions plain_opts;
  plain_opts.max_graph_batch = 4;
  CudaRunnerOptions worker_opts = plain_opts;
  worker_opts.comm = one_rank();
  auto plain = CudaModelRunner::create(cfg, lookup, plain_opts);
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  auto worker = CudaModelRunner::create(cfg, lookup, worker_opts);
  ASSERT_TRUE(worker.ok()) << worker.status().to_string();
  EXPECT_EQ((*worker)->device_communicator(), nullptr);  // made by connect_ranks()
  const Status connected = (*worker)->connect_ranks();
  ASSERT_TRUE(connected.ok()) << connected.to_string();
  EXPECT_EQ((*plain)->device_communicator(), nullptr);
  ASSERT_NE((*worker)->device_communicator(), nullptr);
  EXPECT_EQ((*worker)->device_communicator()->name(), "nccl");
  constexpr int64_t kBlocks = 32;
  ASSERT_TRUE((*plain)->allocate_kv_cache(kBlocks, kc).ok());
  ASSERT_TRUE((*worker)->allocate_kv_cache(kBlocks, kc).ok());
  SequenceRunner sp(plain->get(), kc.block_size, kBlocks);
  SequenceRunner sw(worker->get(), kc.block_size, kBlocks);
  std::vector<int32_t> next = {1, 80, 147, 201, 282, 57};  // BOS "Once upon a time"
  for (int step = 0; step < 24; ++step) {
    auto lp = sp.feed(next);
    auto lw = sw.feed(next);
    ASSERT_TRUE(lp.ok()) << lp.status().to_string();
    ASSERT_TRUE(lw.ok()) << lw.status().to_string();
    // The same kernels on the same inputs: equal up to any nondeterministic reduction order.
    const ErrorStats e = compare(*lw, *lp);
    EXPECT_LT(e.rel_l2, 1e-6) << "step " << step << " " << e.to_string();
    ASSERT_EQ(cpu::argmax(lw->data(), cfg.vocab_size), cpu::argmax(lp->data(), cfg.vocab_size))
        << "step " << step;
    if (step > 0) {
      EXPECT_EQ((*plain)->last_forward_used_graph(), (*worker)->last_forward_used_graph());
    }
    next = {cpu::argmax(lp->data(), cfg.vocab_size)};
  }
}

// The several-ranks path with one rank (force_tensor_parallel_path): KV sizing and allocation
// through rank 0's call protocol and the minimum over ranks, the LM head into the rank's
// logits and the gather into the full ones (in the decode graphs too, and for an eager step of
// more logits rows than max_num_seqs), the bounded synchronize after each step. float32 compute
// (the shipped model's F32 checkpoint, generic attention): both runners run the same kernels, so
// the logits agree to 1e-6 and the greedy tokens exactly.
TEST(CudaRunnerWorkerPath, TensorParallelPathOfOneRankEqualsThePlainRunner) {
  KITE_REQUIRE_GPU();
  const std::string path = std::string(KITE_SOURCE_DIR) + "/tests/data/models/tinystories-656k";
  auto store = load_model(path, LoadOptions{});
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  std::shared_ptr<const WeightStore> ws(std::move(*store));
  const ModelConfig& cfg = ws->config();
  WeightLookup lookup = [&](std::string_view name) { return ws->get(name); };
  KvCacheConfig kc;
  kc.max_num_seqs = 4;
  kc.max_num_batched_tokens = 128;
  kc.memory_budget_bytes = 64ll << 20;
  CudaRunnerOptions plain_opts;
  plain_opts.dtype = DType::kF32;
  plain_opts.kv_cache_dtype = DType::kF32;
  plain_opts.max_graph_batch = 4;
  CudaRunnerOptions tp_opts = plain_opts;
  tp_opts.comm = one_rank();
  tp_opts.force_tensor_parallel_path = true;
  auto plain = CudaModelRunner::create(cfg, lookup, plain_opts);
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  auto tp = CudaModelRunner::create(cfg, lookup, tp_opts);
  ASSERT_TRUE(tp.ok()) << tp.status().to_string();
  EXPECT_FALSE((*tp)->supports_pooling());
  const Status connected = (*tp)->connect_ranks();
  ASSERT_TRUE(connected.ok()) << connected.to_string();
  auto bp = (*plain)->determine_num_kv_blocks(kc);
  auto bt = (*tp)->determine_num_kv_blocks(kc);
  ASSERT_TRUE(bp.ok()) << bp.status().to_string();
  ASSERT_TRUE(bt.ok()) << bt.status().to_string();
  EXPECT_EQ(*bt, *bp);
  const int64_t blocks = std::min<int64_t>(*bp, 64);
  ASSERT_TRUE((*plain)->allocate_kv_cache(blocks, kc).ok());
  const Status allocated = (*tp)->allocate_kv_cache(blocks, kc);
  ASSERT_TRUE(allocated.ok()) << allocated.to_string();
  ASSERT_FALSE((*tp)->decode_graph_sizes().empty());
  SequenceRunner sp(plain->get(), kc.block_size, blocks);
  SequenceRunner st(tp->get(), kc.block_size, blocks);
  // Every prompt token's logits: 6 rows, more than max_num_seqs (the eager "big" buffers).
  std::vector<int32_t> next = {1, 80, 147, 201, 282, 57};
  for (int step = 0; step < 24; ++step) {
    const bool all = step == 0;
    auto lp = sp.feed(next, all);
    auto lt = st.feed(next, all);
    ASSERT_TRUE(lp.ok()) << lp.status().to_string();
    ASSERT_TRUE(lt.ok()) << lt.status().to_string();
    ASSERT_EQ(lp->size(), lt->size());
    const ErrorStats e = compare(*lt, *lp);
    EXPECT_LT(e.rel_l2, 1e-6) << "step " << step << " " << e.to_string();
    const float* last = lp->data() + lp->size() - static_cast<size_t>(cfg.vocab_size);
    const float* last_tp = lt->data() + lt->size() - static_cast<size_t>(cfg.vocab_size);
    ASSERT_EQ(cpu::argmax(last_tp, cfg.vocab_size), cpu::argmax(last, cfg.vocab_size))
        << "step " << step;
    if (step > 0) {
      EXPECT_TRUE((*tp)->last_forward_used_graph()) << "step " << step;
    }
    next = {cpu::argmax(last, cfg.vocab_size)};
  }
}

// Rank 0 of two holds its shard (half the heads and the MLP rows, half the vocabulary's logits
// columns) and reports the whole model's config; it makes no collective before connect_ranks(),
// and asking for KV sizing before it is an error, not a wait for a peer.
TEST(CudaRunnerWorkerPath, ARankOfTwoHoldsItsShardAndWaitsForNoPeerBeforeConnecting) {
  KITE_REQUIRE_GPU();
  const std::string path = std::string(KITE_SOURCE_DIR) + "/tests/data/models/tinystories-656k";
  auto store = load_model(path, LoadOptions{});
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  std::shared_ptr<const WeightStore> ws(std::move(*store));
  WeightLookup lookup = [&](std::string_view name) { return ws->get(name); };
  CudaRunnerOptions opts;
  opts.comm = std::make_shared<TwoRankWorld>();
  auto r = CudaModelRunner::create(ws->config(), lookup, opts);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ((*r)->config().vocab_size, ws->config().vocab_size);
  EXPECT_EQ((*r)->config().num_attention_heads, ws->config().num_attention_heads);
  // This rank's KV heads only: half the model's bytes per block.
  CudaRunnerOptions whole;
  auto one = CudaModelRunner::create(ws->config(), lookup, whole);
  ASSERT_TRUE(one.ok()) << one.status().to_string();
  EXPECT_EQ(2 * (*r)->kv_block_bytes(16), (*one)->kv_block_bytes(16));
  EXPECT_FALSE((*r)->supports_pooling());
  KvCacheConfig kc;
  auto blocks = (*r)->determine_num_kv_blocks(kc);
  ASSERT_FALSE(blocks.ok());
  EXPECT_EQ(blocks.status().code(), StatusCode::kFailedPrecondition) << blocks.status().to_string();
  CudaRunnerOptions staged = opts;
  staged.pipeline_parallel_size = 2;
  EXPECT_EQ(CudaModelRunner::create(ws->config(), lookup, staged).status().code(),
            StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace kite::cuda::test
