//===- Schedule.cpp - names and text forms of schedules -----------------===//

#include "compiler/schedule/Schedule.h"

#include <algorithm>
#include <sstream>

namespace pipec::schedule {

namespace {
struct KindEntry {
  Kind kind;
  const char *name;
};
} // namespace

static const KindEntry kKinds[] = {
    {Kind::GPipe, "gpipe"},      {Kind::OneFOneB, "1f1b"},
    {Kind::Interleaved, "interleaved-1f1b"}, {Kind::ZBH1, "zb-h1"},
    {Kind::ZBV, "zb-v"},         {Kind::DualPipeV, "dualpipe-v"},
};

const char *kindName(Kind kind) {
  for (const KindEntry &e : kKinds)
    if (e.kind == kind)
      return e.name;
  return "csv";
}

bool parseKind(const std::string &name, Kind &kind) {
  for (const KindEntry &e : kKinds)
    if (name == e.name) {
      kind = e.kind;
      return true;
    }
  return false;
}

std::string allKindNames() {
  std::string out;
  for (const KindEntry &e : kKinds) {
    if (!out.empty())
      out += ", ";
    out += e.name;
  }
  return out;
}

std::vector<int32_t> Placement::chunksOf(int32_t rank) const {
  std::vector<int32_t> out;
  for (int32_t c = 0; c < chunks; ++c)
    if (rankOf[c] == rank)
      out.push_back(c);
  return out;
}

int32_t Schedule::groupCount() const {
  return groups.empty() ? 1 : int32_t(groups.size());
}

std::vector<int32_t> Schedule::groupMembers(int32_t g) const {
  if (g == 0 && groups.empty()) {
    std::vector<int32_t> all(size_t(std::max(ranks(), 0)));
    for (int32_t r = 0; r < ranks(); ++r)
      all[r] = r;
    return all;
  }
  if (g < 0 || g >= int32_t(groups.size()))
    return {};
  return groups[g];
}

bool isCompute(Op op) {
  return op == Op::Fwd || op == Op::BwdB || op == Op::BwdW ||
         op == Op::OptStep;
}

bool isPost(Op op) {
  return op == Op::RecvAct || op == Op::RecvGrad || op == Op::SendAct ||
         op == Op::SendGrad;
}

const char *opName(Op op) {
  switch (op) {
  case Op::Fwd:
    return "fwd";
  case Op::BwdB:
    return "bwd_b";
  case Op::BwdW:
    return "bwd_w";
  case Op::RecvAct:
    return "recv_act";
  case Op::RecvGrad:
    return "recv_grad";
  case Op::SendAct:
    return "send_act";
  case Op::SendGrad:
    return "send_grad";
  case Op::Wait:
    return "wait";
  case Op::AllReduce:
    return "allreduce";
  case Op::OptStep:
    return "opt_step";
  case Op::ReduceScatter:
    return "reduce_scatter";
  case Op::AllGather:
    return "all_gather";
  }
  return "?";
}

std::string describe(const Instr &in) {
  std::ostringstream os;
  auto post = [&](Op op) {
    bool recv = op == Op::RecvAct || op == Op::RecvGrad;
    os << opName(op) << (recv ? " from " : " to ") << in.peer << ", chunk "
       << in.chunk << ", mb " << in.mb;
  };
  switch (in.op) {
  case Op::Fwd:
  case Op::BwdB:
  case Op::BwdW:
    os << opName(in.op) << "(chunk " << in.chunk << ", mb " << in.mb << ")";
    break;
  case Op::RecvAct:
  case Op::RecvGrad:
  case Op::SendAct:
  case Op::SendGrad:
    post(in.op);
    os << " [req " << in.req << "]";
    break;
  case Op::Wait:
    os << "wait(";
    post(in.sub);
    os << ") [req " << in.req << "]";
    break;
  case Op::AllReduce:
  case Op::ReduceScatter:
  case Op::AllGather:
    os << opName(in.op) << "(group " << in.chunk << ", bucket " << in.mb
       << ")";
    break;
  case Op::OptStep:
    os << "opt_step";
    break;
  }
  return os.str();
}

std::string compactToken(const Instr &in) {
  std::ostringstream os;
  auto post = [&](Op op) {
    bool recv = op == Op::RecvAct || op == Op::RecvGrad;
    bool act = op == Op::RecvAct || op == Op::SendAct;
    os << (recv ? '<' : '>') << (act ? 'A' : 'G') << in.peer << ':'
       << in.chunk << '.' << in.mb;
  };
  switch (in.op) {
  case Op::Fwd:
    os << 'F' << in.chunk << '.' << in.mb;
    break;
  case Op::BwdB:
    os << 'B' << in.chunk << '.' << in.mb;
    break;
  case Op::BwdW:
    os << 'W' << in.chunk << '.' << in.mb;
    break;
  case Op::RecvAct:
  case Op::RecvGrad:
  case Op::SendAct:
  case Op::SendGrad:
    post(in.op);
    break;
  case Op::Wait:
    os << '~';
    post(in.sub);
    break;
  case Op::AllReduce:
    os << "AR" << in.chunk << '.' << in.mb;
    break;
  case Op::ReduceScatter:
    os << "RS" << in.chunk << '.' << in.mb;
    break;
  case Op::AllGather:
    os << "AG" << in.chunk << '.' << in.mb;
    break;
  case Op::OptStep:
    os << "OPT";
    break;
  }
  return os.str();
}

std::string compactToken(const Action &a) {
  static const char *names[] = {"F", "B", "W", "BW"};
  return std::string(names[static_cast<int>(a.phase)]) +
         std::to_string(a.chunk) + "." + std::to_string(a.mb);
}

std::string formatStreams(const Schedule &s) {
  std::ostringstream os;
  for (int32_t r = 0; r < s.ranks(); ++r) {
    os << "rank " << r << " (" << s.streams[r].size() << " instructions):";
    for (const Instr &in : s.streams[r])
      os << ' ' << compactToken(in);
    os << '\n';
  }
  return os.str();
}

std::string formatComputeOrder(const Schedule &s) {
  std::ostringstream os;
  for (int32_t r = 0; r < s.ranks(); ++r) {
    os << "rank " << r << ":";
    for (const Instr &in : s.streams[r])
      if (in.op == Op::Fwd || in.op == Op::BwdB || in.op == Op::BwdW)
        os << ' ' << compactToken(in);
    os << '\n';
  }
  return os.str();
}

} // namespace pipec::schedule
