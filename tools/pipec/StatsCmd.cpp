//===- StatsCmd.cpp - `pipec stats`: size, FLOPs and activations ----------===//
//
// Reads the numbers from the imported module: parameters from nn.parameter,
// FLOPs and saved activation bytes from each op's CostOpInterface, and the
// layer an op belongs to from its JSON location (the repeat iteration).
//
//===----------------------------------------------------------------------===//

#include "compiler/analysis/ModelCosts.h"
#include "compiler/import/JsonImporter.h"
#include "dialects/nn/NNModelAttrs.h"
#include "dialects/nn/NNOps.h"
#include "tools/pipec/Subcommand.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;
using namespace mlir;

static cl::SubCommand
    statsCmd("stats",
             "Print a model's parameter count, FLOPs per token (forward and "
             "training step) and activation memory per layer");

static cl::opt<std::string> inputFile(cl::Positional, cl::Required,
                                      cl::desc("<MODEL.json>"),
                                      cl::sub(statsCmd));
static cl::opt<bool> asJson("json",
                            cl::desc("Print the numbers as one JSON object"),
                            cl::sub(statsCmd));

/// 124439808 -> "124,439,808".
static std::string withCommas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return (n < 0 ? "-" : "") + out;
}

static int runStats() {
  MLIRContext ctx;
  OwningOpRef<ModuleOp> module = pipec::importModelFile(ctx, inputFile, errs());
  if (!module)
    return 1;

  int64_t params = 0;
  for (auto p : module->getOps<pipec::nn::ParameterOp>())
    params += p.getTensorType().getNumElements();

  auto forward = module->lookupSymbol<func::FuncOp>("forward");
  int64_t flops = 0, tokens = 0, outside = 0, total = 0;
  // Saved activation bytes per iteration of each top-level repeat block.
  llvm::StringMap<SmallVector<int64_t>> byName;
  SmallVector<std::string> blockOrder;
  forward.walk([&](Operation *op) {
    if (auto ce = dyn_cast<pipec::nn::CrossEntropyOp>(op))
      tokens =
          cast<RankedTensorType>(ce.getTargets().getType()).getNumElements();
    auto cost = dyn_cast<pipec::nn::CostOpInterface>(op);
    if (!cost)
      return;
    int64_t saved = cost.getSavedActivationBytes();
    total += saved;
    std::optional<pipec::JsonOrigin> origin =
        pipec::getJsonOrigin(op->getLoc());
    if (!origin || !origin->iteration) {
      outside += saved;
      return;
    }
    auto [it, inserted] = byName.try_emplace(origin->topLevel);
    if (inserted)
      blockOrder.push_back(origin->topLevel);
    SmallVector<int64_t> &per = it->second;
    if (per.size() <= static_cast<size_t>(*origin->iteration))
      per.resize(*origin->iteration + 1, 0);
    per[*origin->iteration] += saved;
  });
  flops = pipec::forwardFlops(forward);
  if (tokens == 0) {
    errs() << inputFile << ": error: the model has no cross_entropy op, so "
           << "tokens per micro-batch are unknown\n";
    return 1;
  }
  // FLOPs per token: the micro-batch's FLOPs over its tokens, rounded.
  int64_t fwdPerToken = (flops + tokens / 2) / tokens;
  int64_t trainPerToken = (pipec::kTrainStepFlopsPerForward * flops + tokens / 2) / tokens;

  if (asJson) {
    json::OStream j(outs(), 2);
    j.object([&] {
      j.attribute("model", module->getName().value_or(""));
      j.attribute("parameters", params);
      j.attribute("tokens_per_microbatch", tokens);
      j.attribute("forward_flops_per_microbatch", flops);
      j.attribute("forward_flops_per_token", fwdPerToken);
      j.attribute("train_step_flops_per_token", trainPerToken);
      j.attributeObject("activation_bytes_per_microbatch", [&] {
        j.attributeArray("repeat_blocks", [&] {
          for (const std::string &name : blockOrder)
            j.object([&] {
              j.attribute("block", name);
              j.attributeArray("per_iteration", [&] {
                for (int64_t b : byName[name])
                  j.value(b);
              });
            });
        });
        j.attribute("outside_repeat_blocks", outside);
        j.attribute("total", total);
      });
    });
    outs() << "\n";
    return 0;
  }

  raw_ostream &os = outs();
  os << "model " << module->getName().value_or("") << "\n";
  os << "parameters:                    " << withCommas(params) << "\n";
  os << "tokens per micro-batch:        " << withCommas(tokens) << "\n";
  os << "forward FLOPs per token:       " << withCommas(fwdPerToken) << "\n";
  os << "training-step FLOPs per token: " << withCommas(trainPerToken)
     << "  (forward + backward, backward counted as 2x forward)\n";
  os << "activation bytes kept for backward, per micro-batch:\n";
  for (const std::string &name : blockOrder) {
    ArrayRef<int64_t> per = byName[name];
    int64_t sum = 0;
    for (int64_t b : per)
      sum += b;
    bool uniform = llvm::all_equal(per);
    os << "  " << name << " (repeat, " << per.size() << " layers): ";
    if (uniform)
      os << withCommas(per.front()) << " per layer, ";
    os << withCommas(sum) << " in all\n";
    if (!uniform)
      for (auto [i, b] : llvm::enumerate(per))
        os << "    layer " << i << ": " << withCommas(b) << "\n";
  }
  os << "  outside repeat blocks: " << withCommas(outside) << "\n";
  os << "  total: " << withCommas(total) << "\n";
  return 0;
}

static pipec::tool::RegisterSubcommand registerStats(statsCmd, runStats);
