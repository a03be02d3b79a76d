//===- DataLoaderTest.cpp - token files and micro-batch positions ---------===//

#include "pipert/DataLoader.h"

#include <gtest/gtest.h>

#include <fstream>
#include <random>

using namespace pipert;

namespace {

/// Every token of `f`, in order.
std::vector<int32_t> all(const TokenFile &f) {
  std::vector<int32_t> out;
  for (int64_t i = 0; i < f.size(); ++i)
    out.push_back(f[i]);
  return out;
}

/// An llm.c shard holding `tokens`, with the given header fields.
std::vector<uint8_t> shard(const std::vector<uint16_t> &tokens,
                           int32_t magic = kLlmcMagic, int32_t version = 1,
                           int64_t count = -1) {
  std::vector<int32_t> header(256, 0);
  header[0] = magic;
  header[1] = version;
  header[2] = int32_t(count < 0 ? int64_t(tokens.size()) : count);
  std::vector<uint8_t> bytes(1024 + 2 * tokens.size());
  for (int i = 0; i < 256; ++i)
    for (int b = 0; b < 4; ++b)
      bytes[4 * i + b] = uint8_t(uint32_t(header[i]) >> (8 * b));
  for (size_t i = 0; i < tokens.size(); ++i) {
    bytes[1024 + 2 * i] = uint8_t(tokens[i]);
    bytes[1024 + 2 * i + 1] = uint8_t(tokens[i] >> 8);
  }
  return bytes;
}

std::string parseError(const std::vector<uint8_t> &bytes,
                       const std::string &path) {
  TokenFile f;
  std::string error;
  EXPECT_FALSE(parseTokens(bytes, path, f, error));
  return error;
}

TEST(DataLoader, TextBytesAreTokens) {
  std::string text = "Hello\xff\x01";
  TokenFile f;
  std::string error;
  ASSERT_TRUE(parseTokens(std::vector<uint8_t>(text.begin(), text.end()),
                          "a.txt", f, error));
  EXPECT_FALSE(f.shard());
  EXPECT_EQ(all(f), (std::vector<int32_t>{'H', 'e', 'l', 'l', 'o', 255, 1}));
}

TEST(DataLoader, ShardTokensAreUint16) {
  std::mt19937 rng(3);
  std::vector<uint16_t> toks(1000);
  for (uint16_t &t : toks)
    t = uint16_t(rng());
  TokenFile f;
  std::string error;
  ASSERT_TRUE(parseTokens(shard(toks), "train.bin", f, error)) << error;
  EXPECT_TRUE(f.shard());
  ASSERT_EQ(size_t(f.size()), toks.size());
  for (size_t i = 0; i < toks.size(); ++i)
    EXPECT_EQ(f[int64_t(i)], int32_t(toks[i]));
}

/// An llm.c shard of uint32 tokens (magic 20240801, version 7).
static std::vector<uint8_t> shard32(const std::vector<uint32_t> &toks,
                                    int32_t version = kLlmcVersion32) {
  std::vector<uint8_t> out(size_t(kLlmcHeaderBytes) + 4 * toks.size(), 0);
  auto put = [&](size_t at, uint32_t v) {
    for (int b = 0; b < 4; ++b)
      out[at + size_t(b)] = uint8_t(v >> (8 * b));
  };
  put(0, uint32_t(kLlmcMagic32));
  put(4, uint32_t(version));
  put(8, uint32_t(toks.size()));
  for (size_t i = 0; i < toks.size(); ++i)
    put(size_t(kLlmcHeaderBytes) + 4 * i, toks[i]);
  return out;
}

TEST(DataLoader, Uint32ShardTokens) {
  // Tokens above 65,535 (a vocabulary of 128K, Llama 3's) read back whole.
  std::mt19937 rng(5);
  std::vector<uint32_t> toks(1000);
  for (uint32_t &t : toks)
    t = rng() % 128256;
  TokenFile f;
  std::string error;
  ASSERT_TRUE(parseTokens(shard32(toks), "train.bin", f, error)) << error;
  EXPECT_TRUE(f.shard());
  EXPECT_EQ(f.tokenBytes(), 4);
  ASSERT_EQ(size_t(f.size()), toks.size());
  for (size_t i = 0; i < toks.size(); ++i)
    EXPECT_EQ(f[int64_t(i)], int32_t(toks[i]));
  EXPECT_EQ(f.firstOutside(128256), -1);
  // llm.c's rule: the magic fixes the version.
  TokenFile g;
  EXPECT_FALSE(parseTokens(shard32(toks, 1), "train.bin", g, error));
  EXPECT_NE(error.find("version 1 is not supported with magic 20240801 "
                       "(expected 7, uint32 tokens)"),
            std::string::npos)
      << error;
  // A token of 2^31 or more is outside any vocabulary.
  TokenFile h;
  ASSERT_TRUE(parseTokens(shard32({1, 2, 0x80000000u, 3}), "t.bin", h, error));
  EXPECT_EQ(h.firstOutside(1 << 30), 2);
}

TEST(DataLoader, BadShardHeadersAreClear) {
  std::vector<uint16_t> toks(10, 7);
  EXPECT_NE(parseError(shard(toks, 12345), "x.bin")
                .find("magic number 12345, expected 20240520"),
            std::string::npos);
  EXPECT_NE(parseError(shard(toks, kLlmcMagic, 2), "x.bin")
                .find("version 2 is not supported"),
            std::string::npos);
  EXPECT_NE(parseError(shard(toks, kLlmcMagic, 1, 11), "x.bin")
                .find("claims 11 tokens but the file holds 10"),
            std::string::npos);
  // Fewer than it holds, or bytes past its tokens: llm.c refuses both.
  EXPECT_NE(parseError(shard(toks, kLlmcMagic, 1, 9), "x.bin")
                .find("claims 9 tokens but the file holds 10 (a shard is the "
                      "1024-byte header and exactly its tokens)"),
            std::string::npos);
  std::vector<uint8_t> stray = shard(toks);
  stray.push_back(0);
  EXPECT_NE(parseError(stray, "x.bin")
                .find("claims 10 tokens but the file holds 10 and 1 stray "
                      "byte"),
            std::string::npos);
  EXPECT_NE(parseError(shard({}), "x.bin").find("holds no tokens"),
            std::string::npos);
  std::vector<uint8_t> truncated = shard(toks);
  truncated.resize(100);
  EXPECT_NE(
      parseError(truncated, "x.bin").find("header is truncated: 100 bytes"),
      std::string::npos);
  EXPECT_NE(parseError({}, "empty.txt").find("holds no tokens"),
            std::string::npos);
}

TEST(DataLoader, MissingFile) {
  TokenFile f;
  std::string error;
  EXPECT_FALSE(
      loadTokens(::testing::TempDir() + "/no-such-data.txt", f, error));
  EXPECT_NE(error.find("cannot open the data file"), std::string::npos)
      << error;
}

TEST(DataLoader, FileRoundTrip) {
  std::string path = ::testing::TempDir() + "/pipert-data.bin";
  std::vector<uint8_t> bytes = shard({5, 6, 70000 % 65536});
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<char *>(bytes.data()), bytes.size());
  TokenFile f;
  std::string error;
  ASSERT_TRUE(loadTokens(path, f, error)) << error;
  EXPECT_EQ(all(f), (std::vector<int32_t>{5, 6, 70000 % 65536}));
}

