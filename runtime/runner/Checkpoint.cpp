//===- Checkpoint.cpp - --init, --resume in; --save, --save-state, checkpoints out -===//

#include "runtime/runner/Runner.h"

#include "runtime/runner/MomentPieces.h"

#include "pipert/AtomicFile.h"
#include "pipert/CheckpointDir.h"
#include "pipert/LogicalShape.h"
#include "pipert/ParseNumber.h"
#include "pipert/Safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <tuple>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <set>

namespace pipecrun {

/// Whether this process holds a copy of parameter `p` (replica 0's rank's
/// or another replica's).
static bool holdsCopy(const pipert::Executor &exec, const pipert::ParamInfo &p) {
  const pipert::Manifest &m = exec.manifest();
  for (int32_t q = p.rank; q < m.ranks; q += m.pipelineRanks())
    if (exec.holds(q))
      return true;
  return false;
}

/// The tensors of a state or --init file this process reads: those of the
/// parameters it holds a copy of (`suffixed`: and their moments'), so that
/// a process of one rank reads its stage's, not the whole model's.
static pipert::TensorFilter heldTensors(const pipert::Executor &exec,
                                        bool suffixed);

/// Tensor `name` of `file` into the region of parameter `p` at `offset`
/// (its value or a moment): its name and shape checked by every process,
/// its values (finite) by the processes holding a copy, which read them
/// (heldTensors) and write them where they hold the rank. A padded
/// parameter is loaded in its model shape; its padding stays zero
/// (pipert/LogicalShape.h).
static bool loadRegion(pipert::Executor &exec,
                       const pipert::SafetensorsFile &file,
                       const std::string &path, const pipert::ParamInfo &p,
                       const std::string &name, int64_t offset,
                       std::string &error, bool moment = false) {
  const pipert::Tensor *t = file.find(name);
  if (!t) {
    error = path + ": no tensor '" + name + "'";
    return false;
  }
  if (t->shape != p.modelShape()) {
    error = path + ": tensor '" + name + "' has shape [" +
            shapeText(t->shape) + "], the model's is [" +
            shapeText(p.modelShape()) + "]";
    return false;
  }
  // Its values are this process's business only where it holds a copy
  // (the process holding one checks them; the run's first reduction makes
  // every process fail with it).
  const pipert::Manifest &m = exec.manifest();
  if (!holdsCopy(exec, p))
    return true;
  if (t->skipped) {
    error = path + ": tensor '" + name + "' was not read (internal error)";
    return false;
  }
  std::vector<float> values;
  if (!pipert::readFloatTensor(*t, values, error) ||
      !pipert::checkFinite(path, name, values, error))
    return false;
  if (!p.logicalShape.empty()) {
    std::vector<float> padded(size_t(pipert::elementsOf(p.shape)));
    pipert::scatterLogical(values.data(), p.logicalShape, padded.data(),
                           p.shape);
    values = std::move(padded);
  }
  // The copy of every replica (the manifest lists replica 0's) that this
  // process holds; another process loads the others.
  for (int32_t q = p.rank; q < m.ranks; q += m.pipelineRanks()) {
    if (!exec.holds(q))
      continue;
    // ZeRO-1: a replica's moments hold its part alone.
    const pipert::ShardRange s =
        moment ? m.momentShard(p, m.replicaOf(q))
               : pipert::ShardRange{0, p.elements()};
    if (s.count == 0)
      continue;
    const int64_t at =
        moment && m.zero ? offset + p.momentShift[size_t(m.replicaOf(q))]
                         : offset;
    if (pipert::Status c = exec.writeArena(q, at, values.data() + s.first,
                                           s.count * 4);
        !c.ok()) {
      error = path + ": tensor '" + name + "': " + c.message();
      return false;
    }
  }
  return true;
}

/// Loads --init into every copy of each parameter this process holds.
bool loadInit(pipert::Executor &exec, const std::string &path,
              std::string &error) {
  pipert::SafetensorsFile file;
  if (!pipert::readCheckpoint(path, file, error, heldTensors(exec, false)))
    return false;
  for (const pipert::ParamInfo &p : exec.manifest().params)
    if (!loadRegion(exec, file, path, p, p.name, p.offset, error))
      return false;
  return true;
}

/// The parameters --save writes: each name once, its first entry in
/// manifest order (the copy of that entry's rank).
std::vector<const pipert::ParamInfo *> savedParams(const pipert::Manifest &m) {
  std::vector<const pipert::ParamInfo *> out;
  std::map<std::string, bool> seen;
  for (const pipert::ParamInfo &p : m.params) {
    if (seen[p.name])
      continue;
    seen[p.name] = true;
    out.push_back(&p);
  }
  return out;
}

/// Writes `tensors` as Hugging Face does above `shardBytes`: shards of at
/// most that many bytes (a larger tensor alone), `dir/model-0000i-of-
/// 0000K.safetensors`, and `dir/model.safetensors.index.json` naming each
/// tensor's; a stale single `model.safetensors`, which from_pretrained
/// would read instead, is removed after the index is written.
static bool writeShards(const std::string &dir,
                        const std::vector<pipert::Tensor> &tensors,
                        int64_t shardBytes, std::string &error) {
  std::vector<std::vector<size_t>> shards;
  int64_t filled = 0, total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    int64_t b = int64_t(tensors[i].data.size());
    if (shards.empty() || filled + b > shardBytes) {
      shards.emplace_back();
      filled = 0;
    }
    shards.back().push_back(i);
    filled += b;
    total += b;
  }
  auto name = [&](size_t k) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", k + 1,
                  shards.size());
    return std::string(buf);
  };
  nlohmann::ordered_json index;
  index["metadata"] = {{"total_size", total}};
  index["weight_map"] = nlohmann::ordered_json::object();
  for (size_t k = 0; k < shards.size(); ++k) {
    std::vector<pipert::Tensor> part;
    for (size_t i : shards[k]) {
      part.push_back(tensors[i]);
      index["weight_map"][tensors[i].name] = name(k);
    }
    if (!pipert::writeSafetensors(dir + "/" + name(k), part,
                                  {{"format", "pt"}}, error))
      return false;
  }
  if (pipert::Status s = pipert::writeFileAtomically(
          dir + "/model.safetensors.index.json", index.dump(2) + "\n");
      !s.ok()) {
    error = s.message();
    return false;
  }
  std::error_code ec;
  std::filesystem::remove(dir + "/model.safetensors", ec);
  return true;
}

