//===- EmitPlan.cpp - a plan's sources, streams and manifest ---------------===//
//
// Lays out every rank's arena (EmitLayout.h: parameter state,
// accumulators, collective operands, scratch and metric slots, then the
// per-micro-batch regions of each chunk in their slots), prints the chunk
// sources and the plan source, and writes the streams and the manifest.
// docs/EMIT.md explains the layout and why it is built this way.
//
// The cpu and cuda targets share all of it but the text of a call, a copy
// and a function's frame (Syntax below): a cuda function reads its rank's
// context (stream, GEMMs) from KernelContext::target, launches on its
// stream, copies with cudaMemcpyAsync (the host inputs and the step too:
// the arena is device memory, which host code never dereferences) and
// ends synchronized, so that the runtime's host copies (the local
// transport, metrics, checkpoints) see the rank's device work done
// (docs/CUDA.md).
//
//===----------------------------------------------------------------------===//

#include "compiler/emit/EmitPlan.h"

#include "compiler/emit/EmitCudaZero.h"
#include "compiler/emit/EmitLayout.h"
#include "compiler/emit/EmitOps.h"
#include "compiler/emit/PlanFolder.h"
#include "dialects/kernel/KernelOps.h"
#include "dialects/nn/NNGradOps.h"

#include "pipert/AtomicFile.h"
#include "pipert/CommLayout.h"
#include "pipert/Fnv.h"
#include "pipert/Manifest.h"
#include "pipert/PlanStreams.h"
#include "pipert/Stream.h"
#include "pipert/StreamBuilder.h"

#include "llvm/Support/raw_ostream.h"

#include <array>
#include <cstdio>
#include <map>
#include <set>

using namespace mlir;
using namespace pipec;
using namespace pipec::emit;

/// Writes a file of the plan folder whole or not at all (AtomicFile.h).
static bool writeFile(const std::string &path, const std::string &text,
                      std::string &error) {
  if (pipert::Status s =
          pipert::writeFileAtomically(path, text, pipert::PlanFiles::Allow);
      !s.ok()) {
    error = s.message();
    return false;
  }
  return true;
}

/// Adds a length-prefixed part to the plan identity's hash (FNV-1a,
/// docs/RUNTIME.md), so that parts cannot run into each other.
static uint64_t hashPart(uint64_t h, const void *data, size_t size) {
  uint64_t n = size;
  h = pipert::fnv1a(&n, sizeof n, h);
  return pipert::fnv1a(data, size, h);
}

/// `text` as a C++ string literal, split into lines.
static std::string cString(const std::string &text) {
  std::string out = "\"";
  size_t column = 0;
  for (unsigned char c : text) {
    if (column >= 100) {
      out += "\"\n    \"";
      column = 0;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\%03o", c);
      out += buf;
    } else {
      out += char(c);
    }
    column += 1;
  }
  return out + "\"";
}

