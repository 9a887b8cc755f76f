// POST /v1/responses (OpenAI Responses API): the request translated into a chat request
// (responses_request.h), served by the chat path's preparation and generation skeleton, and
// answered as a response object whose output items are `reasoning` (with --reasoning-parser),
// `message` (output_text) and `function_call`s; streamed as Responses events (response.created,
// response.in_progress, response.output_item.added, response.content_part.added,
// response.output_text.delta / response.reasoning_text.delta /
// response.function_call_arguments.delta, their .done events, response.output_item.done, then
// response.completed or response.incomplete), each with its sequence_number. Stored responses
// (store: true) keep their conversation in the server's ResponseStore for previous_response_id.
#include <boost/json.hpp>

#include "server/generation_common.h"
#include "server/handlers.h"
#include "server/prep_pool.h"
#include "server/responses_request.h"
#include "server/sse.h"

namespace kite::server {

namespace asio = boost::asio;
namespace bj = boost::json;
using asio::awaitable;

namespace {

std::string suffix_of(const std::string& call_id) {
  constexpr std::string_view kCall = "call_";
  return call_id.starts_with(kCall) ? call_id.substr(kCall.size()) : call_id;
}

// The output items of one answer, built from the chat output's deltas as they arrive; emits the
// streaming events of each item when given an event writer.
class OutputItems {
 public:
  enum class Kind { kReasoning, kMessage, kFunctionCall };
  struct Item {
    Kind kind;
    std::string id;
    std::string text;     // reasoning / output text, or the call's arguments
    std::string call_id;  // function_call
    std::string name;     // function_call
  };
  // Appends one event (its type and its JSON without sequence_number).
  using Emit = std::function<void(const char* type, bj::object event)>;

  explicit OutputItems(std::string response_suffix) : suffix_(std::move(response_suffix)) {}

  void add(const ChatChoiceOutput::Delta& d, const Emit* emit) {
    if (!d.reasoning.empty()) append(Kind::kReasoning, sanitize_utf8(d.reasoning), emit);
    if (!d.content.empty()) append(Kind::kMessage, sanitize_utf8(d.content), emit);
    for (const ToolCallDelta& c : d.calls) {
      if (c.first) {
        close(emit, "completed");
        items_.push_back({Kind::kFunctionCall, "fc_" + suffix_of(c.id), "", c.id, c.name});
        open_ = true;
        if (emit) added(emit);
      }
      if (!c.arguments.empty() && open_ && items_.back().kind == Kind::kFunctionCall) {
        items_.back().text += c.arguments;
        if (emit) {
          bj::object e = item_ref();
          e["delta"] = c.arguments;
          (*emit)("response.function_call_arguments.delta", std::move(e));
        }
      }
    }
  }

  // Ends the open item (streaming): its .done events with `status`.
  void close(const Emit* emit, const char* status) {
    if (!open_) return;
    open_ = false;
    if (!emit) return;
    const Item& it = items_.back();
    if (it.kind == Kind::kFunctionCall) {
      bj::object e = item_ref();
      e["arguments"] = it.text;
      e["name"] = it.name;
      (*emit)("response.function_call_arguments.done", std::move(e));
    } else {
      const bool message = it.kind == Kind::kMessage;
      bj::object e = item_ref();
      e["content_index"] = 0;
      e["text"] = it.text;
      if (message) e["logprobs"] = bj::array();
      (*emit)(message ? "response.output_text.done" : "response.reasoning_text.done", std::move(e));
      bj::object p = item_ref();
      p["content_index"] = 0;
      p["part"] = part_json(it);
      (*emit)("response.content_part.done", std::move(p));
    }
    bj::object done;
    done["output_index"] = static_cast<int64_t>(items_.size() - 1);
    done["item"] = item_json(it, status);
    (*emit)("response.output_item.done", std::move(done));
  }

  bj::array json(const char* status) const {
    bj::array a;
    for (const Item& it : items_) a.emplace_back(item_json(it, status));
    return a;
  }

  // The assistant turn as a chat message, for the ResponseStore.
  bj::object chat_message() const {
    bj::object m;
    m["role"] = "assistant";
    std::string content;
    std::string reasoning;
    bj::array calls;
    for (const Item& it : items_) {
      if (it.kind == Kind::kMessage) content += it.text;
      if (it.kind == Kind::kReasoning) reasoning += it.text;
      if (it.kind == Kind::kFunctionCall) {
        bj::object fn;
        fn["name"] = it.name;
        fn["arguments"] = it.text;
        bj::object call;
        call["id"] = it.call_id;
        call["type"] = "function";
        call["function"] = std::move(fn);
        calls.emplace_back(std::move(call));
      }
    }
    m["content"] = content;
    if (!reasoning.empty()) m["reasoning_content"] = reasoning;
    if (!calls.empty()) m["tool_calls"] = std::move(calls);
    return m;
  }

