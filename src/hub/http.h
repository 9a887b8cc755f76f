// A small HTTP(S) client over libcurl for the Hub (and `kite chat --url`): one request, headers
// captured, the body either kept (API calls, error pages) or streamed to a callback (file
// downloads).
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kite/status.h"

namespace kite::hub {

struct HttpRequest {
  std::string method = "GET";  // GET | HEAD | POST
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::string body;                  // POST body
  // When set and true, the transfer stops (checked several times a second): kAborted.
  const std::atomic<bool>* cancel = nullptr;
  bool follow_redirects = false;
  long connect_timeout_s = 10;
  // A transfer slower than 1 byte/s for this long is cut (a stalled connection).
  long stall_timeout_s = 30;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lowercased; of the last response only
  std::string body;                            // kept unless streamed (error bodies always)
  std::string effective_url;
  // Set when the transfer broke after the response began (connection cut, stall, short body):
  // the response is partial and the caller may resume.
  std::string transfer_error;
};

// Called with each chunk of a 2xx body and the response's status (200, 206); returning false
// aborts the transfer.
using BodySink = std::function<bool(long status, const char* data, size_t size)>;

// Performs the request. An HTTP error status is a response, not an error: the error result is
// only for "no response at all" (kUnavailable: name resolution, connection refused, TLS,
// time-out before any header). With `sink`, 2xx bodies go to it instead of response.body.
Result<HttpResponse> http_request(const HttpRequest& request, const BodySink& sink = nullptr);

// "kite/<version>" (sent as User-Agent).
const std::string& user_agent();

}  // namespace kite::hub
