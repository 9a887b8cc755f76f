#include "server/engine_requests.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace kite::server {

namespace asio = boost::asio;

Waker::Waker(asio::any_io_executor executor) : timer_(std::move(executor)) {}

void Waker::notify() {
  // One post per burst: later notifications before the post runs are covered by it.
  if (posted_.exchange(true, std::memory_order_acq_rel)) return;
  asio::post(timer_.get_executor(), [self = shared_from_this()] {
    self->posted_.store(false, std::memory_order_release);
    self->pending_ = true;
    self->timer_.cancel();
  });
}

asio::awaitable<void> Waker::wait() {
  if (!pending_) {
    timer_.expires_at(asio::steady_timer::time_point::max());
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  pending_ = false;
}

EngineRequests::EngineRequests(Engine& engine, asio::any_io_executor executor,
                               ServerMetrics& metrics, ExchangeRecord* record)
    : engine_(engine),
      metrics_(metrics),
      record_(record),
      waker_(std::make_shared<Waker>(std::move(executor))) {}

EngineRequests::~EngineRequests() { abort_all(); }

Status EngineRequests::add(GenerateRequest request) {
  std::string id = request.request_id;
  int num_choices = request.params.n;
  // The notifier holds the waker weakly: the engine may keep the stream (and so the notifier)
  // after this object is gone.
  std::weak_ptr<Waker> weak = waker_;
  request.notifier = [weak] {
    if (auto w = weak.lock()) w->notify();
  };
  Result<std::shared_ptr<RequestStream>> stream = engine_.add_request(std::move(request));
  if (!stream.ok()) return stream.status();
  entries_.push_back(Entry{*stream, id.empty() ? (*stream)->request_id() : id, num_choices});
  return ok_status();
}

asio::awaitable<std::vector<std::pair<size_t, RequestOutput>>> EngineRequests::next() {
  std::vector<std::pair<size_t, RequestOutput>> out;
  while (true) {
    if (interrupted_) co_return out;
    for (size_t i = 0; i < entries_.size(); ++i) {
      Entry& e = entries_[i];
      while (!e.finished) {
        std::optional<RequestOutput> o = e.stream->try_next();
        if (!o) break;
        if (o->finished) {
          e.finished = true;
          FinishReason reason = FinishReason::kStop;
          for (const ChoiceDelta& c : o->choices) {
            if (c.finish_reason != FinishReason::kNone) reason = c.finish_reason;
          }
          if (!o->error.ok()) reason = FinishReason::kError;
          metrics_.observe_finished(o->metrics, reason, e.num_choices);
          if (record_ != nullptr) {
            record_->add_engine_request(e.request_id, o->metrics, reason, o->error);
          }
        }
        out.emplace_back(i, std::move(*o));
      }
    }
    if (!out.empty() || all_finished()) co_return out;
    co_await waker_->wait();
  }
}

void EngineRequests::interrupt() {
  interrupted_ = true;
  waker_->notify();
}

bool EngineRequests::all_finished() const {
  for (const Entry& e : entries_) {
    if (!e.finished) return false;
  }
  return true;
}

void EngineRequests::abort_all() {
  for (Entry& e : entries_) {
    if (!e.finished) {
      engine_.abort(e.request_id);
      e.finished = true;
      metrics_.observe_aborted_by_client();
    }
  }
}

}  // namespace kite::server
