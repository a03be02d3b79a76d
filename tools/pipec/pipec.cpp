//===- pipec.cpp - the pipec driver -----------------------------*- C++ -*-===//
//
// `pipec SUBCOMMAND ...`: import, stats, schedule, plan, compile,
// reference-train. Each subcommand is one file in this folder.
//
//===----------------------------------------------------------------------===//

#include "tools/pipec/StrictFlags.h"
#include "tools/pipec/Subcommand.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

#include <algorithm>

using namespace pipec::tool;

std::vector<std::string> &pipec::tool::flagErrors() {
  static std::vector<std::string> all;
  return all;
}

std::vector<Subcommand> &pipec::tool::subcommands() {
  static std::vector<Subcommand> all;
  return all;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  // The LLVM libraries pipec links register hundreds of code-generation
  // options at top level, none of them pipec's: hidden, so that `pipec
  // --help` lists the subcommands (each subcommand's --help its options).
  static llvm::cl::OptionCategory none("pipec has no top-level options");
  llvm::cl::HideUnrelatedOptions(none);
  llvm::cl::ParseCommandLineOptions(
      argc, argv,
      "pipec: compiles model descriptions into static pipeline-parallel "
      "training programs\n\n"
      "  Run `pipec SUBCOMMAND --help` for the options of one subcommand.\n");
  if (!flagErrors().empty()) {
    for (const std::string &e : flagErrors())
      llvm::errs() << "pipec: error: " << e << "\n";
    return 1;
  }
  for (Subcommand &s : subcommands())
    if (*s.sub)
      return s.run();
  llvm::errs() << "pipec: no subcommand given; subcommands:\n";
  size_t width = 0;
  for (Subcommand &s : subcommands())
    width = std::max(width, s.sub->getName().size());
  for (Subcommand &s : subcommands())
    llvm::errs() << "  " << llvm::left_justify(s.sub->getName(), width)
                 << "  " << s.sub->getDescription() << "\n";
  return 2;
}
