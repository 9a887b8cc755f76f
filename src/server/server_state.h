// State every connection of the server shares (internal to src/server/).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kite/engine.h"
#include "server/http_policy.h"
#include "server/metrics.h"
#include "server/openai_request.h"
#include "server/prep_pool.h"
#include "server/request_telemetry.h"
#include "server/response_store.h"
#include "server/server.h"

namespace kite::server {

// The loaded model as the handlers see it (immutable once published).
struct LoadedModel {
  std::shared_ptr<Engine> engine;
  ModelInfo info;
  ParseContext parse_context;
  std::vector<std::string> served_model_names;  // [0] is reported in responses
  int64_t created = 0;                          // unix time the model was published
};

enum class ServerPhase { kLoading, kServing, kDraining };

class ServerState {
 public:
  explicit ServerState(ServerConfig config)
      : config_(std::move(config)),
        cors_{config_.allowed_origins, config_.allow_credentials},
        metrics_(config_.metrics_prefix_cache_group),
        telemetry_(config_.otlp_traces_endpoint),
        prep_pool_(config_.prep_workers > 0 ? config_.prep_workers : default_prep_workers(),
                   config_.prep_queue) {}

  const ServerConfig& config() const { return config_; }
  const CorsPolicy& cors() const { return cors_; }
  ServerMetrics& metrics() { return metrics_; }
  ServerTelemetry& telemetry() { return telemetry_; }
  // Stored /v1/responses conversations (previous_response_id).
  ResponseStore& responses() { return responses_; }
  // Where request preparation runs (prep_pool.h).
  PrepPool& prep_pool() { return prep_pool_; }

  // The model, or null while loading.
  std::shared_ptr<const LoadedModel> model() const {
    std::lock_guard<std::mutex> lock(mu_);
    return model_;
  }
  void set_model(std::shared_ptr<const LoadedModel> m) {
    std::lock_guard<std::mutex> lock(mu_);
    model_ = std::move(m);
  }

  ServerPhase phase() const { return phase_.load(std::memory_order_acquire); }
  void set_phase(ServerPhase p) { phase_.store(p, std::memory_order_release); }
  // Loading -> serving, unless a shutdown began meanwhile (then false).
  bool start_serving() {
    ServerPhase expected = ServerPhase::kLoading;
    return phase_.compare_exchange_strong(expected, ServerPhase::kServing,
                                          std::memory_order_acq_rel);
  }
  bool draining() const { return phase() == ServerPhase::kDraining; }

  // Generation requests being served (each holds engine requests).
  std::atomic<int64_t> generations_in_flight{0};

 private:
  ServerConfig config_;
  CorsPolicy cors_;
  ServerMetrics metrics_;
  ServerTelemetry telemetry_;
  ResponseStore responses_;
  PrepPool prep_pool_;
  mutable std::mutex mu_;
  std::shared_ptr<const LoadedModel> model_;
  std::atomic<ServerPhase> phase_{ServerPhase::kLoading};
};

}  // namespace kite::server
