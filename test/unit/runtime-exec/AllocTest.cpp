//===- AllocTest.cpp - the training loop allocates nothing ----------------===//
//
// Counts every operator new of the process outside kernel calls: a run of
// 20 steps must allocate exactly as often as a run of 1 step (setup only),
// with the shadow checks off and on, so nothing in the per-step loop of any
// rank, the transport or the metrics log allocates. Allocations inside the
// kernels are counted apart and reported (the kernels are not the
// executor's to fix).
//
//===----------------------------------------------------------------------===//

#include "SyntheticModel.h"
#include "kernels/cpu/Matmul.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

static std::atomic<long> allocations{0}, kernelAllocations{0};
static thread_local bool inKernel = false;

void *operator new(std::size_t size) {
  (inKernel ? kernelAllocations : allocations)
      .fetch_add(1, std::memory_order_relaxed);
  if (void *p = std::malloc(size ? size : 1))
    return p;
  throw std::bad_alloc();
}
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }

using namespace pipec::testing;

namespace {

/// Marks the calls into the model's kernels.
class MarkedKernels : public pipert::ChunkKernels {
public:
  explicit MarkedKernels(const SyntheticPlan &plan) : inner(plan) {}
  template <typename F> pipert::Status marked(F &&f) {
    inKernel = true;
    pipert::Status s = f();
    inKernel = false;
    return s;
  }
  pipert::Status fwd(const pipert::RankContext &c, int32_t ch,
                     int32_t mb) override {
    return marked([&] { return inner.fwd(c, ch, mb); });
  }
  pipert::Status bwdB(const pipert::RankContext &c, int32_t ch,
                      int32_t mb) override {
    return marked([&] { return inner.bwdB(c, ch, mb); });
  }
  pipert::Status bwdW(const pipert::RankContext &c, int32_t ch,
                      int32_t mb) override {
    return marked([&] { return inner.bwdW(c, ch, mb); });
  }
  pipert::Status prepareAllReduce(const pipert::RankContext &c, int32_t g,
                                  int32_t b, uint8_t *d,
                                  int64_t n) override {
    return marked([&] { return inner.prepareAllReduce(c, g, b, d, n); });
  }
  pipert::Status optStep(const pipert::RankContext &c) override {
    return marked([&] { return inner.optStep(c); });
  }

private:
  SyntheticKernels inner;
};

/// Allocations made by one run of `steps` steps on a freshly created
/// executor (creation excluded).
long allocationsOfRun(const SyntheticPlan &plan, int64_t steps, bool shadow,
                      const std::string &dir) {
  std::unique_ptr<pipert::Executor> exec;
  pipert::Status st = pipert::Executor::create(plan.manifest, plan.streams, exec);
  EXPECT_TRUE(st.ok()) << st.message();
  MarkedKernels kernels(plan);
  pipert::RunOptions o;
  o.steps = steps;
  o.shadow = shadow;
  o.cores = 2;
  o.setBlasThreads = pipert::cpu::setBlasThreadCount;
  o.setRankThreads = pipert::cpu::setOmpThreadCount;
  o.outDir = dir;
  pipert::RunResult result;
  long before = allocations.load();
  st = exec->run(kernels, o, result);
  long after = allocations.load();
  EXPECT_TRUE(st.ok()) << st.message();
  return after - before;
}

} // namespace

// Tests that allocations do not grow with the number of steps.
TEST(Executor, TrainingLoopAllocatesNothing) {
  SyntheticPlan plan;
  PlanOptions po;
  po.kind = pipec::schedule::Kind::ZBV;
  po.stages = 2;
  ASSERT_EQ(buildPlan(po, plan), "");
  TempDir dir("alloc");
  for (bool shadow : {false, true}) {
    allocationsOfRun(plan, 1, shadow, dir.path); // warm up OpenMP, OpenBLAS
    long one = allocationsOfRun(plan, 1, shadow, dir.path);
    // 20 steps wrap the ring of per-step metric records.
    long many = allocationsOfRun(plan, 20, shadow, dir.path);
    EXPECT_EQ(one, many) << (shadow ? "with" : "without") << " shadow memory";
    EXPECT_GT(one, 0); // the setup is counted: the hook works
  }
  long kernelsBefore = kernelAllocations.load();
  allocationsOfRun(plan, 1, false, dir.path);
  std::printf("allocations inside kernel calls per step: %ld\n",
              kernelAllocations.load() - kernelsBefore);
}
