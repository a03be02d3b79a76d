//===- ReferenceForwardTest.cpp - the reference executor's forward pass ---===//
//
// A fresh GPT (weights of std 0.02) predicts nearly uniform distributions,
// so its loss on real text is close to ln(256); float and double agree.
//
//===----------------------------------------------------------------------===//

#include "compiler/import/JsonImporter.h"
#include "compiler/reference/Trainer.h"
#include "kernels/cpu/Matmul.h"

#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

using namespace pipec;

namespace {

const std::string kData =
    PIPEC_SOURCE_DIR "/../shared/data/tinyshakespeare.txt";

mlir::OwningOpRef<mlir::ModuleOp> importGptTiny(mlir::MLIRContext &ctx) {
  return importModelFile(ctx, PIPEC_SOURCE_DIR "/models/gpt-tiny.json",
                         llvm::errs());
}

TEST(ReferenceForward, FreshGptTinyLossIsNearLn256) {
  if (!std::ifstream(kData))
    GTEST_SKIP() << kData << " is not present";
  pipert::cpu::setBlasThreadCount(1);
  mlir::MLIRContext ctx;
  auto module = importGptTiny(ctx);
  ASSERT_TRUE(module);
  double f32 = 0, f64 = 0, other = 0;
  ASSERT_TRUE(
      reference::forwardLoss<float>(*module, kData, 0, f32, llvm::errs()));
  ASSERT_TRUE(
      reference::forwardLoss<double>(*module, kData, 0, f64, llvm::errs()));
  EXPECT_NEAR(f64, std::log(256.0), 0.05);
  // test/reference's JAX interpreter of the model JSON, in float64, from the
  // same initial weights and batch, gives 5.512319586604304 (and
  // 5.524219492216339 for micro-batch 1): same initialiser, data and ops.
  EXPECT_NEAR(f64, 5.512319586604304, 1e-12);
  EXPECT_NEAR(f32, f64, 1e-5 * f64);
  EXPECT_NE(f32, f64); // really two precisions
  // Another micro-batch is other text, so another loss.
  ASSERT_TRUE(
      reference::forwardLoss<double>(*module, kData, 1, other, llvm::errs()));
  EXPECT_NE(other, f64);
  EXPECT_NEAR(other, 5.524219492216339, 1e-12);
}

TEST(ReferenceForward, MissingDataIsAnError) {
  mlir::MLIRContext ctx;
  auto module = importGptTiny(ctx);
  ASSERT_TRUE(module);
  double loss = 0;
  std::string text;
  llvm::raw_string_ostream errs(text);
  EXPECT_FALSE(reference::forwardLoss<float>(*module, "/nonexistent/data.txt",
                                             0, loss, errs));
  EXPECT_NE(text.find("/nonexistent/data.txt: cannot open the data file"),
            std::string::npos)
      << text;
}

} // namespace
