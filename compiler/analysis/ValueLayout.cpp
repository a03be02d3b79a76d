//===- ValueLayout.cpp - what a compiled plan keeps, and where ------------===//

#include "compiler/analysis/ValueLayout.h"

#include "compiler/analysis/ModelCosts.h"

#include "dialects/kernel/KernelOps.h"
#include "dialects/nn/NNGradOps.h"
#include "dialects/pipe/PipeOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "pipert/ZeroShard.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>
#include <set>

using namespace mlir;
using namespace pipec;
using namespace pipec::layout;

int64_t pipec::layout::arenaAlignment(llvm::StringRef target) {
  return target == "cuda" ? 256 : 64;
}

const TiedGroup *ValueLayout::tiedGroupOf(int param) const {
  for (const TiedGroup &g : tied)
    for (const TiedSegment &s : g.segments)
      if (s.param == params[size_t(param)].name)
        return &g;
  return nullptr;
}

/// The (parameter, use) accumulators a W kernel call adds into.
static std::vector<std::pair<std::string, int64_t>> accumulatorUses(
    Operation *op) {
  std::vector<std::pair<std::string, int64_t>> uses;
  if (auto call = dyn_cast<kernel::CallOp>(op))
    for (unsigned i = 0; i < call.getState().size(); ++i) {
      kernel::StateRef ref = call.getStateRef(i);
      if (ref.kind == kernel::StateRef::Accumulator)
        uses.push_back({ref.param, ref.use});
    }
  return uses;
}

/// Reads parameters, the optimizer's hyperparameters and the batch shape.
static bool readModel(ModuleOp module, func::FuncOp step, func::FuncOp opt,
                      ValueLayout &L, std::string &error) {
  L.modelName = module.getSymName() ? module.getSymName()->str() : "model";
  if (auto t = module->getAttrOfType<StringAttr>("kernel.target"))
    L.target = t.getValue().str();
  L.alignment = arenaAlignment(L.target);
  for (auto p : module.getOps<nn::ParameterOp>()) {
    RankedTensorType t = p.getTensorType();
    if (!t.hasStaticShape() || !t.getElementType().isIntOrFloat()) {
      error = "parameter '" + p.getSymName().str() +
              "': a static shape of numbers is needed to lay it out";
      return false;
    }
    ParamLayout pl;
    pl.name = p.getSymName().str();
    pl.shape.assign(t.getShape().begin(), t.getShape().end());
    if (std::optional<ArrayRef<int64_t>> logical = p.getLogicalShape())
      pl.logicalShape.assign(logical->begin(), logical->end());
    pl.elements = t.getNumElements();
    pl.bytes = pl.elements * ((t.getElementTypeBitWidth() + 7) / 8);
    int64_t master = 0;
    parameterStorage(module, pl.name, master, pl.copyBytes);
    pl.init = p.getInit().str();
    pl.std = p.getStd().convertToDouble();
    L.paramIndex[pl.name] = int(L.params.size());
    L.params.push_back(pl);
  }
  if (auto train = module->getAttrOfType<DictionaryAttr>("nn.train"))
    if (auto seed = train.getAs<IntegerAttr>("seed"))
      L.seed = uint64_t(seed.getInt());
  // The optimizer step as --nn-lower-to-kernels wrote it: per parameter
  // the uses its sum adds (sum_uses' accumulators) and AdamW's constants,
  // the clipping norm.
  for (Operation &op : opt.getBody().front()) {
    if (isa<nn::ParamOp, func::ReturnOp>(op))
      continue;
    auto call = dyn_cast<kernel::CallOp>(op);
    if (!call) {
      llvm::raw_string_ostream os(error);
      os << op.getLoc() << ": @optimizer_step op '" << op.getName()
         << "' is not a kernel call (run --nn-lower-to-kernels)";
      return false;
    }
    auto paramOf = [&](unsigned i) -> ParamLayout * {
      if (call.getState().size() <= i)
        return nullptr;
      auto it = L.paramIndex.find(call.getStateRef(i).param);
      return it == L.paramIndex.end() ? nullptr : &L.params[it->second];
    };
    StringRef k = call.getKernel();
    if (k == "sum_uses") {
      if (ParamLayout *pl = paramOf(0))
        pl->uses = int64_t(call.getState().size());
    } else if (k == "adamw" && call.getReals().size() == 4) {
      ParamLayout *pl = paramOf(0);
      if (!pl) {
        error = "@optimizer_step: adamw of an unknown parameter";
        return false;
      }
      pl->beta1 = call.getReals()[0];
      pl->beta2 = call.getReals()[1];
      pl->eps = call.getReals()[2];
      pl->weightDecay = call.getReals()[3];
    } else if (k == "clip_scale" && call.getReals().size() == 1) {
      L.gradClip = call.getReals()[0];
    }
  }
  for (unsigned i = 0; i < step.getNumArguments(); ++i) {
    auto name = step.getArgAttrOfType<StringAttr>(i, "nn.name");
    auto t = dyn_cast<RankedTensorType>(step.getArgument(i).getType());
    if (name && name.getValue() == "tokens" && t && t.getRank() == 2) {
      L.batch = t.getShape()[0];
      L.seq = t.getShape()[1];
    }
  }
  if (L.batch == 0) {
    error = "@train_step has no [B, T] argument named 'tokens'";
    return false;
  }
  // The vocabulary: the rows of the first embedding table (the call's
  // first operand, --nn-lower-to-kernels), the model's rows where the
  // table is padded (--nn-pad-vocab): token ids must be below them.
  step.walk([&](kernel::CallOp call) {
    if (L.vocab || call.getOrigin() != "nn.embedding")
      return;
    Value table = call.getInputs()[0];
    L.vocab = cast<RankedTensorType>(table.getType()).getShape()[0];
    if (auto read = table.getDefiningOp<nn::ParamOp>())
      if (auto decl = module.lookupSymbol<nn::ParameterOp>(read.getName()))
        if (std::optional<ArrayRef<int64_t>> logical = decl.getLogicalShape())
          L.vocab = (*logical)[0];
  });
  return true;
}

