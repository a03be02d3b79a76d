//===- Manifest.cpp - manifest.json: what a compiled plan holds -----------===//

#include "pipert/Manifest.h"

#include "pipert/AtomicFile.h"
#include "pipert/InputFile.h"
#include "pipert/LogicalShape.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <tuple>
#include <sstream>

namespace pipert {

using json = nlohmann::json;

namespace {

const char *dtypeName(DType d) {
  return d == DType::F32 ? "f32" : d == DType::F64 ? "f64" : "none";
}

/// Reads fields with messages that name the JSON path of what is wrong.
struct Reader {
  std::string error;

  bool fail(const std::string &path, const std::string &what) {
    if (error.empty())
      error = path + ": " + what;
    return false;
  }
  const json *field(const json &obj, const char *key, const std::string &path,
                    bool required = true) {
    if (!obj.is_object()) {
      fail(path, "expected an object");
      return nullptr;
    }
    auto it = obj.find(key);
    if (it == obj.end()) {
      if (required)
        fail(path, std::string("missing field \"") + key + "\"");
      return nullptr;
    }
    return &*it;
  }
  bool integer(const json &obj, const char *key, const std::string &path,
               int64_t &out, bool required = true) {
    const json *v = field(obj, key, path, required);
    if (!v)
      return !required && error.empty();
    if (!v->is_number_integer())
      return fail(path + "." + key, "expected an integer");
    out = v->get<int64_t>();
    return true;
  }
  bool integer32(const json &obj, const char *key, const std::string &path,
                 int32_t &out, bool required = true) {
    int64_t v = out;
    if (!integer(obj, key, path, v, required))
      return false;
    if (v < INT32_MIN || v > INT32_MAX)
      return fail(path + "." + key, "out of range");
    out = int32_t(v);
    return true;
  }
  bool number(const json &obj, const char *key, const std::string &path,
              double &out, bool required = true) {
    const json *v = field(obj, key, path, required);
    if (!v)
      return !required && error.empty();
    if (!v->is_number())
      return fail(path + "." + key, "expected a number");
    out = v->get<double>();
    return true;
  }
  bool string(const json &obj, const char *key, const std::string &path,
              std::string &out, bool required = true) {
    const json *v = field(obj, key, path, required);
    if (!v)
      return !required && error.empty();
    if (!v->is_string())
      return fail(path + "." + key, "expected a string");
    out = v->get<std::string>();
    return true;
  }
  bool dtype(const json &obj, const char *key, const std::string &path,
             DType &out, bool required = true) {
    std::string s;
    if (!string(obj, key, path, s, required))
      return false;
    if (s.empty() && !required)
      return true;
    if (s == "f32")
      out = DType::F32;
    else if (s == "f64")
      out = DType::F64;
    else
      return fail(path + "." + key, "unknown dtype \"" + s +
                                        "\" (expected f32 or f64)");
    return true;
  }
  bool intArray(const json &obj, const char *key, const std::string &path,
                std::vector<int64_t> &out) {
    const json *v = field(obj, key, path);
    if (!v)
      return false;
    if (!v->is_array())
      return fail(path + "." + key, "expected an array of integers");
    out.clear();
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_number_integer())
        return fail(path + "." + key + "[" + std::to_string(i) + "]",
                    "expected an integer");
      out.push_back((*v)[i].get<int64_t>());
    }
    return true;
  }
  bool slot(const json &obj, const char *key, const std::string &path,
            MetricSlot &out) {
    const json *v = field(obj, key, path, false);
    if (!v)
      return error.empty();
    std::string p = path + "." + key;
    int64_t count = 1;
    return integer32(*v, "rank", p, out.rank) &&
           integer(*v, "offset", p, out.offset) &&
           dtype(*v, "dtype", p, out.dtype) &&
           integer(*v, "count", p, count, false) && (out.count = count, true);
  }
};

json slotJson(const MetricSlot &s) {
  return json{{"rank", s.rank},
              {"offset", s.offset},
              {"dtype", dtypeName(s.dtype)},
              {"count", s.count}};
}

} // namespace

