//===- ExecutorBf16Test.cpp - the reference executor's bf16 storage --------===//
//
// bf16-typed values (--nn-storage{type=bf16}) hold bf16 numbers only: each
// call's bf16 results are rounded to nearest even after it runs, a bf16
// nn.param read is its fp32 master rounded, and the statistics a kernel
// keeps in fp32 are not rounded. Checked against roundings computed by
// hand (docs/NUMERICS.md).
//
//===----------------------------------------------------------------------===//

#include "compiler/reference/Executor.h"

#include "dialects/kernel/KernelDialect.h"
#include "dialects/nn/NNDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace {

using pipec::reference::Executor;
using pipec::reference::ExecutorOptions;
using pipec::reference::ParameterStore;

constexpr const char *kModule = R"mlir(
module {
  nn.parameter @w : tensor<4xf32> <{init = "zeros"}>
  func.func @f(%a: tensor<4xbf16>, %g: tensor<4xbf16>, %b: tensor<4xbf16>)
      -> (tensor<4xbf16>, tensor<4xbf16>, tensor<4xbf16>, tensor<1xf32>, tensor<1xf32>) {
    %w = nn.param @w : tensor<4xbf16>
    %s = kernel.call "add_forward"(%a, %w) ints [4, 4] reals [] state [] from "nn.add" : (tensor<4xbf16>, tensor<4xbf16>) -> tensor<4xbf16>
    %y:3 = kernel.call "layernorm_forward"(%a, %g, %b) ints [1, 4] reals [1.0e-05] state [] from "nn.layernorm" : (tensor<4xbf16>, tensor<4xbf16>, tensor<4xbf16>) -> (tensor<4xbf16>, tensor<1xf32>, tensor<1xf32>)
    return %w, %s, %y#0, %y#1, %y#2 : tensor<4xbf16>, tensor<4xbf16>, tensor<4xbf16>, tensor<1xf32>, tensor<1xf32>
  }
}
)mlir";

/// The low 16 bits of a float: zero exactly for a bf16 number.
uint32_t low16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  return bits & 0xffffu;
}

TEST(ExecutorBf16, RoundsAtTheStoragePointsOnly) {
  mlir::MLIRContext context;
  context.loadDialect<pipec::nn::NNDialect, pipec::kernel::KernelDialect,
                      mlir::func::FuncDialect>();
  auto module = mlir::parseSourceString<mlir::ModuleOp>(
      kModule, mlir::ParserConfig(&context));
  ASSERT_TRUE(module);
  ParameterStore<float> params;
  std::string errors;
  llvm::raw_string_ostream errs(errors);
  ASSERT_TRUE(params.declare(*module, errs)) << errors;
  // The fp32 master: its bf16 copy is 2^-8, 3 * 2^-8 (both exact),
  // 1 (1 + 2^-9 is below half a bf16 ulp of 1) and 0x3dcd = 0.10009765625.
  params.entries()[0].values = {0x1p-8f, 0x3p-8f, 1.0f + 0x1p-9f, 0.1f};
  auto fn = module->lookupSymbol<mlir::func::FuncOp>("f");
  auto exec = Executor<float>::create(fn, params, ExecutorOptions(), errs);
  ASSERT_TRUE(exec) << errors;
  const float a[4] = {1.0f, 1.0f, 1.0f, 3.0f};
  const float ones[4] = {1, 1, 1, 1}, zeros[4] = {0, 0, 0, 0};
  std::memcpy(exec->floatArgument(0), a, sizeof a);
  std::memcpy(exec->floatArgument(1), ones, sizeof ones);
  std::memcpy(exec->floatArgument(2), zeros, sizeof zeros);
  std::string error;
  ASSERT_TRUE(exec->run(error)) << error;

  auto result = [&](unsigned i) {
    return exec->valueBuffer(fn.getBody().front().getTerminator()->getOperand(i));
  };
  const float *copy = result(0);
  EXPECT_EQ(copy[0], 0x1p-8f);
  EXPECT_EQ(copy[1], 0x3p-8f);
  EXPECT_EQ(copy[2], 1.0f);
  EXPECT_EQ(copy[3], 0.10009765625f);
  // The master itself is untouched.
  EXPECT_EQ(params.entries()[0].values[2], 1.0f + 0x1p-9f);

  // Sums rounded to nearest even, ulp 2^-7 in [1, 2) and 2^-6 in [2, 4):
  // 1 + 2^-8 ties to 1 (even), 1 + 3 * 2^-8 ties to 1 + 2^-6 (even),
  // 1 + 1 is exact, 3.10009765625 is 198.40625 ulps of 2^-6: 3.09375.
  const float *s = result(1);
  EXPECT_EQ(s[0], 1.0f);
  EXPECT_EQ(s[1], 1.015625f);
  EXPECT_EQ(s[2], 2.0f);
  EXPECT_EQ(s[3], 3.09375f);

  // LayerNorm of (1, 1, 1, 3): mean 1.5, rstd = 1 / sqrt(0.75 + 1e-5) kept
  // in fp32 (not a bf16 number), y = (x - 1.5) * rstd rounded to bf16.
  const float *y = result(2), *mean = result(3), *rstd = result(4);
  EXPECT_EQ(mean[0], 1.5f);
  float rs = 1.0f / std::sqrt(0.75f + 1e-5f);
  EXPECT_NEAR(rstd[0], rs, 1e-6f);
  EXPECT_NE(low16(rstd[0]), 0u) << "a statistic was rounded to bf16";
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(low16(y[i]), 0u) << "y[" << i << "] = " << y[i];
  // (3 - 1.5) * 1.1547 = 1.73204 is 221.70 ulps of 2^-7: 1.734375.
  EXPECT_EQ(y[3], 1.734375f);
  // -0.57735 is 147.80 ulps of 2^-8 in [0.5, 1): -0.578125.
  EXPECT_EQ(y[0], -0.578125f);
}

} // namespace