/// Writes every parameter once; `values[i]` holds savedParams()[i]. With
/// `shardBytes` (--save-hf), as Hugging Face shards a checkpoint over it.
bool writeSaved(const pipert::Manifest &m,
                const std::vector<const uint8_t *> &values,
                const std::string &path, std::string &error,
                int64_t shardBytes = 0) {
  std::vector<const pipert::ParamInfo *> params = savedParams(m);
  std::vector<pipert::Tensor> tensors;
  std::vector<float> logical;
  for (size_t i = 0; i < params.size(); ++i) {
    const pipert::ParamInfo &p = *params[i];
    const float *v = reinterpret_cast<const float *>(values[i]);
    if (!p.logicalShape.empty()) {
      // Saved in the model's shape, without the padding.
      logical.resize(size_t(pipert::elementsOf(p.logicalShape)));
      pipert::gatherLogical(v, p.shape, logical.data(), p.logicalShape);
      v = logical.data();
    }
    tensors.push_back(pipert::makeFloatTensor<float>(p.name, p.modelShape(), v));
  }
  if (shardBytes > 0) {
    const std::string dir = std::filesystem::path(path).parent_path().string();
    int64_t total = 0;
    for (const pipert::Tensor &t : tensors)
      total += int64_t(t.data.size());
    if (total > shardBytes)
      return writeShards(dir, tensors, shardBytes, error);
    // One file: a stale index would name shards that are not these.
    std::error_code ec;
    std::filesystem::remove(dir + "/model.safetensors.index.json", ec);
  }
  // transformers' loader requires the format entry of PyTorch's files.
  return pipert::writeSafetensors(path, tensors, {{"format", "pt"}}, error);
}