Status validateManifest(const Manifest &m) {
  auto fail = [](const std::string &s) { return Status::failure(s); };
  if (m.ranks < 1)
    return fail("manifest: ranks must be at least 1");
  if (m.microbatches < 1)
    return fail("manifest: microbatches must be at least 1");
  if (m.dtype == DType::None)
    return fail("manifest: dtype must be f32 or f64");
  if (m.replicas < 1 || m.ranks % m.replicas != 0)
    return fail("manifest: replicas (" + std::to_string(m.replicas) +
                ") must be at least 1 and divide ranks (" +
                std::to_string(m.ranks) + ")");
  if (m.zero != 0 && (m.zero != 1 || m.replicas < 2))
    return fail("manifest: zero " + std::to_string(m.zero) +
                " must be 0, or 1 with 2 replicas or more (it has " +
                std::to_string(m.replicas) + ")");
  const int32_t P = m.pipelineRanks();
  if (m.rankInfo.size() != size_t(m.ranks))
    return fail("manifest: \"rank_info\" has " +
                std::to_string(m.rankInfo.size()) + " entries for " +
                std::to_string(m.ranks) + " ranks");
  for (size_t c = 0; c < m.chunkRank.size(); ++c)
    if (m.chunkRank[c] < 0 || m.chunkRank[c] >= P)
      return fail("manifest: chunk " + std::to_string(c) + " is on rank " +
                  std::to_string(m.chunkRank[c]) + ", outside [0, " +
                  std::to_string(P) + ")");
  if (!m.groupOperand.empty() && m.groupOperand.size() != m.groups.size())
    return fail("manifest: \"group_operands\" has " +
                std::to_string(m.groupOperand.size()) + " entries for " +
                std::to_string(m.groups.size()) + " groups");
  for (size_t g = 0; g < m.groupOperand.size(); ++g)
    if (m.groupOperand[g] < -1 || m.groupOperand[g] >= int32_t(m.groups.size()))
      return fail("manifest: group_operands[" + std::to_string(g) + "] = " +
                  std::to_string(m.groupOperand[g]) +
                  " is neither -1 nor a group");
  for (size_t g = 0; g < m.groups.size(); ++g) {
    const auto &grp = m.groups[g];
    if (grp.empty())
      return fail("manifest: group " + std::to_string(g) + " is empty");
    for (size_t i = 0; i < grp.size(); ++i)
      if (grp[i] < 0 || grp[i] >= m.ranks || (i && grp[i] <= grp[i - 1]))
        return fail("manifest: group " + std::to_string(g) +
                    " must list distinct ranks in [0, " +
                    std::to_string(m.ranks) + ") in ascending order");
  }
  for (int32_t r = 0; r < m.ranks; ++r) {
    const RankInfo &ri = m.rankInfo[r];
    if (ri.stream.empty() || ri.arenaBytes < 0 || ri.peakBytes < 0 ||
        ri.peakBytes > ri.arenaBytes)
      return fail("manifest: rank " + std::to_string(r) +
                  " needs a stream and 0 <= peak_bytes <= arena_bytes");
  }
  if (const ReplicaRelocation &rel = m.relocation; rel.active) {
    // Replica D-1's groups and communicators must exist: the counts bound
    // every number a moved stream can hold.
    if (m.replicas < 2 || rel.groups < 1 || rel.groupComms < 0 ||
        rel.pairComms < 0 ||
        int64_t(rel.groups) * m.replicas > int64_t(m.groups.size()) ||
        (int64_t(rel.groupComms) + rel.pairComms) * m.replicas >
            int64_t(INT32_MAX))
      return fail("manifest: replica_streams {groups " +
                  std::to_string(rel.groups) + ", group_comms " +
                  std::to_string(rel.groupComms) + ", pair_comms " +
                  std::to_string(rel.pairComms) + "} does not fit " +
                  std::to_string(m.replicas) + " replicas and " +
                  std::to_string(m.groups.size()) + " groups");
    for (int32_t r = P; r < m.ranks; ++r)
      if (m.rankInfo[size_t(r)].stream != m.rankInfo[size_t(r % P)].stream)
        return fail("manifest: with replica_streams rank " +
                    std::to_string(r) + " runs rank " +
                    std::to_string(r % P) + "'s stream file");
  }
  // Persistent regions per rank: [offset, end, name]; parameter state must
  // not overlap anything, buffers may share memory with each other (the
  // memory plan reuses it across lifetimes).
  struct Region {
    int64_t lo, hi;
    std::string name;
    bool persistent;
  };
  std::vector<std::vector<Region>> regions(m.ranks);
  // Parameters, buffers and metric slots are replica 0's (ranks < P).
  auto add = [&](int32_t rank, int64_t off, int64_t bytes,
                 const std::string &name, bool persistent) -> Status {
    if (rank < 0 || rank >= P)
      return fail("manifest: " + name + " is on rank " + std::to_string(rank) +
                  ", outside [0, " + std::to_string(P) + ")");
    int64_t arena = m.rankInfo[rank].arenaBytes;
    if (off < 0 || bytes <= 0 || bytes > arena || off > arena - bytes)
      return fail("manifest: " + name + " [" + std::to_string(off) + ", +" +
                  std::to_string(bytes) + ") is outside the " +
                  std::to_string(arena) + "-byte arena of rank " +
                  std::to_string(rank));
    regions[rank].push_back({off, off + bytes, name, persistent});
    return Status::success();
  };
  for (const ParamInfo &p : m.params) {
    int64_t elems = 1;
    for (int64_t d : p.shape) {
      // The bound keeps the product far from overflow.
      if (d <= 0 || d > (int64_t(1) << 40) || elems > (int64_t(1) << 40) / d)
        return fail("manifest: parameter " + p.name + " has a bad shape");
      elems *= d;
    }
    if (elems * dtypeBytes(p.dtype) != p.bytes)
      return fail("manifest: parameter " + p.name + " has " +
                  std::to_string(p.bytes) + " bytes, its shape needs " +
                  std::to_string(elems * dtypeBytes(p.dtype)));
    if (p.init != "normal" && p.init != "zeros" && p.init != "ones")
      return fail("manifest: parameter " + p.name + ": unknown init \"" +
                  p.init + "\"");
    if (m.zero == 1 &&
        (p.zeroKey < 0 || p.momentShift.size() != size_t(m.replicas) ||
         p.momentShift[0] != 0))
      return fail("manifest: parameter " + p.name +
                  " needs a zero_key and one moment_shifts entry per "
                  "replica (0 first) for ZeRO-1");
    for (auto [off, bytes, what] :
         {std::tuple{p.offset, p.bytes, ""}, {p.gradOffset, p.bytes, " grad"},
          {p.adamMOffset, m.momentBytes(p, 0), " adam_m"},
          {p.adamVOffset, m.momentBytes(p, 0), " adam_v"}})
      if (bytes > 0)
        if (Status s = add(p.rank, off, bytes, "parameter " + p.name + what,
                           true);
            !s.ok())
          return s;
    // The other replicas' parts (their own packing) inside the arena.
    for (int32_t r = 1; m.zero == 1 && r < m.replicas; ++r)
      for (int k = 1; k <= 2; ++k) {
        const int64_t off = m.momentOffset(p, k, r),
                      bytes = m.momentBytes(p, r),
                      arena = m.rankInfo[size_t(p.rank)].arenaBytes;
        if (bytes > 0 && (off < 0 || bytes > arena || off > arena - bytes))
          return fail("manifest: parameter " + p.name + ": replica " +
                      std::to_string(r) + "'s part of its moments is "
                      "outside the arena");
      }
  }
  for (const BufferInfo &b : m.buffers)
    if (Status s = add(b.rank, b.offset, b.bytes, "buffer " + b.name, false);
        !s.ok())
      return s;
  for (auto [slot, name] : {std::pair{&m.loss, "loss"}, {&m.gradNorm,
                                                         "grad_norm"}}) {
    if (slot->rank < 0)
      continue;
    if (slot->count < 1 || dtypeBytes(slot->dtype) == 0)
      return fail(std::string("manifest: metric slot ") + name +
                  " needs a count >= 1 and dtype f32 or f64");
    if (Status s = add(slot->rank, slot->offset,
                       slot->count * dtypeBytes(slot->dtype),
                       std::string("metric slot ") + name, false);
        !s.ok())
      return s;
  }
  if (m.loss.rank >= 0 && m.loss.count != m.microbatches)
    return fail("manifest: the loss slot must hold one value per "
                "micro-batch (" + std::to_string(m.microbatches) + ")");
  for (auto &rs : regions) {
    std::sort(rs.begin(), rs.end(),
              [](const Region &a, const Region &b) { return a.lo < b.lo; });
    // Each region against the persistent ones that overlap it.
    for (size_t i = 0; i < rs.size(); ++i)
      for (size_t j = i + 1; j < rs.size() && rs[j].lo < rs[i].hi; ++j)
        if (rs[i].persistent || rs[j].persistent)
          return fail("manifest: " + rs[i].name + " and " + rs[j].name +
                      " overlap");
  }
  return Status::success();
}

