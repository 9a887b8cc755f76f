// Chat templates: Hugging Face `chat_template` Jinja2 sources rendered exactly as
// `transformers` renders them (tokenizer.apply_chat_template(..., tokenize=False)): Jinja2 in an
// ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, loop controls, the
// `generation` tag, and transformers' tojson / raise_exception / strftime_now.
//
// Parse once, render many: a ChatTemplate is immutable and render() is safe to call from many
// threads at once. Every failure is a Status, never an exception or a crash:
//   parse():  kInvalidArgument (syntax error, with line and column), kUnimplemented (a Jinja
//             feature kite does not support), kOutOfRange (template too large / too nested).
//   render(): kInvalidArgument (bad inputs JSON, template runtime errors such as undefined
//             attributes, type errors and raise_exception(...)), kUnimplemented, kOutOfRange
//             (output size, work or recursion limits: runaway templates stop instead of hanging).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "kite/status.h"

namespace kite {

namespace jinja {
struct Program;
struct ChatTemplateAccess;
}  // namespace jinja

struct ChatTemplateInputs {
  // JSON array of message objects ({"role": ..., "content": ...}, content may be a list of
  // parts, tool_calls with arguments as objects or strings): passed to the template as is.
  std::string messages_json;
  // JSON array of tool schemas; "" = no tools (the template sees `tools` = none).
  std::string tools_json;
  bool add_generation_prompt = false;
  // Special tokens; "" = the tokenizer has none (the template sees them undefined, as with
  // transformers, which leaves unset special tokens out of the render kwargs).
  std::string bos_token;
  std::string eos_token;
  // The tokenizer's other set special tokens (unk_token, pad_token, ...): transformers passes
  // them all to the template; few templates read them.
  std::map<std::string, std::string> other_special_tokens;
  // JSON object of extra template variables (enable_thinking, tools_in_user_message, other
  // special tokens, ...); "" = none. They override bos_token/eos_token like transformers'
  // kwargs; `messages`, `tools`, `documents` and `add_generation_prompt` cannot be overridden.
  std::string extra_kwargs_json;
  // What strftime_now() sees as "now": "YYYY-MM-DD", "YYYY-MM-DDTHH:MM" or
  // "YYYY-MM-DDTHH:MM:SS" (a space may replace the T). nullopt = the local time.
  std::optional<std::string> date_string;
};

// Resource guards for one render (defaults suit chat prompts with a wide margin).
struct ChatTemplateLimits {
  size_t max_output_bytes = 32u << 20;  // the rendered prompt, and any one string/list built
  uint64_t max_steps = 20'000'000;      // evaluation steps, loop iterations, bytes copied / 16
  int max_depth = 400;                  // nested evaluations (macro recursion)
};

// Which template source renders a request, as transformers' get_chat_template picks it:
// `requested` (the request's chat_template) is the name of one of `named` or else a template
// source itself; without it, "tool_use" when the request has tools (any tools_json, even "[]")
// and the model has that template, else "default". `named` holds the model's templates by name
// (a model with a single template has it as "default"). kInvalidArgument when there is none.
Result<std::string> select_chat_template(const std::map<std::string, std::string>& named,
                                         const std::optional<std::string>& requested,
                                         bool has_tools);

class ChatTemplate {
 public:
  // Parses a template source (at most 4 MiB of UTF-8).
  static Result<ChatTemplate> parse(std::string_view source);

  Result<std::string> render(const ChatTemplateInputs& inputs) const;
  Result<std::string> render(const ChatTemplateInputs& inputs,
                             const ChatTemplateLimits& limits) const;

 private:
  friend struct jinja::ChatTemplateAccess;
  explicit ChatTemplate(std::shared_ptr<const jinja::Program> program)
      : program_(std::move(program)) {}

  std::shared_ptr<const jinja::Program> program_;
};

}  // namespace kite
