//===- Rendezvous.cpp - launcher variables, file and tcp rendezvous -------===//

#include "pipert/Rendezvous.h"

#include "pipert/AtomicFile.h"
#include "pipert/Fnv.h"
#include "pipert/ParseNumber.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <set>
#include <sstream>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace pipert {
namespace {

constexpr char kMagic[] = "PIPEC-RENDEZVOUS 1";

std::string hex(const uint8_t *data, size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

bool unhex(const std::string &text, std::vector<uint8_t> &out) {
  if (text.size() % 2)
    return false;
  out.clear();
  auto digit = [](char c) {
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
  };
  for (size_t i = 0; i < text.size(); i += 2) {
    int hi = digit(text[i]), lo = digit(text[i + 1]);
    if (hi < 0 || lo < 0)
      return false;
    out.push_back(uint8_t(hi * 16 + lo));
  }
  return true;
}

std::string keyOf(const std::string &jobKey) {
  return hex(reinterpret_cast<const uint8_t *>(jobKey.data()), jobKey.size());
}

/// What a process of a job says on the wire: its job's key and its plan's
/// id, each hex-encoded (so neither holds a space or a line end; "-" for
/// an empty plan id, a manifest built by hand).
struct Identity {
  std::string job, plan;
  std::string planText; ///< the plan id as given, for messages
  bool anonymous = false; ///< no job id: a file may be an earlier run's
};

Identity identityOf(const std::string &jobKey, const std::string &planId) {
  Identity id;
  id.job = keyOf(jobKey.empty() ? std::string("no-job-id") : jobKey);
  id.plan = planId.empty() ? "-" : keyOf(planId);
  id.planText = planId.empty() ? "(none)" : planId;
  id.anonymous = jobKey.empty();
  return id;
}

/// The plan id a peer sent (hex), readable.
std::string planTextOf(const std::string &wire) {
  std::vector<uint8_t> raw;
  if (wire == "-" || !unhex(wire, raw))
    return "(none)";
  return std::string(raw.begin(), raw.end());
}

/// The failure of a job whose processes were given different plans.
Status otherPlan(int64_t rank, const std::string &theirs,
                 const std::string &rank0s) {
  return Status::failure(
      "rendezvous: rank " + std::to_string(rank) + " runs plan " + theirs +
      " but rank 0 runs plan " + rank0s +
      ": every process of a job must be started with the same plan folder");
}

/// Sleeps a little longer each time, never past the deadline.
void backOff(std::chrono::milliseconds &pause, Clock::time_point deadline) {
  auto left = deadline - Clock::now();
  std::this_thread::sleep_for(std::min<Clock::duration>(pause, left > Clock::duration::zero() ? left : Clock::duration::zero()));
  pause = std::min(pause * 2, std::chrono::milliseconds(1000));
}

/// Milliseconds to `deadline`, rounded up (a poll with 0 would spin
/// through the last millisecond).
int msLeft(Clock::time_point deadline) {
  auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero())
    return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return int(std::min<int64_t>(ms, 1 << 30));
}

Status parseTcp(const std::string &spec, std::string &host, int32_t &port) {
  // tcp:HOST:PORT (HOST may be [v6 address]).
  std::string rest = spec.substr(4);
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return Status::failure("rendezvous '" + spec + "': give tcp:HOST:PORT");
  host = rest.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  int64_t p = 0;
  std::string error;
  if (!parseInteger("the rendezvous port", rest.substr(colon + 1), 1, 65535,
                    p, error))
    return Status::failure("rendezvous '" + spec + "': " + error);
  port = int32_t(p);
  return Status::success();
}

/// Reads one line (up to '\n') from `fd` before the deadline.
bool readLine(int fd, std::string &line, Clock::time_point deadline) {
  line.clear();
  char c = 0;
  while (line.size() < (1 << 20)) {
    pollfd p{fd, POLLIN, 0};
    int ready = poll(&p, 1, msLeft(deadline));
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready <= 0)
      return false;
    ssize_t got = recv(fd, &c, 1, 0);
    if (got <= 0)
      return false;
    if (c == '\n')
      return true;
    line += c;
  }
  return false;
}

bool writeAll(int fd, const std::string &text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t put = send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
    if (put <= 0)
      return false;
    done += size_t(put);
  }
  return true;
}