bool writeHfConfig(const Args &a, std::string &error) {
  std::ifstream in(a.plan + "/hf_config.json", std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    error = "--save-hf: cannot read " + a.plan + "/hf_config.json";
    return false;
  }
  if (pipert::Status s =
          pipert::writeFileAtomically(a.saveHf + "/config.json", text);
      !s.ok()) {
    error = "--save-hf: " + s.message();
    return false;
  }
  return true;
}

/// Writes every parameter once, all ranks in this process.
bool save(pipert::Executor &exec, const std::string &path,
          std::string &error, int64_t shardBytes) {
  // Through host copies: the arenas may be a device's memory.
  std::vector<const pipert::ParamInfo *> params = savedParams(exec.manifest());
  std::vector<std::vector<uint8_t>> bytes(params.size());
  std::vector<const uint8_t *> values;
  for (size_t i = 0; i < params.size(); ++i) {
    bytes[i].resize(size_t(params[i]->bytes));
    if (pipert::Status c = exec.readArena(params[i]->rank, params[i]->offset,
                                          bytes[i].data(), params[i]->bytes);
        !c.ok()) {
      error = "--save " + path + ": parameter " + params[i]->name + ": " +
              c.message();
      return false;
    }
    values.push_back(bytes[i].data());
  }
  return writeSaved(exec.manifest(), values, path, error, shardBytes);
}

/// Where a replica's part of a parameter's moment is read from: `count`
/// floats of moment k (1 m, 2 v) from the start of replica r's storage.
using MomentSource =
    std::function<bool(const pipert::ParamInfo &p, int k, int32_t replica,
                       float *dst, int64_t count, std::string &error)>;

/// Every replica's moments from the arenas this process holds (the local
/// transport holds all).
static MomentSource localMoments(pipert::Executor &exec) {
  return [&exec](const pipert::ParamInfo &p, int k, int32_t replica,
                 float *dst, int64_t count, std::string &error) {
    const pipert::Manifest &m = exec.manifest();
    const int32_t q = replica * m.pipelineRanks() + p.rank;
    if (pipert::Status c =
            exec.readArena(q, m.momentOffset(p, k, replica), dst, count * 4);
        !c.ok()) {
      error = "parameter " + p.name + " (rank " + std::to_string(q) +
              "'s part of its moments): " + c.message();
      return false;
    }
    return true;
  };
}

/// One region of parameter `p` (k: 0 its value, 1 m, 2 v) in the model's
/// shape, read from the arena; with ZeRO-1 the moments are assembled from
/// every replica's part through `moments`.
static bool readModelShaped(pipert::Executor &exec, const pipert::ParamInfo &p,
                            int k, const MomentSource &moments,
                            std::vector<float> &out, std::string &error) {
  const pipert::Manifest &m = exec.manifest();
  std::vector<float> stored(size_t(p.bytes / 4));
  if (k == 0 || !m.zero) {
    const int64_t offset = k == 0   ? p.offset
                           : k == 1 ? p.adamMOffset
                                    : p.adamVOffset;
    if (pipert::Status c =
            exec.readArena(p.rank, offset, stored.data(), p.bytes);
        !c.ok()) {
      error = "parameter " + p.name + ": " + c.message();
      return false;
    }
  } else {
    // ZeRO-1: each replica's part, where that replica's rank keeps it.
    for (int32_t r = 0; r < m.replicas; ++r) {
      const pipert::ShardRange s = m.momentShard(p, r);
      if (s.count > 0 &&
          !moments(p, k, r, stored.data() + s.first, s.count, error))
        return false;
    }
  }
  if (p.logicalShape.empty()) {
    out = std::move(stored);
    return true;
  }
  out.resize(size_t(pipert::elementsOf(p.logicalShape)));
  pipert::gatherLogical(stored.data(), p.shape, out.data(), p.logicalShape);
  return true;
}

