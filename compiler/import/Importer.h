//===- Importer.h - the importer's state, shared by its files ---*- C++ -*-===//
//
// Internal to compiler/import/: JsonImporter.cpp walks the model file (names,
// scopes, parameters, repeat blocks) and ImportOps.cpp checks and builds one
// op node. Both report errors through Importer::error, which prints
// `FILE:LINE:COL: error: PATH: message`.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_IMPORT_IMPORTER_H
#define PIPEC_COMPILER_IMPORT_IMPORTER_H

#include "compiler/import/JsonReader.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>
#include <string>

namespace pipec::import {

/// Bounds on the work an input may ask for (the importer runs inside a
/// fuzzer, so an absurd size must be an error, not an hour or an OOM).
constexpr int64_t kMaxDim = int64_t(1) << 31;
constexpr int64_t kMaxElements = int64_t(1) << 40;
constexpr int64_t kMaxRepeat = 10000;
constexpr unsigned kMaxRepeatNesting = 8;
constexpr int64_t kMaxOps = 100000;
/// The most FLOPs a micro-batch's forward pass may count (about 1.2e18;
/// GPT-3 175B counts 7e14 a sequence): the cost model's int64 sums and the
/// training step's 3x stay far from overflow below it.
constexpr int64_t kMaxForwardFlops = int64_t(1) << 60;

/// A JSON value and its path from the root (`graph[3].inputs[1]`).
struct Node {
  const json::Value *v = nullptr;
  std::string path;
};

/// The names visible in one region of the graph: the top level, or one
/// iteration of a repeat block (which also sees its enclosing scopes).
struct Scope {
  struct Binding {
    mlir::Value value;
    size_t offset = 0; ///< where the name was defined
  };
  Scope *parent = nullptr;
  llvm::StringMap<Binding> names;
};

/// A declared parameter: its op, its read inside @forward (made at its first
/// use) and where the JSON declared it.
struct Param {
  mlir::RankedTensorType type;
  mlir::Value read;
  Node decl;
};

class Importer {
public:
  Importer(mlir::MLIRContext &ctx, llvm::StringRef text,
           llvm::StringRef fileName, llvm::raw_ostream &errs);

  /// Imports the whole file; null after reporting an error.
  mlir::OwningOpRef<mlir::ModuleOp> run();

  //===--- diagnostics ---------------------------------------------------===//

  /// Prints `FILE:LINE:COL: error: PATH: message` and returns failure.
  mlir::LogicalResult error(size_t offset, llvm::StringRef path,
                            const llvm::Twine &msg);
  mlir::LogicalResult error(const Node &n, const llvm::Twine &msg) {
    return error(n.v->offset, n.path, msg);
  }
  /// The location of an op made from `n`: its file position inside a name
  /// location holding its path and the iteration of every enclosing repeat.
  mlir::Location locOf(const Node &n);
  std::string lineCol(size_t offset) const;
  /// ` (i=3, j=0)`: the iteration of every enclosing repeat block, or "".
  std::string iterationSuffix() const;

  //===--- fields --------------------------------------------------------===//

  /// Fails unless `n` is an object with every required key and no key
  /// outside required + optional.
  mlir::LogicalResult checkObject(const Node &n, llvm::StringRef what,
                                  llvm::ArrayRef<llvm::StringRef> required,
                                  llvm::ArrayRef<llvm::StringRef> optional);
  /// The member `key` of object `n`, if present.
  std::optional<Node> field(const Node &n, llvm::StringRef key) const;
  Node element(const Node &n, size_t i) const;
  mlir::LogicalResult expect(const Node &n, json::Value::Kind kind);

  mlir::FailureOr<std::string> readString(const Node &n);
  /// An integer written as a number or as the name of a config entry.
  mlir::FailureOr<int64_t> readInt(const Node &n);
  /// readInt, limited to 1 .. kMaxDim.
  mlir::FailureOr<int64_t> readDim(const Node &n);
  mlir::FailureOr<double> readFloat(const Node &n);
  mlir::FailureOr<bool> readBool(const Node &n);
  /// An array of dims whose product is at most kMaxElements.
  mlir::FailureOr<llvm::SmallVector<int64_t>> readShape(const Node &n);
  /// An array of integers (numbers or config names), each in [0, kMaxDim].
  mlir::FailureOr<llvm::SmallVector<int64_t>> readIntList(const Node &n);
  /// Checks that `shape` holds at most kMaxElements elements.
  mlir::LogicalResult checkElements(const Node &n,
                                    llvm::ArrayRef<int64_t> shape);

  //===--- names ---------------------------------------------------------===//

  /// Reads a name and replaces `{i}` by the enclosing repeat's iteration.
  mlir::FailureOr<std::string> readName(const Node &n);
  /// The value a name refers to: scopes first, then parameters.
  mlir::FailureOr<mlir::Value> lookup(const Node &nameNode);
  /// Binds the name in `nameNode` to `v` in the current scope.
  mlir::LogicalResult define(const Node &nameNode, mlir::Value v);

  /// Counts one more op against kMaxOps.
  mlir::LogicalResult countOp(const Node &n);

  /// Formats a shape as the JSON writes it: `[4, 64, 64]`.
  static std::string shapeStr(mlir::Type t);

  mlir::MLIRContext &ctx;
  mlir::OpBuilder builder;

private:
  mlir::LogicalResult importConfig(const Node &n);
  mlir::LogicalResult importTrain(const Node &n);
  mlir::LogicalResult importInputs(const Node &n);
  mlir::LogicalResult importParams(const Node &n);
  mlir::LogicalResult importParam(const Node &nameKey, const Node &decl);
  mlir::LogicalResult importGraph(const Node &ops);
  mlir::LogicalResult importRepeat(const Node &blk);
  mlir::LogicalResult importLoss(const Node &n);
  mlir::LogicalResult checkParamsUsed();
  mlir::LogicalResult checkInputShapes(const Node &inputs);
  mlir::LogicalResult checkFlops(const Node &graph);
  Scope::Binding *findBinding(llvm::StringRef name);

  llvm::StringRef text;
  llvm::StringRef fileName;
  llvm::raw_ostream &errs;
  json::LineTable lines;
  json::Value root;
  mlir::ModuleOp module;
  mlir::Block *body = nullptr;       ///< @forward's entry block
  mlir::Operation *funcOp = nullptr; ///< parameters go before it
  llvm::StringMap<int64_t> config;
  llvm::StringMap<Param> params;
  llvm::SmallVector<std::string> paramOrder;
  Scope *scope = nullptr;
  /// The enclosing repeat blocks: index name and current iteration.
  llvm::SmallVector<std::pair<std::string, int64_t>> iterations;
  int64_t opCount = 0;
  bool reported = false;
};

/// A double for messages, as short as it reads: 0.001, 1e-08.
std::string numStr(double x);

/// Checks one op node against its rule, infers its result type, builds the op
/// and binds its output (ImportOps.cpp).
mlir::LogicalResult importOpNode(Importer &im, const Node &node);

} // namespace pipec::import

#endif // PIPEC_COMPILER_IMPORT_IMPORTER_H