/// connect() that gives up at `deadline` (a firewalled host never answers;
/// the blocking call would wait minutes).
bool connectBefore(int fd, const sockaddr *addr, socklen_t len,
                   Clock::time_point deadline, std::string &error) {
  int flags = fcntl(fd, F_GETFL, 0);
  fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  int rc = connect(fd, addr, len);
  if (rc != 0 && errno != EINPROGRESS) {
    error = std::string("connect: ") + std::strerror(errno);
    return false;
  }
  if (rc != 0) {
    for (;;) {
      pollfd p{fd, POLLOUT, 0};
      int ready = poll(&p, 1, msLeft(deadline));
      if (ready < 0 && errno == EINTR)
        continue;
      if (ready <= 0) {
        error = "connect: no answer";
        return false;
      }
      break;
    }
    int soError = 0;
    socklen_t l = sizeof soError;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soError, &l);
    if (soError != 0) {
      error = std::string("connect: ") + std::strerror(soError);
      return false;
    }
  }
  fcntl(fd, F_SETFL, flags);
  return true;
}

/// One connection rank 0 is serving: the request read so far, then the
/// answer being written.
struct Client {
  int fd = -1;
  std::string in, out;
  size_t sent = 0;
  int64_t rank = -1; ///< set once the answer is the id
  Clock::time_point by;
};

/// Connections served at once: more wait in the listen backlog (and the
/// kernel's SYN retries), never past their own deadline's retries.
constexpr size_t kMaxClients = 1024;
/// A connection must ask within this, so one that never speaks (a port
/// scanner, a hung process) holds its slot, not the others.
constexpr std::chrono::seconds kClientTime{10};