/// The most group members a manifest's compact groups may expand to: far
/// beyond a plan's few a rank, far below what would exhaust memory.
static int64_t groupMemberLimit(int32_t ranks) {
  return std::max<int64_t>(int64_t(1) << 25, 64 * int64_t(ranks));
}

/// Whether a manifest may be written with compact groups: their expansion
/// (every group, an empty one counted as one) stays within the limit.
static bool compactGroupsFit(const Manifest &m) {
  int64_t members = 0;
  for (const std::vector<int32_t> &g : m.groups)
    members += std::max<int64_t>(1, int64_t(g.size()));
  return members <= groupMemberLimit(m.ranks);
}

int64_t movedStreamRankLimit(size_t manifestBytes) {
  return std::min<int64_t>(
      int64_t(1) << 22,
      std::max<int64_t>(int64_t(1) << 16, 512 * int64_t(manifestBytes)));
}

/// The longest stream name a manifest with replica_streams may give (each
/// is copied to every replica's ranks).
constexpr size_t kMovedStreamNameBytes = 255;

/// Whether `m` is D > 1 replicas of a P-rank pipeline at all.
static bool replicated(const Manifest &m) {
  return m.replicas >= 2 && m.ranks >= m.replicas &&
         m.ranks % m.replicas == 0;
}

/// Group g's members as the manifest writes them: an array, or an object
/// {first, stride, count} for three or more evenly spaced ranks (a
/// data-parallel group of D replicas: D numbers otherwise).
static json groupJson(const std::vector<int32_t> &g, bool compact) {
  bool even = compact && g.size() >= 3 && g[1] > g[0];
  for (size_t i = 2; even && i < g.size(); ++i)
    even = g[i] - g[i - 1] == g[1] - g[0];
  if (!even)
    return g;
  return {{"first", g[0]}, {"stride", g[1] - g[0]}, {"count", g.size()}};
}