 private:
  void append(Kind kind, const std::string& text, const Emit* emit) {
    if (!open_ || items_.back().kind != kind) {
      close(emit, "completed");
      const char* prefix = kind == Kind::kMessage ? "msg_" : "rs_";
      items_.push_back({kind, prefix + suffix_ + std::to_string(items_.size()), "", "", ""});
      open_ = true;
      if (emit) {
        added(emit);
        Item empty = items_.back();
        bj::object p = item_ref();
        p["content_index"] = 0;
        p["part"] = part_json(empty);
        (*emit)("response.content_part.added", std::move(p));
      }
    }
    items_.back().text += text;
    if (emit) {
      bj::object e = item_ref();
      e["content_index"] = 0;
      e["delta"] = text;
      if (kind == Kind::kMessage) {
        e["logprobs"] = bj::array();
        (*emit)("response.output_text.delta", std::move(e));
      } else {
        (*emit)("response.reasoning_text.delta", std::move(e));
      }
    }
  }

  void added(const Emit* emit) const {
    Item empty = items_.back();
    empty.text.clear();
    bj::object e;
    e["output_index"] = static_cast<int64_t>(items_.size() - 1);
    bj::object item = item_json(empty, "in_progress");
    if (empty.kind != Kind::kFunctionCall) item["content"] = bj::array();
    e["item"] = std::move(item);
    (*emit)("response.output_item.added", std::move(e));
  }

  bj::object item_ref() const {
    bj::object e;
    e["item_id"] = items_.back().id;
    e["output_index"] = static_cast<int64_t>(items_.size() - 1);
    return e;
  }

  static bj::object part_json(const Item& it) {
    bj::object p;
    if (it.kind == Kind::kMessage) {
      p["type"] = "output_text";
      p["text"] = it.text;
      p["annotations"] = bj::array();
      p["logprobs"] = bj::array();
    } else {
      p["type"] = "reasoning_text";
      p["text"] = it.text;
    }
    return p;
  }

  static bj::object item_json(const Item& it, const char* status) {
    bj::object o;
    o["id"] = it.id;
    switch (it.kind) {
      case Kind::kReasoning: {
        o["type"] = "reasoning";
        o["summary"] = bj::array();
        bj::array content;
        content.emplace_back(part_json(it));
        o["content"] = std::move(content);
        o["status"] = status;
        break;
      }
      case Kind::kMessage: {
        o["type"] = "message";
        o["status"] = status;
        o["role"] = "assistant";
        bj::array content;
        content.emplace_back(part_json(it));
        o["content"] = std::move(content);
        break;
      }
      case Kind::kFunctionCall:
        o["type"] = "function_call";
        o["call_id"] = it.call_id;
        o["name"] = it.name;
        o["arguments"] = it.text;
        o["status"] = status;
        break;
    }
    return o;
  }

  std::string suffix_;
  std::vector<Item> items_;
  bool open_ = false;
};

class ResponsesSink : public GenerationSink {
 public:
  ResponsesSink(const ResponsesRequest& req, const ChatOutputPlan& plan, std::string id,
                ResponseStore& store)
      : req_(req),
        id_(std::move(id)),
        created_(unix_time_now()),
        parser_(plan),
        items_(id_.substr(5)),
        store_(store) {}

  std::string whole(const PromptState& ps) override {
    const ChoiceAccum& acc = ps.choices[0];
    OutputItems items(id_.substr(5));
    items.add(parser_.feed(acc.text), nullptr);
    items.add(parser_.finish(), nullptr);
    keep(items);
    return bj::serialize(response_json(ps, &items));
  }

  std::string stream_begin(const PromptState& ps) override {
    std::string buf;
    bj::object e;
    e["response"] = response_json(ps, nullptr);
    emit_to(buf, "response.created", e);
    bj::object e2;
    e2["response"] = response_json(ps, nullptr);
    emit_to(buf, "response.in_progress", std::move(e2));
    return buf;
  }

  void stream_output(PromptState& ps, const RequestOutput& out, std::string& buf) override {
    ps.apply(out);
    OutputItems::Emit emit = [this, &buf](const char* type, bj::object e) {
      emit_to(buf, type, std::move(e));
    };
    for (const ChoiceDelta& d : out.choices) {
      if (d.index != 0) continue;
      items_.add(parser_.feed(d.text), &emit);
      if (d.finish_reason != FinishReason::kNone) items_.add(parser_.finish(), &emit);
    }
    if (!out.error.ok()) {
      ApiError err = api_error_from_status(out.error, "");
      bj::object e;
      e["code"] = err.code.empty() ? bj::value(nullptr) : bj::value(err.code);
      e["message"] = err.message;
      e["param"] = err.param.empty() ? bj::value(nullptr) : bj::value(err.param);
      emit_to(buf, "error", std::move(e));
    }
  }

