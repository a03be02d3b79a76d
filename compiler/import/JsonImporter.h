//===- JsonImporter.h - a JSON model description -> an nn module -*- C++
//-*-===//
//
// The format is docs/MODEL_FORMAT.md. The importer checks everything the
// file says (fields, names, shapes, sizes), infers every result shape itself
// so that a mismatch names the JSON path that caused it, and runs the MLIR
// verifier on the result.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_COMPILER_IMPORT_JSONIMPORTER_H
#define PIPEC_COMPILER_IMPORT_JSONIMPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/raw_ostream.h"

namespace pipec {

/// Imports the model in `jsonText`. Returns a verified module with
/// `func.func @forward(inputs...) -> tensor<f32>` (the loss), one
/// `nn.parameter` per parameter, and the module attributes `nn.config` and
/// `nn.train` (see dialects/nn/NNModelAttrs.h). On error returns null after
/// writing `FILE:LINE:COL: error: PATH: message` lines to `errs`.
///
/// Loads the nn and func dialects into `ctx`. Keeps no global state: any
/// number of calls may run, one after another, in one process.
mlir::OwningOpRef<mlir::ModuleOp> importModel(mlir::MLIRContext &ctx,
                                              llvm::StringRef jsonText,
                                              llvm::StringRef fileName,
                                              llvm::raw_ostream &errs);

/// Reads `path` ("-" for stdin) and imports it; a file that cannot be read
/// is reported as `PATH: error: cannot read the file: REASON`.
mlir::OwningOpRef<mlir::ModuleOp> importModelFile(mlir::MLIRContext &ctx,
                                                  llvm::StringRef path,
                                                  llvm::raw_ostream &errs);

} // namespace pipec

#endif // PIPEC_COMPILER_IMPORT_JSONIMPORTER_H
