// GrammarCompiler: turns GrammarSpecs into xgrammar grammars compiled against the model's
// vocabulary, once per distinct spec (an LRU cache bounded in bytes), with bounded time and
// memory: a spec whose numeric bounds would unroll into a huge grammar is refused before
// compiling, a compilation that runs past `max_compile_ms` is abandoned (the caller gets an error;
// the spec is remembered and refused at once next time), and a compiled grammar larger than
// `max_grammar_bytes` is refused.
//
// Thread-safe: compile() may run concurrently from any thread; concurrent requests for the same
// spec share one compilation. Compilations run on the compiler's own worker threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kite/status.h"
#include "structured/grammar_spec.h"

namespace kite::structured {

// How the tokenizer spells its tokens, which decides how xgrammar decodes a token to bytes.
enum class VocabKind {
  kRaw,           // the piece is the text
  kByteFallback,  // SentencePiece: "▁" = space, "<0x0A>" = one byte
  kByteLevel,     // GPT-2 byte-level: each char stands for a byte ("Ġ" = space)
};

struct StructuredVocab {
  std::vector<std::string> encoded;  // piece of each token id; "" = never allowed by a grammar
  VocabKind kind = VocabKind::kRaw;
  bool add_prefix_space = false;        // SentencePiece tokenizers that prepend "▁"
  int64_t model_vocab_size = 0;         // logits width (>= encoded.size())
  std::vector<int32_t> stop_token_ids;  // tokens that end a complete output (EOS)
};

struct GrammarCompilerOptions {
  int num_threads = 2;                      // compilation workers
  int64_t max_compile_ms = 10000;           // per compilation, from its start
  int64_t max_grammar_bytes = 256LL << 20;  // one compiled grammar
  int64_t cache_bytes = 1LL << 30;          // all cached grammars
  int64_t max_spec_bytes = 1 << 20;         // schema / regex / grammar text
  int64_t max_repeat = 10000;               // largest length/count bound a spec may give
};

struct GrammarCompilerStats {
  int64_t num_compiled = 0;    // compilations that succeeded
  int64_t num_cache_hits = 0;  // served from the cache or by a compilation already running
  int64_t num_rejected = 0;    // invalid, too large or too slow
  int64_t num_cached = 0;
  int64_t cached_bytes = 0;
  double total_compile_ms = 0;
};

// A grammar compiled for the model's vocabulary. Immutable; shared by every request with the
// same spec and by their matchers.
class CompiledGrammar {
 public:
  struct Impl;
  explicit CompiledGrammar(std::unique_ptr<Impl> impl);
  ~CompiledGrammar();
  const Impl& impl() const { return *impl_; }
  int64_t memory_bytes() const;
  int64_t vocab_size() const;       // logits width the masks cover
  const std::string& kind() const;  // "json", "regex", ...

 private:
  std::unique_ptr<Impl> impl_;
};

class GrammarCompiler {
 public:
  static Result<std::unique_ptr<GrammarCompiler>> create(StructuredVocab vocab,
                                                         GrammarCompilerOptions options = {});
  ~GrammarCompiler();
  GrammarCompiler(const GrammarCompiler&) = delete;
  GrammarCompiler& operator=(const GrammarCompiler&) = delete;

  // The compiled grammar of `spec`. kInvalidArgument with the engine's message for a spec it
  // cannot compile ("invalid JSON schema: ...", "the regex ...", "grammar compilation took
  // longer than 10000 ms"), kResourceExhausted when it is too large.
  Result<std::shared_ptr<const CompiledGrammar>> compile(const GrammarSpec& spec);

  GrammarCompilerStats stats() const;
  int64_t vocab_size() const;
  const std::vector<int32_t>& stop_token_ids() const;

 private:
  struct Impl;
  explicit GrammarCompiler(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Vocabulary kind from the pieces: byte fallback when "<0x0A>" is a token or more than 0.5% of
// the pieces start with "▁" (SentencePiece), byte-level when "Ċ" (byte 0x0A) or "Ġ" (space) is,
// raw otherwise.
VocabKind detect_vocab_kind(const std::vector<std::string>& encoded);

}  // namespace kite::structured
