//===- ModelCosts.cpp - @forward as the planner's pieces ------------------===//
//
// Backward ops have no cost interface of their own, so B and W are modelled
// from the forward op (docs/PARTITION.md has the table): a matmul's B and W
// each repeat its GEMM; norms read x and dy; attention's B is the flash
// backward (about 2.5 x the forward FLOPs); elementwise ops cost one pass
// over dy and x; the cross-entropy computes its gradient in F.
//
//===----------------------------------------------------------------------===//

#include "compiler/analysis/ModelCosts.h"

#include "dialects/nn/NNGradOps.h"
#include "dialects/nn/NNModelAttrs.h"
#include "dialects/nn/NNOps.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"

#include <algorithm>

using namespace mlir;
using namespace pipec::plan;

namespace pipec {

int64_t valueBytes(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  if (!t)
    return 0;
  return t.getNumElements() * ((t.getElementTypeBitWidth() + 7) / 8);
}

namespace {

int64_t bytesOf(Value v) { return valueBytes(v); }

bool isParamValue(Value v) { return v.getDefiningOp<nn::ParamOp>() != nullptr; }

/// B and W time of `op` and whether it has a W at all, from its forward
/// figures (see the file comment).
void backwardTimes(Operation *op, nn::CostOpInterface cost, const Rates &r,
                   Piece &p) {
  double flops = double(cost.getFlops());
  double read = double(cost.getBytesRead()),
         written = double(cost.getBytesWritten());
  int64_t out = op->getNumResults() ? bytesOf(op->getResult(0)) : 0;
  bool hasParam = llvm::any_of(op->getOperands(), isParamValue);
  if (auto mm = dyn_cast<nn::MatmulOp>(op)) {
    double x = double(bytesOf(mm.getX())), w = double(bytesOf(mm.getW()));
    double gemm = flops - (mm.getBias() ? double(out) / 4 : 0);
    p.b = kernelTime(r, gemm, double(out) + w + x);
    p.w = kernelTime(r, flops - gemm + gemm, x + double(out) + w);
    p.wGradBytes = out;
    return;
  }
  if (isa<nn::LayerNormOp, nn::RMSNormOp>(op)) {
    p.b = kernelTime(r, 2 * flops, 3 * double(out));
    p.w = kernelTime(r, flops / 2, 2 * double(out));
    p.wGradBytes = out;
    return;
  }
  if (isa<nn::AttentionOp>(op)) {
    p.b = kernelTime(r, 2.5 * flops, 2 * (read + written));
    return;
  }
  if (isa<nn::EmbeddingOp, nn::PositionEmbeddingOp>(op)) {
    p.w = kernelTime(r, 0, 2 * double(out));
    p.wGradBytes = out;
    return;
  }
  if (isa<nn::CrossEntropyOp>(op))
    return; // the gradient is made in F (nn.softmax_cross_entropy)
  if (isa<nn::ReshapeOp>(op)) {
    p.b = kernelTime(r, 0, 2 * double(out));
    return;
  }
  if (isa<nn::AddOp>(op)) {
    // A same-shape operand's gradient is dy itself; a parameter operand
    // adds dy's column sums into its accumulator (W).
    if (hasParam) {
      p.w = kernelTime(r, flops, double(out));
      p.wGradBytes = out;
    }
    return;
  }
  p.b = kernelTime(r, flops, read + written);
  if (hasParam) {
    p.w = kernelTime(r, flops, read);
    p.wGradBytes = out;
  }
}

} // namespace

/// What the backward keeps, value by value (docs/PARTITION.md): every value
/// of @train_step that a B or W op reads, with the pieces of those readers.
/// Parameters are resident anyway and not listed. Op ids were checked by
/// the caller.
void collectKept(func::FuncOp trainStep, const std::vector<int32_t> &pieceOfId,
                 ModelCosts &model) {
  auto roleOf = [](Operation *op) -> StringRef {
    auto role = op->getAttrOfType<StringAttr>("nn.role");
    return role ? role.getValue() : StringRef();
  };
  auto pieceOf = [&](Operation *op) -> int32_t {
    auto id = op->getAttrOfType<IntegerAttr>("nn.op_id");
    return id ? pieceOfId[id.getInt()] : -1;
  };
  auto visit = [&](Value v, bool fromBackward, int32_t defPiece) {
    if (v.getDefiningOp<nn::ParamOp>())
      return;
    KeptValue k;
    k.bytes = bytesOf(v);
    k.fromBackward = fromBackward;
    k.defPiece = defPiece;
    for (Operation *user : v.getUsers()) {
      int32_t piece = pieceOf(user);
      if (piece < 0)
        continue; // the return
      StringRef role = roleOf(user);
      if (role == "B")
        k.bPieces.push_back(piece);
      else if (role == "W")
        k.wPieces.push_back(piece);
    }
    for (std::vector<int32_t> *list : {&k.bPieces, &k.wPieces}) {
      std::sort(list->begin(), list->end());
      list->erase(std::unique(list->begin(), list->end()), list->end());
    }
    bool needed = fromBackward ? !k.wPieces.empty()
                               : !(k.bPieces.empty() && k.wPieces.empty());
    if (needed && k.bytes > 0)
      model.kept.push_back(std::move(k));
  };
  for (BlockArgument arg : trainStep.getArguments())
    visit(arg, false, -1);
  for (Operation &op : trainStep.getBody().front()) {
    if (op.hasTrait<OpTrait::IsTerminator>())
      break;
    bool fromBackward = roleOf(&op) == "B";
    for (Value v : op.getResults())
      visit(v, fromBackward, pieceOf(&op));
  }
  model.exactKept = true;
}

/// Adds `op`'s FLOPs and bytes to `w` under its kernel class: the GEMMs
/// (a matmul, its fused GELU epilogue, its two gradients), attention
/// (forward and backward), everything else.
void addWork(Operation *op, nn::CostOpInterface cost, Work &w) {
  const double flops = double(cost.getFlops()),
               bytes = double(cost.getBytesRead() + cost.getBytesWritten());
  if (flops <= 0 && bytes <= 0)
    return; // a view
  ++w.kernels;
  if (isa<nn::MatmulOp, nn::MatmulGeluOp, nn::MatmulGradBOp,
          nn::MatmulGradWOp>(op)) {
    w.gemmFlops += flops;
    w.gemmBytes += bytes;
  } else if (isa<nn::AttentionOp, nn::AttentionTrainOp, nn::AttentionGradOp>(
                 op)) {
    w.attentionFlops += flops;
    w.attentionBytes += bytes;
  } else {
    w.otherFlops += flops;
    w.otherBytes += bytes;
  }
}

/// Replaces the modelled F, B and W of every piece with the costs of
/// @train_step's ops, grouped by `nn.op_id` and `nn.role`.
std::string costsFromTrainStep(func::FuncOp trainStep, const Rates &r,
                               ModelCosts &model) {
  std::vector<int32_t> pieceOfId;
  for (size_t i = 0; i < model.pieces.size(); ++i) {
    pieceOfId.resize(model.pieces[i].lastOp + 1, int32_t(i));
    for (int32_t id = model.pieces[i].firstOp; id <= model.pieces[i].lastOp;
         ++id)
      pieceOfId[id] = int32_t(i);
  }
  for (Piece &p : model.pieces) {
    p.f = p.b = p.w = 0;
    for (Work &w : p.work)
      w = Work();
  }
  for (Operation &op : trainStep.getBody().front()) {
    if (op.hasTrait<OpTrait::IsTerminator>())
      break;
    auto id = op.getAttrOfType<IntegerAttr>("nn.op_id");
    auto role = op.getAttrOfType<StringAttr>("nn.role");
    if (!id || !role)
      return "@train_step op '" + op.getName().getStringRef().str() +
             "' has no nn.op_id or nn.role (was it built by --nn-autodiff?)";
    if (id.getInt() < 0 || id.getInt() >= int64_t(pieceOfId.size()))
      return "@train_step op '" + op.getName().getStringRef().str() +
             "' has nn.op_id " + std::to_string(id.getInt()) +
             ", outside @forward's ops";
    auto cost = dyn_cast<nn::CostOpInterface>(&op);
    if (!cost)
      continue; // nn.param reads
    Piece &p = model.pieces[pieceOfId[id.getInt()]];
    double t = kernelTime(r, double(cost.getFlops()),
                          double(cost.getBytesRead() + cost.getBytesWritten()));
    StringRef rl = role.getValue();
    addWork(&op, cost, p.work[rl == "F" ? PhaseF : rl == "B" ? PhaseB : PhaseW]);
    if (rl == "F")
      p.f += t;
    else if (rl == "B" || (rl == "W" && p.wWithB))
      p.b += t;
    else if (rl == "W")
      p.w += t;
    else
      return "@train_step op '" + op.getName().getStringRef().str() +
             "' has nn.role '" + rl.str() + "'; expected F, B or W";
  }
  collectKept(trainStep, pieceOfId, model);
  return "";
}

std::string buildModelCosts(func::FuncOp forward, func::FuncOp trainStep,
                            const CostOptions &options, ModelCosts &model) {
  model = ModelCosts();
  if (forward.getBody().empty())
    return "@forward has no body";
  const Rates &r = options.rates;
  llvm::DenseMap<Operation *, int32_t> pieceOf;
  int32_t opId = 0, firstPending = -1;
  SmallVector<Operation *> pendingParams;
  for (Operation &opRef : forward.getBody().front()) {
    Operation *op = &opRef;
    if (op->hasTrait<OpTrait::IsTerminator>())
      break;
    int32_t id = opId++;
    if (isa<nn::ParamOp>(op)) {
      if (firstPending < 0)
        firstPending = id;
      pieceOf[op] = int32_t(model.pieces.size()); // joins the next piece
      pendingParams.push_back(op);
      continue;
    }
    Piece p;
    p.firstOp = firstPending >= 0 ? firstPending : id;
    p.lastOp = id;
    firstPending = -1;
    p.name = op->getName().getStringRef().str();
    if (std::optional<JsonOrigin> origin = getJsonOrigin(op->getLoc()))
      if (origin->iteration)
        p.layer = int32_t(*origin->iteration);
    if (auto cost = dyn_cast<nn::CostOpInterface>(op)) {
      double bytes = double(cost.getBytesRead() + cost.getBytesWritten());
      double flops = double(cost.getFlops());
      if (isa<nn::CrossEntropyOp>(op)) {
        // Fused with its gradient: one more pass writing dlogits.
        int64_t logits = bytesOf(op->getOperand(0));
        flops += 2.0 * double(logits) / 4;
        bytes += double(logits);
      }
      p.f = kernelTime(r, flops, bytes);
      backwardTimes(op, cost, r, p);
      p.savedBytes = cost.getSavedActivationBytes();
      p.workspaceBytes = cost.getBytesWritten();
    }
    // The LM head: a matmul whose result is the cross-entropy's logits.
    if (isa<nn::MatmulOp>(op) && !options.deferLmHeadW)
      for (Operation *user : op->getUsers())
        if (isa<nn::CrossEntropyOp>(user)) {
          p.wWithB = true;
          p.wGradBytes = 0;
        }
    // The loss joins the piece that makes its logits: the B x T x V logits
    // are the model's largest tensor and nn.softmax_cross_entropy writes
    // dlogits over them, so the two stay in one chunk. An op --nn-fuse
    // fused with the compute op before it joins that op's piece too (with
    // the parameter reads between them): no cut splits a fused group.
    bool joinsPrevious = false;
    if (!model.pieces.empty() && op->hasAttr("nn.fused_with_previous"))
      joinsPrevious = true;
    else if (isa<nn::CrossEntropyOp>(op) && !model.pieces.empty() &&
             p.firstOp == id) {
      Operation *producer = op->getOperand(0).getDefiningOp();
      joinsPrevious =
          producer && pieceOf.count(producer) &&
          pieceOf.lookup(producer) == int32_t(model.pieces.size()) - 1;
    }
    pendingParams.push_back(op);
    if (joinsPrevious) {
      Piece &head = model.pieces.back();
      head.lastOp = id;
      head.name += "+" + p.name;
      head.f += p.f;
      head.b += p.b;
      head.w += p.w;
      head.wWithB = head.wWithB || p.wWithB;
      head.wGradBytes += p.wGradBytes;
      head.savedBytes += p.savedBytes;
      head.workspaceBytes = std::max(head.workspaceBytes, p.workspaceBytes);
      for (Operation *joined : pendingParams)
        pieceOf[joined] = int32_t(model.pieces.size()) - 1;
      pendingParams.clear();
      continue;
    }
    pendingParams.clear();
    pieceOf[op] = int32_t(model.pieces.size());
    model.pieces.push_back(std::move(p));
  }
  if (model.pieces.empty())
    return "@forward has no compute op to partition";
  // A trailing parameter read joins the last piece.
  if (firstPending >= 0)
    model.pieces.back().lastOp = opId - 1;
  const int32_t n = int32_t(model.pieces.size());
  for (auto &[op, piece] : pieceOf)
    if (piece >= n)
      piece = n - 1;

  // Bytes across each cut: a value made in piece d and last read in piece
  // u crosses every cut d+1..u (it is sent, then forwarded). Parameters are
  // held by every rank that reads them and inputs are read from the data
  // loader, so neither is sent.
  std::vector<int64_t> diff(n + 2, 0);
  llvm::StringMap<size_t> paramIndex;
  for (Operation &opRef : forward.getBody().front()) {
    Operation *op = &opRef;
    if (op->hasTrait<OpTrait::IsTerminator>())
      break;
    int32_t d = pieceOf.lookup(op);
    if (auto param = dyn_cast<nn::ParamOp>(op)) {
      StringRef name = param.getName();
      auto [it, inserted] = paramIndex.try_emplace(name, model.params.size());
      if (inserted) {
        int64_t master = 0, copy = 0;
        if (!parameterStorage(forward->getParentOfType<ModuleOp>(), name,
                              master, copy))
          return "@forward reads '" + name.str() +
                 "', which is not an nn.parameter of the module";
        model.params.push_back({name.str(), master, copy, {}});
      }
      for (OpOperand &use : param.getResult().getUses())
        if (Operation *user = use.getOwner(); pieceOf.count(user))
          model.params[it->second].pieces.push_back(pieceOf.lookup(user));
      continue;
    }
    for (Value v : op->getResults()) {
      int32_t last = d;
      for (Operation *user : v.getUsers())
        if (pieceOf.count(user))
          last = std::max(last, pieceOf.lookup(user));
      if (last > d) {
        diff[d + 1] += bytesOf(v);
        diff[last + 1] -= bytesOf(v);
      }
    }
  }
  model.crossBytes.assign(n + 1, 0);
  int64_t run = 0;
  for (int32_t i = 0; i <= n; ++i) {
    run += diff[i];
    model.crossBytes[i] = run;
  }
  if (trainStep && !trainStep.getBody().empty())
    return costsFromTrainStep(trainStep, r, model);
  return "";
}

} // namespace pipec