/// The tensor names of a parameter's state: the value under its own name,
/// AdamW's moments beside it.
static const char *const kStateSuffix[3] = {"", ".adam_m", ".adam_v"};

static pipert::TensorFilter heldTensors(const pipert::Executor &exec,
                                        bool suffixed) {
  auto names = std::make_shared<std::set<std::string>>();
  for (const pipert::ParamInfo &p : exec.manifest().params)
    if (holdsCopy(exec, p))
      for (int k = 0; k < (suffixed ? 3 : 1); ++k)
        names->insert(p.name + kStateSuffix[k]);
  // A piece of a moment (MomentPieces.h) is read with its moment.
  return [names](const std::string &name) {
    std::string moment;
    int64_t first = 0;
    return names->count(splitPieceName(name, moment, first) ? moment : name) >
           0;
  };
}

/// The state tensors (value, m, v in the model's shapes) of the saved
/// parameters whose copy lives on `rank` (-1: all), read from the arenas.
static bool stateTensors(pipert::Executor &exec, int32_t rank,
                         const MomentSource &moments,
                         std::vector<pipert::Tensor> &tensors,
                         std::string &error) {
  for (const pipert::ParamInfo &p : exec.manifest().params)
    if (p.dtype != pipert::DType::F32) {
      error = "parameter " + p.name + " is not f32";
      return false;
    }
  std::vector<float> values;
  for (const pipert::ParamInfo *p : savedParams(exec.manifest())) {
    if (rank >= 0 && p->rank != rank)
      continue;
    for (int k = 0; k < 3; ++k) {
      if (!readModelShaped(exec, *p, k, moments, values, error))
        return false;
      tensors.push_back(pipert::makeFloatTensor<float>(
          p->name + kStateSuffix[k], p->modelShape(), values.data()));
    }
  }
  return true;
}

/// The metadata keys that say how much data a step of the run took: a
/// resumed run draws micro-batch j of step s from s * D M + j (TRAINING.md),
/// so it continues the run's data only with the same D M and B T.
constexpr const char *kStepMicrobatchesKey = "pipec.microbatches_per_step";
constexpr const char *kMicrobatchTokensKey = "pipec.tokens_per_microbatch";

/// What a state file's or checkpoint part's metadata says.
static std::map<std::string, std::string>
stateMetadata(int64_t step, const pipert::Manifest *m = nullptr) {
  std::map<std::string, std::string> meta = {
      {"pipec.state", "parameters and AdamW moments after pipec.step steps"},
      {"pipec.step", std::to_string(step)}};
  if (m) {
    meta[kStepMicrobatchesKey] =
        std::to_string(int64_t(m->microbatches) * m->replicas);
    meta[kMicrobatchTokensKey] = std::to_string(m->tokensPerMicrobatch);
  }
  return meta;
}

bool saveState(pipert::Executor &exec, const std::string &path,
               std::string &error) {
  std::vector<pipert::Tensor> tensors;
  if (!stateTensors(exec, -1, localMoments(exec), tensors, error)) {
    error = "--save-state " + path + ": " + error;
    return false;
  }
  return pipert::writeSafetensors(path, tensors,
                                  stateMetadata(exec.stepsDone(),
                                                &exec.manifest()),
                                  error);
}

/// Writes rank `r`'s part of the checkpoint of `step` into `partial`
/// (the state of the saved parameters whose copy is that rank's); `name`
/// is left empty when the rank holds none.
static bool writePart(pipert::Executor &exec, const std::string &partial,
                      int64_t step, int32_t r, const MomentSource &moments,
                      std::string &name, int64_t &bytes,
                      std::string &error) {
  std::vector<pipert::Tensor> tensors;
  name.clear();
  if (!stateTensors(exec, r, moments, tensors, error))
    return false;
  if (tensors.empty())
    return true;
  name = "rank-" + std::to_string(r) + ".safetensors";
  std::map<std::string, std::string> meta =
      stateMetadata(step, &exec.manifest());
  meta["pipec.rank"] = std::to_string(r);
  if (!pipert::writeSafetensors(partial + "/" + name, tensors, meta, error))
    return false;
  for (const pipert::Tensor &t : tensors)
    bytes += int64_t(t.data.size());
  return true;
}

