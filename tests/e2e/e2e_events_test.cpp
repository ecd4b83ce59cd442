// e2e_events_test.cpp - a bounce storm seen through Exim's own delivery events (issue 10: the
// trusted source of bounce_storm). A real Exim receives authenticated mail, delivers it over
// SMTP to a fake remote MX that refuses unknown users (tests/fakes/fake_mx.h), and its
// event_action hands each recipient's outcome to eximguard.so (eximguard_event); the real
// `eximguard start` reads the outcomes from the table and makes a trusted bounce_storm incident
// that blocks the account. No log line is involved: the same day's mainlog with forged `**`
// lines alone makes only a notice (e2e_forgery_test.cpp, engine tests).
// Needs root (skipped otherwise).

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "exim_harness.h"
#include "fake_mx.h"
#include "shipped_configs.h"
#include "subprocess.h"

namespace eg::e2e {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

// n addresses stem1@domain ... stemN@domain; an empty domain: each at a domain of its own
// (stemI@dI.fake-mx.example), as a harvested list is.
std::vector<std::string> Addresses(const std::string& stem, int n,
                                   const std::string& domain = "fake-mx.example") {
  std::vector<std::string> out;
  for (int i = 1; i <= n; ++i) {
    const std::string d = domain.empty() ? "d" + std::to_string(i) + ".fake-mx.example" : domain;
    out.push_back(stem + std::to_string(i) + "@" + d);
  }
  return out;
}

// Every `event_action = ...` of a config (continuation lines joined, blanks squeezed).
std::vector<std::string> EventActions(const std::string& text) {
  std::vector<std::string> out;
  std::string joined;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && i + 1 < text.size() && text[i + 1] == '\n') {
      ++i;
      while (i + 1 < text.size() && (text[i + 1] == ' ' || text[i + 1] == '\t')) ++i;
      continue;
    }
    joined += text[i];
  }
  size_t at = 0;
  while ((at = joined.find("event_action = ", at)) != std::string::npos) {
    const size_t end = joined.find('\n', at);
    const size_t line_start = joined.rfind('\n', at);
    const std::string before = joined.substr(line_start + 1, at - line_start - 1);
    if (before.find('#') == std::string::npos) out.push_back(joined.substr(at, end - at));
    at = end;
  }
  return out;
}

// The event_action lines the tests run are the ones shipped to users.
TEST(EventsShipped, TheTestConfigRunsTheEventActionOfExampleConfig) {
  std::vector<std::string> shipped = EventActions(ReadFile(kExampleConfig));
  const std::vector<std::string> tested = EventActions(ReadFile(kConfigTemplate));
  ASSERT_EQ(shipped.size(), 2u);  // the main section's and the smtp transport's
  ASSERT_EQ(tested.size(), 2u);
  for (std::string& line : shipped) {
    for (const auto& [from, to] :
         {std::pair<std::string, std::string>{"EXIMGUARD_SO", "@GUARD_SO@"},
          {"EXIMGUARD_SEGMENT", "@SEGMENT@"},
          {"{eximguard_event}", "{@EVENT_FN@}"}}) {
      for (size_t at; (at = line.find(from)) != std::string::npos;)
        line.replace(at, from.size(), to);
    }
  }
  EXPECT_EQ(shipped, tested);
}

class EventsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "the Exim end-to-end tests need root";
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

  std::string config_;
  std::unique_ptr<Child> daemon_;
};

