//===- RendezvousTest.cpp - launcher variables and the shared id ----------===//
//
// Every launcher's variables give the rank, size and local rank; Slurm's
// host lists expand; the rendezvous is chosen or refused with a reason;
// and the blob rank 0 holds reaches every other process through a file
// and over tcp (ranks as threads here, the same code as processes),
// while a file or a server of another job is never taken for this one's.
//
//===----------------------------------------------------------------------===//

#include "pipert/Rendezvous.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace {

using Env = std::map<std::string, std::string>;

pipert::Status readEnv(const Env &env, pipert::LaunchEnv &out) {
  return pipert::readLaunchEnv(
      [&](const char *name) -> const char * {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      out);
}

TEST(Rendezvous, EveryLauncherSaysRankSizeAndLocalRank) {
  pipert::LaunchEnv e;
  ASSERT_TRUE(readEnv({{"OMPI_COMM_WORLD_RANK", "5"},
                       {"OMPI_COMM_WORLD_SIZE", "16"},
                       {"OMPI_COMM_WORLD_LOCAL_RANK", "1"},
                       {"PMIX_NAMESPACE", "prterun-n1-4242@1"},
                       // mpirun inside a Slurm allocation: mpirun's count.
                       {"SLURM_PROCID", "0"},
                       {"SLURM_NTASKS", "1"}},
                      e)
                  .ok());
  EXPECT_EQ(e.launcher, "mpirun");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.size, 16);
  EXPECT_EQ(e.localRank, 1);
  EXPECT_EQ(e.jobId, "prterun-n1-4242@1");

  ASSERT_TRUE(readEnv({{"SLURM_PROCID", "9"},
                       {"SLURM_NTASKS", "32"},
                       {"SLURM_LOCALID", "1"},
                       {"SLURM_JOB_ID", "777"},
                       {"SLURM_STEP_ID", "2"},
                       {"SLURM_STEP_NODELIST", "gpu[007-009],login2"}},
                      e)
                  .ok());
  EXPECT_EQ(e.launcher, "srun");
  EXPECT_EQ(e.rank, 9);
  EXPECT_EQ(e.size, 32);
  EXPECT_EQ(e.localRank, 1);
  EXPECT_EQ(e.jobId, "777.2");
  EXPECT_EQ(e.hosts, (std::vector<std::string>{"gpu007", "gpu008", "gpu009",
                                               "login2"}));

  ASSERT_TRUE(readEnv({{"PIPEC_RANK", "2"},
                       {"PIPEC_WORLD_SIZE", "4"},
                       {"PIPEC_LOCAL_RANK", "2"},
                       {"PIPEC_JOB_ID", "abc"},
                       {"PIPEC_RENDEZVOUS", "tcp:127.0.0.1:5000"}},
                      e)
                  .ok());
  EXPECT_EQ(e.launcher, "pipec-run");
  EXPECT_EQ(e.rendezvous, "tcp:127.0.0.1:5000");

  // srun with PMI sets both alike: srun's (it names the hosts); Hydra's
  // mpiexec inside a Slurm job sees the batch step's SLURM_PROCID 0.
  ASSERT_TRUE(readEnv({{"PMI_RANK", "3"}, {"PMI_SIZE", "4"},
                       {"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"},
                       {"SLURM_STEP_NODELIST", "n1"}},
                      e)
                  .ok());
  EXPECT_EQ(e.launcher, "srun");
  ASSERT_TRUE(readEnv({{"PMI_RANK", "3"}, {"PMI_SIZE", "4"},
                       {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}},
                      e)
                  .ok());
  EXPECT_EQ(e.launcher, "pmi");
  EXPECT_EQ(e.rank, 3);

  ASSERT_TRUE(readEnv({}, e).ok());
  EXPECT_EQ(e.launcher, "");
  EXPECT_EQ(e.size, 1);

  pipert::Status bad = readEnv(
      {{"OMPI_COMM_WORLD_RANK", "4"}, {"OMPI_COMM_WORLD_SIZE", "4"}}, e);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("OMPI_COMM_WORLD_RANK"), std::string::npos)
      << bad.message();
  bad = readEnv({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "x2"}}, e);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.message().find("SLURM_NTASKS"), std::string::npos);
}

