//===- Cluster.cpp - cluster descriptions and their cost formulas ---------===//

#include "compiler/cluster/Cluster.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace pipec::cluster {

namespace {

using json = nlohmann::json;

/// Reading one JSON object strictly: every key known, every number in
/// range; the first problem names its path (`gpu.efficiency.gemm`).
struct Reader {
  std::string error;

  bool keys(const json &j, const std::string &path,
            const std::set<std::string> &known) {
    if (!j.is_object())
      return fail(path, "must be an object");
    for (auto it = j.begin(); it != j.end(); ++it)
      if (!known.count(it.key())) {
        std::string list;
        for (const std::string &k : known)
          list += (list.empty() ? "" : ", ") + k;
        return fail(path.empty() ? it.key() : path + "." + it.key(),
                    "is not a field here (expected " + list + ")");
      }
    return true;
  }
  bool fail(const std::string &path, const std::string &why) {
    if (error.empty())
      error = (path.empty() ? std::string("the description") : path) + " " +
              why;
    return false;
  }
  /// A required number in [lo, hi] (lo excluded when `open`).
  bool number(const json &j, const std::string &key, const std::string &path,
              double lo, double hi, double &out, bool open = true) {
    const std::string at = path.empty() ? key : path + "." + key;
    if (!j.contains(key))
      return fail(at, "is missing");
    if (!j[key].is_number())
      return fail(at, "must be a number");
    double v = j[key].get<double>();
    if (!std::isfinite(v) || v > hi || (open ? v <= lo : v < lo)) {
      std::ostringstream os;
      os << "must be " << (open ? "above " : "at least ") << lo
         << " and at most " << hi << ", not " << v;
      return fail(at, os.str());
    }
    out = v;
    return true;
  }
  bool whole(const json &j, const std::string &key, const std::string &path,
             int64_t lo, int64_t hi, int64_t &out) {
    double v = 0;
    if (!number(j, key, path, double(lo), double(hi), v, false))
      return false;
    if (v != std::floor(v))
      return fail(path.empty() ? key : path + "." + key,
                  "must be a whole number");
    out = int64_t(v);
    return true;
  }
  bool text(const json &j, const std::string &key, const std::string &path,
            std::string &out, bool required = true) {
    const std::string at = path.empty() ? key : path + "." + key;
    if (!j.contains(key))
      return required ? fail(at, "is missing") : true;
    if (!j[key].is_string() || j[key].get<std::string>().empty())
      return fail(at, "must be a non-empty string");
    out = j[key].get<std::string>();
    return true;
  }
};

/// One network's all-reduce: published measurements to fit, or given
/// figures with their source.
bool readFit(Reader &r, const json &j, const std::string &path,
             NetworkFit &fit, int64_t domainGpus, bool crossDomain) {
  if (!r.keys(j, path, {"points", "latency_us", "bus_gb_s", "source"}))
    return false;
  fit.points.clear();
  if (!j.contains("points")) {
    double us = 0, gbs = 0;
    if (!r.number(j, "latency_us", path, 0, 1e6, us, false) ||
        !r.number(j, "bus_gb_s", path, 0, 1e5, gbs) ||
        !r.text(j, "source", path, fit.source))
      return false;
    fit.latencySec = us * 1e-6;
    fit.busBytesPerSec = gbs * 1e9;
    return true;
  }
  if (j.contains("latency_us") || j.contains("bus_gb_s"))
    return r.fail(path, "has points to fit and given figures: one or the "
                        "other");
  if (!j["points"].is_array() || j["points"].size() < 2)
    return r.fail(path + ".points",
                  "must list at least two measurements to fit");
  for (size_t i = 0; i < j["points"].size(); ++i) {
    const json &p = j["points"][i];
    const std::string at = path + ".points[" + std::to_string(i) + "]";
    Measurement m;
    double busbw = 0;
    if (!r.keys(p, at, {"gpus", "per_domain", "bytes", "busbw_gb_s",
                        "source"}) ||
        !r.whole(p, "gpus", at, 2, int64_t(1) << 30, m.ranks) ||
        !r.number(p, "bytes", at, 1, 1e13, m.bytes, false) ||
        !r.number(p, "busbw_gb_s", at, 0, 1e5, busbw) ||
        !r.text(p, "source", at, m.source))
      return false;
    m.busBytesPerSec = busbw * 1e9;
    if (crossDomain) {
      if (!r.whole(p, "per_domain", at, 1, domainGpus, m.perDomain))
        return false;
      if (m.ranks % m.perDomain != 0 || m.ranks / m.perDomain < 2)
        return r.fail(at + ".gpus",
                      "must be a multiple of per_domain spanning at least "
                      "two domains (the scale-out network's measurement)");
    } else {
      if (p.contains("per_domain"))
        return r.fail(at + ".per_domain",
                      "belongs to scale_out's points (NVLink's are one "
                      "domain)");
      if (m.ranks > domainGpus)
        return r.fail(at + ".gpus", "must fit in one NVLink domain (" +
                                        std::to_string(domainGpus) +
                                        " GPUs)");
      m.perDomain = m.ranks;
    }
    fit.points.push_back(std::move(m));
  }
  return true;
}

bool readNetwork(Reader &r, const json &j, const std::string &path,
                 Network &net, int64_t domainGpus, bool crossDomain,
                 int64_t *domainOut, int64_t *gpusPerNic) {
  std::set<std::string> known = {"gb_s", "latency_us", "all_reduce",
                                 "source"};
  known.insert(crossDomain ? "gpus_per_nic" : "domain_gpus");
  if (!r.keys(j, path, known))
    return false;
  std::string source;
  if (!crossDomain && !r.whole(j, "domain_gpus", path, 1, 1 << 20,
                               *domainOut))
    return false;
  if (crossDomain) {
    *gpusPerNic = 1;
    if (j.contains("gpus_per_nic") &&
        !r.whole(j, "gpus_per_nic", path, 1, 64, *gpusPerNic))
      return false;
  }
  double gbs = 0, us = 0;
  if (!r.number(j, "gb_s", path, 0, 1e5, gbs) ||
      !r.number(j, "latency_us", path, 0, 1e6, us, false) ||
      !r.text(j, "source", path, source, false))
    return false;
  net.bytesPerSec = gbs * 1e9;
  net.latencySec = us * 1e-6;
  if (!j.contains("all_reduce"))
    return r.fail(path + ".all_reduce",
                  "is missing (published nccl-tests all-reduce points)");
  return readFit(r, j["all_reduce"], path + ".all_reduce", net.allReduce,
                 crossDomain ? domainGpus : *domainOut, crossDomain);
}

/// Weighted least squares for t ~ x0 a + x1 b over rows (a, b, t), each
/// weighted by 1 / t (relative errors: the points span 1000x in time).
/// With x0 forced to 0 when the two-term fit makes it negative.
bool leastSquares(const std::vector<std::array<double, 3>> &rows, double &x0,
                  double &x1) {
  double aa = 0, ab = 0, bb = 0, at = 0, bt = 0;
  for (const auto &[a, b, t] : rows) {
    const double w = 1 / (t * t);
    aa += w * a * a;
    ab += w * a * b;
    bb += w * b * b;
    at += w * a * t;
    bt += w * b * t;
  }
  const double det = aa * bb - ab * ab;
  if (det > 0) {
    x0 = (at * bb - bt * ab) / det;
    x1 = (aa * bt - ab * at) / det;
  }
  if (det <= 0 || x0 < 0) {
    x0 = 0;
    x1 = bb > 0 ? bt / bb : 0;
  }
  return x1 > 0;
}

int32_t ceilLog2(int64_t n) {
  int32_t levels = 0;
  while ((int64_t(1) << levels) < n)
    ++levels;
  return levels;
}

/// A collective's terms: its latency steps and the bytes each GPU moves
/// through each network, for n GPUs, g per domain, over d domains; an
/// all-reduce is a reduce-scatter then an all-gather (twice each term).
struct Terms {
  double nvSteps = 0, nvBytes = 0, netSteps = 0, netBytes = 0;
};
Terms termsOf(CollectiveKind kind, int64_t n, int64_t g, int64_t d,
              double bytes) {
  Terms t;
  if (n <= 1 || bytes <= 0)
    return t;
  const double half = kind == CollectiveKind::AllReduce ? 2 : 1;
  if (g > 1) {
    t.nvSteps = half * ceilLog2(g);
    t.nvBytes = half * double(g - 1) / double(g) * bytes;
  }
  if (d > 1) {
    t.netSteps = half * ceilLog2(d);
    t.netBytes = half * double(d - 1) / double(d) * bytes / double(g);
  }
  return t;
}

/// Latencies add; the levels' bandwidth terms overlap (NCCL pipelines a
/// ring channel's chunks through NVLink and the NIC), the slower one sets
/// the pace.
double timeOf(const Cluster &c, const Terms &t) {
  const NetworkFit &nv = c.nvlink.allReduce, &net = c.scaleOut.allReduce;
  double latency = 0, nvTime = 0, netTime = 0;
  if (t.nvSteps > 0) {
    latency += t.nvSteps * nv.latencySec;
    nvTime = t.nvBytes / nv.busBytesPerSec;
  }
  if (t.netSteps > 0) {
    latency += t.netSteps * net.latencySec;
    netTime = t.netBytes * c.gpusPerNic / net.busBytesPerSec;
  }
  return latency + std::max(nvTime, netTime);
}

std::string fitOne(const Cluster &c, NetworkFit &fit, bool crossDomain,
                   const std::string &path) {
  if (fit.points.empty())
    return ""; // given figures
  std::set<double> sizes;
  std::vector<std::array<double, 3>> rows;
  for (const Measurement &m : fit.points) {
    sizes.insert(m.bytes);
    const int64_t g = m.perDomain, d = m.ranks / g;
    Terms t = termsOf(CollectiveKind::AllReduce, m.ranks, g, d, m.bytes);
    double time = m.seconds();
    if (crossDomain) {
      // The network's latency and bytes, after NVLink's latency.
      time -= t.nvSteps * c.nvlink.allReduce.latencySec;
      if (time <= 0)
        return path + ": the measurement of " + std::to_string(m.ranks) +
               " GPUs and " + std::to_string(int64_t(m.bytes)) +
               " bytes is faster than NVLink's latency alone";
      rows.push_back({t.netSteps, t.netBytes * c.gpusPerNic, time});
    } else {
      rows.push_back({t.nvSteps, t.nvBytes, time});
    }
  }
  if (sizes.size() < 2)
    return path + ": needs measurements of at least two message sizes";
  double latency = 0, inverse = 0;
  if (!leastSquares(rows, latency, inverse))
    return path + ": the measurements give no positive bandwidth";
  fit.latencySec = latency;
  fit.busBytesPerSec = 1 / inverse;
  return "";
}

} // namespace

