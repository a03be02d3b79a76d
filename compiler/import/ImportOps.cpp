//===- ImportOps.cpp - one op node: check, infer its shape, build it ------===//
//
// Each op has a rule: its inputs, its attributes, and a function that checks
// the input shapes against each other, computes the result type and builds
// the nn op. The checks here repeat the dialect's verifiers on purpose: an
// error found here can name the JSON input or attribute that caused it.
//
//===----------------------------------------------------------------------===//

#include "compiler/import/Importer.h"
#include "dialects/nn/NNOps.h"

#include <cmath>

using namespace mlir;
using namespace pipec;
using namespace pipec::import;
using Kind = json::Value::Kind;

namespace {

/// One op node being imported: its inputs resolved to values.
struct OpCall {
  Importer &im;
  const Node &node;
  StringRef op;
  SmallVector<Node> inputNodes;
  SmallVector<mlir::Value> in;
  Location loc;

  OpBuilder &b() { return im.builder; }
  RankedTensorType type(unsigned i) {
    return cast<RankedTensorType>(in[i].getType());
  }
  ArrayRef<int64_t> shape(unsigned i) { return type(i).getShape(); }
  std::string shapeOf(unsigned i) { return Importer::shapeStr(type(i)); }

  LogicalResult errIn(unsigned i, const Twine &msg) {
    return im.error(inputNodes[i], msg);
  }
  LogicalResult err(const Twine &msg) { return im.error(node, msg); }

  /// Input i must be a float tensor of the given rank (-1: any, -2: >= 1).
  LogicalResult floatInput(unsigned i, StringRef role, int rank = -2) {
    if (!isa<FloatType>(type(i).getElementType()))
      return errIn(i, op + " " + role + " must be a float tensor, got " +
                          shapeOf(i));
    return checkRank(i, role, rank);
  }
  LogicalResult intInput(unsigned i, StringRef role, int rank = -2) {
    if (!type(i).getElementType().isInteger(32))
      return errIn(i, op + " " + role + " must be an i32 tensor, got " +
                          shapeOf(i) +
                          // shapeStr leaves f32, the usual type, unsaid
                          (type(i).getElementType().isF32() ? " f32" : ""));
    return checkRank(i, role, rank);
  }
  LogicalResult checkRank(unsigned i, StringRef role, int rank) {
    int64_t r = type(i).getRank();
    if (rank == -2 && r == 0)
      return errIn(i, op + " " + role + " must have at least one dimension");
    if (rank >= 0 && r != rank)
      return errIn(i, op + " " + role + " must have " + Twine(rank) +
                          " dimensions, got " + shapeOf(i));
    return success();
  }

  std::optional<Node> attr(StringRef key) { return im.field(node, key); }
  /// An integer attribute (a number or a config name) in [lo, hi].
  FailureOr<int64_t> intAttr(StringRef key, std::optional<int64_t> dflt,
                             int64_t lo, int64_t hi) {
    std::optional<Node> a = attr(key);
    if (!a) {
      if (dflt)
        return *dflt;
      return err("missing field '" + key + "' (" + op + " needs it)");
    }
    FailureOr<int64_t> x = im.readInt(*a);
    if (failed(x))
      return failure();
    if (*x < lo || *x > hi)
      return im.error(*a, key + " is " + Twine(*x) + ", out of range (" +
                              Twine(lo) + " to " + Twine(hi) + ")");
    return *x;
  }
  /// A positive finite float attribute.
  FailureOr<double> positiveFloatAttr(StringRef key, double dflt) {
    std::optional<Node> a = attr(key);
    if (!a)
      return dflt;
    FailureOr<double> x = im.readFloat(*a);
    if (failed(x))
      return failure();
    if (!(*x > 0) || !std::isfinite(*x))
      return im.error(*a, key + " must be positive, got " + Twine(numStr(*x)));
    return *x;
  }
  FailureOr<bool> boolAttr(StringRef key, bool dflt) {
    std::optional<Node> a = attr(key);
    if (!a)
      return dflt;
    return im.readBool(*a);
  }
  /// A result type with the given shape and input 0's element type, after
  /// checking its size.
  FailureOr<RankedTensorType> result(ArrayRef<int64_t> shape) {
    if (failed(im.checkElements(node, shape)))
      return failure();
    return RankedTensorType::get(shape, type(0).getElementType());
  }
};

using BuildFn = FailureOr<mlir::Value> (*)(OpCall &);

/// What one op of the format takes and how it is built.
struct OpRule {
  StringLiteral name;
  unsigned minInputs, maxInputs;
  ArrayRef<StringLiteral> attrs;
  BuildFn build;
};

} // namespace