/// Rank 0's side of tcp: every other rank's request answered with the id,
/// many connections at once (poll over non-blocking sockets), so that at
/// the largest jobs the id goes out at the rate the network accepts
/// connections, and one slow or silent peer delays no one.
Status serveTcp(const LaunchEnv &env, int32_t port, const Identity &me,
                const std::vector<uint8_t> &blob, Clock::time_point deadline) {
  int fd = socket(AF_INET6, SOCK_STREAM, 0);
  bool v6 = fd >= 0;
  if (!v6)
    fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return Status::failure(std::string("rendezvous: socket: ") +
                           std::strerror(errno));
  int one = 1, zero = 0;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int bound = -1;
  if (v6) {
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    a.sin6_port = htons(uint16_t(port));
    bound = bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(uint16_t(port));
    bound = bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
  }
  // The backlog is the kernel's cap (somaxconn) at most.
  if (bound != 0 || listen(fd, 4096) != 0) {
    std::string why = std::strerror(errno);
    close(fd);
    return Status::failure("rendezvous: rank 0 cannot listen on port " +
                           std::to_string(port) + ": " + why +
                           " (another job's? name a free one with "
                           "--rendezvous tcp:HOST:PORT)");
  }
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK) != 0) {
    std::string why = std::strerror(errno);
    close(fd);
    return Status::failure("rendezvous: rank 0's socket: " + why);
  }
  const std::string ok = "OK " + hex(blob.data(), blob.size()) + "\n";
  std::set<int32_t> served;
  std::string lastRefusal;
  // A rank of this job given another plan than rank 0's: the job cannot
  // run. Rank 0 fails, but first tells every rank that asks within
  // kClientTime (or all of them, if sooner), so that none waits for its
  // deadline (a launcher that ends the job when a process fails ends them
  // sooner still).
  Status conflict = Status::success();
  Clock::time_point failBy{};
  std::set<int32_t> told; ///< every rank whose answer went out whole
  std::vector<Client> clients;
  std::vector<pollfd> fds;
  // Out of descriptors (accept's EMFILE and kin): no new connection until
  // one of these many is closed or 100 ms have passed, or the listening
  // socket, still readable, would wake the loop at once.
  size_t full = kMaxClients;
  Clock::time_point retryAccept{};
  auto drop = [&](size_t i) {
    close(clients[i].fd);
    clients[i] = std::move(clients.back());
    clients.pop_back();
  };
  // The answer to a request line; sets the client's rank when it is the id.
  auto answer = [&](Client &c, const std::string &line) {
    std::istringstream in(line);
    std::string m1, m2, theirKey, theirPlan, extra;
    int64_t rank = -1;
    in >> m1 >> m2 >> theirKey;
    const bool ours = m1 + " " + m2 == kMagic;
    const bool whole = bool(in >> rank >> theirPlan) && !(in >> extra);
    if (!ours) {
      lastRefusal = "a connection that is not a pipec rendezvous";
      c.out = "ERR not a pipec rendezvous\n";
    } else if (!whole) {
      lastRefusal = "a malformed request (another pipec version?)";
      c.out = "ERR malformed request\n";
    } else if (theirKey != me.job) {
      lastRefusal = "rank " + std::to_string(rank) + " of another job";
      c.out = "ERR this port serves another job\n";
    } else if (rank < 1 || rank >= env.size) {
      c.out = "ERR rank " + std::to_string(rank) + " of " +
              std::to_string(env.size) + "\n";
    } else if (theirPlan != me.plan && me.anonymous) {
      // Without a job id, runs are told apart by their plans only: an
      // earlier run's process may still be asking.
      lastRefusal = "rank " + std::to_string(rank) + " on plan " +
                    planTextOf(theirPlan) +
                    " (another run's, or given another plan?)";
      c.out = "ERR this port serves another job\n";
    } else if (theirPlan != me.plan) {
      if (conflict.ok()) {
        conflict = otherPlan(rank, planTextOf(theirPlan), me.planText);
        failBy = std::min(deadline, Clock::now() + kClientTime);
      }
      c.out = "ERR another plan " + me.plan + "\n";
      c.rank = rank;
    } else if (!conflict.ok()) {
      const std::string why = conflict.message();
      const std::string prefix = "rendezvous: ";
      c.out = "ERR the job ends: " +
              (why.rfind(prefix, 0) == 0 ? why.substr(prefix.size()) : why) +
              "\n";
      c.rank = rank;
    } else {
      c.out = ok;
      c.rank = rank;
    }
  };
  // Every other rank answered, its answer sent whole: given the id, or
  // told the job ends.
  auto answered = [&] { return int32_t(told.size()) >= env.size - 1; };
  while (conflict.ok() ? int32_t(served.size()) < env.size - 1
                       : !answered()) {
    const Clock::time_point now = Clock::now();
    const Clock::time_point end = conflict.ok() ? deadline : failBy;
    if (now >= end)
      break;
    // Connections past their time are dropped; the next wake-up is the
    // earliest of theirs and the job's deadline.
    Clock::time_point wake = end;
    for (size_t i = clients.size(); i-- > 0;) {
      if (clients[i].by <= now) {
        lastRefusal = "a connection that sent no request within " +
                      std::to_string(kClientTime.count()) + " s";
        drop(i);
        continue;
      }
      wake = std::min(wake, clients[i].by);
    }
    if (clients.size() < full || now >= retryAccept)
      full = kMaxClients; // some closed since, or time to try: accept again
    else
      wake = std::min(wake, retryAccept);
    fds.assign(1, pollfd{fd, short(clients.size() < full ? POLLIN : 0), 0});
    for (const Client &c : clients)
      fds.push_back({c.fd, short(c.out.empty() ? POLLIN : POLLOUT), 0});
    int ready = poll(fds.data(), fds.size(), msLeft(wake));
    if (ready < 0 && errno != EINTR) {
      lastRefusal = std::string("poll: ") + std::strerror(errno);
      break;
    }
    if (ready <= 0)
      continue;
    // Serve the connections first (fds[1..] are clients[0..] as they were
    // before any is dropped), from the back so that dropping keeps the
    // pairing of the ones not yet looked at.
    for (size_t i = clients.size(); i-- > 0;) {
      const short got = fds[i + 1].revents;
      if (!got)
        continue;
      Client &c = clients[i];
      if (c.out.empty()) {
        char buf[4096];
        ssize_t n = recv(c.fd, buf, sizeof buf, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
          continue;
        if (n <= 0) {
          drop(i);
          continue;
        }
        c.in.append(buf, size_t(n));
        const size_t end = c.in.find('\n');
        if (end == std::string::npos) {
          if (c.in.size() > 4096) // no request is this long
            drop(i);
          continue;
        }
        answer(c, c.in.substr(0, end));
      }
      ssize_t put = send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent,
                         MSG_NOSIGNAL);
      if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        continue;
      if (put <= 0) {
        drop(i);
        continue;
      }
      c.sent += size_t(put);
      if (c.sent == c.out.size()) {
        if (c.rank > 0 && c.out == ok)
          served.insert(int32_t(c.rank));
        if (c.rank > 0)
          told.insert(int32_t(c.rank)); // the id or the job's end
        drop(i);
      }
    }
    // Then new connections, as many as are waiting and fit.
    if (fds[0].revents & POLLIN)
      while (clients.size() < full) {
        int c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
          if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue; // that one is gone; others may wait
          if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
              errno == ENOMEM) {
            lastRefusal = std::string("accept: ") + std::strerror(errno) +
                          " with " + std::to_string(clients.size()) +
                          " connections open";
            full = clients.size();
            retryAccept = Clock::now() + std::chrono::milliseconds(100);
          }
          break; // EAGAIN: none left
        }
        Client client;
        client.fd = c;
        client.by = std::min(deadline, Clock::now() + kClientTime);
        clients.push_back(std::move(client));
      }
  }
  for (const Client &c : clients)
    close(c.fd);
  close(fd);
  if (!conflict.ok())
    return conflict;
  if (int32_t(served.size()) >= env.size - 1)
    return Status::success();
  std::string missing;
  for (int32_t r = 1, listed = 0; r < env.size && listed < 8; ++r)
    if (!served.count(r))
      missing += (listed++ ? ", " : "") + std::to_string(r);
  return Status::failure(
      "rendezvous: rank 0 served " + std::to_string(served.size()) +
      " of the " + std::to_string(env.size - 1) + " other ranks on port " +
      std::to_string(port) + " before the timeout; not ranks " + missing +
      (lastRefusal.empty() ? "" : " (refused: " + lastRefusal + ")"));
}