std::string manifestToJson(const Manifest &m) {
  json j;
  j["format"] = "pipert-manifest";
  j["version"] = 1;
  if (!m.planId.empty())
    j["plan_id"] = m.planId;
  if (!m.files.empty())
    j["files"] = m.files;
  j["model"] = m.model;
  j["dtype"] = dtypeName(m.dtype);
  j["ranks"] = m.ranks;
  j["microbatches"] = m.microbatches;
  j["tokens_per_microbatch"] = m.tokensPerMicrobatch;
  if (m.trainFlopsPerMicrobatch > 0)
    j["train_flops_per_microbatch"] = m.trainFlopsPerMicrobatch;
  j["schedule"] = {{"kind", m.scheduleKind},
                   {"stages", m.stages},
                   {"chunks_per_rank", m.chunksPerRank},
                   {"bubble", m.modeledBubble}};
  if (m.replicas != 1)
    j["replicas"] = m.replicas;
  if (m.zero != 0)
    j["zero"] = m.zero;
  j["chunks"] = m.chunkRank;
  // Replica 0's groups stand for every replica's when they repeat so
  // (replicaGroupCount); evenly spaced members as first, stride, count.
  const bool compact = compactGroupsFit(m);
  const size_t G0 = compact ? replicaGroupCount(m) : 0;
  const size_t repeated = G0 * size_t(m.replicas);
  json groups = json::array(), operands = json::array();
  for (size_t g = 0; g < m.groups.size(); ++g) {
    if (G0 && g >= G0 && g < repeated)
      continue;
    groups.push_back(groupJson(m.groups[g], compact));
    if (!m.groupOperand.empty())
      operands.push_back(m.groupOperand[g]);
  }
  j["groups"] = groups;
  if (G0)
    j["replica_groups"] = G0;
  if (!m.groupOperand.empty())
    j["group_operands"] = operands;
  // Replicas of one pipeline list replica 0's ranks alone: the others run
  // its streams moved (replica_streams), or their own, whose checksums go
  // in one string (docs/RUNTIME.md "rank_info").
  const bool moved = m.relocation.active && replicated(m);
  const bool replicated = !moved && replicatedRankInfo(m);
  const size_t listed = replicated || moved ? size_t(m.pipelineRanks())
                                            : m.rankInfo.size();
  json ranks = json::array();
  for (size_t i = 0; i < listed; ++i) {
    const RankInfo &r = m.rankInfo[i];
    json info = {{"stream", r.stream},
                 {"arena_bytes", r.arenaBytes},
                 {"peak_bytes", r.peakBytes}};
    if (r.streamChecksum)
      info["stream_checksum"] = planIdText(r.streamChecksum);
    ranks.push_back(info);
  }
  j["rank_info"] = ranks;
  if (moved)
    j["replica_streams"] = {{"groups", m.relocation.groups},
                            {"group_comms", m.relocation.groupComms},
                            {"pair_comms", m.relocation.pairComms}};
  if (replicated) {
    std::string sums;
    sums.reserve((m.rankInfo.size() - listed) * 16);
    for (size_t i = listed; i < m.rankInfo.size(); ++i)
      sums += planIdText(m.rankInfo[i].streamChecksum);
    j["replica_stream_checksums"] = sums;
  }
  json params = json::array();
  for (const ParamInfo &p : m.params) {
    params.push_back({{"name", p.name},
                      {"shape", p.shape},
                      {"dtype", dtypeName(p.dtype)},
                      {"rank", p.rank},
                      {"offset", p.offset},
                      {"grad_offset", p.gradOffset},
                      {"adam_m_offset", p.adamMOffset},
                      {"adam_v_offset", p.adamVOffset},
                      {"bytes", p.bytes},
                      {"init", p.init},
                      {"std", p.std},
                      {"decay", p.decay}});
    if (!p.logicalShape.empty())
      params.back()["logical_shape"] = p.logicalShape;
    if (p.zeroKey >= 0)
      params.back()["zero_key"] = p.zeroKey;
    if (!p.momentShift.empty())
      params.back()["moment_shifts"] = p.momentShift;
  }
  j["parameters"] = params;
  json buffers = json::array();
  for (const BufferInfo &b : m.buffers)
    buffers.push_back({{"name", b.name},
                       {"rank", b.rank},
                       {"offset", b.offset},
                       {"bytes", b.bytes}});
  j["buffers"] = buffers;
  json metrics = json::object();
  if (m.loss.rank >= 0)
    metrics["loss"] = slotJson(m.loss);
  if (m.gradNorm.rank >= 0)
    metrics["grad_norm"] = slotJson(m.gradNorm);
  j["metrics"] = metrics;
  const TrainInfo &t = m.train;
  j["train"] = {{"lr", t.lr},
                {"min_lr", t.minLr},
                {"warmup_steps", t.warmupSteps},
                {"decay_steps", t.decaySteps},
                {"decay", t.cosine ? "cosine" : "constant"},
                {"beta1", t.beta1},
                {"beta2", t.beta2},
                {"eps", t.eps},
                {"weight_decay", t.weightDecay},
                {"grad_clip", t.gradClip},
                {"seed", t.seed}};
  return j.dump(1) + "\n";
}

