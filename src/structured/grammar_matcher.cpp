#include "structured/grammar_matcher.h"

#include <xgrammar/xgrammar.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "core/check.h"
#include "structured/bitmask.h"
#include "structured/compiled_grammar_impl.h"

namespace kite::structured {

struct GrammarMatcher::Impl {
  Impl(std::shared_ptr<const CompiledGrammar> g, xgrammar::GrammarMatcher m,
       std::vector<int32_t> stops)
      : grammar(std::move(g)), matcher(std::move(m)), stop_tokens(std::move(stops)) {}
  std::shared_ptr<const CompiledGrammar> grammar;
  xgrammar::GrammarMatcher matcher;
  std::vector<int32_t> stop_tokens;
};

GrammarMatcher::GrammarMatcher(std::shared_ptr<const CompiledGrammar> grammar,
                               const std::vector<int32_t>& stop_token_ids,
                               std::optional<int32_t> reasoning_end_token)
    : reasoning_end_(reasoning_end_token) {
  KITE_CHECK(grammar != nullptr);
  std::vector<int> stops(stop_token_ids.begin(), stop_token_ids.end());
  xgrammar::GrammarMatcher m(grammar->impl().grammar,
                             stops.empty() ? std::nullopt : std::optional<std::vector<int>>(stops));
  impl_ = std::make_unique<Impl>(std::move(grammar), std::move(m), stop_token_ids);
  gate_open_ = !reasoning_end_.has_value();
}

GrammarMatcher::GrammarMatcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GrammarMatcher::~GrammarMatcher() = default;

int64_t GrammarMatcher::vocab_size() const { return impl_->grammar->vocab_size(); }

bool GrammarMatcher::terminated() const { return gate_open_ && impl_->matcher.IsTerminated(); }

bool GrammarMatcher::accept(int32_t token) {
  if (!gate_open_) {
    ++num_gated_;
    if (reasoning_end_ && token == *reasoning_end_) gate_open_ = true;
    return true;
  }
  if (impl_->matcher.IsTerminated()) return false;
  if (!impl_->matcher.AcceptToken(token)) return false;
  ++num_accepted_;
  return true;
}

bool GrammarMatcher::fill_bitmask(int32_t* mask) {
  if (!gate_open_) return false;
  const int64_t words = bitmask_words(vocab_size());
  if (impl_->matcher.IsTerminated()) {
    std::memset(mask, 0, static_cast<size_t>(words) * sizeof(int32_t));
    for (int32_t t : impl_->stop_tokens) {
      if (t >= 0 && t < vocab_size()) mask[t >> 5] |= static_cast<int32_t>(1u << (t & 31));
    }
    return true;
  }
  int64_t shape[1] = {words};
  DLTensor tensor;
  tensor.data = mask;
  tensor.device = DLDevice{kDLCPU, 0};
  tensor.ndim = 1;
  tensor.dtype = DLDataType{kDLInt, 32, 1};
  tensor.shape = shape;
  tensor.strides = nullptr;
  tensor.byte_offset = 0;
  impl_->matcher.FillNextTokenBitmask(&tensor);
  return true;
}

void GrammarMatcher::rollback(int num_tokens) {
  const int n = static_cast<int>(std::min<int64_t>(num_tokens, num_accepted_));
  if (n > 0) impl_->matcher.Rollback(n);
  num_accepted_ -= n;
}

std::unique_ptr<GrammarMatcher> GrammarMatcher::fork() const {
  auto impl = std::make_unique<Impl>(impl_->grammar, impl_->matcher.Fork(), impl_->stop_tokens);
  std::unique_ptr<GrammarMatcher> m(new GrammarMatcher(std::move(impl)));
  m->gate_open_ = gate_open_;
  m->reasoning_end_ = reasoning_end_;
  m->num_accepted_ = num_accepted_;
  m->num_gated_ = num_gated_;
  return m;
}

}  // namespace kite::structured
