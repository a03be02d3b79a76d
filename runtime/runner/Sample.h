//===- Sample.h - text generation from a trained plan ---------*- C++ -*-===//
//
// `pipec-run OUT/ ... --sample N`: after training, runs the F of every chunk
// in chunk order on one micro-batch (all ranks' arenas are in this
// process), reads the loss chunk's logits and samples N tokens
// autoregressively. docs/EMIT.md ("Text generation") explains the design.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_RUNNER_SAMPLE_H
#define PIPERT_RUNNER_SAMPLE_H

#include "pipert/PlanCode.h"

#include "pipert/Executor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace pipecrun {

/// What to generate and how.
struct SampleOptions {
  int64_t tokens = 0;        ///< how many to generate
  std::string prompt = "\n"; ///< the context to start from, as bytes
  /// The context as token ids instead (--tokenizer's encoding of the
  /// prompt); used when not empty.
  std::vector<int32_t> promptIds;
  uint64_t seed = 0;         ///< of the sampler's generator
  double temperature = 1.0;  ///< 0: greedy (the most likely token)
  int32_t threads = 1;       ///< OpenMP threads of the kernels (--cores)
};

/// Generates `o.tokens` tokens after the prompt from the parameters in the
/// executor's arenas; overwrites micro-batch 0's regions, the scratch and
/// the loss slot (call it after training and --save). False with `error`
/// when the plan keeps no logits or the prompt is outside the vocabulary.
bool sampleTokens(const PlanCode &code, pipert::Executor &exec,
                  const SampleOptions &o, std::vector<int32_t> &out,
                  std::string &error);

/// Tokens as text: bytes for a vocabulary of 256 (printable ASCII and
/// newlines as they are, other bytes and the backslash escaped as \xNN and
/// \\), else the ids separated by spaces.
std::string tokensToText(const std::vector<int32_t> &tokens, int64_t vocab);

} // namespace pipecrun

#endif // PIPERT_RUNNER_SAMPLE_H
