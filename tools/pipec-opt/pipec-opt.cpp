//===- pipec-opt.cpp - runs any pipec pass on textual MLIR ------*- C++ -*-===//
//
// Registers exactly the dialects and passes pipec uses, so that every stage
// of the flow in docs/DESIGN.md can be run and tested alone, and the whole
// flow as the `--pipec-train` pipeline (compiler/passes/Pipeline.h).
//
//===----------------------------------------------------------------------===//

#include "compiler/passes/Passes.h"
#include "compiler/passes/Pipeline.h"
#include "dialects/kernel/KernelDialect.h"
#include "dialects/nn/NNDialect.h"
#include "dialects/pipe/PipeDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::registerCanonicalizerPass();
  mlir::registerCSEPass();
  pipec::registerPipecPasses();
  pipec::registerTrainingPipeline();

  mlir::DialectRegistry registry;
  registry.insert<pipec::nn::NNDialect, pipec::pipe::PipeDialect,
                  pipec::kernel::KernelDialect,
                  mlir::func::FuncDialect>();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "pipec-opt: run pipec passes on textual MLIR\n", registry));
}
