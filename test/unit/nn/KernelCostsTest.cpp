//===- KernelCostsTest.cpp - the floor of a kernel.call -------*- C++ -*-===//
//
// compiler/analysis/KernelCosts.h against the same figures written out by
// hand: a matmul's 2 m k n, causal attention's pairs, bytes by storage
// type (bf16 counts 2), parameter state read and written, an embedding's
// gathered rows only.
//
//===----------------------------------------------------------------------===//

#include "compiler/analysis/KernelCosts.h"

#include "dialects/kernel/KernelDialect.h"
#include "dialects/kernel/KernelOps.h"
#include "test/unit/nn/NNParseFixture.h"

#include <gtest/gtest.h>

#include <vector>

using namespace mlir;

namespace {

class KernelCostsTest : public pipec::nn::testing::NNParseFixture {
protected:
  KernelCostsTest() : NNParseFixture(20261207) {
    context.loadDialect<pipec::kernel::KernelDialect>();
  }
  std::vector<pipec::kernel::CallOp> calls(ModuleOp m) {
    std::vector<pipec::kernel::CallOp> out;
    m.walk([&](pipec::kernel::CallOp c) { out.push_back(c); });
    return out;
  }
};

TEST_F(KernelCostsTest, CausalPairsAreTheLowerTriangle) {
  EXPECT_EQ(pipec::attentionPairs(5, 5, true), 15.0);
  EXPECT_EQ(pipec::attentionPairs(5, 5, false), 25.0);
  // Queries aligned to the last keys: query t sees t + 3 + 1 keys.
  EXPECT_EQ(pipec::attentionPairs(2, 5, true), 4.0 + 5.0);
  for (int i = 0; i < 20; ++i) {
    int64_t t = dim(1, 300);
    EXPECT_EQ(pipec::attentionPairs(t, t, true), double(t * (t + 1) / 2));
  }
}

TEST_F(KernelCostsTest, MatmulAttentionAndStateAsWrittenByHand) {
  const int64_t m = dim(3, 40), k = dim(3, 40), n = dim(3, 40);
  const int64_t b = 2, t = dim(2, 30), h = 3, d = 8;
  auto ty = [](std::vector<int64_t> shape, const char *e) {
    std::string s = "tensor<";
    for (int64_t x : shape)
      s += std::to_string(x) + "x";
    return s + e + ">";
  };
  std::string src =
      "module {\n"
      "  nn.parameter @w : " + ty({k, n}, "f32") + " <{init = \"zeros\"}>\n"
      "  nn.parameter @emb : tensor<1000x" + std::to_string(k) + "xf32> <{init = \"zeros\"}>\n"
      "  func.func @f(%x: " + ty({m, k}, "bf16") + ", %w: " + ty({k, n}, "bf16") +
      ", %dy: " + ty({m, n}, "bf16") + ", %q: " + ty({b, t, h * d}, "bf16") +
      ", %ids: " + ty({m}, "i32") + ", %e: " + ty({1000, k}, "bf16") + ") {\n"
      "    %y = kernel.call \"matmul_forward\"(%x, %w) ints [" +
      std::to_string(m) + ", " + std::to_string(k) + ", " + std::to_string(n) +
      ", 0] reals [] state [] from \"nn.matmul\" : (" + ty({m, k}, "bf16") +
      ", " + ty({k, n}, "bf16") + ") -> " + ty({m, n}, "bf16") + "\n"
      "    kernel.call \"matmul_backward_w\"(%x, %dy) ints [" +
      std::to_string(m) + ", " + std::to_string(k) + ", " + std::to_string(n) +
      ", 0] reals [] state [\"acc:0:w\"] from \"nn.matmul_grad_w\" : (" +
      ty({m, k}, "bf16") + ", " + ty({m, n}, "bf16") + ") -> ()\n"
      "    %o, %l = kernel.call \"attention_forward\"(%q, %q, %q) ints [" +
      std::to_string(b) + ", " + std::to_string(t) + ", " + std::to_string(t) +
      ", 3, 3, 8, 1] reals [0.25] state [] from \"nn.attention_train\" : (" +
      ty({b, t, h * d}, "bf16") + ", " + ty({b, t, h * d}, "bf16") + ", " +
      ty({b, t, h * d}, "bf16") + ") -> (" + ty({b, t, h * d}, "bf16") + ", " +
      ty({b, h, t}, "f32") + ")\n"
      "    %g = kernel.call \"embedding_forward\"(%e, %ids) ints [" +
      std::to_string(m) + ", 1000, " + std::to_string(k) +
      "] reals [] state [] from \"nn.embedding\" : (" + ty({1000, k}, "bf16") +
      ", " + ty({m}, "i32") + ") -> " + ty({m, k}, "bf16") + "\n"
      "    return\n  }\n}\n";
  auto module = parse(src);
  ASSERT_TRUE(module);
  std::vector<pipec::kernel::CallOp> c = calls(*module);
  ASSERT_EQ(c.size(), 4u);

  pipec::KernelCost mm = pipec::kernelCallCost(c[0]);
  EXPECT_EQ(mm.flops, 2.0 * m * k * n);
  EXPECT_EQ(mm.bytes, 2.0 * (m * k + k * n + m * n));

  // W: x and dy in bf16, the fp32 accumulator read and written.
  pipec::KernelCost w = pipec::kernelCallCost(c[1]);
  EXPECT_EQ(w.flops, 2.0 * m * k * n);
  EXPECT_EQ(w.bytes, 2.0 * (m * k + m * n) + 2.0 * 4 * k * n);

  pipec::KernelCost att = pipec::kernelCallCost(c[2]);
  EXPECT_EQ(att.flops, 4.0 * b * h * d * double(t * (t + 1) / 2));
  EXPECT_EQ(att.bytes, 4.0 * 2 * b * t * h * d + 4.0 * b * h * t);

  // The table's gathered rows, not the table.
  pipec::KernelCost emb = pipec::kernelCallCost(c[3]);
  EXPECT_EQ(emb.flops, 0.0);
  EXPECT_EQ(emb.bytes, 2.0 * 2 * m * k + 4.0 * m);
}

TEST_F(KernelCostsTest, TiledAttentionCountsAsAttention) {
  // The cuda lowering's flash_attention_* (FlashAttention.cuh): the same
  // work as attention_*, the backward's row-dot scratch among its bytes.
  const int64_t t = dim(65, 200);
  std::string q = "tensor<1x" + std::to_string(t) + "x128xbf16>";
  std::string src =
      "module {\n  func.func @f(%q: " + q + ", %dy: " + q +
      ", %lse: tensor<1x2x" + std::to_string(t) + "xf32>) {\n"
      "    %dq, %dk, %dv, %d = kernel.call \"flash_attention_backward_b\"("
      "%dy, %q, %q, %q, %q, %lse) ints [1, " + std::to_string(t) + ", " +
      std::to_string(t) + ", 2, 2, 64, 1] reals [0.125] state [] from "
      "\"nn.attention_grad\" : (" + q + ", " + q + ", " + q + ", " + q + ", " +
      q + ", tensor<1x2x" + std::to_string(t) + "xf32>) -> (" + q + ", " + q +
      ", " + q + ", tensor<" + std::to_string(2 * t) + "xf32>)\n"
      "    return\n  }\n}\n";
  auto module = parse(src);
  ASSERT_TRUE(module);
  std::vector<pipec::kernel::CallOp> c = calls(*module);
  ASSERT_EQ(c.size(), 1u);
  pipec::KernelCost bwd = pipec::kernelCallCost(c[0]);
  EXPECT_EQ(bwd.flops, 10.0 * 2 * 64 * double(t * (t + 1) / 2));
  EXPECT_EQ(bwd.bytes, 8.0 * t * 128 * 2 + 4.0 * 2 * t + 4.0 * 2 * t);
}

} // namespace
