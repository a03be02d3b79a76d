//===- NNCostTest.cpp - nn cost interface against hand formulas -*- C++ -*-===//
//
// Each test parses a small nn function with shapes drawn from a seeded
// generator, then checks the CostOpInterface numbers against the formulas of
// NNCost.cpp written out again by hand, so a change of either side shows.
//
//===----------------------------------------------------------------------===//

#include "dialects/nn/NNDialect.h"
#include "dialects/nn/NNOps.h"
#include "test/unit/nn/NNParseFixture.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

using namespace mlir;
using namespace pipec::nn;

namespace {

/// Parses nn modules and collects the diagnostics they produce.
class NNCostTest : public pipec::nn::testing::NNParseFixture {
protected:
  NNCostTest() : NNParseFixture(20251125) {}
};

/// `tensor<AxBxf32>` from a shape.
std::string tensor(std::initializer_list<int64_t> shape,
                   const std::string &elementType = "f32") {
  std::string s = "tensor<";
  for (int64_t d : shape)
    s += std::to_string(d) + "x";
  return s + elementType + ">";
}

TEST_F(NNCostTest, MatmulCountsTwoFlopsPerMultiplyAdd) {
  for (int trial = 0; trial < 5; ++trial) {
    int64_t b = dim(1, 8), t = dim(1, 64), k = dim(1, 256), n = dim(1, 256);
    std::string x = tensor({b, t, k}), w = tensor({k, n}), bias = tensor({n}),
                y = tensor({b, t, n});
    auto module =
        parse("func.func @f(%x: " + x + ", %w: " + w + ", %b: " + bias +
              ") -> " + y + " {\n  %y = nn.matmul %x, %w, %b : (" + x + ", " +
              w + ", " + bias + ") -> " + y + "\n  return %y : " + y + "\n}\n");
    ASSERT_TRUE(module);
    auto cost = cast<CostOpInterface>(only<MatmulOp>(*module).getOperation());
    int64_t m = b * t;
    EXPECT_EQ(cost.getFlops(), 2 * m * k * n + m * n);
    EXPECT_EQ(cost.getBytesRead(), 4 * (m * k + k * n + n));
    EXPECT_EQ(cost.getBytesWritten(), 4 * m * n);
    // x and w are function arguments here, so both are activations.
    EXPECT_EQ(cost.getSavedActivationBytes(), 4 * (m * k + k * n));
  }
}

TEST_F(NNCostTest, TransposedMatmulOfAParameterSavesOnlyItsInput) {
  int64_t b = dim(1, 8), t = dim(1, 64), d = dim(1, 128), v = dim(1, 512);
  std::string x = tensor({b, t, d}, "bf16"), w = tensor({v, d}, "bf16"),
              y = tensor({b, t, v}, "bf16");
  auto module = parse("nn.parameter @wte : " + w +
                      " <{init = \"normal\", std = 2.0e-02 : f64}>\n"
                      "func.func @f(%x: " +
                      x + ") -> " + y + " {\n  %w = nn.param @wte : " + w +
                      "\n  %y = nn.matmul %x, %w transpose_rhs : (" + x + ", " +
                      w + ") -> " + y + "\n  return %y : " + y + "\n}\n");
  ASSERT_TRUE(module);
  auto cost = cast<CostOpInterface>(only<MatmulOp>(*module).getOperation());
  EXPECT_EQ(cost.getFlops(), 2 * b * t * d * v);
  EXPECT_EQ(cost.getBytesRead(), 2 * (b * t * d + v * d));
  // The weight is resident all step; only x (bf16) is an activation.
  EXPECT_EQ(cost.getSavedActivationBytes(), 2 * b * t * d);
}

TEST_F(NNCostTest, CausalGroupedQueryAttentionByHand) {
  // B = 2, T = S = 8, Hq = 4, Hkv = 2, Dh = 16, causal: 36 scored pairs per
  // head, each 4 * 16 + 5 = 69 flops, plus 8 * 16 divisions per head:
  // 2 * 4 * (36 * 69 + 128) = 20896.
  std::string q = tensor({2, 8, 64}), kv = tensor({2, 8, 32});
  auto module = parse("func.func @f(%q: " + q + ", %k: " + kv + ", %v: " + kv +
                      ") -> " + q +
                      " {\n  %o = nn.attention %q, %k, %v heads = 4 "
                      "kv_heads = 2 causal scale = 0.25 : (" +
                      q + ", " + kv + ", " + kv + ") -> " + q +
                      "\n  return %o : " + q + "\n}\n");
  ASSERT_TRUE(module);
  auto cost = cast<CostOpInterface>(only<AttentionOp>(*module).getOperation());
  EXPECT_EQ(cost.getFlops(), 20896);
  EXPECT_EQ(cost.getBytesRead(), 4 * (1024 + 512 + 512));
  EXPECT_EQ(cost.getBytesWritten(), 4 * 1024);
  // q, k, v, the output, and the f32 log-sum-exp of 2 * 4 * 8 rows.
  EXPECT_EQ(cost.getSavedActivationBytes(),
            4 * (1024 + 512 + 512 + 1024) + 4 * 64);
}

TEST_F(NNCostTest, NonCausalAttentionScoresEveryPair) {
  for (int trial = 0; trial < 5; ++trial) {
    int64_t kvHeads = dim(1, 4), group = dim(1, 4), heads = kvHeads * group;
    int64_t headDim = 2 * dim(1, 32), b = dim(1, 4), t = dim(1, 32),
            s = dim(1, 32);
    std::string q = tensor({b, t, heads * headDim}),
                kv = tensor({b, s, kvHeads * headDim});
    auto module = parse(
        "func.func @f(%q: " + q + ", %k: " + kv + ", %v: " + kv + ") -> " + q +
        " {\n  %o = nn.attention %q, %k, %v heads = " + std::to_string(heads) +
        " kv_heads = " + std::to_string(kvHeads) + " scale = 0.125 : (" + q +
        ", " + kv + ", " + kv + ") -> " + q + "\n  return %o : " + q + "\n}\n");
    ASSERT_TRUE(module);
    auto cost =
        cast<CostOpInterface>(only<AttentionOp>(*module).getOperation());
    int64_t qk = 2 * b * heads * t * s * headDim; // q . k per pair
    int64_t pv = 2 * b * heads * t * s * headDim; // p * v accumulation
    int64_t softmax = 5 * b * heads * t * s;
    int64_t normalise = b * heads * t * headDim;
    EXPECT_EQ(cost.getFlops(), qk + pv + softmax + normalise);
  }
}

TEST_F(NNCostTest, CrossEntropyKeepsOneProbabilityBuffer) {
  for (std::string type : {"f32", "bf16"}) {
    int64_t b = dim(1, 8), t = dim(1, 64), v = dim(2, 1000);
    int64_t size = type == "f32" ? 4 : 2;
    std::string logits = tensor({b, t, v}, type), ids = tensor({b, t}, "i32");
    auto module =
        parse("func.func @f(%l: " + logits + ", %t: " + ids +
              ") -> tensor<f32> {\n  %loss = nn.cross_entropy %l, %t : (" +
              logits + ", " + ids +
              ") -> tensor<f32>\n  return %loss : "
              "tensor<f32>\n}\n");
    ASSERT_TRUE(module);
    auto cost =
        cast<CostOpInterface>(only<CrossEntropyOp>(*module).getOperation());
    EXPECT_EQ(cost.getFlops(), 5 * b * t * v + 3 * b * t);
    EXPECT_EQ(cost.getBytesRead(), size * b * t * v + 4 * b * t);
    EXPECT_EQ(cost.getBytesWritten(), 4 + size * b * t * v);
    // One B*T*V probability buffer plus the i32 targets.
    EXPECT_EQ(cost.getSavedActivationBytes(), size * b * t * v + 4 * b * t);
  }
}

TEST_F(NNCostTest, NormsKeepTheirInputAndRowStatistics) {
  int64_t b = dim(1, 8), t = dim(1, 64), d = dim(1, 256);
  std::string x = tensor({b, t, d}), g = tensor({d});
  auto module = parse(
      "func.func @f(%x: " + x + ", %g: " + g + ") -> " + x +
      " {\n  %l = nn.layernorm %x, %g, %g eps = 1.0e-05 : (" + x + ", " + g +
      ", " + g + ") -> " + x + "\n  %r = nn.rmsnorm %l, %g eps = 1.0e-05 : (" +
      x + ", " + g + ") -> " + x + "\n  return %r : " + x + "\n}\n");
  ASSERT_TRUE(module);
  auto ln = cast<CostOpInterface>(only<LayerNormOp>(*module).getOperation());
  auto rms = cast<CostOpInterface>(only<RMSNormOp>(*module).getOperation());
  int64_t n = b * t * d, rows = b * t;
  EXPECT_EQ(ln.getFlops(), 8 * n);
  EXPECT_EQ(ln.getSavedActivationBytes(), 4 * n + 2 * 4 * rows);
  EXPECT_EQ(rms.getFlops(), 4 * n);
  EXPECT_EQ(rms.getSavedActivationBytes(), 4 * n + 4 * rows);
}

TEST_F(NNCostTest, GathersAndViewsMoveOnlyWhatTheyKeep) {
  int64_t b = dim(1, 8), t = dim(1, 32), v = dim(64, 512), d = dim(1, 64);
  std::string table = tensor({v, d}), ids = tensor({b, t}, "i32"),
              h = tensor({b, t, d}), flat = tensor({b * t, d});
  auto module = parse("func.func @f(%w: " + table + ", %ids: " + ids + ") -> " +
                      flat + " {\n  %h = nn.embedding %w, %ids : (" + table +
                      ", " + ids + ") -> " + h + "\n  %f = nn.reshape %h : (" +
                      h + ") -> " + flat + "\n  return %f : " + flat + "\n}\n");
  ASSERT_TRUE(module);
  auto emb = cast<CostOpInterface>(only<EmbeddingOp>(*module).getOperation());
  auto view = cast<CostOpInterface>(only<ReshapeOp>(*module).getOperation());
  // The gather reads the ids and one row per id, not the whole table.
  EXPECT_EQ(emb.getBytesRead(), 4 * b * t + 4 * b * t * d);
  EXPECT_EQ(emb.getSavedActivationBytes(), 4 * b * t);
  EXPECT_EQ(view.getBytesRead() + view.getBytesWritten(), 0);
}

TEST_F(NNCostTest, EveryComputeOpStatesItsCost) {
  auto module = parse(R"mlir(
func.func @f(%x: tensor<2x8x64xf32>, %g: tensor<64xf32>) -> tensor<2x8x64xf32> {
  %r = nn.rope %x heads = 4 theta = 1.0e+04 : (tensor<2x8x64xf32>) -> tensor<2x8x64xf32>
  %s = nn.silu %r : tensor<2x8x64xf32>
  %m = nn.softmax %s : tensor<2x8x64xf32>
  %t = nn.transpose %m perm = [1, 0, 2] : (tensor<2x8x64xf32>) -> tensor<8x2x64xf32>
  %c = nn.slice %t axis = 0 offset = 0 size = 2 : (tensor<8x2x64xf32>) -> tensor<2x2x64xf32>
  %a = nn.add %x, %g : (tensor<2x8x64xf32>, tensor<64xf32>) -> tensor<2x8x64xf32>
  return %a : tensor<2x8x64xf32>
}
)mlir");
  ASSERT_TRUE(module);
  int computeOps = 0;
  module->walk([&](Operation *op) {
    if (op->getDialect()->getNamespace() != "nn")
      return;
    ++computeOps;
    EXPECT_TRUE(isa<CostOpInterface>(op)) << op->getName().getStringRef().str();
  });
  EXPECT_EQ(computeOps, 6);
  auto rope = cast<CostOpInterface>(only<RopeOp>(*module).getOperation());
  EXPECT_EQ(rope.getFlops(), 3 * 1024);
  EXPECT_EQ(rope.getSavedActivationBytes(), 0);
  auto softmax = cast<CostOpInterface>(only<SoftmaxOp>(*module).getOperation());
  EXPECT_EQ(softmax.getFlops(), 5 * 1024);
  EXPECT_EQ(softmax.getSavedActivationBytes(), 4 * 1024);
  auto slice = cast<CostOpInterface>(only<SliceOp>(*module).getOperation());
  EXPECT_EQ(slice.getBytesRead(), 4 * 256);
}

TEST_F(NNCostTest, BadShapesAreDiagnosedNotCrashedOn) {
  auto module = parseSourceString<ModuleOp>(R"mlir(
func.func @f(%x: tensor<2x8x64xf32>, %w: tensor<32x96xf32>) -> tensor<2x8x96xf32> {
  %y = nn.matmul %x, %w : (tensor<2x8x64xf32>, tensor<32x96xf32>) -> tensor<2x8x96xf32>
  return %y : tensor<2x8x96xf32>
}
)mlir",
                                            ParserConfig(&context));
  EXPECT_FALSE(module);
  EXPECT_NE(diagnostics.find("rhs contraction dim 32 does not match lhs's last "
                             "dim 64 (lhs [2, 8, 64], rhs [32, 96])"),
            std::string::npos)
      << diagnostics;
}

} // namespace
