//===- SafetensorsTest.cpp - safetensors round trips and malformed files --===//

#include "pipert/Safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>

using namespace pipert;

namespace {

std::string tempPath(const std::string &name) {
  return ::testing::TempDir() + "/pipert-st-" + name;
}

/// A file made of a header text and `dataBytes` zero data bytes.
std::vector<uint8_t> rawFile(const std::string &header, size_t dataBytes) {
  std::vector<uint8_t> bytes(8);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i)
    bytes[i] = uint8_t(n >> (8 * i));
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.resize(bytes.size() + dataBytes, 0);
  return bytes;
}

std::string parseError(const std::vector<uint8_t> &bytes) {
  SafetensorsFile f;
  std::string error;
  EXPECT_FALSE(parseSafetensors(bytes, "x.safetensors", f, error));
  return error;
}

TEST(Safetensors, RoundTripKeepsOrderValuesAndMetadata) {
  std::mt19937 rng(7);
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<float> a(6 * 5);
  std::vector<double> b(7);
  for (float &v : a)
    v = float(dist(rng));
  for (double &v : b)
    v = dist(rng);
  // Names out of alphabetical order: the file keeps the writer's order.
  std::vector<Tensor> tensors = {
      makeFloatTensor<float>("z.weight", {6, 5}, a.data()),
      makeFloatTensor<double>("a.bias", {7}, b.data())};
  std::string path = tempPath("roundtrip.safetensors"), error;
  ASSERT_TRUE(writeSafetensors(path, tensors, {{"format", "pt"}}, error))
      << error;
  SafetensorsFile f;
  ASSERT_TRUE(readSafetensors(path, f, error)) << error;
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].name, "z.weight");
  EXPECT_EQ(f.tensors[0].dtype, "F32");
  EXPECT_EQ(f.tensors[0].shape, (std::vector<int64_t>{6, 5}));
  EXPECT_EQ(f.tensors[1].name, "a.bias");
  EXPECT_EQ(f.metadata.at("format"), "pt");
  std::vector<float> a2;
  std::vector<double> b2;
  ASSERT_TRUE(readFloatTensor(*f.find("z.weight"), a2, error));
  ASSERT_TRUE(readFloatTensor(*f.find("a.bias"), b2, error));
  EXPECT_EQ(a2, a);
  EXPECT_EQ(b2, b);
  // F64 read as float rounds each value once.
  std::vector<float> b3;
  ASSERT_TRUE(readFloatTensor(*f.find("a.bias"), b3, error));
  for (size_t i = 0; i < b.size(); ++i)
    EXPECT_EQ(b3[i], float(b[i]));
  EXPECT_EQ(f.find("missing"), nullptr);
  std::remove(path.c_str());
}

TEST(Safetensors, AFilterReadsTheTensorsWantedAndChecksTheOthersHeaders) {
  // A process of one rank reads its own parameters' bytes; the others
  // keep their name, dtype and shape, checked, and no bytes.
  std::mt19937 rng(11);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> a(12), b(5);
  for (float &v : a)
    v = dist(rng);
  for (float &v : b)
    v = dist(rng);
  std::string path = tempPath("filter.safetensors"), error;
  ASSERT_TRUE(writeSafetensors(
      path,
      {makeFloatTensor<float>("mine", {3, 4}, a.data()),
       makeFloatTensor<float>("theirs", {5}, b.data())},
      {}, error))
      << error;
  SafetensorsFile f;
  ASSERT_TRUE(readSafetensors(path, f, error, [](const std::string &name) {
    return name == "mine";
  })) << error;
  ASSERT_EQ(f.tensors.size(), 2u);
  const Tensor *mine = f.find("mine"), *theirs = f.find("theirs");
  ASSERT_TRUE(mine && theirs);
  EXPECT_FALSE(mine->skipped);
  std::vector<float> got;
  ASSERT_TRUE(readFloatTensor(*mine, got, error)) << error;
  EXPECT_EQ(got, a);
  EXPECT_TRUE(theirs->skipped);
  EXPECT_TRUE(theirs->data.empty());
  // Its values cannot be read by mistake.
  EXPECT_FALSE(readFloatTensor(*theirs, got, error));
  EXPECT_NE(error.find("tensor 'theirs': its values were not read"),
            std::string::npos)
      << error;
  pipert::Tensor shortOne = *mine;
  shortOne.data.resize(8);
  EXPECT_FALSE(readFloatTensor(shortOne, got, error));
  EXPECT_NE(error.find("tensor 'mine': 8 bytes for 12 F32 values"),
            std::string::npos)
      << error;
  EXPECT_EQ(theirs->shape, (std::vector<int64_t>{5}));
  EXPECT_EQ(theirs->dtype, "F32");
  std::remove(path.c_str());
  // A skipped tensor's entry is checked as a read one's.
  std::vector<uint8_t> bad = rawFile(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"F32","shape":[3],"data_offsets":[8,16]}})",
      16);
  std::string out = tempPath("filter-bad.safetensors");
  FILE *w = std::fopen(out.c_str(), "wb");
  ASSERT_TRUE(w);
  ASSERT_EQ(std::fwrite(bad.data(), 1, bad.size(), w), bad.size());
  std::fclose(w);
  EXPECT_FALSE(readSafetensors(out, f, error, [](const std::string &name) {
    return name == "a";
  }));
  EXPECT_NE(error.find("tensor 'b': data_offsets [8, 16] do not hold [3]"),
            std::string::npos)
      << error;
  std::remove(out.c_str());
}

