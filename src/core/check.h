// KITE_CHECK: invariants that only a bug in kite can break. A failed check logs the condition,
// the source location and the streamed context, then aborts. Never use it for input a user can
// get wrong (a request, a file, a flag): return a Status for those.
//
//   KITE_CHECK(block_id < num_blocks) << "block " << block_id;
//   KITE_CHECK_EQ(a.size(), b.size());
#pragma once

#include <sstream>

namespace kite::detail {

class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Makes `cond ? (void)0 : Voidify() & CheckFailure(...).stream() << ...` type-check.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace kite::detail

#define KITE_CHECK(cond)                     \
  (cond) ? (void)0                           \
         : ::kite::detail::Voidify() &       \
               ::kite::detail::CheckFailure(__FILE__, __LINE__, #cond).stream()

#define KITE_CHECK_OP_(a, b, op) \
  KITE_CHECK((a)op(b)) << "(" << (a) << " vs " << (b) << ") "
#define KITE_CHECK_EQ(a, b) KITE_CHECK_OP_(a, b, ==)
#define KITE_CHECK_NE(a, b) KITE_CHECK_OP_(a, b, !=)
#define KITE_CHECK_LT(a, b) KITE_CHECK_OP_(a, b, <)
#define KITE_CHECK_LE(a, b) KITE_CHECK_OP_(a, b, <=)
#define KITE_CHECK_GT(a, b) KITE_CHECK_OP_(a, b, >)
#define KITE_CHECK_GE(a, b) KITE_CHECK_OP_(a, b, >=)

#ifdef NDEBUG
#define KITE_DCHECK(cond) \
  while (false) KITE_CHECK(cond)
#else
#define KITE_DCHECK(cond) KITE_CHECK(cond)
#endif
