//===- KernelCosts.cpp - the floor of one kernel.call: FLOPs and bytes ----===//

#include "compiler/analysis/KernelCosts.h"

#include "compiler/analysis/ModelCosts.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"

#include <algorithm>

using namespace mlir;

namespace pipec {

namespace {

double bytesOf(Value v) { return double(valueBytes(v)); }

} // namespace

double attentionPairs(int64_t seqQ, int64_t seqKV, bool causal) {
  if (!causal)
    return double(seqQ) * double(seqKV);
  // Query t sees keys s <= t + (seqKV - seqQ) (runtime/kernels/cpu/Attention.h).
  double pairs = 0;
  for (int64_t t = 0; t < seqQ; ++t)
    pairs += double(std::clamp<int64_t>(t + 1 + seqKV - seqQ, 0, seqKV));
  return pairs;
}

KernelCost kernelCallCost(kernel::CallOp call) {
  KernelCost c;
  StringRef name = call.getKernel();
  ArrayRef<int64_t> ints = call.getInts();
  auto in = call.getInputs();
  auto out = call.getResults();

  // Tensor-core work.
  if (name.starts_with("matmul_") && ints.size() >= 3)
    c.flops = 2.0 * double(ints[0]) * double(ints[1]) * double(ints[2]);
  const bool forward =
      name == "attention_forward" || name == "flash_attention_forward";
  if ((forward || name == "attention_backward_b" ||
       name == "flash_attention_backward_b") &&
      ints.size() >= 7) {
    const double pairs = attentionPairs(ints[1], ints[2], ints[6] != 0);
    const double perPair = forward ? 4.0 : 10.0;
    c.flops = perPair * double(ints[0]) * double(ints[3]) * double(ints[5]) *
              pairs;
  }

  // Bytes: an embedding touches only the rows of its tokens.
  if (name == "embedding_forward" && ints.size() >= 3 && out.size() == 1 &&
      in.size() == 2) {
    c.bytes = 2 * bytesOf(out[0]) + bytesOf(in[1]);
    return c;
  }
  double bytes = 0;
  for (Value v : in)
    bytes += bytesOf(v);
  for (Value v : out)
    bytes += bytesOf(v);
  ModuleOp module = call->getParentOfType<ModuleOp>();
  for (unsigned i = 0; i < call.getState().size(); ++i) {
    kernel::StateRef ref = call.getStateRef(i);
    int64_t master = 0, copy = 0;
    if (!parameterStorage(module, ref.param, master, copy))
      continue;
    if (ref.kind == kernel::StateRef::Copy) {
      bytes += double(copy);
      continue;
    }
    // The embedding's W adds into its tokens' rows of the accumulator.
    if (name == "embedding_backward_w" && ints.size() >= 3 && !in.empty()) {
      bytes += 2 * double(ints[0]) * double(ints[2]) * 4;
      continue;
    }
    bytes += 2 * double(master); // read and written
  }
  c.bytes = bytes;
  return c;
}

} // namespace pipec
