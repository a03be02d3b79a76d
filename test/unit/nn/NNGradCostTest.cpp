//===- NNGradCostTest.cpp - costs of the ops --nn-autodiff builds -*- C++
//-*-===//
//
// Checks the CostOpInterface numbers of the backward and optimizer ops
// against the formulas of NNGradCost.cpp written out again by hand, with
// shapes from a seeded generator, and that every op of a @train_step built by
// the pass has a cost, so a partitioner can sum F, B and W per chunk.
//
//===----------------------------------------------------------------------===//

#include "compiler/passes/Passes.h"
#include "dialects/nn/NNDialect.h"
#include "dialects/nn/NNGradOps.h"
#include "dialects/nn/NNOps.h"
#include "test/unit/nn/NNParseFixture.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

using namespace mlir;
using namespace pipec::nn;

namespace {

class NNGradCostTest : public pipec::nn::testing::NNParseFixture {
protected:
  NNGradCostTest() : NNParseFixture(20261125) {}

  static std::string t(std::initializer_list<int64_t> shape) {
    std::string s = "tensor<";
    for (int64_t d : shape)
      s += std::to_string(d) + "x";
    return s + "f32>";
  }
};

/// A matmul's B and W ops together cost twice its forward GEMM, and the W op
/// reads and writes the weight's and the bias's accumulators.
TEST_F(NNGradCostTest, MatmulBackwardIsTwiceTheForwardGemm) {
  for (int trial = 0; trial < 5; ++trial) {
    int64_t b = dim(1, 4), s = dim(1, 16), k = dim(1, 64), n = dim(1, 64);
    std::string x = t({b, s, k}), y = t({b, s, n}), w = t({k, n});
    auto module = parse(
        "nn.parameter @w : " + w + " <{init = \"zeros\"}>\n" +
        "nn.parameter @b : " + t({n}) + " <{init = \"zeros\"}>\n" +
        "func.func @f(%x: " + x + ", %dy: " + y + ", %w: " + w + ") {\n" +
        "  %f = nn.matmul %x, %w : (" + x + ", " + w + ") -> " + y + "\n" +
        "  %dx = nn.matmul_grad_b %dy, %w : (" + y + ", " + w + ") -> " + x +
        "\n  nn.matmul_grad_w %x, %dy into @w[0], @b[0] : " + x + ", " + y +
        "\n  return\n}\n");
    ASSERT_TRUE(module);
    auto fwd = cast<CostOpInterface>(only<MatmulOp>(*module).getOperation());
    auto gb =
        cast<CostOpInterface>(only<MatmulGradBOp>(*module).getOperation());
    auto gw =
        cast<CostOpInterface>(only<MatmulGradWOp>(*module).getOperation());
    int64_t m = b * s;
    EXPECT_EQ(fwd.getFlops(), 2 * m * k * n);
    EXPECT_EQ(gb.getFlops(), 2 * m * k * n);
    EXPECT_EQ(gw.getFlops(), 2 * m * k * n + m * n);
    int64_t accumulators = 4 * (k * n + n);
    EXPECT_EQ(gw.getBytesRead(), 4 * (m * k + m * n) + accumulators);
    EXPECT_EQ(gw.getBytesWritten(), accumulators);
    EXPECT_EQ(gb.getBytesWritten(), 4 * m * k);
    EXPECT_EQ(gw.getSavedActivationBytes(), 0);
  }
}

/// attention_grad: per head, P (10 Dh + 4) + 2 T Dh with P = T (T + 1) / 2
/// when causal.
TEST_F(NNGradCostTest, AttentionGradFormula) {
  for (int trial = 0; trial < 5; ++trial) {
    int64_t b = dim(1, 3), tq = dim(1, 16), kv = dim(1, 3), groups = dim(1, 3),
            hd = 2 * dim(1, 8), heads = kv * groups;
    std::string q = t({b, tq, heads * hd}), k = t({b, tq, kv * hd}),
                lse = t({b, heads, tq});
    auto module = parse(
        "func.func @f(%q: " + q + ", %k: " + k + ", %lse: " + lse + ") {\n" +
        "  %dq, %dk, %dv = nn.attention_grad %q, %q, %k, %k, %q, %lse heads "
        "= " +
        std::to_string(heads) + " kv_heads = " + std::to_string(kv) +
        " causal scale = 0.5 : (" + q + ", " + q + ", " + k + ", " + k + ", " +
        q + ", " + lse + ") -> (" + q + ", " + k + ", " + k + ")\n" +
        "  return\n}\n");
    ASSERT_TRUE(module);
    auto op =
        cast<CostOpInterface>(only<AttentionGradOp>(*module).getOperation());
    int64_t pairs = tq * (tq + 1) / 2;
    EXPECT_EQ(op.getFlops(), b * heads * (pairs * (10 * hd + 4) + 2 * tq * hd));
  }
}

/// AdamW reads and writes the parameter and both moments, and reads the
/// gradient and the scalars.
TEST_F(NNGradCostTest, AdamWTouchesParameterAndMoments) {
  int64_t r = dim(1, 64), c = dim(1, 64);
  std::string p = t({r, c});
  auto module = parse(
      "nn.parameter @p : " + p + " <{init = \"zeros\"}>\n" +
      "func.func @f(%g: " + p + ", %lr: tensor<f64>, %s: tensor<i64>) {\n" +
      "  nn.adamw @p, %g, %lr, %lr, %s beta1 = 0.9 beta2 = 0.95 eps = 1.0e-08 "
      "weight_decay = 0.1 : " +
      p + "\n  return\n}\n");
  ASSERT_TRUE(module);
  auto op = cast<CostOpInterface>(only<AdamWOp>(*module).getOperation());
  EXPECT_EQ(op.getFlops(), 16 * r * c);
  EXPECT_EQ(op.getBytesRead(), 4 * r * c + 8 + 8 + 8 + 3 * 4 * r * c);
  EXPECT_EQ(op.getBytesWritten(), 3 * 4 * r * c);
}

/// Every op of @train_step and @optimizer_step built by --nn-autodiff states
/// a cost, except the parameter reads and the returns.
TEST_F(NNGradCostTest, EveryBuiltOpHasACost) {
  auto module = parse(R"mlir(
module attributes {nn.train = {lr = 1.0e-03 : f64, warmup_steps = 2 : i64, decay = "cosine", decay_steps = 10 : i64, min_lr = 1.0e-04 : f64, beta1 = 0.9 : f64, beta2 = 0.95 : f64, eps = 1.0e-08 : f64, weight_decay = 0.1 : f64, grad_clip = 1.0 : f64}} {
  nn.parameter @wte : tensor<32x16xf32> <{init = "normal", std = 2.0e-02 : f64}>
  nn.parameter @g : tensor<16xf32> <{init = "ones"}>
  nn.parameter @b : tensor<16xf32> <{init = "zeros"}>
  nn.parameter @w : tensor<16x48xf32> <{init = "normal", std = 2.0e-02 : f64}>
  func.func @forward(%ids: tensor<2x8xi32>, %t: tensor<2x8xi32>) -> tensor<f32> {
    %wte = nn.param @wte : tensor<32x16xf32>
    %g = nn.param @g : tensor<16xf32>
    %b = nn.param @b : tensor<16xf32>
    %w = nn.param @w : tensor<16x48xf32>
    %x = nn.embedding %wte, %ids : (tensor<32x16xf32>, tensor<2x8xi32>) -> tensor<2x8x16xf32>
    %n = nn.layernorm %x, %g, %b eps = 1.0e-05 : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
    %qkv = nn.matmul %n, %w : (tensor<2x8x16xf32>, tensor<16x48xf32>) -> tensor<2x8x48xf32>
    %q = nn.slice %qkv axis = 2 offset = 0 size = 16 : (tensor<2x8x48xf32>) -> tensor<2x8x16xf32>
    %k = nn.slice %qkv axis = 2 offset = 16 size = 16 : (tensor<2x8x48xf32>) -> tensor<2x8x16xf32>
    %v = nn.slice %qkv axis = 2 offset = 32 size = 16 : (tensor<2x8x48xf32>) -> tensor<2x8x16xf32>
    %o = nn.attention %q, %k, %v heads = 2 kv_heads = 2 causal scale = 0.25 : (tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
    %a = nn.gelu %o : tensor<2x8x16xf32>
    %r = nn.add %x, %a : (tensor<2x8x16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
    %l = nn.matmul %r, %wte transpose_rhs : (tensor<2x8x16xf32>, tensor<32x16xf32>) -> tensor<2x8x32xf32>
    %loss = nn.cross_entropy %l, %t : (tensor<2x8x32xf32>, tensor<2x8xi32>) -> tensor<f32>
    return %loss : tensor<f32>
  }
}
)mlir");
  ASSERT_TRUE(module);
  PassManager pm(&context);
  pm.addPass(pipec::createNNAutodiffPass());
  ASSERT_TRUE(succeeded(pm.run(*module))) << diagnostics;
  int64_t costed = 0, backwardFlops = 0;
  for (StringRef name : {"train_step", "optimizer_step"}) {
    auto fn = module->lookupSymbol<func::FuncOp>(name);
    ASSERT_TRUE(fn);
    fn.walk([&](Operation *op) {
      if (isa<func::FuncOp, func::ReturnOp, ParamOp>(op))
        return;
      auto cost = dyn_cast<CostOpInterface>(op);
      EXPECT_TRUE(cost) << op->getName().getStringRef().str() << " has no cost";
      if (!cost)
        return;
      ++costed;
      auto role = op->getAttrOfType<StringAttr>("nn.role");
      if (role && role.getValue() != "F")
        backwardFlops += cost.getFlops();
    });
  }
  EXPECT_GT(costed, 20);
  EXPECT_GT(backwardFlops, 0);
}

} // namespace
