// follow_up_test.cpp - an incident's further actions (follow_up.h) against the fake WHM over
// HTTPS, a fake `exim` and a fake firewall program written by the test, and a real SQLite store:
// the steps asked of WHM, idempotency through the store, the safety valve, undo, and no token
// in any outcome.

#include "follow_up.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "fake_http_server.h"
#include "sidecar_test_util.h"

namespace eg::sidecar {
namespace {

using eg::testing::FakeHttpServer;
using eg::testing::FakeRequest;
using eg::testing::FakeResponse;
using Json = nlohmann::ordered_json;

constexpr char kToken[] = "WHMSECRET42";
constexpr int64_t kNow = 1'800'000'000;

class FollowUpTest : public ::testing::Test {
 protected:
  FollowUpTest() : server_({.tls = true}) {
    char tmpl[] = "/tmp/eg-followup-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::string error;
    store_ = StateStore::Open(dir_ + "/state", &error);
    config_.state_dir = dir_ + "/state";
    config_.whm.url = server_.url();
    config_.whm.token = kToken;
    config_.whm.ca_file = server_.ca_file();
    config_.whm.timeout_seconds = 2;
    config_.whm.retries = 0;
    // A fake exim: -bp lists two messages of spam@v.example and one of other@; -Mf is recorded.
    Script("exim",
           "if [ \"$1\" = -bp ]; then\n"
           "  echo ' 5m  2.1K 1tAAAA-000001-AB <Spam@V.example>'\n"
           "  echo '          r1@far.example'\n"
           "  echo ' 4m  2.1K 1tAAAA-000002-AB <other@v.example>'\n"
           "  echo ' 3m  2.1K 1tAAAA-000003-AB <spam@v.example>'\n"
           "else echo \"$@\" >> " +
               dir_ + "/exim.calls; fi\n");
    Script("fw", "echo \"$@\" >> " + dir_ + "/fw.calls\n");
    config_.actions.exim_command = {dir_ + "/exim"};
    config_.actions.firewall_command = {dir_ + "/fw", "-d", "{ip}"};
    server_.Handle([this](const FakeRequest& r) {
      std::lock_guard lock(mu_);
      if (r.path == "/json-api/getdomainowner") {
        return FakeResponse{200,
                            R"({"data":{"user":"bob"},"metadata":{"result":1,"reason":"OK"}})"};
      }
      if (r.path == "/json-api/uapi_cpanel") {
        if (refuse_) {
          return FakeResponse{200, R"({"data":{"uapi":{"status":0,"errors":["You do not have )"
                                   R"(permission."]}},"metadata":{"result":1}})"};
        }
        return FakeResponse{200, R"({"data":{"uapi":{"status":1,"errors":null}},)"
                                 R"("metadata":{"result":1,"reason":"OK"}})"};
      }
      return FakeResponse{200, R"({"metadata":{"result":1,"reason":"OK"}})"};
    });
    whm_ = std::make_unique<WhmClient>(config_.whm);
    env_.config = &config_;
    env_.store = store_.get();
    env_.whm = whm_.get();
    env_.now = [] { return kNow; };
  }
  ~FollowUpTest() override { std::filesystem::remove_all(dir_); }

  void Script(const std::string& name, const std::string& body) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << "#!/bin/sh\n" << body;
    chmod(path.c_str(), 0755);
  }
  std::string Read(const std::string& name) {
    std::ifstream in(dir_ + "/" + name);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void SetRule(const std::string& rule, std::vector<std::string> actions) {
    for (RuleActions& r : config_.actions.rules) {
      if (r.rule == rule) r.actions = std::move(actions);
    }
  }
  // A recorded, trusted incident the engine let punish (engine.h), as it reaches the follow-up.
  static HandledIncident Incident(const std::string& key, const std::string& rule = "rate_per_hour",
                                  const std::string& klass = "sender") {
    HandledIncident h;
    h.incident.key = key;
    h.incident.key_class = klass;
    h.incident.rule = rule;
    h.incident.time = kNow;
    h.incident.count = 500;
    h.incident.threshold = 100;
    h.incident.ips = {"203.0.113.5", "198.51.100.9"};
    h.incident.source = EvidenceSource::kTable;
    h.incident.trusted = true;
    h.id = 7;
    h.action = "block";
    h.punish = true;
    return h;
  }
  std::vector<FakeRequest> Requests(const std::string& path) {
    std::vector<FakeRequest> out;
    for (const FakeRequest& r : server_.requests()) {
      if (r.path == path) out.push_back(r);
    }
    return out;
  }
  void ExpectNoToken(const FollowUp& f) {
    for (const StepResult& s : f.steps) EXPECT_EQ(s.outcome.find(kToken), std::string::npos);
  }

  FakeHttpServer server_;
  std::mutex mu_;
  bool refuse_ = false;
  std::string dir_;
  Config config_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<WhmClient> whm_;
  FollowUpEnv env_;
};