/// A pointer expression `((T *)(BASE + OFF))` for a value of `type`
/// (bf16 as its bits: host code never does arithmetic on it).
/// `text` for a // comment of generated source: control characters and
/// backslashes (a line splice) as '?', so that no name from a model file
/// can end the comment or continue it onto the next line.
static std::string commentText(llvm::StringRef text) {
  std::string out(text);
  for (char &c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\')
      c = '?';
  return out;
}

static std::string typedPtr(Type type, const std::string &base, int64_t off) {
  Type e = cast<RankedTensorType>(type).getElementType();
  const char *ct = e.isF64()          ? "double"
                   : e.isInteger(32)  ? "int32_t"
                   : e.isInteger(64)  ? "int64_t"
                   : e.isBF16()       ? "uint16_t"
                                      : "float";
  return std::string("((") + ct + " *)(" + base + " + " +
         std::to_string(off) + "))";
}

/// The region pointer of a micro-batch's region k in generated code.
static std::string regionPtr(int k) { return "R[" + std::to_string(k) + "]"; }

/// A pointer expression to a value kept per micro-batch.
static std::string placePtr(Type type, Place p) {
  return typedPtr(type, regionPtr(p.region), p.offset);
}

/// What the cpu and cuda sources of a plan print differently.
struct Syntax {
  bool cuda = false;

  /// The first lines of a function: its status and, on cuda, the rank's
  /// context C.
  std::string frame() const {
    std::string f = "  pipert::cpu::Status st;\n";
    if (cuda)
      f += "  const auto &C = *static_cast<const pipert::cuda::call::Context "
           "*>(ctx->target);\n"
           "  if (pipert::cpu::Status s = pipert::cuda::call::enter(C); "
           "!s.ok())\n    return s;\n";
    return f;
  }
  /// `n` bytes from `src` (in the arena, or host memory: the host inputs,
  /// the step) to `dst` in the arena; on cuda on the stream, where a
  /// pageable host source is staged before the call returns.
  std::string copy(const std::string &dst, const std::string &src,
                   int64_t n) const {
    if (!cuda)
      return "  std::memcpy(" + dst + ", " + src + ", " + std::to_string(n) +
             ");\n";
    return "  if (pipert::cpu::Status s = pipert::cuda::call::copyBytes(C, " +
           dst + ", " + src + ", " + std::to_string(n) +
           ");\n      !s.ok())\n    return s;\n";
  }
  /// `n` bytes of a host input (tokens, targets, the loss scale, the
  /// step) to `dst` in the arena; on cuda through the rank's pinned slots
  /// (Calls.h copyHostInput), so the host does not wait for the stream.
  std::string hostInput(const std::string &dst, const std::string &src,
                        int64_t n, const std::string &what) const {
    if (!cuda)
      return copy(dst, src, n);
    return "  if (pipert::cpu::Status s = pipert::cuda::call::copyHostInput(C, " +
           dst + ", " + src + ", " + std::to_string(n) + ", \"" + what +
           "\");\n      !s.ok())\n    return s;\n";
  }
  /// The loss slot's double at `dst` (the arena) from the loss value at
  /// `src` of element type `element` (f32 or f64).
  std::string storeLoss(const std::string &dst, const std::string &src,
                        Type element) const {
    if (!cuda)
      return "  *" + dst + " = double(*" + src + ");\n";
    if (element.isF64())
      return copy(dst, src, 8);
    return "  if (pipert::cpu::Status s = pipert::cuda::call::store_loss(C, " +
           dst + ", " + src + ");\n      !s.ok())\n    return s;\n";
  }
  /// `n` zero bytes at `dst` in the arena.
  std::string zero(const std::string &dst, int64_t n) const {
    if (!cuda)
      return "  std::memset(" + dst + ", 0, " + std::to_string(n) + ");\n";
    return "  if (pipert::cpu::Status s = pipert::cuda::call::zeroBytes(C, " +
           dst + ", " + std::to_string(n) + ");\n      !s.ok())\n    return s;\n";
  }
  /// The start of a function's kernel calls (cuda): under --cuda-graphs
  /// they are captured once per `args` (the function's pointers) and
  /// replayed as one graph (runtime/kernels/cuda/GraphReplay.h); the host's
  /// copies into the arena come before this. Closed by graphEnd.
  std::string graphBegin(const std::string &what,
                         const std::string &args) const {
    if (!cuda)
      return "";
    return "  pipert::cuda::Replay replay(C.graphs, C.stream, \"" + what +
           "\", {" + args +
           "}, pipert::threadKernelTimes != nullptr);\n"
           "  if (!replay.replaying()) {\n";
  }
  std::string graphEnd() const {
    if (!cuda)
      return "";
    return "  }\n  if (pipert::cpu::Status s = replay.finish(); !s.ok())\n"
           "    return s;\n";
  }
  /// Waits for the rank's device work (cuda): after it, host code may touch
  /// what the kernels wrote (Begin ends with it: the working copies are
  /// made before the first step and after a checkpoint is loaded).
  std::string sync(const std::string &what) const {
    if (!cuda)
      return "";
    return "  if (pipert::cpu::Status s = pipert::cuda::call::synchronize(C, "
           "\"" + what + "\");\n      !s.ok())\n    return s;\n";
  }
  /// The end of a function of the step (cuda: a chunk's F, B or W, the
  /// all-reduce operands, the gradients, the optimizer, the working copies
  /// after an all-gather): the stream synchronized where the run asks for
  /// it; with the rank's syncs deferred (cuda-local's device queues, nccl)
  /// the stream keeps the order and the host goes on (Calls.h
  /// endFunction).
  std::string endFunction(const std::string &what) const {
    if (!cuda)
      return "";
    return "  if (pipert::cpu::Status s = pipert::cuda::call::endFunction(C, "
           "\"" + what + "\");\n      !s.ok())\n    return s;\n";
  }
  /// The call of a kernel.call; an error at the op when it cannot be
  /// printed.
  LogicalResult call(Operation *op, const OpPointers &ptr, std::string &out,
                     KernelInstances &instances,
                     std::set<std::string> &used) const {
    return cuda ? emitCudaOpCall(op, ptr, out, instances)
                : emitOpCall(op, ptr, out, instances, used);
  }
  /// The includes of a chunk or plan source.
  std::string includes() const {
    if (!cuda)
      return "#include \"kernels/cpu/Status.h\"\n"
             "#include \"pipert/PlanAbi.h\"\n\n"
             "#include <cstdint>\n#include <cstring>\n#include <string>\n\n";
    return "#include \"kernels/cuda/Calls.h\"\n"
           "#include \"pipert/PlanAbi.h\"\n\n"
           "#include <cstdint>\n#include <cstring>\n#include <string>\n\n"
           "using P = pipert::cuda::call::P;\n\n";
  }
};

/// The copy of a value between regions of one micro-batch.
static std::string copyStmt(const Syntax &sx, const Copy &cp) {
  return sx.copy(regionPtr(cp.to.region) + " + " +
                     std::to_string(cp.to.offset),
                 regionPtr(cp.from.region) + " + " +
                     std::to_string(cp.from.offset),
                 cp.bytes);
}

/// The logits (f32 [rows, vocab]) of the chunk's softmax cross-entropy
/// when they are still intact at the end of F; null otherwise. The fused
/// op writes dlogits to other bytes (no kernel reads and writes the same
/// bytes), so the logits survive it: kept per micro-batch they stay until
/// the slot's next F; a scratch temporary stays unless a later F op puts
/// another temporary in the scratch (the op's own results never overlap
/// what it reads).
static Value logitsValue(const PlanLayout &L, const ChunkLayout &ch) {
  const std::vector<Operation *> &ops = ch.ops[0];
  for (size_t i = 0; i < ops.size(); ++i) {
    // The loss call of --nn-lower-to-kernels: logits are its operand 0.
    auto ce = dyn_cast<kernel::CallOp>(ops[i]);
    if (!ce || ce.getOrigin() != "nn.softmax_cross_entropy")
      continue;
    Value logitsIn = ce.getInputs()[0];
    // The sampler reads row b * seq + t of [batch * seq, vocab] floats.
    auto type = cast<RankedTensorType>(logitsIn.getType());
    if (!type.getElementType().isF32() || !type.hasStaticShape() ||
        type.getNumElements() != L.batch * L.seq * L.vocab)
      return {};
    if (ch.loc.count(logitsIn))
      return logitsIn;
    if (!ch.scratch.count(logitsIn))
      return {};
    for (size_t j = i + 1; j < ops.size(); ++j)
      for (Value r : ops[j]->getResults())
        if (ch.scratch.count(r))
          return {};
    return logitsIn;
  }
  return {};
}

/// The source of chunk `c`: its F, B and W functions.
static LogicalResult emitChunkSource(const PlanLayout &L, int c,
                                     const PerturbedValues &perturbed,
                                     KernelInstances &instances,
                                     std::string &out,
                                     std::vector<std::string> (&calls)[3]) {
  const ChunkLayout &ch = L.chunks[c];
  const RankLayout &rk = L.ranks[ch.rank];
  const Syntax sx{L.target == "cuda"};
  OpPointers ptr;
  ptr.value = [&](Value v) -> std::string {
    if (auto p = v.getDefiningOp<nn::ParamOp>()) {
      // The kernels read the working copy where there is one (bf16).
      int idx = L.paramIndex.lookup(p.getName());
      if (auto it = rk.copyOffset.find(idx); it != rk.copyOffset.end())
        return typedPtr(v.getType(), "A", rk.copiesBase + it->second);
      // A bf16 read with no copy would read the fp32 master as bf16: the
      // call that reads it is refused, naming the op.
      if (p.getType().getElementType().isBF16())
        return std::string();
      return typedPtr(v.getType(), "A", rk.valuesBase + rk.paramOffset.at(idx));
    }
    auto it = ch.scratch.find(v);
    if (it != ch.scratch.end())
      return typedPtr(v.getType(), "A", rk.scratchBase + it->second);
    return placePtr(v.getType(), ch.loc.lookup(v));
  };
  // A chunk's W calls add into the rank's accumulators; nothing else.
  ptr.state = [&](const kernel::StateRef &ref) -> std::string {
    auto it = rk.accOffset.find({ref.param, ref.use});
    if (ref.kind != kernel::StateRef::Accumulator || it == rk.accOffset.end())
      return "";
    return "((float *)(A + " + std::to_string(rk.accBase + it->second) +
           "))";
  };
  std::string body[3];
  std::set<std::string> used;
  for (int role = 0; role < 3; ++role) {
    instances.calls.clear();
    for (Operation *op : ch.ops[role]) {
      if (failed(sx.call(op, ptr, body[role], instances, used)))
        return failure();
      auto it = perturbed.find(op);
      if (it != perturbed.end())
        emitPerturbation(it->second, ptr, sx.cuda, body[role]);
    }
    calls[role] = std::move(instances.calls);
  }
  llvm::raw_string_ostream os(out);
  os << "// chunk " << c << " of " << commentText(L.modelName)
     << ": F, B and W as kernel calls with static shapes (generated by "
        "pipec)\n"
     << sx.includes();
  if (!sx.cuda) {
    os << "// The kernel instantiations this chunk calls (kernels.cpp).\n";
    for (const std::string &name : used)
      os << instances.declarations.at(name) << "\n";
    os << "\n";
  }
  // F: host inputs into the slot, the ops, forwarded values, the loss slot.
  os << "pipert::cpu::Status pipec_c" << c
     << "_fwd(const pipert::KernelContext *ctx, uint8_t *A, uint8_t *const "
        "*R, int32_t mb, const int32_t *tokens, const int32_t *targets, double "
        "lossScale) {\n"
        "  (void)ctx; (void)A; (void)mb; (void)tokens; (void)targets; "
        "(void)lossScale;\n"
     << sx.frame();
  for (const HostInput &in : ch.hostInputs) {
    std::string dst = "R[" + std::to_string(kData) + "] + " +
                      std::to_string(in.offset);
    const std::string what = "chunk " + std::to_string(c) + " F's ";
    if (in.kind == HostInput::LossScale)
      os << sx.hostInput(dst, "&lossScale", 8, what + "loss scale");
    else if (in.kind == HostInput::Tokens)
      os << sx.hostInput(dst, "tokens", in.bytes, what + "tokens");
    else
      os << sx.hostInput(dst, "targets", in.bytes, what + "targets");
  }
  // The regions' pointers and mb (the loss slot) name a graph.
  const std::string regions =
      "A, R[0], R[1], R[2], R[3], R[4], R[5]";
  static_assert(kRegions == 6, "the graph key lists every region");
  const std::string cs = std::to_string(c);
  os << sx.graphBegin("chunk " + cs + " F",
                      regions + ", (const void *)(intptr_t)mb")
     << body[0];
  for (const Copy &cp : ch.forwardCopies[0])
    os << copyStmt(sx, cp);
  if (ch.lossValue)
    os << sx.storeLoss(
        "((double *)(A + " + std::to_string(rk.lossOffset) + ") + mb)",
        placePtr(ch.lossValue.getType(), ch.loc.lookup(ch.lossValue)),
        cast<ShapedType>(ch.lossValue.getType()).getElementType());
  os << sx.graphEnd() << sx.endFunction("chunk " + cs + " F");
  os << "  return pipert::cpu::Status::success();\n}\n\n";
  os << "pipert::cpu::Status pipec_c" << c
     << "_bwdB(const pipert::KernelContext *ctx, uint8_t *A, uint8_t *const "
        "*R) {\n  (void)ctx; (void)A; (void)R;\n"
     << sx.frame() << sx.graphBegin("chunk " + cs + " B", regions)
     << body[1];
  for (const Copy &cp : ch.forwardCopies[1])
    os << copyStmt(sx, cp);
  os << sx.graphEnd() << sx.endFunction("chunk " + cs + " B")
     << "  return pipert::cpu::Status::success();\n}\n\n";
  os << "pipert::cpu::Status pipec_c" << c
     << "_bwdW(const pipert::KernelContext *ctx, uint8_t *A, uint8_t *const "
        "*R) {\n  (void)ctx; (void)A; (void)R;\n"
     << sx.frame() << sx.graphBegin("chunk " + cs + " W", regions)
     << body[2] << sx.graphEnd() << sx.endFunction("chunk " + cs + " W")
     << "  return pipert::cpu::Status::success();\n}\n";
  // Text generation (pipec-run --sample) reads the logits F leaves behind
  // (in gpt-tiny a scratch temporary: the fused loss op computes dlogits in
  // F, so no B reads the logits).
  if (Value logits = sx.cuda ? Value() : logitsValue(L, ch))
    os << "\nconst float *pipec_c" << c
       << "_logits(uint8_t *A, uint8_t *const *R) {\n  (void)A; (void)R;\n"
       << "  return " << ptr.value(logits) << ";\n}\n";
  return success();
}

/// ZeRO-1: AdamW of this replica's part of a parameter (its moments hold
/// that part only), the same call on a sub-range: elementwise, so the
/// bits of every element are those of the whole update.
static LogicalResult emitShardedAdamW(const PlanLayout &L,
                                      const RankLayout &rk,
                                      kernel::CallOp call,
                                      const OpPointers &ptr,
                                      const std::string &replica,
                                      std::string &out) {
  CallArgs ca;
  if (failed(readCallArgs(call, ptr, "cpu", ca)))
    return failure();
  const int p = L.paramIndex.lookup(call.getStateRef(0).param);
  const ParamLayout &pl = L.params[size_t(p)];
  // call::adamw(param, m, v, grad, lr, clip, step, n, decay, reals...).
  if (ca.args.size() != 7 || call.getInts().size() != 2 ||
      call.getInts()[0] != pl.elements)
    return call.emitError("ZeRO-1 shards adamw(param, m, v, grad, lr, clip, "
                          "step; n, decay), not this call");
  // The replica's moments, packed: offsets by replica.
  std::string shifts;
  for (int32_t q = 0; q < L.replicas; ++q)
    shifts += (q ? ", " : "") +
              std::to_string(rk.momentOffset[size_t(q)].at(p));
  llvm::raw_string_ostream os(out);
  os << "  // " << call.getOrigin() << " " << ca.loc
     << ": this replica's part (ZeRO-1)\n  {\n"
     << "    static const int64_t kAt[] = {" << shifts << "};\n"
     << "    const pipert::ShardRange s = pipert::zeroShard(" << pl.elements
     << ", " << L.zeroKey[size_t(p)] << ", " << replica << ", " << L.replicas
     << ");\n"
     << "    st = pipert::cpu::call::adamw<float>(" << ca.args[0]
     << " + s.first, (float *)(A + " << rk.mBase << " + kAt[" << replica
     << "]), (float *)(A + " << rk.vBase << " + kAt[" << replica << "]), "
     << ca.args[3] << " + s.first, " << ca.args[4] << ", " << ca.args[5]
     << ", " << ca.args[6] << ", s.count, " << call.getInts()[1];
  for (double r : call.getReals())
    os << ", " << doubleLiteral(r);
  os << ");\n    if (!st.ok())\n      return pipert::cpu::failureAt("
     << ca.where << ", st);\n  }\n";
  return success();
}

/// The optimizer of every rank, printed from @optimizer_step's kernel calls
/// (the kernels --nn-lower-to-kernels chose), split where the all-reduces
/// run: rankRPrepare fills the operands (tied parameters' accumulators; for
/// group 0 each held parameter's summed gradient and, on its lowest holder,
/// its sum of squares), rankROpt runs the rest (global norm over the
/// all-reduced squares, clipping, learning rate, AdamW of the held
/// parameters) and zeroes the accumulators. Which rank runs a call and
/// where its values live is layout; the calls are the optimizer's.
static LogicalResult emitOptimizer(const PlanLayout &L,
                                   func::FuncOp optimizer,
                                   KernelInstances &instances,
                                   std::set<std::string> &used,
                                   std::string &out) {
  if (!optimizer)
    return L.module.emitError("the module has no @optimizer_step");
  // The parameter each per-parameter value belongs to: a summed gradient
  // is what AdamW of that parameter reads, its squares come from it.
  llvm::DenseMap<Value, int> paramOf;
  std::vector<kernel::CallOp> calls;
  // buildPlanLayout (ValueLayout) has refused anything but kernel calls.
  for (auto call : optimizer.getBody().front().getOps<kernel::CallOp>()) {
    calls.push_back(call);
    if (call.getKernel() == "adamw" && !call.getState().empty() &&
        !call.getInputs().empty())
      paramOf[call.getInputs()[0]] =
          L.paramIndex.lookup(call.getStateRef(0).param);
  }
  for (kernel::CallOp call : calls)
    if (call.getKernel() == "sum_squares" && paramOf.count(call.getInputs()[0]))
      paramOf[call.getResult(0)] = paramOf.lookup(call.getInputs()[0]);
  // Before the global norm: the all-reduce operands; from it on: Opt.
  auto inPrepare = [](kernel::CallOp call) {
    return call.getKernel() == "sum_uses" || call.getKernel() == "sum_squares";
  };
  auto f32 = [](int64_t off) {
    return "((float *)(A + " + std::to_string(off) + "))";
  };
  const Syntax sx{L.target == "cuda"};
  llvm::raw_string_ostream os(out);
  instances.optimizerRankStarts.clear();
  instances.optimizerStepStarts.clear();
  for (size_t r = 0; r < L.ranks.size(); ++r) {
    instances.optimizerRankStarts.push_back(instances.calls.size());
    const RankLayout &rk = L.ranks[r];
    auto holds = [&](int p) {
      return std::count(rk.params.begin(), rk.params.end(), p) > 0;
    };
    auto gradPtr = [&](int p) {
      return f32(rk.gradsBase + rk.paramOffset.at(p));
    };
    // Where each use's gradient is read from when summing: the tied
    // operand (all-reduced in rank order) or this rank's accumulator.
    auto usePtr = [&](const std::string &name, int64_t use) -> std::string {
      if (const TiedGroup *g = L.tiedGroupOf(L.paramIndex.lookup(name)))
        for (const TiedSegment &seg : g->segments)
          if (seg.param == name && seg.use == use)
            return f32(rk.tiedBase.at(g->group) + seg.offset);
      auto it = rk.accOffset.find({name, use});
      return it == rk.accOffset.end() ? ""
                                      : f32(rk.accBase + it->second);
    };
    OpPointers ptr;
    llvm::DenseMap<Value, std::string> where;
    ptr.value = [&](Value v) -> std::string { return where.lookup(v); };
    ptr.state = [&](const kernel::StateRef &ref) -> std::string {
      int p = L.paramIndex.lookup(ref.param);
      if (!holds(p))
        return "";
      int64_t off = rk.paramOffset.at(p);
      switch (ref.kind) {
      case kernel::StateRef::Accumulator:
        return usePtr(ref.param, ref.use);
      case kernel::StateRef::Value:
        return f32(rk.valuesBase + off);
      case kernel::StateRef::FirstMoment:
        return f32(rk.mBase + rk.momentOffset[0].at(p));
      case kernel::StateRef::SecondMoment:
        return f32(rk.vBase + rk.momentOffset[0].at(p));
      case kernel::StateRef::Copy: {
        // The cuda target's bf16 working copy (none on the cpu: refused).
        auto it = rk.copyOffset.find(p);
        return it == rk.copyOffset.end()
                   ? ""
                   : "((uint16_t *)(A + " +
                         std::to_string(rk.copiesBase + it->second) + "))";
      }
      }
      return "";
    };
    for (auto [v, p] : paramOf)
      if (holds(p) &&
          cast<RankedTensorType>(v.getType()).getElementType().isF32())
        where[v] = gradPtr(p);

    // Prepare: the tied operands, then group 0.
    os << "static pipert::cpu::Status rank" << r
       << "Prepare(const pipert::KernelContext *ctx, uint8_t *A, int32_t "
          "group, uint8_t *data) {\n"
          "  (void)ctx; (void)A; (void)data;\n"
       << sx.frame();
    for (const TiedGroup &g : L.tied) {
      if (!std::count(g.ranks.begin(), g.ranks.end(), int32_t(r)))
        continue;
      // The operand's copies are the step's device work like the kernels':
      // captured and replayed with them (--cuda-graphs, --step-graph).
      os << "  if (group == " << g.group << ") {\n"
         << sx.graphBegin("rank " + std::to_string(r) +
                              " all-reduce operands of group " +
                              std::to_string(g.group),
                          "A, data");
      for (const TiedSegment &s : g.segments) {
        auto it = rk.accOffset.find({s.param, s.use});
        if (it != rk.accOffset.end())
          os << sx.copy("data + " + std::to_string(s.offset),
                        f32(rk.accBase + it->second), s.bytes);
        else
          os << sx.zero("data + " + std::to_string(s.offset), s.bytes);
      }
      os << sx.graphEnd()
         << sx.endFunction("rank " + std::to_string(r) +
                           " all-reduce operands")
         << "    return st;\n  }\n";
    }
    os << "  if (group != 0)\n    return st;\n";
    std::string prepare;
    // ZeRO-1: this replica's part of each parameter (pipert/ZeroShard.h).
    const bool zero = L.zeroReplicas > 1;
    const std::string replica =
        "ctx->rank / " + std::to_string(L.stages);
    if (sx.cuda || zero)
      prepare += sx.zero("data", 8 * L.normSlots);
    std::vector<kernel::CallOp> usesCalls, squaresCalls;
    std::vector<int> zeroSquares; // ZeRO-1 on cuda: whose chunks to square
    for (kernel::CallOp call : calls) {
      if (!inPrepare(call))
        continue;
      Value result = call.getResult(0);
      auto it = paramOf.find(call.getKernel() == "sum_uses"
                                 ? result
                                 : call.getInputs()[0]);
      if (it == paramOf.end())
        return call.emitError("@optimizer_step: a '")
               << call.getKernel() << "' call whose parameter no adamw "
               << "updates";
      int p = it->second;
      if (call.getKernel() == "sum_squares") {
        // Each parameter's squares from one rank (its lowest holder), zero
        // elsewhere: the all-reduce adds them exactly.
        std::string slot = "((double *)(data + " +
                           std::to_string(8 * L.normSlot[size_t(p)]) + "))";
        if (zero && L.params[size_t(p)].normRank == int32_t(r)) {
          // ZeRO-1: the partial sums of this replica's norm chunks, each
          // in its own slot; the other replicas' stay zero.
          if (sx.cuda) {
            // Together after the gradients' sums (EmitCudaZero.h).
            zeroSquares.push_back(p);
            continue;
          }
          const ParamLayout &pl = L.params[size_t(p)];
          prepare += "  // " + call.getOrigin().str() +
                     ": this replica's norm chunks (ZeRO-1)\n  {\n"
                     "    const pipert::ShardRange s = pipert::zeroShard(" +
                     std::to_string(pl.elements) + ", " +
                     std::to_string(L.zeroKey[size_t(p)]) + ", " + replica +
                     ", " + std::to_string(L.replicas) +
                     ");\n    pipert::cpu::shardSquares<float>(" +
                     gradPtr(p) + ", " + std::to_string(pl.elements) +
                     ", s.first, s.count, " + slot + ");\n  }\n";
          continue;
        }
        if (L.params[size_t(p)].normRank != int32_t(r)) {
          // cuda: the whole operand is zeroed on the stream before the
          // first launch (no host write among this rank's kernels).
          if (!sx.cuda && !zero)
            prepare += "  *" + slot + " = 0.0;\n";
          continue;
        }
        where[result] = slot;
        if (sx.cuda) {
          // Launched together after the gradients' sums (each reads only
          // its gradient, complete by then).
          squaresCalls.push_back(call);
          continue;
        }
      } else if (!holds(p)) {
        continue;
      } else if (sx.cuda) {
        // sum_uses: the gradients of every held parameter at once, before
        // the sums of squares that read them.
        usesCalls.push_back(call);
        continue;
      }
      if (failed(sx.call(call, ptr, prepare, instances, used)))
        return failure();
    }
    if (failed(emitCudaSumUsesBatch(usesCalls, ptr, int(r), prepare,
                                    instances)) ||
        failed(emitCudaSquaresBatch(squaresCalls, ptr, int(r), prepare,
                                    instances)))
      return failure();
    prepare += cudaZeroSquares(L, rk, int(r), zeroSquares, instances);
    os << sx.graphBegin("rank " + std::to_string(r) + " gradients",
                        "A, data")
       << prepare << sx.graphEnd()
       << sx.endFunction("rank " + std::to_string(r) + " gradients")
       << "  return st;\n}\n\n";
    instances.optimizerStepStarts.push_back(instances.calls.size());

    // Opt: the norm of the all-reduced squares, clipping, learning rate,
    // AdamW of the held parameters.
    std::string opt = "static pipert::cpu::Status rank" + std::to_string(r) +
                      "Opt(const pipert::KernelContext *ctx, uint8_t *A, "
                      "int64_t step) {\n  (void)ctx;\n" + sx.frame();
    // The step and the scalars the calls make: host stack on the cpu, the
    // arena's scalar slots on cuda (its kernels read and write them).
    int scalarSlots = 0;
    auto scalarSlot = [&](const char *type) {
      return "((" + std::string(type) + " *)(A + " +
             std::to_string(rk.scalarsOffset + 8 * scalarSlots++) + "))";
    };
    if (sx.cuda) {
      opt += sx.hostInput(scalarSlot("int64_t"), "&step", 8,
                          "rank " + std::to_string(r) + " optimizer's step");
      opt += sx.graphBegin("rank " + std::to_string(r) + " optimizer", "A");
      if (optimizer.getNumArguments() > 0)
        where[optimizer.getArgument(0)] =
            "((int64_t *)(A + " + std::to_string(rk.scalarsOffset) + "))";
    } else {
      opt += "  int64_t stepValue = step;\n";
      if (optimizer.getNumArguments() > 0)
        where[optimizer.getArgument(0)] = "(&stepValue)";
    }
    for (auto [v, p] : paramOf)
      if (cast<RankedTensorType>(v.getType()).getElementType().isF64())
        where[v] = zero && sx.cuda ? cudaZeroTotal(p)
                   : zero ? "(&zeroSquares[" + std::to_string(p) + "])"
                          : "((double *)(A + " +
                                std::to_string(rk.normBase +
                                               8 * L.normSlot[size_t(p)]) +
                                "))";
    if (zero && sx.cuda) {
      opt += cudaZeroTotals(L, rk, int(r), instances);
    } else if (zero) {
      // ZeRO-1: each parameter's sum of squares from its chunks' partial
      // sums (all-reduced over every rank), added in chunk order as
      // sumOfSquares adds them.
      std::string bounds;
      for (int64_t slot : L.normSlot)
        bounds += std::to_string(slot) + ", ";
      opt += "  static const int64_t kNormSlot[] = {" + bounds +
             std::to_string(L.normSlots) +
             "};\n"
             "  const double *partials = (const double *)(A + " +
             std::to_string(rk.normBase) + ");\n  double zeroSquares[" +
             std::to_string(L.params.size()) + "];\n  for (int p = 0; p < " +
             std::to_string(L.params.size()) +
             "; ++p) {\n    double total = 0;\n    for (int64_t u = "
             "kNormSlot[p]; u < kNormSlot[p + 1]; ++u)\n      total += "
             "partials[u];\n    zeroSquares[p] = total;\n  }\n";
    }
    int locals = 0;
    std::vector<kernel::CallOp> adamwCalls;
    std::vector<int> adamwParams;
    for (kernel::CallOp call : calls) {
      if (inPrepare(call))
        continue;
      if (call.getKernel() == "adamw" &&
          !holds(L.paramIndex.lookup(call.getStateRef(0).param)))
        continue;
      if (zero && !sx.cuda && call.getKernel() == "adamw") {
        instances.untimedCalls = true;
        if (failed(emitShardedAdamW(L, rk, call, ptr, replica, opt)))
          return failure();
        continue;
      }
      if (sx.cuda && call.getKernel() == "adamw") {
        // Launched together after the loop (they read only what the
        // calls before them made, and nothing reads what they write).
        adamwCalls.push_back(call);
        adamwParams.push_back(L.paramIndex.lookup(call.getStateRef(0).param));
        continue;
      }
      for (Value res : call.getResults()) {
        if (call.getKernel() == "grad_norm") {
          where[res] = "((double *)(A + " +
                       std::to_string(rk.gradNormOffset) + "))";
          continue;
        }
        if (sx.cuda) {
          if (scalarSlots >= layout::kOptimizerScalars)
            return call.emitError("@optimizer_step makes more than ")
                   << layout::kOptimizerScalars - 1
                   << " scalars, the cuda layout's slots";
          where[res] = scalarSlot("double");
          continue;
        }
        // Host scalars (clip scale, learning rate) live on the stack.
        std::string name = "scalar" + std::to_string(locals++);
        opt += "  double " + name + " = 0;\n";
        where[res] = "(&" + name + ")";
      }
      if (failed(sx.call(call, ptr, opt, instances, used)))
        return failure();
    }
    // ZeRO-1: each parameter's part and moments of this replica.
    std::vector<CudaShard> shards;
    if (zero && sx.cuda)
      opt += cudaZeroParts(L, rk, adamwParams, shards);
    if (failed(emitCudaAdamWBatch(adamwCalls, ptr, int(r), opt, instances,
                                  shards)))
      return failure();
    // The accumulators start the next step at zero (docs/AUTODIFF.md).
    if (rk.accBytes)
      opt += sx.zero("A + " + std::to_string(rk.accBase), rk.accBytes);
    opt += sx.graphEnd() +
           sx.endFunction("rank " + std::to_string(r) + " optimizer");
    os << opt << "  return st;\n}\n\n";

    // Begin (cuda): the working copies from the masters, before step 0 and
    // after a checkpoint is loaded.
    if (sx.cuda) {
      os << "static pipert::cpu::Status rank" << r
         << "Begin(const pipert::KernelContext *ctx, uint8_t *A) {\n  (void)A;\n"
         << sx.frame();
      for (int p : rk.params)
        if (auto it = rk.copyOffset.find(p); it != rk.copyOffset.end())
          os << "  if (pipert::cpu::Status s = pipert::cuda::call::round_copy("
                "C, P{A + "
             << rk.copiesBase + it->second << "}, P{A + "
             << rk.valuesBase + rk.paramOffset.at(p) << "}, "
             << L.params[size_t(p)].elements
             << ");\n      !s.ok())\n    return s;\n";
      os << sx.sync("rank " + std::to_string(r) + " working copies")
         << "  return st;\n}\n\n";
      // Gathered (ZeRO-1): the working copies follow the all-gather.
      if (zero)
        os << "static pipert::cpu::Status rank" << r
           << "Gathered(const pipert::KernelContext *ctx, uint8_t *A) {\n"
           << sx.frame()
           << sx.graphBegin("rank " + std::to_string(r) +
                                " working copies after the all-gather",
                            "A")
           << cudaZeroCopies(L, rk, int(r), instances) << sx.graphEnd()
           << sx.endFunction("rank " + std::to_string(r) +
                             " working copies after the all-gather")
           << "  return st;\n}\n\n";
    }
  }
  return success();
}

/// plan.cpp: the chunk table, per-rank all-reduce operands and optimizer.
static LogicalResult emitPlanSource(const PlanLayout &L,
                                    func::FuncOp optimizer,
                                    KernelInstances &instances,
                                    std::string &out) {
  std::string optimizerText;
  std::set<std::string> used;
  if (failed(emitOptimizer(L, optimizer, instances, used, optimizerText)))
    return failure();
  llvm::raw_string_ostream os(out);
  int C = int(L.chunks.size());
  const bool cuda = L.target == "cuda";
  os << "// the plan of " << commentText(L.modelName)
     << ": chunk table, all-reduce operands, optimizer (generated by pipec)\n"
        "#include \"pipert/PlanCode.h\"\n\n";
  if (cuda) {
    os << "#include \"kernels/cuda/Calls.h\"\n#include \"kernels/cuda/Target.h\"\n\n"
          "#include <cstring>\n\nusing P = pipert::cuda::call::P;\n\n";
  } else {
    os << "#include \"kernels/cpu/Calls.h\"\n"
          "#include \"kernels/cpu/Ceilings.h\"\n\n"
          "#include <cstring>\n\n"
          "// The kernel instantiations the optimizer calls (kernels.cpp).\n";
    for (const std::string &name : used)
      os << instances.declarations.at(name) << "\n";
    os << "\n";
  }
  for (int c = 0; c < C; ++c)
    os << "pipert::cpu::Status pipec_c" << c
       << "_fwd(const pipert::KernelContext *, uint8_t *, uint8_t *const *, "
          "int32_t, const int32_t *, const "
          "int32_t *, double);\npipert::cpu::Status pipec_c"
       << c
       << "_bwdB(const pipert::KernelContext *, uint8_t *, uint8_t *const "
          "*);\npipert::cpu::Status pipec_c"
       << c
       << "_bwdW(const pipert::KernelContext *, uint8_t *, uint8_t *const "
          "*);\n";
  // Sampling reads f32 logits from the host: none on cuda (docs/CUDA.md).
  for (int c = 0; c < C && !cuda; ++c)
    if (logitsValue(L, L.chunks[c]))
      os << "const float *pipec_c" << c
         << "_logits(uint8_t *, uint8_t *const *);\n";
  os << "\nstatic const pipecrun::ChunkCode kChunks[] = {\n";
  for (int c = 0; c < C; ++c) {
    const ChunkLayout &ch = L.chunks[c];
    os << "  {pipec_c" << c << "_fwd, pipec_c" << c << "_bwdB, pipec_c" << c
       << "_bwdW, " << ch.rank << ", " << (ch.usesData ? "true" : "false")
       << ", " << ch.regionBytes[kInAct] << ", " << ch.regionBytes[kInGrad]
       << ", ";
    if (!cuda && logitsValue(L, ch))
      os << "pipec_c" << c << "_logits";
    else
      os << "nullptr";
    os << ", {";
    for (int k = 0; k < kRegions; ++k)
      os << (k ? ", " : "") << ch.regionBytes[k];
    os << "}},\n";
  }
  os << "};\n\n";
  os << optimizerText;
  os << "static const pipecrun::RankCode kRanks[] = {\n";
  for (size_t r = 0; r < L.ranks.size(); ++r) {
    os << "  {rank" << r << "Prepare, rank" << r << "Opt, "
       << (cuda ? "rank" + std::to_string(r) + "Begin" : "nullptr") << ", "
       << (cuda && L.zeroReplicas > 1
               ? "rank" + std::to_string(r) + "Gathered"
               : "nullptr");
    // The cuda workspace's place in the arena (ValueLayout.cpp).
    if (L.ranks[r].workspaceOffset >= 0)
      os << ", " << L.ranks[r].workspaceOffset << ", "
         << pipert::kCudaWorkspaceBytes;
    os << "},\n";
  }
  os << "};\n";
  if (cuda)
    os << "\n// The cuda target's hooks: per-rank device state, device arenas "
          "and\n// the host's copies (runtime/kernels/cuda/Target.h).\n"
          "static const pipecrun::PlanTarget kTarget = "
          "pipert::cuda::planTarget();\n";
  return success();
}

/// kernel_calls.json (docs/SIMULATION.md): per chunk its rank and the
/// wrapper names its F, B and W call, in order; per rank its optimizer's.
static std::string kernelCallsJson(
    const PlanLayout &L,
    const std::vector<std::array<std::vector<std::string>, 3>> &chunkCalls,
    const KernelInstances &instances) {
  auto list = [](auto begin, auto end) {
    std::string s = "[";
    for (auto it = begin; it != end; ++it)
      s += (it == begin ? "\"" : ", \"") + *it + "\"";
    return s + "]";
  };
  std::string s = "{\"format\": 1, \"chunks\": [";
  for (size_t c = 0; c < chunkCalls.size(); ++c) {
    s += (c ? ",\n  " : "\n  ") + std::string("{\"chunk\": ") +
         std::to_string(c) + ", \"rank\": " +
         std::to_string(L.chunks[c].rank);
    const char *roles[3] = {"F", "B", "W"};
    for (int role = 0; role < 3; ++role)
      s += std::string(", \"") + roles[role] + "\": " +
           list(chunkCalls[c][size_t(role)].begin(),
                chunkCalls[c][size_t(role)].end());
    s += "}";
  }
  // Per rank: the calls that prepare its all-reduce operands (they run in
  // the all-reduce instruction), then its optimizer step's.
  s += "\n], \"optimizer\": [";
  const std::vector<size_t> &starts = instances.optimizerRankStarts;
  const std::vector<size_t> &steps = instances.optimizerStepStarts;
  for (size_t r = 0; r < starts.size() && r < steps.size(); ++r) {
    size_t end = r + 1 < starts.size() ? starts[r + 1] : instances.calls.size();
    auto at = [&](size_t i) { return instances.calls.begin() + long(i); };
    s += (r ? ",\n  " : "\n  ") + std::string("{\"rank\": ") +
         std::to_string(r) + ", \"prepare\": " +
         list(at(starts[r]), at(steps[r])) +
         ", \"calls\": " + list(at(steps[r]), at(end)) + "}";
  }
  s += "\n], \"complete\": ";
  s += instances.untimedCalls ? "false" : "true";
  return s + "}\n";
}

/// The end of plan.cpp: the plan's identity and the manifest it was
/// compiled with (PlanCode.h), then the PlanCode table.
static std::string emitPlanIdentity(const PlanLayout &L,
                                    const std::string &planId,
                                    const std::string &manifest,
                                    const KernelInstances &instances) {
  std::string kernels;
  if (L.target == "cuda") {
    // The cuda calls' instantiations in the order of their clock ids.
    kernels = "\n// The kernel instantiations in the order of their "
              "KernelClock ids.\nextern const char *const pipecKernelNames[] "
              "= {\n";
    for (const std::string &name : instances.cudaOrder)
      kernels += "    \"" + name + "\",\n";
    kernels += "    nullptr};\n" +
               kernelCostTable(instances, instances.cudaOrder);
  } else {
    kernels = "\n// The kernel wrappers' names and floors (kernels.cpp).\n"
              "extern const char *const pipecKernelNames[];\n"
              "extern const double pipecKernelCosts[];\n";
  }
  return kernels +
         "\n// The identity of this plan and the manifest it owns: pipec-plan\n"
         "// refuses a manifest or stream that differs (docs/RUNTIME.md).\n"
         "static const char kPlanId[] = " +
         cString(planId) + ";\nstatic const char kManifest[] =\n    " +
         cString(manifest) +
         ";\n\nconst pipecrun::PlanCode pipecPlanCode = {kChunks, " +
         std::to_string(L.chunks.size()) + ", kRanks, " +
         std::to_string(L.ranks.size()) + ", " + std::to_string(L.batch) +
         ", " + std::to_string(L.seq) + ", " + std::to_string(L.vocab) +
         ", kPlanId, kManifest, " +
         (L.target == "cuda"
              ? "&kTarget, nullptr, nullptr, pipecKernelNames, "
                "pipecKernelCosts, pipert::cuda::measureCeilings"
              : "nullptr, pipert::cpu::setBlasThreadCount, "
                "pipert::cpu::setOmpThreadCount, pipecKernelNames, "
                "pipecKernelCosts, pipert::cpu::measureCeilings") +
         "};\n";
}

LogicalResult pipec::emit::emitPlan(ModuleOp module, const std::string &outDir,
                                    EmittedPlan &plan,
                                    const EmitOptions &options) {
  PlanLayout L;
  L.debugOneSlot = options.debugOneSlot;
  if (failed(buildPlanLayout(module, L)))
    return failure();
  PerturbedValues perturbed;
  std::string error;
  if (!options.debugPerturbVjp.empty() &&
      !analysis::perturbedVjpValues(
          module.lookupSymbol<func::FuncOp>("train_step"),
          options.debugPerturbVjp, perturbed, error))
    return module.emitError(error);
  // Writing the folder: what failed, and the file.
  auto wrote = [&](bool ok) -> LogicalResult {
    return ok ? success() : LogicalResult(module.emitError(error));
  };
  // Everything is built in memory first: the identity hashes it all.
  uint64_t id = hashPart(pipert::kFnvOffset, options.identity.data(),
                         options.identity.size());
  // cuda sources are .cu files (nvcc compiles them); they call the cuda
  // library's launchers directly, so there is no kernels.cpp.
  const bool cuda = L.target == "cuda";
  plan.target = L.target;
  const char *ext = cuda ? ".cu" : ".cpp";
  std::vector<std::string> chunkTexts(L.chunks.size());
  KernelInstances instances;
  std::vector<std::array<std::vector<std::string>, 3>> chunkCalls(
      L.chunks.size());
  for (size_t c = 0; c < L.chunks.size(); ++c) {
    std::vector<std::string> calls[3];
    if (failed(emitChunkSource(L, int(c), perturbed, instances,
                               chunkTexts[c], calls)))
      return failure();
    for (int role = 0; role < 3; ++role)
      chunkCalls[c][size_t(role)] = std::move(calls[role]);
    id = hashPart(id, chunkTexts[c].data(), chunkTexts[c].size());
    plan.chunkSources.push_back("chunk" + std::to_string(c) + ext);
  }
  plan.planSource = std::string("plan") + ext;
  std::string planText;
  instances.calls.clear();
  if (failed(emitPlanSource(L,
                            module.lookupSymbol<func::FuncOp>("optimizer_step"),
                            instances, planText)))
    return failure();
  // kernel_calls.json: which kernel instantiations each chunk's F, B and W
  // and each rank's optimizer call, in order (pipec-sim --calibrate prices
  // a plan with another plan's kernel_times.json through it).
  std::string callsJson = kernelCallsJson(L, chunkCalls, instances);
  // work.json: the chunks' work by kernel class, for pipec-sim --cluster.
  const std::string workText = workJson(module, L.stages);
  id = hashPart(id, planText.data(), planText.size());
  // Last: the optimizer's instantiations join the chunks'.
  std::string kernelText;
  if (!cuda) {
    kernelText = emitKernelSource(instances);
    id = hashPart(id, kernelText.data(), kernelText.size());
    plan.kernelSource = "kernels.cpp";
  }
  std::vector<pipert::Stream> streams;
  if (failed(buildStreams(L, streams)))
    return failure();
  pipert::Manifest &m = L.manifest;
  m.trainFlopsPerMicrobatch = options.trainFlopsPerMicrobatch;
  // The communicators of a run with one process per rank (nccl, mpi),
  // planned and proven here once: each stream carries its rank's part,
  // so a process reads its own stream and nothing else (CommLayout.h).
  // With D replicas, `streams` are replica 0's; the others run them moved
  // (PlanStreams.h), which the communicators are planned for, so a plan
  // folder holds P stream files and the compiler holds P streams.
  const int32_t P = m.pipelineRanks();
  if (m.replicas > 1) {
    // The groups: each replica's G, then one data-parallel group a stage
    // (Replicate.h).
    const int64_t perReplica = (int64_t(m.groups.size()) - P) / m.replicas;
    pipert::ReplicaRelocation rel;
    if (pipert::Status st = pipert::attachReplicaZeroComms(
            streams, m.groups, m.replicas, int32_t(perReplica), rel);
        !st.ok())
      return module.emitError("internal error: " + st.message());
    m.relocation = rel;
    // The reader's bound on the ranks a manifest of its size may announce
    // (pipert::movedStreamRankLimit), checked before anything is written.
    const int64_t limit =
        pipert::movedStreamRankLimit(pipert::manifestToJson(m).size());
    if (m.ranks > limit)
      return module.emitError(
          "a plan of " + std::to_string(m.ranks) + " ranks is more than a "
          "plan folder's reader takes (" + std::to_string(limit) +
          " ranks with this manifest; pipert::movedStreamRankLimit)");
  } else if (pipert::Status st =
                 pipert::attachComms(streams, L.manifest.groups);
             !st.ok()) {
    return module.emitError("internal error: " + st.message());
  }
  for (const pipert::Stream &s : streams) {
    std::vector<uint8_t> bytes = pipert::encodeStream(s);
    id = hashPart(id, bytes.data(), bytes.size());
  }
  for (pipert::Stream &s : streams) {
    s.planId = id;
    m.rankInfo[size_t(s.rank)].streamChecksum = pipert::streamChecksum(s);
  }
  // Replica k's rank r + k P runs rank r's file.
  for (int32_t r = P; r < m.ranks; ++r)
    m.rankInfo[size_t(r)] = m.rankInfo[size_t(r % P)];
  m.files = plan.chunkSources;
  if (!plan.kernelSource.empty())
    m.files.push_back(plan.kernelSource);
  m.files.push_back("kernel_calls.json");
  m.files.push_back(plan.planSource);
  m.files.push_back("work.json");
  // The Hugging Face config the model came from, for pipec-run --save-hf.
  std::string hfConfig;
  if (auto hf = module->getAttrOfType<StringAttr>("nn.huggingface")) {
    hfConfig = hf.getValue().str() + "\n";
    m.files.push_back("hf_config.json");
  }
  // The streams rank_info lists: replica 0's alone when the others are
  // its copies or run its files (pipert::replicatedRankInfo,
  // m.relocation; 220,000 names otherwise).
  const size_t listed =
      m.relocation.active || pipert::replicatedRankInfo(m)
          ? size_t(m.pipelineRanks())
          : m.rankInfo.size();
  for (size_t r = 0; r < listed; ++r)
    m.files.push_back(m.rankInfo[r].stream);
  m.files.push_back("CMakeLists.txt");
  m.files.push_back("manifest.json");
  m.files.push_back("pipec-plan");
  // The executable keeps the manifest without its id (the id is compiled
  // in beside it), so that the two are compared field by field.
  std::string owned = pipert::manifestToJson(m);
  m.planId = pipert::planIdText(id);
  plan.planId = m.planId;
  planText += emitPlanIdentity(L, m.planId, owned, instances);

  for (size_t c = 0; c < L.chunks.size(); ++c)
    if (failed(wrote(writeFile(outDir + "/" + plan.chunkSources[c],
                               chunkTexts[c], error))))
      return failure();
  if (failed(wrote(plan.kernelSource.empty() ||
                   writeFile(outDir + "/" + plan.kernelSource, kernelText,
                             error))) ||
      failed(wrote(writeFile(outDir + "/kernel_calls.json", callsJson,
                             error))) ||
      failed(wrote(writeFile(outDir + "/" + plan.planSource, planText,
                             error))) ||
      failed(wrote(writeFile(outDir + "/work.json", workText, error))) ||
      failed(wrote(hfConfig.empty() ||
                   writeFile(outDir + "/hf_config.json", hfConfig, error))) ||
      failed(wrote(writePlanFolder(outDir, plan, error))))
    return failure();
  for (int32_t r = 0; r < L.stages; ++r) {
    plan.arenaBytes.push_back(L.ranks[size_t(r)].arenaBytes);
    int64_t live = -1;
    for (pipe::ProgramOp p : L.programs)
      if (int32_t(p.getRank()) == r)
        if (auto a = p->getAttrOfType<IntegerAttr>("pipe.peak_live_bytes"))
          live = a.getInt();
    plan.peakLiveBytes.push_back(live);
    plan.momentBytes.push_back(2 * L.ranks[size_t(r)].momentBlockBytes);
    plan.wholeMomentBytes.push_back(2 * L.ranks[size_t(r)].paramBlockBytes);
  }
  // One directory sync after every stream (each file itself is fsynced
  // before its rename), not one each: a plan has a stream per rank.
  for (const pipert::Stream &s : streams)
    if (pipert::Status st = writeStreamFile(
            outDir + "/" + m.rankInfo[size_t(s.rank)].stream, s,
            pipert::DirSync::Later);
        !st.ok())
      return module.emitError(st.message());
  pipert::syncDirectory(outDir);
  // The manifest last: a folder whose compile was interrupted mixes two
  // identities, which pipec-plan refuses.
  if (pipert::Status st = pipert::writeManifestFile(outDir + "/manifest.json", m);
      !st.ok())
    return module.emitError(st.message());
  return success();
}