Status fetchTcp(const LaunchEnv &env, const std::string &host, int32_t port,
                const Identity &me, std::vector<uint8_t> &blob,
                Clock::time_point deadline) {
  const std::string request = std::string(kMagic) + " " + me.job + " " +
                              std::to_string(env.rank) + " " + me.plan + "\n";
  std::string lastError = "no answer";
  auto pause = std::chrono::milliseconds(50);
  while (Clock::now() < deadline) {
    addrinfo hints{}, *found = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints,
                          &found);
    if (gai != 0) {
      lastError = "cannot resolve " + host + ": " + gai_strerror(gai);
      backOff(pause, deadline);
      continue;
    }
    for (addrinfo *a = found; a; a = a->ai_next) {
      int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);
      if (fd < 0)
        continue;
      if (!connectBefore(fd, a->ai_addr, a->ai_addrlen,
                         std::min(deadline, Clock::now() +
                                                std::chrono::seconds(5)),
                         lastError)) {
        close(fd);
        continue;
      }
      std::string line;
      bool answered = writeAll(fd, request) && readLine(fd, line, deadline);
      close(fd);
      if (!answered) {
        lastError = "the connection closed without an answer";
        continue;
      }
      if (line.rfind("OK ", 0) == 0 && unhex(line.substr(3), blob)) {
        freeaddrinfo(found);
        return Status::success();
      }
      const std::string other = "ERR another plan ", ends = "ERR the job ends: ";
      if (line.rfind(other, 0) == 0) {
        freeaddrinfo(found);
        return otherPlan(env.rank, me.planText,
                         planTextOf(line.substr(other.size())));
      }
      if (line.rfind(ends, 0) == 0) {
        freeaddrinfo(found);
        return Status::failure("rendezvous: rank 0 ends the job: " +
                               line.substr(ends.size()));
      }
      lastError = "rank 0 answered '" + line.substr(0, 120) + "'";
      break;
    }
    freeaddrinfo(found);
    backOff(pause, deadline);
  }
  return Status::failure("rendezvous: rank " + std::to_string(env.rank) +
                         " got no id from rank 0 at " + host + ":" +
                         std::to_string(port) + " before the timeout (" +
                         lastError + ")");
}

Status shareFile(const LaunchEnv &env, const std::string &path,
                 const Identity &me, std::vector<uint8_t> &blob,
                 Clock::time_point deadline) {
  if (env.rank == 0) {
    std::string text = std::string(kMagic) + "\n" + me.job + "\n" +
                       me.plan + "\n" + hex(blob.data(), blob.size()) + "\n";
    return writeFileAtomically(path, text.data(), text.size());
  }
  std::string seen = "no file";
  auto pause = std::chrono::milliseconds(50);
  while (Clock::now() < deadline) {
    std::ifstream in(path);
    std::string magic, theirKey, theirPlan, data;
    if (in && std::getline(in, magic) && std::getline(in, theirKey) &&
        std::getline(in, theirPlan) && std::getline(in, data)) {
      if (magic != kMagic)
        return Status::failure("rendezvous: " + path +
                               " is not a pipec rendezvous file");
      if (theirKey == me.job && theirPlan == me.plan) {
        if (!unhex(data, blob))
          return Status::failure("rendezvous: " + path +
                                 " holds a malformed id");
        return Status::success();
      }
      // This job's rank 0 on another plan. Without a job id (no
      // launcher's) the file may be an earlier run's: wait for this one's.
      if (theirKey == me.job && !me.anonymous)
        return otherPlan(env.rank, me.planText, planTextOf(theirPlan));
      seen = theirKey == me.job
                 ? "it holds the id of a run of plan " +
                       planTextOf(theirPlan) +
                       " (an earlier run's, or rank 0 was given another "
                       "plan?)"
                 : "it holds another job's id (left by an earlier run?)";
    }
    backOff(pause, deadline);
  }
  return Status::failure("rendezvous: rank " + std::to_string(env.rank) +
                         " found no id of this job in " + path +
                         " before the timeout (" + seen +
                         "); every machine must see the path, and rank 0 "
                         "writes it");
}

} // namespace