double Measurement::seconds() const {
  const double n = double(ranks);
  return bytes * 2 * (n - 1) / n / busBytesPerSec;
}

double modelledSeconds(const Cluster &c, const Measurement &m) {
  return collectiveTime(c, CollectiveKind::AllReduce, m.ranks, m.perDomain,
                        m.bytes);
}

std::string fitCollectives(Cluster &c) {
  if (std::string why =
          fitOne(c, c.nvlink.allReduce, false, "nvlink.all_reduce");
      !why.empty())
    return why;
  return fitOne(c, c.scaleOut.allReduce, true, "scale_out.all_reduce");
}

std::string parseCluster(const std::string &text, const std::string &name,
                         Cluster &out) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return name + ": not valid JSON";
  Reader r;
  Cluster c;
  int64_t format = 0, gpus = 0, domain = 0, perNic = 1;
  auto done = [&]() { return name + ": " + r.error; };
  if (!r.keys(j, "", {"format", "name", "description", "gpus", "gpu",
                      "nvlink", "scale_out"}) ||
      !r.whole(j, "format", "", 1, 1, format) ||
      !r.text(j, "name", "", c.name) ||
      !r.text(j, "description", "", c.description, false) ||
      !r.whole(j, "gpus", "", 1, int64_t(1) << 30, gpus))
    return done();
  c.gpus = int32_t(gpus);
  if (!j.contains("gpu"))
    return name + ": gpu is missing";
  const json &g = j["gpu"];
  double tflops = 0, vector = 0, tbs = 0, gib = 0, us = 0;
  if (!r.keys(g, "gpu", {"kind", "bf16_tflops", "fp32_tflops", "hbm_tb_s",
                         "memory_gib", "efficiency", "kernel_overhead_us",
                         "source"}) ||
      !r.text(g, "kind", "gpu", c.gpu.kind) ||
      !r.number(g, "bf16_tflops", "gpu", 0, 1e6, tflops) ||
      !r.number(g, "fp32_tflops", "gpu", 0, 1e6, vector) ||
      !r.number(g, "hbm_tb_s", "gpu", 0, 1e3, tbs) ||
      !r.number(g, "memory_gib", "gpu", 0, 1e6, gib) ||
      !r.number(g, "kernel_overhead_us", "gpu", 0, 1e4, us, false))
    return done();
  std::string source;
  if (!r.text(g, "source", "gpu", source, false))
    return done();
  c.gpu.tensorFlops = tflops * 1e12;
  c.gpu.vectorFlops = vector * 1e12;
  c.gpu.hbmBytesPerSec = tbs * 1e12;
  c.gpu.memoryBytes = int64_t(gib * double(int64_t(1) << 30));
  c.gpu.kernelOverheadSec = us * 1e-6;
  if (!g.contains("efficiency"))
    return name + ": gpu.efficiency is missing";
  const json &e = g["efficiency"];
  if (!r.keys(e, "gpu.efficiency", {"gemm", "attention", "memory", "source"}) ||
      !r.number(e, "gemm", "gpu.efficiency", 0, 1, c.gpu.gemmEfficiency) ||
      !r.number(e, "attention", "gpu.efficiency", 0, 1,
                c.gpu.attentionEfficiency) ||
      !r.number(e, "memory", "gpu.efficiency", 0, 1,
                c.gpu.memoryEfficiency) ||
      !r.text(e, "source", "gpu.efficiency", source, false))
    return done();
  if (!j.contains("nvlink"))
    return name + ": nvlink is missing";
  if (!readNetwork(r, j["nvlink"], "nvlink", c.nvlink, 0, false, &domain,
                   nullptr))
    return done();
  c.domainGpus = int32_t(domain);
  if (!j.contains("scale_out"))
    return name + ": scale_out is missing";
  if (!readNetwork(r, j["scale_out"], "scale_out", c.scaleOut, domain, true,
                   nullptr, &perNic))
    return done();
  c.gpusPerNic = int32_t(perNic);
  if (c.gpus % c.domainGpus != 0)
    return name + ": gpus (" + std::to_string(c.gpus) +
           ") must be a whole number of NVLink domains of " +
           std::to_string(c.domainGpus);
  if (std::string why = fitCollectives(c); !why.empty())
    return name + ": " + why;
  out = std::move(c);
  return "";
}

