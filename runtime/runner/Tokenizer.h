//===- Tokenizer.h - a byte-level BPE tokenizer.json for --sample -*- C++ -*-===//
//
// `pipec-run --sample N --tokenizer tokenizer.json` encodes the prompt and
// decodes what it generates through a Hugging Face tokenizer.json of the
// byte-level BPE kind (GPT-2's, and what pipec-tokenize train writes): the
// vocabulary's strings are bytes written with GPT-2's bytes-to-unicode
// table, and merges join adjacent pieces by rank. The prompt is split as
// GPT-2's pre-tokenizer splits ASCII text (contractions, letter, digit and
// other runs with their leading space, whitespace), bytes above 0x7f
// counted as letters; decoding is exact for any ids.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_RUNTIME_RUNNER_TOKENIZER_H
#define PIPEC_RUNTIME_RUNNER_TOKENIZER_H

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace pipecrun {

class ByteLevelBpe {
public:
  /// Reads `path`; false with `error` ("PATH: what") for a file that is not
  /// a byte-level BPE tokenizer.json.
  static bool load(const std::string &path, ByteLevelBpe &out,
                   std::string &error);
  /// The vocabulary's size: one more than the largest id.
  int64_t size() const { return vocabSize; }
  /// The text of `ids` (added tokens as their text), ill-formed UTF-8
  /// replaced by U+FFFD as the tokenizers library does; false for an id the
  /// tokenizer does not have.
  bool decode(const std::vector<int32_t> &ids, std::string &text,
              std::string &error) const;
  /// The ids of `text`; false when a piece has no id (a tokenizer whose
  /// vocabulary lacks a byte).
  bool encode(const std::string &text, std::vector<int32_t> &ids,
              std::string &error) const;

private:
  std::unordered_map<std::string, int32_t> idOf; ///< piece -> id
  std::unordered_map<int32_t, std::string> bytesOf; ///< id -> its bytes
  std::map<std::pair<std::string, std::string>, int32_t> mergeRank;
  int64_t vocabSize = 0;
};

} // namespace pipecrun

#endif // PIPEC_RUNTIME_RUNNER_TOKENIZER_H
