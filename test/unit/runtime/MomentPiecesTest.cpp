//===- MomentPiecesTest.cpp - ZeRO-1's moments in pieces, assembled -------===//
//
// Pieces of a moment, written by several replicas (in any order, some
// from a padded stored shape), are assembled into the whole moment in the
// model's shape, bit for bit; pieces that overlap, leave a gap, stop short
// or miss their shapes are refused, naming the moment; pieces a reader's
// filter left in the file give a skipped whole moment.
//
//===----------------------------------------------------------------------===//

#include "runtime/runner/MomentPieces.h"

#include <gtest/gtest.h>

#include <random>

using namespace pipecrun;

namespace {

/// A file holding moment "w.adam_m" of a stored [rows, cols] tensor whose
/// model shape is [rows, modelCols], cut at `cuts` (stored elements),
/// pieces listed last first; `values` gets the stored elements.
pipert::SafetensorsFile piecesFile(int64_t rows, int64_t cols,
                                   int64_t modelCols,
                                   const std::vector<int64_t> &cuts,
                                   std::vector<float> &values) {
  std::mt19937 rng(5);
  std::normal_distribution<float> d(0.0f, 1.0f);
  values.resize(size_t(rows * cols));
  for (float &v : values)
    v = d(rng);
  pipert::SafetensorsFile f;
  std::vector<int64_t> at = cuts;
  at.insert(at.begin(), 0);
  at.push_back(rows * cols);
  for (size_t i = at.size() - 1; i-- > 0;)
    f.tensors.push_back(pipert::makeFloatTensor<float>(
        pieceName("w.adam_m", at[i]), {at[i + 1] - at[i]},
        values.data() + at[i]));
  f.tensors.push_back(pipert::makeFloatTensor<float>("w", {rows, modelCols},
                                                     values.data()));
  f.metadata[storedShapeKey("w")] = shapeText({rows, cols});
  f.metadata[modelShapeKey("w")] = shapeText({rows, modelCols});
  return f;
}

TEST(MomentPieces, NamesSplitBackAndOthersAreNotPieces) {
  std::string moment;
  int64_t first = -1;
  EXPECT_TRUE(splitPieceName(pieceName("h.0.w.adam_v", 42), moment, first));
  EXPECT_EQ(moment, "h.0.w.adam_v");
  EXPECT_EQ(first, 42);
  for (const char *name : {"h.0.w", "h.0.w.adam_m", "h.0.w@3", "x.adam_m@",
                           "x.adam_m@1a", "x.adam_m@-1"})
    EXPECT_FALSE(splitPieceName(name, moment, first)) << name;
}

TEST(MomentPieces, PiecesOfAPaddedStoredShapeAssembleInTheModelsShape) {
  // Stored [3, 8] (padded), model [3, 5]; three replicas' pieces.
  std::vector<float> stored;
  pipert::SafetensorsFile f = piecesFile(3, 8, 5, {7, 16}, stored);
  std::string error;
  ASSERT_TRUE(assembleMomentPieces(f, "ck", error)) << error;
  ASSERT_EQ(f.tensors.size(), 2u);
  const pipert::Tensor *m = f.find("w.adam_m");
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->skipped);
  EXPECT_EQ(m->shape, (std::vector<int64_t>{3, 5}));
  std::vector<float> got;
  ASSERT_TRUE(pipert::readFloatTensor(*m, got, error)) << error;
  for (int64_t r = 0; r < 3; ++r)
    for (int64_t c = 0; c < 5; ++c)
      EXPECT_EQ(got[size_t(r * 5 + c)], stored[size_t(r * 8 + c)]);
  EXPECT_TRUE(f.find("w")); // other tensors stay
}

TEST(MomentPieces, OverlapGapShortAndShapelessPiecesAreNamed) {
  std::vector<float> stored;
  std::string error;
  pipert::SafetensorsFile f = piecesFile(2, 4, 4, {3}, stored);
  f.tensors[0] = pipert::makeFloatTensor<float>(pieceName("w.adam_m", 2),
                                                {6}, stored.data());
  EXPECT_FALSE(assembleMomentPieces(f, "ck", error));
  EXPECT_NE(error.find("ck: the pieces of 'w.adam_m' overlap at element 2 "
                       "of 8"),
            std::string::npos)
      << error;
  f = piecesFile(2, 4, 4, {3}, stored);
  f.tensors[0] = pipert::makeFloatTensor<float>(pieceName("w.adam_m", 4),
                                                {4}, stored.data());
  EXPECT_FALSE(assembleMomentPieces(f, "ck", error));
  EXPECT_NE(error.find("leave a gap at element 3"), std::string::npos)
      << error;
  f = piecesFile(2, 4, 4, {3}, stored);
  f.tensors[0] = pipert::makeFloatTensor<float>(pieceName("w.adam_m", 3),
                                                {2}, stored.data());
  EXPECT_FALSE(assembleMomentPieces(f, "ck", error));
  EXPECT_NE(error.find("end at element 5, not at the 8 of its stored shape "
                       "[2,4]"),
            std::string::npos)
      << error;
  f = piecesFile(2, 4, 4, {3}, stored);
  f.metadata.erase(storedShapeKey("w"));
  EXPECT_FALSE(assembleMomentPieces(f, "ck", error));
  EXPECT_NE(error.find("have no valid pipec.stored_shape.w"),
            std::string::npos)
      << error;
  f = piecesFile(2, 4, 4, {3}, stored);
  f.metadata[modelShapeKey("w")] = "2,9";
  EXPECT_FALSE(assembleMomentPieces(f, "ck", error));
  EXPECT_NE(error.find("does not hold the model's [2,9]"), std::string::npos)
      << error;
  // Whole and in pieces at once.
  f = piecesFile(2, 4, 4, {3}, stored);
  f.tensors.push_back(
      pipert::makeFloatTensor<float>("w.adam_m", {2, 4}, stored.data()));
  EXPECT_FALSE(assembleMomentPieces(f, "ck", error));
  EXPECT_NE(error.find("'w.adam_m' is there whole and in pieces"),
            std::string::npos)
      << error;
}

TEST(MomentPieces, SkippedPiecesGiveASkippedMoment) {
  std::vector<float> stored;
  pipert::SafetensorsFile f = piecesFile(2, 4, 4, {3}, stored);
  for (pipert::Tensor &t : f.tensors)
    if (t.name.find('@') != std::string::npos) {
      t.data.clear();
      t.skipped = true;
    }
  std::string error;
  ASSERT_TRUE(assembleMomentPieces(f, "ck", error)) << error;
  const pipert::Tensor *m = f.find("w.adam_m");
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->skipped);
  EXPECT_TRUE(m->data.empty());
  EXPECT_EQ(m->shape, (std::vector<int64_t>{2, 4}));
}

} // namespace