/// Assigns ops to chunks by nn.op_id and finds the values crossing cuts.
static bool assignOps(func::FuncOp step, ValueLayout &L,
                      std::vector<std::vector<Value>> &act,
                      std::vector<std::vector<Value>> &grad,
                      std::string &error) {
  int C = int(L.chunks.size());
  llvm::DenseMap<Operation *, int> chunkOf;
  llvm::DenseMap<Operation *, int64_t> position;
  int64_t pos = 0;
  Value loss;
  for (Operation &op : step.getBody().front()) {
    position[&op] = pos++;
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      if (ret.getNumOperands() == 1)
        loss = ret.getOperand(0);
      continue;
    }
    // The layout reads the kernels' storage (accumulators) from the calls.
    if (!isa<nn::ParamOp, kernel::CallOp>(op)) {
      llvm::raw_string_ostream os(error);
      os << op.getLoc() << ": @train_step op '" << op.getName()
         << "' is not a kernel call (run --nn-lower-to-kernels)";
      return false;
    }
    auto id = op.getAttrOfType<IntegerAttr>("nn.op_id");
    auto role = op.getAttrOfType<StringAttr>("nn.role");
    int r = !role ? -1
            : role.getValue() == "F" ? 0
            : role.getValue() == "B" ? 1
            : role.getValue() == "W" ? 2
                                      : -1;
    if (!id || r < 0) {
      llvm::raw_string_ostream os(error);
      os << op.getLoc() << ": '" << op.getName()
         << "' has no nn.op_id and nn.role (run --nn-autodiff)";
      return false;
    }
    int c = -1;
    for (int k = 0; k < C; ++k)
      if (id.getInt() >= L.chunks[k].firstOp && id.getInt() <= L.chunks[k].lastOp)
        c = k;
    if (c < 0) {
      llvm::raw_string_ostream os(error);
      os << op.getLoc() << ": op id " << id.getInt()
         << " is in no chunk's pipe.op_ids";
      return false;
    }
    chunkOf[&op] = c;
    L.chunks[c].ops[r].push_back(&op);
  }
  std::vector<llvm::SetVector<Value>> actSet(C + 1), gradSet(C + 1);
  for (auto [op, c] : chunkOf)
    for (Value v : op->getOperands()) {
      Operation *def = v.getDefiningOp();
      if (!def || isa<nn::ParamOp>(def))
        continue;
      int d = chunkOf.lookup(def);
      for (int k = d + 1; k <= c; ++k)
        actSet[k].insert(v);
      for (int k = c + 1; k <= d; ++k)
        gradSet[k].insert(v);
    }
  auto order = [&](llvm::SetVector<Value> &s) {
    std::vector<Value> v(s.begin(), s.end());
    std::sort(v.begin(), v.end(), [&](Value a, Value b) {
      int64_t pa = position.lookup(a.getDefiningOp());
      int64_t pb = position.lookup(b.getDefiningOp());
      if (pa != pb)
        return pa < pb;
      return cast<OpResult>(a).getResultNumber() <
             cast<OpResult>(b).getResultNumber();
    });
    return v;
  };
  act.assign(C + 1, {});
  grad.assign(C + 1, {});
  for (int k = 0; k <= C; ++k) {
    act[k] = order(actSet[k]);
    grad[k] = order(gradSet[k]);
    for (Value v : act[k])
      if (chunkOf.lookup(v.getDefiningOp()) >= k ||
          v.getDefiningOp()->getAttrOfType<StringAttr>("nn.role").getValue() !=
              "F") {
        error = "a backward value crosses cut " + std::to_string(k) +
                " forwards; the cpu target passes only F values forwards";
        return false;
      }
  }
  if (!loss || !loss.getDefiningOp()) {
    error = "@train_step must return the loss computed by an op";
    return false;
  }
  L.chunks[chunkOf.lookup(loss.getDefiningOp())].lossValue = loss;
  return true;
}

