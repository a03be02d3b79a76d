//===- Prepare.cpp - what a run checks before its first step --------------===//

#include "runtime/runner/Runner.h"

#include "runtime/runner/PlanKernels.h"
#include "runtime/runner/Tokenizer.h"

#include "pipert/AtomicFile.h"
#include "pipert/CheckpointDir.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

namespace pipecrun {

/// The executable owns its plan (docs/RUNTIME.md): the manifest must be
/// the one compiled into it, the same identity and every field the same
/// (the streams are tied to it by their ids and checksums, Executor::load).
/// "" when it is.
std::string checkOwnManifest(const std::string &dir, const pipert::Manifest &m) {
  std::string exe = dir + "/pipec-plan";
  if (m.planId != pipecPlanCode.planId)
    return dir + "/manifest.json is plan " +
           (m.planId.empty() ? std::string("(none)") : m.planId) +
           ", but this executable was compiled for plan " +
           pipecPlanCode.planId +
           ": the executable and the manifest belong to different plans (run "
           "pipec compile again)";
  pipert::Manifest compiled;
  if (pipert::Status s = pipert::parseManifest(
          pipecPlanCode.manifest, "the executable's manifest", compiled);
      !s.ok())
    return s.message();
  if (std::string d = pipert::firstManifestDifference(m, compiled); !d.empty())
    return dir + "/manifest.json differs from the manifest compiled into "
           "the executable at " + d +
           ": the manifest was edited (run pipec compile again)";
  return "";
}

/// Everything a run checks before its first step; "" when all is well.
std::string prepare(const Args &a, std::unique_ptr<pipert::Executor> &exec,
                    pipert::TokenFile &data, pipert::Batcher &batcher,
                    int32_t onlyRank, int32_t processes) {
  std::string error;
  // The manifest is checked against the executable before any file it
  // names is opened: an edited manifest is refused, never followed.
  pipert::Manifest own;
  if (pipert::Status s =
          pipert::readManifestFile(a.plan + "/manifest.json", own);
      !s.ok())
    return s.message();
  if (std::string e = checkOwnManifest(a.plan, own); !e.empty())
    return e;
  // The shadow mode compares a device's arena, read through the target's
  // copy, around each instruction: only where the host moves the messages
  // and every function waits for its stream is it whole between them.
  if (a.shadow && pipecPlanCode.target && a.transport != "local")
    return std::string("--shadow on a ") + pipecPlanCode.target->name +
           " plan needs --transport local (the host moves the messages and "
           "every function waits for its stream, so the arena is whole "
           "between instructions)";
  // A device target's arenas are its device's memory, which the host
  // reaches through the target's copy (PlanCode.h).
  pipert::ArenaAllocator deviceArenas;
  if (pipecPlanCode.target) {
    deviceArenas.allocate = pipecPlanCode.target->allocateArena;
    deviceArenas.release = pipecPlanCode.target->freeArena;
    deviceArenas.copy = pipecPlanCode.target->copy;
  }
  if (pipert::Status s = pipert::Executor::load(
          a.plan, std::move(own), exec, onlyRank,
          pipecPlanCode.target ? &deviceArenas : nullptr);
      !s.ok())
    return s.message();
  const pipert::Manifest &m = exec->manifest();
  if (processes > 0 && processes != m.ranks)
    return "--transport " + a.transport + ": the plan has " +
           std::to_string(m.ranks) + " ranks but the launcher started " +
           std::to_string(processes) + " processes (run it with " +
           (a.transport == "mpi" ? "mpirun -np " : "a process per rank: ") +
           std::to_string(m.ranks) + ", or pipec-run " + a.plan +
           " --transport " + a.transport + ", which does)";
  if (!pipert::loadTokens(a.data, data, error))
    return "--data " + error;
  // A step consumes the micro-batches of every replica (docs/TRAINING.md).
  if (!pipert::Batcher::create(data, pipecPlanCode.batch, pipecPlanCode.seq,
                               int64_t(m.microbatches) * m.replicas, batcher,
                               error))
    return "--data " + a.data + ": " + error;
  if (pipecPlanCode.vocab > 0)
    if (int64_t i = data.firstOutside(pipecPlanCode.vocab); i >= 0)
      return "--data " + a.data + ": token " + std::to_string(data[i]) + " at position " +
             std::to_string(i) + " is outside the model's vocabulary of " +
             std::to_string(pipecPlanCode.vocab);
  if (!a.init.empty() && !loadInit(*exec, a.init, error))
    return error;
  if (!a.resume.empty()) {
    int64_t step = 0;
    const auto t0 = std::chrono::steady_clock::now();
    std::string from;
    if (!loadState(*exec, a.resume, step, error, &from))
      return "--resume " + error;
    exec->continueAfter(step);
    if (!a.quiet && onlyRank <= 0)
      std::printf("resumed %s after step %lld (loaded and checked in %.2f "
                  "s)\n",
                  from.c_str(), (long long)step,
                  std::chrono::duration<double>(
                      std::chrono::steady_clock::now() - t0)
                      .count());
  }
  if (a.sample > 0) {
    if (pipecPlanCode.target)
      return std::string("--sample: the ") + pipecPlanCode.target->name +
             " target keeps bf16 logits; sampling reads f32 (not yet)";
    if (!pipecPlanCode.chunks[pipecPlanCode.chunkCount - 1].logits)
      return "--sample: the plan's last chunk keeps no f32 [batch * seq, "
             "vocab] logits to sample from";
    if (!a.tokenizer.empty()) {
      // Loaded now (and again by the sampler), so that a tokenizer that
      // cannot serve fails before training rather than after it.
      pipecrun::ByteLevelBpe tokenizer;
      std::vector<int32_t> ids;
      if (!pipecrun::ByteLevelBpe::load(a.tokenizer, tokenizer, error))
        return "--tokenizer " + error;
      if (tokenizer.size() > pipecPlanCode.vocab)
        return "--tokenizer " + a.tokenizer + ": " +
               std::to_string(tokenizer.size()) +
               " tokens, more than the model's vocabulary of " +
               std::to_string(pipecPlanCode.vocab);
      if (!tokenizer.encode(a.prompt, ids, error))
        return "--prompt: " + error;
    } else {
      for (unsigned char ch : a.prompt)
        if (int64_t(ch) >= pipecPlanCode.vocab)
          return "--prompt: byte " + std::to_string(int(ch)) +
                 " is outside the model's vocabulary of " +
                 std::to_string(pipecPlanCode.vocab);
    }
  }
  if (!a.saveHf.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(a.plan + "/hf_config.json", ec))
      return "--save-hf: the plan has no hf_config.json: its model did not "
             "come from pipec import-hf, so there is no transformers config "
             "to write (use --save F)";
    std::filesystem::create_directories(a.saveHf, ec);
    if (ec || !std::filesystem::is_directory(a.saveHf))
      return "--save-hf " + a.saveHf + ": cannot make the directory" +
             (ec ? ": " + ec.message() : std::string());
  }
  for (const auto &[flag, path] :
       {std::pair<std::string, std::string>{"--save", a.save},
        {"--save-state", a.saveState}}) {
    if (path.empty())
      continue;
    std::filesystem::path dir = std::filesystem::path(path).parent_path();
    std::error_code ec;
    if (!dir.empty() && !std::filesystem::is_directory(dir, ec))
      return flag + " " + path + ": directory " + dir.string() +
             " does not exist";
    if (std::filesystem::exists(path, ec) &&
        !std::filesystem::is_regular_file(path, ec))
      return flag + " " + path + ": exists and is not a regular file";
    if (pipert::Status s = pipert::refusePlanFile(path, flag); !s.ok())
      return s.message();
    // Never over what the run reads, nor into a checkpoint.
    for (const auto &[what, input] :
         {std::pair<const char *, std::string>{"--data", a.data},
          {"--init", a.init},
          {"--tokenizer", a.tokenizer}})
      if (!input.empty() && std::filesystem::equivalent(path, input, ec))
        return flag + " " + path + ": is the run's " + what +
               " file; write the result elsewhere";
    if (pipert::insideCheckpoint(path))
      return flag + " " + path +
             ": is inside a checkpoint (only --checkpoint-dir writes "
             "there, and its commit marker lists its parts)";
  }
  if (!a.save.empty() && !a.saveState.empty()) {
    // The same file however named (relative, absolute, through a link),
    // whether or not it exists yet.
    std::error_code e1, e2;
    const auto one = std::filesystem::weakly_canonical(
                   std::filesystem::absolute(a.save, e1), e1),
               two = std::filesystem::weakly_canonical(
                   std::filesystem::absolute(a.saveState, e2), e2);
    if (!e1 && !e2 && one == two)
      return "--save and --save-state name the same file, " + a.save;
  }
  if (!a.checkpointDir.empty()) {
    // Made now, so that a path that cannot hold checkpoints fails before
    // the first step rather than at the first checkpoint.
    std::error_code ec;
    std::filesystem::create_directories(a.checkpointDir, ec);
    if (!std::filesystem::is_directory(a.checkpointDir, ec))
      return "--checkpoint-dir " + a.checkpointDir +
             ": cannot create the directory" +
             (ec ? ": " + ec.message() : std::string(": it is a file"));
    // One run at a time writes a checkpoint directory: two would remove
    // each other's partial checkpoints and commit markers listing parts
    // the other's pruning removed. The process that commits (rank 0's)
    // holds an exclusive lock on DIR/.lock until it exits.
    if (exec->holds(0)) {
      std::string warning;
      if (pipert::Status s = pipert::lockCheckpointDirectory(a.checkpointDir,
                                                             warning);
          !s.ok())
        return "--checkpoint-dir " + s.message();
      if (!warning.empty())
        std::fprintf(stderr, "pipec-run: warning: --checkpoint-dir %s\n",
                     warning.c_str());
    }
    // Checkpoints past this run's start belong to another run: theirs and
    // this run's would mix, --resume DIR would take theirs, and --keep
    // would remove this run's first.
    int64_t newest = pipert::newestCommittedStep(a.checkpointDir);
    if (newest > exec->stepsDone())
      return "--checkpoint-dir " + a.checkpointDir +
             " holds a committed checkpoint of step " +
             std::to_string(newest) + ", past this run's start (step " +
             std::to_string(exec->stepsDone()) +
             "): resume from it, or move it (or the directory) away";
  }
  if (!a.logDir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(a.logDir, ec);
    if (!std::filesystem::is_directory(a.logDir, ec))
      return "--log-dir " + a.logDir + ": cannot create the directory" +
             (ec ? ": " + ec.message() : std::string());
    // What the run writes there at its end is checked now, so that a name
    // taken by a directory does not fail a finished run (and its --save).
    for (const char *name : {"metrics.jsonl", "trace.json",
                             "kernel_times.json", "kernel_profile.json"}) {
      const std::string path = a.logDir + "/" + name;
      if (std::filesystem::exists(path, ec) &&
          !std::filesystem::is_regular_file(path, ec))
        return "--log-dir " + a.logDir + ": " + name +
               " there exists and is not a regular file; the run writes it";
    }
    // Each rank's process id, so that a test (or an operator) can signal
    // or kill exactly one rank's process.
    for (int32_t r = 0; r < exec->manifest().ranks; ++r)
      if (exec->holds(r))
        if (pipert::Status s = pipert::writeFileAtomically(
                a.logDir + "/rank-" + std::to_string(r) + ".pid",
                std::to_string(::getpid()) + "\n");
            !s.ok())
          return "--log-dir " + s.message();
  }
  return "";
}


} // namespace pipecrun
