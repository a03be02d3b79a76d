//===- Sample.cpp - text generation from a trained plan -------------------===//
//
// Forward-only inference over the compiled chunks: each chunk's F runs on
// micro-batch 0's regions in its rank's arena, the outgoing activations are
// copied into the next chunk's incoming region (the message the streams
// would send), and the loss chunk's logits give the next token's
// distribution. Row 0 of the micro-batch holds the context; attention is
// causal, so the other rows and the positions after the context do not
// change the logits read.
//
//===----------------------------------------------------------------------===//

#include "runtime/runner/Sample.h"

#include "pipert/StopSignal.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <omp.h>
#include <random>

namespace pipecrun {

namespace {

/// Arena offsets of micro-batch 0's regions per chunk (-1: empty region).
std::vector<int64_t> regionOffsets(const PlanCode &code,
                                   const pipert::Manifest &m) {
  std::vector<int64_t> off(size_t(code.chunkCount) * pipert::kRegions, -1);
  for (int32_t c = 0; c < code.chunkCount; ++c)
    for (int k = 0; k < pipert::kRegions; ++k) {
      std::string name =
          "c" + std::to_string(c) + ".mb0." + pipert::regionName(k);
      for (const pipert::BufferInfo &b : m.buffers)
        if (b.name == name)
          off[size_t(c) * pipert::kRegions + size_t(k)] = b.offset;
    }
  return off;
}

/// Index of the next token from one row of logits.
int32_t pick(const float *logits, int64_t vocab, double temperature,
             std::mt19937_64 &rng) {
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; ++i)
    if (logits[i] > logits[best])
      best = i;
  if (temperature <= 0)
    return int32_t(best);
  // Softmax in double, shifted by the maximum; inverse CDF of a uniform
  // drawn from the top 53 bits (portable, unlike std's distributions).
  std::vector<double> p(static_cast<size_t>(vocab));
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i)
    sum += p[size_t(i)] =
        std::exp((double(logits[i]) - double(logits[best])) / temperature);
  double u = double(rng() >> 11) * 0x1.0p-53 * sum;
  for (int64_t i = 0; i < vocab; ++i) {
    u -= p[size_t(i)];
    if (u < 0)
      return int32_t(i);
  }
  return int32_t(best);
}

} // namespace

bool sampleTokens(const PlanCode &code, pipert::Executor &exec,
                  const SampleOptions &o, std::vector<int32_t> &out,
                  std::string &error) {
  const int32_t C = code.chunkCount;
  const ChunkCode &last = code.chunks[C - 1];
  if (!last.logits) {
    error = "--sample: the plan's last chunk keeps no f32 [batch * seq, "
            "vocab] logits to sample from";
    return false;
  }
  if (!std::isfinite(o.temperature) || o.temperature < 0) {
    error = "--temperature must be a finite number of at least 0";
    return false;
  }
  std::vector<int32_t> context = o.promptIds;
  for (int32_t t : context)
    if (t < 0 || int64_t(t) >= code.vocab) {
      error = "--prompt: token " + std::to_string(t) +
              " is outside the model's vocabulary of " +
              std::to_string(code.vocab);
      return false;
    }
  for (unsigned char ch : o.promptIds.empty() ? o.prompt : std::string()) {
    if (int64_t(ch) >= code.vocab) {
      error = "--prompt: byte " + std::to_string(int(ch)) +
              " is outside the model's vocabulary of " +
              std::to_string(code.vocab);
      return false;
    }
    context.push_back(int32_t(ch));
  }
  if (context.empty()) {
    error = "--prompt must not be empty";
    return false;
  }
  std::vector<int64_t> off = regionOffsets(code, exec.manifest());
  // Every region a chunk's code uses is placed (an empty one has no buffer).
  for (int32_t c = 0; c < C; ++c)
    for (int k = 0; k < pipert::kRegions; ++k)
      if (code.chunks[c].regionBytes[k] > 0 &&
          off[size_t(c) * pipert::kRegions + size_t(k)] < 0) {
        error = "manifest.json: no buffer c" + std::to_string(c) + ".mb0." +
                pipert::regionName(k);
        return false;
      }
  auto regions = [&](int32_t c, uint8_t **R) {
    uint8_t *A = exec.arena(code.chunks[c].rank);
    for (int k = 0; k < pipert::kRegions; ++k) {
      int64_t x = off[size_t(c) * pipert::kRegions + size_t(k)];
      R[k] = A + (x < 0 ? 0 : x);
    }
  };
  const int64_t T = code.seq, V = code.vocab;
  std::vector<int32_t> tokens(size_t(code.batch * T), 0);
  // Targets only feed the loss, which is not used; 0 is a valid class.
  std::vector<int32_t> targets(tokens.size(), 0);
  std::mt19937_64 rng(o.seed);
  // As many threads as --cores gives (spinning OpenMP barriers on a busy
  // machine make more threads than free cores slower, not faster).
  omp_set_num_threads(std::max(1, o.threads));
  out.clear();
  for (int64_t i = 0; i < o.tokens; ++i) {
    // SIGINT / SIGTERM: the tokens so far are the sample (StopSignal.h).
    if (pipert::stopSignal())
      break;
    // The last T tokens of the context (the window shifts when full).
    int64_t n = std::min<int64_t>(int64_t(context.size()), T);
    std::copy(context.end() - n, context.end(), tokens.begin());
    uint8_t *R[pipert::kRegions];
    for (int32_t c = 0; c < C; ++c) {
      const ChunkCode &ch = code.chunks[c];
      regions(c, R);
      if (c > 0 && ch.inActBytes > 0) {
        // The previous chunk's outgoing region has the same layout.
        uint8_t *prev[pipert::kRegions];
        regions(c - 1, prev);
        std::memcpy(R[pipert::kInAct], prev[pipert::kOutAct], size_t(ch.inActBytes));
      }
      pipert::KernelContext kc{ch.rank, nullptr};
      pipert::cpu::Status st =
          ch.fwd(&kc, exec.arena(ch.rank), R, 0, tokens.data(),
                 targets.data(), 1.0);
      if (!st.ok()) {
        error = "--sample: forward of chunk " + std::to_string(c) + ": " +
                st.message();
        return false;
      }
    }
    const float *logits = last.logits(exec.arena(last.rank), R);
    int32_t next = pick(logits + (n - 1) * V, V, o.temperature, rng);
    context.push_back(next);
    out.push_back(next);
  }
  return true;
}

std::string tokensToText(const std::vector<int32_t> &tokens, int64_t vocab) {
  std::string s;
  for (int32_t t : tokens) {
    if (vocab != 256) {
      s += (s.empty() ? "" : " ") + std::to_string(t);
    } else if (t == '\\') {
      s += "\\\\";
    } else if (t == '\n' || (t >= 0x20 && t < 0x7f)) {
      s += char(t);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", unsigned(t) & 0xffu);
      s += buf;
    }
  }
  return s;
}

} // namespace pipecrun
