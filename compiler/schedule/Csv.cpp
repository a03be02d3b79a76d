//===- Csv.cpp - torch.distributed.pipelining compute-only CSV files ----===//

#include "compiler/schedule/Csv.h"
#include "compiler/schedule/Lower.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sys/stat.h>
#include <cctype>
#include <cstdio>
#include <sstream>

namespace pipec::schedule {

namespace {
/// Where an action came from, for messages.
struct Origin {
  int32_t line, col;
};
} // namespace

static std::string trim(const std::string &s, size_t &lead) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
    ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
    --e;
  lead = b;
  return s.substr(b, e - b);
}

/// Parses `<digits><letter><digits>`; returns false if the cell is not that.
static bool parseAction(const std::string &cell, int64_t &stage, char &type,
                        int64_t &mb) {
  size_t i = 0;
  auto number = [&](int64_t &out) {
    size_t start = i;
    out = 0;
    while (i < cell.size() && std::isdigit(static_cast<unsigned char>(cell[i]))) {
      out = out * 10 + (cell[i] - '0');
      if (out > 1000000000)
        return false;
      ++i;
    }
    return i > start;
  };
  if (!number(stage) || i >= cell.size())
    return false;
  type = cell[i++];
  return number(mb) && i == cell.size();
}

std::string readCsvFile(const std::string &path,
                        std::string &text) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return "cannot read '" + path + "': " + std::strerror(errno);
  if (!S_ISREG(st.st_mode))
    return "'" + path + "' is not a regular file (a directory, a FIFO, a "
           "device or a socket)";
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in && !in.eof())
    return "cannot read '" + path + "'";
  text = ss.str();
  return "";
}

std::string readCsvPlan(const std::string &text, const std::string &name,
                        int32_t microbatches, ComputePlan &plan) {
  std::ostringstream err;
  auto at = [&](int32_t line, int32_t col) -> std::ostringstream & {
    err << name << ":" << line << ":" << col << ": ";
    return err;
  };
  plan = ComputePlan();
  plan.kind = Kind::Csv;
  std::vector<std::vector<Origin>> origins;
  std::istringstream in(text);
  std::string line;
  int32_t lineNo = 0;
  int64_t maxStage = -1, maxMb = -1;
  std::vector<std::string> rows;
  while (std::getline(in, line)) {
    ++lineNo;
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    size_t lead;
    if (trim(line, lead).empty())
      continue;
    int32_t rank = int32_t(plan.order.size());
    plan.order.emplace_back();
    origins.emplace_back();
    size_t pos = 0;
    while (pos <= line.size()) {
      size_t comma = line.find(',', pos);
      if (comma == std::string::npos)
        comma = line.size();
      std::string cell = trim(line.substr(pos, comma - pos), lead);
      int32_t col = int32_t(pos + lead + 1);
      if (!cell.empty() && cell != "None") {
        int64_t stage, mb;
        char type;
        if (!parseAction(cell, stage, type, mb)) {
          bool comm = cell.find("SEND") != std::string::npos ||
                      cell.find("RECV") != std::string::npos;
          at(lineNo, col) << "'" << cell << "' is not a compute action";
          if (comm)
            err << "; the compute-only format has no communication (pipec "
                   "adds sends and receives itself)";
          else
            err << "; expected STAGE TYPE MICROBATCH such as 0F0 or 1W3, "
                   "TYPE one of F, I, W, B";
          return err.str();
        }
        Phase phase;
        switch (type) {
        case 'F':
          phase = Phase::F;
          break;
        case 'I':
          phase = Phase::B;
          break;
        case 'W':
          phase = Phase::W;
          break;
        case 'B':
          phase = Phase::FullBackward;
          break;
        default:
          at(lineNo, col) << "unknown action type '" << type << "' in '"
                          << cell << "'; expected F, I, W or B";
          return err.str();
        }
        maxStage = std::max(maxStage, stage);
        maxMb = std::max(maxMb, mb);
        plan.order[rank].push_back(Action{phase, int32_t(stage), int32_t(mb)});
        origins[rank].push_back(Origin{lineNo, col});
      }
      pos = comma + 1;
    }
    if (plan.order[rank].empty()) {
      at(lineNo, 1) << "rank " << rank << " has no action";
      return err.str();
    }
  }
  int32_t ranks = int32_t(plan.order.size());
  if (ranks == 0)
    return name + ": no rank rows; expected one row of actions per rank";
  // As --stages: a pipeline of at most 4096 ranks (tools' kMaxStages).
  constexpr int32_t kMaxCsvRanks = 4096;
  if (ranks > kMaxCsvRanks) {
    err << name << ": " << ranks << " rank rows; a pipeline has at most "
        << kMaxCsvRanks << " ranks";
    return err.str();
  }
  if (microbatches > 0 && maxMb + 1 != microbatches) {
    err << name << ": --microbatches " << microbatches
        << " but the file uses micro-batches 0.." << maxMb;
    return err.str();
  }
  if ((maxStage + 1) * (maxMb + 1) > kMaxChunkMicrobatches) {
    err << name << ": " << maxStage + 1 << " stages x " << maxMb + 1
        << " micro-batches is too large to schedule (at most "
        << kMaxChunkMicrobatches << " pairs)";
    return err.str();
  }
  plan.microbatches = int32_t(maxMb + 1);
  // Placement: the rank whose row runs a stage holds it.
  Placement &pl = plan.placement;
  pl.ranks = ranks;
  pl.chunks = int32_t(maxStage + 1);
  pl.rankOf.assign(pl.chunks, -1);
  std::vector<Origin> firstSeen(pl.chunks, Origin{0, 0});
  for (int32_t r = 0; r < ranks; ++r)
    for (size_t k = 0; k < plan.order[r].size(); ++k) {
      const Action &a = plan.order[r][k];
      int32_t &owner = pl.rankOf[a.chunk];
      if (owner == -1) {
        owner = r;
        firstSeen[a.chunk] = origins[r][k];
      } else if (owner != r) {
        at(origins[r][k].line, origins[r][k].col)
            << "stage " << a.chunk << " runs on rank " << r
            << ", but line " << firstSeen[a.chunk].line
            << " already runs it on rank " << owner
            << "; a stage lives on one rank";
        return err.str();
      }
    }
  for (int32_t c = 0; c < pl.chunks; ++c)
    if (pl.rankOf[c] == -1) {
      err << name << ": stage " << c << " appears on no rank, but stage "
          << maxStage << " does; stages must be numbered 0.." << maxStage;
      return err.str();
    }
  int32_t most = 0;
  for (int32_t r = 0; r < ranks; ++r)
    most = std::max(most, int32_t(pl.chunksOf(r).size()));
  plan.chunksPerRank = most;
  std::string bad = checkPlan(plan);
  if (!bad.empty()) {
    // Point at the line of the rank that checkPlan names.
    int32_t rank = -1;
    if (std::sscanf(bad.c_str(), "rank %d", &rank) == 1 && rank >= 0 &&
        rank < ranks && !origins[rank].empty())
      return name + ":" + std::to_string(origins[rank][0].line) + ": " + bad;
    return name + ": " + bad;
  }
  return "";
}

std::string writeCsvPlan(const ComputePlan &plan) {
  std::ostringstream os;
  static const char types[] = {'F', 'I', 'W', 'B'};
  for (const auto &row : plan.order) {
    for (size_t k = 0; k < row.size(); ++k)
      os << (k ? "," : "") << row[k].chunk
         << types[static_cast<int>(row[k].phase)] << row[k].mb;
    os << '\n';
  }
  return os.str();
}

} // namespace pipec::schedule
