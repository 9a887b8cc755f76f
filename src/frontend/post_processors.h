// Post-processors ("post_processor" of tokenizer.json): add the special tokens around one
// encoded sequence when add_special_tokens is on. Supported: TemplateProcessing,
// BertProcessing, RobertaProcessing, ByteLevel (no effect on ids), Sequence.
#pragma once

#include <boost/json.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kite/status.h"

namespace kite {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Rewrites the ids of a single sequence. Called only with add_special_tokens on.
  virtual void process(std::vector<int32_t>& ids) const = 0;
  // The ids added before / after the sequence (for callers that need to know, e.g. BOS).
  virtual void added_ids(std::vector<int32_t>& prefix, std::vector<int32_t>& suffix) const = 0;

  static Result<std::unique_ptr<PostProcessor>> from_json(const boost::json::value& v,
                                                          const std::string& path);
  // [prefix..., $A, suffix...]
  static std::unique_ptr<PostProcessor> make_template(std::vector<int32_t> prefix,
                                                      std::vector<int32_t> suffix);
};

}  // namespace kite