static std::string shapeStr(ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (auto [i, d] : llvm::enumerate(shape))
    s += (i ? ", " : "") + std::to_string(d);
  return s + "]";
}

//===----------------------------------------------------------------------===//
// Rules
//===----------------------------------------------------------------------===//

static FailureOr<mlir::Value> buildEmbedding(OpCall &c) {
  if (failed(c.floatInput(0, "table", 2)) || failed(c.intInput(1, "ids")))
    return failure();
  SmallVector<int64_t> shape(c.shape(1));
  shape.push_back(c.shape(0)[1]);
  auto t = c.result(shape);
  if (failed(t))
    return failure();
  return nn::EmbeddingOp::create(c.b(), c.loc, *t, c.in[0], c.in[1])
      .getResult();
}

static FailureOr<mlir::Value> buildPositionEmbedding(OpCall &c) {
  if (failed(c.floatInput(0, "table", 2)))
    return failure();
  int64_t tmax = c.shape(0)[0];
  FailureOr<int64_t> length = c.intAttr("length", std::nullopt, 1, kMaxDim);
  if (failed(length))
    return failure();
  if (*length > tmax)
    return c.im.error(*c.attr("length"), "length " + Twine(*length) +
                                             " exceeds the table's " +
                                             Twine(tmax) + " rows");
  auto t = c.result({*length, c.shape(0)[1]});
  if (failed(t))
    return failure();
  return nn::PositionEmbeddingOp::create(c.b(), c.loc, *t, c.in[0]).getResult();
}

static FailureOr<mlir::Value> buildMatmul(OpCall &c) {
  if (failed(c.floatInput(0, "x")) || failed(c.floatInput(1, "w", 2)))
    return failure();
  FailureOr<bool> transpose = c.boolAttr("transpose_rhs", false);
  if (failed(transpose))
    return failure();
  int64_t k = c.shape(0).back();
  int64_t wk = c.shape(1)[*transpose ? 1 : 0];
  int64_t n = c.shape(1)[*transpose ? 0 : 1];
  if (k != wk)
    return c.errIn(1, "matmul w has shape " + c.shapeOf(1) + " but x " +
                          c.shapeOf(0) + " has K = " + Twine(k) +
                          (*transpose ? " (w is [N, K] with transpose_rhs)"
                                      : " (w is [K, N]; transpose_rhs takes "
                                        "[N, K])"));
  mlir::Value bias;
  if (c.in.size() == 3) {
    if (failed(c.floatInput(2, "bias", 1)))
      return failure();
    if (c.shape(2)[0] != n)
      return c.errIn(2, "matmul bias has shape " + c.shapeOf(2) +
                            " but the output width N is " + Twine(n));
    bias = c.in[2];
  }
  SmallVector<int64_t> shape(c.shape(0));
  shape.back() = n;
  auto t = c.result(shape);
  if (failed(t))
    return failure();
  UnitAttr unit = *transpose ? c.b().getUnitAttr() : nullptr;
  return nn::MatmulOp::create(c.b(), c.loc, *t, c.in[0], c.in[1], bias, unit)
      .getResult();
}

template <typename OpT> static FailureOr<mlir::Value> buildBinary(OpCall &c) {
  if (failed(c.floatInput(0, "a", -1)) || failed(c.floatInput(1, "b", -1)))
    return failure();
  ArrayRef<int64_t> a = c.shape(0), bs = c.shape(1);
  if (bs.size() > a.size() || a.take_back(bs.size()) != bs)
    return c.errIn(1, c.op + " b has shape " + c.shapeOf(1) +
                          ", which is not a trailing part of a's shape " +
                          c.shapeOf(0));
  return OpT::create(c.b(), c.loc, c.type(0), c.in[0], c.in[1]).getResult();
}

/// gamma (and beta) must be [D] for x [..., D].
static LogicalResult checkNormWeights(OpCall &c) {
  if (failed(c.floatInput(0, "x")))
    return failure();
  int64_t d = c.shape(0).back();
  for (unsigned i = 1; i < c.in.size(); ++i) {
    StringRef role = i == 1 ? "gamma" : "beta";
    if (failed(c.floatInput(i, role, 1)))
      return failure();
    if (c.shape(i)[0] != d)
      return c.errIn(i, c.op + " " + role + " has shape " + c.shapeOf(i) +
                            " but x " + c.shapeOf(0) + " needs [" + Twine(d) +
                            "]");
  }
  return success();
}

