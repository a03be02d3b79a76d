//===- ClusterPricing.cpp - a plan's streams priced on a cluster ----------===//

#include "ClusterPricing.h"
#include "PlanFiles.h"

#include "compiler/schedule/Replicate.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>

namespace pipec::sim {

namespace {

using json = nlohmann::json;
namespace cl = pipec::cluster;

/// work.json's figures of one phase.
plan::Work workOf(const json &j) {
  plan::Work w;
  w.gemmFlops = j.at("gemm_flops").get<double>();
  w.gemmBytes = j.at("gemm_bytes").get<double>();
  w.attentionFlops = j.at("attention_flops").get<double>();
  w.attentionBytes = j.at("attention_bytes").get<double>();
  w.otherFlops = j.at("other_flops").get<double>();
  w.otherBytes = j.at("other_bytes").get<double>();
  w.kernels = j.at("kernels").get<int64_t>();
  return w;
}

cl::CollectiveKind kindOf(schedule::Op op) {
  return op == schedule::Op::ReduceScatter ? cl::CollectiveKind::ReduceScatter
         : op == schedule::Op::AllGather   ? cl::CollectiveKind::AllGather
                                           : cl::CollectiveKind::AllReduce;
}

/// A chunk's messages of one kind: the pipeline ranks of its ends and
/// the largest message (in a pipeline every one is the residual stream).
struct Hop {
  int32_t from = -1, to = -1;
  int64_t bytes = -1;
};

} // namespace

std::string priceOnCluster(const std::string &dir, const pipert::Manifest &m,
                           const std::vector<pipert::Stream> &streams,
                           const ClusterRun &run, schedule::Schedule &s,
                           schedule::Costs &costs, ClusterPriced &priced) {
  const cl::Cluster &c = run.cluster;
  const int32_t S = m.pipelineRanks();
  const int64_t DP = run.replicas > 0 ? run.replicas : m.replicas;
  const int32_t C = int32_t(m.chunkRank.size());
  const int32_t tp = std::max(1, run.tp);
  if (c.domainGpus % tp != 0)
    return "--tp " + std::to_string(tp) + " must divide " + c.name +
           "'s NVLink domain of " + std::to_string(c.domainGpus) + " GPUs";
  priced.gpus = int64_t(S) * DP * tp;
  if (priced.gpus > c.gpus)
    return "the plan needs " + std::to_string(priced.gpus) + " GPUs (" +
           std::to_string(S) + " stages x " + std::to_string(DP) +
           " replicas" + (tp > 1 ? " x " + std::to_string(tp) + " TP" : "") +
           "); " + c.name + " has " + std::to_string(c.gpus);
  // A tp-th of a chunk's work on each of its GPUs (launches not).
  auto split = [tp](const plan::Work &w) { return w.splitBy(1.0 / tp); };

  // F, B, W, the optimizer and the gradients from work.json.
  const std::string path = dir + "/work.json";
  std::ifstream f(path);
  if (!f)
    return path + ": missing (plans compiled before work.json existed: "
                  "compile again)";
  json j = json::parse(f, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || !j.contains("chunks") ||
      !j["chunks"].is_array() || !j.contains("optimizer") ||
      !j["optimizer"].is_array())
    return path + ": not a work.json";
  if (int32_t(j["chunks"].size()) != C ||
      int32_t(j["optimizer"].size()) != S)
    return path + ": " + std::to_string(j["chunks"].size()) + " chunks and " +
           std::to_string(j["optimizer"].size()) +
           " ranks, the manifest has " + std::to_string(C) + " and " +
           std::to_string(S);
  costs = schedule::Costs{};
  costs.f.assign(size_t(C), 0);
  costs.b.assign(size_t(C), 0);
  costs.w.assign(size_t(C), 0);
  std::vector<int64_t> gradientBytes(size_t(C), 0), paramBytes(size_t(S), 0),
      layers(size_t(C), 0);
  try {
    for (int32_t k = 0; k < C; ++k) {
      const json &ch = j["chunks"][size_t(k)];
      costs.f[size_t(k)] = cl::workTime(c.gpu, split(workOf(ch.at("F"))));
      costs.b[size_t(k)] = cl::workTime(c.gpu, split(workOf(ch.at("B"))));
      costs.w[size_t(k)] = cl::workTime(c.gpu, split(workOf(ch.at("W"))));
      gradientBytes[size_t(k)] = ch.at("gradient_bytes").get<int64_t>();
      if (tp > 1)
        layers[size_t(k)] = ch.at("layers").get<int64_t>();
    }
    for (int32_t r = 0; r < S; ++r) {
      const json &o = j["optimizer"][size_t(r)];
      paramBytes[size_t(r)] = o.at("param_bytes").get<int64_t>();
      priced.optimizer = std::max(
          priced.optimizer,
          cl::optimizerTime(c.gpu, double(paramBytes[size_t(r)]) / tp,
                            o.at("copy_bytes").get<double>() / tp,
                            int32_t(std::min<int64_t>(DP, 1 << 30)),
                            m.zero != 0));
    }
  } catch (const json::exception &e) {
    return path + ": " + e.what();
  }
  costs.optStep = priced.optimizer;

  // Bytes of each collective the compiled streams post, by (group,
  // bucket); and each chunk's messages.
  std::map<std::pair<int32_t, int32_t>, int64_t> compiled;
  std::vector<Hop> act(static_cast<size_t>(C)), grad(static_cast<size_t>(C));
  for (const pipert::Stream &st : streams)
    for (const pipert::Instr &in : st.instrs) {
      const bool isAct = in.op == pipert::Opcode::SendAct,
                 isGrad = in.op == pipert::Opcode::SendGrad;
      if ((isAct || isGrad) && in.chunk >= 0 && in.chunk < C) {
        Hop &h = (isAct ? act : grad)[size_t(in.chunk)];
        h.from = st.rank % S;
        h.to = in.peer % S;
        h.bytes = std::max(h.bytes, in.bytes);
      }
      if (pipert::isCollectiveOp(in.op)) {
        int64_t &b = compiled[{in.chunk, in.mb}];
        b = std::max(b, in.bytes);
      }
    }
  // The symmetry mode on a plan of one replica: a second, as the compiler
  // would make it (Replicate.h), for the data-parallel collectives.
  if (DP > 1 && m.replicas == 1) {
    std::vector<uint8_t> reduced(static_cast<size_t>(C));
    for (int32_t k = 0; k < C; ++k)
      reduced[size_t(k)] = gradientBytes[size_t(k)] > 0;
    s = schedule::replicate(s, 2, reduced, m.zero != 0);
  }
  const int32_t D = s.replicas;
  const int32_t G = D > 1 ? (int32_t(s.groups.size()) - S) / D
                          : int32_t(s.groups.size());
  // A collective's bytes: the compiled stream's; for the groups the
  // second replica added, its first replica's, and for the data-parallel
  // buckets the chunk's gradients (ZeRO-1: the norm's partial sums, the
  // stage's parameters).
  auto bytesOf = [&](int32_t g, int32_t bucket, int32_t stage) -> int64_t {
    if (auto it = compiled.find({g, bucket}); it != compiled.end())
      return it->second;
    if (g < D * G) {
      auto it = compiled.find({g % G, bucket});
      return it != compiled.end() ? it->second : 0;
    }
    if (bucket < C)
      return gradientBytes[size_t(bucket)];
    if (bucket == schedule::zeroNormBucket(C))
      return 64;
    return paramBytes[size_t(stage)];
  };

  // Where rank r of the priced job runs (the first GPU of its TP group).
  auto gpu = [&](int64_t rank) {
    return cl::gpuOf(run.placement, S, int32_t(DP), int32_t(rank)) * tp;
  };
  // Tensor parallelism's all-reduces of a micro-batch's activations (the
  // residual stream a chunk sends): two a layer in F, two in B.
  if (tp > 1) {
    // work.json's residual stream; else the largest activation message.
    int64_t activation = j.value("activation_bytes", int64_t(0));
    for (const Hop &h : act)
      if (!j.contains("activation_bytes"))
        activation = std::max(activation, h.bytes);
    const double ar = cl::collectiveTime(c, cl::CollectiveKind::AllReduce, tp,
                                         tp, double(activation));
    for (int32_t k = 0; k < C; ++k) {
      costs.f[size_t(k)] += 2 * double(layers[size_t(k)]) * ar;
      costs.b[size_t(k)] += 2 * double(layers[size_t(k)]) * ar;
    }
  }
  // A chunk's message costs the slowest of its replicas' (their ends sit
  // on other GPUs, maybe across a domain boundary).
  auto price = [&](const std::vector<Hop> &hops, double &slowest) {
    std::vector<double> out(size_t(C), 0);
    for (int32_t k = 0; k < C; ++k) {
      const Hop &h = hops[size_t(k)];
      if (h.bytes < 0)
        continue;
      double t = 0;
      for (int64_t rep = 0; rep < DP; ++rep)
        t = std::max(t, cl::messageTime(c, gpu(rep * S + h.from),
                                        gpu(rep * S + h.to),
                                        double(h.bytes) / tp));
      out[size_t(k)] = t;
      slowest = std::max(slowest, t);
    }
    return out;
  };
  costs.actCommOf = price(act, priced.actMessage);
  costs.gradCommOf = price(grad, priced.gradMessage);
  // Collectives: a data-parallel group (D x G + stage) has the stage's DP
  // ranks; the others keep their members, placed for DP replicas.
  std::map<std::pair<int32_t, int32_t>, cl::CollectiveKind> posted;
  for (const auto &stream : s.streams)
    for (const schedule::Instr &in : stream)
      if (in.op == schedule::Op::AllReduce ||
          in.op == schedule::Op::ReduceScatter ||
          in.op == schedule::Op::AllGather)
        posted[{in.chunk, in.mb}] = kindOf(in.op);
  for (const auto &[key, kind] : posted) {
    const auto [g, bucket] = key;
    if (g < 0 || g >= int32_t(s.groups.size()) || bucket < 0)
      continue;
    std::vector<int64_t> members;
    const bool dataParallel = D > 1 && g >= D * G;
    const int32_t stage = dataParallel ? g - D * G : 0;
    if (dataParallel) {
      for (int64_t rep = 0; rep < DP; ++rep)
        members.push_back(gpu(rep * S + stage));
    } else {
      for (int32_t r : s.groups[size_t(g)])
        members.push_back(gpu(r));
    }
    const double t = cl::collectiveTime(
        c, kind, members, double(bytesOf(g, bucket, stage)) / tp);
    if (costs.collective.size() <= size_t(g))
      costs.collective.resize(size_t(g) + 1);
    auto &row = costs.collective[size_t(g)];
    if (row.size() <= size_t(bucket))
      row.resize(size_t(bucket) + 1, 0.0);
    row[size_t(bucket)] = t;
    if (dataParallel)
      priced.dataParallel = std::max(priced.dataParallel, t);
  }
  for (int32_t r = 0; r < m.ranks; ++r)
    if (m.rankInfo[size_t(r)].peakBytes / tp > c.gpu.memoryBytes) {
      priced.overMemory = r;
      break;
    }
  return "";
}

std::string replayOnCluster(const std::string &dir, const ClusterRun &run,
                            ClusterReplay &out) {
  pipert::Manifest m;
  std::vector<pipert::Stream> streams;
  schedule::Schedule s;
  if (std::string why = loadPlan(dir, m, streams, s); !why.empty())
    return why;
  schedule::Costs costs;
  out = ClusterReplay();
  if (std::string why =
          priceOnCluster(dir, m, streams, run, s, costs, out.priced);
      !why.empty())
    return why;
  const schedule::MachineResult r = schedule::runMachine(s, costs);
  if (r.verdict != schedule::Verdict::Completed)
    return std::string("the streams do not complete: ") +
           schedule::verdictName(r.verdict) + ": " + r.message;
  const double replicas =
      run.replicas > 0 ? double(run.replicas) : double(m.replicas);
  out.stepTime = r.stepTime;
  out.bubble = r.bubbleFraction;
  out.tokensPerStep = double(m.tokensPerMicrobatch) * m.microbatches * replicas;
  out.tokensPerSec = r.stepTime > 0 ? out.tokensPerStep / r.stepTime : 0;
  const double flops =
      double(m.trainFlopsPerMicrobatch) * m.microbatches * replicas;
  out.mfu = r.stepTime > 0 ? flops / (r.stepTime * double(out.priced.gpus) *
                                      run.cluster.gpu.tensorFlops)
                           : 0;
  for (const pipert::RankInfo &info : m.rankInfo)
    out.peakBytes = std::max(out.peakBytes, info.peakBytes);
  return "";
}

std::string describeCluster(const cl::Cluster &c) {
  std::ostringstream os;
  char buf[400];
  std::snprintf(buf, sizeof buf,
                "cluster %s: up to %lld GPUs, %s\n"
                "  GPU: %.4g TFLOP/s bf16 tensor (%.0f%% for GEMMs, %.0f%% "
                "for attention), %.4g TFLOP/s fp32, %.4g TB/s HBM (%.0f%% "
                "achieved), %.4g GiB, %.3g us per kernel\n",
                c.name.c_str(), (long long)c.gpus, c.gpu.kind.c_str(),
                c.gpu.tensorFlops * 1e-12, 100 * c.gpu.gemmEfficiency,
                100 * c.gpu.attentionEfficiency, c.gpu.vectorFlops * 1e-12,
                c.gpu.hbmBytesPerSec * 1e-12, 100 * c.gpu.memoryEfficiency,
                double(c.gpu.memoryBytes) / double(int64_t(1) << 30),
                c.gpu.kernelOverheadSec * 1e6);
  os << buf;
  auto network = [&](const char *name, const cl::Network &n,
                     const std::string &extra) {
    const cl::NetworkFit &f = n.allReduce;
    std::snprintf(buf, sizeof buf,
                  "  %s: %s; point-to-point %.4g GB/s, %.3g us; all-reduce "
                  "%.4g us a step, %.4g GB/s of bus bandwidth (%s)\n",
                  name, extra.c_str(), n.bytesPerSec * 1e-9,
                  n.latencySec * 1e6, f.latencySec * 1e6,
                  f.busBytesPerSec * 1e-9,
                  f.points.empty()
                      ? ("given: " + f.source).c_str()
                      : ("fitted to " + std::to_string(f.points.size()) +
                         " published measurements")
                            .c_str());
    os << buf;
    for (const cl::Measurement &p : f.points) {
      const double modelled = cl::modelledSeconds(c, p);
      std::snprintf(buf, sizeof buf,
                    "    %6lld GPUs (%lld a domain) %12.0f bytes: published "
                    "%10.4g s, modelled %10.4g s, %+6.1f%%\n",
                    (long long)p.ranks, (long long)p.perDomain, p.bytes,
                    p.seconds(), modelled,
                    100 * (modelled - p.seconds()) / p.seconds());
      os << buf;
    }
  };
  network("NVLink", c.nvlink,
          std::to_string(c.domainGpus) + " GPUs a domain");
  network("scale-out", c.scaleOut,
          std::to_string(c.gpusPerNic) + " GPU(s) a NIC");
  return os.str();
}

} // namespace pipec::sim
