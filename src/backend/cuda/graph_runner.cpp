// CUDA graphs of decode-only steps: one graph per captured batch size, whose step inputs live at
// fixed offsets of the input buffer (StepLayout of that capacity); a smaller batch replays the
// next larger graph with padded rows (no KV write, zero-length context).
#include <algorithm>

#include "backend/cuda/cuda_check.h"
#include "backend/cuda/runner_state.h"
#include "core/logging.h"

namespace kite::cuda {
namespace {

// Decode batches with a captured graph: 1-8, then every 8 up to 256, every 16 above (a padded
// row costs ~1/256 of a step there), and max_batch itself.
std::vector<int> graph_batch_sizes(int max_batch) {
  std::vector<int> sizes;
  for (int b = 1; b <= std::min(8, max_batch); ++b) sizes.push_back(b);
  for (int b = 16; b <= max_batch; b += b < 256 ? 8 : 16) sizes.push_back(b);
  if (!sizes.empty() && sizes.back() != max_batch && max_batch > 8) sizes.push_back(max_batch);
  return sizes;
}

// The decode plan of a captured (or replayed) batch of B sequences.
StepPlan decode_plan(int B, int splits, bool generic, const StepLayout& layout) {
  StepPlan p;
  p.attention.all_decode = true;
  p.attention.num_decode = B;
  p.attention.num_splits = splits;
  p.layout = layout;
  p.pad_seqs = B;
  p.dims = StepDims{B, B, B, 0, generic ? 0 : B, splits, true};
  return p;
}

}  // namespace

Status CudaModelRunner::Impl::capture_graphs() {
  for (auto& [bsz, g] : graphs) KITE_CUDA_WARN(cudaGraphExecDestroy(g.exec));
  graphs.clear();
  if (!opts.use_cuda_graphs) return ok_status();
  pool_rows = 0;  // decode graphs compute every row's logits (op_runner.cpp)
  const int max_b = std::min(opts.max_graph_batch, mem.cap.seqs);
  for (int B : graph_batch_sizes(max_b)) {
    ForwardBatch b;
    b.token_ids.assign(B, 0);
    b.positions.assign(B, 0);
    b.slot_mapping.assign(B, -1);
    b.seq_lens.assign(B, 1);
    for (int i = 0; i <= B; ++i) {
      b.query_start_loc.push_back(i);
      b.block_table_indptr.push_back(i);
    }
    b.block_table.assign(B, 0);
    for (int i = 0; i < B; ++i) b.logits_indices.push_back(i);
    b.max_query_len = 1;
    b.max_seq_len = 1;
    Graph g;
    StepCapacity c;
    c.tokens = B;
    c.seqs = B;
    c.logits = B;
    c.tiles = 0;
    g.layout = make_step_layout(c);
    g.splits = decode_num_splits(B, static_cast<int>(cfg.num_key_value_heads), 0, dev->num_sms());
    const StepPlan plan = decode_plan(B, g.splits, attn_path == AttentionPath::kGeneric, g.layout);
    KITE_RETURN_IF_ERROR(upload(b, plan));
    float* logits = step_logits();
    // Warm-up outside the capture: cuBLASLt plans, lazily loaded kernels.
    KITE_RETURN_IF_ERROR(run_model(g.layout, plan.dims, 0, 0, logits));
    KITE_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
    cudaGraph_t cuda_graph = nullptr;
    KITE_CUDA_RETURN_IF_ERROR(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    const Status st = run_model(g.layout, plan.dims, 0, 0, logits);
    const cudaError_t end = cudaStreamEndCapture(stream, &cuda_graph);
    KITE_RETURN_IF_ERROR(st.with_context("capturing decode graph"));
    KITE_CUDA_RETURN_IF_ERROR(end);
    const cudaError_t inst = cudaGraphInstantiate(&g.exec, cuda_graph, 0);
    KITE_CUDA_WARN(cudaGraphDestroy(cuda_graph));
    KITE_CUDA_RETURN_IF_ERROR(inst);
    graphs.emplace(B, g);
  }
  KITE_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream));
  KITE_LOG_INFO("cuda: captured {} decode graphs (batch 1..{})", graphs.size(), max_b);
  return ok_status();
}

Result<bool> CudaModelRunner::Impl::replay_graph(const ForwardBatch& b) {
  bool graph_ok =
      b.decode_only() && b.num_tokens() == b.num_seqs() && b.num_logits() == b.num_seqs();
  for (int i = 0; graph_ok && i < b.num_logits(); ++i) graph_ok = b.logits_indices[i] == i;
  auto it = graph_ok ? graphs.lower_bound(b.num_seqs()) : graphs.end();
  if (it == graphs.end()) return false;
  const Graph& g = it->second;
  KITE_RETURN_IF_ERROR(
      upload(b, decode_plan(it->first, g.splits, attn_path == AttentionPath::kGeneric, g.layout)));
  KITE_CUDA_RETURN_IF_ERROR(cudaGraphLaunch(g.exec, stream));
  return true;
}

}  // namespace kite::cuda