TEST_F(FollowUpTest, SuspendsTheMailboxFreezesItsQueueAndBlocksItsIps) {
  SetRule("rate_per_hour", {"block", "suspend_outgoing", "freeze_queue", "firewall", "command"});
  const FollowUp f = RunFollowUp(env_, Incident("spam@v.example"));
  ASSERT_EQ(f.steps.size(), 4u);  // block and command are done elsewhere
  EXPECT_EQ(f.steps[0].action, "suspend_outgoing");
  EXPECT_TRUE(f.steps[0].ok) << f.steps[0].outcome;
  EXPECT_EQ(f.steps[0].outcome, "done: spam@v.example");
  EXPECT_TRUE(f.steps[1].ok) << f.steps[1].outcome;
  EXPECT_NE(f.steps[1].outcome.find("froze 2"), std::string::npos) << f.steps[1].outcome;
  EXPECT_TRUE(f.steps[2].ok && f.steps[3].ok);
  EXPECT_EQ(f.undo, "eximguard unsuspend spam@v.example");
  ExpectNoToken(f);

  // WHM: who owns v.example, then UAPI Email::suspend_outgoing on the mailbox as bob.
  ASSERT_EQ(Requests("/json-api/getdomainowner").size(), 1u);
  EXPECT_EQ(Requests("/json-api/getdomainowner")[0].query.at("domain"), "v.example");
  const auto uapi = Requests("/json-api/uapi_cpanel");
  ASSERT_EQ(uapi.size(), 1u);
  EXPECT_EQ(uapi[0].query.at("cpanel.user"), "bob");
  EXPECT_EQ(uapi[0].query.at("cpanel.function"), "suspend_outgoing");
  EXPECT_EQ(uapi[0].query.at("email"), "spam@v.example");
  EXPECT_EQ(uapi[0].headers.at("authorization"), std::string("whm root:") + kToken);
  // Exim: only the key's messages frozen; the firewall: each IP once.
  EXPECT_EQ(Read("exim.calls"), "-Mf 1tAAAA-000001-AB 1tAAAA-000003-AB\n");
  EXPECT_EQ(Read("fw.calls"), "-d 198.51.100.9\n-d 203.0.113.5\n");

  // Remembered: a second incident asks WHM nothing and says "already".
  std::vector<StoredBlock> blocks;
  std::string error;
  ASSERT_TRUE(store_->ActiveBlocks(&blocks, &error));
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].kind, "suspend_outgoing");
  EXPECT_EQ(blocks[0].by, kAutomaticBy);
  SetRule("rate_per_hour", {"suspend_outgoing"});
  const FollowUp again = RunFollowUp(env_, Incident("spam@v.example"));
  ASSERT_EQ(again.steps.size(), 1u);
  EXPECT_EQ(again.steps[0].outcome, "already");
  EXPECT_EQ(Requests("/json-api/uapi_cpanel").size(), 1u);
}