/// Seals the checkpoint of `step` and keeps the `keep` newest. Once it is
/// committed, an older one that cannot be removed is a warning, not a
/// failed checkpoint.
static bool commitAndPrune(const std::string &dir, int64_t step, int64_t keep,
                           const std::vector<std::string> &parts,
                           std::string &error) {
  if (pipert::Status s = pipert::commitCheckpoint(dir, step, parts); !s.ok()) {
    error = s.message();
    return false;
  }
  if (pipert::Status s = pipert::pruneCheckpoints(dir, keep); !s.ok())
    std::fprintf(stderr,
                 "pipec-run: warning: --checkpoint-dir %s: step %lld is "
                 "committed, but removing older checkpoints failed: %s\n",
                 dir.c_str(), (long long)step, s.message().c_str());
  return true;
}

/// What every checkpoint's message begins with.
static std::string checkpointWhere(const std::string &dir, int64_t step) {
  return "--checkpoint-dir " + dir + ": step " + std::to_string(step) + ": ";
}
static const char kUntouched[] = "; the committed checkpoints are as they were";

bool writeCheckpoint(pipert::Executor &exec, const std::string &dir,
                     int64_t step, int64_t keep, CheckpointStats &stats,
                     std::string &error) {
  const auto t0 = std::chrono::steady_clock::now();
  stats = CheckpointStats();
  std::string partial, name;
  std::vector<std::string> parts;
  bool ok = true;
  if (pipert::Status s = pipert::beginCheckpoint(dir, step, partial); !s.ok())
    ok = false, error = s.message();
  for (int32_t r = 0; ok && r < exec.manifest().ranks; ++r)
    if ((ok = writePart(exec, partial, step, r, localMoments(exec), name,
                        stats.bytes, error)) &&
        !name.empty())
      parts.push_back(name);
  if (ok)
    ok = commitAndPrune(dir, step, keep, parts, error);
  if (!ok) {
    error = checkpointWhere(dir, step) + error + kUntouched;
    return false;
  }
  stats.parts = int64_t(parts.size());
  stats.path = pipert::checkpointPath(dir, step);
  stats.seconds = std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
  return true;
}