TEST(DataLoader, MicroBatchesFollowTheContract) {
  std::vector<uint8_t> bytes(103);
  for (size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = uint8_t(i * 7 % 256);
  TokenFile data;
  std::string error;
  ASSERT_TRUE(parseTokens(bytes, "data.txt", data, error)) << error;
  Batcher b;
  // B=2, T=5: per_epoch = 102 / 10 = 10; M=3.
  ASSERT_TRUE(Batcher::create(data, 2, 5, 3, b, error)) << error;
  EXPECT_EQ(b.perEpoch(), 10);
  std::vector<int32_t> x(10), y(10);
  for (int64_t s : {0, 1, 3, 4}) {
    for (int64_t j = 0; j < 3; ++j) {
      ASSERT_TRUE(b.microBatch(s, j, x.data(), y.data(), error)) << error;
      int64_t start = ((s * 3 + j) % 10) * 10;
      for (int i = 0; i < 10; ++i) {
        EXPECT_EQ(x[i], int32_t(bytes[start + i])) << "s=" << s << " j=" << j;
        EXPECT_EQ(y[i], int32_t(bytes[start + i + 1]));
      }
    }
  }
}

// Tests that a data file cut short under a run (another job rewriting
// it) fails the next micro-batch read past its new end, naming the file,
// instead of ending the process with SIGBUS.
TEST(DataLoader, AFileThatShrinksFailsTheRead) {
  const std::string path = ::testing::TempDir() + "/pipert-shrinks.txt";
  std::vector<char> text(3 * 4096 + 1);
  for (size_t i = 0; i < text.size(); ++i)
    text[i] = char('a' + i % 26);
  std::ofstream(path, std::ios::binary).write(text.data(), text.size());
  TokenFile data;
  std::string error;
  ASSERT_TRUE(loadTokens(path, data, error)) << error;
  Batcher b;
  ASSERT_TRUE(Batcher::create(data, 4, 1024, 1, b, error)) << error;
  std::vector<int32_t> x(4096), y(4096);
  ASSERT_TRUE(b.microBatch(2, 0, x.data(), y.data(), error)) << error;
  EXPECT_EQ(x[0], int32_t('a' + 2 * 4096 % 26));
  std::ofstream(path, std::ios::binary | std::ios::trunc); // now empty
  EXPECT_FALSE(b.microBatch(2, 0, x.data(), y.data(), error));
  EXPECT_NE(error.find("pipert-shrinks.txt: the file shrank while the run "
                       "read it (reading tokens 8192 to 12288 of the 12289"),
            std::string::npos)
      << error;
  // The guard is per read: the next read fails the same way, not fatally.
  EXPECT_FALSE(b.microBatch(1, 0, x.data(), y.data(), error));
}

TEST(DataLoader, TooLittleDataIsAnError) {
  TokenFile data;
  std::string error;
  ASSERT_TRUE(parseTokens(std::vector<uint8_t>(10, 1), "data.txt", data, error));
  Batcher b;
  EXPECT_FALSE(Batcher::create(data, 2, 5, 1, b, error));
  EXPECT_NE(error.find("holds 10 tokens, fewer than one micro-batch of 2x5"),
            std::string::npos)
      << error;
}

} // namespace