static FailureOr<mlir::Value> buildLayerNorm(OpCall &c) {
  FailureOr<double> eps = c.positiveFloatAttr("eps", 1e-5);
  if (failed(checkNormWeights(c)) || failed(eps))
    return failure();
  return nn::LayerNormOp::create(c.b(), c.loc, c.type(0), c.in[0], c.in[1],
                                 c.in[2], c.b().getF64FloatAttr(*eps))
      .getResult();
}

static FailureOr<mlir::Value> buildRMSNorm(OpCall &c) {
  FailureOr<double> eps = c.positiveFloatAttr("eps", 1e-5);
  if (failed(checkNormWeights(c)) || failed(eps))
    return failure();
  return nn::RMSNormOp::create(c.b(), c.loc, c.type(0), c.in[0], c.in[1],
                               c.b().getF64FloatAttr(*eps))
      .getResult();
}

template <typename OpT> static FailureOr<mlir::Value> buildUnary(OpCall &c) {
  if (failed(c.floatInput(0, "x")))
    return failure();
  return OpT::create(c.b(), c.loc, c.type(0), c.in[0]).getResult();
}

static FailureOr<mlir::Value> buildSlice(OpCall &c) {
  if (failed(c.floatInput(0, "x")))
    return failure();
  int64_t rank = c.type(0).getRank();
  FailureOr<int64_t> axis = c.intAttr("axis", std::nullopt, 0, rank - 1);
  if (failed(axis))
    return failure();
  int64_t dim = c.shape(0)[*axis];
  FailureOr<int64_t> offset = c.intAttr("offset", std::nullopt, 0, dim - 1);
  if (failed(offset))
    return failure();
  FailureOr<int64_t> size = c.intAttr("size", std::nullopt, 1, kMaxDim);
  if (failed(size))
    return failure();
  if (*offset + *size > dim)
    return c.im.error(*c.attr("size"), "slice [" + Twine(*offset) + ", " +
                                           Twine(*offset + *size) +
                                           ") of axis " + Twine(*axis) +
                                           " exceeds its size " + Twine(dim) +
                                           " (x is " + c.shapeOf(0) + ")");
  SmallVector<int64_t> shape(c.shape(0));
  shape[*axis] = *size;
  auto t = c.result(shape);
  if (failed(t))
    return failure();
  OpBuilder &b = c.b();
  return nn::SliceOp::create(b, c.loc, *t, c.in[0], b.getI64IntegerAttr(*axis),
                             b.getI64IntegerAttr(*offset),
                             b.getI64IntegerAttr(*size))
      .getResult();
}

static FailureOr<mlir::Value> buildReshape(OpCall &c) {
  if (failed(c.floatInput(0, "x", -1)))
    return failure();
  std::optional<Node> shapeNode = c.attr("shape");
  if (!shapeNode)
    return c.err("missing field 'shape' (reshape needs it)");
  FailureOr<SmallVector<int64_t>> shape = c.im.readShape(*shapeNode);
  if (failed(shape))
    return failure();
  auto t = RankedTensorType::get(*shape, c.type(0).getElementType());
  if (t.getNumElements() != c.type(0).getNumElements())
    return c.im.error(*shapeNode, "reshape to " + shapeStr(*shape) + " (" +
                                      Twine(t.getNumElements()) +
                                      " elements) from " + c.shapeOf(0) + " (" +
                                      Twine(c.type(0).getNumElements()) +
                                      " elements)");
  return nn::ReshapeOp::create(c.b(), c.loc, t, c.in[0]).getResult();
}

