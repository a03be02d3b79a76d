//===- AtomicFileTest.cpp - files written whole, inputs checked, numbers strict ===//

#include "pipert/AtomicFile.h"
#include "pipert/InputFile.h"
#include "pipert/ParseNumber.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

using namespace pipert;
namespace fs = std::filesystem;

namespace {

std::string readAll(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A fresh directory under the test temp dir.
std::string freshDir(const std::string &name) {
  std::string dir = ::testing::TempDir() + "/pipert-atomic-" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

size_t entries(const std::string &dir) {
  return size_t(std::distance(fs::directory_iterator(dir), {}));
}

// Tests that the target keeps its old bytes until commit() and holds the
// whole new ones after it, with no temporary file left; the same when the
// directory's sync is left to the caller (a batch of files).
TEST(AtomicFile, ReplacesOnCommitOnly) {
  for (DirSync sync : {DirSync::Now, DirSync::Later}) {
    std::string dir = freshDir("commit"), path = dir + "/w.bin";
    std::ofstream(path) << "old";
    AtomicFile f;
    ASSERT_TRUE(f.open(path).ok());
    ASSERT_TRUE(f.write("new bytes, ").ok());
    ASSERT_TRUE(f.write(std::string(100000, 'x')).ok());
    EXPECT_EQ(readAll(path), "old");
    EXPECT_EQ(entries(dir), 2u); // the target and the temporary file
    ASSERT_TRUE(f.commit(sync).ok());
    EXPECT_EQ(readAll(path), "new bytes, " + std::string(100000, 'x'));
    EXPECT_EQ(entries(dir), 1u);
    syncDirectory(dir);
  }
}

// Tests that a file never committed leaves the target and no temporary.
TEST(AtomicFile, DiscardedLeavesTheOldFile) {
  std::string dir = freshDir("discard"), path = dir + "/m.jsonl";
  std::ofstream(path) << "old log";
  {
    AtomicFile f;
    ASSERT_TRUE(f.open(path).ok());
    ASSERT_TRUE(f.write("half").ok());
  }
  EXPECT_EQ(readAll(path), "old log");
  EXPECT_EQ(entries(dir), 1u);
}

// Tests that the injected full disk fails with the file and errno named.
TEST(AtomicFile, InjectedFullDiskIsAnError) {
  std::string dir = freshDir("enospc"), path = dir + "/w.bin";
  std::ofstream(path) << "old";
  setenv("PIPEC_FAULT_WRITE", "w.bin:10:enospc", 1);
  Status s = writeFileAtomically(path, std::string(64, 'y'));
  unsetenv("PIPEC_FAULT_WRITE");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot write " + path +
                             ": No space left on device"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(readAll(path), "old");
  EXPECT_EQ(entries(dir), 1u);
}

// Tests that the files a plan's manifest lists are refused, others not.
TEST(AtomicFile, PlanFilesAreTheCompilers) {
  std::string dir = freshDir("plan");
  std::ofstream(dir + "/manifest.json")
      << R"({"files": ["chunk0.cpp", "rank0.pstream", "manifest.json"]})";
  EXPECT_FALSE(writeFileAtomically(dir + "/rank0.pstream", "x").ok());
  EXPECT_FALSE(writeFileAtomically(dir + "/manifest.json", "x").ok());
  EXPECT_TRUE(writeFileAtomically(dir + "/weights.safetensors", "x").ok());
  EXPECT_TRUE(writeFileAtomically(dir + "/rank0.pstream", "x",
                                  PlanFiles::Allow)
                  .ok());
  Status s = refusePlanFile(dir + "/chunk0.cpp", "--save");
  EXPECT_NE(s.message().find("is a plan folder and chunk0.cpp is one of its "
                             "files"),
            std::string::npos)
      << s.message();
}

// Tests that a device is written in place and a directory refused.
TEST(AtomicFile, DevicesInPlaceDirectoriesRefused) {
  EXPECT_TRUE(writeFileAtomically("/dev/null", "discarded").ok());
  std::string dir = freshDir("dir");
  EXPECT_FALSE(writeFileAtomically(dir, "x").ok());
}

// Tests that only regular files are inputs, and a FIFO does not block.
TEST(InputFile, OnlyRegularFiles) {
  std::string dir = freshDir("inputs");
  std::string fifo = dir + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  Status s = checkInputFile(fifo, "data file");
  EXPECT_NE(s.message().find("the data file is a FIFO, not a regular file"),
            std::string::npos)
      << s.message();
  EXPECT_NE(checkInputFile(dir, "data file").message().find("a directory"),
            std::string::npos);
  EXPECT_NE(checkInputFile("/dev/zero", "data file").message().find("a device"),
            std::string::npos);
  std::ofstream(dir + "/data.txt") << "hello";
  MappedFile m;
  ASSERT_TRUE(m.open(dir + "/data.txt", "data file").ok());
  ASSERT_EQ(m.size(), 5u);
  EXPECT_EQ(std::string(reinterpret_cast<const char *>(m.data()), 5), "hello");
}

// Tests the strict parsers: decimal, in range, no overflow.
TEST(ParseNumber, RefusesWhatItCannotMean) {
  int64_t v = 0;
  std::string e;
  EXPECT_TRUE(parseInteger("--n", "42", 1, 100, v, e));
  EXPECT_EQ(v, 42);
  for (const char *bad : {"1e3", "1.5", "0x10", " 2", "+2", "", "101", "0",
                          "99999999999999999999", "-"})
    EXPECT_FALSE(parseInteger("--n", bad, 1, 100, v, e)) << bad;
  EXPECT_EQ(e, "--n must be an integer from 1 to 100, not '-'");
  uint64_t u = 0;
  EXPECT_TRUE(parseUnsigned("--seed", "18446744073709551615", u, e));
  EXPECT_EQ(u, 18446744073709551615ull);
  EXPECT_FALSE(parseUnsigned("--seed", "-1", u, e));
  double d = 0;
  EXPECT_TRUE(parseFinite("--t", "0.5", 0, 1, d, e));
  for (const char *bad : {"nan", "inf", "1e400", "-0.1", "0x1p3", "2"})
    EXPECT_FALSE(parseFinite("--t", bad, 0, 1, d, e)) << bad;
}

} // namespace