// The fingerprint the processes of a run compare: equal data gives equal
// prints; a small file differs at any byte; a large one (sampled) at its
// first and last byte and inside a piece, and by its length or token
// width even where the bytes read are the same.
TEST(DataLoader, FingerprintTellsDataApart) {
  std::mt19937 rng(11);
  auto text = [&](size_t n) {
    std::vector<uint8_t> bytes(n);
    for (uint8_t &b : bytes)
      b = uint8_t(rng());
    return bytes;
  };
  auto print = [](const std::vector<uint8_t> &bytes) {
    TokenFile f;
    std::string error;
    EXPECT_TRUE(parseTokens(bytes, "d.txt", f, error)) << error;
    return f.fingerprint();
  };
  std::vector<uint8_t> small = text(100000);
  const uint64_t base = print(small);
  EXPECT_EQ(print(small), base);
  for (size_t at : {size_t(0), size_t(54321), small.size() - 1}) {
    std::vector<uint8_t> other = small;
    other[at] ^= 1;
    EXPECT_NE(print(other), base) << "a change at byte " << at;
  }
  std::vector<uint8_t> shorter(small.begin(), small.end() - 1);
  EXPECT_NE(print(shorter), base);

  // 6 MiB: sampled. Piece i starts at i/63 of (size - 64 KiB).
  std::vector<uint8_t> large = text(size_t(6) << 20);
  const uint64_t big = print(large);
  const size_t piece10 = (large.size() - (size_t(64) << 10)) * 10 / 63;
  for (size_t at : {size_t(0), large.size() - 1, piece10 + 1000}) {
    std::vector<uint8_t> other = large;
    other[at] ^= 0x80;
    EXPECT_NE(print(other), big) << "a change at byte " << at;
  }

  // The same bytes read as uint16 tokens of a shard are another file.
  std::vector<uint16_t> tokens(50000);
  for (uint16_t &t : tokens)
    t = uint16_t(rng());
  TokenFile f;
  std::string error;
  const std::vector<uint8_t> bytes = shard(tokens);
  ASSERT_TRUE(parseTokens(bytes, "d.bin", f, error)) << error;
  std::vector<uint8_t> raw(bytes.begin() + 1024, bytes.end());
  EXPECT_NE(f.fingerprint(), print(raw));
}
