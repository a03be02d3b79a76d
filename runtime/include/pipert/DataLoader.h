//===- DataLoader.h - token files and the micro-batches of a step -*- C++
//-*-===//
//
// Tokens are the bytes of a text file (vocabulary 256) or the tokens of an
// llm.c shard (a 256-int32 header: magic 20240520 and version 1 for uint16
// tokens, magic 20240801 and version 7 for uint32 ones, llm.c's own rule;
// then the token count and the tokens). Batching follows docs/TRAINING.md: micro-batch j
// of step s is global micro-batch g = s*M + j, read contiguously from
// position (g mod per_epoch) * B*T, targets shifted by one token. A file is
// mapped (InputFile.h), never copied: tokens are read where they lie.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_DATALOADER_H
#define PIPERT_DATALOADER_H

#include "pipert/InputFile.h"

#include <cstdint>
#include <string>
#include <vector>

namespace pipert {

/// The first int32 of an llm.c token shard of uint16 tokens.
constexpr int32_t kLlmcMagic = 20240520;
/// Its version.
constexpr int32_t kLlmcVersion = 1;
/// The first int32 and the version of a shard of uint32 tokens (for
/// vocabularies over 65,536).
constexpr int32_t kLlmcMagic32 = 20240801;
constexpr int32_t kLlmcVersion32 = 7;
/// Bytes of an llm.c shard header (256 int32).
constexpr int64_t kLlmcHeaderBytes = 256 * 4;

/// The tokens of a file (mapped or, from parseTokens, copied) and where
/// they came from. Move-only: it owns its mapping.
class TokenFile {
public:
  /// Number of tokens.
  int64_t size() const { return count; }
  /// Token i (0 <= i < size()).
  int32_t operator[](int64_t i) const {
    switch (width) {
    case 2:
      return int32_t(base[2 * i]) | int32_t(base[2 * i + 1]) << 8;
    case 4: // a token of 2^31 or more reads negative: firstOutside finds it
      return int32_t(uint32_t(base[4 * i]) | uint32_t(base[4 * i + 1]) << 8 |
                     uint32_t(base[4 * i + 2]) << 16 |
                     uint32_t(base[4 * i + 3]) << 24);
    default:
      return int32_t(base[i]);
    }
  }
  /// True for an llm.c shard, false for raw bytes.
  bool shard() const { return width > 1; }
  /// Bytes per token: 1 (raw bytes), 2 or 4 (llm.c shards).
  int tokenBytes() const { return width; }
  /// The largest token, -1 when empty (one pass over the file).
  int32_t maxToken() const;
  /// The first position of a token >= vocab (or of a uint32 token of 2^31
  /// or more), or -1.
  int64_t firstOutside(int64_t vocab) const;
  /// Tells two token files apart without reading a large one whole: FNV-1a
  /// over the token width, the count and every byte of a file up to 4 MiB,
  /// else 64 pieces of 64 KiB spread evenly from the first byte to the
  /// last. The processes of one run compare it (RunOptions::agree).
  uint64_t fingerprint() const;

private:
  friend bool parseTokenBytes(const uint8_t *, size_t, const std::string &,
                              TokenFile &, std::string &);
  friend bool loadTokens(const std::string &, TokenFile &, std::string &);
  friend bool parseTokens(const std::vector<uint8_t> &, const std::string &,
                          TokenFile &, std::string &);
  friend class Batcher;
  MappedFile mapping;        ///< the file, when loaded from a path
  std::string source;        ///< its path (for messages), when loaded
  std::vector<uint8_t> owned; ///< the bytes, when parsed from memory
  const uint8_t *base = nullptr; ///< the first token's bytes
  int64_t count = 0;
  int width = 1;
};

/// Reads `path`: an llm.c shard when it starts with the magic (or its name
/// ends in ".bin", which then must be a valid shard), else its bytes. On
/// failure returns false with `error` = "PATH: what is wrong".
bool loadTokens(const std::string &path, TokenFile &out, std::string &error);

/// Parses file bytes the same way; `path` is used in messages only.
bool parseTokens(const std::vector<uint8_t> &bytes, const std::string &path,
                 TokenFile &out, std::string &error);

/// The micro-batches of a token sequence.
class Batcher {
public:
  /// Fails when the data holds less than one micro-batch plus one target,
  /// or when a shape is not positive.
  static bool create(const TokenFile &tokens, int64_t batch,
                     int64_t seq, int64_t microbatches, Batcher &out,
                     std::string &error);

  /// Writes micro-batch j of step s: tokens and targets, B*T int32 each.
  /// Fails, naming the file, when its mapping can no longer be read (the
  /// file shrank under the run: SIGBUS, caught).
  [[nodiscard]] bool microBatch(int64_t step, int64_t j, int32_t *tokens,
                                int32_t *targets, std::string &error) const;

  /// Micro-batches before the data wraps around.
  int64_t perEpoch() const { return perEpochCount; }

private:
  const TokenFile *data = nullptr;
  int64_t batch = 0, seq = 0, microbatches = 0, perEpochCount = 0;
};

} // namespace pipert

#endif // PIPERT_DATALOADER_H
