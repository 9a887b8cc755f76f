// Decoders ("decoder" of tokenizer.json): token strings -> text, with Hugging Face `tokenizers`
// semantics. Supported: ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace, WordPiece,
// BPEDecoder, CTC, Sequence.
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
  // True when a later token can change the text of earlier ones (cleanup rules such as
  // " ' " -> "'"), so streaming must hold the last token back.
  virtual bool rewrites_earlier_text() const { return false; }

  static Result<std::unique_ptr<Decoder>> from_json(const boost::json::value& v,
                                                    const std::string& path);
};

}  // namespace kite
