//===- StreamBuilder.h - streams from instructions and buffer uses -*- C++ -*-===//
//
// What the compiler's stream writer calls once the memory plan is known:
// each instruction with the planned buffers it reads and writes, from which
// the accesses and their expected writers follow by program order (the last
// earlier write of the same buffer in the step; for a buffer read before
// its first write, the last write of the previous step; else the host).
// Buffers are named by the planner's id, not by their offset, because two
// values with disjoint lifetimes share bytes: that is what lets the shadow
// mode catch a plan that overlaps live ones.
//
//===----------------------------------------------------------------------===//
#ifndef PIPERT_STREAMBUILDER_H
#define PIPERT_STREAMBUILDER_H

#include "pipert/Stream.h"

#include <cstdint>
#include <vector>

namespace pipert {

/// One use of a planned buffer by an instruction.
struct BufferUse {
  int64_t buffer = 0; ///< the planner's id of the value
  int64_t offset = 0, bytes = 0;
  bool write = false;
};

/// Appends `instrs` to `stream` with accesses derived from `uses`
/// (uses[i] belongs to instrs[i]). A recv post's write of its message
/// buffer is listed in its uses (it defines the buffer's writer) but not
/// stored as an access: the transport performs it at the wait. `parts`
/// (empty, or parts[i] for instrs[i]): the parts of ZeRO's collectives.
void appendWithUses(Stream &stream, const std::vector<Instr> &instrs,
                    const std::vector<std::vector<BufferUse>> &uses,
                    const std::vector<std::vector<Part>> &parts = {});

} // namespace pipert

#endif // PIPERT_STREAMBUILDER_H