/// Packs the temporaries of one phase into the rank's scratch: each lives
/// from the op that defines it to its last reader in `ops` (inclusive, so
/// no kernel reads and writes the same bytes); first fit by op order.
static void packScratch(const ValueLayout &L, ChunkLayout &ch,
                        const std::vector<Operation *> &ops,
                        const std::vector<Value> &temps) {
  llvm::DenseMap<Operation *, int64_t> index;
  for (size_t i = 0; i < ops.size(); ++i)
    index[ops[i]] = int64_t(i);
  struct Live {
    int64_t first, last, offset, bytes;
  };
  std::vector<Live> placed;
  for (Value v : temps) {
    int64_t first = index.lookup(v.getDefiningOp()), last = first;
    for (Operation *user : v.getUsers())
      if (index.count(user))
        last = std::max(last, index.lookup(user));
    int64_t bytes = L.align(valueBytes(v)), offset = 0;
    // The lowest offset that overlaps no live block (blocks sorted by offset).
    std::vector<Live> live;
    for (const Live &l : placed)
      if (l.first <= last && first <= l.last)
        live.push_back(l);
    std::sort(live.begin(), live.end(),
              [](const Live &a, const Live &b) { return a.offset < b.offset; });
    for (const Live &l : live)
      if (offset + bytes > l.offset && offset < l.offset + l.bytes)
        offset = std::max(offset, l.offset + l.bytes);
    placed.push_back({first, last, offset, bytes});
    ch.scratch[v] = offset;
    ch.scratchBytes = std::max(ch.scratchBytes, offset + bytes);
  }
}

/// The regions each phase reads and writes: its ops' operands and results
/// that live in a region, the host's inputs (written before F), the
/// forwarded copies, and the incoming messages (F takes its input, B its
/// output's gradient, also when a same-rank neighbour hands them over by a
/// copy at that moment).
static void markPhaseAccesses(ChunkLayout &ch) {
  for (int phase = 0; phase < 3; ++phase)
    for (Operation *op : ch.ops[phase]) {
      for (Value v : op->getOperands())
        if (auto it = ch.loc.find(v); it != ch.loc.end())
          ch.reads[phase] |= uint8_t(1u << it->second.region);
      for (Value v : op->getResults())
        if (auto it = ch.loc.find(v); it != ch.loc.end())
          ch.writes[phase] |= uint8_t(1u << it->second.region);
    }
  if (!ch.hostInputs.empty())
    ch.writes[0] |= uint8_t(1u << kData);
  for (int phase = 0; phase < 2; ++phase)
    for (const Copy &c : ch.forwardCopies[phase]) {
      ch.reads[phase] |= uint8_t(1u << c.from.region);
      ch.writes[phase] |= uint8_t(1u << c.to.region);
    }
  if (ch.regionBytes[kInAct])
    ch.reads[0] |= uint8_t(1u << kInAct);
  if (ch.regionBytes[kInGrad])
    ch.reads[1] |= uint8_t(1u << kInGrad);
}

