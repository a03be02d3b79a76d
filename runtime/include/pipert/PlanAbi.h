//===- PlanAbi.h - the contract between compiled plans and the runtime -*- C++ -*-===//
//
// Defined here once, for the compiler and the runtime alike (DESIGN.md:
// the runtime owns the plan ABI): the instruction opcodes of a rank's
// stream, and the regions of a (chunk, micro-batch) with the names the
// manifest gives their buffers. The schedule generator, the pipe dialect's
// program tables, the value layout, the emitter and the runtime use these
// very enumerators; nothing converts between numberings.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_PLANABI_H
#define PIPERT_PLANABI_H

#include <cstdint>

namespace pipert {

/// Instruction opcodes of a rank's stream. Posts are asynchronous and name
/// a request id; `Wait` blocks on one request (post early, wait late). The
/// values are stored in streams and program tables: new ones go at the end.
enum class Opcode : uint8_t {
  Fwd,
  BwdB,
  BwdW,
  RecvAct,
  RecvGrad,
  SendAct,
  SendGrad,
  Wait,
  AllReduce,
  OptStep,
  /// ZeRO-1 (ZeroShard.h): each member gets the sum over the group of its
  /// own parts of the operand (the others' parts are left as they were).
  ReduceScatter,
  /// ZeRO-1: every member's parts of the operand are copied to the others.
  AllGather
};
/// The cuda target's workspace of a rank: cuBLASLt's (llm.c's size for
/// Hopper), free between GEMMs for the column sums' partials, the embedding
/// gradient's sort and the sums of squares. The memory plan places it in
/// the rank's arena (docs/CUDA.md "One arena a rank"), so the printed
/// peak is all the device memory a rank's data takes.
constexpr int64_t kCudaWorkspaceBytes = int64_t(32) << 20;

/// One past the largest opcode.
constexpr uint8_t kOpcodeCount = 12;

/// The collectives: AllReduce, ReduceScatter, AllGather (chunk = the
/// group, mb = the bucket).
inline bool isCollectiveOp(Opcode op) {
  return op == Opcode::AllReduce || op == Opcode::ReduceScatter ||
         op == Opcode::AllGather;
}

/// The regions of a (chunk, micro-batch), each placed in its own slots
/// (docs/EMIT.md): activations and gradients received and sent, the values
/// F keeps for B and W (with the host inputs), the values B keeps for W.
enum PlanRegion : int { kInAct, kInGrad, kOutAct, kOutGrad, kData, kBData, kRegions };

/// "in_act", "in_grad", ...: the manifest names region k of chunk c and
/// micro-batch j "cC.mbJ.NAME".
inline const char *regionName(int region) {
  static const char *const names[kRegions] = {"in_act",   "in_grad", "out_act",
                                              "out_grad", "data",    "b_data"};
  return region >= 0 && region < kRegions ? names[region] : "?";
}

/// The first argument of every chunk's F, B and W: what the call gets
/// from its target besides the arena. On the cpu target the rank alone
/// (the rank's OpenMP team is set by the executor); the CUDA target's
/// stream and library handles ride behind `target`.
struct KernelContext {
  int32_t rank = 0;
  void *target = nullptr;
};

} // namespace pipert

#endif // PIPERT_PLANABI_H