// A script directory acts on the account of the uid that SUBMITTED from it (the guard's table
// records it), never on the owner of the path.
TEST_F(FollowUpTest, UidAndCwdKeysActOnTheWholeAccountOfTheSubmitter) {
  const int64_t uid = testing::CustomerUid();
  ASSERT_GE(uid, 0) << "cannot create the test user (needs root)";
  SetRule("rate_per_minute", {"hold_outgoing"});
  HandledIncident inc = Incident("/home/carol/public_html/wp", "rate_per_minute", "cwd");
  inc.incident.owner_uid = uid;
  const FollowUp f = RunFollowUp(env_, inc);
  ASSERT_EQ(f.steps.size(), 1u);
  EXPECT_TRUE(f.steps[0].ok) << f.steps[0].outcome;
  EXPECT_EQ(f.steps[0].outcome, "done: account egcustomer");
  const auto calls = Requests("/json-api/hold_outgoing_email");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].query.at("user"), "egcustomer");
  EXPECT_EQ(f.undo,
            "eximguard unsuspend /home/carol/public_html/wp; eximguard release "
            "/home/carol/public_html/wp");
}

// Issue 10.2: `cd` into a victim's 0711 home, swap the directory for a symlink while the message
// is read, or name a directory "/tmp/<victim-owned> 1 args: x": each ended in
// hold_outgoing_email user=<victim>, because the account came from stat() on the path. Without
// a submitting uid no account is named, and nothing is asked of WHM.
TEST_F(FollowUpTest, ADirectorysAccountIsNeverGuessedFromThePath) {
  SetRule("rate_per_minute", {"hold_outgoing", "suspend_account"});
  const std::string victim_home = dir_ + "/home/victim";
  std::filesystem::create_directories(victim_home + "/public_html");
  const int64_t uid = testing::CustomerUid();
  ASSERT_GE(uid, 0);
  ASSERT_EQ(chown(victim_home.c_str(), static_cast<uid_t>(uid), 0), 0);
  ASSERT_EQ(chown((victim_home + "/public_html").c_str(), static_cast<uid_t>(uid), 0), 0);
  for (const std::string& key :
       std::vector<std::string>{victim_home + "/public_html", "/home/victim/public_html",
                                "/tmp/" + victim_home + " 1 args: x"}) {
    const FollowUp f = RunFollowUp(env_, Incident(key, "rate_per_minute", "cwd"));
    ASSERT_EQ(f.steps.size(), 2u) << key;
    for (const StepResult& s : f.steps) {
      EXPECT_FALSE(s.ok) << key;
      EXPECT_NE(s.outcome.find("never guessed from the path"), std::string::npos) << s.outcome;
    }
  }
  EXPECT_TRUE(server_.requests().empty());
}

// Issue 10: an incident whose evidence is not trusted (or that may not punish) runs nothing;
// the notice says why and names the command that acts on it.
TEST_F(FollowUpTest, AnIncidentThatMayNotPunishRunsNothing) {
  SetRule("rate_per_hour", {"block", "suspend_outgoing", "freeze_queue", "firewall", "command"});
  config_.actions.command = {dir_ + "/fw", "command-ran"};
  HandledIncident h = Incident("victim@v.example");
  h.punish = false;
  h.incident.trusted = false;
  h.incident.source = EvidenceSource::kLog;
  h.incident.trust_note = "the log shows 500 recipients in the hour but the guard counted 3";
  h.action = "none (not corroborated: to act on it, eximguard act ID)";
  const FollowUp f = RunFollowUp(env_, h);
  EXPECT_TRUE(f.steps.empty());
  EXPECT_EQ(f.not_acted, h.incident.trust_note);
  EXPECT_TRUE(server_.requests().empty());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/exim.calls"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/fw.calls"));
  const Notice n = FollowUpNotice(h, f);
  EXPECT_NE(n.action.find("NOT ACTED ON: the log shows 500"), std::string::npos) << n.action;
  EXPECT_EQ(n.undo, "to act on it: eximguard act 7");

  // An admin's `act` runs the rule's steps for it.
  env_.who = "cli:root";
  const FollowUp acted = RunFollowUp(env_, h);
  EXPECT_TRUE(acted.not_acted.empty());
  EXPECT_EQ(acted.steps.size(), 5u);  // suspend, freeze, 2 x firewall, command
  EXPECT_NE(Read("fw.calls").find("command-ran"), std::string::npos);
}

