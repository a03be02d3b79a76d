//===- JsonImporter.cpp - a JSON model description -> an nn module -------===//
//
// Walks the model file top-down: config and train become module attributes,
// inputs become @forward's arguments, parameters become nn.parameter symbols,
// and the graph is unrolled (repeat blocks included) into one block of nn
// ops, each built by ImportOps.cpp after it has checked and inferred shapes.
// The first error stops the import.
//
//===----------------------------------------------------------------------===//

#include "compiler/import/JsonImporter.h"
#include "compiler/import/Importer.h"
#include "dialects/nn/NNModelAttrs.h"
#include "dialects/nn/NNDialect.h"
#include "dialects/nn/NNOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringExtras.h"

#include <nlohmann/json.hpp>
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cmath>

using namespace mlir;
using namespace pipec;
using namespace pipec::import;
using Kind = json::Value::Kind;

std::string pipec::import::numStr(double x) {
  char buf[32];
  snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

Importer::Importer(MLIRContext &ctx, StringRef text, StringRef fileName,
                   raw_ostream &errs)
    : ctx(ctx), builder(&ctx), text(text), fileName(fileName), errs(errs),
      lines(text) {}

//===----------------------------------------------------------------------===//
// Diagnostics
//===----------------------------------------------------------------------===//

std::string Importer::lineCol(size_t offset) const {
  json::LineCol lc = lines.lookup(offset);
  return std::to_string(lc.line) + ":" + std::to_string(lc.column);
}

LogicalResult Importer::error(size_t offset, StringRef path, const Twine &msg) {
  // Only the first error is printed: later ones would be consequences.
  if (!reported) {
    errs << fileName << ":" << lineCol(offset)
         << ": error: " << (path.empty() ? StringRef("(top level)") : path)
         << iterationSuffix() << ": " << msg << "\n";
    reported = true;
  }
  return failure();
}

std::string Importer::iterationSuffix() const {
  if (iterations.empty())
    return "";
  std::string s = " (";
  for (auto [k, it] : llvm::enumerate(iterations))
    s += (k ? ", " : "") + it.first + "=" + std::to_string(it.second);
  return s + ")";
}

Location Importer::locOf(const Node &n) {
  json::LineCol lc = lines.lookup(n.v->offset);
  std::string name = n.path + iterationSuffix();
  return NameLoc::get(StringAttr::get(&ctx, name),
                      FileLineColLoc::get(&ctx, fileName, lc.line, lc.column));
}

std::string Importer::shapeStr(Type t) {
  auto rt = dyn_cast<RankedTensorType>(t);
  if (!rt)
    return "a non-tensor";
  std::string s = "[";
  for (auto [i, d] : llvm::enumerate(rt.getShape()))
    s += (i ? ", " : "") + std::to_string(d);
  s += "]";
  if (!rt.getElementType().isF32()) {
    std::string et;
    llvm::raw_string_ostream os(et);
    os << rt.getElementType();
    s += " " + et;
  }
  return s;
}

//===----------------------------------------------------------------------===//
// Fields
//===----------------------------------------------------------------------===//

LogicalResult Importer::expect(const Node &n, Kind kind) {
  Kind k = n.v->kind;
  bool ok = k == kind || (kind == Kind::Float && n.v->isNumber());
  if (ok)
    return success();
  return error(n, Twine("expected ") + json::describe(kind) + ", got " +
                      json::describe(k));
}

std::optional<Node> Importer::field(const Node &n, StringRef key) const {
  if (n.v->kind != Kind::Object)
    return std::nullopt;
  const json::Value *v = n.v->find(key);
  if (!v)
    return std::nullopt;
  return Node{v, json::appendKey(n.path, key)};
}

Node Importer::element(const Node &n, size_t i) const {
  return Node{n.v->elements[i].get(), json::appendIndex(n.path, i)};
}

LogicalResult Importer::checkObject(const Node &n, StringRef what,
                                    ArrayRef<StringRef> required,
                                    ArrayRef<StringRef> optional) {
  if (n.v->kind != Kind::Object)
    return error(n, "expected " + what + " (an object), got " +
                        json::describe(n.v->kind));
  for (const json::Value::Member &m : n.v->members)
    if (!llvm::is_contained(required, m.key) &&
        !llvm::is_contained(optional, m.key)) {
      std::string allowed;
      for (StringRef k : llvm::concat<const StringRef>(required, optional))
        allowed += (allowed.empty() ? "" : ", ") + k.str();
      return error(m.keyOffset, json::appendKey(n.path, m.key),
                   "extra field '" + m.key + "' in " + what +
                       " (allowed: " + allowed + ")");
    }
  for (StringRef k : required)
    if (!n.v->find(k))
      return error(n, "missing field '" + k + "' in " + what);
  return success();
}

FailureOr<std::string> Importer::readString(const Node &n) {
  if (failed(expect(n, Kind::String)))
    return failure();
  return n.v->string;
}

FailureOr<int64_t> Importer::readInt(const Node &n) {
  switch (n.v->kind) {
  case Kind::Integer:
    return n.v->integer;
  case Kind::Unsigned:
    return error(n, "integer " + Twine(n.v->unsignedValue) + " is too large");
  case Kind::Float:
    return error(n, "expected an integer, got " + Twine(numStr(n.v->number)));
  case Kind::String: {
    auto it = config.find(n.v->string);
    if (it == config.end())
      return error(n, "unknown config entry '" + n.v->string + "'");
    return it->second;
  }
  default:
    return error(n, Twine("expected an integer or a config name, got ") +
                        json::describe(n.v->kind));
  }
}

FailureOr<int64_t> Importer::readDim(const Node &n) {
  FailureOr<int64_t> d = readInt(n);
  if (failed(d))
    return failure();
  if (*d < 1 || *d > kMaxDim)
    return error(n, "dimension " + Twine(*d) + " is out of range (1 to " +
                        Twine(kMaxDim) + ")");
  return *d;
}

FailureOr<double> Importer::readFloat(const Node &n) {
  if (failed(expect(n, Kind::Float)))
    return failure();
  return n.v->number;
}

FailureOr<bool> Importer::readBool(const Node &n) {
  if (failed(expect(n, Kind::Bool)))
    return failure();
  return n.v->boolean;
}

LogicalResult Importer::checkElements(const Node &n, ArrayRef<int64_t> shape) {
  int64_t count = 1;
  for (int64_t d : shape) {
    // Each d <= 2^31 and count <= 2^40 before the product: no overflow.
    count *= d;
    if (count > kMaxElements)
      return error(n, "tensor of shape " +
                          Twine(shapeStr(RankedTensorType::get(
                              shape, builder.getF32Type()))) +
                          " has more than 2^40 elements");
  }
  return success();
}

FailureOr<SmallVector<int64_t>> Importer::readShape(const Node &n) {
  if (failed(expect(n, Kind::Array)))
    return failure();
  if (n.v->elements.size() > 16)
    return error(n, "shape has " + Twine(n.v->elements.size()) +
                        " dimensions (at most 16)");
  SmallVector<int64_t> shape;
  for (size_t i = 0; i < n.v->elements.size(); ++i) {
    FailureOr<int64_t> d = readDim(element(n, i));
    if (failed(d))
      return failure();
    shape.push_back(*d);
  }
  if (failed(checkElements(n, shape)))
    return failure();
  return shape;
}

FailureOr<SmallVector<int64_t>> Importer::readIntList(const Node &n) {
  if (failed(expect(n, Kind::Array)))
    return failure();
  if (n.v->elements.size() > 16)
    return error(n, "list has " + Twine(n.v->elements.size()) +
                        " entries (at most 16)");
  SmallVector<int64_t> out;
  for (size_t i = 0; i < n.v->elements.size(); ++i) {
    Node e = element(n, i);
    FailureOr<int64_t> x = readInt(e);
    if (failed(x))
      return failure();
    if (*x < 0 || *x > kMaxDim)
      return error(e, "value " + Twine(*x) + " is out of range (0 to " +
                          Twine(kMaxDim) + ")");
    out.push_back(*x);
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Names
//===----------------------------------------------------------------------===//

FailureOr<std::string> Importer::readName(const Node &n) {
  FailureOr<std::string> raw = readString(n);
  if (failed(raw))
    return failure();
  if (raw->empty())
    return error(n, "a name must not be empty");
  std::string out;
  StringRef s = *raw;
  while (!s.empty()) {
    size_t open = s.find('{');
    out += s.take_front(open).str();
    if (open == StringRef::npos)
      break;
    size_t close = s.find('}', open);
    if (close == StringRef::npos)
      return error(n, "unmatched '{' in name '" + *raw + "'");
    StringRef index = s.slice(open + 1, close);
    auto it = llvm::find_if(llvm::reverse(iterations),
                            [&](auto &p) { return p.first == index; });
    if (it == iterations.rend())
      return error(
          n, "unknown index '{" + index + "}' in name '" + *raw + "'" +
                 (iterations.empty() ? " (outside any repeat block)" : ""));
    out += std::to_string(it->second);
    s = s.drop_front(close + 1);
  }
  return out;
}

Scope::Binding *Importer::findBinding(StringRef name) {
  for (Scope *s = scope; s; s = s->parent) {
    auto it = s->names.find(name);
    if (it != s->names.end())
      return &it->second;
  }
  return nullptr;
}

FailureOr<mlir::Value> Importer::lookup(const Node &nameNode) {
  FailureOr<std::string> name = readName(nameNode);
  if (failed(name))
    return failure();
  if (Scope::Binding *b = findBinding(*name))
    return b->value;
  auto it = params.find(*name);
  if (it == params.end())
    return error(nameNode, "unknown name '" + *name +
                               "' (not an input, a parameter or an earlier "
                               "output in scope)");
  Param &p = it->second;
  if (!p.read) {
    if (failed(countOp(nameNode)))
      return failure();
    p.read = nn::ParamOp::create(builder, locOf(nameNode), p.type,
                                 FlatSymbolRefAttr::get(&ctx, *name));
  }
  return p.read;
}

LogicalResult Importer::define(const Node &nameNode, mlir::Value v) {
  FailureOr<std::string> name = readName(nameNode);
  if (failed(name))
    return failure();
  if (Scope::Binding *b = findBinding(*name))
    return error(nameNode, "duplicate name '" + *name +
                               "' (already defined at " + lineCol(b->offset) +
                               ")");
  auto p = params.find(*name);
  if (p != params.end())
    return error(nameNode, "duplicate name '" + *name +
                               "' (a parameter declared at " +
                               lineCol(p->second.decl.v->offset) + ")");
  scope->names[*name] = Scope::Binding{v, nameNode.v->offset};
  return success();
}

LogicalResult Importer::countOp(const Node &n) {
  if (++opCount > kMaxOps)
    return error(n, "the model expands to more than " + Twine(kMaxOps) +
                        " ops and parameters");
  return success();
}

//===----------------------------------------------------------------------===//
// Sections
//===----------------------------------------------------------------------===//

LogicalResult Importer::importConfig(const Node &n) {
  if (n.v->kind != Kind::Object)
    return error(n, Twine("expected the config (an object), got ") +
                        json::describe(n.v->kind));
  SmallVector<NamedAttribute> attrs;
  for (const json::Value::Member &m : n.v->members) {
    Node e{m.value.get(), json::appendKey(n.path, m.key)};
    if (m.key.empty())
      return error(m.keyOffset, e.path, "a config name must not be empty");
    if (e.v->kind != Kind::Integer)
      return error(e, Twine("config entry '") + m.key +
                          "' must be a positive integer, got " +
                          (e.v->isNumber() ? "a non-integer or too large number"
                                           : json::describe(e.v->kind)));
    if (e.v->integer < 1 || e.v->integer > kMaxDim)
      return error(e, "config entry '" + m.key + "' is " + Twine(e.v->integer) +
                          ", out of range (1 to " + Twine(kMaxDim) + ")");
    config[m.key] = e.v->integer;
    attrs.push_back(
        builder.getNamedAttr(m.key, builder.getI64IntegerAttr(e.v->integer)));
  }
  module->setAttr(kConfigAttrName, builder.getDictionaryAttr(attrs));
  return success();
}

LogicalResult Importer::importTrain(const Node &n) {
  static constexpr StringRef intKeys[] = {"seed", "warmup_steps",
                                          "decay_steps"};
  static constexpr StringRef floatKeys[] = {
      "lr", "min_lr", "beta1", "beta2", "eps", "weight_decay", "grad_clip"};
  SmallVector<StringRef> required(std::begin(intKeys), std::end(intKeys));
  required.append(std::begin(floatKeys), std::end(floatKeys));
  required.push_back("decay");
  if (failed(checkObject(n, "the train section", required, {})))
    return failure();

  SmallVector<NamedAttribute> attrs;
  for (StringRef k : intKeys) {
    Node e = *field(n, k);
    if (e.v->kind != Kind::Integer)
      return error(e, "'" + k + "' must be an integer, got " +
                          (e.v->isNumber() ? "a non-integer or too large number"
                                           : json::describe(e.v->kind)));
    if (e.v->integer < 0)
      return error(e, "'" + k + "' must not be negative");
    attrs.push_back(
        builder.getNamedAttr(k, builder.getI64IntegerAttr(e.v->integer)));
  }
  llvm::StringMap<double> f;
  for (StringRef k : floatKeys) {
    FailureOr<double> x = readFloat(*field(n, k));
    if (failed(x))
      return failure();
    f[k] = *x;
    attrs.push_back(builder.getNamedAttr(k, builder.getF64FloatAttr(*x)));
  }
  auto range = [&](StringRef k, bool ok, StringRef what) -> LogicalResult {
    if (ok)
      return success();
    return error(*field(n, k), "'" + k + "' is " + Twine(numStr(f[k])) +
                                   "; it must be " + what);
  };
  if (failed(range("lr", f["lr"] > 0, "positive")) ||
      failed(range("min_lr", f["min_lr"] >= 0 && f["min_lr"] <= f["lr"],
                   "between 0 and lr")) ||
      failed(range("beta1", f["beta1"] >= 0 && f["beta1"] < 1, "in [0, 1)")) ||
      failed(range("beta2", f["beta2"] >= 0 && f["beta2"] < 1, "in [0, 1)")) ||
      failed(range("eps", f["eps"] > 0, "positive")) ||
      failed(range("weight_decay", f["weight_decay"] >= 0, "non-negative")) ||
      failed(range("grad_clip", f["grad_clip"] >= 0,
                   "non-negative (0 turns clipping off)")))
    return failure();

  Node decay = *field(n, "decay");
  FailureOr<std::string> d = readString(decay);
  if (failed(d))
    return failure();
  if (*d != "cosine" && *d != "constant")
    return error(decay, "unknown decay '" + *d + "' (cosine or constant)");
  attrs.push_back(builder.getNamedAttr("decay", builder.getStringAttr(*d)));
  module->setAttr(kTrainAttrName, builder.getDictionaryAttr(attrs));
  return success();
}

LogicalResult Importer::importInputs(const Node &n) {
  if (n.v->kind != Kind::Object)
    return error(n, Twine("expected the inputs (an object), got ") +
                        json::describe(n.v->kind));
  if (n.v->members.empty())
    return error(n, "the model has no inputs");
  SmallVector<Type> types;
  for (const json::Value::Member &m : n.v->members) {
    Node in{m.value.get(), json::appendKey(n.path, m.key)};
    if (failed(checkObject(in, "an input", {"shape", "dtype"}, {})))
      return failure();
    FailureOr<SmallVector<int64_t>> shape = readShape(*field(in, "shape"));
    if (failed(shape))
      return failure();
    Node dt = *field(in, "dtype");
    FailureOr<std::string> dtype = readString(dt);
    if (failed(dtype))
      return failure();
    Type et;
    if (*dtype == "i32")
      et = builder.getI32Type();
    else if (*dtype == "f32")
      et = builder.getF32Type();
    else
      return error(dt, "unknown dtype '" + *dtype + "' (i32 or f32)");
    // The data loader fills two inputs, the token ids and the targets (the
    // ids one position on), both i32 [batch, seq]; any other input would
    // have no source of data (and train on zeros).
    if (m.key != "tokens" && m.key != "targets")
      return error(in, "an input the data does not feed: a model's inputs "
                       "are 'tokens' and 'targets' (i32 token ids of shape "
                       "[batch, seq], which the data loader fills)");
    if (!et.isInteger(32))
      return error(dt, "'" + m.key + "' holds token ids: its dtype is i32, "
                       "not " + *dtype);
    if (shape->size() != 2)
      return error(*field(in, "shape"),
                   "'" + m.key + "' is [batch, seq] (2 dimensions), got " +
                       std::to_string(shape->size()));
    types.push_back(RankedTensorType::get(*shape, et));
  }
  for (const char *needed : {"tokens", "targets"})
    if (!field(n, needed))
      return error(n, Twine("the model has no '") + needed +
                          "' input (a model's inputs are 'tokens' and "
                          "'targets', i32 [batch, seq])");

  OpBuilder mb = OpBuilder::atBlockEnd(module.getBody());
  auto fnType = builder.getFunctionType(
      types, RankedTensorType::get({}, builder.getF32Type()));
  auto fn = func::FuncOp::create(mb, locOf(n), "forward", fnType);
  funcOp = fn;
  body = fn.addEntryBlock();
  for (auto [i, m] : llvm::enumerate(n.v->members)) {
    Node key{m.value.get(), json::appendKey(n.path, m.key)};
    fn.setArgAttr(i, "nn.name", builder.getStringAttr(m.key));
    body->getArgument(i).setLoc(locOf(key));
    // Inputs are names like any other; the key's position is their definition.
    json::Value nameValue;
    nameValue.kind = Kind::String;
    nameValue.string = m.key;
    nameValue.offset = m.keyOffset;
    if (failed(define(Node{&nameValue, key.path}, body->getArgument(i))))
      return failure();
  }
  builder.setInsertionPointToEnd(body);
  return success();
}

LogicalResult Importer::importParam(const Node &nameKey, const Node &decl) {
  if (failed(countOp(decl)))
    return failure();
  FailureOr<std::string> name = readName(nameKey);
  if (failed(name))
    return failure();
  if (failed(checkObject(decl, "a parameter", {"shape", "init"}, {"std"})))
    return failure();
  FailureOr<SmallVector<int64_t>> shape = readShape(*field(decl, "shape"));
  if (failed(shape))
    return failure();
  Node initNode = *field(decl, "init");
  FailureOr<std::string> init = readString(initNode);
  if (failed(init))
    return failure();
  std::optional<Node> stdNode = field(decl, "std");
  double stdev = 0.0;
  if (*init == "normal" || *init == "scaled_normal") {
    if (!stdNode)
      return error(decl, "missing field 'std' (init '" + *init + "' needs it)");
    FailureOr<double> s = readFloat(*stdNode);
    if (failed(s))
      return failure();
    if (!(*s > 0) || !std::isfinite(*s))
      return error(*stdNode, "std must be positive, got " + Twine(numStr(*s)));
    stdev = *s;
    if (*init == "scaled_normal") {
      auto n = config.find("n_layer");
      if (n == config.end())
        return error(initNode, "init 'scaled_normal' needs the config entry "
                               "'n_layer'");
      // GPT-2 scales residual projections by 1/sqrt(2 * n_layer).
      stdev /= std::sqrt(2.0 * static_cast<double>(n->second));
    }
  } else if (*init == "zeros" || *init == "ones") {
    if (stdNode)
      return error(*stdNode,
                   "extra field 'std' (init '" + *init + "' takes none)");
  } else {
    return error(initNode, "unknown init '" + *init +
                               "' (normal, scaled_normal, zeros or ones)");
  }

  if (Scope::Binding *b = findBinding(*name))
    return error(nameKey, "duplicate name '" + *name +
                              "' (already defined at " + lineCol(b->offset) +
                              ")");
  auto [it, inserted] = params.try_emplace(*name);
  if (!inserted)
    return error(nameKey, "duplicate parameter '" + *name +
                              "' (already declared at " +
                              lineCol(it->second.decl.v->offset) + ")");
  auto type = RankedTensorType::get(*shape, builder.getF32Type());
  it->second.type = type;
  it->second.decl = nameKey;
  paramOrder.push_back(*name);

  OpBuilder mb(&ctx);
  mb.setInsertionPoint(funcOp);
  nn::ParameterOp::create(
      mb, locOf(decl), mb.getStringAttr(*name), TypeAttr::get(type),
      mb.getStringAttr(*init == "scaled_normal" ? "normal" : *init),
      mb.getF64FloatAttr(stdev), /*logical_shape=*/nullptr);
  return success();
}

LogicalResult Importer::importParams(const Node &n) {
  if (n.v->kind != Kind::Object)
    return error(n, Twine("expected the parameters (an object), got ") +
                        json::describe(n.v->kind));
  for (const json::Value::Member &m : n.v->members) {
    std::string path = json::appendKey(n.path, m.key);
    json::Value nameValue;
    nameValue.kind = Kind::String;
    nameValue.string = m.key;
    nameValue.offset = m.keyOffset;
    // The key node only lives for readName's messages; the declaration keeps
    // the value node (whose offset is close by) for later ones.
    if (failed(importParam(Node{&nameValue, path}, Node{m.value.get(), path})))
      return failure();
    params[paramOrder.back()].decl = Node{m.value.get(), path};
  }
  return success();
}

LogicalResult Importer::importGraph(const Node &ops) {
  if (failed(expect(ops, Kind::Array)))
    return failure();
  for (size_t i = 0; i < ops.v->elements.size(); ++i) {
    Node e = element(ops, i);
    if (e.v->kind != Kind::Object)
      return error(e, Twine("expected an op node or a repeat block (an "
                            "object), got ") +
                          json::describe(e.v->kind));
    if (e.v->find("repeat")) {
      if (failed(importRepeat(e)))
        return failure();
    } else if (e.v->find("op")) {
      if (failed(importOpNode(*this, e)))
        return failure();
    } else {
      return error(e, "expected an op node (with \"op\") or a repeat block "
                      "(with \"repeat\")");
    }
  }
  return success();
}

LogicalResult Importer::importRepeat(const Node &blk) {
  if (failed(checkObject(blk, "a repeat block",
                         {"repeat", "index", "carry", "ops", "yield"},
                         {"params"})))
    return failure();
  if (iterations.size() >= kMaxRepeatNesting)
    return error(blk, "repeat blocks nested deeper than " +
                          Twine(kMaxRepeatNesting));
  Node countNode = *field(blk, "repeat");
  FailureOr<int64_t> count = readInt(countNode);
  if (failed(count))
    return failure();
  if (*count < 1 || *count > kMaxRepeat)
    return error(countNode, "repeat count " + Twine(*count) +
                                " is out of range (1 to " + Twine(kMaxRepeat) +
                                ")");
  Node indexNode = *field(blk, "index");
  FailureOr<std::string> index = readString(indexNode);
  if (failed(index))
    return failure();
  if (index->empty() || !llvm::all_of(*index, [](char c) {
        return llvm::isAlnum(c) || c == '_';
      }))
    return error(indexNode, "index '" + *index +
                                "' must be a name of letters, digits and '_'");
  for (auto &it : iterations)
    if (it.first == *index)
      return error(indexNode, "index '" + *index +
                                  "' is already the index of an enclosing "
                                  "repeat block");
  Node carryNode = *field(blk, "carry");
  FailureOr<std::string> carryName = readName(carryNode);
  if (failed(carryName))
    return failure();
  Scope::Binding *carry = findBinding(*carryName);
  if (!carry)
    return error(carryNode, "carry '" + *carryName +
                                "' names no value defined before the block");
  Node ops = *field(blk, "ops");
  if (failed(expect(ops, Kind::Array)))
    return failure();
  std::optional<Node> blockParams = field(blk, "params");
  if (blockParams && blockParams->v->kind != Kind::Object)
    return error(*blockParams, Twine("expected the parameters (an object), "
                                     "got ") +
                                   json::describe(blockParams->v->kind));
  Node yieldNode = *field(blk, "yield");

  mlir::Value current = carry->value;
  Scope *outer = scope;
  LogicalResult result = success();
  for (int64_t k = 0; k < *count && succeeded(result); ++k) {
    iterations.push_back({*index, k});
    Scope inner;
    inner.parent = outer;
    // Inside an iteration the carry name is the value carried in.
    inner.names[*carryName] = Scope::Binding{current, carryNode.v->offset};
    scope = &inner;
    if (blockParams)
      result = importParams(*blockParams);
    if (succeeded(result))
      result = importGraph(ops);
    if (succeeded(result)) {
      FailureOr<mlir::Value> y = lookup(yieldNode);
      if (failed(y)) {
        result = failure();
      } else if (y->getType() != current.getType()) {
        result = error(yieldNode, "yield has shape " + shapeStr(y->getType()) +
                                      " but the carry '" + *carryName +
                                      "' has " + shapeStr(current.getType()));
      } else {
        current = *y;
      }
    }
    scope = outer;
    iterations.pop_back();
  }
  if (failed(result))
    return failure();
  // After the block the carry name is the last iteration's result.
  findBinding(*carryName)->value = current;
  return success();
}

LogicalResult Importer::importLoss(const Node &n) {
  FailureOr<mlir::Value> loss = lookup(n);
  if (failed(loss))
    return failure();
  auto t = dyn_cast<RankedTensorType>(loss->getType());
  if (!t || t.getRank() != 0 || !t.getElementType().isF32())
    return error(n, "the loss must be a scalar f32 (the output of "
                    "cross_entropy), got shape " +
                        shapeStr(loss->getType()));
  // What nn-autodiff differentiates: one cross_entropy, its value read by
  // nothing but the return (docs/MODEL_FORMAT.md).
  if (!loss->getDefiningOp<nn::CrossEntropyOp>())
    return error(n, "the loss must be the output of cross_entropy, not of " +
                        (loss->getDefiningOp()
                             ? "'" +
                                   loss->getDefiningOp()->getName().stripDialect().str() +
                                   "'"
                             : std::string("an input")));
  if (!loss->use_empty())
    return error(n, "the loss may only be returned: another op reads it");
  int64_t losses = 0;
  funcOp->walk([&](nn::CrossEntropyOp) { ++losses; });
  if (losses > 1)
    return error(n, "the model has " + std::to_string(losses) +
                        " cross_entropy ops; only the returned loss may be "
                        "one");
  func::ReturnOp::create(builder, locOf(n), *loss);
  return success();
}

LogicalResult Importer::checkParamsUsed() {
  for (const std::string &name : paramOrder) {
    const Param &p = params[name];
    if (!p.read)
      return error(p.decl, "parameter '" + name + "' is never used");
  }
  return success();
}

LogicalResult Importer::checkInputShapes(const Node &inputs) {
  // After the graph, so that an op's own check of what it reads speaks
  // first (importInputs made sure both exist).
  const bool tokensFirst = inputs.v->members[0].key == "tokens";
  auto fn = cast<func::FuncOp>(funcOp);
  Type tokens = fn.getArgument(tokensFirst ? 0 : 1).getType(),
       targets = fn.getArgument(tokensFirst ? 1 : 0).getType();
  if (tokens != targets)
    return error(*field(inputs, "targets"),
                 "'targets' must have the shape of 'tokens' (" +
                     shapeStr(tokens) + "), got " + shapeStr(targets));
  return success();
}

LogicalResult Importer::checkFlops(const Node &graph) {
  __int128 total = 0;
  int64_t most = 0;
  Operation *largest = nullptr;
  funcOp->walk([&](nn::CostOpInterface cost) {
    const int64_t flops = cost.getFlops(); // saturated, never wrapped
    total += flops;
    if (flops >= most) {
      most = flops;
      largest = cost.getOperation();
    }
  });
  if (total <= kMaxForwardFlops)
    return success();
  std::string where;
  if (largest)
    if (auto named = dyn_cast<NameLoc>(largest->getLoc()))
      where = " (the largest, " + named.getName().str() + ", counts " +
              (most == INT64_MAX ? std::string("more than 2^63")
                                 : std::to_string(most)) +
              ")";
  return error(graph, "the forward pass of one micro-batch counts more than "
                      "2^60 FLOPs" + where +
                      ", past what pipec's cost model counts: a smaller "
                      "batch or model");
}

OwningOpRef<ModuleOp> Importer::run() {
  json::ReadError rerr;
  if (!json::read(text, root, rerr)) {
    (void)error(rerr.offset, rerr.path, rerr.message);
    return nullptr;
  }
  Node top{&root, ""};
  if (failed(checkObject(
          top, "the model",
          {"name", "config", "train", "inputs", "params", "graph", "loss"},
          {"description", "huggingface"})))
    return nullptr;
  Node nameNode = *field(top, "name");
  FailureOr<std::string> name = readString(nameNode);
  if (failed(name))
    return nullptr;
  if (name->empty())
    return (void)error(nameNode, "the model name must not be empty"), nullptr;
  // The name lands in generated sources' comments, file headers and logs:
  // one printable line.
  for (unsigned char c : *name)
    if (c < 0x20 || c == 0x7f)
      return (void)error(nameNode, "the model name holds a control "
                                   "character (byte " +
                                       std::to_string(int(c)) +
                                       "); it must be one printable line"),
             nullptr;
  if (auto d = field(top, "description"); d && failed(readString(*d)))
    return nullptr;

  OwningOpRef<ModuleOp> owned = ModuleOp::create(
      FileLineColLoc::get(&ctx, fileName, 1, 1), StringRef(*name));
  module = *owned;
  // The Hugging Face config.json the model came from (pipec import-hf),
  // kept verbatim for `pipec-run --save-hf` (docs/HUGGINGFACE.md).
  if (auto hf = field(top, "huggingface")) {
    if (hf->v->kind != json::Value::Kind::Object)
      return (void)error(*hf, "expected an object (a transformers "
                              "config.json)"),
             nullptr;
    nlohmann::ordered_json whole = nlohmann::ordered_json::parse(
        text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (whole.is_object() && whole.contains("huggingface"))
      module->setAttr("nn.huggingface",
                      StringAttr::get(&ctx, whole["huggingface"].dump(2)));
  }
  Scope rootScope;
  scope = &rootScope;
  if (failed(importConfig(*field(top, "config"))) ||
      failed(importTrain(*field(top, "train"))) ||
      failed(importInputs(*field(top, "inputs"))) ||
      failed(importParams(*field(top, "params"))) ||
      failed(importGraph(*field(top, "graph"))) ||
      failed(importLoss(*field(top, "loss"))) || failed(checkParamsUsed()) ||
      failed(checkInputShapes(*field(top, "inputs"))) ||
      failed(checkFlops(*field(top, "graph"))))
    return nullptr;
  scope = nullptr;
  return owned;
}

//===----------------------------------------------------------------------===//
// Entry point
//===----------------------------------------------------------------------===//

/// Prints verifier diagnostics in the importer's format: the JSON position
/// and path come from the op's name location.
static void printDiagnostic(Diagnostic &diag, raw_ostream &os) {
  Location loc = diag.getLocation();
  std::string path;
  if (auto named = dyn_cast<NameLoc>(loc)) {
    path = named.getName().str();
    loc = named.getChildLoc();
  }
  if (auto flc = dyn_cast<FileLineColLoc>(loc))
    os << flc.getFilename().getValue() << ":" << flc.getLine() << ":"
       << flc.getColumn() << ": ";
  os << (diag.getSeverity() == DiagnosticSeverity::Error ? "error: "
                                                         : "note: ");
  if (!path.empty())
    os << path << ": ";
  os << diag.str() << "\n";
}

OwningOpRef<ModuleOp> pipec::importModel(MLIRContext &ctx, StringRef jsonText,
                                         StringRef fileName,
                                         raw_ostream &errs) {
  ctx.loadDialect<nn::NNDialect, func::FuncDialect>();
  bool anyError = false;
  ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &diag) {
    anyError |= diag.getSeverity() == DiagnosticSeverity::Error;
    printDiagnostic(diag, errs);
    return success();
  });
  Importer importer(ctx, jsonText, fileName, errs);
  OwningOpRef<ModuleOp> module = importer.run();
  if (!module)
    return nullptr;
  // The importer has checked every shape; the verifier is the second look.
  if (failed(verify(*module)) || anyError)
    return nullptr;
  return module;
}

OwningOpRef<ModuleOp> pipec::importModelFile(MLIRContext &ctx, StringRef path,
                                             raw_ostream &errs) {
  // A directory, a FIFO (whose open would block) or a device is refused
  // before it is opened; "-" is stdin.
  if (path != "-") {
    llvm::sys::fs::file_status st;
    if (!llvm::sys::fs::status(path, st) &&
        st.type() != llvm::sys::fs::file_type::regular_file) {
      errs << path << ": error: the model file is not a regular file (a "
           << "directory, a FIFO, a device or a socket)\n";
      return nullptr;
    }
  }
  auto buffer = llvm::MemoryBuffer::getFileOrSTDIN(path, /*IsText=*/true);
  if (std::error_code ec = buffer.getError()) {
    errs << path << ": error: cannot read the file: " << ec.message() << "\n";
    return nullptr;
  }
  StringRef name = path == "-" ? StringRef("<stdin>") : path;
  return importModel(ctx, (*buffer)->getBuffer(), name, errs);
}