/// Expands one host name's bracketed ranges, left to right (Slurm allows
/// several in one name: rack[1-2]-gpu[01-04]).
static Status expandName(const std::string &list, const std::string &name,
                         std::vector<std::string> &out) {
  size_t open = name.find('[');
  if (open == std::string::npos) {
    if (name.find(']') != std::string::npos)
      return Status::failure("host list '" + list + "': ']' without '['");
    out.push_back(name);
    return Status::success();
  }
  size_t close = name.find(']', open);
  if (close == std::string::npos)
    return Status::failure("host list '" + list + "': '[' without ']'");
  const std::string prefix = name.substr(0, open);
  const std::string rest = name.substr(close + 1);
  std::stringstream ranges(name.substr(open + 1, close - open - 1));
  std::string part;
  bool any = false;
  while (std::getline(ranges, part, ',')) {
    size_t dash = part.find('-');
    std::string lo = part.substr(0, dash),
                hi = dash == std::string::npos ? lo : part.substr(dash + 1);
    int64_t a = 0, b = 0;
    std::string error;
    if (!parseInteger("a host range", lo, 0, int64_t(1) << 40, a, error) ||
        !parseInteger("a host range", hi, 0, int64_t(1) << 40, b, error) ||
        b < a)
      return Status::failure("host list '" + list + "': bad range '" + part +
                             "'");
    if (b - a > 1000000 || out.size() > 10000000)
      return Status::failure("host list '" + list + "': too many hosts");
    for (int64_t v = a; v <= b; ++v) {
      std::string digits = std::to_string(v);
      if (digits.size() < lo.size())
        digits.insert(0, lo.size() - digits.size(), '0');
      if (Status s = expandName(list, prefix + digits + rest, out); !s.ok())
        return s;
    }
    any = true;
  }
  if (!any)
    return Status::failure("host list '" + list + "': an empty range");
  return Status::success();
}

Status expandHostList(const std::string &list, std::vector<std::string> &out) {
  out.clear();
  // Names are separated by commas outside brackets.
  std::string name;
  int depth = 0;
  for (size_t i = 0; i <= list.size(); ++i) {
    char c = i < list.size() ? list[i] : ',';
    if (c == ',' && depth == 0) {
      if (!name.empty())
        if (Status s = expandName(list, name, out); !s.ok())
          return s;
      name.clear();
      continue;
    }
    depth += c == '[' ? 1 : c == ']' ? -1 : 0;
    if (depth < 0 || depth > 1)
      return Status::failure("host list '" + list + "': unbalanced brackets");
    name += c;
  }
  if (depth != 0)
    return Status::failure("host list '" + list + "': '[' without ']'");
  if (out.empty())
    return Status::failure("host list '" + list + "' names no host");
  return Status::success();
}

