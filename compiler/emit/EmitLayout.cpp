//===- EmitLayout.cpp - arenas of a compiled plan, per rank ---------------===//

#include "compiler/emit/EmitLayout.h"

#include "dialects/kernel/KernelOps.h"

#include "dialects/nn/NNGradOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinTypes.h"

using namespace mlir;
using namespace pipec;
using namespace pipec::emit;

/// The learning-rate schedule of @optimizer_step (its lr_schedule call:
/// ints warmup, decay steps, cosine; reals lr, min lr).
static bool readLrSchedule(ModuleOp module, PlanLayout &L,
                           std::string &error) {
  auto opt = module.lookupSymbol<func::FuncOp>("optimizer_step");
  if (opt)
    for (auto call : opt.getBody().front().getOps<kernel::CallOp>())
      if (call.getKernel() == "lr_schedule" && call.getInts().size() == 3 &&
          call.getReals().size() == 2) {
        L.lr.lr = call.getReals()[0];
        L.lr.minLr = call.getReals()[1];
        L.lr.warmupSteps = call.getInts()[0];
        L.lr.decaySteps = call.getInts()[1];
        L.lr.cosine = call.getInts()[2] != 0;
        return true;
      }
  error = "@optimizer_step has no lr_schedule kernel call";
  return false;
}

LogicalResult pipec::emit::buildPlanLayout(ModuleOp module, PlanLayout &L) {
  L.module = module;
  for (Operation &op : module.getBody()->getOperations()) {
    if (auto s = dyn_cast<pipe::ScheduleOp>(op)) {
      L.schedule = s;
    } else if (auto p = dyn_cast<pipe::ProgramOp>(op)) {
      L.programs.push_back(p);
    } else if (auto g = dyn_cast<pipe::GroupOp>(op)) {
      if (auto param = g->getAttrOfType<StringAttr>("pipe.param"))
        L.groupParam[g.getSymName().str()] = param.getValue().str();
    }
  }
  if (!L.schedule || L.programs.empty())
    return module.emitError("the module has no pipe.schedule and "
                            "pipe.program (run --pipe-partition and "
                            "--pipe-schedule)");
  int32_t stages = int32_t(L.schedule.getStages());
  if (int32_t(L.programs.size()) != stages)
    return L.schedule.emitError("the module has ")
           << L.programs.size() << " pipe.program ops for " << stages
           << " ranks";
  L.chunksPerRank = int32_t(L.schedule.getChunksPerRank());
  std::string error;
  if (!layout::buildValueLayout(module, stages,
                                int32_t(L.schedule.getMicrobatches()), L,
                                error))
    return module.emitError(error);
  L.replicas = int32_t(L.schedule.getReplicas());
  if (L.replicas > 1) {
    // The cuda target's data-parallel collectives are the transports'
    // (cuda-local sums and copies in host staging, nccl by its exact
    // collectives); its ZeRO-1 optimizer is EmitCudaZero.h's.
    for (size_t r = 0; r < L.ranks.size(); ++r)
      if (!L.ranks[r].sharedAccumulator.empty())
        return L.schedule.emitError("replicas = ")
               << L.replicas << ": rank " << r << " has an accumulator two "
               << "chunks write, " << L.ranks[r].sharedAccumulator
               << ", so no chunk's gradients are one range to all-reduce";
  }
  for (auto p : module.getOps<nn::ParameterOp>())
    if (!p.getTensorType().getElementType().isF32())
      return p.emitError("parameter '")
             << p.getSymName() << "': the plan needs f32 parameters";
  if (!readLrSchedule(module, L, error))
    return module.emitError(error);
  if (failed(readMemoryPlan(L)))
    return failure();
  fillManifest(L);
  return success();
}
