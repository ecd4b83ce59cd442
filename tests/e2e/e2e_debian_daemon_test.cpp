// e2e_debian_daemon_test.cpp - the real-server issue's points 1-4 on Debian's own split
// configuration (a copy of /etc/exim4/conf.d plus only the shipped files, built with
// update-exim4.conf), a real Exim and the real `eximguard start` following its mainlog:
//   1. changing a limit punishes nothing sent before the change (and `set` says who is over);
//   2. a script burst is never blamed on Exim's spool directory or its re-invocations;
//   3. held (frozen) mail is not sent mail: the local path never turns a hold into a refusal;
//   4. a key the guard keeps refusing surfaces as a trusted `throttled` incident, an
//      authenticated sender and a relay-host sender alike.
// Needs root and a Debian Exim (skipped elsewhere).

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "exim_harness.h"
#include "shipped_configs.h"
#include "subprocess.h"

namespace eg::e2e {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

class DebianDaemonE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the Exim end-to-end tests need root";
    if (!std::filesystem::exists("/usr/sbin/update-exim4.conf") ||
        !std::filesystem::exists("/etc/exim4/conf.d")) {
      GTEST_SKIP() << "not a Debian Exim (no update-exim4.conf or /etc/exim4/conf.d)";
    }
  }
  void TearDown() override {
    if (daemon_) {
      daemon_->Kill(SIGTERM);
      daemon_->Wait(20s);
    }
  }
  Json Incidents(EximSandbox& sandbox) {
    return Json::parse(sandbox.Sidecar({"incidents", "--json", "--since", "all"}), nullptr, false);
  }
  static bool Has(const Json& incidents, const std::string& rule, const std::string& key) {
    if (!incidents.is_array()) return false;
    for (const Json& i : incidents) {
      if (i["rule"] == rule && i["key"] == key && i["evidence"]["trusted"] == true) return true;
    }
    return false;
  }

  std::string config_;
  std::unique_ptr<Child> daemon_;
};

TEST_F(DebianDaemonE2E, TheDaemonOnDebiansConfigPunishesNothingInnocentAndSeesTheThrottled) {
  TestUser user = EnsureTestUser();
  ScopedTempDir work;
  ASSERT_FALSE(work.path.empty());
  SandboxOptions options;  // Exim runs as the test user, so it can submit mail locally
  options.exim_user = user.name;
  options.exim_group = user.group;
  options.config_template = BuildDebianTemplate(work.path);
  EximSandbox sandbox(options);
  const std::string script_dir = sandbox.MakeScriptDir(user);
  GuardPolicy policy;
  policy.sender = {3, 1000};
  policy.cwd = {2, 1000};
  std::string output;
  ASSERT_TRUE(sandbox.CreateSegment(policy, &output).Ok()) << output;
  // The config `eximguard run` used, plus what the daemon needs here.
  config_ = sandbox.sidecar_config_path();
  const std::string state = std::filesystem::path(config_).parent_path();
  Json config = Json::parse(ReadFile(config_));
  config["local_domains_file"] = "";
  config["detectors"] = {{"throttled_refused", 2}};
  WriteFile(config_, config.dump(2) + "\n", 0600);

  SpawnOptions start;
  start.argv = {kSidecarBin, "start", "--config", config_};
  start.stdout_path = state + "/daemon.out";
  start.stderr_path = state + "/daemon.err";
  daemon_ = std::make_unique<Child>(Spawn(start));
  ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(state + "/status.json"); }))
      << ReadFile(start.stderr_path);
  std::this_thread::sleep_for(1500ms);  // the daemon's first look at the table is its baseline

  // 3. A script sends 5 messages with a cwd limit of 2/min: 2 queued, the rest frozen; none is
  // refused, and nothing is blocked afterwards (held mail is not sent mail).
  for (int i = 0; i < 5; ++i) {
    std::string out;
    ASSERT_TRUE(sandbox.SubmitLocal(user, script_dir, LocalMessage(i), &out).Ok()) << out;
  }
  QueueListing queue = sandbox.Queue();
  EXPECT_EQ(queue.total(), 5);
  EXPECT_EQ(queue.frozen(), 3);

  // 4. An authenticated sender and a relay-host sender hammer their limit of 3/minute.
  SmtpSession alice = sandbox.RunBh("127.0.0.1", AuthSession("alice@example.com", Recipients(6)));
  EXPECT_EQ(alice.CountRcpt(451, "4.7.1"), 3) << alice.transcript;
  SmtpSession bob = sandbox.RunBh("127.0.0.2", PlainSession("bob@example.com", Recipients(6)));
  EXPECT_EQ(bob.CountRcpt(451, "4.7.1"), 3) << bob.transcript;
  ASSERT_TRUE(WaitUntil([&] {
    const Json list = Incidents(sandbox);
    return Has(list, "throttled", "alice@example.com") && Has(list, "throttled", "bob@example.com");
  })) << Incidents(sandbox).dump(2)
      << ReadFile(start.stderr_path);

  // 1. Lowering alice's limit below what she sent records nothing for what came before.
  int code = -1;
  const std::string set = sandbox.Sidecar({"set", "alice@example.com", "1/min"}, &code);
  EXPECT_EQ(code, 0) << set;
  EXPECT_NE(set.find("already at or over the new limit: 1 key: alice@example.com"),
            std::string::npos)
      << set;
  std::this_thread::sleep_for(3s);  // the daemon reloads (SIGHUP) and warms up

  // 2 and 1: no incident blames Exim's spool directory, none is a rate incident of mail sent
  // before a change or of held mail, and nothing at all is blocked.
  const Json all = Incidents(sandbox);
  ASSERT_TRUE(all.is_array()) << all.dump(2);
  for (const Json& i : all) {
    EXPECT_NE(i["key"], "/var/spool/exim4") << i.dump();
    EXPECT_EQ(i["rule"], "throttled") << i.dump(2);
  }
  // ... and that is not because the daemon read nothing: it followed the arrivals and the cwd=
  // lines of the script's submissions.
  const Json status = Json::parse(sandbox.Sidecar({"status", "--json"}), nullptr, false);
  ASSERT_TRUE(status.is_object()) << status;
  EXPECT_GE(status["daemon"]["lines"].get<int64_t>(), 10) << status.dump(2);
  EXPECT_NE(sandbox.mainlog().find("cwd=" + script_dir), std::string::npos);
  const Json blocks = Json::parse(sandbox.Sidecar({"list", "--json"}), nullptr, false);
  EXPECT_TRUE(blocks.is_array() && blocks.empty()) << blocks.dump(2);
  const std::string log = ReadFile(start.stderr_path);
  EXPECT_EQ(log.find("blocked"), std::string::npos) << log;
}

}  // namespace
}  // namespace eg::e2e
