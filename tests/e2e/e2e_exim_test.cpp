// e2e_exim_test.cpp - end-to-end tests: a real Exim 4.9x, sandboxed with -C, calling eximguard.so
// through ${dlfunc} from the ACLs in exim-config/test/exim-test.conf.in.
//
// Contract: each test builds its own EximSandbox (temp dir, config, segment) and asserts exact
// SMTP reply codes, exit statuses and queue contents. Every test cleans up after itself (daemon
// stopped, segment unlinked, temp dir removed). Needs root (it creates the user `egtest` and
// switches to it for local submissions); skipped with a message otherwise. The whole suite runs
// in well under two minutes on two cores.

#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "exim_harness.h"
#include "shipped_configs.h"

namespace eg::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr const char* kLocalHost = "127.0.0.1";     // an SMTP client on this machine
constexpr const char* kRelayHost = "127.0.0.2";     // in the test config's relay_from_hosts
constexpr const char* kInternetHost = "127.0.0.9";  // neither: stands for a stranger

GuardPolicy SenderLimit(uint32_t per_minute) {
  GuardPolicy policy;
  policy.sender = {per_minute, 1000};
  return policy;
}

// A sandbox whose Exim user is the test user, so it can submit mail locally (see harness).
SandboxOptions LocalOptions(const TestUser& user) {
  SandboxOptions options;
  options.exim_user = user.name;
  options.exim_group = user.group;
  return options;
}

// A temp dir removed with everything in it when the test ends.
int CountOccurrences(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

class EximE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "the Exim end-to-end tests need root (they chown the sandbox and create "
                      "and switch to the user egtest); run them as root, as CI does";
    }
  }

  // Creates the segment and fails the test if the sidecar refused.
  static void Publish(EximSandbox& sandbox, const GuardPolicy& policy) {
    std::string output;
    ExitStatus status = sandbox.CreateSegment(policy, &output);
    ASSERT_TRUE(status.Ok()) << "eximguard run: " << status.Describe() << "\n" << output;
  }
};

// --- the config and harness themselves, with the do-nothing dlfunc ---

TEST_F(EximE2E, NoopDlfuncConfigAcceptsAuthenticatedAndRefusesOpenRelay) {
  SandboxOptions options;
  options.guard_so = kNoopSo;
  options.rcpt_fn = options.local_fn = options.event_fn = "eximguard_noop";
  EximSandbox sandbox(options);

  SmtpSession session = sandbox.RunBh(kLocalHost, AuthSession("alice@example.com", Recipients(20)));
  ASSERT_TRUE(session.exit.Ok()) << session.exit.Describe() << "\n" << session.transcript;
  EXPECT_EQ(session.banner, 220);
  EXPECT_EQ(session.replies[1].code, 235) << session.transcript;  // AUTH PLAIN
  EXPECT_EQ(session.CountRcpt(250), 20) << session.transcript;

  SmtpSession stranger =
      sandbox.RunBh(kInternetHost, PlainSession("x@else.example", Recipients(3)));
  EXPECT_EQ(stranger.CountRcpt(550, "5.7.1"), 3) << stranger.transcript;
}

// --- squatting (issue 10 item 6) ---

// A local user (uid 65534) takes the table's public name before the sidecar starts, with a
// symlink to /etc/passwd: until then the guard lets mail through; `eximguard run` still makes
// its table, says so, never touches /etc/passwd, and the limits hold.
TEST_F(EximE2E, ASquattedTableNameIsTakenBackAndTheGuardWorks) {
  EximSandbox sandbox;
  const std::string path = sandbox.SegmentPath();
  struct stat before {};
  ASSERT_EQ(stat("/etc/passwd", &before), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    _exit(symlink("/etc/passwd", path.c_str()) == 0 ? 0 : 1);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0) << "could not squat " << path;

  SmtpSession open = sandbox.RunBh(kLocalHost, AuthSession("alice@example.com", Recipients(8)));
  EXPECT_EQ(open.CountRcpt(250), 8) << "fails open meanwhile\n" << open.transcript;

  std::string output;
  ExitStatus status = sandbox.CreateSegment(SenderLimit(5), &output);
  ASSERT_TRUE(status.Ok()) << "eximguard run: " << status.Describe() << "\n" << output;
  EXPECT_NE(output.find("SQUATTED"), std::string::npos) << output;
  struct stat st {};
  ASSERT_EQ(lstat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_uid, 0u);
  struct stat after {};
  ASSERT_EQ(stat("/etc/passwd", &after), 0);
  EXPECT_EQ(after.st_mode, before.st_mode);
  EXPECT_EQ(after.st_uid, before.st_uid);
  EXPECT_EQ(after.st_size, before.st_size);

  SmtpSession limited = sandbox.RunBh(kLocalHost, AuthSession("bob@example.com", Recipients(20)));
  EXPECT_EQ(limited.CountRcpt(250), 5) << limited.transcript;
  EXPECT_EQ(limited.CountRcpt(451, "4.7.1"), 15) << limited.transcript;
}

