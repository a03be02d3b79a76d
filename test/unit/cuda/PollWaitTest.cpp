//===- PollWaitTest.cpp - polling a device that may be abandoned ----------===//
//
// pollUntilDone (kernels/cuda/PollWait.h) with a fake query: it returns as
// soon as the query is done or fails, and a wait that would never end
// (a stream waiting on a faulted device's event) ends once the run is
// abandoned from another thread, without spinning the processor the
// whole time.
//
//===----------------------------------------------------------------------===//

#include "kernels/cuda/PollWait.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <thread>

using pipert::cuda::Polled;
using pipert::cuda::pollUntilDone;

TEST(PollWait, ReturnsTheQuerysAnswer) {
  int calls = 0;
  EXPECT_EQ(pollUntilDone(
                [&] { return ++calls < 5 ? Polled::NotReady : Polled::Done; },
                nullptr),
            Polled::Done);
  EXPECT_EQ(calls, 5);
  calls = 0;
  EXPECT_EQ(pollUntilDone(
                [&] { return ++calls < 3 ? Polled::NotReady : Polled::Failed; },
                nullptr),
            Polled::Failed);
  EXPECT_EQ(calls, 3);
}

TEST(PollWait, AnAbandonedRunEndsAWaitThatNeverWould) {
  std::atomic<bool> abandoned{false};
  std::thread other([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    abandoned = true;
  });
  const auto start = std::chrono::steady_clock::now();
  const std::clock_t cpu0 = std::clock();
  int64_t queries = 0;
  Polled p = pollUntilDone(
      [&] {
        ++queries;
        return Polled::NotReady;
      },
      &abandoned);
  const double cpu = double(std::clock() - cpu0) / CLOCKS_PER_SEC;
  const auto waited = std::chrono::steady_clock::now() - start;
  other.join();
  EXPECT_EQ(p, Polled::NotReady);
  EXPECT_GE(waited, std::chrono::milliseconds(200));
  EXPECT_LT(waited, std::chrono::seconds(5));
  // Past the first 100 microseconds it sleeps (steps up to 200 us): some
  // thousand queries in 200 ms, not millions, and a fraction of a core.
  EXPECT_LT(queries, 20000);
  EXPECT_LT(cpu, 0.15) << "processor seconds while waiting 200 ms";
}
