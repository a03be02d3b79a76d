//===- NNParseFixture.h - parse nn modules in a unit test -------*- C++ -*-===//
//
// The fixture both nn cost tests share: a context with the nn and func
// dialects, diagnostics collected for failure messages, and a seeded
// generator for random shapes.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_TEST_UNIT_NN_NNPARSEFIXTURE_H
#define PIPEC_TEST_UNIT_NN_NNPARSEFIXTURE_H

#include "dialects/nn/NNDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>

namespace pipec::nn::testing {

class NNParseFixture : public ::testing::Test {
protected:
  explicit NNParseFixture(uint64_t seed) : rng(seed) {
    context.loadDialect<NNDialect, mlir::func::FuncDialect>();
    handler = std::make_unique<mlir::ScopedDiagnosticHandler>(
        &context, [this](mlir::Diagnostic &diag) {
          diagnostics += diag.str() + "\n";
          return mlir::success();
        });
  }

  /// Parses `source`; fails the test with the diagnostics when it does not
  /// parse and verify.
  mlir::OwningOpRef<mlir::ModuleOp> parse(const std::string &source) {
    auto module = mlir::parseSourceString<mlir::ModuleOp>(
        source, mlir::ParserConfig(&context));
    EXPECT_TRUE(module) << diagnostics << "in:\n" << source;
    return module;
  }

  /// The only op of type OpTy in `module`.
  template <typename OpTy> OpTy only(mlir::ModuleOp module) {
    OpTy found;
    int count = 0;
    module.walk([&](OpTy op) {
      found = op;
      ++count;
    });
    EXPECT_EQ(count, 1);
    return found;
  }

  /// A dimension in [lo, hi] from the test's fixed-seed generator.
  int64_t dim(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  }

  mlir::MLIRContext context;
  std::unique_ptr<mlir::ScopedDiagnosticHandler> handler;
  std::string diagnostics;
  std::mt19937_64 rng;
};

} // namespace pipec::nn::testing

#endif // PIPEC_TEST_UNIT_NN_NNPARSEFIXTURE_H