// --- SMTP: the per-account limit ---

TEST_F(EximE2E, SenderLimitDefersPastFivePerMinuteAcrossSessions) {
  EximSandbox sandbox;
  Publish(sandbox, SenderLimit(5));

  SmtpSession first = sandbox.RunBh(kLocalHost, AuthSession("alice@example.com", Recipients(20)));
  ASSERT_TRUE(first.exit.Ok()) << first.exit.Describe();
  EXPECT_EQ(first.CountRcpt(250), 5) << first.transcript;
  EXPECT_EQ(first.CountRcpt(451, "4.7.1"), 15) << first.transcript;

  SmtpSession second = sandbox.RunBh(kLocalHost, AuthSession("alice@example.com", Recipients(20)));
  EXPECT_EQ(second.CountRcpt(250), 0) << second.transcript;
  EXPECT_EQ(second.CountRcpt(451, "4.7.1"), 20) << second.transcript;

  SmtpSession other = sandbox.RunBh(kLocalHost, AuthSession("bob@example.com", Recipients(6)));
  EXPECT_EQ(other.CountRcpt(250), 5) << "another account has its own counter\n" << other.transcript;
}

TEST_F(EximE2E, EightConcurrentSessionsOfOneAccountShareItsLimit) {
  EximSandbox sandbox;
  Publish(sandbox, SenderLimit(5));

  std::vector<EximSandbox::PendingSession> pending;
  for (int i = 0; i < 8; ++i) {
    pending.push_back(
        sandbox.StartBh(kLocalHost, AuthSession("carol@example.com", Recipients(20))));
  }
  int accepted = 0;
  int deferred = 0;
  for (EximSandbox::PendingSession& session : pending) {
    SmtpSession done = sandbox.FinishBh(session);
    ASSERT_TRUE(done.exit.Ok()) << done.exit.Describe();
    ASSERT_EQ(done.RcptTotal(), 20);
    accepted += done.CountRcpt(250);
    deferred += done.CountRcpt(451, "4.7.1");
  }
  EXPECT_EQ(accepted, 5);
  EXPECT_EQ(deferred, 8 * 20 - 5);
}

TEST_F(EximE2E, DaemonWithEightConcurrentSwaksClientsAcceptsExactlyTheLimit) {
  EximSandbox sandbox;
  Publish(sandbox, SenderLimit(5));

  // The segment is the sidecar's: mode 0660, group of the Exim user the daemon drops to.
  struct stat st {};
  ASSERT_EQ(stat(sandbox.SegmentPath().c_str(), &st), 0) << sandbox.SegmentPath();
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(st.st_gid, LookUpUser(SystemEximUser())->gid);

  sandbox.StartDaemon();
  std::vector<EximSandbox::PendingSession> pending;
  for (int i = 0; i < 8; ++i) {
    pending.push_back(sandbox.StartSwaks("dave@example.com", Recipients(20)));
  }
  int accepted = 0;
  int deferred = 0;
  int messages = 0;
  for (EximSandbox::PendingSession& session : pending) {
    SmtpSession done = sandbox.FinishSwaks(session);
    ASSERT_FALSE(done.exit.timed_out) << done.transcript;
    EXPECT_EQ(done.RcptTotal(), 20) << done.transcript;
    accepted += done.CountRcpt(250);
    deferred += done.CountRcpt(451, "4.7.1");
    messages += done.CountRcpt(250) > 0 ? 1 : 0;
  }
  EXPECT_EQ(accepted, 5);
  EXPECT_EQ(deferred, 8 * 20 - 5);
  sandbox.StopDaemon();
  EXPECT_EQ(sandbox.Queue().total(), messages) << "sessions with an accepted RCPT queue a message";
}

// --- SMTP: whitelist, blocklist and what is counted at all ---

