//===- Subcommand.h - how pipec's subcommands register ----------*- C++ -*-===//
//
// Each subcommand lives in its own file: it declares a static
// llvm::cl::SubCommand with its options (so `pipec NAME --help` explains
// them) and registers the function that runs it.
//
//===----------------------------------------------------------------------===//

#ifndef PIPEC_TOOLS_PIPEC_SUBCOMMAND_H
#define PIPEC_TOOLS_PIPEC_SUBCOMMAND_H

#include "llvm/Support/CommandLine.h"

#include <vector>

namespace pipec::tool {

/// A subcommand and its entry point; the entry point returns the exit code.
struct Subcommand {
  llvm::cl::SubCommand *sub;
  int (*run)();
};

/// Every registered subcommand, in registration order.
std::vector<Subcommand> &subcommands();

/// Registers a subcommand from a static object in the subcommand's file.
struct RegisterSubcommand {
  RegisterSubcommand(llvm::cl::SubCommand &sub, int (*run)()) {
    subcommands().push_back({&sub, run});
  }
};

} // namespace pipec::tool

#endif // PIPEC_TOOLS_PIPEC_SUBCOMMAND_H
