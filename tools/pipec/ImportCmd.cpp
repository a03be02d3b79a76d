//===- ImportCmd.cpp - `pipec import`: JSON model -> verified nn module ---===//

#include "compiler/import/JsonImporter.h"
#include "tools/pipec/Subcommand.h"

#include "pipert/AtomicFile.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OperationSupport.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace llvm;

static cl::SubCommand
    importCmd("import",
              "Import a JSON model description (docs/MODEL_FORMAT.md) and "
              "print its verified nn module");

static cl::opt<std::string> inputFile(cl::Positional, cl::Required,
                                      cl::desc("<MODEL.json>"),
                                      cl::sub(importCmd));
static cl::opt<std::string> outputFile("o", cl::init("-"),
                                       cl::desc("Write the module to FILE "
                                                "(default: standard output)"),
                                       cl::value_desc("FILE"),
                                       cl::sub(importCmd));
static cl::opt<bool> printLocations(
    "locations",
    cl::desc("Print each op's location: the model file's line and column and "
             "the op's JSON path"),
    cl::sub(importCmd));

static int runImport() {
  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module =
      pipec::importModelFile(ctx, inputFile, errs());
  if (!module)
    return 1;
  mlir::OpPrintingFlags flags;
  if (printLocations)
    flags.enableDebugInfo(/*enable=*/true, /*prettyForm=*/false)
        .useLocalScope();
  std::string text;
  raw_string_ostream os(text);
  module->print(os, flags);
  os << "\n";
  if (outputFile == "-") {
    outs() << text;
    return 0;
  }
  // Whole or not at all (AtomicFile.h).
  if (pipert::Status s = pipert::writeFileAtomically(outputFile, text);
      !s.ok()) {
    errs() << outputFile << ": error: " << s.message() << "\n";
    return 1;
  }
  return 0;
}

static pipec::tool::RegisterSubcommand registerImport(importCmd, runImport);