TEST_F(EximE2E, WhitelistedAccountIsNotLimited) {
  EximSandbox sandbox;
  GuardPolicy policy = SenderLimit(5);
  policy.whitelist = {"vip@example.com"};
  Publish(sandbox, policy);

  SmtpSession session = sandbox.RunBh(kLocalHost, AuthSession("vip@example.com", Recipients(20)));
  EXPECT_EQ(session.CountRcpt(250), 20) << session.transcript;
}

TEST_F(EximE2E, BlocklistedAccountGets550OnEveryRcpt) {
  EximSandbox sandbox;
  GuardPolicy policy = SenderLimit(5);
  policy.blocklist = {"spammer@example.com"};
  Publish(sandbox, policy);

  SmtpSession session =
      sandbox.RunBh(kLocalHost, AuthSession("spammer@example.com", Recipients(20)));
  EXPECT_EQ(session.CountRcpt(550, "5.7.1"), 20) << session.transcript;
  SmtpSession innocent = sandbox.RunBh(kLocalHost, AuthSession("erin@example.com", Recipients(3)));
  EXPECT_EQ(innocent.CountRcpt(250), 3) << innocent.transcript;
}

TEST_F(EximE2E, OnlyOutgoingMailIsCounted) {
  EximSandbox sandbox;
  Publish(sandbox, SenderLimit(5));

  // Inbound mail from a stranger to a local domain is never counted, whatever its sender.
  SmtpSession inbound = sandbox.RunBh(
      kInternetHost, PlainSession("frank@example.com", Recipients(20, "eximguard-test.example")));
  EXPECT_EQ(inbound.CountRcpt(250), 20) << inbound.transcript;

  // A trusted relay host without AUTH is outgoing mail, counted by envelope sender.
  SmtpSession relayed =
      sandbox.RunBh(kRelayHost, PlainSession("frank@example.com", Recipients(20)));
  EXPECT_EQ(relayed.CountRcpt(250), 5) << relayed.transcript;
  EXPECT_EQ(relayed.CountRcpt(451, "4.7.1"), 15) << relayed.transcript;
}

// --- local submissions (sendmail -t from a script) ---

TEST_F(EximE2E, ScriptDirPastItsLimitGetsItsMailFrozen) {
  TestUser user = EnsureTestUser();
  EximSandbox sandbox(LocalOptions(user));
  std::string script_dir = sandbox.MakeScriptDir(user);
  GuardPolicy policy;
  policy.cwd = {3, 1000};
  Publish(sandbox, policy);

  for (int i = 0; i < 10; ++i) {
    std::string output;
    ExitStatus status = sandbox.SubmitLocal(user, script_dir, LocalMessage(i), &output);
    ASSERT_TRUE(status.Ok()) << "message " << i << ": " << status.Describe() << "\n" << output;
  }
  QueueListing queue = sandbox.Queue();
  EXPECT_EQ(queue.total(), 10);
  EXPECT_EQ(queue.frozen(), 7);
  std::string log = sandbox.mainlog();
  EXPECT_EQ(CountOccurrences(log, "eximguard: held cwd " + script_dir + " 3/minute"), 7) << log;
  EXPECT_EQ(CountOccurrences(log, "frozen by ACL"), 7) << log;
  EXPECT_NE(log.find("cwd=" + script_dir), std::string::npos) << log;
}

TEST_F(EximE2E, BlocklistedScriptDirIsRejectedAndNotQueued) {
  TestUser user = EnsureTestUser();
  EximSandbox sandbox(LocalOptions(user));
  std::string script_dir = sandbox.MakeScriptDir(user);
  GuardPolicy policy;
  policy.blocklist = {script_dir};
  Publish(sandbox, policy);

  std::string output;
  ExitStatus status = sandbox.SubmitLocal(user, script_dir, LocalMessage(1), &output);
  EXPECT_FALSE(status.Ok()) << output;
  EXPECT_NE(sandbox.mainlog().find("rejected by non-SMTP ACL: 5.7.1"), std::string::npos);
  // Exim reports the rejection to the sender with a bounce; that bounce (sender <>, submitted
  // by Exim itself from its spool directory) must not be refused as well.
  for (const QueuedMessage& message : sandbox.Queue().messages) {
    EXPECT_EQ(message.sender, "") << "only the bounce may be queued, not " << message.id;
    EXPECT_FALSE(message.frozen);
  }
}

// --- failing open ---

