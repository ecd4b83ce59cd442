// daemon_test.cpp - the built `eximguard` as an admin uses it, on real files, a real SQLite
// store and a real shared-memory table: `start` following a log (an incident within a second,
// rename and copytruncate rotation, SIGHUP, SIGTERM, kill -9 and restart with nothing lost or
// recorded twice, one follower at a time), `run`, `skip`, `rerun` of a .gz, `replay` (kinds,
// JSON, scenarios with benign traffic), `suspend`/`unsuspend` in the table, `whitelist`,
// `incidents`, `why`, `list`, `status`, `reset`.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon.h"
#include "sidecar_test_util.h"
#include "state_store.h"
#include "time_text.h"
#include "verbs_support.h"

namespace eg::sidecar {
namespace {

using testing::CliResult;
using testing::RunCli;
using Json = nlohmann::ordered_json;
using namespace std::chrono_literals;

// 10:00:00 local time two days ago: more than a day ago (`incidents` shows 24 h by default), well
// within retention, and derived from the clock so the tests pass on any day.
int64_t Base() {
  static const int64_t base = testing::DaysAgoAt(2, 10);
  return base;
}

// An authenticated arrival at Base() + offset with n recipients at far.example.
std::string Arrival(int offset, const std::string& account, int n,
                    const std::string& ip = "198.51.100.7", const std::string& subject = "") {
  static int counter = 0;
  const int seq = ++counter;
  std::string line = LocalTimeText(Base() + offset) + " 1tABCD-" + std::to_string(100000 + seq) +
                     "-AB <= " + account + " H=(pc) [" + ip +
                     "]:5555 P=esmtpsa A=dovecot_login:" + account + " S=900 T=\"" +
                     (subject.empty() ? "note " + std::to_string(seq) : subject) + "\" for";
  for (int i = 0; i < n; ++i)
    line += " r" + std::to_string(i) + "x" + std::to_string(seq) + "@far.example";
  return line + "\n";
}

// The same, stamped at the wall clock + offset: what a followed log gets while it happens.
std::string LiveArrival(int offset, const std::string& account, int n) {
  return Arrival(static_cast<int>(time(nullptr) - Base()) + offset, account, n);
}

void Append(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::app | std::ios::binary);
  out << text;
}

class Daemon : public testing::CliFixture {
 protected:
  void SetUp() override { log_ = dir_.File("mainlog"); }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // Starts `eximguard start` in the background; its stderr goes to daemon.err.
  void Start() {
    std::vector<std::string> args = {EG_SIDECAR_BIN, "start", "--config", config_path_};
    std::vector<char*> argv;
    for (std::string& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, dir_.File("daemon.out").c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, dir_.File("daemon.err").c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0600);
    ASSERT_EQ(posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    // Ready when it has written its status file.
    ASSERT_TRUE(WaitFor([&] { return std::filesystem::exists(dir_.File("state/status.json")); }))
        << testing::ReadFile(dir_.File("daemon.err"));
  }
  // Sends `sig` and waits for the exit; returns the exit code (-1: killed by a signal).
  int Stop(int sig = SIGTERM) {
    kill(pid_, sig);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    std::filesystem::remove(dir_.File("state/status.json"));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  template <typename Pred>
  static bool WaitFor(Pred pred, std::chrono::milliseconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(5ms);
    }
    return pred();
  }
  std::vector<StoredIncident> Incidents() {
    std::string error;
    auto store = StateStore::Open(dir_.File("state"), &error);
    std::vector<StoredIncident> out;
    if (store) store->ListIncidents(0, 0, &out, &error);
    return out;
  }
  std::set<std::string> IncidentKeys() {
    std::set<std::string> keys;
    for (const StoredIncident& i : Incidents()) keys.insert(i.key + " " + i.rule);
    return keys;
  }

  std::string log_;
  pid_t pid_ = -1;
};

// ---- start -----------------------------------------------------------------------------------

// A log burst the guard never saw is recorded within a second, as a notice only.
TEST_F(Daemon, StartRecordsALogIncidentWithinASecondButDoesNotPunishOnLogLines) {
  WriteConfig();
  Append(log_, Arrival(0, "calm@victim.example", 1));
  Start();
  const auto t0 = std::chrono::steady_clock::now();
  std::string burst;
  for (int i = 0; i < 5; ++i) burst += LiveArrival(i - 5, "spam@victim.example", 2);
  Append(log_, burst);
  ASSERT_TRUE(WaitFor([&] { return !Incidents().empty(); }, 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1s);
  const std::vector<StoredIncident> inc = Incidents();
  ASSERT_EQ(inc.size(), 1u);
  EXPECT_EQ(inc[0].key, "spam@victim.example");
  EXPECT_EQ(inc[0].rule, "rate_per_minute");
  EXPECT_FALSE(inc[0].trusted);
  EXPECT_EQ(inc[0].action, "none (not corroborated: to act on it, eximguard act ID)");
  auto seg = Open();
  ASSERT_TRUE(seg);
  EXPECT_EQ(
      Send(*seg, KeyClass::kSender, "spam@victim.example", 1, static_cast<uint32_t>(time(nullptr))),
      Verdict::kOk);
  EXPECT_EQ(Stop(), 0);
  const std::string err = testing::ReadFile(dir_.File("daemon.err"));
  EXPECT_NE(err.find("incident #1 rate_per_minute sender spam@victim.example: 10 (threshold 8); "
                     "untrusted"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("stopped: "), std::string::npos) << err;
}

// Issue 9.4: a key the guard keeps refusing (a leaked password hammering its limit) surfaces
// within a second or two from the table itself; with block in its rule it is blocked.
TEST_F(Daemon, AKeyTheGuardKeepsRefusingIsThrottledAndItsRuleActs) {
  WriteConfig({{"detectors", {{"throttled_refused", 10}}},
               {"actions", {{"rules", {{"throttled", {"block"}}}}}}});
  Start();
  auto seg = Open();
  ASSERT_TRUE(seg);
  const auto now = [] { return static_cast<uint32_t>(time(nullptr)); };
  int deferred = 0;
  for (int i = 0; i < 20; ++i) {
    deferred += Send(*seg, KeyClass::kSender, "leaked@victim.example", 1, now()) == Verdict::kDefer;
  }
  EXPECT_EQ(deferred, 12);
  ASSERT_TRUE(WaitFor([&] { return IncidentKeys().count("leaked@victim.example throttled"); }, 5s))
      << testing::ReadFile(dir_.File("daemon.err"));
  const std::vector<StoredIncident> inc = Incidents();
  ASSERT_EQ(inc.size(), 1u);
  EXPECT_TRUE(inc[0].trusted);
  EXPECT_EQ(inc[0].action, "block");
  EXPECT_TRUE(WaitFor([&] {
    return Send(*seg, KeyClass::kSender, "leaked@victim.example", 1, now()) == Verdict::kDeny;
  }));
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "calm@victim.example", 1, now()), Verdict::kOk);
  const CliResult why = RunCli({"why", "--config", config_path_, "leaked@victim.example"});
  EXPECT_NE(why.out.find("evidence: trusted (the guard itself refused 12 recipients"),
            std::string::npos)
      << why.out;
  EXPECT_EQ(Stop(), 0);
}

TEST_F(Daemon, StartFollowsRenameAndCopytruncateRotation) {
  WriteConfig({{"limits", {{"sender", {{"per_minute", 1}}}}}});
  Append(log_, Arrival(0, "a0@v.example", 1));
  Start();
  Append(log_, Arrival(1, "a1@v.example", 2));
  ASSERT_TRUE(WaitFor([&] { return IncidentKeys().count("a1@v.example rate_per_minute"); }));
  // Rename rotation: the old file gets one more line, then a new file appears.
  std::filesystem::rename(log_, log_ + ".1");
  Append(log_ + ".1", Arrival(2, "a2@v.example", 2));
  Append(log_, Arrival(3, "a3@v.example", 2));
  ASSERT_TRUE(WaitFor([&] { return IncidentKeys().count("a3@v.example rate_per_minute"); }));
  EXPECT_EQ(IncidentKeys().count("a2@v.example rate_per_minute"), 1u);
  // copytruncate: copied away, truncated in place, written again.
  std::filesystem::copy_file(log_, log_ + ".2");
  std::filesystem::resize_file(log_, 0);
  Append(log_, Arrival(4, "a4@v.example", 2));
  ASSERT_TRUE(WaitFor([&] { return IncidentKeys().count("a4@v.example rate_per_minute"); }));
  EXPECT_EQ(Stop(), 0);
  EXPECT_EQ(Incidents().size(), 4u);
}

TEST_F(Daemon, KillNineAndRestartLoseNothingAndRecordNothingTwice) {
  WriteConfig({{"limits", {{"sender", {{"per_minute", 1}}}}}, {"policy_capacity", 1024}});
  Start();
  // 300 accounts, each one line over the limit: 300 incidents, written while the daemon dies.
  std::thread writer([&] {
    for (int i = 0; i < 300; ++i) {
      Append(log_, Arrival(i, "k" + std::to_string(i) + "@v.example", 2));
      std::this_thread::sleep_for(1ms);
    }
  });
  std::this_thread::sleep_for(120ms);
  EXPECT_EQ(Stop(SIGKILL), -1);
  writer.join();
  Start();
  ASSERT_TRUE(WaitFor([&] { return Incidents().size() >= 300; }));
  std::this_thread::sleep_for(300ms);  // nothing more may come
  const std::vector<StoredIncident> inc = Incidents();
  EXPECT_EQ(inc.size(), 300u);
  EXPECT_EQ(IncidentKeys().size(), 300u);  // each key once
  EXPECT_EQ(Stop(), 0);
}

TEST_F(Daemon, ABurstThatStraddlesARestartIsStillSeen) {
  WriteConfig();
  Start();
  std::string before;
  for (int i = 0; i < 3; ++i) before += Arrival(i, "s@v.example", 2);
  Append(log_, before);  // 6 recipients: under 8
  ASSERT_TRUE(WaitFor([&] {
    const Json s = Json::parse(testing::ReadFile(dir_.File("state/status.json")), nullptr, false);
    return s.is_object() && s.value("lines", 0) == 3;
  }));
  EXPECT_EQ(Stop(SIGKILL), -1);
  Start();
  Append(log_, Arrival(10, "s@v.example", 3));  // 9 within the minute
  ASSERT_TRUE(WaitFor([&] { return IncidentKeys().count("s@v.example rate_per_minute"); }));
  EXPECT_EQ(Stop(), 0);
}

TEST_F(Daemon, OnlyOneFollowerAtATimeAndSighupReloads) {
  WriteConfig();
  Start();
  CliResult second = RunCli({"run", "--config", config_path_});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("another eximguard start or run is following the logs (pid " +
                            std::to_string(pid_) + ")"),
            std::string::npos)
      << second.err;
  // A bad config is refused on SIGHUP and the daemon goes on; a good one is taken.
  WriteConfig({{"limits", {{"sender", {{"per_minute", "x"}}}}}});
  kill(pid_, SIGHUP);
  ASSERT_TRUE(WaitFor([&] {
    return testing::ReadFile(dir_.File("daemon.err")).find("reload refused") != std::string::npos;
  }));
  WriteConfig({{"limits", {{"sender", {{"per_minute", 2}}}}}});
  kill(pid_, SIGHUP);
  ASSERT_TRUE(WaitFor([&] {
    return testing::ReadFile(dir_.File("daemon.err")).find("reloaded") != std::string::npos;
  }));
  Append(log_, LiveArrival(2, "x@v.example", 3));  // after the reload: judged by 2/minute
  ASSERT_TRUE(WaitFor([&] { return IncidentKeys().count("x@v.example rate_per_minute"); }));
  const CliResult status = RunCli({"status", "--config", config_path_});
  EXPECT_EQ(status.exit_code, 0);
  EXPECT_NE(status.out.find("eximguard is following the logs (pid " + std::to_string(pid_)),
            std::string::npos)
      << status.out;
  EXPECT_EQ(Stop(), 0);
}

TEST_F(Daemon, ACommandSetOnReloadRunsWithTheIncidentOnStdin) {
  WriteConfig({{"detectors", {{"throttled_refused", 5}}}});
  Start();
  const std::string out = dir_.File("action.json");
  WriteConfig({{"detectors", {{"throttled_refused", 5}}},
               {"actions", {{"command", {"/bin/sh", "-c", "cat > " + out}}}}});
  kill(pid_, SIGHUP);
  ASSERT_TRUE(WaitFor([&] {
    return testing::ReadFile(dir_.File("daemon.err")).find("reloaded") != std::string::npos;
  }));
  auto seg = Open();
  ASSERT_TRUE(seg);
  for (int i = 0; i < 15; ++i) {
    Send(*seg, KeyClass::kSender, "act@v.example", 1, static_cast<uint32_t>(time(nullptr)));
  }
  ASSERT_TRUE(WaitFor([&] {
    const Json j = Json::parse(testing::ReadFile(out), nullptr, false);
    return j.is_object() && j.value("key", "") == "act@v.example";
  })) << testing::ReadFile(dir_.File("daemon.err"));
  const Json j = Json::parse(testing::ReadFile(out));
  EXPECT_EQ(j["rule"], "throttled");
  EXPECT_EQ(j["source"], "table");
  EXPECT_EQ(j["punish"], true);
  EXPECT_EQ(Stop(), 0);
}

// ---- run, skip, rerun ------------------------------------------------------------------------

TEST_F(Daemon, RunProcessesOnlyNewLinesAndSkipJumpsToTheEnd) {
  WriteConfig({{"limits", {{"sender", {{"per_minute", 1}}}}}});
  Append(log_, Arrival(0, "a@v.example", 2));
  CliResult r = RunCli({"run", "--config", config_path_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("processed 1 new lines"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 recorded"), std::string::npos) << r.out;
  r = RunCli({"run", "--config", config_path_});
  EXPECT_NE(r.out.find("processed 0 new lines"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("0 recorded"), std::string::npos) << r.out;

  Append(log_, Arrival(5, "b@v.example", 2));
  r = RunCli({"skip", "--config", config_path_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("checkpoint moved to offset"), std::string::npos);
  Append(log_, Arrival(6, "c@v.example", 2));
  r = RunCli({"run", "--config", config_path_});
  EXPECT_NE(r.out.find("processed 1 new lines"), std::string::npos) << r.out;
  EXPECT_EQ(IncidentKeys(),
            (std::set<std::string>{"a@v.example rate_per_minute", "c@v.example rate_per_minute"}));
}

TEST_F(Daemon, RerunReadsTheDayFromGzipRotationsAndRecordsWhatWasMissed) {
  WriteConfig({{"limits", {{"sender", {{"per_minute", 1}}}}}});
  const std::string day_before = Arrival(-86400, "old@v.example", 2);
  const std::string day = Arrival(0, "missed@v.example", 2);
  {
    gzFile gz = gzopen((log_ + ".1.gz").c_str(), "wb");
    const std::string text = day_before + day;
    gzwrite(gz, text.data(), static_cast<unsigned>(text.size()));
    gzclose(gz);
  }
  Append(log_, Arrival(60, "today@v.example", 2));
  CliResult r = RunCli({"rerun", "--config", config_path_, LocalTimeText(Base()).substr(0, 10)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(IncidentKeys(), (std::set<std::string>{"missed@v.example rate_per_minute",
                                                   "today@v.example rate_per_minute"}));
  EXPECT_NE(r.out.find("2 new"), std::string::npos) << r.out;
  r = RunCli({"rerun", "--config", config_path_, LocalTimeText(Base()).substr(0, 10)});
  EXPECT_NE(r.out.find("0 new"), std::string::npos) << r.out;
  EXPECT_EQ(Incidents().size(), 2u);
  EXPECT_EQ(RunCli({"rerun", "--config", config_path_, "21.11.2031"}).exit_code, 2);
}

// ---- replay ----------------------------------------------------------------------------------

TEST_F(Daemon, ReplayRecognizesEachFilesKindAndTakesNoAction) {
  WriteConfig();
  std::string main;
  for (int i = 0; i < 5; ++i) main += Arrival(i, "spam@v.example", 2);
  testing::WriteFile(dir_.File("m.log"), main);
  std::string dove;
  for (int i = 0; i < 5; ++i) {
    char ts[32];
    const time_t t = static_cast<time_t>(Base() + i);
    struct tm tm {};
    localtime_r(&t, &tm);
    std::strftime(ts, sizeof ts, "%b %e %H:%M:%S", &tm);
    dove += std::string(ts) + " host dovecot[1]: imap-login: Login: user=<roam@v.example>, " +
            "method=PLAIN, rip=203.0.113." + std::to_string(i) + ", lip=10.0.0.1, mpid=1, TLS\n";
  }
  testing::WriteFile(dir_.File("d.log"), dove);
  testing::WriteFile(dir_.File("junk.txt"), "hello\nworld\n");

  CliResult r = RunCli(
      {"replay", "--config", config_path_, "--json", dir_.File("m.log"), dir_.File("d.log")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> got;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    const Json j = Json::parse(line);
    EXPECT_TRUE(j.contains("time") && j.contains("count"));
    got.insert(j["key"].get<std::string>() + " " + j["rule"].get<std::string>());
  }
  EXPECT_EQ(got,
            (std::set<std::string>{"spam@v.example rate_per_minute", "roam@v.example many_ips"}));
  EXPECT_NE(r.err.find("10 lines from 2 files"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_.File("state")));  // nothing recorded

  r = RunCli({"replay", "--config", config_path_, dir_.File("m.log")});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.err.find("m.log: exim mainlog"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("rate_per_minute  sender spam@v.example  10 (threshold 8)"),
            std::string::npos)
      << r.out;
  r = RunCli({"replay", "--config", config_path_, dir_.File("junk.txt")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("junk.txt: not an Exim or Dovecot log"), std::string::npos) << r.err;
  EXPECT_EQ(RunCli({"replay"}).exit_code, 2);
  EXPECT_EQ(RunCli({"replay", dir_.File("missing.log")}).exit_code, 2);
}

TEST_F(Daemon, LinesNotUnderstoodCanBeSeenInReplayAndStatus) {
  WriteConfig();
  const std::string odd = LocalTimeText(Base()) + " 1tODD0-000001-AB <= \x1b[2J what is this\n";
  Append(log_, Arrival(0, "a@v.example", 1, "203.0.113.5") + odd);
  testing::WriteFile(dir_.File("odd.log"), odd);
  CliResult r = RunCli({"replay", "--config", config_path_, dir_.File("odd.log")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(1 not understood)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("not understood: | " + LocalTimeText(Base()) +
                       " 1tODD0-000001-AB <= \\x1b[2J what is this"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
  ASSERT_EQ(RunCli({"run", "--config", config_path_}).exit_code, 0);
  r = RunCli({"status", "--config", config_path_});
  EXPECT_NE(r.out.find("lines not understood, the last 1:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1tODD0-000001-AB <= \\x1b[2J what is this"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
}

// Each rule fires on its abuser only; benign traffic around it must not trigger anything: a
// whitelisted bulk sender, an account with an override, a user on two IPs plus webmail.
TEST_F(Daemon, ReplayScenarioEveryRuleFiresOnItsAbuserOnly) {
  WriteConfig({{"whitelist", {"news@v.example"}},
               {"overrides", {{"shop@v.example", {{"per_minute", 40}, {"per_hour", 500}}}}}});
  std::string log;
  for (int m = 0; m < 50; ++m) {
    const int t = m * 60;
    log += Arrival(t, "news@v.example", 30, "198.51.100.1", "Newsletter");  // whitelisted bulk
    log += Arrival(t + 1, "shop@v.example", 9, "198.51.100.2");             // override: 9/min < 40
    if (m % 10 == 0) {  // a person on two IPs plus webmail on the server
      log += Arrival(t + 2, "anna@v.example", 1, "203.0.113.10");
      log += Arrival(t + 3, "anna@v.example", 1, "203.0.113.11");
      log += Arrival(t + 4, "anna@v.example", 1, "127.0.0.1");
    }
  }
  for (int i = 0; i < 5; ++i) log += Arrival(100 + i, "rate@v.example", 2, "198.51.100.3");
  for (int i = 0; i < 4; ++i) {
    log += Arrival(200 + i * 30, "ips@v.example", 1, "192.0.2." + std::to_string(i + 1));
  }
  for (int i = 0; i < 2; ++i)
    log += Arrival(400 + i * 120, "subj@v.example", 30, "198.51.100.4", "WIN");
  for (int i = 0; i < 5; ++i) {
    log += LocalTimeText(Base() + 600 + i) +
           " dovecot_login authenticator failed for (x) [203.0.113.66]:4000: 535 Incorrect "
           "authentication data (set_id=guess@v.example)\n";
  }
  // bounce storm: 24 recipients of one account, 20 bounce
  for (int i = 0; i < 24; ++i) {
    const std::string id = "1tBNCE-" + std::to_string(200000 + i) + "-AB";
    log += LocalTimeText(Base() + 900 + i * 10) + " " + id +
           " <= bounce@v.example H=(pc) [198.51.100.5]:5555 P=esmtpsa "
           "A=dovecot_login:bounce@v.example S=1 T=\"hi " +
           std::to_string(i) + "\" for u" + std::to_string(i) + "@far.example\n";
    log += LocalTimeText(Base() + 901 + i * 10) + " " + id + (i < 20 ? " ** " : " => ") + "u" +
           std::to_string(i) + "@far.example R=dnslookup T=remote_smtp" +
           (i < 20 ? ": SMTP error from remote mail server after RCPT TO: 550 No such user\n"
                   : " H=mx.far.example [192.0.2.99]\n");
  }
  testing::WriteFile(dir_.File("scenario.log"), log);
  const CliResult r =
      RunCli({"replay", "--config", config_path_, "--json", dir_.File("scenario.log")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> got;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    const Json j = Json::parse(line);
    got.insert(j["key"].get<std::string>() + " " + j["rule"].get<std::string>());
  }
  EXPECT_EQ(
      got, (std::set<std::string>{"rate@v.example rate_per_minute", "ips@v.example many_ips",
                                  "subj@v.example repeated_subject",
                                  "subj@v.example rate_per_minute", "guess@v.example auth_failures",
                                  "203.0.113.66 auth_failures", "bounce@v.example bounce_storm"}))
      << r.out;
}

// ---- suspend, unsuspend, list, whitelist, incidents, why, status -----------------------------

TEST_F(Daemon, SuspendBlocksInTheTableAtOnceAndUnsuspendLiftsIt) {
  WriteConfig();
  ASSERT_EQ(RunCli({"run", "--config", config_path_}).exit_code, 0);
  auto seg = Open();
  const auto now = static_cast<uint32_t>(time(nullptr));
  CliResult r = RunCli({"suspend", "--config", config_path_, "Bad@V.example", "--reason", "spam"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("blocked sender bad@v.example"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("undo: eximguard unsuspend Bad@V.example"), std::string::npos);
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "bad@v.example", 1, now), Verdict::kDeny);
  r = RunCli({"suspend", "--config", config_path_, "Bad@V.example"});
  EXPECT_NE(r.out.find("already blocked"), std::string::npos);

  r = RunCli({"list", "--config", config_path_, "--json"});
  const Json list = Json::parse(r.out);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0]["reason"], "spam");
  EXPECT_EQ(list[0]["by"].get<std::string>().rfind("cli:", 0), 0u);

  r = RunCli({"unsuspend", "--config", config_path_, "bad@v.example"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "bad@v.example", 1, now), Verdict::kOk);
  EXPECT_NE(RunCli({"list", "--config", config_path_}).out.find("nothing is blocked"),
            std::string::npos);
  EXPECT_EQ(RunCli({"suspend", "--config", config_path_, "uid:x"}).exit_code, 2);
  // Lifting what is not blocked (a typo) fails and says so.
  r = RunCli({"unsuspend", "--config", config_path_, "bad@v.example"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("sender bad@v.example was not blocked"), std::string::npos) << r.err;

  // The audit trail has both, with who.
  std::string error;
  auto store = StateStore::Open(dir_.File("state"), &error);
  std::vector<AuditEntry> audit;
  ASSERT_TRUE(store->ListAudit(0, 0, &audit, &error));
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[0].action, "block_add");
  EXPECT_EQ(audit[1].action, "block_remove");
}

TEST_F(Daemon, ListColumnsLineUpWhateverTheKeysLength) {
  WriteConfig();
  ASSERT_EQ(RunCli({"suspend", "--config", config_path_, "a@v.example", "--reason", "r1"}).exit_code,
            0);
  ASSERT_EQ(RunCli({"suspend", "--config", config_path_, "a-much-longer-key@v.example", "--reason",
                    "r2"})
                .exit_code,
            0);
  const CliResult r = RunCli({"list", "--config", config_path_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::vector<size_t> reason_at;
  for (std::string line; std::getline(lines, line);) {
    for (const char* word : {"REASON", "r1", "r2"}) {
      if (const size_t at = line.rfind(word); at != std::string::npos && at + 2 >= line.size() - 4)
        reason_at.push_back(at);
    }
  }
  ASSERT_EQ(reason_at.size(), 3u) << r.out;
  EXPECT_EQ(reason_at[0], reason_at[1]) << r.out;
  EXPECT_EQ(reason_at[1], reason_at[2]) << r.out;
}

TEST_F(Daemon, ResetClearsAKeysCountersAndIsAudited) {
  WriteConfig({{"limits", {{"sender", {{"per_minute", 3}, {"per_hour", 100}}}}}});
  ASSERT_EQ(RunCli({"run", "--config", config_path_}).exit_code, 0);
  auto seg = Open();
  const auto now = static_cast<uint32_t>(time(nullptr));
  ASSERT_EQ(Send(*seg, KeyClass::kSender, "busy@v.example", 3, now), Verdict::kOk);
  ASSERT_EQ(Send(*seg, KeyClass::kSender, "other@v.example", 2, now), Verdict::kOk);
  ASSERT_NE(Send(*seg, KeyClass::kSender, "busy@v.example", 1, now), Verdict::kOk);  // 4 > 3

  CliResult r = RunCli({"reset", "--config", config_path_, "Busy@V.example"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("reset sender busy@v.example: 3 recipients"), std::string::npos) << r.out;
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "busy@v.example", 3, now), Verdict::kOk);   // afresh
  EXPECT_NE(Send(*seg, KeyClass::kSender, "other@v.example", 2, now), Verdict::kOk);  // kept

  r = RunCli({"reset", "--config", config_path_, "--all"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "other@v.example", 3, now), Verdict::kOk);
  EXPECT_EQ(RunCli({"reset", "--config", config_path_}).exit_code, 2);  // KEY or --all
  EXPECT_EQ(RunCli({"reset", "--config", config_path_, "--all", "a@b.c"}).exit_code, 2);

  std::string error;
  auto store = StateStore::Open(dir_.File("state"), &error);
  std::vector<AuditEntry> audit;
  ASSERT_TRUE(store->ListAudit(0, 0, &audit, &error));
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[0].action, "reset");
  EXPECT_EQ(audit[0].key, "sender busy@v.example");
  EXPECT_EQ(audit[0].who.rfind("cli:", 0), 0u);
  EXPECT_EQ(audit[1].key, "*");
}

TEST_F(Daemon, WhitelistAddMakesAKeyUnlimitedInTheTable) {
  WriteConfig({{"limits", {{"cwd", {{"per_minute", 1}}}}}});
  ASSERT_EQ(RunCli({"run", "--config", config_path_}).exit_code, 0);
  auto seg = Open();
  const auto now = static_cast<uint32_t>(time(nullptr));
  CliResult r = RunCli(
      {"whitelist", "add", "--config", config_path_, "/home/n/www/", "--note", "newsletter"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Send(*seg, KeyClass::kCwd, "/home/n/www", 1, now), Verdict::kOk);
  }
  r = RunCli({"whitelist", "list", "--config", config_path_});
  EXPECT_NE(r.out.find("/home/n/www/  (added by cli:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(": newsletter)"), std::string::npos) << r.out;
  r = RunCli({"whitelist", "remove", "--config", config_path_, "/home/n/www/"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Send(*seg, KeyClass::kCwd, "/home/n/www", 1, now + 120), Verdict::kOk);
  EXPECT_NE(Send(*seg, KeyClass::kCwd, "/home/n/www", 1, now + 120), Verdict::kOk);
}

TEST_F(Daemon, ActOnANotTrustedIncidentDoesWhatItsRuleSaysAsTheAdmin) {
  WriteConfig();
  std::string burst;
  for (int i = 0; i < 5; ++i) burst += Arrival(i, "spam@v.example", 2, "203.0.113.5", "Cheap");
  Append(log_, burst);
  ASSERT_EQ(RunCli({"run", "--config", config_path_}).exit_code, 0);
  auto seg = Open();
  ASSERT_TRUE(seg);
  const auto now = static_cast<uint32_t>(time(nullptr));
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "spam@v.example", 1, now), Verdict::kOk);  // log only

  CliResult r = RunCli({"act", "1", "--config", config_path_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("acting on incident #1 (rate_per_minute sender spam@v.example) as cli:"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("evidence NOT trusted (your decision)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("blocked sender spam@v.example"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("undo: eximguard unsuspend spam@v.example"), std::string::npos) << r.out;
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "spam@v.example", 1, now), Verdict::kDeny);
  r = RunCli({"list", "--config", config_path_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json list = Json::parse(r.out);
  ASSERT_EQ(list.size(), 1u) << r.out;
  EXPECT_EQ(list[0]["by"].get<std::string>().rfind("cli:", 0), 0u) << r.out;

  r = RunCli({"act", "99", "--config", config_path_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no incident #99"), std::string::npos) << r.err;
  for (const char* bad : {"x", "-1", "0", "1e3"}) {
    r = RunCli({"act", bad, "--config", config_path_});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find("expected an incident number"), std::string::npos) << bad << r.err;
  }
  ASSERT_EQ(RunCli({"unsuspend", "spam@v.example", "--config", config_path_}).exit_code, 0);
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "spam@v.example", 1, now), Verdict::kOk);
}

TEST_F(Daemon, IncidentsAndWhyShowWhatHappenedWithTheEvidence) {
  WriteConfig();
  std::string burst;
  for (int i = 0; i < 5; ++i) burst += Arrival(i, "spam@v.example", 2, "203.0.113.5", "Cheap");
  Append(log_, burst);
  ASSERT_EQ(RunCli({"run", "--config", config_path_}).exit_code, 0);

  CliResult r = RunCli({"incidents", "--config", config_path_, "--since", "all", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json inc = Json::parse(r.out);
  ASSERT_EQ(inc.size(), 1u);
  EXPECT_EQ(inc[0]["key"], "spam@v.example");
  EXPECT_EQ(inc[0]["evidence"]["subjects"], Json::array({"Cheap"}));
  r = RunCli({"incidents", "--config", config_path_});  // default: the last 24 hours
  EXPECT_NE(r.out.find("no incidents since"), std::string::npos) << r.out;
  r = RunCli({"incidents", "--config", config_path_, "--since", LocalTimeText(Base() - 60)});
  EXPECT_NE(r.out.find("rate_per_minute"), std::string::npos) << r.out;
  EXPECT_EQ(RunCli({"incidents", "--config", config_path_, "--since", "yesterday"}).exit_code, 2);

  r = RunCli({"why", "--config", config_path_, "spam@v.example"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string& want : std::vector<std::string>{
           "limits: 8/minute, 100/hour", "evidence: NOT trusted", "to act on it: eximguard act 1",
           "ips: 203.0.113.5", "subjects: Cheap", "| " + LocalTimeText(Base()).substr(0, 10)}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  }
  r = RunCli({"why", "--config", config_path_, "nobody@v.example"});
  EXPECT_NE(r.out.find("no incidents"), std::string::npos) << r.out;

  r = RunCli({"status", "--config", config_path_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json s = Json::parse(r.out);
  EXPECT_EQ(s["following"], false);
  EXPECT_EQ(s["active_blocks"], 0);  // a log incident alone blocks nothing
  EXPECT_EQ(s["daemon"]["lines"], 5);
  EXPECT_EQ(s["table"]["name"], segment_.name);
}

// A hostile subject and key (ESC, CR, BEL, \n as Exim writes it, invalid UTF-8) reach no
// terminal raw: every verb's text output holds no byte below 0x20 but its line ends, no DEL;
// --json never aborts on invalid UTF-8.
TEST_F(Daemon, HostileKeysAndSubjectsAreEscapedInEveryVerb) {
  WriteConfig();
  const std::string subject = "Win\x1b[2J\rAll clear\\nUndo: x\a\x7f\xff\\033[31m";
  const std::string bad_key =
      "b\xff\xfe"
      "d@v.example";
  std::string burst;
  for (int i = 0; i < 5; ++i) {
    burst += Arrival(i, "spam@v.example", 2, "203.0.113.5", subject);
    burst += Arrival(i, bad_key, 2, "203.0.113.6", subject);
  }
  Append(log_, burst);
  ASSERT_EQ(RunCli({"run", "--config", config_path_}).exit_code, 0);
  ASSERT_EQ(RunCli({"suspend", "--config", config_path_, "spam@v.example", "--reason",
                    "reason\x1b]0;owned\a\r\xc0"})
                .exit_code,
            0);
  const std::string since = LocalTimeText(Base() - 60);
  const std::vector<std::vector<std::string>> verbs = {
      {"incidents", "--config", config_path_, "--since", since},
      {"why", "--config", config_path_, "spam@v.example"},
      {"list", "--config", config_path_},
      {"status", "--config", config_path_},
      {"top", "--config", config_path_},
      {"whitelist", "list", "--config", config_path_},
      {"replay", log_},
      {"rerun", "--config", config_path_, LocalTimeText(Base()).substr(0, 10)},
  };
  for (const std::vector<std::string>& args : verbs) {
    const CliResult r = RunCli(args);
    EXPECT_TRUE(testing::NoTerminalControl(r.out)) << args[0] << ":\n" << r.out;
    EXPECT_TRUE(testing::NoTerminalControl(r.err)) << args[0] << ":\n" << r.err;
  }
  const CliResult why = RunCli({"why", "--config", config_path_, "spam@v.example"});
  EXPECT_NE(why.out.find("subjects: Win\\x1b[2J\\rAll clear"), std::string::npos) << why.out;
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"incidents", "--config", config_path_, "--since", "all", "--json"},
        std::vector<std::string>{"list", "--config", config_path_, "--json"}}) {
    const CliResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
    EXPECT_FALSE(Json::parse(r.out, nullptr, false).is_discarded()) << r.out;
  }
  const Json inc =
      Json::parse(RunCli({"incidents", "--config", config_path_, "--since", "all", "--json"}).out,
                  nullptr, false);
  EXPECT_EQ(inc.size(), 2u) << inc.dump(1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace
}  // namespace eg::sidecar

namespace eg::sidecar {
namespace {

// follow.lock naming a foreign pid (an admin's `whitelist add` used to SIGHUP whatever it named).
TEST(DaemonPid, ALockNamingAForeignPidIsNotSignalled) {
  testing::TempDir dir;
  Config config;
  config.state_dir = dir.path();
  pid_t child = -1;
  char arg0[] = "sleep";
  char arg1[] = "30";
  char* argv[] = {arg0, arg1, nullptr};
  ASSERT_EQ(posix_spawnp(&child, "sleep", nullptr, nullptr, argv, environ), 0);
  const std::string lock = dir.File(kFollowLockName);
  const int fd = open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX | LOCK_NB), 0);
  const std::string text = std::to_string(child) + "\n";
  ASSERT_EQ(pwrite(fd, text.data(), text.size(), 0), static_cast<ssize_t>(text.size()));
  ASSERT_EQ(FollowerPid(config.state_dir), child);

  EXPECT_FALSE(IsEximguardProcess(child));
  EXPECT_TRUE(IsEximguardProcess(getpid()));  // our own binary
  EXPECT_FALSE(IsEximguardProcess(0));
  EXPECT_FALSE(IsEximguardProcess(-1));
  std::ostringstream out;
  TellDaemon(config, out);
  EXPECT_NE(out.str().find("not signalled: pid " + std::to_string(child)), std::string::npos)
      << out.str();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int status = 0;
  EXPECT_EQ(waitpid(child, &status, WNOHANG), 0) << "the sleep child was signalled";
  kill(child, SIGKILL);
  waitpid(child, &status, 0);
  close(fd);
}

}  // namespace
}  // namespace eg::sidecar
