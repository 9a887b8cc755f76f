// POST /v1/chat/completions: messages rendered with the chat template, one engine request with n
// choices, answered whole or streamed as chat.completion.chunk events.
#include <boost/json.hpp>

#include "server/chat_output.h"
#include "server/generation_common.h"
#include "server/handlers.h"
#include "server/prep_pool.h"
#include "server/sse.h"

namespace kite::server {

namespace asio = boost::asio;
namespace bj = boost::json;
using asio::awaitable;

namespace {

struct ChatContext {
  const ChatCompletionRequest& req;
  const std::string& id;
  int64_t created;
  TokenTextCache& token_text;
  const ChatOutputPlan& plan;
  std::vector<ChatChoiceOutput>& outputs;  // streaming: one per choice
};

bj::array tool_calls_json(const std::vector<ToolCallDelta>& calls) {
  bj::array a;
  for (const ToolCallDelta& c : calls) {
    bj::object fn;
    if (c.first) fn["name"] = c.name;
    fn["arguments"] = c.arguments;
    bj::object call;
    call["index"] = c.index;
    if (c.first) {
      call["id"] = c.id;
      call["type"] = "function";
    }
    call["function"] = std::move(fn);
    a.emplace_back(std::move(call));
  }
  return a;
}

const char* chat_finish_reason(const ChatContext& c, FinishReason r, bool made_calls) {
  if (made_calls && c.plan.calls_finish_with_tool_calls && r == FinishReason::kStop) {
    return "tool_calls";
  }
  return nullptr;
}

bj::object chunk_header(const ChatContext& c, const char* object) {
  bj::object o;
  o["id"] = c.id;
  o["object"] = object;
  o["created"] = c.created;
  o["model"] = c.req.model;
  return o;
}

bj::array ids_json(const std::vector<int32_t>& ids) {
  bj::array a;
  a.reserve(ids.size());
  for (int32_t id : ids) a.emplace_back(id);
  return a;
}

std::string whole_response(const ChatContext& c, const PromptState& ps) {
  TokenText tt = [&c](int32_t id) { return c.token_text(id); };
  bj::array choices;
  for (size_t k = 0; k < ps.choices.size(); ++k) {
    const ChoiceAccum& acc = ps.choices[k];
    ChatChoiceOutput parser(c.plan);
    ChatChoiceOutput::Delta a = parser.feed(acc.text);
    ChatChoiceOutput::Delta b = parser.finish();
    a.reasoning += b.reasoning;
    a.content += b.content;
    a.calls.insert(a.calls.end(), b.calls.begin(), b.calls.end());
    // Whole calls: first delta (id, name) plus every fragment of its arguments (a first delta
    // may already carry the fragments merged into it).
    bj::array calls;
    for (const ToolCallDelta& d : a.calls) {
      if (d.first) {
        bj::object fn;
        fn["name"] = d.name;
        fn["arguments"] = d.arguments;
        bj::object call;
        call["id"] = d.id;
        call["type"] = "function";
        call["function"] = std::move(fn);
        calls.emplace_back(std::move(call));
      } else if (d.index < static_cast<int>(calls.size())) {
        bj::object& fn = calls[static_cast<size_t>(d.index)].as_object()["function"].as_object();
        fn["arguments"] = std::string(fn["arguments"].as_string()) + d.arguments;
      }
    }
    bj::object message;
    message["role"] = "assistant";
    if (a.content.empty() && !calls.empty()) {
      message["content"] = nullptr;
    } else {
      message["content"] = sanitize_utf8(a.content);
    }
    if (c.plan.reasoning) {
      if (a.reasoning.empty()) {
        message["reasoning_content"] = nullptr;
      } else {
        message["reasoning_content"] = sanitize_utf8(a.reasoning);
      }
    }
    message["tool_calls"] = std::move(calls);
    bj::object choice;
    choice["index"] = static_cast<int64_t>(k);
    choice["message"] = std::move(message);
    if (c.req.logprobs) {
      bj::array content;
      append_chat_logprobs(content, acc.logprobs, tt);
      bj::object lp;
      lp["content"] = std::move(content);
      choice["logprobs"] = std::move(lp);
    } else {
      choice["logprobs"] = nullptr;
    }
    if (const char* r = chat_finish_reason(c, acc.finish_reason, parser.made_calls())) {
      choice["finish_reason"] = r;
    } else {
      choice["finish_reason"] = finish_reason_json(acc.finish_reason);
    }
    choice["stop_reason"] = stop_reason_json(acc.stop_reason);
    if (c.req.return_token_ids) choice["token_ids"] = ids_json(acc.token_ids);
    choices.emplace_back(std::move(choice));
  }
  bj::object body = chunk_header(c, "chat.completion");
  body["choices"] = std::move(choices);
  body["usage"] =
      usage_json({static_cast<int64_t>(ps.prompt_token_ids.size()), ps.completion_tokens()});
  if (c.req.return_token_ids) body["prompt_token_ids"] = ids_json(ps.prompt_token_ids);
  body["system_fingerprint"] = nullptr;
  return bj::serialize(body);
}

// One chunk with one choice.
std::string chunk_event(const ChatContext& c, const PromptState& ps, bj::object choice,
                        bool with_prompt_ids) {
  bj::object chunk = chunk_header(c, "chat.completion.chunk");
  bj::array choices;
  choices.emplace_back(std::move(choice));
  chunk["choices"] = std::move(choices);
  if (c.req.stream_options.continuous_usage_stats) {
    chunk["usage"] =
        usage_json({static_cast<int64_t>(ps.prompt_token_ids.size()), ps.completion_tokens()});
  } else if (c.req.stream_options.include_usage) {
    chunk["usage"] = nullptr;
  }
  if (with_prompt_ids) chunk["prompt_token_ids"] = ids_json(ps.prompt_token_ids);
  return sse_event(bj::serialize(chunk));
}

void stream_output_events(const ChatContext& c, PromptState& ps, const RequestOutput& out,
                          std::string& buf) {
  TokenText tt = [&c](int32_t id) { return c.token_text(id); };
  const int n = c.req.params.n;
  ps.apply(out);
  for (const ChoiceDelta& d : out.choices) {
    if (d.index < 0 || d.index >= n) continue;
    const bool finishing = d.finish_reason != FinishReason::kNone;
    if (d.text.empty() && d.token_ids.empty() && !finishing) continue;
    ChatChoiceOutput& parser = c.outputs[static_cast<size_t>(d.index)];
    ChatChoiceOutput::Delta pd = parser.feed(d.text);
    if (finishing) {
      ChatChoiceOutput::Delta end = parser.finish();
      pd.reasoning += end.reasoning;
      pd.content += end.content;
      pd.calls.insert(pd.calls.end(), end.calls.begin(), end.calls.end());
    }
    if (pd.reasoning.empty() && pd.content.empty() && pd.calls.empty() && d.token_ids.empty() &&
        !finishing) {
      continue;
    }
    bj::object delta;
    if (!pd.reasoning.empty()) delta["reasoning_content"] = sanitize_utf8(pd.reasoning);
    if (!pd.content.empty()) delta["content"] = sanitize_utf8(pd.content);
    if (!pd.calls.empty()) delta["tool_calls"] = tool_calls_json(pd.calls);
    bj::object choice;
    choice["index"] = d.index;
    choice["delta"] = std::move(delta);
    if (c.req.logprobs) {
      bj::array content;
      append_chat_logprobs(content, d.logprobs, tt);
      bj::object lp;
      lp["content"] = std::move(content);
      choice["logprobs"] = std::move(lp);
    } else {
      choice["logprobs"] = nullptr;
    }
    if (const char* r = chat_finish_reason(c, d.finish_reason, parser.made_calls())) {
      choice["finish_reason"] = r;
    } else {
      choice["finish_reason"] = finish_reason_json(d.finish_reason);
    }
    choice["stop_reason"] = stop_reason_json(d.stop_reason);
    bool with_prompt_ids = false;
    if (c.req.return_token_ids) {
      choice["token_ids"] = ids_json(d.token_ids);
      with_prompt_ids = !ps.first_chunk_sent[d.index];
      ps.first_chunk_sent[d.index] = true;
    }
    buf += chunk_event(c, ps, std::move(choice), with_prompt_ids);
  }
  if (!out.error.ok()) buf += sse_event(error_body(api_error_from_status(out.error, "")));
}

class ChatSink : public GenerationSink {
 public:
  explicit ChatSink(const ChatContext& c) : c_(c) {}