/// Places the values of chunk c inside its slot region.
static void layoutChunk(ValueLayout &L, int c, func::FuncOp step,
                        const std::vector<std::vector<Value>> &act,
                        const std::vector<std::vector<Value>> &grad) {
  ChunkLayout &ch = L.chunks[c];
  int C = int(L.chunks.size());
  int64_t *off = ch.regionBytes;
  auto place = [&](Value v, int k) {
    ch.loc[v] = {k, off[k]};
    off[k] = L.align(off[k] + valueBytes(v));
  };
  // Messages: values in cut order, each on a cache line, so the sender's
  // outgoing and the receiver's incoming region have the same layout.
  auto message = [&](int k, const std::vector<Value> &vals, int copies) {
    for (Value v : vals) {
      auto it = ch.loc.find(v);
      if (copies >= 0 && it != ch.loc.end()) {
        // Passed through: copy into the outgoing message.
        ch.forwardCopies[copies].push_back(
            {it->second, {k, off[k]}, valueBytes(v)});
        off[k] = L.align(off[k] + valueBytes(v));
      } else {
        place(v, k);
      }
    }
  };
  message(kInAct, c > 0 ? act[c] : std::vector<Value>{}, -1);
  message(kInGrad, c + 1 < C ? grad[c + 1] : std::vector<Value>{}, -1);
  message(kOutAct, c + 1 < C ? act[c + 1] : std::vector<Value>{}, 0);
  message(kOutGrad, c > 0 ? grad[c] : std::vector<Value>{}, 1);
  // The host's inputs and F's own values.
  ch.fData.offset = 0;
  llvm::SetVector<unsigned> args;
  for (int role = 0; role < 3; ++role)
    for (Operation *op : ch.ops[role])
      for (Value v : op->getOperands())
        if (auto a = dyn_cast<BlockArgument>(v))
          args.insert(a.getArgNumber());
  for (unsigned i : args) {
    auto name = step.getArgAttrOfType<StringAttr>(i, "nn.name");
    Value a = step.getArgument(i);
    HostInput in{HostInput::Tokens, off[kData], valueBytes(a)};
    if (name && name.getValue() == "targets")
      in.kind = HostInput::Targets;
    else if (name && name.getValue() == "loss_scale")
      in.kind = HostInput::LossScale;
    ch.usesData |= in.kind != HostInput::LossScale;
    ch.hostInputs.push_back(in);
    place(a, kData);
  }
  // A value a later phase reads (B or W reads F's, W reads B's) lives in
  // the slot; one that only its own phase reads is a temporary in the
  // rank's scratch, packed by liveness within the phase.
  llvm::DenseMap<Operation *, int> roleOf;
  for (int role = 0; role < 3; ++role)
    for (Operation *op : ch.ops[role])
      roleOf[op] = role;
  auto keptPastPhase = [&](Value v, int phase) {
    if (v == ch.lossValue)
      return true;
    for (Operation *user : v.getUsers()) {
      auto it = roleOf.find(user);
      if (it != roleOf.end() && it->second > phase)
        return true;
    }
    return false;
  };
  for (int phase = 0; phase < 2; ++phase) {
    SlotRegion &data = phase == 0 ? ch.fData : ch.bData;
    int region = phase == 0 ? kData : kBData;
    std::vector<Value> temps;
    for (Operation *op : ch.ops[phase])
      for (Value r : op->getResults())
        if (!isa<nn::ParamOp>(op) && !ch.loc.count(r)) {
          if (keptPastPhase(r, phase))
            place(r, region);
          else
            temps.push_back(r);
        }
    data.bytes = off[region] - data.offset;
    packScratch(L, ch, ch.ops[phase], temps);
  }
  markPhaseAccesses(ch);
}

/// Checks the host-argument names; anything else has no source of data.
static bool checkHostInputs(func::FuncOp step, std::string &error) {
  for (unsigned i = 0; i < step.getNumArguments(); ++i) {
    auto name = step.getArgAttrOfType<StringAttr>(i, "nn.name");
    if (!name || (name.getValue() != "tokens" && name.getValue() != "targets" &&
                  name.getValue() != "loss_scale")) {
      error = "@train_step argument " + std::to_string(i) +
              ": the cpu target feeds only 'tokens', 'targets' and "
              "'loss_scale'";
      return false;
    }
  }
  return true;
}

