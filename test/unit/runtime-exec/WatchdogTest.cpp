//===- WatchdogTest.cpp - the overdue operation names its peer ------------===//

#include "pipert/Watchdog.h"

#include <gtest/gtest.h>

#include <map>

namespace {

TEST(Watchdog, TheOldestUnfinishedOperationPastTheLimitIsNamed) {
  using namespace std::chrono;
  pipert::Watchdog w(8, milliseconds(1000));
  auto t0 = pipert::Clock::now();
  int events[4] = {0, 1, 2, 3};
  std::map<void *, int> state; // 1 finished, 0 pending, -1 failed
  w.track(0, &events[0], 3, -1, 10, t0);
  w.track(5, &events[1], 1, -1, 12, t0 + milliseconds(100));
  w.track(6, &events[2], -1, 2, 40, t0 + milliseconds(200));
  auto finished = [&](void *h) { return state[h]; };
  pipert::Watchdog::Op op;
  bool failed = false;
  EXPECT_FALSE(w.overdue(finished, t0 + milliseconds(900), op, failed));
  // Past the limit: the oldest, rank 3's operation, is named.
  ASSERT_TRUE(w.overdue(finished, t0 + milliseconds(1150), op, failed));
  EXPECT_FALSE(failed);
  EXPECT_EQ(op.peer, 3);
  EXPECT_EQ(op.instr, 10);
  // It finishes: the next oldest.
  state[&events[0]] = 1;
  ASSERT_TRUE(w.overdue(finished, t0 + milliseconds(1150), op, failed));
  EXPECT_EQ(op.peer, 1);
  EXPECT_EQ(w.active(), 2);
  // A failed one is reported at once, whatever its age.
  state[&events[1]] = 1;
  state[&events[2]] = -1;
  ASSERT_TRUE(w.overdue(finished, t0 + milliseconds(250), op, failed));
  EXPECT_TRUE(failed);
  EXPECT_EQ(op.group, 2);
  state[&events[2]] = 1;
  EXPECT_FALSE(w.overdue(finished, t0 + milliseconds(5000), op, failed));
  EXPECT_EQ(w.active(), 0);
  // Forgotten before its event is recorded anew: not reported with the
  // old post time.
  w.track(3, &events[3], 2, -1, 7, t0);
  w.forget(3);
  EXPECT_FALSE(w.overdue(finished, t0 + milliseconds(5000), op, failed));
  // Ids outside the table are ignored, not written.
  w.track(8, &events[3], 0, -1, 1, t0);
  w.track(-1, &events[3], 0, -1, 1, t0);
  EXPECT_EQ(w.active(), 0);
}

// A whole step's graph (--step-graph) runs the step's length before its
// operations wait at all: its allowance adds to the limit.
TEST(Watchdog, AGraphsAllowanceAddsToTheLimit) {
  using namespace std::chrono;
  pipert::Watchdog w(2, milliseconds(1000));
  auto t0 = pipert::Clock::now();
  int graph = 0;
  auto pending = [](void *) { return 0; };
  w.track(1, &graph, -1, -1, -2, t0, nullptr, milliseconds(3000));
  pipert::Watchdog::Op op;
  bool failed = false;
  EXPECT_FALSE(w.overdue(pending, t0 + milliseconds(3900), op, failed));
  ASSERT_TRUE(w.overdue(pending, t0 + milliseconds(4100), op, failed));
  EXPECT_EQ(op.instr, -2);
  EXPECT_FALSE(failed);
}

// The host may enqueue a whole step ahead of the device (a cuda plan's
// chunks do not wait for their streams): an operation's clock starts when
// the device reaches it (its start event finishes), not at its enqueue.
TEST(Watchdog, TheClockStartsWhenTheDeviceReachesTheOperation) {
  using namespace std::chrono;
  pipert::Watchdog w(4, milliseconds(1000));
  auto t0 = pipert::Clock::now();
  int done = 0, posted = 1;
  std::map<void *, int> state;
  auto finished = [&](void *h) { return state[h]; };
  w.track(2, &done, 1, -1, 9, t0, &posted);
  pipert::Watchdog::Op op;
  bool failed = false;
  // Enqueued long ago, never begun: not overdue.
  EXPECT_FALSE(w.overdue(finished, t0 + milliseconds(5000), op, failed));
  // Begun at 5 s: its limit runs from there.
  state[&posted] = 1;
  EXPECT_FALSE(w.overdue(finished, t0 + milliseconds(5000), op, failed));
  EXPECT_FALSE(w.overdue(finished, t0 + milliseconds(5900), op, failed));
  ASSERT_TRUE(w.overdue(finished, t0 + milliseconds(6100), op, failed));
  EXPECT_FALSE(failed);
  EXPECT_EQ(op.peer, 1);
  EXPECT_EQ(op.instr, 9);
  // The work before it failed on the device: reported at once.
  int done2 = 2, posted2 = 3;
  state[&done] = 1;
  w.track(3, &done2, 0, -1, 11, t0, &posted2);
  state[&posted2] = -1;
  ASSERT_TRUE(w.overdue(finished, t0, op, failed));
  EXPECT_TRUE(failed);
  EXPECT_EQ(op.instr, 11);
}

} // namespace
