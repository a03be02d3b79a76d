//===- Search.cpp - pipec-sim --search: the best plans for a cluster ------===//

#include "Search.h"

#include "PlanFiles.h"
#include "compiler/cluster/FsdpTp.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>

namespace pipec::sim {

namespace {

using json = nlohmann::json;
namespace cl = pipec::cluster;

/// What the search reads of the model file's config.
struct ModelShape {
  int64_t batch = 0, seq = 0, layers = 0, hidden = 0;
};

std::string readShape(const std::string &path, ModelShape &out) {
  std::ifstream f(path);
  json j = json::parse(f, nullptr, /*allow_exceptions=*/false);
  if (!f || j.is_discarded() || !j.is_object() || !j.contains("config") ||
      !j["config"].is_object())
    return path + ": --search reads the model's config (batch, seq, n_layer, "
                  "d_model: docs/MODEL_FORMAT.md)";
  const json &c = j["config"];
  int64_t *fields[] = {&out.batch, &out.seq, &out.layers, &out.hidden};
  const char *names[] = {"batch", "seq", "n_layer", "d_model"};
  for (int i = 0; i < 4; ++i) {
    if (!c.contains(names[i]) || !c[names[i]].is_number_integer() ||
        c[names[i]].get<int64_t>() < 1)
      return path + ": --search needs config." + names[i] +
             " (a positive whole number)";
    *fields[i] = c[names[i]].get<int64_t>();
  }
  return "";
}

/// pipec's own message from a failed compile: its first error line.
std::string firstError(const std::string &why) {
  size_t at = why.find("error: ");
  if (at == std::string::npos) {
    // No message of pipec's (a crash, a signal): its whole output, short.
    std::string all = why;
    std::replace(all.begin(), all.end(), '\n', ' ');
    return all.substr(0, 300);
  }
  at += 7;
  std::string line = why.substr(at, why.find('\n', at) - at);
  // Name memory refusals (the partitioner's, the memory plan's) by their
  // kind only: their ranks and bytes differ from plan to plan.
  if (line.find("memory cap") != std::string::npos)
    return "no plan fits the GPU's memory";
  return line;
}

struct Candidate {
  int32_t stages = 0;
  int64_t replicas = 0;
  int32_t microbatches = 0;
  std::string kind;
  ClusterReplay replay;
  /// Tokens/s at the band's corners (compute, network each 0.8 or 1.2).
  std::array<double, 4> corner{};
  double low() const { return *std::min_element(corner.begin(), corner.end()); }
  double high() const {
    return *std::max_element(corner.begin(), corner.end());
  }
};

/// The whole model's work per sequence, from a one-stage plan of one
/// micro-batch (no memory cap: it only counts).
std::string modelWork(const char *argv0, const SearchRequest &q,
                      const ModelShape &shape, cl::ModelWork &out) {
  TempPlan plan;
  if (std::string why = compileModel(
          argv0, q.model,
          {"--target", "cuda", "--stages", "1", "--microbatches", "1",
           "--schedule", "gpipe", "--memory-cap", "none"},
          plan);
      !why.empty())
    return why;
  std::ifstream f(plan.dir + "/work.json");
  json j = json::parse(f, nullptr, /*allow_exceptions=*/false);
  pipert::Manifest m;
  if (pipert::Status st =
          pipert::readManifestFile(plan.dir + "/manifest.json", m);
      !st.ok())
    return st.message();
  if (j.is_discarded() || !j.contains("chunks") || j["chunks"].size() != 1)
    return plan.dir + "/work.json: not one chunk's work";
  const double perSeq = 1.0 / double(shape.batch);
  plan::Work &w = out.perSequence;
  for (const char *phase : {"F", "B", "W"}) {
    const json &p = j["chunks"][0][phase];
    w.gemmFlops += p["gemm_flops"].get<double>() * perSeq;
    w.gemmBytes += p["gemm_bytes"].get<double>() * perSeq;
    w.attentionFlops += p["attention_flops"].get<double>() * perSeq;
    w.attentionBytes += p["attention_bytes"].get<double>() * perSeq;
    w.otherFlops += p["other_flops"].get<double>() * perSeq;
    w.otherBytes += p["other_bytes"].get<double>() * perSeq;
    w.kernels += p["kernels"].get<int64_t>();
  }
  out.paramBytes = j["optimizer"][0]["param_bytes"].get<double>();
  out.copyBytes = j["optimizer"][0]["copy_bytes"].get<double>();
  out.layers = int32_t(shape.layers);
  out.seq = shape.seq;
  out.hidden = shape.hidden;
  out.flopsPerSequence = double(m.trainFlopsPerMicrobatch) * perSeq;
  return "";
}

std::string gb(double bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", bytes / 1e9);
  return buf;
}

} // namespace

int runSearch(const char *argv0, const SearchRequest &q) {
  auto fail = [](const std::string &why) {
    std::fprintf(stderr, "pipec-sim: error: %s\n", why.c_str());
    return 1;
  };
  ModelShape shape;
  if (std::string why = readShape(q.model, shape); !why.empty())
    return fail(why);
  const cl::Cluster &c = q.run.cluster;
  if (q.gpus > c.gpus)
    return fail("--search " + std::to_string(q.gpus) + ": " + c.name +
                " has " + std::to_string(c.gpus) + " GPUs");
  const int64_t sequences =
      int64_t(std::floor(q.globalBatchTokens / double(shape.seq)));
  if (sequences < shape.batch)
    return fail("--global-batch " + std::to_string(int64_t(q.globalBatchTokens)) +
                " tokens is less than one micro-batch (" +
                std::to_string(shape.batch * shape.seq) + " tokens)");
  const std::string memoryCap = std::to_string(c.gpu.memoryBytes);
  const bool capGiven =
      std::find(q.compileArgs.begin(), q.compileArgs.end(), "--memory-cap") !=
      q.compileArgs.end();
  // The band's corners: compute and networks each 20% worse or better.
  const std::array<cl::Cluster, 4> corners = {
      cl::varied(c, 0.8, 0.8), cl::varied(c, 0.8, 1.2),
      cl::varied(c, 1.2, 0.8), cl::varied(c, 1.2, 1.2)};

  std::vector<Candidate> found;
  std::map<std::string, int> refused;
  int compiled = 0;
  for (int64_t S = 1; S <= std::min<int64_t>(256, q.gpus); ++S) {
    if (q.gpus % S != 0)
      continue;
    const int64_t D = q.gpus / S;
    const int64_t MAll = sequences / (D * shape.batch);
    if (MAll < 1) {
      ++refused["the global batch holds no micro-batch a replica"];
      continue;
    }
    for (const char *kind : {"1f1b", "zb-h1", "zb-v", "interleaved-1f1b"}) {
      if (S == 1 && std::string(kind) != "1f1b")
        continue; // one stage: every kind is the same plan
      // Interleaved 1F1B runs the micro-batches in rounds of S.
      int64_t M = MAll;
      if (std::string(kind) == "interleaved-1f1b")
        M -= M % S;
      if (M < 1) {
        ++refused["interleaved-1f1b: fewer micro-batches a replica than "
                  "stages"];
        continue;
      }
      std::vector<std::string> args = q.compileArgs;
      for (const std::string &a :
           {std::string("--target"), std::string("cuda"),
            std::string("--stages"), std::to_string(S),
            std::string("--microbatches"), std::to_string(M),
            std::string("--schedule"), std::string(S == 1 ? "gpipe" : kind)})
        args.push_back(a);
      if (!capGiven) {
        args.push_back("--memory-cap");
        args.push_back(memoryCap);
      }
      TempPlan plan;
      ++compiled;
      if (std::string why = compileModel(argv0, q.model, args, plan);
          !why.empty()) {
        ++refused[firstError(why)];
        continue;
      }
      Candidate cand{int32_t(S), D, int32_t(M), kind, {}, {}};
      ClusterRun run = q.run;
      run.replicas = D;
      if (std::string why = replayOnCluster(plan.dir, run, cand.replay);
          !why.empty()) {
        ++refused[why.substr(0, why.find('\n'))];
        continue;
      }
      for (size_t k = 0; k < corners.size(); ++k) {
        ClusterReplay varied;
        run.cluster = corners[k];
        if (replayOnCluster(plan.dir, run, varied).empty())
          cand.corner[k] = varied.tokensPerSec;
      }
      std::fprintf(stderr,
                   "search: %lld stages x %lld replicas, M = %lld, %s: %.4g "
                   "s a step, %.4g tokens/s\n",
                   (long long)S, (long long)D, (long long)M, kind,
                   cand.replay.stepTime, cand.replay.tokensPerSec);
      found.push_back(std::move(cand));
    }
  }
  std::sort(found.begin(), found.end(),
            [](const Candidate &a, const Candidate &b) {
              return a.replay.tokensPerSec > b.replay.tokensPerSec;
            });

  // JAX's strategy on the same model, cluster and batch.
  cl::ModelWork work;
  cl::FsdpTpResult jax;
  std::array<cl::FsdpTpResult, 4> jaxCorner;
  std::string jaxWhy;
  if (std::string why = modelWork(argv0, q, shape, work); !why.empty()) {
    jaxWhy = firstError(why);
  } else {
    jax = cl::bestFsdpTp(c, work, q.gpus, double(sequences));
    for (size_t k = 0; k < corners.size(); ++k)
      jaxCorner[k] =
          cl::bestFsdpTp(corners[k], work, q.gpus, double(sequences));
    if (!jax.fits)
      jaxWhy = jax.why;
  }
  auto jaxTokens = [&](const cl::FsdpTpResult &r) {
    return r.fits ? r.sequences * double(shape.seq) / r.stepTime : 0.0;
  };
  // Per corner: JAX's tokens/s and pipec's best over it; their range.
  double jaxLow = 0, jaxHigh = 0, ratioLow = 0, ratioHigh = 0;
  for (size_t k = 0; k < corners.size(); ++k) {
    const double t = jaxTokens(jaxCorner[k]);
    jaxLow = k == 0 ? t : std::min(jaxLow, t);
    jaxHigh = k == 0 ? t : std::max(jaxHigh, t);
    const double ratio = !found.empty() && t > 0 ? found[0].corner[k] / t : 0;
    ratioLow = k == 0 ? ratio : std::min(ratioLow, ratio);
    ratioHigh = k == 0 ? ratio : std::max(ratioHigh, ratio);
  }

  if (q.json) {
    json out = {{"model", q.model},
                {"cluster", c.name},
                {"gpus", q.gpus},
                {"global_batch_tokens", q.globalBatchTokens},
                {"sequences", sequences},
                {"compiled", compiled}};
    json plans = json::array();
    for (size_t i = 0; i < found.size() && i < size_t(q.top); ++i) {
      const Candidate &p = found[i];
      plans.push_back({{"stages", p.stages},
                       {"replicas", p.replicas},
                       {"microbatches", p.microbatches},
                       {"schedule", p.kind},
                       {"step_time_s", p.replay.stepTime},
                       {"tokens_per_s", p.replay.tokensPerSec},
                       {"tokens_per_step", p.replay.tokensPerStep},
                       {"mfu", p.replay.mfu},
                       {"bubble", p.replay.bubble},
                       {"peak_bytes", p.replay.peakBytes},
                       {"tokens_per_s_band", {p.low(), p.high()}}});
    }
    out["plans"] = plans;
    json why = json::object();
    for (const auto &[reason, n] : refused)
      why[reason] = n;
    out["refused"] = why;
    // Every degree the model tried, for the comparison's sensitivity to
    // the tensor-parallel degree (whose narrow GEMMs the model does not
    // slow down).
    json degrees = json::array();
    if (work.layers > 0)
      for (int32_t t : cl::tensorParallelDegrees(c)) {
        const cl::FsdpTpResult r =
            cl::fsdpTpStep(c, work, q.gpus, t, double(sequences));
        degrees.push_back({{"tp", t},
                           {"fits", r.fits},
                           {"tokens_per_s", jaxTokens(r)},
                           {"step_time_s", r.stepTime}});
      }
    if (jax.fits) {
      out["fsdp_tp"] = {{"tp", jax.tp},
                        {"fsdp", jax.fsdp},
                        {"sequences_per_group", jax.sequencesPerGroup},
                        {"tokens_per_step", jax.sequences * double(shape.seq)},
                        {"recompute", jax.recompute},
                        {"step_time_s", jax.stepTime},
                        {"compute_s", jax.compute},
                        {"tensor_parallel_s", jax.tensorParallel},
                        {"fsdp_s", jax.fsdpComm},
                        {"tokens_per_s", jaxTokens(jax)},
                        {"mfu", jax.mfu},
                        {"memory_bytes", jax.memoryBytes},
                        {"tokens_per_s_band", {jaxLow, jaxHigh}},
                        {"degrees", degrees}};
      if (!found.empty()) {
        out["ratio"] = found[0].replay.tokensPerSec / jaxTokens(jax);
        out["ratio_band"] = {ratioLow, ratioHigh};
      }
    } else {
      out["fsdp_tp"] = {{"fits", false}, {"why", jaxWhy}};
    }
    std::printf("%s\n", out.dump(1).c_str());
    return found.empty() ? 1 : 0;
  }

  std::printf("search: %s on %s, %lld GPUs, global batch up to %.0f "
              "tokens (%lld sequences of %lld): %d plans compiled, %zu "
              "replayed\n",
              q.model.c_str(), c.name.c_str(), (long long)q.gpus,
              q.globalBatchTokens, (long long)sequences,
              (long long)shape.seq, compiled, found.size());
  for (const auto &[reason, n] : refused)
    std::printf("  refused %d: %s\n", n, reason.c_str());
  if (found.empty()) {
    std::printf("no plan fits\n");
    return 1;
  }
  std::printf("best plans (by tokens/s; the band: compute and networks "
              "each 20%% worse or better):\n");
  for (size_t i = 0; i < found.size() && i < size_t(q.top); ++i) {
    const Candidate &p = found[i];
    std::printf("  %zu. %d stages x %lld replicas, M = %d, %s: step %.4g "
                "s, %.4g tokens/s [%.4g, %.4g], MFU %.1f%%, bubble %.3f, "
                "peak %s GB, %.4g tokens a step\n",
                i + 1, p.stages, (long long)p.replicas, p.microbatches,
                p.kind.c_str(), p.replay.stepTime, p.replay.tokensPerSec,
                p.low(), p.high(), 100 * p.replay.mfu,
                p.replay.bubble, gb(double(p.replay.peakBytes)).c_str(),
                p.replay.tokensPerStep);
  }
  if (!jax.fits) {
    std::printf("JAX's strategy (FSDP + tensor parallelism, a model): does "
                "not fit: %s\n",
                jaxWhy.c_str());
    return 0;
  }
  std::printf("JAX's strategy (FSDP + tensor parallelism in the NVLink "
              "domain, a model): TP %d x FSDP %lld, %.0f sequences a "
              "group%s: step %.4g s (compute %.4g, TP %.4g, FSDP %.4g), "
              "%.4g tokens/s [%.4g, %.4g], MFU %.1f%%, %s GB a GPU\n",
              jax.tp, (long long)jax.fsdp, jax.sequencesPerGroup,
              jax.recompute ? ", full recomputation" : "", jax.stepTime,
              jax.compute, jax.tensorParallel, jax.fsdpComm, jaxTokens(jax),
              jaxLow, jaxHigh, 100 * jax.mfu,
              gb(jax.memoryBytes).c_str());
  std::printf("pipec's best / JAX's strategy: %.3gx tokens/s (%.3gx to "
              "%.3gx over the band's corners)\n",
              found[0].replay.tokensPerSec / jaxTokens(jax), ratioLow,
              ratioHigh);
  return 0;
}

} // namespace pipec::sim