size_t replicaGroupCount(const Manifest &m) {
  if (!replicated(m))
    return 0;
  const int32_t P = m.pipelineRanks(), D = m.replicas;
  size_t G0 = 0;
  while (G0 < m.groups.size() &&
         std::all_of(m.groups[G0].begin(), m.groups[G0].end(),
                     [&](int32_t r) { return r < P; }))
    ++G0;
  if (G0 == 0 || m.groups.size() < size_t(D) * G0)
    return 0;
  for (int32_t k = 1; k < D; ++k)
    for (size_t i = 0; i < G0; ++i) {
      const std::vector<int32_t> &g = m.groups[size_t(k) * G0 + i];
      const std::vector<int32_t> &t = m.groups[i];
      if (g.size() != t.size())
        return 0;
      for (size_t x = 0; x < g.size(); ++x)
        if (g[x] != t[x] + k * P)
          return 0;
      if (!m.groupOperand.empty() &&
          m.groupOperand[size_t(k) * G0 + i] != m.groupOperand[i])
        return 0;
    }
  return G0;
}

/// "groups", "replica_groups" and "group_operands" into m.groups and
/// m.groupOperand, compact forms expanded (docs/RUNTIME.md).
static bool readGroups(Reader &r, const json &j, Manifest &m) {
  const json *g = r.field(j, "groups", "manifest");
  if (!g)
    return false;
  if (!g->is_array())
    return r.fail("manifest.groups", "expected arrays");
  // Compact forms expand: only as far as a plan's groups could (a few
  // members per rank), so that a small file cannot ask for gigabytes; the
  // ranks themselves are bounded by rank_info's entries or checksums.
  if (m.rankInfo.size() != size_t(m.ranks))
    return r.fail("manifest.rank_info",
                  "has " + std::to_string(m.rankInfo.size()) +
                      " entries for " + std::to_string(m.ranks) + " ranks");
  const int64_t limit = groupMemberLimit(m.ranks);
  int64_t expanded = 0;
  auto tooMany = [&](const std::string &p) {
    return r.fail(p, "the groups expand to more than " +
                         std::to_string(limit) + " members");
  };
  std::vector<std::vector<int32_t>> listed;
  std::vector<int64_t> ints;
  for (size_t i = 0; i < g->size(); ++i) {
    const std::string p = "manifest.groups[" + std::to_string(i) + "]";
    const json &e = (*g)[i];
    if (e.is_object()) {
      int64_t first = 0, stride = 0, count = 0;
      if (!r.integer(e, "first", p, first) ||
          !r.integer(e, "stride", p, stride) ||
          !r.integer(e, "count", p, count))
        return false;
      // Checked before it is expanded: count ranks inside [0, ranks).
      if (first < 0 || first >= m.ranks || stride < 1 || count < 1 ||
          count - 1 > (int64_t(m.ranks) - 1 - first) / stride)
        return r.fail(p, "first " + std::to_string(first) + ", stride " +
                             std::to_string(stride) + ", count " +
                             std::to_string(count) +
                             " must name ranks inside [0, " +
                             std::to_string(m.ranks) + ")");
      if ((expanded += count) > limit)
        return tooMany(p);
      std::vector<int32_t> members(static_cast<size_t>(count));
      for (int64_t x = 0; x < count; ++x)
        members[size_t(x)] = int32_t(first + x * stride);
      listed.push_back(std::move(members));
      continue;
    }
    json holder = {{"g", e}};
    if (!r.intArray(holder, "g", p, ints))
      return false;
    listed.emplace_back(ints.begin(), ints.end());
  }
  std::vector<int32_t> operands;
  if (j.contains("group_operands")) {
    if (!r.intArray(j, "group_operands", "manifest", ints))
      return false;
    for (int64_t o : ints)
      operands.push_back(int32_t(std::clamp<int64_t>(o, -2, INT32_MAX)));
  }
  int64_t G0 = 0;
  if (j.contains("replica_groups") &&
      !r.integer(j, "replica_groups", "manifest", G0))
    return false;
  if (G0 == 0) {
    m.groups = std::move(listed);
    m.groupOperand = std::move(operands);
    return true;
  }
  // Replica 0's first G0 groups stand for every replica's, shifted by
  // k P; the groups after them are listed whole.
  if (!replicated(m) || G0 < 1 || G0 > int64_t(listed.size()))
    return r.fail("manifest.replica_groups",
                  std::to_string(G0) + " must be between 1 and the " +
                      std::to_string(listed.size()) +
                      " groups listed, in a plan of several replicas");
  const int32_t P = m.pipelineRanks(), D = m.replicas;
  // What the copies will hold (an empty group counted as one), before any
  // is made.
  int64_t members = 0;
  for (size_t i = 0; i < listed.size(); ++i)
    members += (int64_t(i) < G0 ? int64_t(D) : 1) *
               std::max<int64_t>(1, int64_t(listed[i].size()));
  if (members > limit)
    return tooMany("manifest.replica_groups");
  if (!operands.empty() && operands.size() != listed.size())
    return r.fail("manifest.group_operands",
                  "with replica_groups it has an entry per group listed (" +
                      std::to_string(listed.size()) + "), not " +
                      std::to_string(operands.size()));
  for (int64_t i = 0; i < G0; ++i) {
    for (int32_t rank : listed[size_t(i)])
      if (rank < 0 || rank >= P)
        return r.fail("manifest.groups[" + std::to_string(i) + "]",
                      "a group of replica_groups lists replica 0's ranks "
                      "(below " +
                          std::to_string(P) + "), not " +
                          std::to_string(rank));
  }
  m.groups.clear();
  m.groupOperand.clear();
  for (int32_t k = 0; k < D; ++k)
    for (int64_t i = 0; i < G0; ++i) {
      std::vector<int32_t> shifted = listed[size_t(i)];
      for (int32_t &rank : shifted)
        rank += k * P;
      m.groups.push_back(std::move(shifted));
      if (!operands.empty())
        m.groupOperand.push_back(operands[size_t(i)]);
    }
  for (size_t i = size_t(G0); i < listed.size(); ++i) {
    m.groups.push_back(std::move(listed[i]));
    if (!operands.empty())
      m.groupOperand.push_back(operands[i]);
  }
  return true;
}