/// Parameters per rank, accumulators, tied groups and static blocks.
static void layoutStatic(ValueLayout &L) {
  int S = L.stages;
  L.ranks.assign(size_t(S), {});
  // Per rank, each accumulator (parameter, use) with the chunk whose W
  // writes it.
  std::vector<std::vector<std::pair<int32_t, std::pair<std::string, int64_t>>>>
      accs(static_cast<size_t>(S));
  std::vector<std::set<int>> held(static_cast<size_t>(S));
  for (size_t c = 0; c < L.chunks.size(); ++c) {
    ChunkLayout &ch = L.chunks[c];
    for (int role = 0; role < 3; ++role)
      for (Operation *op : ch.ops[role]) {
        if (auto p = dyn_cast<nn::ParamOp>(op))
          held[size_t(ch.rank)].insert(L.paramIndex.lookup(p.getName()));
        for (auto &u : accumulatorUses(op)) {
          held[size_t(ch.rank)].insert(L.paramIndex.lookup(u.first));
          accs[size_t(ch.rank)].push_back({int32_t(c), u});
        }
      }
  }
  for (size_t p = 0; p < L.params.size(); ++p) {
    for (int r = 0; r < S; ++r)
      if (held[size_t(r)].count(int(p)))
        L.params[p].ranks.push_back(r);
    // An unused parameter still decays and counts (zero) in the norm.
    if (L.params[p].ranks.empty()) {
      L.params[p].ranks.push_back(0);
      held[0].insert(int(p));
    }
    L.params[p].normRank = L.params[p].ranks.front();
  }
  // Tied groups: one per parameter held by several ranks (as
  // --pipe-partition's pipe.group @tied.NAME), numbered from 1.
  for (size_t p = 0; p < L.params.size(); ++p) {
    ParamLayout &pl = L.params[p];
    if (pl.ranks.size() < 2)
      continue;
    L.tied.push_back({int32_t(L.tied.size() + 1), pl.ranks, {}, 0});
    TiedGroup *g = &L.tied.back();
    for (int64_t u = 0; u < pl.uses; ++u) {
      g->segments.push_back({pl.name, u, g->bytes, pl.bytes});
      g->bytes = L.align(g->bytes + pl.bytes);
    }
  }
  // ZeRO-1 keys: largest parameters first, each rotated to where its
  // stages' busiest replica stays least busy (ties: the lowest rotation).
  const int32_t D = L.zeroReplicas;
  L.zeroKey.assign(L.params.size(), 0);
  if (D > 1) {
    std::vector<std::vector<int64_t>> load(
        static_cast<size_t>(S), std::vector<int64_t>(static_cast<size_t>(D)));
    std::vector<size_t> order(L.params.size());
    for (size_t p = 0; p < order.size(); ++p)
      order[p] = p;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return L.params[a].elements > L.params[b].elements;
    });
    // Replica q's part under key k is run (q - k) mod D's: the runs with
    // elements are listed once (at most the parameter's norm chunks), and
    // a rank's peak under key k is the larger of its busiest replica's
    // load and the loads those runs land on, so trying every key costs D
    // times the runs, not D squared zeroShard calls (D = 4096 took 150 s).
    std::vector<int64_t> most(static_cast<size_t>(S), 0);
    std::vector<std::pair<int32_t, int64_t>> runs;
    for (size_t p : order) {
      const ParamLayout &pl = L.params[p];
      runs.clear();
      for (int32_t j = 0; j < D; ++j)
        if (int64_t n = pipert::zeroShard(pl.elements, 0, j, D).count)
          runs.push_back({j, n});
      int32_t best = 0;
      int64_t bestPeak = -1;
      for (int32_t key = 0; key < D; ++key) {
        int64_t peak = 0;
        for (int32_t r : pl.ranks) {
          peak = std::max(peak, most[size_t(r)]);
          for (auto [j, n] : runs)
            peak = std::max(peak, load[size_t(r)][size_t((j + key) % D)] + n);
        }
        if (bestPeak < 0 || peak < bestPeak)
          best = key, bestPeak = peak;
      }
      L.zeroKey[p] = best;
      for (int32_t r : pl.ranks)
        for (auto [j, n] : runs) {
          int64_t &l = load[size_t(r)][size_t((j + best) % D)];
          l += n;
          most[size_t(r)] = std::max(most[size_t(r)], l);
        }
    }
  }
  L.normSlot.clear();
  L.normSlots = 0;
  for (const ParamLayout &pl : L.params) {
    L.normSlot.push_back(L.normSlots);
    L.normSlots += L.zeroReplicas > 1 ? pipert::normChunks(pl.elements) : 1;
  }
  for (int r = 0; r < S; ++r) {
    RankLayout &rk = L.ranks[size_t(r)];
    int64_t block = 0, moments = 0;
    for (int p : held[size_t(r)]) {
      rk.params.push_back(p);
      rk.paramOffset[p] = block;
      block = L.align(block + L.params[size_t(p)].bytes);
    }
    rk.momentOffset.assign(size_t(L.zeroReplicas), {});
    for (int32_t q = 0; q < L.zeroReplicas; ++q) {
      int64_t at = 0;
      for (int p : held[size_t(r)]) {
        const ParamLayout &pl = L.params[size_t(p)];
        rk.momentOffset[size_t(q)][p] = at;
        at = L.align(at + pl.bytes / std::max<int64_t>(pl.elements, 1) *
                              pipert::zeroShard(pl.elements, L.zeroKey[size_t(p)],
                                                q, L.zeroReplicas)
                                  .count);
      }
      moments = std::max(moments, at);
    }
    rk.paramBlockBytes = block;
    rk.momentBlockBytes = moments;
    rk.valuesBase = 0;
    rk.gradsBase = block;
    rk.mBase = 2 * block;
    rk.vBase = 2 * block + moments;
    int64_t off = 2 * block + 2 * moments;
    // The working copies the kernels read, where they are narrower than
    // the masters (bf16 storage).
    rk.copiesBase = off;
    for (int p : held[size_t(r)])
      if (int64_t bytes = L.params[size_t(p)].copyBytes) {
        rk.copyOffset[p] = off - rk.copiesBase;
        off = L.align(off + bytes);
      }
    rk.copiesBytes = off - rk.copiesBase;
    rk.accBase = off;
    // Chunk by chunk, so that each chunk's accumulators are one range (the
    // operand of its data-parallel all-reduce), parameters in model order
    // inside a chunk.
    std::sort(accs[size_t(r)].begin(), accs[size_t(r)].end(),
              [&](const auto &a, const auto &b) {
                int pa = L.paramIndex.lookup(a.second.first),
                    pb = L.paramIndex.lookup(b.second.first);
                return a.first != b.first ? a.first < b.first
                       : pa != pb         ? pa < pb
                                          : a.second.second < b.second.second;
              });
    std::map<std::pair<std::string, int64_t>, int32_t> chunkOfAcc;
    for (auto &[c, u] : accs[size_t(r)]) {
      auto [it, fresh] = chunkOfAcc.try_emplace(u, c);
      if (!fresh) {
        if (it->second != c)
          rk.sharedAccumulator = u.first + " (use " +
                                 std::to_string(u.second) + ", chunks " +
                                 std::to_string(it->second) + " and " +
                                 std::to_string(c) + ")";
        continue;
      }
      auto &range = rk.accRange.try_emplace(c, off - rk.accBase, 0)
                        .first->second;
      rk.accOffset[u] = off - rk.accBase;
      off = L.align(off + L.params[size_t(L.paramIndex.lookup(u.first))].bytes);
      range.second = off - rk.accBase - range.first;
    }
    rk.accBytes = off - rk.accBase;
    rk.normBase = off;
    off = L.align(off + 8 * L.normSlots);
    for (TiedGroup &g : L.tied)
      if (std::count(g.ranks.begin(), g.ranks.end(), r)) {
        rk.tiedBase[g.group] = off;
        off = L.align(off + g.bytes);
      }
    for (const ChunkLayout &ch : L.chunks)
      if (ch.rank == r)
        rk.scratchBytes = std::max(rk.scratchBytes, ch.scratchBytes);
    rk.scratchBase = off;
    off = L.align(off + rk.scratchBytes);
    rk.gradNormOffset = off;
    off = L.align(off + 8);
    rk.lossOffset = off;
    off = L.align(off + 8 * int64_t(L.microbatches));
    if (L.target == "cuda") {
      rk.scalarsOffset = off;
      off = L.align(off + 8 * kOptimizerScalars);
      // The rank's cuBLASLt workspace, 256-byte aligned like every block
      // (cuBLASLt's heuristic depends on it): inside the arena, so that a
      // rank's device memory is one allocation the plan sizes.
      rk.workspaceOffset = off;
      off = L.align(off + pipert::kCudaWorkspaceBytes);
    }
    rk.staticEnd = off;
    using plan::BufferKind;
    rk.staticBlocks = {
        {BufferKind::Weights, rk.gradsBase - rk.valuesBase},
        {BufferKind::Gradients, rk.mBase - rk.gradsBase},
        {BufferKind::Optimizer, rk.copiesBase - rk.mBase},
        {BufferKind::Weights, rk.accBase - rk.copiesBase},
        {BufferKind::Gradients, rk.scratchBase - rk.accBase},
        {BufferKind::Workspace, rk.staticEnd - rk.scratchBase}};
  }
}

