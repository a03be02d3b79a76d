//===- NcclLibraryTest.cpp - NCCL loaded at run time, or a clear refusal --===//
//
// The nccl transport dlopens NCCL (NcclLibrary.h). Where it is installed
// (the CUDA toolkit here and in CI), every function is found, the major
// version is the one the plan was built with and a unique id can be made
// (no GPU needed). Named with PIPEC_NCCL_LIBRARY to a missing file (the
// second ctest entry), the failure names the path and says how to name
// the right one.
//
//===----------------------------------------------------------------------===//

#include "kernels/cuda/NcclLibrary.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

bool libraryNamed() {
  const char *v = std::getenv("PIPEC_NCCL_LIBRARY");
  return v && *v;
}

TEST(NcclLibrary, LoadsWithEveryFunctionAndMakesAnId) {
  if (libraryNamed())
    GTEST_SKIP() << "PIPEC_NCCL_LIBRARY names a library: the other test's";
  std::string error;
  const pipert::cuda::NcclLibrary *lib = pipert::cuda::loadNccl(error);
  ASSERT_NE(lib, nullptr) << error;
  EXPECT_EQ(lib->version / 10000, NCCL_MAJOR);
  EXPECT_GE(lib->version, 21800) << "ncclCommSplit needs NCCL 2.18";
  ncclUniqueId a{}, b{};
  ASSERT_EQ(lib->getUniqueId(&a), ncclSuccess);
  ASSERT_EQ(lib->getUniqueId(&b), ncclSuccess);
  EXPECT_NE(std::memcmp(&a, &b, sizeof a), 0) << "two ids alike";
  EXPECT_STRNE(lib->getErrorString(ncclInvalidArgument), "");
}

// A failed call says NCCL's own words beside its category: here a rank
// out of range, which NCCL refuses with its reason (on a machine without
// a GPU, as CI's, the reason it gives is CUDA's: no usable driver).
TEST(NcclLibrary, AFailureSaysNcclsOwnWords) {
  if (libraryNamed())
    GTEST_SKIP() << "PIPEC_NCCL_LIBRARY names a library: the other test's";
  std::string error;
  const pipert::cuda::NcclLibrary *lib = pipert::cuda::loadNccl(error);
  ASSERT_NE(lib, nullptr) << error;
  ASSERT_NE(lib->getLastError, nullptr) << "NCCL " << lib->version;
  ncclUniqueId id{};
  ASSERT_EQ(lib->getUniqueId(&id), ncclSuccess);
  ncclComm_t comm = nullptr;
  const ncclResult_t r = lib->commInitRank(&comm, 2, id, 7);
  ASSERT_NE(r, ncclSuccess);
  const std::string said = pipert::cuda::ncclFailure(*lib, r);
  EXPECT_NE(said.find(lib->getErrorString(r)), std::string::npos) << said;
  EXPECT_NE(said.find(" ("), std::string::npos) << said;
  std::printf("ncclCommInitRank(2 ranks, rank 7): %s\n", said.c_str());
}

/// A library whose last error is NCCL's words for two ranks on one GPU.
const char *categoryOf(ncclResult_t) { return "invalid usage"; }
const char *duplicateGpu(ncclComm_t) {
  return "Duplicate GPU detected : rank 1 and rank 0 both on CUDA device "
         "1a000\n";
}

TEST(NcclLibrary, TwoRanksOnOneGpuSayWhatToDo) {
  pipert::cuda::NcclLibrary lib{};
  lib.getErrorString = categoryOf;
  lib.getLastError = duplicateGpu;
  EXPECT_EQ(pipert::cuda::ncclFailure(lib, ncclInvalidUsage),
            "invalid usage (Duplicate GPU detected : rank 1 and rank 0 both "
            "on CUDA device 1a000); NCCL needs a GPU per rank: start at most "
            "as many ranks on a machine as it has GPUs");
  lib.getLastError = nullptr; // an older NCCL: the category alone
  EXPECT_EQ(pipert::cuda::ncclFailure(lib, ncclInvalidUsage), "invalid usage");
}

TEST(NcclLibrary, AMissingLibraryIsNamedWithTheWayToNameIt) {
  if (!libraryNamed())
    GTEST_SKIP() << "run with PIPEC_NCCL_LIBRARY=/nonexistent/libnccl.so.2";
  std::string error;
  EXPECT_EQ(pipert::cuda::loadNccl(error), nullptr);
  EXPECT_NE(error.find(std::getenv("PIPEC_NCCL_LIBRARY")), std::string::npos)
      << error;
  EXPECT_NE(error.find("set PIPEC_NCCL_LIBRARY"), std::string::npos) << error;
  // Asked again: the same answer, not a second attempt.
  std::string again;
  EXPECT_EQ(pipert::cuda::loadNccl(again), nullptr);
  EXPECT_EQ(again, error);
}

} // namespace
