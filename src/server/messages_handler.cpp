// POST /v1/messages (Anthropic Messages API): the request translated into a chat request
// (anthropic_request.h), served by the chat path's preparation and generation skeleton, and
// answered as an Anthropic message: content blocks (thinking, text, tool_use), stop_reason
// end_turn / max_tokens / stop_sequence / tool_use, usage in input/output tokens; streamed as
// message_start, content_block_start / _delta / _stop per block, message_delta, message_stop.
#include <boost/json.hpp>

#include "server/anthropic_request.h"
#include "server/generation_common.h"
#include "server/handlers.h"
#include "server/prep_pool.h"
#include "server/sse.h"

namespace kite::server {

namespace asio = boost::asio;
namespace bj = boost::json;
using asio::awaitable;

namespace {

// Anthropic ids look like "toolu_…"; the tool parsers make "call_…".
std::string tool_use_id(const std::string& call_id) {
  constexpr std::string_view kCall = "call_";
  if (call_id.starts_with(kCall)) return "toolu_" + call_id.substr(kCall.size());
  return call_id;
}

// A tool call's arguments as the `input` object ({} when the text is not a JSON object, e.g. a
// call cut by max_tokens).
bj::value tool_input(const std::string& arguments) {
  boost::system::error_code ec;
  bj::value v = bj::parse(arguments, ec);
  if (ec || !v.is_object()) return bj::object();
  return v;
}

// The content blocks of one answer, built from the chat output's deltas as they arrive; emits
// the streaming events of each block when asked to.
class ContentBlocks {
 public:
  enum class Kind { kThinking, kText, kToolUse };
  struct Block {
    Kind kind;
    std::string text;  // thinking / text, or the tool call's arguments
    std::string id;    // tool_use
    std::string name;  // tool_use
  };

  // Folds `d` in; with `events`, appends the events that stream it.
  void add(const ChatChoiceOutput::Delta& d, std::string* events) {
    if (!d.reasoning.empty()) append(Kind::kThinking, sanitize_utf8(d.reasoning), events);
    if (!d.content.empty()) append(Kind::kText, sanitize_utf8(d.content), events);
    for (const ToolCallDelta& c : d.calls) {
      if (c.first) {
        close(events);
        blocks_.push_back({Kind::kToolUse, "", tool_use_id(c.id), c.name});
        open_ = true;
        if (events) {
          bj::object block;
          block["type"] = "tool_use";
          block["id"] = blocks_.back().id;
          block["name"] = c.name;
          block["input"] = bj::object();
          emit_start(std::move(block), events);
        }
      }
      if (!c.arguments.empty() && open_ && blocks_.back().kind == Kind::kToolUse) {
        blocks_.back().text += c.arguments;
        if (events) {
          bj::object delta;
          delta["type"] = "input_json_delta";
          delta["partial_json"] = c.arguments;
          emit_delta(std::move(delta), events);
        }
      }
    }
  }

  // Ends the open block (streaming).
  void close(std::string* events) {
    if (!open_) return;
    open_ = false;
    if (!events) return;
    bj::object e;
    e["type"] = "content_block_stop";
    e["index"] = static_cast<int64_t>(blocks_.size() - 1);
    *events += sse_named_event("content_block_stop", bj::serialize(e));
  }

  bool has_tool_use() const {
    for (const Block& b : blocks_) {
      if (b.kind == Kind::kToolUse) return true;
    }
    return false;
  }

  bj::array json() const {
    bj::array a;
    for (const Block& b : blocks_) {
      bj::object o;
      switch (b.kind) {
        case Kind::kThinking:
          o["type"] = "thinking";
          o["thinking"] = b.text;
          o["signature"] = "";
          break;
        case Kind::kText:
          o["type"] = "text";
          o["text"] = b.text;
          break;
        case Kind::kToolUse:
          o["type"] = "tool_use";
          o["id"] = b.id;
          o["name"] = b.name;
          o["input"] = tool_input(b.text);
          break;
      }
      a.emplace_back(std::move(o));
    }
    return a;
  }

 private:
  void append(Kind kind, const std::string& text, std::string* events) {
    if (!open_ || blocks_.back().kind != kind) {
      close(events);
      blocks_.push_back({kind, "", "", ""});
      open_ = true;
      if (events) {
        bj::object block;
        if (kind == Kind::kThinking) {
          block["type"] = "thinking";
          block["thinking"] = "";
          block["signature"] = "";
        } else {
          block["type"] = "text";
          block["text"] = "";
        }
        emit_start(std::move(block), events);
      }
    }
    blocks_.back().text += text;
    if (events) {
      bj::object delta;
      if (kind == Kind::kThinking) {
        delta["type"] = "thinking_delta";
        delta["thinking"] = text;
      } else {
        delta["type"] = "text_delta";
        delta["text"] = text;
      }
      emit_delta(std::move(delta), events);
    }
  }

  void emit_start(bj::object block, std::string* events) const {
    bj::object e;
    e["type"] = "content_block_start";
    e["index"] = static_cast<int64_t>(blocks_.size() - 1);
    e["content_block"] = std::move(block);
    *events += sse_named_event("content_block_start", bj::serialize(e));
  }

