//===- WholeExecutable.cpp - is the plan's executable all there ------------===//

#include "tools/pipec-run/WholeExecutable.h"

#include <elf.h>

#include <cstring>
#include <fstream>
#include <vector>

namespace pipecrun {

std::string checkWholeExecutable(const std::string &path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in)
    return path + ": cannot read it";
  const uint64_t size = uint64_t(in.tellg());
  Elf64_Ehdr eh;
  in.seekg(0);
  if (size < sizeof eh || !in.read(reinterpret_cast<char *>(&eh), sizeof eh) ||
      std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
      eh.e_ident[EI_CLASS] != ELFCLASS64)
    return path + ": not an executable of this machine (no 64-bit ELF "
                  "header); compile the plan again";
  const std::string cut = path + ": the file is cut short (" +
                          std::to_string(size) + " bytes, ";
  auto past = [&](uint64_t offset, uint64_t bytes) {
    return offset > size || bytes > size - offset;
  };
  if (eh.e_shnum && past(eh.e_shoff, uint64_t(eh.e_shnum) * eh.e_shentsize))
    return cut + "its section table ends at byte " +
           std::to_string(eh.e_shoff + uint64_t(eh.e_shnum) * eh.e_shentsize) +
           "); compile the plan again";
  if (eh.e_phentsize != sizeof(Elf64_Phdr) ||
      past(eh.e_phoff, uint64_t(eh.e_phnum) * sizeof(Elf64_Phdr)))
    return cut + "its program headers do not fit); compile the plan again";
  std::vector<Elf64_Phdr> ph(eh.e_phnum);
  in.seekg(std::streamoff(eh.e_phoff));
  if (!in.read(reinterpret_cast<char *>(ph.data()),
               std::streamsize(ph.size() * sizeof(Elf64_Phdr))))
    return path + ": cannot read its program headers";
  for (const Elf64_Phdr &p : ph)
    if (p.p_type == PT_LOAD && past(p.p_offset, p.p_filesz))
      return cut + "a segment ends at byte " +
             std::to_string(p.p_offset + p.p_filesz) +
             "); compile the plan again";
  return "";
}

} // namespace pipecrun