/// A committed checkpoint's parts as one state: every tensor once, each
/// part of the checkpoint's step.
static bool readCheckpoint(const std::string &path, pipert::SafetensorsFile &file,
                           std::string &label, std::string &note,
                           std::string &error,
                           const pipert::TensorFilter &want) {
  // Sizes first; the sums of the parts this process reads tensors from
  // (a process of one rank reads its stage's, not the whole model's).
  pipert::Checkpoint c;
  if (pipert::Status s =
          pipert::openCheckpoint(path, c, pipert::PartCheck::Size);
      !s.ok()) {
    error = s.message();
    return false;
  }
  label = c.dir;
  if (!c.uncommitted.empty()) {
    std::string names;
    for (const std::string &n : c.uncommitted)
      names += (names.empty() ? "" : ", ") + n;
    note = " (passing over " + names +
           ", newer but never committed: a run stopped while writing it)";
  }
  std::map<std::string, std::string> owner, shapes;
  for (size_t i = 0; i < c.parts.size(); ++i) {
    const std::string &part = c.parts[i];
    pipert::SafetensorsFile f;
    std::string unread;
    const bool parsed = pipert::readSafetensors(part, f, unread, want);
    // Its sum where this process reads from it, or could not parse it (a
    // damaged part is said to be damaged).
    if (!parsed || std::any_of(f.tensors.begin(), f.tensors.end(),
                               [](const pipert::Tensor &t) {
                                 return !t.skipped;
                               }))
      if (pipert::Status s = pipert::verifyPart(c, i); !s.ok()) {
        error = s.message();
        return false;
      }
    if (!parsed) {
      error = unread;
      return false;
    }
    auto s = f.metadata.find("pipec.step");
    if (s == f.metadata.end() || s->second != std::to_string(c.step)) {
      error = part + ": not a part of step " + std::to_string(c.step) +
              " (its pipec.step is " +
              (s == f.metadata.end() ? std::string("missing") : s->second) +
              ")";
      return false;
    }
    // ZeRO-1's pieces name their shapes (MomentPieces.h); the parts that
    // have pieces of one parameter must agree on them.
    for (const auto &[key, value] : f.metadata)
      if (key.rfind("pipec.stored_shape.", 0) == 0 ||
          key.rfind("pipec.model_shape.", 0) == 0 ||
          key == kStepMicrobatchesKey || key == kMicrobatchTokensKey) {
        auto [it, fresh] = shapes.emplace(key, value);
        if (!fresh && it->second != value) {
          error = part + ": " + key + " is " + value + ", another part's " +
                  it->second;
          return false;
        }
      }
    for (pipert::Tensor &t : f.tensors) {
      auto [it, fresh] = owner.emplace(t.name, part);
      if (!fresh) {
        error = part + ": tensor '" + t.name + "' is also in " + it->second;
        return false;
      }
      file.tensors.push_back(std::move(t));
    }
  }
  file.metadata = stateMetadata(c.step);
  file.metadata.insert(shapes.begin(), shapes.end());
  return true;
}

bool loadState(pipert::Executor &exec, const std::string &given,
               int64_t &step, std::string &error, std::string *from) {
  pipert::SafetensorsFile file;
  std::string path = given, note;
  const pipert::TensorFilter want = heldTensors(exec, true);
  if (pipert::isCheckpointDirectory(given)
          ? !readCheckpoint(given, file, path, note, error, want)
          : !pipert::readSafetensors(given, file, error, want))
    return false;
  if (from)
    *from = path + note;
  // A checkpoint of a ZeRO-1 run with one process per rank holds each
  // replica's pieces of the moments: whole again before anything else.
  if (!assembleMomentPieces(file, path, error))
    return false;
  auto s = file.metadata.find("pipec.step");
  if (s == file.metadata.end() ||
      !pipert::parseInteger("pipec.step", s->second, 0,
                            int64_t(1) << 50, step, error)) {
    error = path + ": not a --save-state file (no valid pipec.step in its "
            "metadata)";
    return false;
  }
  const pipert::Manifest &m = exec.manifest();
  size_t expected = 3 * savedParams(m).size();
  if (file.tensors.size() != expected) {
    error = path + ": " + std::to_string(file.tensors.size()) +
            " tensors, but this model's state is " + std::to_string(expected) +
            " (each parameter and its two AdamW moments)";
    return false;
  }
  for (const pipert::ParamInfo &p : m.params) {
    const int64_t offsets[3] = {p.offset, p.adamMOffset, p.adamVOffset};
    for (int k = 0; k < 3; ++k)
      if (!loadRegion(exec, file, path, p, p.name + kStateSuffix[k],
                      offsets[k], error, k > 0))
        return false;
  }
  // Then (the model's own tensors checked first) the data a step took,
  // absent from files of before 2026-12-08: the same, or the resumed run
  // would train on other batches than the run it continues, and say
  // nothing.
  for (const auto &[key, mine, what] :
       {std::tuple<const char *, int64_t, const char *>{
            kStepMicrobatchesKey, int64_t(m.microbatches) * m.replicas,
            "micro-batches a step (D x M)"},
        {kMicrobatchTokensKey, m.tokensPerMicrobatch,
         "tokens a micro-batch (B x T)"}}) {
    auto it = file.metadata.find(key);
    if (it != file.metadata.end() && it->second != std::to_string(mine)) {
      error = path + ": the run it continues took " + it->second + " " +
              what + ", this plan " + std::to_string(mine) +
              ": its steps would draw other data than that run's (compile "
              "with the run's --microbatches, --dp and batch)";
      return false;
    }
  }
  return true;
}

