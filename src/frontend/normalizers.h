// Normalizers of tokenizer.json ("normalizer"): text -> text before pre-tokenization, with the
// semantics of Hugging Face `tokenizers` (alignment tracking is not needed for token ids).
// Supported types: NFC, NFD, NFKC, NFKD, Lowercase, Strip, StripAccents, Replace, Prepend,
// BertNormalizer, Nmt, ByteLevel, Sequence. Precompiled is rejected as unimplemented.
#pragma once

#include <boost/json.hpp>
#include <memory>
#include <string>

#include "kite/status.h"

namespace kite {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Normalizes s (valid UTF-8) in place; the result is valid UTF-8.
  virtual void normalize(std::string& s) const = 0;

  // Builds a normalizer from its JSON object; `path` names it in errors.
  static Result<std::unique_ptr<Normalizer>> from_json(const boost::json::value& v,
                                                       const std::string& path);
};

}  // namespace kite