TEST_F(EximE2E, WithoutTheGuardSoEverythingIsAccepted) {
  TestUser user = EnsureTestUser();
  EximSandbox sandbox(LocalOptions(user));
  std::string script_dir = sandbox.MakeScriptDir(user);
  GuardPolicy policy = SenderLimit(1);
  policy.cwd = {1, 1};
  Publish(sandbox, policy);
  std::filesystem::remove(sandbox.guard_so_path());  // as after uninstalling the package

  SmtpSession session = sandbox.RunBh(kLocalHost, AuthSession("heidi@example.com", Recipients(20)));
  EXPECT_EQ(session.CountRcpt(250), 20) << session.transcript;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(sandbox.SubmitLocal(user, script_dir, LocalMessage(i)).Ok());
  }
  EXPECT_EQ(sandbox.Queue().frozen(), 0);
}

TEST_F(EximE2E, WithoutSegmentEverythingIsAccepted) {
  TestUser user = EnsureTestUser();
  {
    EximSandbox sandbox;  // CreateSegment is never called
    SmtpSession session =
        sandbox.RunBh(kLocalHost, AuthSession("grace@example.com", Recipients(20)));
    EXPECT_EQ(session.CountRcpt(250), 20) << session.transcript;
  }
  EximSandbox sandbox(LocalOptions(user));
  std::string script_dir = sandbox.MakeScriptDir(user);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(sandbox.SubmitLocal(user, script_dir, LocalMessage(i)).Ok());
  }
  QueueListing queue = sandbox.Queue();
  EXPECT_EQ(queue.total(), 5);
  EXPECT_EQ(queue.frozen(), 0);
}

// --- the blocks shipped for a plain exim.conf and for cPanel, spliced into the test config ---

std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// Checks a sandbox whose config carries another file's eximguard blocks.
void CheckShippedBlocks(const std::string& template_path, const TestUser& user,
                        bool counts_relay_hosts) {
  SandboxOptions options = LocalOptions(user);
  options.config_template = template_path;
  EximSandbox sandbox(options);
  std::string script_dir = sandbox.MakeScriptDir(user);
  GuardPolicy policy;
  policy.sender = {5, 1000};
  policy.cwd = {2, 1000};
  policy.blocklist = {"spammer@example.com"};
  ExitStatus published = sandbox.CreateSegment(policy);
  ASSERT_TRUE(published.Ok()) << published.Describe();

  SmtpSession limited = sandbox.RunBh(kLocalHost, AuthSession("alice@example.com", Recipients(8)));
  EXPECT_EQ(limited.CountRcpt(250), 5) << limited.transcript;
  EXPECT_EQ(limited.CountRcpt(451, "4.7.1"), 3) << limited.transcript;
  SmtpSession blocked =
      sandbox.RunBh(kLocalHost, AuthSession("spammer@example.com", Recipients(2)));
  EXPECT_EQ(blocked.CountRcpt(550, "5.7.1"), 2) << blocked.transcript;
  SmtpSession inbound = sandbox.RunBh(
      kInternetHost, PlainSession("bob@example.com", Recipients(8, "eximguard-test.example")));
  EXPECT_EQ(inbound.CountRcpt(250), 8) << inbound.transcript;
  SmtpSession relayed = sandbox.RunBh(kRelayHost, PlainSession("bob@example.com", Recipients(8)));
  EXPECT_EQ(relayed.CountRcpt(250), counts_relay_hosts ? 5 : 8) << relayed.transcript;

  for (int i = 0; i < 4; ++i) {
    std::string output;
    ASSERT_TRUE(sandbox.SubmitLocal(user, script_dir, LocalMessage(i), &output).Ok()) << output;
  }
  EXPECT_EQ(sandbox.Queue().frozen(), 2);
  EXPECT_EQ(CountOccurrences(sandbox.mainlog(), "eximguard: held cwd " + script_dir), 2);
}

TEST_F(EximE2E, ExampleConfigBlocksWorkAsShipped) {
  TestUser user = EnsureTestUser();
  ScopedTempDir work;
  std::vector<std::string> blocks = EximguardBlocks(ReadFile(kExampleConfig));
  ASSERT_EQ(blocks.size(), 2u) << kExampleConfig;
  std::string macros = "EXIMGUARD_SO = @GUARD_SO@\nEXIMGUARD_SEGMENT = @SEGMENT@\n";
  CheckShippedBlocks(SpliceTemplate(work.path, blocks[0], blocks[1], macros), user, true);
}