std::string readCluster(const std::string &path, Cluster &out) {
  std::ifstream f(path);
  if (!f)
    return path + ": cannot open the cluster description";
  std::stringstream ss;
  ss << f.rdbuf();
  return parseCluster(ss.str(), path, out);
}

Cluster varied(const Cluster &c, double compute, double network) {
  Cluster v = c;
  for (double *e : {&v.gpu.gemmEfficiency, &v.gpu.attentionEfficiency,
                    &v.gpu.memoryEfficiency})
    *e = std::min(1.0, *e * compute);
  v.gpu.kernelOverheadSec /= compute;
  for (Network *n : {&v.nvlink, &v.scaleOut}) {
    n->bytesPerSec *= network;
    n->latencySec /= network;
    n->allReduce.busBytesPerSec *= network;
    n->allReduce.latencySec /= network;
  }
  return v;
}

double workTime(const Gpu &gpu, const plan::Work &w) {
  const double hbm = gpu.hbmBytesPerSec * gpu.memoryEfficiency;
  auto roof = [&](double flops, double rate, double bytes) {
    return std::max(flops / rate, bytes / hbm);
  };
  return roof(w.gemmFlops, gpu.tensorFlops * gpu.gemmEfficiency,
              w.gemmBytes) +
         roof(w.attentionFlops, gpu.tensorFlops * gpu.attentionEfficiency,
              w.attentionBytes) +
         roof(w.otherFlops, gpu.vectorFlops, w.otherBytes) +
         double(w.kernels) * gpu.kernelOverheadSec;
}

