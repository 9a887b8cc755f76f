#include "cli/chat_backends.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>

#include "bench/sse_parser.h"
#include "core/json_util.h"
#include "core/logging.h"
#include "hub/http.h"

namespace kite::cli {
namespace {

namespace bj = boost::json;

class EngineChatBackend : public ChatBackend {
 public:
  EngineChatBackend(std::shared_ptr<Engine> engine, SamplingParams params,
                    std::optional<std::string> chat_template)
      : engine_(std::move(engine)),
        params_(std::move(params)),
        chat_template_(std::move(chat_template)) {}

  Status reply(const bj::array& messages, const std::function<void(std::string_view)>& on_text,
               const std::atomic<bool>& stop, std::string* reply) override {
    ChatTemplateOptions options;
    options.chat_template = chat_template_;
    KITE_ASSIGN_OR_RETURN(std::string prompt,
                          engine_->apply_chat_template(bj::serialize(messages), options));
    KITE_LOG_DEBUG("chat prompt: {}", bj::serialize(bj::value(prompt)));
    GenerateRequest g;
    g.request_id = fmt::format("chat-{}", ++turn_);
    g.prompt = std::move(prompt);
    g.add_special_tokens = false;  // the template wrote the special tokens (as vLLM's chat)
    g.params = params_;
    KITE_ASSIGN_OR_RETURN(std::shared_ptr<RequestStream> stream, engine_->add_request(g));
    bool stopped = false;
    while (true) {
      if (stop && !stopped) {
        engine_->abort(g.request_id);
        stopped = true;
      }
      std::optional<RequestOutput> out = stream->next_for(std::chrono::milliseconds(50));
      if (!out) continue;
      for (const ChoiceDelta& d : out->choices) {
        if (d.text.empty()) continue;
        reply->append(d.text);
        on_text(d.text);
      }
      if (out->finished) {
        if (!out->error.ok() && !stopped) return out->error;
        break;
      }
    }
    return stopped ? aborted("stopped") : ok_status();
  }

  std::string description() const override {
    const ModelInfo& info = engine_->model_info();
    return fmt::format("{} ({}, {} backend)", info.served_model_name, info.architecture,
                       info.backend);
  }

 private:
  std::shared_ptr<Engine> engine_;
  SamplingParams params_;
  std::optional<std::string> chat_template_;
  int64_t turn_ = 0;
};

// "http://h:p" / "http://h:p/v1" / ".../v1/chat/completions" -> the /v1 base.
std::string v1_base(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  const std::string suffix = "/chat/completions";
  if (url.size() > suffix.size() &&
      url.compare(url.size() - suffix.size(), suffix.size(), suffix) == 0) {
    url.resize(url.size() - suffix.size());
  }
  if (url.size() < 3 || url.compare(url.size() - 3, 3, "/v1") != 0) url += "/v1";
  return url;
}

std::string error_message(const hub::HttpResponse& r) {
  auto v = json::parse(r.body, "error");
  if (v.ok() && v->is_object()) {
    if (const auto* e = v->as_object().if_contains("error")) {
      if (e->is_object()) {
        if (const auto* m = e->as_object().if_contains("message"); m && m->is_string()) {
          return std::string(m->as_string());
        }
      }
      if (e->is_string()) return std::string(e->as_string());
    }
  }
  return r.body.substr(0, 300);
}

class HttpChatBackend : public ChatBackend {
 public:
  explicit HttpChatBackend(HttpChatOptions o) : o_(std::move(o)), base_(v1_base(o_.url)) {}

  Status connect() {
    hub::HttpRequest req;
    req.url = base_ + "/models";
    req.headers = headers();
    KITE_ASSIGN_OR_RETURN(hub::HttpResponse r, hub::http_request(req));
    if (r.status != 200) {
      return unavailable(
          fmt::format("{} answered HTTP {}: {}", req.url, r.status, error_message(r)));
    }
    if (o_.model.empty()) {
      KITE_ASSIGN_OR_RETURN(bj::value v, json::parse(r.body, req.url));
      const auto* data = v.is_object() ? v.as_object().if_contains("data") : nullptr;
      if (data == nullptr || !data->is_array() || data->as_array().empty() ||
          !data->as_array()[0].is_object()) {
        return unavailable(req.url + " lists no model; pass --model");
      }
      const auto* id = data->as_array()[0].as_object().if_contains("id");
      if (id == nullptr || !id->is_string()) return unavailable(req.url + ": a model has no id");
      o_.model = std::string(id->as_string());
    }
    return ok_status();
  }