TEST_F(EximE2E, CpanelBlocksWorkAsShipped) {
  TestUser user = EnsureTestUser();
  ScopedTempDir work;
  auto adapt = [](std::string block) {  // the installed paths, pointed at the sandbox
    block = ReplaceAll(block, "/usr/lib/eximguard/eximguard.so", "@GUARD_SO@");
    return ReplaceAll(block, "{/eximguard}", "{@SEGMENT@}");
  };
  const std::string dir = kCpanelDir;
  std::string rcpt = adapt(ReadFile(dir + "/custom_begin_recipient"));
  std::string local = adapt(ReadFile(dir + "/custom_begin_not_smtp"));
  ASSERT_FALSE(rcpt.empty() || local.empty());
  // The cPanel block counts authenticated senders only (see exim-config/cpanel/README.md).
  CheckShippedBlocks(SpliceTemplate(work.path, rcpt, local, ""), user, false);
}

// --- the Debian split-config fragments (exim-config/debian/), through update-exim4.conf ---

// The items of `exim -C config -bP NAME` ("NAME = +a +b" -> {"+a", "+b"}).
std::vector<std::string> EffectiveListOption(const std::string& config, const std::string& name) {
  ScopedTempDir out;
  SpawnOptions bp;
  bp.argv = {kEximBin, "-C", config, "-bP"};
  std::istringstream words(name);  // "transport remote_smtp": two arguments
  for (std::string w; words >> w;) bp.argv.push_back(w);
  bp.stdout_path = bp.stderr_path = out.path + "/bP";
  const ExitStatus status = Run(bp, kEximTimeout);
  const std::string text = ReadFile(bp.stdout_path);
  if (!status.Ok()) throw std::runtime_error("exim -bP " + name + ": " + text);
  std::istringstream in(text.substr(text.find('=') + 1));
  std::vector<std::string> items;
  for (std::string item; in >> item;) items.push_back(item);
  return items;
}

TEST_F(EximE2E, DebianSplitConfigFragmentsGuardSmtpAndLocalMail) {
  if (!std::filesystem::exists("/usr/sbin/update-exim4.conf") ||
      !std::filesystem::exists("/etc/exim4/conf.d")) {
    GTEST_SKIP() << "not a Debian Exim (no update-exim4.conf or /etc/exim4/conf.d)";
  }
  TestUser user = EnsureTestUser();
  ScopedTempDir work;
  SandboxOptions options = LocalOptions(user);
  options.config_template = BuildDebianTemplate(work.path);
  EximSandbox sandbox(options);
  std::string script_dir = sandbox.MakeScriptDir(user);
  GuardPolicy policy;
  policy.sender = {3, 1000};
  policy.cwd = {2, 1000};
  policy.blocklist = {"spammer@example.com"};
  Publish(sandbox, policy);

  // What the sidecar reads from the mainlog is added to Debian's own log_selector
  // (main/01_exim4-config_listmacrosdefs), which stays in force.
  const std::vector<std::string> selector =
      EffectiveListOption(sandbox.config_path(), "log_selector");
  for (const char* item : {"+pid", "+arguments", "+subject", "+received_recipients",
                           "+smtp_protocol_error", "+smtp_syntax_error", "+tls_peerdn"}) {
    EXPECT_NE(std::find(selector.begin(), selector.end(), item), selector.end())
        << item << " missing from log_selector: " << ::testing::PrintToString(selector);
  }

  // The delivery events reach the guard: the main event_action (00_eximguard_macros) and the
  // one line README.md has the admin add to Debian's two smtp transports.
  for (const char* option :
       {"event_action", "transport remote_smtp", "transport remote_smtp_smarthost"}) {
    const std::vector<std::string> shown = EffectiveListOption(sandbox.config_path(), option);
    const std::string text = ::testing::PrintToString(shown);
    EXPECT_NE(text.find("{eximguard_event}"), std::string::npos) << option << ": " << text;
  }

  SmtpSession limited = sandbox.RunBh(kLocalHost, AuthSession("alice@example.com", Recipients(5)));
  EXPECT_EQ(limited.CountRcpt(250), 3) << limited.transcript;
  EXPECT_EQ(limited.CountRcpt(451, "4.7.1"), 2) << limited.transcript;
  SmtpSession relayed = sandbox.RunBh(kRelayHost, PlainSession("bob@example.com", Recipients(5)));
  EXPECT_EQ(relayed.CountRcpt(250), 3) << relayed.transcript;
  SmtpSession blocked =
      sandbox.RunBh(kLocalHost, AuthSession("spammer@example.com", Recipients(2)));
  EXPECT_EQ(blocked.CountRcpt(550, "5.7.1"), 2) << blocked.transcript;
  // Debian's own acl_check_rcpt still decides the rest, with its own message.
  SmtpSession stranger =
      sandbox.RunBh(kInternetHost, PlainSession("x@else.example", Recipients(2)));
  EXPECT_EQ(stranger.CountRcpt(550, "relay not permitted"), 2) << stranger.transcript;

  for (int i = 0; i < 4; ++i) {
    std::string output;
    ASSERT_TRUE(sandbox.SubmitLocal(user, script_dir, LocalMessage(i), &output).Ok()) << output;
  }
  QueueListing queue = sandbox.Queue();
  EXPECT_EQ(queue.total(), 4);
  EXPECT_EQ(queue.frozen(), 2);
  EXPECT_EQ(CountOccurrences(sandbox.mainlog(), "eximguard: held cwd " + script_dir), 2);
}