static FailureOr<mlir::Value> buildTranspose(OpCall &c) {
  if (failed(c.floatInput(0, "x")))
    return failure();
  std::optional<Node> permNode = c.attr("perm");
  if (!permNode)
    return c.err("missing field 'perm' (transpose needs it)");
  FailureOr<SmallVector<int64_t>> perm = c.im.readIntList(*permNode);
  if (failed(perm))
    return failure();
  int64_t rank = c.type(0).getRank();
  SmallVector<bool> seen(rank, false);
  bool ok = static_cast<int64_t>(perm->size()) == rank;
  for (int64_t p : *perm) {
    ok = ok && p < rank && !seen[p];
    if (ok)
      seen[p] = true;
  }
  if (!ok)
    return c.im.error(
        *permNode, "perm " + shapeStr(*perm) + " is not a permutation of the " +
                       Twine(rank) + " axes of x " + c.shapeOf(0));
  SmallVector<int64_t> shape;
  for (int64_t p : *perm)
    shape.push_back(c.shape(0)[p]);
  auto t = RankedTensorType::get(shape, c.type(0).getElementType());
  return nn::TransposeOp::create(c.b(), c.loc, t, c.in[0],
                                 c.b().getDenseI64ArrayAttr(*perm))
      .getResult();
}

static FailureOr<mlir::Value> buildRope(OpCall &c) {
  if (failed(c.floatInput(0, "x", 3)))
    return failure();
  int64_t width = c.shape(0)[2];
  FailureOr<int64_t> heads = c.intAttr("heads", std::nullopt, 1, width);
  if (failed(heads))
    return failure();
  if (width % *heads != 0 || (width / *heads) % 2 != 0)
    return c.im.error(*c.attr("heads"), "rope needs x's width " + Twine(width) +
                                            " to split into " + Twine(*heads) +
                                            " heads of an even width");
  FailureOr<double> theta = c.positiveFloatAttr("theta", 10000.0);
  if (failed(theta))
    return failure();
  OpBuilder &b = c.b();
  return nn::RopeOp::create(b, c.loc, c.type(0), c.in[0],
                            b.getI64IntegerAttr(*heads),
                            b.getF64FloatAttr(*theta))
      .getResult();
}

static FailureOr<mlir::Value> buildAttention(OpCall &c) {
  if (failed(c.floatInput(0, "q", 3)) || failed(c.floatInput(1, "k", 3)) ||
      failed(c.floatInput(2, "v", 3)))
    return failure();
  ArrayRef<int64_t> q = c.shape(0), k = c.shape(1), v = c.shape(2);
  FailureOr<int64_t> heads = c.intAttr("heads", std::nullopt, 1, q[2]);
  if (failed(heads))
    return failure();
  if (q[2] % *heads != 0)
    return c.im.error(*c.attr("heads"), "q's width " + Twine(q[2]) +
                                            " does not split into " +
                                            Twine(*heads) + " heads");
  int64_t dh = q[2] / *heads;
  FailureOr<int64_t> kvHeads = c.intAttr("kv_heads", *heads, 1, *heads);
  if (failed(kvHeads))
    return failure();
  if (*heads % *kvHeads != 0)
    return c.im.error(*c.attr("kv_heads"), "kv_heads " + Twine(*kvHeads) +
                                               " does not divide heads " +
                                               Twine(*heads));
  if (k[0] != q[0] || k[2] != *kvHeads * dh)
    return c.errIn(1, "attention k has shape " + c.shapeOf(1) + "; with q " +
                          c.shapeOf(0) + " it must be [" + Twine(q[0]) +
                          ", S, " + Twine(*kvHeads * dh) + "] (kv_heads " +
                          Twine(*kvHeads) + " x head width " + Twine(dh) + ")");
  if (v != k)
    return c.errIn(2, "attention v has shape " + c.shapeOf(2) + " but k has " +
                          c.shapeOf(1));
  FailureOr<bool> causal = c.boolAttr("causal", true);
  if (failed(causal))
    return failure();
  if (*causal && k[1] != q[1])
    return c.errIn(1, "causal attention needs as many keys as queries: k " +
                          c.shapeOf(1) + ", q " + c.shapeOf(0));
  FailureOr<double> scale =
      c.positiveFloatAttr("scale", 1.0 / std::sqrt(static_cast<double>(dh)));
  if (failed(scale))
    return failure();
  OpBuilder &b = c.b();
  return nn::AttentionOp::create(
             b, c.loc, c.type(0), c.in[0], c.in[1], c.in[2],
             b.getI64IntegerAttr(*heads), b.getI64IntegerAttr(*kvHeads),
             *causal ? b.getUnitAttr() : nullptr, b.getF64FloatAttr(*scale))
      .getResult();
}

