//===- CheckpointDirTest.cpp - committed checkpoints, pruning, refusals ---===//

#include "pipert/AtomicFile.h"
#include "pipert/CheckpointDir.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace pipert;
namespace fs = std::filesystem;

namespace {

std::string freshDir(const std::string &name) {
  std::string dir = (fs::path(::testing::TempDir()) / ("pipert-ckpt-" + name))
                        .lexically_normal()
                        .string();
  fs::remove_all(dir);
  return dir;
}

/// A committed checkpoint of `step` with two parts of distinct bytes.
void commit(const std::string &dir, int64_t step) {
  std::string partial;
  ASSERT_TRUE(beginCheckpoint(dir, step, partial).ok());
  for (const char *name : {"rank-0.safetensors", "rank-1.safetensors"})
    ASSERT_TRUE(writeFileAtomically(partial + "/" + name,
                                    std::string(name) + std::to_string(step))
                    .ok());
  Status s =
      commitCheckpoint(dir, step, {"rank-0.safetensors", "rank-1.safetensors"});
  ASSERT_TRUE(s.ok()) << s.message();
}

} // namespace

// Tests the layout, that the newest committed checkpoint is found, that a
// partial one is never, and that pruning keeps the newest ones.
TEST(CheckpointDir, CommitOpenPrune) {
  std::string dir = freshDir("commit");
  EXPECT_EQ(checkpointPath(dir, 42), dir + "/step-0000000042");
  for (int64_t step : {4, 8, 12})
    commit(dir, step);
  // A crash while writing step 16 left its partial directory.
  std::string partial;
  ASSERT_TRUE(beginCheckpoint(dir, 16, partial).ok());
  std::ofstream(partial + "/rank-0.safetensors") << "half";
  Checkpoint c;
  Status s = openCheckpoint(dir, c);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(c.step, 12);
  EXPECT_EQ(c.dir, dir + "/step-0000000012");
  ASSERT_EQ(c.parts.size(), 2u);
  EXPECT_EQ(c.parts[1], c.dir + "/rank-1.safetensors");
  s = openCheckpoint(dir + "/step-0000000008/", c);
  ASSERT_TRUE(s.ok()) << s.message();
  EXPECT_EQ(c.step, 8);
  s = openCheckpoint(partial, c);
  EXPECT_FALSE(s.ok());

  ASSERT_TRUE(pruneCheckpoints(dir, 2).ok());
  EXPECT_FALSE(fs::exists(dir + "/step-0000000004"));
  EXPECT_TRUE(fs::exists(dir + "/step-0000000008"));
  EXPECT_TRUE(fs::exists(dir + "/step-0000000012"));
  EXPECT_FALSE(fs::exists(partial));
  // A checkpoint of a step committed again replaces the older one, nothing
  // set aside left behind.
  commit(dir, 12);
  ASSERT_TRUE(openCheckpoint(dir, c).ok());
  EXPECT_EQ(c.step, 12);
  EXPECT_FALSE(fs::exists(dir + "/step-0000000012.replaced"));
  EXPECT_EQ(newestCommittedStep(dir), 12);
  // A committed checkpoint copied under another name is still itself; a
  // crash between the two renames left a .replaced one, which pruning
  // removes.
  fs::copy(dir + "/step-0000000012", dir + "/best");
  ASSERT_TRUE(openCheckpoint(dir + "/best", c).ok());
  EXPECT_EQ(c.step, 12);
  fs::copy(dir + "/step-0000000012", dir + "/step-0000000012.replaced");
  ASSERT_TRUE(pruneCheckpoints(dir, 5).ok());
  EXPECT_FALSE(fs::exists(dir + "/step-0000000012.replaced"));
  EXPECT_EQ(newestCommittedStep(freshDir("empty")), -1);
}

