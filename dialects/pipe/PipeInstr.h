//===- PipeInstr.h - instructions of a pipe.program table -------*- C++ -*-===//
//
// A program's stream is a flat int32 table, kInstrFields entries per
// instruction, so that a 96-rank, 512-micro-batch schedule is a few
// megabytes of integers rather than hundreds of thousands of ops.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_DIALECTS_PIPE_PIPEINSTR_H
#define PIPEC_DIALECTS_PIPE_PIPEINSTR_H

#include "pipert/PlanAbi.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>

namespace pipec::pipe {

/// Opcodes of a program's instructions: the plan ABI's (PlanAbi.h); the
/// values are stored in tables.
using InstrOp = pipert::Opcode;
/// One past the largest opcode.
constexpr int32_t kNumInstrOps = pipert::kOpcodeCount;
/// Table entries per instruction: opcode, peer, symbol, mb, request.
constexpr size_t kInstrFields = 5;
/// The value of a field an opcode does not use.
constexpr int32_t kNoField = -1;

/// The mnemonic of an opcode ("fwd", "recv_act", "all_reduce", ...).
llvm::StringRef instrOpName(InstrOp op);
/// Parses a mnemonic; std::nullopt for an unknown one.
std::optional<InstrOp> parseInstrOp(llvm::StringRef name);

/// True for fwd, bwd_b and bwd_w.
inline bool isComputeOp(InstrOp op) {
  return op == InstrOp::Fwd || op == InstrOp::BwdB || op == InstrOp::BwdW;
}
/// True for the asynchronous posts (recv_act, recv_grad, send_act, send_grad).
inline bool isPostOp(InstrOp op) {
  return op >= InstrOp::RecvAct && op <= InstrOp::SendGrad;
}
/// True for recv_act and recv_grad.
inline bool isRecvOp(InstrOp op) {
  return op == InstrOp::RecvAct || op == InstrOp::RecvGrad;
}

/// Which fields an opcode uses; the others must hold kNoField.
struct InstrFields {
  bool peer, sym, mb, req;
};
InstrFields fieldsOf(InstrOp op);

/// One decoded instruction. `sym` indexes the program's symbols: a chunk for
/// compute and posts, a group for all_reduce. `mb` is the micro-batch, or
/// the bucket of an all_reduce.
struct Instr {
  InstrOp op;
  int32_t peer = kNoField, sym = kNoField, mb = kNoField, req = kNoField;

  /// Decodes kInstrFields table entries; an opcode out of range decodes
  /// to one that names no instruction (the verifier reports the table's).
  static Instr decode(llvm::ArrayRef<int32_t> fields) {
    InstrOp op = fields[0] >= 0 && fields[0] < kNumInstrOps
                     ? static_cast<InstrOp>(fields[0])
                     : static_cast<InstrOp>(0xff);
    return Instr{op, fields[1], fields[2], fields[3], fields[4]};
  }
  /// Appends the encoded instruction to a table.
  template <typename Vec> void encode(Vec &table) const {
    table.append({static_cast<int32_t>(op), peer, sym, mb, req});
  }
};

} // namespace pipec::pipe

#endif // PIPEC_DIALECTS_PIPE_PIPEINSTR_H
