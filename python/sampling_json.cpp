// kite::python_api::parse_sampling_params (python/src/sampling_json.h), compiled into
// libkite.so: the completion request parser of the HTTP server applied to the sampling fields.
#include "src/sampling_json.h"

#include <boost/json.hpp>

#include "server/api_error.h"
#include "server/openai_request.h"

namespace kite::python_api {

namespace bj = boost::json;

SamplingParseResult parse_sampling_params(std::string_view fields_json, int64_t vocab_size,
                                          const SamplingParams& defaults) {
  SamplingParseResult result;
  auto fail = [&](const server::ApiError& e) {
    result.code = e.code;
    result.param = e.param;
    result.message = e.message;
    return result;
  };
  boost::system::error_code ec;
  bj::value fields = bj::parse(fields_json, ec);
  if (ec || !fields.is_object()) {
    return fail(server::invalid_value("", "sampling fields must be a JSON object"));
  }
  // A request for one placeholder prompt (token 0): only its sampling fields are of interest.
  bj::object body = std::move(fields.get_object());
  body["prompt"] = bj::array{0};
  server::ParseContext ctx;
  ctx.served_model_names = {"kite"};
  ctx.vocab_size = vocab_size;
  ctx.default_sampling = defaults;
  server::ApiResult<server::CompletionRequest> parsed =
      server::parse_completion_request(bj::serialize(body), ctx);
  if (!parsed.ok()) return fail(parsed.error());
  Status valid = parsed.value().params.validate(vocab_size);
  if (!valid.ok()) return fail(server::api_error_from_status(valid, ""));
  result.ok = true;
  result.params = std::move(parsed.value().params);
  return result;
}

}  // namespace kite::python_api