// A reader of some parts (a process of one rank) opens a checkpoint by the
// parts' sizes and checks the sums of the parts it reads: a flipped byte
// passes the open and is refused by verifyPart, naming the part; another
// size is refused at once.
TEST(CheckpointDir, SizesAtOpenSumsOfThePartsRead) {
  std::string dir = freshDir("lazy");
  commit(dir, 4);
  const std::string part = dir + "/step-0000000004/rank-1.safetensors";
  {
    std::fstream f(part, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(2);
    char b = 0;
    f.read(&b, 1);
    b = char(b ^ 1);
    f.seekp(2);
    f.write(&b, 1);
  }
  Checkpoint c;
  ASSERT_TRUE(openCheckpoint(dir, c, PartCheck::Size).ok());
  ASSERT_EQ(c.parts.size(), c.bytes.size());
  size_t bad = c.parts.size();
  for (size_t i = 0; i < c.parts.size(); ++i)
    if (c.parts[i] == part)
      bad = i;
  ASSERT_LT(bad, c.parts.size());
  for (size_t i = 0; i < c.parts.size(); ++i)
    EXPECT_EQ(verifyPart(c, i).ok(), i != bad) << c.parts[i];
  EXPECT_NE(verifyPart(c, bad).message().find("rank-1.safetensors is "
                                              "damaged"),
            std::string::npos);
  EXPECT_FALSE(openCheckpoint(dir, c).ok()); // Whole: the sums at once
  // The newest of a directory chosen: its refusal names the older ones.
  commit(dir, 2);
  ASSERT_TRUE(openCheckpoint(dir, c, PartCheck::Size).ok());
  EXPECT_EQ(c.older, std::vector<std::string>{"step-0000000002"});
  EXPECT_NE(verifyPart(c, bad).message().find(
                "; older committed checkpoints: step-0000000002 (pass one "
                "to --resume)"),
            std::string::npos)
      << verifyPart(c, bad).message();
  ASSERT_TRUE(openCheckpoint(dir + "/step-0000000004", c, PartCheck::Size)
                  .ok());
  EXPECT_TRUE(c.older.empty()); // a step named: no choice was made
  EXPECT_EQ(verifyPart(c, bad).message().find("older"), std::string::npos);
  std::ofstream(part, std::ios::app) << "x";
  Status s = openCheckpoint(dir, c, PartCheck::Size);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("rank-1.safetensors is damaged"),
            std::string::npos)
      << s.message();
}

// Tests that a damaged newest checkpoint is refused naming the part and
// the older checkpoints, and that markers that lie are refused.
TEST(CheckpointDir, RefusesDamageAndLyingMarkers) {
  std::string dir = freshDir("damage");
  commit(dir, 4);
  commit(dir, 8);
  std::ofstream(dir + "/step-0000000008/rank-1.safetensors", std::ios::app)
      << "x";
  Checkpoint c;
  Status s = openCheckpoint(dir, c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("rank-1.safetensors is damaged"),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("older committed checkpoints: step-0000000004 "
                             "(pass one to --resume)"),
            std::string::npos)
      << s.message();
  ASSERT_TRUE(openCheckpoint(dir + "/step-0000000004", c).ok());

  // A part outside the checkpoint's directory.
  ASSERT_TRUE(writeFileAtomically(dir + "/step-0000000004/COMMITTED",
                                  R"({"step": 4, "parts": [{"name": )"
                                  R"("../step-0000000008/rank-0.safetensors",)"
                                  R"( "bytes": 1, "fnv1a64": "0"}]})")
                  .ok());
  s = openCheckpoint(dir + "/step-0000000004", c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("a part named"), std::string::npos)
      << s.message();
  // A marker of another step; and no marker at all.
  ASSERT_TRUE(writeFileAtomically(dir + "/step-0000000004/COMMITTED",
                                  R"({"step": 5, "parts": []})")
                  .ok());
  s = openCheckpoint(dir + "/step-0000000004", c);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("its marker is for step 5"), std::string::npos)
      << s.message();
  ASSERT_TRUE(writeFileAtomically(dir + "/step-0000000004/COMMITTED",
                                  "not json")
                  .ok());
  s = openCheckpoint(dir + "/step-0000000004", c);
  EXPECT_NE(s.message().find("not a commit marker"), std::string::npos)
      << s.message();
  s = openCheckpoint(freshDir("none"), c);
  EXPECT_NE(s.message().find("not a checkpoint directory"), std::string::npos)
      << s.message();
}
