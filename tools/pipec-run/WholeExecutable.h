//===- WholeExecutable.h - is the plan's executable all there -*- C++ -*-===//
//
// pipec-run replaces itself with the plan's executable (OUT/pipec-plan).
// One cut short (a copy that stopped, a full disk) would crash in the
// loader or at its first page fault with no word; the ELF headers say how
// long the file must be (its segments and the section table at its end),
// so a truncated one is named before it runs. Edited bytes are the plan
// identity's business (the executable compares its manifest and streams).
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_TOOLS_PIPEC_RUN_WHOLEEXECUTABLE_H
#define PIPEC_TOOLS_PIPEC_RUN_WHOLEEXECUTABLE_H

#include <string>

namespace pipecrun {

/// Empty when `path` is a 64-bit ELF file at least as long as its headers
/// say; else what is wrong ("... is cut short: ...").
std::string checkWholeExecutable(const std::string &path);

} // namespace pipecrun

#endif // PIPEC_TOOLS_PIPEC_RUN_WHOLEEXECUTABLE_H