// Issue 10.4: failures from 127.0.0.1 firewalled 127.0.0.1 and the "IP" check was a character
// set that passed deadbeef.cafe. Only real addresses, never loopback, this host's own, the
// allowlist or an IP that also logged in successfully; each once.
TEST_F(FollowUpTest, FirewallOnlyRealForeignAddressesEachOnce) {
  config_.actions.firewall_allow = {"192.0.2.0/24"};
  env_.own_addresses = {"198.51.100.1"};
  HandledIncident h = Incident("203.0.113.66", "auth_failures", "ip");
  h.incident.ips = {"203.0.113.66", "::ffff:203.0.113.66", "127.0.0.1",
                    "::1",          "deadbeef.cafe",       "198.51.100.1",
                    "192.0.2.77",   "198.51.100.23",       "2001:db8::5"};
  h.incident.spared_ips = {"198.51.100.23"};
  std::vector<std::string> skipped;
  EXPECT_EQ(FirewallTargets(env_, h.incident, &skipped),
            (std::vector<std::string>{"203.0.113.66", "2001:db8::5"}));
  EXPECT_EQ(skipped.size(), 6u);
  SetRule("auth_failures", {"firewall"});
  RunFollowUp(env_, h);
  EXPECT_EQ(Read("fw.calls"), "-d 203.0.113.66\n-d 2001:db8::5\n");
}

// Issue 10.10: freeze_queue read recipient lines of `exim -bp` as queue entries and passed an
// attacker's word to `exim -Mf`. Only queue-entry lines, ids checked strictly; a failed batch
// does not stop the others.
TEST_F(FollowUpTest, FreezeQueueReadsOnlyQueueEntriesWithValidIds) {
  const std::string bp =
      " 5m  2.1K 1tAAAA-000001-AB <spam@v.example>\n"
      "          5m 2.1K --help <spam@v.example>\n"
      "          4m 1K 1tEVIL-000009-AB <spam@v.example>\n"
      "25m  900 10HmaX-000000005vi-0000 <SPAM@v.example> *** frozen ***\n"
      " 3m  2.1K 1tAA;rm-000003-AB <spam@v.example>\n"
      " 3m  2.1K 1tAAAA-000004-AB <spam@v.example> trailing\n"
      " 2m  2.1K 1tAAAA-000005-AB <other@v.example>\n";
  EXPECT_EQ(QueuedIdsOfSender(bp, "spam@v.example"),
            (std::vector<std::string>{"1tAAAA-000001-AB", "10HmaX-000000005vi-0000"}));
}

// Issue 10.8: the notice's Undo line is pasted into a root shell; a directory named
// "x;touch $HOME;id>`mktemp -u`" must land quoted.
TEST_F(FollowUpTest, UndoLinesQuoteTheKey) {
  SetRule("rate_per_minute", {"block"});
  const std::string evil = "/home/u/x;touch $HOME;id>`mktemp -u`";
  const FollowUp f = RunFollowUp(env_, Incident(evil, "rate_per_minute", "cwd"));
  EXPECT_EQ(f.undo, "eximguard unsuspend '/home/u/x;touch $HOME;id>`mktemp -u`'");
  const Notice n = FollowUpNotice(Incident(evil, "rate_per_minute", "cwd"), f);
  EXPECT_EQ(n.undo, f.undo);
  const FollowUp dash = RunFollowUp(env_, Incident("-rf@v.example"));
  EXPECT_EQ(dash.undo.rfind("eximguard unsuspend -- ", 0), 0u) << dash.undo;
}

TEST_F(FollowUpTest, ARefusalIsReportedAndNotRemembered) {
  SetRule("rate_per_hour", {"block", "suspend_outgoing"});
  refuse_ = true;
  const FollowUp f = RunFollowUp(env_, Incident("spam@v.example"));
  ASSERT_EQ(f.steps.size(), 1u);
  EXPECT_FALSE(f.steps[0].ok);
  EXPECT_NE(f.steps[0].outcome.find("You do not have permission"), std::string::npos)
      << f.steps[0].outcome;
  std::vector<StoredBlock> blocks;
  std::string error;
  ASSERT_TRUE(store_->ActiveBlocks(&blocks, &error));
  EXPECT_TRUE(blocks.empty());
  refuse_ = false;  // fixed: the next incident suspends
  EXPECT_TRUE(RunFollowUp(env_, Incident("spam@v.example")).steps[0].ok);
}