TEST(Rendezvous, SlurmHostListsExpand) {
  std::vector<std::string> h;
  ASSERT_TRUE(pipert::expandHostList("a[1-3,10],b,c[08-09]-ib", h).ok());
  EXPECT_EQ(h, (std::vector<std::string>{"a1", "a2", "a3", "a10", "b",
                                         "c08-ib", "c09-ib"}));
  ASSERT_TRUE(pipert::expandHostList("rack[1-2]-gpu[08-09],x", h).ok());
  EXPECT_EQ(h, (std::vector<std::string>{"rack1-gpu08", "rack1-gpu09",
                                         "rack2-gpu08", "rack2-gpu09", "x"}));
  EXPECT_FALSE(pipert::expandHostList("a[3-1]", h).ok());
  EXPECT_FALSE(pipert::expandHostList("a]1[", h).ok());
  EXPECT_FALSE(pipert::expandHostList("a[[1]]", h).ok());
  EXPECT_FALSE(pipert::expandHostList("a[1-3", h).ok());
  EXPECT_FALSE(pipert::expandHostList("", h).ok());
}

TEST(Rendezvous, TheChoiceIsGivenDefaultedOrRefusedWithAReason) {
  pipert::LaunchEnv e;
  std::string r;
  e.size = 1;
  ASSERT_TRUE(pipert::chooseRendezvous(e, "", r).ok());
  EXPECT_EQ(r, "self");
  e.size = 8;
  e.launcher = "srun";
  e.jobId = "12.0";
  e.hosts = {"node3", "node4"};
  ASSERT_TRUE(pipert::chooseRendezvous(e, "", r).ok());
  EXPECT_EQ(r.rfind("tcp:node3:", 0), 0u) << r;
  e.launcher = "mpirun";
  e.hosts.clear();
  pipert::Status s = pipert::chooseRendezvous(e, "", r);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("needs --rendezvous tcp:HOST:PORT"),
            std::string::npos);
  ASSERT_TRUE(pipert::chooseRendezvous(e, "file:/shared/id", r).ok());
  ASSERT_TRUE(pipert::chooseRendezvous(e, "tcp:[::1]:29500", r).ok());
  EXPECT_FALSE(pipert::chooseRendezvous(e, "tcp:host:0", r).ok());
  EXPECT_FALSE(pipert::chooseRendezvous(e, "tcp:host", r).ok());
  EXPECT_FALSE(pipert::chooseRendezvous(e, "udp:host:1", r).ok());
  EXPECT_FALSE(pipert::chooseRendezvous(e, "self", r).ok());
}

/// A port nothing listens on now.
int freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

/// Runs shareBlob on `ranks` threads (rank r of job keys[r] on plan
/// plans[r], plan "p" for all when none are given); each one's status,
/// blob and seconds taken.
void shareOnThreads(int32_t ranks, const std::string &rendezvous,
                    const std::vector<std::string> &keys,
                    std::vector<pipert::Status> &status,
                    std::vector<std::vector<uint8_t>> &blobs,
                    std::chrono::milliseconds timeout,
                    std::vector<std::string> plans = {},
                    std::vector<double> *seconds = nullptr) {
  status.assign(size_t(ranks), pipert::Status::success());
  blobs.assign(size_t(ranks), {});
  if (plans.empty())
    plans.assign(size_t(ranks), "p");
  if (seconds)
    seconds->assign(size_t(ranks), 0.0);
  for (int i = 0; i < 128; ++i)
    blobs[0].push_back(uint8_t(i * 7 + 3));
  std::vector<std::thread> threads;
  for (int32_t r = 0; r < ranks; ++r)
    threads.emplace_back([&, r] {
      pipert::LaunchEnv e;
      e.rank = r;
      e.size = ranks;
      const auto start = pipert::Clock::now();
      status[size_t(r)] =
          pipert::shareBlob(e, rendezvous, keys[size_t(r)], plans[size_t(r)],
                            blobs[size_t(r)], start + timeout);
      if (seconds)
        (*seconds)[size_t(r)] =
            std::chrono::duration<double>(pipert::Clock::now() - start)
                .count();
    });
  for (std::thread &t : threads)
    t.join();
}

TEST(Rendezvous, TheIdReachesEveryRankOverTcp) {
  std::vector<pipert::Status> st;
  std::vector<std::vector<uint8_t>> blobs;
  shareOnThreads(5, "tcp:127.0.0.1:" + std::to_string(freePort()),
                 std::vector<std::string>(5, "job 1"), st, blobs,
                 std::chrono::seconds(20));
  for (int32_t r = 0; r < 5; ++r) {
    ASSERT_TRUE(st[size_t(r)].ok()) << st[size_t(r)].message();
    EXPECT_EQ(blobs[size_t(r)], blobs[0]) << "rank " << r;
  }
}