Status parseManifest(const std::string &text, const std::string &name,
                     Manifest &m) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return Status::failure(name + ": not valid JSON");
  m = Manifest();
  Reader r;
  std::string fmt;
  int64_t version = 0;
  bool ok = r.string(j, "format", "manifest", fmt) &&
            r.integer(j, "version", "manifest", version);
  if (ok && (fmt != "pipert-manifest" || version != 1))
    return Status::failure(name + ": format \"" + fmt + "\" version " +
                           std::to_string(version) +
                           ", this runtime reads pipert-manifest version 1");
  std::string decay = "cosine";
  ok = ok && r.string(j, "plan_id", "manifest", m.planId, false);
  if (ok && j.contains("files")) {
    const json &f = j["files"];
    ok = f.is_array() || r.fail("manifest.files", "expected an array of names");
    for (size_t i = 0; ok && i < f.size(); ++i) {
      ok = f[i].is_string() ||
           r.fail("manifest.files[" + std::to_string(i) + "]",
                  "expected a file name");
      if (ok)
        m.files.push_back(f[i].get<std::string>());
    }
  }
  ok = ok && r.string(j, "model", "manifest", m.model) &&
       r.dtype(j, "dtype", "manifest", m.dtype) &&
       r.integer32(j, "ranks", "manifest", m.ranks) &&
       r.integer32(j, "replicas", "manifest", m.replicas, false) &&
       r.integer32(j, "zero", "manifest", m.zero, false) &&
       r.integer32(j, "microbatches", "manifest", m.microbatches) &&
       r.integer(j, "tokens_per_microbatch", "manifest",
                 m.tokensPerMicrobatch, false) &&
       r.integer(j, "train_flops_per_microbatch", "manifest",
                 m.trainFlopsPerMicrobatch, false);
  if (ok) {
    const json *s = r.field(j, "schedule", "manifest");
    ok = s && r.string(*s, "kind", "manifest.schedule", m.scheduleKind) &&
         r.integer32(*s, "stages", "manifest.schedule", m.stages) &&
         r.integer32(*s, "chunks_per_rank", "manifest.schedule",
                     m.chunksPerRank) &&
         r.number(*s, "bubble", "manifest.schedule", m.modeledBubble, false);
  }
  std::vector<int64_t> ints;
  if (ok && (ok = r.intArray(j, "chunks", "manifest", ints)))
    for (int64_t c : ints)
      m.chunkRank.push_back(int32_t(c));
  if (ok) {
    const json *ri = r.field(j, "rank_info", "manifest");
    ok = ri && (ri->is_array() || r.fail("manifest.rank_info", "expected an array"));
    for (size_t i = 0; ok && i < ri->size(); ++i) {
      std::string p = "manifest.rank_info[" + std::to_string(i) + "]";
      RankInfo info;
      std::string sum;
      ok = r.string((*ri)[i], "stream", p, info.stream) &&
           r.integer((*ri)[i], "arena_bytes", p, info.arenaBytes) &&
           r.integer((*ri)[i], "peak_bytes", p, info.peakBytes) &&
           r.string((*ri)[i], "stream_checksum", p, sum, false);
      if (ok && !sum.empty()) {
        char *end = nullptr;
        info.streamChecksum = std::strtoull(sum.c_str(), &end, 16);
        if (sum.size() != 16 || *end)
          ok = r.fail(p + ".stream_checksum", "expected 16 hex digits");
      }
      m.rankInfo.push_back(info);
    }
  }
  if (ok && j.contains("replica_streams")) {
    // Ranks P.. of replicas 1..D-1 run replica 0's stream files, moved.
    const json &rs = j["replica_streams"];
    const std::string p = "manifest.replica_streams";
    ReplicaRelocation &rel = m.relocation;
    rel.active = true;
    ok = (rs.is_object() || r.fail(p, "expected an object")) &&
         r.integer32(rs, "groups", p, rel.groups) &&
         r.integer32(rs, "group_comms", p, rel.groupComms) &&
         r.integer32(rs, "pair_comms", p, rel.pairComms) &&
         (!j.contains("replica_stream_checksums") ||
          r.fail(p, "a plan's replicas run moved streams or their own, not "
                    "both (replica_stream_checksums)"));
    if (ok && (m.replicas < 2 || m.ranks < m.replicas ||
               m.ranks % m.replicas != 0))
      return Status::failure(
          name + ": manifest.replica_streams: only a plan of several "
                 "replicas has them (replicas " +
          std::to_string(m.replicas) + ", ranks " + std::to_string(m.ranks) +
          ")");
    // Nothing else in the file bounds the ranks (movedStreamRankLimit),
    // checked before rank_info is expanded.
    if (ok && m.ranks > movedStreamRankLimit(text.size()))
      return Status::failure(
          name + ": manifest.replica_streams: " + std::to_string(m.ranks) +
          " ranks, more than the " +
          std::to_string(movedStreamRankLimit(text.size())) +
          " a plan of moved streams with a manifest of " +
          std::to_string(text.size()) + " bytes may have");
    const int32_t P = ok ? m.ranks / m.replicas : 0;
    ok = ok && (m.rankInfo.size() == size_t(P) ||
                r.fail("manifest.rank_info",
                       "with replica_streams it lists replica 0's " +
                           std::to_string(P) + " ranks, not " +
                           std::to_string(m.rankInfo.size())));
    for (size_t q = 0; ok && q < m.rankInfo.size(); ++q)
      if (m.rankInfo[q].stream.size() > kMovedStreamNameBytes)
        ok = r.fail("manifest.rank_info[" + std::to_string(q) + "].stream",
                    "longer than " + std::to_string(kMovedStreamNameBytes) +
                        " bytes");
    for (int32_t q = P; ok && q < m.ranks; ++q)
      m.rankInfo.push_back(m.rankInfo[size_t(q % P)]);
  }
  if (ok && !m.relocation.active && j.contains("replica_stream_checksums")) {
    // Ranks P.. of replicas 1..D-1: their pipeline rank's arena and peak,
    // stream rank<r>.pstream, and their checksum from the string.
    const json &sums = j["replica_stream_checksums"];
    if (m.replicas < 2 || m.ranks < m.replicas || m.ranks % m.replicas != 0)
      return Status::failure(
          name + ": manifest.replica_stream_checksums: only a plan of "
                 "several replicas has them (replicas " +
          std::to_string(m.replicas) + ", ranks " + std::to_string(m.ranks) +
          ")");
    const int32_t P = m.ranks / m.replicas;
    const size_t others = size_t(m.ranks - P);
    ok = (sums.is_string() ||
          r.fail("manifest.replica_stream_checksums", "expected a string")) &&
         (m.rankInfo.size() == size_t(P) ||
          r.fail("manifest.rank_info",
                 "with replica_stream_checksums it lists replica 0's " +
                     std::to_string(P) + " ranks, not " +
                     std::to_string(m.rankInfo.size()))) &&
         (sums.get_ref<const std::string &>().size() == others * 16 ||
          r.fail("manifest.replica_stream_checksums",
                 "expected 16 hex digits for each of the " +
                     std::to_string(others) + " ranks of replicas 1 to " +
                     std::to_string(m.replicas - 1)));
    const std::string *text = ok ? &sums.get_ref<const std::string &>() : nullptr;
    for (size_t i = 0; ok && i < others; ++i) {
      RankInfo info = m.rankInfo[i % size_t(P)];
      const int32_t rank = P + int32_t(i);
      info.stream = "rank" + std::to_string(rank) + ".pstream";
      std::string hex = text->substr(i * 16, 16);
      char *end = nullptr;
      info.streamChecksum = std::strtoull(hex.c_str(), &end, 16);
      if (*end || hex.find_first_not_of("0123456789abcdefABCDEF") !=
                      std::string::npos)
        ok = r.fail("manifest.replica_stream_checksums",
                    "rank " + std::to_string(rank) + ": \"" + hex +
                        "\" is not 16 hex digits");
      m.rankInfo.push_back(std::move(info));
    }
  }
  // After rank_info: its entries (or checksums) bound the ranks by the
  // file's size, and so the groups a compact list expands to.
  ok = ok && readGroups(r, j, m);
  if (ok) {
    const json *ps = r.field(j, "parameters", "manifest");
    ok = ps && (ps->is_array() || r.fail("manifest.parameters", "expected an array"));
    for (size_t i = 0; ok && i < ps->size(); ++i) {
      const json &pj = (*ps)[i];
      std::string p = "manifest.parameters[" + std::to_string(i) + "]";
      ParamInfo info;
      ok = r.string(pj, "name", p, info.name) &&
           r.intArray(pj, "shape", p, info.shape) &&
           r.dtype(pj, "dtype", p, info.dtype) &&
           r.integer32(pj, "rank", p, info.rank) &&
           r.integer(pj, "offset", p, info.offset) &&
           r.integer(pj, "grad_offset", p, info.gradOffset) &&
           r.integer(pj, "adam_m_offset", p, info.adamMOffset) &&
           r.integer(pj, "adam_v_offset", p, info.adamVOffset) &&
           r.integer(pj, "bytes", p, info.bytes) &&
           r.integer32(pj, "zero_key", p, info.zeroKey, false) &&
           r.string(pj, "init", p, info.init) &&
           r.number(pj, "std", p, info.std, false);
      if (ok) {
        const json *d = r.field(pj, "decay", p);
        ok = d && (d->is_boolean() || r.fail(p + ".decay", "expected a boolean"));
        if (ok)
          info.decay = d->get<bool>();
      }
      if (ok && pj.contains("moment_shifts"))
        ok = r.intArray(pj, "moment_shifts", p, info.momentShift);
      if (ok && pj.contains("logical_shape")) {
        ok = r.intArray(pj, "logical_shape", p, info.logicalShape);
        if (ok && !fitsIn(info.logicalShape, info.shape))
          ok = r.fail(p + ".logical_shape",
                      "must have the rank of shape and no dim above it");
      }
      m.params.push_back(info);
    }
  }
  if (ok) {
    const json *bs = r.field(j, "buffers", "manifest");
    ok = bs && (bs->is_array() || r.fail("manifest.buffers", "expected an array"));
    for (size_t i = 0; ok && i < bs->size(); ++i) {
      std::string p = "manifest.buffers[" + std::to_string(i) + "]";
      BufferInfo info;
      ok = r.string((*bs)[i], "name", p, info.name) &&
           r.integer32((*bs)[i], "rank", p, info.rank) &&
           r.integer((*bs)[i], "offset", p, info.offset) &&
           r.integer((*bs)[i], "bytes", p, info.bytes);
      m.buffers.push_back(info);
    }
  }
  if (ok) {
    const json *ms = r.field(j, "metrics", "manifest");
    ok = ms && r.slot(*ms, "loss", "manifest.metrics", m.loss) &&
         r.slot(*ms, "grad_norm", "manifest.metrics", m.gradNorm);
  }
  if (ok) {
    const json *t = r.field(j, "train", "manifest");
    TrainInfo &tr = m.train;
    int64_t seed = 0;
    ok = t && r.number(*t, "lr", "manifest.train", tr.lr) &&
         r.number(*t, "min_lr", "manifest.train", tr.minLr) &&
         r.integer(*t, "warmup_steps", "manifest.train", tr.warmupSteps) &&
         r.integer(*t, "decay_steps", "manifest.train", tr.decaySteps) &&
         r.string(*t, "decay", "manifest.train", decay) &&
         r.number(*t, "beta1", "manifest.train", tr.beta1) &&
         r.number(*t, "beta2", "manifest.train", tr.beta2) &&
         r.number(*t, "eps", "manifest.train", tr.eps) &&
         r.number(*t, "weight_decay", "manifest.train", tr.weightDecay) &&
         r.number(*t, "grad_clip", "manifest.train", tr.gradClip) &&
         r.integer(*t, "seed", "manifest.train", seed, false);
    tr.seed = uint64_t(seed);
    if (ok && decay != "cosine" && decay != "constant")
      ok = r.fail("manifest.train.decay",
                  "expected \"cosine\" or \"constant\", got \"" + decay + "\"");
    tr.cosine = decay == "cosine";
  }
  if (!ok)
    return Status::failure(name + ": " + r.error);
  Status s = validateManifest(m);
  if (!s.ok())
    return Status::failure(name + ": " + s.message());
  return Status::success();
}