  void emit_delta(bj::object delta, std::string* events) const {
    bj::object e;
    e["type"] = "content_block_delta";
    e["index"] = static_cast<int64_t>(blocks_.size() - 1);
    e["delta"] = std::move(delta);
    *events += sse_named_event("content_block_delta", bj::serialize(e));
  }

  std::vector<Block> blocks_;
  bool open_ = false;  // blocks_.back() still takes deltas
};

class MessagesSink : public GenerationSink {
 public:
  MessagesSink(const ChatCompletionRequest& req, const ChatOutputPlan& plan, std::string id)
      : req_(req), id_(std::move(id)), parser_(plan) {}

  std::string whole(const PromptState& ps) override {
    const ChoiceAccum& acc = ps.choices[0];
    ContentBlocks blocks;
    blocks.add(parser_.feed(acc.text), nullptr);
    blocks.add(parser_.finish(), nullptr);
    bj::object body = message_header();
    body["content"] = blocks.json();
    set_stop(body, acc, blocks.has_tool_use());
    bj::object usage;
    usage["input_tokens"] = static_cast<int64_t>(ps.prompt_token_ids.size());
    usage["output_tokens"] = ps.completion_tokens();
    body["usage"] = std::move(usage);
    return bj::serialize(body);
  }

  // message_start waits for the first output: it reports the prompt's token count.
  std::string stream_begin(const PromptState&) override { return ""; }

  void stream_output(PromptState& ps, const RequestOutput& out, std::string& buf) override {
    ps.apply(out);
    start(ps, buf);
    for (const ChoiceDelta& d : out.choices) {
      if (d.index != 0) continue;
      blocks_.add(parser_.feed(d.text), &buf);
      if (d.finish_reason != FinishReason::kNone) blocks_.add(parser_.finish(), &buf);
    }
    if (!out.error.ok()) {
      ApiError e = api_error_from_status(out.error, "");
      buf += sse_named_event("error", anthropic_error_body(e));
    }
  }

  std::string stream_end(const PromptState& ps, bool failed) override {
    std::string buf;
    if (failed) return buf;
    start(ps, buf);
    blocks_.close(&buf);
    bj::object delta;
    bj::object body;
    set_stop(delta, ps.choices[0], blocks_.has_tool_use());
    body["type"] = "message_delta";
    body["delta"] = std::move(delta);
    bj::object usage;
    usage["output_tokens"] = ps.completion_tokens();
    body["usage"] = std::move(usage);
    buf += sse_named_event("message_delta", bj::serialize(body));
    buf += sse_named_event("message_stop", R"({"type":"message_stop"})");
    return buf;
  }

 private:
  bj::object message_header() const {
    bj::object m;
    m["id"] = id_;
    m["type"] = "message";
    m["role"] = "assistant";
    m["model"] = req_.model;
    return m;
  }

  void start(const PromptState& ps, std::string& buf) {
    if (started_) return;
    started_ = true;
    bj::object m = message_header();
    m["content"] = bj::array();
    m["stop_reason"] = nullptr;
    m["stop_sequence"] = nullptr;
    bj::object usage;
    usage["input_tokens"] = static_cast<int64_t>(ps.prompt_token_ids.size());
    usage["output_tokens"] = 0;
    m["usage"] = std::move(usage);
    bj::object e;
    e["type"] = "message_start";
    e["message"] = std::move(m);
    buf += sse_named_event("message_start", bj::serialize(e));
  }

  // stop_reason and stop_sequence, from the choice's finish.
  static void set_stop(bj::object& o, const ChoiceAccum& acc, bool made_calls) {
    bj::value stop_sequence = nullptr;
    const char* reason = "end_turn";
    if (acc.finish_reason == FinishReason::kLength) {
      reason = "max_tokens";
    } else if (made_calls) {
      reason = "tool_use";
    } else if (const auto* s = std::get_if<std::string>(&acc.stop_reason)) {
      reason = "stop_sequence";
      stop_sequence = *s;
    }
    o["stop_reason"] = reason;
    o["stop_sequence"] = std::move(stop_sequence);
  }

  const ChatCompletionRequest& req_;
  std::string id_;
  ChatChoiceOutput parser_;
  ContentBlocks blocks_;  // streaming
  bool started_ = false;
};

}  // namespace

awaitable<void> handle_messages(Exchange& ex) {
  std::shared_ptr<const LoadedModel> model = co_await require_model(ex);
  if (!model) co_return;
  const std::string id = random_id("msg_");
  std::optional<ApiResult<ChatCompletionRequest>> parsed;
  std::optional<ApiResult<PreparedChat>> prepared;
  if (!co_await parse_and_prepare_chat(
          ex, *model, id,
          [&] { return parse_messages_request(ex.request().body(), model->parse_context); },
          [](ChatCompletionRequest& r) -> ChatCompletionRequest& { return r; }, parsed,
          prepared)) {
    co_return;
  }
  ChatCompletionRequest& req = parsed->value();
  MessagesSink sink(req, prepared->value().plan, id);
  co_await run_generation(ex, *model->engine, prepared->value().request, req.stream, "messages",
                          sink);
}

}  // namespace kite::server
