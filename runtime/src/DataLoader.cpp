//===- DataLoader.cpp - token files and the micro-batches of a step -------===//

#include "pipert/DataLoader.h"

#include "pipert/Fnv.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csetjmp>
#include <csignal>
#include <cstring>
#include <fstream>
#include <mutex>

namespace pipert {

namespace {
// A mapped data file that shrinks under a run (another job rewriting it)
// raises SIGBUS at the next read past its new end. A micro-batch's reads
// run under a guard that turns that into a failure naming the file; a
// SIGBUS anywhere else takes the action there was before.
thread_local sigjmp_buf *busGuard = nullptr;
struct sigaction previousBus;

// (busGuard is a thread_local read in a signal handler: fine here, since
// libpipert is linked statically (initial-exec TLS) and the guard is
// written by the same thread before any guarded read.)
void onBus(int sig, siginfo_t *info, void *context) {
  if (sigjmp_buf *guard = busGuard)
    siglongjmp(*guard, 1);
  // Not a guarded read: the handler there was before decides (another
  // library's own mapping guard, say); with none, the default action is
  // put back and the faulting access, run again, ends the process.
  if (previousBus.sa_flags & SA_SIGINFO) {
    if (previousBus.sa_sigaction) {
      previousBus.sa_sigaction(sig, info, context);
      return;
    }
  } else if (previousBus.sa_handler != SIG_DFL &&
             previousBus.sa_handler != SIG_IGN) {
    previousBus.sa_handler(sig);
    return;
  }
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGBUS, &dfl, nullptr);
}

void installBusGuard() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = onBus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &previousBus);
  });
}
} // namespace

/// Little-endian int32 at byte `at`.
static int32_t readInt32(const uint8_t *bytes, size_t at) {
  uint32_t v = uint32_t(bytes[at]) | uint32_t(bytes[at + 1]) << 8 |
               uint32_t(bytes[at + 2]) << 16 | uint32_t(bytes[at + 3]) << 24;
  return static_cast<int32_t>(v);
}

static bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int32_t TokenFile::maxToken() const {
  int32_t most = -1;
  for (int64_t i = 0; i < count; ++i)
    most = std::max(most, (*this)[i]);
  return most;
}

uint64_t TokenFile::fingerprint() const {
  const uint64_t bytes = uint64_t(count) * uint64_t(width);
  const int64_t header[2] = {width, count};
  uint64_t h = fnv1a(header, sizeof header);
  constexpr uint64_t kWhole = uint64_t(4) << 20, kPiece = uint64_t(64) << 10;
  constexpr uint64_t kPieces = 64;
  if (bytes <= kWhole)
    return fnv1a(base, size_t(bytes), h);
  // Piece i starts at i/63 of the way to the last piece's start: the
  // first and last bytes are always read. (bytes < 2^57: no overflow.)
  for (uint64_t i = 0; i < kPieces; ++i)
    h = fnv1a(base + (bytes - kPiece) * i / (kPieces - 1), size_t(kPiece), h);
  return h;
}

int64_t TokenFile::firstOutside(int64_t vocab) const {
  for (int64_t i = 0; i < count; ++i)
    if (int32_t t = (*this)[i]; t < 0 || t >= vocab)
      return i;
  return -1;
}