double optimizerTime(const Gpu &gpu, double paramBytes, double copyBytes,
                     int32_t replicas, bool zero) {
  if (paramBytes <= 0)
    return 0;
  const double update = zero && replicas > 1 ? 7.0 / replicas : 7.0;
  const double bytes = (update + 2) * paramBytes + copyBytes;
  // The norm's reduction, the clip scale, AdamW: three launches.
  return bytes / (gpu.hbmBytesPerSec * gpu.memoryEfficiency) +
         3 * gpu.kernelOverheadSec;
}

bool parsePlacement(const std::string &text, Placement &out) {
  if (text == "pipeline-major")
    out = Placement::PipelineMajor;
  else if (text == "replica-major")
    out = Placement::ReplicaMajor;
  else
    return false;
  return true;
}

int64_t gpuOf(Placement p, int32_t stages, int32_t replicas, int32_t rank) {
  if (p == Placement::PipelineMajor || stages <= 0)
    return rank;
  const int64_t stage = rank % stages, replica = rank / stages;
  return stage * replicas + replica;
}

double messageTime(const Cluster &c, int64_t a, int64_t b, double bytes) {
  if (a == b || bytes <= 0)
    return 0;
  if (a / c.domainGpus == b / c.domainGpus)
    return c.nvlink.latencySec + bytes / c.nvlink.bytesPerSec;
  return c.scaleOut.latencySec +
         bytes * c.gpusPerNic / c.scaleOut.bytesPerSec;
}

double collectiveTime(const Cluster &c, CollectiveKind kind, int64_t n,
                      int64_t perDomain, double bytes) {
  if (n <= 1)
    return 0;
  const int64_t g = std::max<int64_t>(1, std::min(perDomain, n));
  const int64_t d = (n + g - 1) / g;
  return timeOf(c, termsOf(kind, n, g, d, bytes));
}

double collectiveTime(const Cluster &c, CollectiveKind kind,
                      const std::vector<int64_t> &members, double bytes) {
  std::map<int64_t, int64_t> perDomain;
  for (int64_t gpu : members)
    ++perDomain[gpu / c.domainGpus];
  int64_t g = 0;
  for (const auto &[domain, count] : perDomain)
    g = std::max(g, count);
  const int64_t n = int64_t(members.size()), d = int64_t(perDomain.size());
  if (n <= 1)
    return 0;
  // The busiest domain sets the pace: its g members each carry 1/g.
  return timeOf(c, termsOf(kind, n, g, d, bytes));
}

} // namespace pipec::cluster
