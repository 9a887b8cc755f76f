#include "telemetry/exporter.h"

#include <curl/curl.h>

#include <chrono>

#include "core/logging.h"

namespace kite::telemetry {
namespace {

constexpr size_t kBatch = 512;
constexpr size_t kMaxQueue = 8192;  // beyond it new spans are dropped

size_t discard(char*, size_t size, size_t n, void*) { return size * n; }

std::string traces_url(std::string endpoint) {
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  const size_t scheme = endpoint.find("://");
  const size_t path = endpoint.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  return path == std::string::npos ? endpoint + "/v1/traces" : endpoint;
}

}  // namespace

SpanExporter::SpanExporter(std::string endpoint, std::string service_name)
    : url_(traces_url(std::move(endpoint))), service_name_(std::move(service_name)) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  thread_ = std::thread([this] { run(); });
}

SpanExporter::~SpanExporter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void SpanExporter::add(std::vector<Span> spans) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Span& s : spans) {
      if (queue_.size() < kMaxQueue) queue_.push_back(std::move(s));
    }
  }
  cv_.notify_all();
}

void SpanExporter::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (!stop_) {  // let a batch fill for up to 1 s
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_ || queue_.size() >= kBatch; });
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!queue_.empty()) {
      std::vector<Span> batch;
      while (!queue_.empty() && batch.size() < kBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      lock.unlock();
      post(encode_export_request(batch, service_name_, {}));
      lock.lock();
      if (stop_ && std::chrono::steady_clock::now() > deadline) break;
      if (!stop_ && queue_.size() < kBatch) break;
    }
    if (stop_) return;
  }
}

bool SpanExporter::post(const std::string& body) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return false;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/x-protobuf");
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  const bool ok = rc == CURLE_OK && status >= 200 && status < 300;
  if (!ok) {
    static std::chrono::steady_clock::time_point last{};
    const auto now = std::chrono::steady_clock::now();
    if (last == std::chrono::steady_clock::time_point{} || now - last > std::chrono::minutes(1)) {
      last = now;
      KITE_LOG_WARN("OTLP trace export to {} failed: {}", url_,
                    rc != CURLE_OK ? std::string(error[0] ? error : curl_easy_strerror(rc))
                                   : "HTTP " + std::to_string(status));
    }
  }
  return ok;
}

}  // namespace kite::telemetry