  std::string whole(const PromptState& ps) override { return whole_response(c_, ps); }

  std::string stream_begin(const PromptState& ps) override {
    // As OpenAI: each choice opens with the assistant role and empty content.
    std::string buf;
    for (int k = 0; k < c_.req.params.n; ++k) {
      bj::object delta;
      delta["role"] = "assistant";
      delta["content"] = "";
      bj::object choice;
      choice["index"] = k;
      choice["delta"] = std::move(delta);
      choice["logprobs"] = nullptr;
      choice["finish_reason"] = nullptr;
      buf += chunk_event(c_, ps, std::move(choice), false);
    }
    return buf;
  }

  void stream_output(PromptState& ps, const RequestOutput& out, std::string& buf) override {
    stream_output_events(c_, ps, out, buf);
  }

  std::string stream_end(const PromptState& ps, bool failed) override {
    std::string buf;
    if (c_.req.stream_options.include_usage && !failed) {
      bj::object chunk = chunk_header(c_, "chat.completion.chunk");
      chunk["choices"] = bj::array();
      chunk["usage"] =
          usage_json({static_cast<int64_t>(ps.prompt_token_ids.size()), ps.completion_tokens()});
      buf += sse_event(bj::serialize(chunk));
    }
    buf += kSseDone;
    return buf;
  }

