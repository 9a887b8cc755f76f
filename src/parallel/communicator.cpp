#include "parallel/communicator.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace kite::parallel {

Status SingleCommunicator::all_reduce_sum(float* /*data*/, int64_t /*count*/) {
  return ok_status();
}

Status SingleCommunicator::broadcast(void* /*data*/, int64_t /*bytes*/, int root, Wait /*wait*/) {
  if (root != 0) return invalid_argument(fmt::format("broadcast from rank {} of 1", root));
  return ok_status();
}

Status SingleCommunicator::all_gather(const void* in, int64_t bytes, void* out) {
  if (bytes > 0) std::memcpy(out, in, static_cast<size_t>(bytes));
  return ok_status();
}

Status SingleCommunicator::send(const void* /*data*/, int64_t /*bytes*/, int dst) {
  return invalid_argument(fmt::format("send to rank {} of 1", dst));
}

Status SingleCommunicator::recv(void* /*data*/, int64_t /*bytes*/, int src) {
  return invalid_argument(fmt::format("recv from rank {} of 1", src));
}

Result<std::shared_ptr<Communicator>> SingleCommunicator::split(int /*color*/, int /*key*/) {
  return std::shared_ptr<Communicator>(std::make_shared<SingleCommunicator>());
}

void SingleCommunicator::abort(int code) {
  std::fflush(stderr);
  std::_Exit(code);
}

Status agree(Communicator& comm, const Status& local, std::string_view what) {
  const int n = comm.world_size();
  if (n == 1) return local;
  const int32_t mine = local.ok() ? 0 : 1;
  std::vector<int32_t> all(static_cast<size_t>(n));
  KITE_RETURN_IF_ERROR(comm.all_gather(&mine, sizeof(mine), all.data()));
  if (!local.ok()) return local;
  for (int r = 0; r < n; ++r) {
    if (all[static_cast<size_t>(r)] != 0) {
      return aborted(fmt::format("{}: rank {} failed (its error is in its output)", what, r));
    }
  }
  return ok_status();
}

}  // namespace kite::parallel