TEST_F(EventsE2E, RecipientsRefusedByTheRemoteMxMakeABounceStormNoticeFromTheTable) {
  fakes::FakeMx mx;
  SandboxOptions options;
  options.fake_mx_port = mx.port();
  EximSandbox sandbox(options);
  GuardPolicy policy;
  policy.sender = {100, 1000};
  std::string output;
  ASSERT_TRUE(sandbox.CreateSegment(policy, &output).Ok()) << output;
  config_ = sandbox.sidecar_config_path();
  const std::string state = std::filesystem::path(config_).parent_path();
  Json config = Json::parse(ReadFile(config_));
  config["local_domains_file"] = "";
  config["detectors"] = {{"bounce_min_recipients", 10}, {"bounce_percent", 50}};
  WriteFile(config_, config.dump(2) + "\n", 0600);

  SpawnOptions start;
  start.argv = {kSidecarBin, "start", "--config", config_};
  start.stdout_path = state + "/daemon.out";
  start.stderr_path = state + "/daemon.err";
  daemon_ = std::make_unique<Child>(Spawn(start));
  ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(state + "/status.json"); }))
      << ReadFile(start.stderr_path);
  std::this_thread::sleep_for(1500ms);  // the daemon's first look at the table is its baseline

  // Two authenticated accounts: one mails a harvested list (14 of 18 addresses, at 14 domains,
  // do not exist); the other mails its newsletter to 3 readers and to 14 addresses an attacker
  // signed up at one domain whose MX the attacker runs and which refuses them all.
  sandbox.StartDaemon();
  std::vector<std::string> harvested = Addresses("good", 4);
  for (const std::string& a : Addresses("bad", 14, "")) harvested.push_back(a);
  SmtpSession harvester = sandbox.RunSwaks("harvester@example.com", harvested);
  EXPECT_EQ(harvester.CountRcpt(250), 18) << harvester.transcript;
  std::vector<std::string> newsletter = Addresses("friend", 3);
  for (const std::string& a : Addresses("bad", 14, "attacker.fake-mx.example"))
    newsletter.push_back(a);
  SmtpSession grace = sandbox.RunSwaks("grace@example.com", newsletter);
  EXPECT_EQ(grace.CountRcpt(250), 17) << grace.transcript;
  sandbox.StopDaemon();

  // Exim delivers to the fake MX; each recipient's outcome goes through event_action.
  const ExitStatus run = sandbox.RunQueue();
  ASSERT_TRUE(run.Ok()) << run.Describe() << "\n" << sandbox.mainlog();
  EXPECT_EQ(mx.refused().size(), 28u) << sandbox.mainlog();
  EXPECT_EQ(mx.accepted().size(), 7u) << sandbox.mainlog();

  // The table holds Exim's outcomes for each account (`top --json`).
  const Json top = Json::parse(sandbox.Sidecar({"top", "--json"}), nullptr, false);
  ASSERT_TRUE(top.is_object() || top.is_array()) << top;
  const std::string top_text = top.dump();
  EXPECT_NE(top_text.find("\"failed\":14"), std::string::npos) << top.dump(2);
  const std::string why = sandbox.Sidecar({"why", "harvester@example.com"});
  EXPECT_NE(why.find("Exim delivered 4, failed 14, deferred 0 of its recipients"),
            std::string::npos)
      << why;

  // The daemon tells of a bounce storm (the log's `**` lines or the table's outcomes, whichever
  // comes first: one notice per key and rule per cooldown) and punishes nothing: others could
  // have chosen the recipients (form sign-ups, an MX refusing everything).
  auto storm = [&](const Json& list) -> Json {
    if (!list.is_array()) return Json();
    for (const Json& i : list) {
      if (i["rule"] == "bounce_storm" && i["key"] == "harvester@example.com") return i;
    }
    return Json();
  };
  ASSERT_TRUE(WaitUntil([&] { return !storm(Incidents(sandbox)).is_null(); }))
      << Incidents(sandbox).dump(2) << ReadFile(start.stderr_path);
  const Json notice = storm(Incidents(sandbox));
  EXPECT_EQ(notice["evidence"]["trusted"], false) << notice.dump(2);
  std::this_thread::sleep_for(2500ms);        // the daemon looked at grace's outcomes too
  for (const Json& i : Incidents(sandbox)) {  // grace's has at most the log's notice
    if (i["key"] == "grace@example.com") {
      EXPECT_EQ(i["evidence"]["trusted"], false) << i.dump(2);
    }
    if (i["evidence"]["source"] == "log") {
      EXPECT_EQ(i["evidence"]["trusted"], false) << i.dump(2);
    }
  }
  // A notice, not a block: the recipients could have been chosen by someone else.
  EXPECT_EQ(sandbox.Sidecar({"list", "--json"}).find("harvester@example.com"), std::string::npos);
  SmtpSession after =
      sandbox.RunBh("127.0.0.1", AuthSession("harvester@example.com", Addresses("more", 2)));
  EXPECT_EQ(after.CountRcpt(250), 2) << after.transcript;
  SmtpSession innocent =
      sandbox.RunBh("127.0.0.1", AuthSession("grace@example.com", Addresses("friend", 2)));
  EXPECT_EQ(innocent.CountRcpt(250), 2) << innocent.transcript;
}

}  // namespace
}  // namespace eg::e2e
