#include "runtime/worker_protocol.h"

#include <array>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <string>
#include <thread>

namespace kite {
namespace {

std::array<std::vector<int32_t>*, 8> batch_vectors(ForwardBatch& b) {
  return {&b.token_ids,    &b.positions,          &b.query_start_loc, &b.seq_lens,
          &b.slot_mapping, &b.block_table_indptr, &b.block_table,     &b.logits_indices};
}

}  // namespace

BatchHeader batch_header(const ForwardBatch& b) {
  BatchHeader h;
  h.num_pooling_rows = b.num_pooling_rows;
  h.max_query_len = b.max_query_len;
  h.max_seq_len = b.max_seq_len;
  const auto vectors = batch_vectors(const_cast<ForwardBatch&>(b));
  for (size_t i = 0; i < vectors.size(); ++i) {
    h.sizes[i] = static_cast<int32_t>(vectors[i]->size());
  }
  return h;
}

Status send_batch_vectors(parallel::Communicator& comm, const ForwardBatch& b) {
  std::vector<int32_t> payload;
  for (const std::vector<int32_t>* v : batch_vectors(const_cast<ForwardBatch&>(b))) {
    payload.insert(payload.end(), v->begin(), v->end());
  }
  return comm.broadcast(payload.data(), static_cast<int64_t>(payload.size() * sizeof(int32_t)),
                        0);
}

Status receive_batch(parallel::Communicator& comm, const BatchHeader& h, ForwardBatch* b,
                     std::vector<int32_t>* scratch) {
  int64_t total = 0;
  for (int32_t n : h.sizes) {
    if (n < 0) return internal_error("forward batch from rank 0 with a negative size");
    total += n;
  }
  scratch->resize(static_cast<size_t>(total));
  KITE_RETURN_IF_ERROR(comm.broadcast(
      scratch->data(), static_cast<int64_t>(scratch->size() * sizeof(int32_t)), 0));
  const int32_t* at = scratch->data();
  const auto vectors = batch_vectors(*b);
  for (size_t i = 0; i < vectors.size(); ++i) {
    vectors[i]->assign(at, at + h.sizes[i]);
    at += h.sizes[i];
  }
  b->num_pooling_rows = h.num_pooling_rows;
  b->max_query_len = h.max_query_len;
  b->max_seq_len = h.max_seq_len;
  return ok_status();
}

InjectedFault injected_fault(int rank) {
  InjectedFault f;
  const char* v = std::getenv("KITE_TEST_FAIL_RANK_AT_STEP");
  if (v == nullptr) return f;
  const std::string s(v);
  const size_t a = s.find(':');
  const size_t b = a == std::string::npos ? a : s.find(':', a + 1);
  if (b == std::string::npos || std::atoi(s.substr(0, a).c_str()) != rank) return f;
  f.step = std::atoi(s.substr(a + 1, b - a - 1).c_str());
  f.hang = s.substr(b + 1) == "hang";
  return f;
}

void apply_injected_fault(const InjectedFault& fault, int step) {
  if (step != fault.step) return;
  if (!fault.hang) std::raise(SIGKILL);
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
}

}  // namespace kite