bool replicatedRankInfo(const Manifest &m) {
  if (!replicated(m) || m.rankInfo.size() != size_t(m.ranks))
    return false;
  const int32_t P = m.pipelineRanks();
  for (int32_t r = 0; r < m.ranks; ++r) {
    const RankInfo &info = m.rankInfo[size_t(r)], &own = m.rankInfo[size_t(r % P)];
    if (info.stream != "rank" + std::to_string(r) + ".pstream" ||
        info.arenaBytes != own.arenaBytes || info.peakBytes != own.peakBytes ||
        info.streamChecksum == 0)
      return false;
  }
  return true;
}

std::string planIdText(uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)id);
  return buf;
}

uint64_t planIdValue(const std::string &text) {
  return std::strtoull(text.c_str(), nullptr, 16);
}

std::string firstManifestDifference(const Manifest &a, const Manifest &b) {
  Manifest x = a, y = b;
  x.planId.clear();
  y.planId.clear();
  std::string ta = manifestToJson(x), tb = manifestToJson(y);
  if (ta == tb)
    return ""; // the usual case: no parse, no diff
  json ja = json::parse(ta), jb = json::parse(tb);
  json patch = json::diff(ja, jb);
  if (patch.empty())
    return "";
  const json &op = patch[0];
  std::string where = op.value("path", std::string("/"));
  json::json_pointer ptr(where);
  std::string left = ja.contains(ptr) ? ja[ptr].dump() : "absent";
  std::string right = jb.contains(ptr) ? jb[ptr].dump() : "absent";
  return where + ": " + left + " against " + right;
}

Status writeManifestFile(const std::string &path, const Manifest &m) {
  // The manifest is a plan file: only the compiler writes it.
  return writeFileAtomically(path, manifestToJson(m), PlanFiles::Allow);
}

Status readManifestFile(const std::string &path, Manifest &m) {
  if (Status s = checkInputFile(path, "manifest"); !s.ok())
    return s;
  std::ifstream in(path);
  if (!in)
    return Status::failure("cannot open " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parseManifest(ss.str(), path, m);
}

} // namespace pipert
