// POST /v1/embeddings: one engine embedding request (GenerateRequest::pooling) per input, all
// submitted at once so the scheduler batches their prefills; answered whole.
#include <fmt/format.h>

#include <bit>
#include <boost/asio/this_coro.hpp>
#include <boost/json.hpp>
#include <cstring>
#include <optional>

#include "server/engine_requests.h"
#include "server/generation_common.h"
#include "server/handlers.h"
#include "server/openai_response.h"
#include "server/prep_pool.h"

namespace kite::server {

namespace asio = boost::asio;
namespace bj = boost::json;
using asio::awaitable;

namespace {

// OpenAI's base64 encoding: the float32 values' little-endian bytes, standard alphabet, padded.
std::string base64_floats(const std::vector<float>& v) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  static_assert(std::endian::native == std::endian::little, "float bytes are sent little-endian");
  std::string bytes(v.size() * sizeof(float), '\0');
  if (!v.empty()) std::memcpy(bytes.data(), v.data(), bytes.size());
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t n = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) n |= static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

}  // namespace

awaitable<void> handle_embeddings(Exchange& ex) {
  std::shared_ptr<const LoadedModel> model = co_await require_model(ex);
  if (!model) co_return;
  if (model->info.runner != "pooling") {
    // vLLM's answer for a model served for generation.
    co_await ex.send_error(
        invalid_value("model",
                      "The model does not support Embeddings API (serve an embedding model with "
                      "--runner pooling)"));
    co_return;
  }
  const std::string id = random_id("embd-");
  InFlightGuard in_flight(ex.state());
  EngineRequests requests(*model->engine, co_await asio::this_coro::executor, ex.state().metrics(),
                          &ex.record());
  // Parsing and every input's add_request (tokenization) run on the preparation pool
  // (prep_pool.h); an input that fails ends the request (the ones added before are aborted).
  std::optional<ApiResult<EmbeddingRequest>> parsed;
  std::optional<ApiError> rejected;
  if (!co_await run_prepared(ex, [&](const PrepToken& token) {
        parsed.emplace(parse_embedding_request(ex.request().body(), model->parse_context));
        if (!parsed->ok()) return;
        const EmbeddingRequest& req = parsed->value();
        for (size_t i = 0; i < req.inputs.size() && !rejected; ++i) {
          if (token.expired()) return;  // the answer is a 503 (or nobody's): skip the rest
          GenerateRequest g;
          g.request_id = req.inputs.size() == 1 ? id : fmt::format("{}-{}", id, i);
          g.prompt = req.inputs[i];
          g.add_special_tokens = req.add_special_tokens;
          g.priority = req.priority;
          g.pooling = PoolingParams{req.dimensions};
          Status s = requests.add(std::move(g));
          if (s.ok()) continue;
          std::string param = "input";
          if (req.dimensions > 0 && s.code() == StatusCode::kInvalidArgument &&
              s.message().find("dimensions") != std::string::npos) {
            param = "dimensions";
          } else if (req.inputs.size() > 1) {
            param = fmt::format("input[{}]", i);
          }
          rejected = api_error_from_status(s, std::move(param));
        }
      })) {
    co_return;
  }
  if (!parsed->ok()) {
    co_await ex.send_error(parsed->error());
    co_return;
  }
  const EmbeddingRequest& req = parsed->value();
  if (rejected) {
    requests.abort_all();
    co_await ex.send_error(*rejected);
    co_return;
  }
  ex.watch_disconnect([&requests] { requests.interrupt(); });
  WatchGuard watch(ex);
  std::vector<std::vector<float>> embeddings(req.inputs.size());
  int64_t prompt_tokens = 0;
  Status error;
  while (true) {
    auto batch = co_await requests.next();
    if (batch.empty()) break;
    for (auto& [i, out] : batch) {
      if (!out.error.ok()) error = out.error;
      prompt_tokens += static_cast<int64_t>(out.prompt_token_ids.size());
      if (out.finished) embeddings[i] = std::move(out.embedding);
    }
  }
  if (requests.interrupted()) co_return;
  if (!error.ok()) {
    co_await ex.send_error(api_error_from_status(error, "input"));
    co_return;
  }
  bj::array data;
  for (size_t i = 0; i < embeddings.size(); ++i) {
    if (embeddings[i].empty()) {
      co_await ex.send_error(
          internal_error_api("input " + std::to_string(i) + " ended without an embedding"));
      co_return;
    }
    bj::object item;
    item["object"] = "embedding";
    item["index"] = static_cast<int64_t>(i);
    if (req.base64) {
      item["embedding"] = base64_floats(embeddings[i]);
    } else {
      bj::array values;
      values.reserve(embeddings[i].size());
      for (float x : embeddings[i]) values.emplace_back(static_cast<double>(x));
      item["embedding"] = std::move(values);
    }
    data.emplace_back(std::move(item));
  }
  bj::object body;
  body["id"] = id;
  body["object"] = "list";
  body["created"] = unix_time_now();
  body["model"] = req.model;
  body["data"] = std::move(data);
  bj::object usage;
  usage["prompt_tokens"] = prompt_tokens;
  usage["total_tokens"] = prompt_tokens;
  body["usage"] = std::move(usage);
  std::string out = bj::serialize(body);
  co_await ex.send_body(200, "application/json", out);
}

}  // namespace kite::server