  std::string stream_end(const PromptState& ps, bool failed) override {
    std::string buf;
    if (failed) return buf;
    const bool complete = ps.choices[0].finish_reason != FinishReason::kLength;
    OutputItems::Emit emit = [this, &buf](const char* type, bj::object e) {
      emit_to(buf, type, std::move(e));
    };
    items_.close(&emit, complete ? "completed" : "incomplete");
    keep(items_);
    bj::object e;
    e["response"] = response_json(ps, &items_);
    emit_to(buf, complete ? "response.completed" : "response.incomplete", std::move(e));
    return buf;
  }

 private:
  void emit_to(std::string& buf, const char* type, bj::object e) {
    e["type"] = type;
    e["sequence_number"] = sequence_number_++;
    buf += sse_named_event(type, bj::serialize(e));
  }

  static bj::value parse_or_null(const std::string& json) {
    if (json.empty()) return nullptr;
    return bj::parse(json);
  }

  // The response object: in progress (items == nullptr) or finished.
  bj::object response_json(const PromptState& ps, const OutputItems* items) const {
    bj::object r;
    r["id"] = id_;
    r["object"] = "response";
    r["created_at"] = created_;
    r["model"] = req_.chat.model;
    r["error"] = nullptr;
    bj::value usage = nullptr;
    if (!items) {
      r["status"] = "in_progress";
      r["incomplete_details"] = nullptr;
      r["output"] = bj::array();
    } else {
      const bool complete = ps.choices[0].finish_reason != FinishReason::kLength;
      r["status"] = complete ? "completed" : "incomplete";
      if (complete) {
        r["incomplete_details"] = nullptr;
      } else {
        bj::object d;
        d["reason"] = "max_output_tokens";
        r["incomplete_details"] = std::move(d);
      }
      r["output"] = items->json(complete ? "completed" : "incomplete");
      const int64_t in = static_cast<int64_t>(ps.prompt_token_ids.size());
      const int64_t out = ps.completion_tokens();
      bj::object u;
      u["input_tokens"] = in;
      bj::object in_details;
      in_details["cached_tokens"] = 0;
      u["input_tokens_details"] = std::move(in_details);
      u["output_tokens"] = out;
      bj::object out_details;
      out_details["reasoning_tokens"] = 0;
      u["output_tokens_details"] = std::move(out_details);
      u["total_tokens"] = in + out;
      usage = std::move(u);
    }
    r["instructions"] = req_.instructions ? bj::value(*req_.instructions) : bj::value(nullptr);
    r["max_output_tokens"] =
        req_.max_output_tokens ? bj::value(*req_.max_output_tokens) : bj::value(nullptr);
    r["temperature"] = req_.chat.params.temperature;
    r["top_p"] = req_.chat.params.top_p;
    r["parallel_tool_calls"] = req_.chat.parallel_tool_calls;
    r["tool_choice"] = parse_or_null(req_.tool_choice_json);
    r["tools"] = parse_or_null(req_.tools_json);
    r["text"] = parse_or_null(req_.text_json);
    r["truncation"] = "disabled";
    r["store"] = req_.store;
    r["previous_response_id"] = req_.previous_response_id.empty()
                                    ? bj::value(nullptr)
                                    : bj::value(req_.previous_response_id);
    r["metadata"] = parse_or_null(req_.metadata_json);
    r["reasoning"] = nullptr;
    r["usage"] = std::move(usage);
    return r;
  }

  // store: true keeps the conversation, this answer included, for previous_response_id.
  void keep(const OutputItems& items) {
    if (!req_.store) return;
    bj::array conversation = bj::parse(req_.conversation_json).as_array();
    conversation.emplace_back(items.chat_message());
    store_.put(id_, bj::serialize(conversation));
  }

  const ResponsesRequest& req_;
  std::string id_;
  int64_t created_;
  ChatChoiceOutput parser_;
  OutputItems items_;  // streaming
  ResponseStore& store_;
  int64_t sequence_number_ = 0;
};

}  // namespace

awaitable<void> handle_responses(Exchange& ex) {
  std::shared_ptr<const LoadedModel> model = co_await require_model(ex);
  if (!model) co_return;
  ResponseStore& store = ex.state().responses();
  const std::string id = random_id("resp_");
  std::optional<ApiResult<ResponsesRequest>> parsed;
  std::optional<ApiResult<PreparedChat>> prepared;
  if (!co_await parse_and_prepare_chat(
          ex, *model, id,
          [&] {
            return parse_responses_request(
                ex.request().body(), model->parse_context,
                [&store](const std::string& prev) { return store.get(prev); });
          },
          [](ResponsesRequest& r) -> ChatCompletionRequest& { return r.chat; }, parsed,
          prepared)) {
    co_return;
  }
  ResponsesRequest& req = parsed->value();
  ResponsesSink sink(req, prepared->value().plan, id, store);
  co_await run_generation(ex, *model->engine, prepared->value().request, req.chat.stream, "input",
                          sink);
}

}  // namespace kite::server