 private:
  const ChatContext& c_;
};

}  // namespace

ApiResult<PreparedChat> prepare_chat(const LoadedModel& model, const ServerConfig& config,
                                     ChatCompletionRequest& req, std::string request_id) {
  const bool template_has_tools =
      req.template_options.chat_template
          ? req.template_options.chat_template->find("tools") != std::string::npos
          : model.info.chat_template_supports_tools;
  ApiResult<ChatOutputPlan> plan = plan_chat_output(config, template_has_tools, req);
  if (!plan.ok()) return plan.error();
  ApiResult<std::string> prompt = render_chat(config, *model.engine, req.messages_json,
                                              req.template_options, req.continue_final_message);
  if (!prompt.ok()) return prompt.error();
  GenerateRequest g;
  g.request_id = std::move(request_id);
  g.prompt = std::move(prompt.value());
  g.add_special_tokens = req.add_special_tokens;  // false by default: the template holds BOS
  g.params = req.params;
  g.priority = req.priority;
  g.cache_salt = req.cache_salt;
  return PreparedChat{std::move(plan.value()), std::move(g)};
}

awaitable<void> handle_chat_completions(Exchange& ex) {
  std::shared_ptr<const LoadedModel> model = co_await require_model(ex);
  if (!model) co_return;
  const std::string id = random_id("chatcmpl-");
  std::optional<ApiResult<ChatCompletionRequest>> parsed;
  std::optional<ApiResult<PreparedChat>> prepared;
  if (!co_await parse_and_prepare_chat(
          ex, *model, id,
          [&] { return parse_chat_request(ex.request().body(), model->parse_context); },
          [](ChatCompletionRequest& r) -> ChatCompletionRequest& { return r; }, parsed,
          prepared)) {
    co_return;
  }
  ChatCompletionRequest& req = parsed->value();
  Engine& engine = *model->engine;
  TokenTextCache token_text(engine);
  const ChatOutputPlan& plan = prepared->value().plan;
  std::vector<ChatChoiceOutput> outputs(static_cast<size_t>(req.params.n), ChatChoiceOutput(plan));
  ChatContext ctx{req, id, unix_time_now(), token_text, plan, outputs};
  ChatSink sink(ctx);
  co_await run_generation(ex, engine, prepared->value().request, req.stream, "messages", sink);
}

}  // namespace kite::server
