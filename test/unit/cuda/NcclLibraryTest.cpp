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