  Status reply(const bj::array& messages, const std::function<void(std::string_view)>& on_text,
               const std::atomic<bool>& stop, std::string* reply) override {
    bj::object body = o_.sampling;
    body["model"] = o_.model;
    body["messages"] = messages;
    body["stream"] = true;
    hub::HttpRequest req;
    req.method = "POST";
    req.url = base_ + "/chat/completions";
    req.headers = headers();
    req.headers.push_back("Content-Type: application/json");
    req.headers.push_back("Accept: text/event-stream");
    req.body = bj::serialize(body);
    req.cancel = &stop;
    req.stall_timeout_s = 600;  // a slow model may think a long time before a token
    bench::SseParser sse;
    Status stream_error;
    auto on_event = [&](std::string_view data) {
      if (data == "[DONE]" || !stream_error.ok()) return;
      auto v = json::parse(data, "stream event");
      if (!v.ok() || !v->is_object()) {
        stream_error = v.ok() ? data_loss("a stream event is no object") : v.status();
        return;
      }
      const bj::object& o = v->as_object();
      if (const auto* e = o.if_contains("error")) {
        const auto* m = e->is_object() ? e->as_object().if_contains("message") : nullptr;
        stream_error =
            unavailable(m && m->is_string() ? std::string(m->as_string()) : bj::serialize(*e));
        return;
      }
      const auto* choices = o.if_contains("choices");
      if (choices == nullptr || !choices->is_array()) return;
      for (const auto& c : choices->as_array()) {
        const auto* delta = c.is_object() ? c.as_object().if_contains("delta") : nullptr;
        const auto* content =
            delta && delta->is_object() ? delta->as_object().if_contains("content") : nullptr;
        if (content != nullptr && content->is_string() && !content->as_string().empty()) {
          std::string_view text = content->as_string();
          reply->append(text);
          on_text(text);
        }
      }
    };
    auto sink = [&](long, const char* data, size_t n) {
      sse.feed(std::string_view(data, n), on_event);
      return !stop.load();
    };
    Result<hub::HttpResponse> r = hub::http_request(req, sink);
    if (stop) return aborted("stopped");
    if (!r.ok()) return r.status();
    if (r->status != 200) {
      return unavailable(
          fmt::format("{} answered HTTP {}: {}", req.url, r->status, error_message(*r)));
    }
    if (!stream_error.ok()) return stream_error;
    if (!r->transfer_error.empty()) return unavailable("the stream broke: " + r->transfer_error);
    return ok_status();
  }

  std::string description() const override { return o_.model + " at " + base_; }

 private:
  std::vector<std::string> headers() const {
    std::string key = o_.api_key;
    if (key.empty()) {
      if (const char* env = std::getenv("OPENAI_API_KEY")) key = env;
    }
    if (key.empty()) return {};
    return {"Authorization: Bearer " + key};
  }

  HttpChatOptions o_;
  std::string base_;
};

}  // namespace

std::unique_ptr<ChatBackend> make_engine_chat_backend(std::shared_ptr<Engine> engine,
                                                      SamplingParams params,
                                                      std::optional<std::string> chat_template) {
  return std::make_unique<EngineChatBackend>(std::move(engine), std::move(params),
                                             std::move(chat_template));
}

Result<std::unique_ptr<ChatBackend>> make_http_chat_backend(HttpChatOptions options) {
  auto backend = std::make_unique<HttpChatBackend>(std::move(options));
  KITE_RETURN_IF_ERROR(backend->connect());
  return std::unique_ptr<ChatBackend>(std::move(backend));
}

}  // namespace kite::cli