/// --save with one rank per process: every process sends rank 0 the saved
/// parameters it holds, in manifest order; rank 0 writes the file the local
/// run writes. Collective.
bool saveGathered(pipert::Executor &exec, pipert::Transport &transport,
                  int32_t me, const std::string &path,
                  std::chrono::milliseconds timeout, std::string &error,
                  int64_t shardBytes) {
  const pipert::Manifest &m = exec.manifest();
  std::vector<const pipert::ParamInfo *> params = savedParams(m);
  std::vector<uint8_t> mine;
  for (const pipert::ParamInfo *p : params)
    if (exec.holds(p->rank)) {
      mine.resize(mine.size() + size_t(p->bytes));
      if (pipert::Status c = exec.readArena(p->rank, p->offset,
                                            mine.data() + mine.size() -
                                                size_t(p->bytes),
                                            p->bytes);
          !c.ok()) {
        error = "--save " + path + ": parameter " + p->name + ": " +
                c.message();
        return false;
      }
    }
  std::vector<uint8_t> all;
  std::vector<int64_t> sizes;
  if (pipert::Status s =
          transport.gatherAtRoot(me, mine.data(), int64_t(mine.size()), all,
                                 sizes, pipert::Clock::now() + timeout);
      !s.ok()) {
    error = "--save " + path + ": " + s.message();
    return false;
  }
  if (me != 0)
    return true;
  // Rank q's bytes are its parameters in manifest order.
  std::vector<int64_t> cursor(sizes.size(), 0);
  for (size_t q = 1; q < sizes.size(); ++q)
    cursor[q] = cursor[q - 1] + sizes[q - 1];
  std::vector<const uint8_t *> values;
  for (const pipert::ParamInfo *p : params) {
    values.push_back(all.data() + cursor[size_t(p->rank)]);
    cursor[size_t(p->rank)] += p->bytes;
  }
  return writeSaved(m, values, path, error, shardBytes);
}

/// ZeRO-1 with one rank per process: rank `me`'s part of the checkpoint
/// of `step` in `partial`: the values of the saved parameters of its
/// pipeline rank (replica 0's ranks alone write them) and its own pieces
/// of their moments (every replica; MomentPieces.h). No process gathers
/// another's moments. `name` is left empty when the rank has nothing.
static bool writePiecesPart(pipert::Executor &exec, const std::string &partial,
                            int64_t step, int32_t me, std::string &name,
                            int64_t &bytes, std::string &error) {
  const pipert::Manifest &m = exec.manifest();
  const int32_t replica = m.replicaOf(me), stage = m.pipelineRankOf(me);
  std::vector<pipert::Tensor> tensors;
  std::map<std::string, std::string> meta = stateMetadata(step, &m);
  std::vector<float> values;
  name.clear();
  for (const pipert::ParamInfo *p : savedParams(m)) {
    if (p->rank != stage)
      continue;
    if (p->dtype != pipert::DType::F32) {
      error = "parameter " + p->name + " is not f32";
      return false;
    }
    if (replica == 0) {
      if (!readModelShaped(exec, *p, 0, localMoments(exec), values, error))
        return false;
      tensors.push_back(pipert::makeFloatTensor<float>(
          p->name, p->modelShape(), values.data()));
    }
    const pipert::ShardRange part = m.momentShard(*p, replica);
    if (part.count == 0)
      continue;
    meta[storedShapeKey(p->name)] = shapeText(p->shape);
    meta[modelShapeKey(p->name)] = shapeText(p->modelShape());
    values.resize(size_t(part.count));
    for (int k = 1; k <= 2; ++k) {
      if (pipert::Status c =
              exec.readArena(me, m.momentOffset(*p, k, replica),
                             values.data(), part.count * 4);
          !c.ok()) {
        error = "parameter " + p->name + " (this rank's part of its "
                "moments): " + c.message();
        return false;
      }
      tensors.push_back(pipert::makeFloatTensor<float>(
          pieceName(p->name + kStateSuffix[k], part.first), {part.count},
          values.data()));
    }
  }
  if (tensors.empty())
    return true;
  name = "rank-" + std::to_string(me) + ".safetensors";
  meta["pipec.rank"] = std::to_string(me);
  if (!pipert::writeSafetensors(partial + "/" + name, tensors, meta, error))
    return false;
  for (const pipert::Tensor &t : tensors)
    bytes += int64_t(t.data.size());
  return true;
}

