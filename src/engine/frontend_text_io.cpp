#include "engine/frontend_text_io.h"

#include <utility>

#include "frontend/incremental_detokenizer.h"
#include "frontend/stop_strings.h"

namespace kite {
namespace {

// Text of one choice: the incremental detokenizer, then the stop-string matcher (from the
// min_tokens-th output on, as in vLLM: earlier text cannot stop the choice).
class FrontendDecoder final : public TextIo::ChoiceDecoder {
 public:
  FrontendDecoder(std::shared_ptr<const Tokenizer> tokenizer, const RequestInfo& request)
      : tokenizer_(std::move(tokenizer)),
        detok_(*tokenizer_, request.params.skip_special_tokens, request.prompt_token_ids),
        min_tokens_(request.params.min_tokens) {
    if (!request.params.stop.empty()) {
      stops_.emplace(request.params.stop, request.params.include_stop_str_in_output);
    }
  }

  std::string append(std::span<const int32_t> token_ids,
                     std::optional<std::string>* stop) override {
    std::string out;
    for (int32_t id : token_ids) {
      std::string text = detok_.step(id);
      ++num_tokens_;
      if (!stops_ || num_tokens_ <= min_tokens_) {
        out += text;
        continue;
      }
      StopStringMatcher::Output o = stops_->push(text);
      out += o.text;
      if (o.stop_index) {
        *stop = stops_->matched_stop();
        break;
      }
    }
    return out;
  }

  std::string flush(std::optional<std::string>* stop) override {
    std::string text = detok_.flush();
    if (!stops_) return text;
    if (stops_->stopped()) return {};
    StopStringMatcher::Output o = stops_->push(text);
    if (o.stop_index) {
      *stop = stops_->matched_stop();
      return o.text;
    }
    return o.text + stops_->flush();
  }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  IncrementalDetokenizer detok_;
  std::optional<StopStringMatcher> stops_;
  int64_t min_tokens_ = 0;
  int64_t num_tokens_ = 0;
};

class FrontendTextIo final : public TextIo {
 public:
  FrontendTextIo(std::shared_ptr<const Tokenizer> tokenizer, std::optional<ChatTemplate> tmpl)
      : tokenizer_(std::move(tokenizer)), template_(std::move(tmpl)) {}

  Result<std::vector<int32_t>> tokenize(std::string_view text,
                                        bool add_special_tokens) const override {
    return tokenizer_->encode(text, add_special_tokens, !tokenizer_->split_special_tokens());
  }
  Result<std::string> detokenize(const std::vector<int32_t>& ids,
                                 bool skip_special_tokens) const override {
    return tokenizer_->decode(ids, skip_special_tokens);
  }
  bool has_chat_template() const override { return template_.has_value(); }
  Result<std::string> apply_chat_template(std::string_view messages_json,
                                          const ChatTemplateOptions& options) const override {
    ChatTemplateInputs in;
    in.messages_json = std::string(messages_json);
    in.tools_json = options.tools_json;
    in.add_generation_prompt = options.add_generation_prompt;
    in.bos_token = tokenizer_->bos_token();
    in.eos_token = tokenizer_->eos_token();
    in.extra_kwargs_json = options.extra_kwargs_json;
    if (options.chat_template) {
      KITE_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::parse(*options.chat_template));
      return t.render(in);
    }
    if (!template_) {
      return failed_precondition("the model has no chat template; pass one in chat_template");
    }
    return template_->render(in);
  }
  std::unique_ptr<ChoiceDecoder> new_decoder(const RequestInfo& request) const override {
    return std::make_unique<FrontendDecoder>(tokenizer_, request);
  }
  bool supports_stop_strings() const override { return true; }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::optional<ChatTemplate> template_;
};

}  // namespace

Result<std::shared_ptr<const TextIo>> make_frontend_text_io(
    std::shared_ptr<const Tokenizer> tokenizer) {
  std::optional<ChatTemplate> tmpl;
  if (tokenizer->chat_template()) {
    auto parsed = ChatTemplate::parse(*tokenizer->chat_template());
    if (!parsed.ok()) return parsed.status().with_context("the tokenizer's chat template");
    tmpl.emplace(std::move(*parsed));
  }
  return std::shared_ptr<const TextIo>(
      std::make_shared<FrontendTextIo>(std::move(tokenizer), std::move(tmpl)));
}

}  // namespace kite