/// Points `out` at the tokens of `size` file bytes at `bytes` (which `out`
/// keeps alive: its mapping or its copy).
bool parseTokenBytes(const uint8_t *bytes, size_t size,
                     const std::string &path, TokenFile &out,
                     std::string &error) {
  int32_t first = size >= 4 ? readInt32(bytes, 0) : 0;
  bool magic = first == kLlmcMagic || first == kLlmcMagic32;
  // A .bin file is meant to be a shard: reading its bytes as text would
  // train on garbage without a word, so a bad header is an error instead.
  if (!magic && endsWith(path, ".bin")) {
    error = path + ": not an llm.c token shard: " +
            (size < 4 ? std::string("the file is shorter than its "
                                    "magic number")
                      : "magic number " + std::to_string(first) +
                            ", expected " + std::to_string(kLlmcMagic) +
                            " (uint16 tokens) or " +
                            std::to_string(kLlmcMagic32) + " (uint32)");
    return false;
  }
  if (magic) {
    if (static_cast<int64_t>(size) < kLlmcHeaderBytes) {
      error = path + ": llm.c shard header is truncated: " +
              std::to_string(size) + " bytes, expected " +
              std::to_string(kLlmcHeaderBytes);
      return false;
    }
    // llm.c's rule: the magic says the token width, the version must match.
    const bool wide = first == kLlmcMagic32;
    const int32_t want = wide ? kLlmcVersion32 : kLlmcVersion;
    int32_t version = readInt32(bytes, 4);
    if (version != want) {
      error = path + ": llm.c shard version " + std::to_string(version) +
              " is not supported with magic " + std::to_string(first) +
              " (expected " + std::to_string(want) +
              (wide ? ", uint32 tokens)" : ", uint16 tokens)");
      return false;
    }
    const int width = wide ? 4 : 2;
    int32_t count = readInt32(bytes, 8);
    const int64_t body = static_cast<int64_t>(size) - kLlmcHeaderBytes;
    int64_t held = body / width;
    // llm.c's rule too: the file is the header and exactly its tokens (a
    // shard cut short, or one with bytes its header does not count, is
    // not trained on in part).
    if (count < 0 || count != held || body % width != 0) {
      error = path + ": llm.c shard header claims " + std::to_string(count) +
              " tokens but the file holds " + std::to_string(held) +
              (body % width ? " and " + std::to_string(body % width) +
                                  " stray byte" + (body % width > 1 ? "s" : "")
                            : std::string()) +
              " (a shard is the " + std::to_string(kLlmcHeaderBytes) +
              "-byte header and exactly its tokens)";
      return false;
    }
    out.width = width;
    out.base = bytes + kLlmcHeaderBytes;
    out.count = count;
  } else {
    out.width = 1;
    out.base = bytes;
    out.count = int64_t(size);
  }
  if (out.count == 0) {
    error = path + ": the file holds no tokens";
    return false;
  }
  return true;
}

bool parseTokens(const std::vector<uint8_t> &bytes, const std::string &path,
                 TokenFile &out, std::string &error) {
  out = TokenFile();
  out.owned = bytes;
  return parseTokenBytes(out.owned.data(), out.owned.size(), path, out,
                         error);
}

bool loadTokens(const std::string &path, TokenFile &out, std::string &error) {
  out = TokenFile();
  if (Status s = out.mapping.open(path, "data file"); !s.ok()) {
    error = s.message();
    return false;
  }
  out.source = path;
  return parseTokenBytes(out.mapping.data(), out.mapping.size(), path, out,
                         error);
}

bool Batcher::create(const TokenFile &tokens, int64_t batch,
                     int64_t seq, int64_t microbatches, Batcher &out,
                     std::string &error) {
  if (batch < 1 || seq < 1 || microbatches < 1) {
    error = "batch, sequence length and micro-batch count must be positive";
    return false;
  }
  int64_t perEpoch = (static_cast<int64_t>(tokens.size()) - 1) / (batch * seq);
  if (perEpoch < 1) {
    error = "the data holds " + std::to_string(tokens.size()) +
            (tokens.size() == 1 ? " token" : " tokens") + ", fewer than one micro-batch of " + std::to_string(batch) +
            "x" + std::to_string(seq) + " plus one target";
    return false;
  }
  out.data = &tokens;
  out.batch = batch;
  out.seq = seq;
  out.microbatches = microbatches;
  out.perEpochCount = perEpoch;
  return true;
}

bool Batcher::microBatch(int64_t step, int64_t j, int32_t *tokens,
                         int32_t *targets, std::string &error) const {
  const int64_t n = batch * seq;
  const int64_t g = step * microbatches + j;
  const int64_t start = (g % perEpochCount) * n;
  const TokenFile &src = *data;
  installBusGuard();
  sigjmp_buf here;
  if (sigsetjmp(here, 1)) {
    busGuard = nullptr;
    error = (src.source.empty() ? std::string("the data") : src.source) +
            ": the file shrank while the run read it (reading tokens " +
            std::to_string(start) + " to " + std::to_string(start + n) +
            " of the " + std::to_string(src.size()) +
            " it held at the start): a data file must not change during a run";
    return false;
  }
  busGuard = &here;
  // The reads stay between the guard's setting and clearing (a handler
  // on this thread sees both; the compiler may neither drop the first
  // store nor move a read past them).
  std::atomic_signal_fence(std::memory_order_seq_cst);
  for (int64_t i = 0; i < n; ++i) {
    tokens[i] = src[start + i];
    targets[i] = src[start + i + 1];
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  busGuard = nullptr;
  return true;
}

} // namespace pipert