TEST(Safetensors, DataStartsAligned) {
  std::vector<float> v = {1.5f};
  std::string path = tempPath("align.safetensors"), error;
  ASSERT_TRUE(writeSafetensors(
      path, {makeFloatTensor<float>("w", {1}, v.data())}, {}, error));
  FILE *f = std::fopen(path.c_str(), "rb");
  ASSERT_NE(f, nullptr);
  uint8_t len[8];
  ASSERT_EQ(std::fread(len, 1, 8, f), 8u);
  std::fclose(f);
  EXPECT_EQ(len[0] % 8, 0);
  std::remove(path.c_str());
}

TEST(Safetensors, WriterRejectsDuplicateAndWrongSize) {
  std::vector<float> v = {1, 2};
  std::string error;
  Tensor t = makeFloatTensor<float>("w", {2}, v.data());
  EXPECT_FALSE(writeSafetensors(tempPath("dup"), {t, t}, {}, error));
  EXPECT_NE(error.find("'w' is reserved or repeated"), std::string::npos)
      << error;
  t.shape = {3};
  EXPECT_FALSE(writeSafetensors(tempPath("size"), {t}, {}, error));
  EXPECT_NE(error.find("not a F32 tensor of its shape"), std::string::npos)
      << error;
}

TEST(Safetensors, MalformedFilesNameTheProblem) {
  EXPECT_NE(parseError({1, 2, 3}).find("too short"), std::string::npos);
  std::vector<uint8_t> huge = rawFile("{}", 0);
  huge[0] = 0xff;
  huge[5] = 0x01;
  EXPECT_NE(parseError(huge).find("does not fit"), std::string::npos);
  EXPECT_NE(parseError(rawFile("{not json", 0)).find("header is not JSON"),
            std::string::npos);
  EXPECT_NE(parseError(rawFile("[1]", 0)).find("not a JSON object"),
            std::string::npos);
  EXPECT_NE(parseError(rawFile(R"({"w":{"dtype":"F32","shape":[2]}})", 8))
                .find("tensor 'w': an entry needs exactly"),
            std::string::npos);
  EXPECT_NE(
      parseError(
          rawFile(R"({"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}})",
                  8))
          .find("unknown dtype"),
      std::string::npos);
  EXPECT_NE(
      parseError(
          rawFile(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",
                  8))
          .find("bad shape"),
      std::string::npos);
  EXPECT_NE(
      parseError(
          rawFile(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                  8))
          .find("do not hold [3] F32"),
      std::string::npos);
  // A shape whose byte count wraps around 2^64 must not pass as empty.
  EXPECT_NE(
      parseError(
          rawFile(
              R"({"w":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})",
              0))
          .find("larger than the file"),
      std::string::npos);
  EXPECT_NE(
      parseError(
          rawFile(
              R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
              12))
          .find("gap or overlap"),
      std::string::npos);
  EXPECT_NE(
      parseError(
          rawFile(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                  12))
          .find("8 trailing bytes"),
      std::string::npos);
  EXPECT_NE(parseError(rawFile(R"({"__metadata__":{"k":1}})", 0))
                .find("not a string"),
            std::string::npos);
}

TEST(Safetensors, MissingFileIsAnError) {
  SafetensorsFile f;
  std::string error;
  EXPECT_FALSE(readSafetensors(tempPath("does-not-exist"), f, error));
  EXPECT_NE(error.find("cannot open the file"), std::string::npos) << error;
}

TEST(Safetensors, NonFloatTensorIsRefusedAsParameters) {
  SafetensorsFile f;
  std::string error;
  ASSERT_TRUE(parseSafetensors(
      rawFile(R"({"ids":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}})", 8),
      "x", f, error))
      << error;
  std::vector<double> out;
  EXPECT_FALSE(readFloatTensor(f.tensors[0], out, error));
  EXPECT_NE(error.find("dtype I32, expected F32, F64, BF16 or F16"),
            std::string::npos)
      << error;
}

TEST(Safetensors, HalfFormatsWidenExactly) {
  // BF16 1.5, -2^-127 (a float subnormal); F16 1.5, 2^-24 (the least
  // subnormal), -0, infinity, 65504 (the largest), NaN.
  const uint16_t bf[] = {0x3FC0, 0x8040};
  const uint16_t hf[] = {0x3E00, 0x0001, 0x8000, 0x7C00, 0x7BFF, 0x7E00};
  std::string error;
  auto file = [](const char *dtype, const uint16_t *v, int n) {
    std::string header = std::string(R"({"t":{"dtype":")") + dtype +
                         R"(","shape":[)" + std::to_string(n) +
                         R"(],"data_offsets":[0,)" + std::to_string(2 * n) +
                         "]}}";
    std::vector<uint8_t> bytes = rawFile(header, size_t(2 * n));
    std::memcpy(bytes.data() + bytes.size() - size_t(2 * n), v, size_t(2 * n));
    return bytes;
  };
  SafetensorsFile b, h;
  ASSERT_TRUE(parseSafetensors(file("BF16", bf, 2), "b", b, error)) << error;
  ASSERT_TRUE(parseSafetensors(file("F16", hf, 6), "h", h, error)) << error;
  std::vector<float> out;
  ASSERT_TRUE(readFloatTensor(b.tensors[0], out, error)) << error;
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[1], -std::ldexp(1.0f, -127));
  ASSERT_TRUE(readFloatTensor(h.tensors[0], out, error)) << error;
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[1], std::ldexp(1.0f, -24));
  EXPECT_TRUE(out[2] == 0.0f && std::signbit(out[2]));
  EXPECT_TRUE(std::isinf(out[3]) && out[3] > 0);
  EXPECT_EQ(out[4], 65504.0f);
  EXPECT_TRUE(std::isnan(out[5]));
}

} // namespace