TEST_F(FollowUpTest, TheSafetyValveStopsAutomaticSuspensionsButNotAdmins) {
  config_.actions.max_auto_suspensions_per_hour = 2;
  SetRule("rate_per_hour", {"block", "suspend_outgoing"});
  EXPECT_TRUE(RunFollowUp(env_, Incident("a@v.example")).steps[0].ok);
  EXPECT_TRUE(RunFollowUp(env_, Incident("b@v.example")).steps[0].ok);
  const FollowUp third = RunFollowUp(env_, Incident("c@v.example"));
  EXPECT_TRUE(third.valve_tripped);
  ASSERT_EQ(third.steps.size(), 1u);
  EXPECT_FALSE(third.steps[0].ok);
  EXPECT_NE(third.steps[0].outcome.find("SAFETY VALVE: 2 automatic suspensions"),
            std::string::npos);
  EXPECT_EQ(Requests("/json-api/uapi_cpanel").size(), 2u);
  const Notice n = FollowUpNotice(Incident("c@v.example"), third);
  EXPECT_NE(n.title.find("SAFETY VALVE"), std::string::npos);

  // An admin still can; and the valve opens again an hour later.
  const StepResult admin = RunWhmStep(env_, "suspend_outgoing", false, KeyClass::kSender,
                                      "c@v.example", "sender", "c@v.example", "cli:root", "");
  EXPECT_TRUE(admin.ok) << admin.outcome;
  env_.now = [] { return kNow + 3601; };
  EXPECT_FALSE(RunFollowUp(env_, Incident("d@v.example")).valve_tripped);
}

TEST_F(FollowUpTest, UndoCallsTheInverseAndClosesTheRecord) {
  const StepResult s = RunWhmStep(env_, "suspend_login", false, KeyClass::kSender, "x@v.example",
                                  "sender", "x@v.example", "telegram:5", "phished");
  ASSERT_TRUE(s.ok) << s.outcome;
  const StepResult u = RunWhmStep(env_, "suspend_login", true, KeyClass::kSender, "x@v.example",
                                  "sender", "x@v.example", "telegram:5", "");
  ASSERT_TRUE(u.ok) << u.outcome;
  EXPECT_EQ(u.action, "unsuspend_login");
  const auto uapi = Requests("/json-api/uapi_cpanel");
  ASSERT_EQ(uapi.size(), 2u);
  EXPECT_EQ(uapi[1].query.at("cpanel.function"), "unsuspend_login");
  std::vector<StoredBlock> blocks;
  std::string error;
  ASSERT_TRUE(store_->ActiveBlocks(&blocks, &error));
  EXPECT_TRUE(blocks.empty());
}

// A host without cPanel: the WHM steps are left out quietly (no "skipped: whm.token" noise
// on every notice); under notify_only the engine lets nothing punish.
TEST_F(FollowUpTest, WithoutATokenOrUnderNotifyOnlyNothingIsAsked) {
  SetRule("rate_per_hour", {"block", "suspend_outgoing", "freeze_queue"});
  config_.notify_only = true;
  HandledIncident quiet = Incident("spam@v.example");
  quiet.punish = false;  // what the engine sets under notify_only
  FollowUp f = RunFollowUp(env_, quiet);
  EXPECT_TRUE(f.steps.empty());
  EXPECT_EQ(f.not_acted, "notify_only is set");
  config_.notify_only = false;
  config_.whm.token.clear();
  f = RunFollowUp(env_, Incident("spam@v.example"));
  ASSERT_EQ(f.steps.size(), 1u);
  EXPECT_EQ(f.steps[0].action, "freeze_queue");
  EXPECT_TRUE(server_.requests().empty());
}

}  // namespace
}  // namespace eg::sidecar