int32_t pipec::layout::roleOfRegion(int region) {
  static const int32_t roles[kRegions] = {
      plan::RoleInAct,      plan::RoleInGrad, plan::RoleOutAct,
      plan::RoleOutGradMsg, plan::RoleSaved,  plan::RoleOutGrad};
  return roles[region];
}

std::vector<std::vector<plan::ChunkBuffer>>
pipec::layout::chunkBuffers(const ValueLayout &L) {
  std::vector<std::vector<plan::ChunkBuffer>> out(L.chunks.size());
  // Besides the phases that touch it, a message region is touched by its
  // transfer (the recv's post, the send's post and wait) or, between
  // neighbours on one rank, by the neighbour phase that copies it.
  static const uint32_t events[kRegions] = {
      plan::TouchRecvIn,
      plan::TouchRecvGradIn,
      plan::TouchSendOut | plan::TouchNextF,
      plan::TouchSendGradOut | plan::TouchPrevB,
      0,
      0};
  static const uint32_t phaseTouch[3] = {plan::TouchF, plan::TouchB,
                                         plan::TouchW};
  for (size_t c = 0; c < L.chunks.size(); ++c) {
    const ChunkLayout &ch = L.chunks[c];
    for (int k = 0; k < kRegions; ++k) {
      if (!ch.regionBytes[k])
        continue;
      uint32_t touches = events[k];
      for (int phase = 0; phase < 3; ++phase)
        if (ch.touches(phase, k))
          touches |= phaseTouch[phase];
      out[c].push_back({roleOfRegion(k), ch.regionBytes[k], touches, 0});
    }
  }
  return out;
}

