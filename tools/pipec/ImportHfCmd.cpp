//===- ImportHfCmd.cpp - `pipec import-hf`: config.json -> model JSON -----===//
//
// A Hugging Face config.json of the GPT-2 or Llama family becomes a pipec
// model description with transformers' parameter names
// (compiler/import/HfConfig.h), verified by importing it before it is
// written; docs/HUGGINGFACE.md.
//
//===----------------------------------------------------------------------===//

#include "compiler/import/HfConfig.h"
#include "compiler/import/JsonImporter.h"
#include "tools/pipec/StrictFlags.h"
#include "tools/pipec/Subcommand.h"

#include "pipert/AtomicFile.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;
using namespace pipec::tool;

static cl::SubCommand importHfCmd(
    "import-hf",
    "Turn a Hugging Face config.json (GPT2LMHeadModel, LlamaForCausalLM) "
    "into a pipec model description with transformers' parameter names, so "
    "that its model.safetensors loads with pipec-run --init");

static cl::opt<std::string> configFile(cl::Positional, cl::Required,
                                       cl::desc("<config.json>"),
                                       cl::sub(importHfCmd));
static cl::opt<std::string>
    outFile("o", cl::desc("write the model description to FILE (default: "
                          "standard output)"),
            cl::value_desc("MODEL.json"), cl::init("-"), cl::sub(importHfCmd));
static StrictInt<int64_t, 1, (int64_t(1) << 31)>
    batchOpt("batch", 4, cl::desc("micro-batch rows (default 4)"),
             cl::sub(importHfCmd));
static StrictInt<int64_t, 1, (int64_t(1) << 31)> seqOpt(
    "seq", 0,
    cl::desc("tokens per row (default: the model's context, at most 1024)"),
    cl::sub(importHfCmd));
static cl::opt<std::string>
    nameOpt("name",
            cl::desc("the model's name (default: the family and its sizes, "
                     "e.g. gpt2_l12_d768)"),
            cl::init(""), cl::sub(importHfCmd));
static cl::opt<bool> dropDropoutOpt(
    "drop-dropout",
    cl::desc("train without the dropout the config asks for (pipec applies "
             "none; without this flag a dropout above 0 is refused)"),
    cl::init(false), cl::sub(importHfCmd));

static int runImportHf() {
  const char *me = "pipec import-hf: error: ";
  auto buffer = MemoryBuffer::getFileOrSTDIN(configFile, /*IsText=*/true);
  if (!buffer) {
    errs() << me << configFile << ": cannot read the file: "
           << buffer.getError().message() << "\n";
    return 1;
  }
  pipec::HfImportOptions options;
  options.batch = batchOpt;
  options.seq = seqOpt.getNumOccurrences() ? int64_t(seqOpt) : 0;
  options.name = nameOpt;
  options.dropDropout = dropDropoutOpt;
  pipec::HfImportResult result;
  if (std::string err = pipec::importHfConfig((*buffer)->getBuffer().str(),
                                              options, result);
      !err.empty()) {
    errs() << me << configFile << ": " << err << "\n";
    return 1;
  }
  // The description must import as it is: a model pipec cannot build is
  // never written.
  mlir::MLIRContext ctx;
  if (!pipec::importModel(ctx, result.modelJson, "<import-hf>", errs())) {
    errs() << me << configFile
           << ": the model description made from it does not import "
              "(above): a size past the model format's limits "
              "(docs/MODEL_FORMAT.md: 2^40 elements a tensor, 2^60 FLOPs a "
              "micro-batch), or else a pipec bug to report with the "
              "config\n";
    return 1;
  }
  if (!result.ignored.empty()) {
    errs() << "pipec import-hf: " << configFile << ": " << result.family
           << "; fields that do not change the model, ignored:";
    for (const std::string &f : result.ignored)
      errs() << " " << f;
    errs() << "\n";
  }
  if (outFile == "-") {
    outs() << result.modelJson;
    return 0;
  }
  if (pipert::Status st =
          pipert::writeFileAtomically(outFile, result.modelJson);
      !st.ok()) {
    errs() << me << "-o " << outFile << ": " << st.message() << "\n";
    return 1;
  }
  return 0;
}

static RegisterSubcommand registerImportHf(importHfCmd, runImportHf);
