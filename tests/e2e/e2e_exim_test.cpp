// e2e_exim_test.cpp - end-to-end tests: a real Exim 4.9x, sandboxed with -C, calling eximguard.so
// through ${dlfunc} from the ACLs in exim-config/test/exim-test.conf.in.
//
// Contract: each test builds its own EximSandbox (temp dir, config, segment) and asserts exact
// SMTP reply codes, exit statuses and queue contents. Every test cleans up after itself (daemon
// stopped, segment unlinked, temp dir removed). Needs root (it creates the user `egtest` and
// switches to it for local submissions); skipped with a message otherwise. The whole suite runs
// in well under two minutes on two cores.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "exim_harness.h"

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

std::string LocalMessage(int n) {
  return "To: friend" + std::to_string(n) + "@remote.example\n"
         "Subject: e2e local " + std::to_string(n) + "\n\nbody " + std::to_string(n) + "\n";
}

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

  // A sandbox whose Exim user is the test user, so it can submit mail locally (see harness).
  static SandboxOptions LocalOptions(const TestUser& user) {
    SandboxOptions options;
    options.exim_user = user.name;
    options.exim_group = user.group;
    return options;
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
  options.rcpt_fn = options.local_fn = "eximguard_noop";
  EximSandbox sandbox(options);

  SmtpSession session = sandbox.RunBh(kLocalHost, AuthSession("alice@example.com", Recipients(20)));
  ASSERT_TRUE(session.exit.Ok()) << session.exit.Describe() << "\n" << session.transcript;
  EXPECT_EQ(session.banner, 220);
  EXPECT_EQ(session.replies[1].code, 235) << session.transcript;  // AUTH PLAIN
  EXPECT_EQ(session.CountRcpt(250), 20) << session.transcript;

  SmtpSession stranger = sandbox.RunBh(kInternetHost, PlainSession("x@else.example", Recipients(3)));
  EXPECT_EQ(stranger.CountRcpt(550, "5.7.1"), 3) << stranger.transcript;
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
    pending.push_back(sandbox.StartBh(kLocalHost, AuthSession("carol@example.com", Recipients(20))));
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
  EXPECT_EQ(CountOccurrences(log, "eximguard: held"), 7) << log;
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

// --- robustness: Exim processes are killed all the time ---

TEST_F(EximE2E, SessionsKilledMidwayNeitherHangNorSpoilTheTable) {
  EximSandbox sandbox;
  Publish(sandbox, SenderLimit(5));

  const unsigned seed = static_cast<unsigned>(steady_clock::now().time_since_epoch().count());
  std::mt19937 random(seed);
  std::uniform_int_distribution<int> delay_ms(0, 25);
  const auto deadline = steady_clock::now() + std::chrono::seconds(20);
  int rounds = 0;
  for (; rounds < 30 && steady_clock::now() < deadline; ++rounds) {
    std::vector<EximSandbox::PendingSession> pending;
    for (int i = 0; i < 6; ++i) {
      pending.push_back(sandbox.StartBh(kLocalHost, AuthSession("hammer@example.com", Recipients(150))));
    }
    for (EximSandbox::PendingSession& session : pending) {
      std::this_thread::sleep_for(milliseconds(delay_ms(random)));
      session.child.Kill(SIGKILL);
    }
    for (EximSandbox::PendingSession& session : pending) {
      SmtpSession done = sandbox.FinishBh(session, std::chrono::seconds(5));
      ASSERT_FALSE(done.exit.timed_out) << "round " << rounds << ", seed " << seed;
    }
  }
  EXPECT_GE(rounds, 10) << "too few rounds to mean anything";

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
