// PrepPool (src/server/prep_pool.h): the bound on waiting jobs and jobs dropped while queued.
// Waits are on conditions (a job's state), never on time.
#include "server/prep_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include "server/engine_requests.h"

namespace kite::server {
namespace {

class PrepPoolTest : public ::testing::Test {
 protected:
  std::shared_ptr<PrepTask> make(std::function<void(const PrepToken&)> work) {
    auto task = std::make_shared<PrepTask>();
    task->work = std::move(work);
    task->token.deadline = std::chrono::steady_clock::time_point::max();
    task->waker = std::make_shared<Waker>(ioc_.get_executor());
    return task;
  }
  static void wait_done(const PrepTask& task) {
    while (task.state.load() != PrepTask::kDone) std::this_thread::yield();
  }

  boost::asio::io_context ioc_;  // wakers post here; nothing needs to run it
};

TEST_F(PrepPoolTest, BoundsTheQueueAndSkipsDroppedJobs) {
  PrepPool pool(/*workers=*/1, /*max_queued=*/1);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> started{false};
  auto blocker = make([&](const PrepToken&) {
    started = true;
    released.wait();
  });
  ASSERT_TRUE(pool.submit(blocker));
  while (!started.load()) std::this_thread::yield();
  EXPECT_EQ(pool.in_flight(), 1);

  std::atomic<int> ran_dropped{0};
  auto dropped = make([&](const PrepToken&) { ++ran_dropped; });
  ASSERT_TRUE(pool.submit(dropped));                         // the queue's one place
  EXPECT_FALSE(pool.submit(make([](const PrepToken&) {})));  // full: refused
  // What run_prepared does when the client leaves or the deadline passes while it waits.
  int expected = PrepTask::kQueued;
  ASSERT_TRUE(dropped->state.compare_exchange_strong(expected, PrepTask::kDropped));

  release.set_value();
  wait_done(*blocker);
  std::atomic<int> ran_after{0};
  auto after = make([&](const PrepToken&) { ++ran_after; });
  ASSERT_TRUE(pool.submit(after));
  wait_done(*after);
  EXPECT_EQ(ran_dropped.load(), 0);
  EXPECT_EQ(ran_after.load(), 1);
  const std::string text = pool.render_metrics();
  EXPECT_NE(text.find("kite:prep_rejected_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("kite:prep_completed_total 2\n"), std::string::npos) << text;
}

TEST_F(PrepPoolTest, AJobsExceptionIsKeptForTheWaiter) {
  PrepPool pool(1, 0);
  auto task = make([](const PrepToken&) { throw std::runtime_error("boom"); });
  ASSERT_TRUE(pool.submit(task));  // an idle worker takes it even with no queue
  wait_done(*task);
  ASSERT_TRUE(task->error);
  EXPECT_THROW(std::rethrow_exception(task->error), std::runtime_error);
}

}  // namespace
}  // namespace kite::server
