//===- HfConfig.h - a Hugging Face config.json as a pipec model --*- C++ -*-===//
//
// Turns the config.json transformers writes for a GPT2LMHeadModel or a
// LlamaForCausalLM into a model description (docs/MODEL_FORMAT.md) whose
// parameters carry transformers' own names and layouts (GPT-2's Conv1D
// weights [in, out], Llama's Linear weights [out, in], a tied head stored
// once), so that its safetensors load as they are (docs/HUGGINGFACE.md).
// A field that changes the model's maths in a way pipec does not build is
// refused, naming it; fields that do not (token ids, dtype, bookkeeping)
// are listed as ignored; a field pipec does not know is refused, since it
// cannot tell which kind it is.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_IMPORT_HFCONFIG_H
#define PIPEC_COMPILER_IMPORT_HFCONFIG_H

#include <cstdint>
#include <string>
#include <vector>

namespace pipec {

struct HfImportOptions {
  int64_t batch = 4; ///< micro-batch rows
  int64_t seq = 0;   ///< tokens per row; 0: min(1024, the model's context)
  std::string name;  ///< the model's name; "": from model_type and sizes
  /// Train without dropout even where the config asks for it (its *_pdrop
  /// and attention_dropout fields are then listed as ignored); otherwise
  /// dropout > 0 is refused, since pipec does not apply it.
  bool dropDropout = false;
};

struct HfImportResult {
  std::string modelJson;            ///< the model description
  std::string family;               ///< "gpt2" or "llama"
  std::vector<std::string> ignored; ///< fields read and left aside, sorted
};

/// Converts config.json's text; returns "" or the error ("FIELD: why").
std::string importHfConfig(const std::string &configText,
                           const HfImportOptions &options,
                           HfImportResult &result);

} // namespace pipec

#endif // PIPEC_COMPILER_IMPORT_HFCONFIG_H
