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
  static Json Incident(const std::string& key, const std::string& rule = "rate_per_hour",
                       const std::string& klass = "sender") {
    return Json{{"key", key},
                {"class", klass},
                {"rule", rule},
                {"time", kNow},
                {"count", 500},
                {"threshold", 100},
                {"ips", {"203.0.113.5", "198.51.100.9"}},
                {"id", 7},
                {"action", "block"}};
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
  EXPECT_EQ(Read("fw.calls"), "-d 203.0.113.5\n-d 198.51.100.9\n");

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

TEST_F(FollowUpTest, UidAndCwdKeysActOnTheWholeAccount) {
  SetRule("rate_per_minute", {"hold_outgoing"});
  Json inc = Incident("/home/carol/public_html/wp", "rate_per_minute", "cwd");
  const FollowUp f = RunFollowUp(env_, inc);
  ASSERT_EQ(f.steps.size(), 1u);
  EXPECT_TRUE(f.steps[0].ok) << f.steps[0].outcome;
  EXPECT_EQ(f.steps[0].outcome, "done: account carol");
  const auto calls = Requests("/json-api/hold_outgoing_email");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].query.at("user"), "carol");
  EXPECT_EQ(f.undo,
            "eximguard unsuspend /home/carol/public_html/wp; eximguard release "
            "/home/carol/public_html/wp");
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

TEST_F(FollowUpTest, WithoutATokenOrUnderNotifyOnlyNothingIsAsked) {
  SetRule("rate_per_hour", {"block", "suspend_outgoing", "freeze_queue"});
  config_.notify_only = true;
  FollowUp f = RunFollowUp(env_, Incident("spam@v.example"));
  ASSERT_EQ(f.steps.size(), 2u);
  EXPECT_EQ(f.steps[0].outcome, "skipped: notify_only");
  config_.notify_only = false;
  config_.whm.token.clear();
  f = RunFollowUp(env_, Incident("spam@v.example"));
  EXPECT_EQ(f.steps[0].outcome, "skipped: whm.token is not set");
  EXPECT_TRUE(server_.requests().empty());
}

}  // namespace
}  // namespace eg::sidecar
