//===- EmitLoopsSupport.h - string building for the loop printers -*- C++ -*-===//
//
// Internal to EmitLoops*.cpp: concatenation of printable pieces and the
// braced block a printed kernel lives in.
//
//===----------------------------------------------------------------------===//
#ifndef PIPEC_COMPILER_EMIT_EMITLOOPSSUPPORT_H
#define PIPEC_COMPILER_EMIT_EMITLOOPSSUPPORT_H

#include "compiler/emit/EmitLoops.h"

#include "llvm/Support/raw_ostream.h"

#include <string>

namespace pipec::emit::loops {

/// The concatenation of the printed pieces (strings, StringRefs, integers).
template <typename... Ts> std::string cat(const Ts &...pieces) {
  std::string s;
  llvm::raw_string_ostream os(s);
  (os << ... << pieces);
  return s;
}

/// Element operations above which a loop gets its own parallel region.
constexpr int64_t kParallelWork = 32768;

/// Work weight of an element that calls a transcendental function.
constexpr int64_t kTranscendentalWork = 8;

} // namespace pipec::emit::loops

#endif // PIPEC_COMPILER_EMIT_EMITLOOPSSUPPORT_H
