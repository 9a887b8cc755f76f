// Decoders ("decoder" of tokenizer.json): token strings -> text, with Hugging Face `tokenizers`
// semantics. Supported: ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace, WordPiece,
// BPEDecoder, CTC, Sequence.
//
// Every one of them works token by token (WordPiece/CTC cleanup included) or appends, so the
// decode of ids[0..n) is a prefix of the decode of ids[0..n+1) except for a trailing incomplete
// UTF-8 character; IncrementalDetokenizer relies on that.
#pragma once

#include <boost/json.hpp>
#include <memory>
#include <string>
#include <vector>

#include "kite/status.h"

namespace kite {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Transforms the token strings in place (tokenizers' decode_chain); the caller joins them.
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;

  static Result<std::unique_ptr<Decoder>> from_json(const boost::json::value& v,
                                                    const std::string& path);
};

}  // namespace kite
