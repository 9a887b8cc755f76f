// What both backends' worker ranks share (tensor parallelism, docs/parallel.md): a forward batch
// sent from rank 0 — its scalars and vector sizes in a fixed-size BatchHeader that is part of
// the backend's call header (broadcast first, so that a worker can wait for it), then its
// vectors as one int32 payload — and the fault injection of the failing-rank tests.
#pragma once

#include <cstdint>
#include <vector>

#include "kite/status.h"
#include "parallel/communicator.h"
#include "runtime/forward_batch.h"

namespace kite {

struct BatchHeader {
  int32_t num_pooling_rows = 0;
  int32_t max_query_len = 0;
  int32_t max_seq_len = 0;
  int32_t sizes[8] = {};  // the batch's vectors, in token_ids .. logits_indices order
};

// Rank 0: the header of `b`, and then (after the call header holding it went out) its vectors.
BatchHeader batch_header(const ForwardBatch& b);
Status send_batch_vectors(parallel::Communicator& comm, const ForwardBatch& b);

// A worker: the vectors whose sizes `h` gives, received into *b with h's scalars (`scratch` is
// reused between steps).
Status receive_batch(parallel::Communicator& comm, const BatchHeader& h, ForwardBatch* b,
                     std::vector<int32_t>* scratch);

// KITE_TEST_FAIL_RANK_AT_STEP=rank:step:how makes that worker, when its step-th forward arrives,
// kill itself (how = kill: SIGKILL) or stop answering (how = hang: sleeps, so that its peers'
// collectives time out). Unset, or another rank: step -1 (none).
struct InjectedFault {
  int step = -1;
  bool hang = false;
};
InjectedFault injected_fault(int rank);
// Called with each forward's 1-based count; does not return when the fault is due.
void apply_injected_fault(const InjectedFault& fault, int step);

}  // namespace kite