bool pipec::layout::buildValueLayout(ModuleOp module, int32_t stages,
                                     int32_t microbatches, ValueLayout &L,
                                     std::string &error) {
  auto step = module.lookupSymbol<func::FuncOp>("train_step");
  auto opt = module.lookupSymbol<func::FuncOp>("optimizer_step");
  if (!step || !opt) {
    error = "the module has no @train_step and @optimizer_step (run "
            "--nn-autodiff)";
    return false;
  }
  for (auto ch : module.getOps<pipe::ChunkOp>()) {
    auto ids = ch->getAttrOfType<DenseI64ArrayAttr>("pipe.op_ids");
    if (!ids || ids.size() != 2) {
      error = "chunk @" + ch.getSymName().str() +
              " has no pipe.op_ids (run --pipe-partition)";
      return false;
    }
    ChunkLayout c;
    c.sym = ch.getSymName().str();
    c.rank = int32_t(ch.getRank());
    if (c.rank < 0 || c.rank >= stages) {
      error = "chunk @" + c.sym + " is on rank " + std::to_string(c.rank) +
              ", outside the schedule's " + std::to_string(stages) + " ranks";
      return false;
    }
    c.firstOp = ids[0];
    c.lastOp = ids[1];
    L.chunks.push_back(std::move(c));
  }
  if (L.chunks.empty()) {
    error = "the module has no pipe.chunk (run --pipe-partition)";
    return false;
  }
  L.stages = stages;
  L.microbatches = microbatches;
  for (auto s : module.getOps<pipe::ScheduleOp>())
    if (s.getZero() == 1)
      L.zeroReplicas = int32_t(s.getReplicas());
  std::vector<std::vector<Value>> act, grad;
  if (!readModel(module, step, opt, L, error) ||
      !checkHostInputs(step, error) || !assignOps(step, L, act, grad, error))
    return false;
  for (size_t c = 0; c < L.chunks.size(); ++c)
    layoutChunk(L, int(c), step, act, grad);
  layoutStatic(L);
  return true;
}