static FailureOr<mlir::Value> buildCrossEntropy(OpCall &c) {
  if (failed(c.floatInput(0, "logits", 3)) ||
      failed(c.intInput(1, "targets", 2)))
    return failure();
  if (c.shape(1) != c.shape(0).drop_back())
    return c.errIn(1, "cross_entropy targets have shape " + c.shapeOf(1) +
                          " but logits " + c.shapeOf(0) + " need [" +
                          Twine(c.shape(0)[0]) + ", " + Twine(c.shape(0)[1]) +
                          "]");
  auto t = RankedTensorType::get({}, c.b().getF32Type());
  return nn::CrossEntropyOp::create(c.b(), c.loc, t, c.in[0], c.in[1],
                                    /*classes=*/nullptr)
      .getResult();
}

static constexpr StringLiteral kLength[] = {"length"};
static constexpr StringLiteral kMatmul[] = {"transpose_rhs"};
static constexpr StringLiteral kEps[] = {"eps"};
static constexpr StringLiteral kSlice[] = {"axis", "offset", "size"};
static constexpr StringLiteral kShape[] = {"shape"};
static constexpr StringLiteral kPerm[] = {"perm"};
static constexpr StringLiteral kRope[] = {"heads", "theta"};
static constexpr StringLiteral kAttention[] = {"heads", "kv_heads", "causal",
                                               "scale"};

static const OpRule kRules[] = {
    {"embedding", 2, 2, {}, buildEmbedding},
    {"position_embedding", 1, 1, kLength, buildPositionEmbedding},
    {"matmul", 2, 3, kMatmul, buildMatmul},
    {"add", 2, 2, {}, buildBinary<nn::AddOp>},
    {"mul", 2, 2, {}, buildBinary<nn::MulOp>},
    {"layernorm", 3, 3, kEps, buildLayerNorm},
    {"rmsnorm", 2, 2, kEps, buildRMSNorm},
    {"gelu", 1, 1, {}, buildUnary<nn::GeluOp>},
    {"silu", 1, 1, {}, buildUnary<nn::SiluOp>},
    {"softmax", 1, 1, {}, buildUnary<nn::SoftmaxOp>},
    {"slice", 1, 1, kSlice, buildSlice},
    {"reshape", 1, 1, kShape, buildReshape},
    {"transpose", 1, 1, kPerm, buildTranspose},
    {"rope", 1, 1, kRope, buildRope},
    {"attention", 3, 3, kAttention, buildAttention},
    {"cross_entropy", 2, 2, {}, buildCrossEntropy},
};

//===----------------------------------------------------------------------===//
// The op node
//===----------------------------------------------------------------------===//

LogicalResult pipec::import::importOpNode(Importer &im, const Node &node) {
  Node opNode = *im.field(node, "op");
  FailureOr<std::string> opName = im.readString(opNode);
  if (failed(opName))
    return failure();
  const OpRule *rule = nullptr;
  for (const OpRule &r : kRules)
    if (r.name == *opName)
      rule = &r;
  if (!rule) {
    std::string known;
    for (const OpRule &r : kRules)
      known += (known.empty() ? "" : ", ") + r.name.str();
    return im.error(opNode,
                    "unknown op '" + *opName + "' (known: " + known + ")");
  }
  SmallVector<StringRef> optional(rule->attrs.begin(), rule->attrs.end());
  if (failed(im.checkObject(node, "a " + rule->name.str() + " node",
                            {"op", "inputs", "output"}, optional)))
    return failure();

  Node inputs = *im.field(node, "inputs");
  if (failed(im.expect(inputs, Kind::Array)))
    return failure();
  size_t n = inputs.v->elements.size();
  if (n < rule->minInputs || n > rule->maxInputs) {
    std::string want = std::to_string(rule->minInputs);
    if (rule->maxInputs != rule->minInputs)
      want += " or " + std::to_string(rule->maxInputs);
    return im.error(inputs, rule->name + " takes " + want + " input" +
                                (rule->maxInputs == 1 ? "" : "s") + ", got " +
                                Twine(n));
  }
  if (failed(im.countOp(node)))
    return failure();

  OpCall call{im, node, rule->name, {}, {}, im.locOf(node)};
  for (size_t i = 0; i < n; ++i) {
    call.inputNodes.push_back(im.element(inputs, i));
    FailureOr<mlir::Value> v = im.lookup(call.inputNodes.back());
    if (failed(v))
      return failure();
    call.in.push_back(*v);
  }
  FailureOr<mlir::Value> result = rule->build(call);
  if (failed(result))
    return failure();
  return im.define(*im.field(node, "output"), *result);
}
