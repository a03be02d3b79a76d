//===- StreamBuilder.cpp - streams from instructions and buffer uses ------===//

#include "pipert/StreamBuilder.h"

#include <unordered_map>

namespace pipert {

void appendWithUses(Stream &stream, const std::vector<Instr> &instrs,
                    const std::vector<std::vector<BufferUse>> &uses,
                    const std::vector<std::vector<Part>> &parts) {
  const int32_t base = int32_t(stream.instrs.size());
  // Start from each buffer's last write in the step: reads before the first
  // write of the step then expect the previous step's.
  std::unordered_map<int64_t, int32_t> last;
  for (size_t i = 0; i < instrs.size(); ++i)
    for (const BufferUse &u : uses[i])
      if (u.write)
        last[u.buffer] = base + int32_t(i);
  std::vector<Access> acc;
  for (size_t i = 0; i < instrs.size(); ++i) {
    const Instr &in = instrs[i];
    bool recv = in.op == Opcode::RecvAct || in.op == Opcode::RecvGrad;
    acc.clear();
    for (const BufferUse &u : uses[i]) {
      if (recv && u.write)
        continue;
      Access a{u.offset, u.bytes, kHostWriter, u.write};
      if (!u.write) {
        auto it = last.find(u.buffer);
        a.writer = it == last.end() ? kHostWriter : it->second;
      }
      acc.push_back(a);
    }
    for (const BufferUse &u : uses[i])
      if (u.write)
        last[u.buffer] = base + int32_t(i);
    if (i < parts.size())
      stream.append(in, acc, parts[i]);
    else
      stream.append(in, acc);
  }
}

} // namespace pipert