bool writeCheckpointGathered(pipert::Executor &exec,
                             pipert::Transport &transport, int32_t me,
                             const std::string &dir, int64_t step,
                             int64_t keep, std::chrono::milliseconds timeout,
                             CheckpointStats &stats, std::string &error) {
  const auto t0 = std::chrono::steady_clock::now();
  const int32_t n = exec.manifest().ranks;
  stats = CheckpointStats();
  // Every process's word on each phase: -1 failed, 0 done, 1 done and
  // wrote a part. The first failing rank says why; the others name it.
  std::vector<int32_t> words(size_t(n), 0);
  // Writing and hashing gigabytes takes longer than a message: each phase
  // gets at least ten minutes (a dead peer ends the job through mpirun).
  const auto limit = std::max<std::chrono::milliseconds>(
      timeout, std::chrono::minutes(10));
  auto agree = [&](int32_t mine, const char *phase) {
    if (pipert::Status s = transport.allGather(me, &mine, words.data(),
                                               sizeof mine,
                                               pipert::Clock::now() + limit);
        !s.ok()) {
      error = s.message();
      return false;
    }
    if (mine < 0)
      return false; // this process's own error stands
    for (int32_t q = 0; q < n; ++q)
      if (words[size_t(q)] < 0) {
        if (q != me)
          error = "rank " + std::to_string(q) + " failed " + phase;
        return false;
      }
    return true;
  };
  std::string partial = pipert::checkpointPath(dir, step) + ".partial", name;
  bool ok = true;
  // Rank 0 makes the directory; each process then writes its rank's part;
  // rank 0 commits what was written; all learn the outcome.
  if (me == 0)
    if (pipert::Status s = pipert::beginCheckpoint(dir, step, partial); !s.ok())
      ok = false, error = s.message();
  if (agree(ok ? 0 : -1, "to prepare the checkpoint")) {
    // ZeRO-1: each replica's rank writes its own pieces of the moments.
    ok = exec.manifest().zero
             ? writePiecesPart(exec, partial, step, me, name, stats.bytes,
                               error)
             : writePart(exec, partial, step, me, localMoments(exec), name,
                         stats.bytes, error);
    if (agree(ok ? (name.empty() ? 0 : 1) : -1, "to write its part")) {
      std::vector<std::string> parts;
      for (int32_t q = 0; q < n; ++q)
        if (words[size_t(q)] == 1)
          parts.push_back("rank-" + std::to_string(q) + ".safetensors");
      stats.parts = int64_t(parts.size());
      ok = me != 0 || commitAndPrune(dir, step, keep, parts, error);
      if (!agree(ok ? 0 : -1, "to commit the checkpoint")) {
        // Rank 0's rename is the commit: whether it happened, its own
        // message says; the other processes cannot know.
        error = checkpointWhere(dir, step) + error +
                (me == 0 ? std::string(kUntouched)
                         : "; see rank 0's message for whether it was "
                           "committed");
        return false;
      }
    } else {
      ok = false;
    }
  } else {
    ok = false;
  }
  if (!ok) {
    error = checkpointWhere(dir, step) + error + kUntouched;
    return false;
  }
  stats.path = pipert::checkpointPath(dir, step);
  stats.seconds = std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - t0)
                      .count();
  return true;
}


} // namespace pipecrun