bool pipec::parameterStorage(ModuleOp module, StringRef name, int64_t &master,
                             int64_t &copy) {
  auto decl =
      module ? module.lookupSymbol<nn::ParameterOp>(name) : nn::ParameterOp();
  if (!decl)
    return false;
  RankedTensorType t = decl.getTensorType();
  master = t.getNumElements() * ((t.getElementTypeBitWidth() + 7) / 8);
  copy = 0;
  auto forward = module.lookupSymbol<func::FuncOp>("forward");
  if (!forward)
    return true;
  forward.walk([&](nn::ParamOp read) {
    auto r = cast<RankedTensorType>(read.getType());
    if (read.getName() == name &&
        r.getElementTypeBitWidth() < t.getElementTypeBitWidth())
      copy = r.getNumElements() * ((r.getElementTypeBitWidth() + 7) / 8);
  });
  return true;
}

int64_t pipec::forwardFlops(func::FuncOp forward) {
  // Summed in 128 bits and saturated (see nn::kMaxForwardFlops).
  __int128 flops = 0;
  forward.walk([&](Operation *op) {
    if (auto cost = dyn_cast<nn::CostOpInterface>(op))
      flops += cost.getFlops();
  });
  return flops > __int128(INT64_MAX) ? INT64_MAX : int64_t(flops);
}