/// A connection to 127.0.0.1:port once something listens there (-1 if
/// nothing does within 5 s).
int connectWhenListening(int port) {
  const auto until = pipert::Clock::now() + std::chrono::seconds(5);
  while (pipert::Clock::now() < until) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(uint16_t(port));
    if (connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0)
      return fd;
    close(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

// Rank 0 serves many connections at once: connections that never finish
// their request (a port scanner, a hung process) hold a slot each for up
// to 10 s, and 256 ranks arriving behind them still get the id within
// their 8 s (a server taking one connection at a time would wait on the
// first silent one past every rank's deadline).
TEST(Rendezvous, SilentConnectionsDelayNoOneAmongManyRanks) {
  const int port = freePort();
  const std::string where = "tcp:127.0.0.1:" + std::to_string(port);
  const int32_t ranks = 257;
  std::vector<uint8_t> id;
  for (int i = 0; i < 128; ++i)
    id.push_back(uint8_t(i * 5 + 1));
  pipert::Status served = pipert::Status::success();
  std::thread rank0([&] {
    pipert::LaunchEnv e;
    e.rank = 0;
    e.size = ranks;
    std::vector<uint8_t> mine = id;
    served = pipert::shareBlob(e, where, "job S", "p", mine,
                               pipert::Clock::now() + std::chrono::seconds(20));
  });
  std::vector<int> silent;
  for (int k = 0; k < 3; ++k)
    silent.push_back(connectWhenListening(port));
  for (int fd : silent)
    EXPECT_GE(fd, 0) << "rank 0 never listened";
  // One of them starts a request and never ends it.
  const char partial[] = "PIPEC-RENDEZVOUS 1 ";
  if (silent[1] >= 0)
    EXPECT_GT(send(silent[1], partial, sizeof partial - 1, 0), 0);
  // Every thread is joined before anything is asserted (a test that
  // returns with a live std::thread ends the whole binary).
  std::vector<pipert::Status> st(size_t(ranks), pipert::Status::success());
  std::vector<std::vector<uint8_t>> got(static_cast<size_t>(ranks));
  std::vector<std::thread> threads;
  for (int32_t r = 1; r < ranks; ++r)
    threads.emplace_back([&, r] {
      pipert::LaunchEnv e;
      e.rank = r;
      e.size = ranks;
      st[size_t(r)] =
          pipert::shareBlob(e, where, "job S", "p", got[size_t(r)],
                            pipert::Clock::now() + std::chrono::seconds(8));
    });
  for (std::thread &t : threads)
    t.join();
  rank0.join();
  for (int fd : silent)
    if (fd >= 0)
      close(fd);
  ASSERT_TRUE(served.ok()) << served.message();
  for (int32_t r = 1; r < ranks; ++r) {
    ASSERT_TRUE(st[size_t(r)].ok()) << "rank " << r << ": " << st[size_t(r)].message();
    ASSERT_EQ(got[size_t(r)], id) << "rank " << r;
  }
}

TEST(Rendezvous, AnotherJobsRankIsRefusedAndTheMissingRankNamed) {
  std::vector<pipert::Status> st;
  std::vector<std::vector<uint8_t>> blobs;
  shareOnThreads(3, "tcp:localhost:" + std::to_string(freePort()),
                 {"job A", "job A", "job B"}, st, blobs,
                 std::chrono::milliseconds(1500));
  ASSERT_TRUE(st[1].ok()) << st[1].message();
  ASSERT_FALSE(st[0].ok());
  EXPECT_NE(st[0].message().find("not ranks 2"), std::string::npos)
      << st[0].message();
  EXPECT_NE(st[0].message().find("of another job"), std::string::npos)
      << st[0].message();
  ASSERT_FALSE(st[2].ok());
  EXPECT_NE(st[2].message().find("another job"), std::string::npos)
      << st[2].message();
}

TEST(Rendezvous, TheIdReachesEveryRankThroughAFileButAStaleOneIsNotTaken) {
  auto dir = std::filesystem::temp_directory_path() /
             ("pipec-rdv-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  std::string path = (dir / "id").string();
  std::vector<pipert::Status> st;
  std::vector<std::vector<uint8_t>> blobs;
  shareOnThreads(4, "file:" + path, std::vector<std::string>(4, "job 7"), st,
                 blobs, std::chrono::seconds(20));
  for (int32_t r = 0; r < 4; ++r) {
    ASSERT_TRUE(st[size_t(r)].ok()) << st[size_t(r)].message();
    EXPECT_EQ(blobs[size_t(r)], blobs[0]);
  }
  // The file job 7 left: job 8's rank 1 waits for its own, then says so.
  pipert::LaunchEnv e;
  e.rank = 1;
  e.size = 2;
  std::vector<uint8_t> got;
  pipert::Status s = pipert::shareBlob(
      e, "file:" + path, "job 8", "p", got,
      pipert::Clock::now() + std::chrono::milliseconds(400));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("another job's id"), std::string::npos)
      << s.message();
  // Job 7's rank 1 given another plan than its rank 0 fails at once,
  // naming both (long before its 30 s).
  const auto start = pipert::Clock::now();
  s = pipert::shareBlob(e, "file:" + path, "job 7", "other", got,
                        start + std::chrono::seconds(30));
  EXPECT_LT(pipert::Clock::now() - start, std::chrono::seconds(15));
  EXPECT_NE(s.message().find("rank 1 runs plan other but rank 0 runs plan "
                             "p: every process of a job must be started "
                             "with the same plan folder"),
            std::string::npos)
      << s.message();
  // Without a job id, a file of another plan may be an earlier run's:
  // waited past, then named.
  pipert::LaunchEnv first = e;
  first.rank = 0;
  std::vector<uint8_t> id = blobs[0];
  ASSERT_TRUE(pipert::shareBlob(first, "file:" + path, "", "p", id,
                                pipert::Clock::now() + std::chrono::seconds(5))
                  .ok());
  s = pipert::shareBlob(e, "file:" + path, "", "other", got,
                        pipert::Clock::now() + std::chrono::milliseconds(400));
  EXPECT_NE(s.message().find("before the timeout (it holds the id of a run "
                             "of plan p (an earlier run's, or rank 0 was "
                             "given another plan?)"),
            std::string::npos)
      << s.message();
  std::filesystem::remove_all(dir);
}

TEST(Rendezvous, AProcessGivenAnotherPlanEndsTheJobAtOnceOverTcp) {
  // Rank 2 of job A runs another plan than rank 0: rank 2 and rank 0 fail
  // at once naming both plans, and rank 1 has the id or is told the job
  // ends, all long before their 30 s deadline.
  const std::string x = "00112233aabbccdd", y = "ffeeddcc44332211";
  std::vector<pipert::Status> st;
  std::vector<std::vector<uint8_t>> blobs;
  std::vector<double> seconds;
  shareOnThreads(3, "tcp:127.0.0.1:" + std::to_string(freePort()),
                 {"job A", "job A", "job A"}, st, blobs,
                 std::chrono::seconds(30), {x, x, y}, &seconds);
  const std::string named = "rank 2 runs plan " + y + " but rank 0 runs plan " +
                            x + ": every process of a job must be started "
                                "with the same plan folder";
  for (int32_t r : {0, 2}) {
    ASSERT_FALSE(st[size_t(r)].ok()) << "rank " << r;
    EXPECT_NE(st[size_t(r)].message().find(named), std::string::npos)
        << st[size_t(r)].message();
  }
  EXPECT_TRUE(st[1].ok() ||
              st[1].message().find("rendezvous: rank 0 ends the job: " +
                                   named) != std::string::npos)
      << st[1].message();
  for (int32_t r = 0; r < 3; ++r)
    EXPECT_LT(seconds[size_t(r)], 15.0) << "rank " << r;

  // Rank 0 is the one given another plan: every other rank hears of it at
  // once, each naming its own plan and rank 0's.
  shareOnThreads(4, "tcp:127.0.0.1:" + std::to_string(freePort()),
                 std::vector<std::string>(4, "job B"), st, blobs,
                 std::chrono::seconds(30), {y, x, x, x}, &seconds);
  ASSERT_FALSE(st[0].ok());
  EXPECT_NE(st[0].message().find("but rank 0 runs plan " + y),
            std::string::npos)
      << st[0].message();
  for (int32_t r = 1; r < 4; ++r) {
    ASSERT_FALSE(st[size_t(r)].ok()) << "rank " << r;
    EXPECT_NE(st[size_t(r)].message().find(
                  "rank " + std::to_string(r) + " runs plan " + x +
                  " but rank 0 runs plan " + y),
              std::string::npos)
        << st[size_t(r)].message();
  }
  for (int32_t r = 0; r < 4; ++r)
    EXPECT_LT(seconds[size_t(r)], 15.0) << "rank " << r;
}

TEST(Rendezvous, WithoutAJobIdAnotherPlansProcessIsAnotherRunsOverTcp) {
  // No launcher's job id: a process asking with another plan may be an
  // earlier run's still retrying, so it is refused, not taken for a
  // broken job; the timeout names it.
  std::vector<pipert::Status> st;
  std::vector<std::vector<uint8_t>> blobs;
  shareOnThreads(2, "tcp:127.0.0.1:" + std::to_string(freePort()), {"", ""},
                 st, blobs, std::chrono::milliseconds(1500), {"p1", "p2"});
  ASSERT_FALSE(st[0].ok());
  EXPECT_NE(st[0].message().find("(refused: rank 1 on plan p2 (another "
                                 "run's, or given another plan?))"),
            std::string::npos)
      << st[0].message();
  ASSERT_FALSE(st[1].ok());
  EXPECT_NE(st[1].message().find("another job"), std::string::npos)
      << st[1].message();
}

} // namespace
