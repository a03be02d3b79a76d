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

bool pipec::emit::buildPlanLayout(ModuleOp module, PlanLayout &L,
                                  std::string &error) {
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
  if (!L.schedule || L.programs.empty()) {
    error = "the module has no pipe.schedule and pipe.program "
            "(run --pipe-partition and --pipe-schedule)";
    return false;
  }
  int32_t stages = int32_t(L.schedule.getStages());
  if (int32_t(L.programs.size()) != stages) {
    error = "the module has " + std::to_string(L.programs.size()) +
            " pipe.program ops for " + std::to_string(stages) + " ranks";
    return false;
  }
  L.chunksPerRank = int32_t(L.schedule.getChunksPerRank());
  if (!layout::buildValueLayout(module, stages,
                                int32_t(L.schedule.getMicrobatches()), L,
                                error))
    return false;
  for (auto p : module.getOps<nn::ParameterOp>())
    if (!p.getTensorType().getElementType().isF32()) {
      error = "parameter '" + p.getSymName().str() +
              "': the cpu target needs f32 parameters";
      return false;
    }
  if (!readLrSchedule(module, L, error) || !readMemoryPlan(L, error))
    return false;
  fillManifest(L);
  return true;
}