// --- robustness: Exim processes are killed all the time ---

TEST_F(EximE2E, SessionsKilledMidwayNeitherHangNorSpoilTheTable) {
  EximSandbox sandbox;
  Publish(sandbox, SenderLimit(5));
  constexpr int kSessions = 6;
  auto start_round = [&sandbox] {
    std::vector<EximSandbox::PendingSession> pending;
    for (int i = 0; i < kSessions; ++i) {
      pending.push_back(
          sandbox.StartBh(kLocalHost, AuthSession("hammer@example.com", Recipients(150))));
    }
    return pending;
  };

  // A first round runs to the end, to learn how long a round takes on this machine.
  const auto calibration_start = steady_clock::now();
  for (EximSandbox::PendingSession& session : start_round()) {
    ASSERT_TRUE(sandbox.FinishBh(session).exit.Ok());
  }
  const milliseconds calibration =
      std::chrono::duration_cast<milliseconds>(steady_clock::now() - calibration_start);
  const int round_ms = static_cast<int>(calibration.count()) + 1;

  // Then each session of each round is SIGKILLed at its own random moment of that span, so
  // kills land during start-up, AUTH, the RCPTs (inside the guard, sometimes) and the end.
  const unsigned seed = static_cast<unsigned>(steady_clock::now().time_since_epoch().count());
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> kill_at_ms(0, round_ms);
  const auto deadline = steady_clock::now() + std::chrono::seconds(15);
  int rounds = 0;
  int killed = 0;
  for (; rounds < 25 && steady_clock::now() < deadline; ++rounds) {
    const auto round_start = steady_clock::now();
    std::vector<EximSandbox::PendingSession> pending = start_round();
    std::vector<int> kill_times;
    for (int i = 0; i < kSessions; ++i) kill_times.push_back(kill_at_ms(random));
    for (int ms = 0; ms <= round_ms; ++ms) {
      for (int i = 0; i < kSessions; ++i) {
        if (kill_times[i] == ms) pending[i].child.Kill(SIGKILL);
      }
      std::this_thread::sleep_until(round_start + milliseconds(ms + 1));
    }
    for (EximSandbox::PendingSession& session : pending) {
      SmtpSession done = sandbox.FinishBh(session, std::chrono::seconds(5));
      ASSERT_FALSE(done.exit.timed_out) << "round " << rounds << ", seed " << seed;
      killed += done.exit.signaled && done.exit.signal == SIGKILL ? 1 : 0;
    }
  }
  RecordProperty("round_ms", round_ms);
  RecordProperty("rounds", rounds);
  RecordProperty("killed", killed);
  EXPECT_GE(rounds, 10) << "too few rounds to mean anything";
  EXPECT_GE(killed, rounds * kSessions / 4)
      << "too few sessions were killed before their end; seed " << seed;

  SmtpSession fresh = sandbox.RunBh(kLocalHost, AuthSession("fresh@example.com", Recipients(20)));
  ASSERT_TRUE(fresh.exit.Ok()) << fresh.exit.Describe();
  EXPECT_EQ(fresh.CountRcpt(250), 5) << "seed " << seed << "\n" << fresh.transcript;
  EXPECT_EQ(fresh.CountRcpt(451, "4.7.1"), 15) << fresh.transcript;

  SmtpSession hammer = sandbox.RunBh(kLocalHost, AuthSession("hammer@example.com", Recipients(5)));
  ASSERT_TRUE(hammer.exit.Ok()) << hammer.exit.Describe();
  EXPECT_EQ(hammer.CountRcpt(250), 0) << hammer.transcript;
  EXPECT_TRUE(sandbox.EximProcesses().empty());
}

}  // namespace
}  // namespace eg::e2e