Status readLaunchEnv(const std::function<const char *(const char *)> &getenv,
                     LaunchEnv &out) {
  out = LaunchEnv{};
  auto get = [&](const char *name) -> std::string {
    const char *v = getenv(name);
    return v ? std::string(v) : std::string();
  };
  struct Scheme {
    const char *launcher, *rank, *size, *local;
  };
  static const Scheme schemes[] = {
      {"pipec-run", "PIPEC_RANK", "PIPEC_WORLD_SIZE", "PIPEC_LOCAL_RANK"},
      {"mpirun", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
       "OMPI_COMM_WORLD_LOCAL_RANK"},
      {"srun", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID"},
      {"pmi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID"}};
  out.rendezvous = get("PIPEC_RENDEZVOUS");
  // Hydra's mpiexec inside a Slurm job: the processes also see the batch
  // step's SLURM_PROCID (0 for all); srun with PMI sets both alike.
  const bool hydraInSlurm =
      !get("PMI_RANK").empty() &&
      (get("PMI_RANK") != get("SLURM_PROCID") ||
       get("PMI_SIZE") != get("SLURM_NTASKS"));
  for (const Scheme &s : schemes) {
    if (get(s.rank).empty())
      continue;
    if (std::string(s.launcher) == "srun" && hydraInSlurm)
      continue;
    out.launcher = s.launcher;
    int64_t rank = 0, size = 0, local = 0;
    std::string error;
    if (!parseInteger(s.size, get(s.size), 1, 1 << 30, size, error) ||
        !parseInteger(s.rank, get(s.rank), 0, size - 1, rank, error))
      return Status::failure(std::string(s.launcher) + "'s environment: " +
                             error);
    if (!get(s.local).empty() &&
        !parseInteger(s.local, get(s.local), 0, 1 << 20, local, error))
      return Status::failure(std::string(s.launcher) + "'s environment: " +
                             error);
    out.rank = int32_t(rank);
    out.size = int32_t(size);
    out.localRank = int32_t(local);
    break;
  }
  if (out.launcher == "pipec-run")
    out.jobId = get("PIPEC_JOB_ID");
  else if (out.launcher == "mpirun")
    out.jobId = get("PMIX_NAMESPACE").empty() ? get("OMPI_MCA_ess_base_jobid")
                                              : get("PMIX_NAMESPACE");
  else if (out.launcher == "pmi")
    out.jobId = get("PMI_KVSNAME");
  else if (out.launcher == "srun") {
    out.jobId = get("SLURM_JOB_ID") + "." + get("SLURM_STEP_ID");
    std::string list = get("SLURM_STEP_NODELIST").empty()
                           ? get("SLURM_JOB_NODELIST")
                           : get("SLURM_STEP_NODELIST");
    if (!list.empty())
      if (Status s = expandHostList(list, out.hosts); !s.ok())
        return Status::failure("srun's environment: " + s.message());
  }
  return Status::success();
}

Status chooseRendezvous(const LaunchEnv &env, const std::string &given,
                        std::string &out) {
  out = !given.empty() ? given : env.rendezvous;
  if (out.empty()) {
    if (env.size == 1) {
      out = "self";
      return Status::success();
    }
    if (env.launcher == "srun" && !env.hosts.empty()) {
      // A port per job step, so two steps on one host do not meet.
      uint64_t h = fnv1a(env.jobId.data(), env.jobId.size());
      // Below Linux's ephemeral ports (32768 up), which clients take.
      out = "tcp:" + env.hosts[0] + ":" + std::to_string(20000 + h % 12000);
      return Status::success();
    }
    return Status::failure(
        std::string("a job of ") + std::to_string(env.size) +
        " processes under " + (env.launcher.empty() ? "no launcher" : env.launcher) +
        " needs --rendezvous tcp:HOST:PORT (HOST: rank 0's machine) or "
        "--rendezvous file:PATH (a path every machine sees)");
  }
  if (out == "self")
    return env.size == 1 ? Status::success()
                         : Status::failure("rendezvous 'self' is for one "
                                           "process, not " +
                                           std::to_string(env.size));
  if (out.rfind("file:", 0) == 0 && out.size() > 5)
    return Status::success();
  if (out.rfind("tcp:", 0) == 0) {
    std::string host;
    int32_t port = 0;
    return parseTcp(out, host, port);
  }
  return Status::failure("rendezvous '" + out +
                         "': give tcp:HOST:PORT or file:PATH");
}

Status shareBlob(const LaunchEnv &env, const std::string &rendezvous,
                 const std::string &jobKey, const std::string &planId,
                 std::vector<uint8_t> &blob, Clock::time_point deadline) {
  if (env.size == 1)
    return Status::success();
  const Identity key = identityOf(jobKey, planId);
  if (rendezvous.rfind("file:", 0) == 0)
    return shareFile(env, rendezvous.substr(5), key, blob, deadline);
  if (rendezvous.rfind("tcp:", 0) == 0) {
    std::string host;
    int32_t port = 0;
    if (Status s = parseTcp(rendezvous, host, port); !s.ok())
      return s;
    return env.rank == 0 ? serveTcp(env, port, key, blob, deadline)
                         : fetchTcp(env, host, port, key, blob, deadline);
  }
  return Status::failure("rendezvous '" + rendezvous +
                         "': give tcp:HOST:PORT or file:PATH");
}

} // namespace pipert
