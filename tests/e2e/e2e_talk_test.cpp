// e2e_talk_test.cpp - the whole chain of issue 4 with real parts: a burst through a real Exim
// daemon (swaks), `eximguard start` following its mainlog, an incident, the key blocked in the
// shared table (the next RCPT refused inline), a suspension through the fake WHM (HTTPS, a
// certificate the test made), and a message to the fake Telegram and the fake Slack.
//
// Contract: needs root (as every Exim end-to-end test); each fake is a loopback server started
// here (tests/fakes); everything is removed at the end.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "exim_harness.h"
#include "fake_http_server.h"

namespace eg::e2e {
namespace {

using eg::testing::FakeHttpServer;
using eg::testing::FakeRequest;
using eg::testing::FakeResponse;
using Json = nlohmann::json;

constexpr const char* kWhmToken = "E2EWHMTOKEN";
constexpr const char* kBotToken = "123456:E2E-telegram";
constexpr const char* kSlackToken = "xoxb-e2e-slack";

// Waits up to 15 s for pred.
template <typename Pred>
bool Eventually(Pred pred) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pred();
}

std::vector<FakeRequest> Calls(const FakeHttpServer& s, const std::string& path) {
  std::vector<FakeRequest> out;
  for (const FakeRequest& r : s.requests()) {
    if (r.path == path) out.push_back(r);
  }
  return out;
}

TEST(TalkE2E, BurstLeadsToATableBlockAWhmSuspensionAndTelegramAndSlackMessages) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root, as every Exim end-to-end test";
  FakeHttpServer whm({.tls = true});
  whm.Handle([](const FakeRequest& r) {
    if (r.path == "/json-api/getdomainowner") {
      return FakeResponse{200, R"({"data":{"user":"spamco"},"metadata":{"result":1}})"};
    }
    return FakeResponse{200, R"({"data":{"uapi":{"status":1,"errors":null}},)"
                             R"("metadata":{"result":1,"reason":"OK"}})"};
  });
  FakeHttpServer telegram({.tls = true});
  telegram.Handle([](const FakeRequest& r) {
    if (r.path.ends_with("/getUpdates")) {  // a long poll with nothing new
      FakeResponse empty{200, R"({"ok":true,"result":[]})"};
      empty.delay_ms = 300;
      return empty;
    }
    return FakeResponse{200, R"({"ok":true,"result":{"message_id":1}})"};
  });
  FakeHttpServer slack({.tls = true});
  slack.Handle([](const FakeRequest&) {
    return FakeResponse{200, R"({"ok":true,"channel":"C1","ts":"1.2"})"};
  });

  EximSandbox sandbox;
  GuardPolicy unlimited;  // the guard counts but does not limit: the log rules must catch it
  std::string output;
  ASSERT_TRUE(sandbox.CreateSegment(unlimited, &output).Ok()) << output;
  const std::string config_path = sandbox.dir() + "/state/eximguard.json";
  Json config = Json::parse(ReadFile(config_path));
  config["detectors"] = {{"repeated_subject_recipients", 20}, {"repeated_subject_min_messages", 1}};
  config["actions"] = {{"rules", {{"repeated_subject", {"block", "suspend_outgoing"}}}}};
  config["whm"] = {{"url", whm.url()}, {"token", kWhmToken}, {"ca_file", whm.ca_file()}};
  config["telegram"] = {{"api_url", telegram.url()},
                        {"token", kBotToken},
                        {"notify_chat_id", "-100123"},
                        {"admin_ids", {42}},
                        {"ca_file", telegram.ca_file()}};
  config["slack"] = {{"api_url", slack.url()},
                     {"bot_token", kSlackToken},
                     {"notify_channel", "C0ALERTS"},
                     {"ca_file", slack.ca_file()}};
  WriteFile(config_path, config.dump(2) + "\n", 0600);

  SpawnOptions start;
  start.argv = {kSidecarBin, "start", "--config", config_path};
  start.stdout_path = start.stderr_path = sandbox.dir() + "/sidecar-start.log";
  Child daemon = Spawn(start);
  ASSERT_TRUE(Eventually([&] { return !ReadFile(sandbox.dir() + "/state/status.json").empty(); }))
      << ReadFile(start.stderr_path);

  sandbox.StartDaemon();
  // One message to 25 recipients: accepted (no limit), and the same subject 25 times.
  SmtpSession burst = sandbox.RunSwaks("spammer@example.com", Recipients(25));
  ASSERT_EQ(burst.CountRcpt(250), 25) << burst.transcript;

  // WHM: the owner of example.com, then its mailbox's outgoing mail suspended.
  ASSERT_TRUE(Eventually([&] { return !Calls(whm, "/json-api/uapi_cpanel").empty(); }))
      << ReadFile(start.stderr_path);
  const FakeRequest suspend = Calls(whm, "/json-api/uapi_cpanel")[0];
  EXPECT_EQ(suspend.query.at("cpanel.function"), "suspend_outgoing");
  EXPECT_EQ(suspend.query.at("cpanel.user"), "spamco");
  EXPECT_EQ(suspend.query.at("email"), "spammer@example.com");
  EXPECT_EQ(suspend.headers.at("authorization"), std::string("whm root:") + kWhmToken);

  // The admins hear of it on both channels, with the key and the rule.
  ASSERT_TRUE(Eventually([&] {
    return !Calls(telegram, std::string("/bot") + kBotToken + "/sendMessage").empty() &&
           !Calls(slack, "/chat.postMessage").empty();
  })) << ReadFile(start.stderr_path);
  const Json tg =
      Json::parse(Calls(telegram, std::string("/bot") + kBotToken + "/sendMessage")[0].body);
  EXPECT_EQ(tg["chat_id"].dump().find("-100123") != std::string::npos, true) << tg.dump();
  EXPECT_NE(tg["text"].get<std::string>().find("spammer@example.com"), std::string::npos);
  EXPECT_NE(tg["text"].get<std::string>().find("repeated_subject"), std::string::npos);
  const FakeRequest sl = Calls(slack, "/chat.postMessage")[0];
  EXPECT_EQ(sl.headers.at("authorization"), std::string("Bearer ") + kSlackToken);
  const Json sj = Json::parse(sl.body);
  EXPECT_EQ(sj["channel"], "C0ALERTS");
  EXPECT_NE(sj["text"].get<std::string>().find("spammer@example.com"), std::string::npos);

  // The table block came first: the next RCPT of the account is refused inline.
  SmtpSession after = sandbox.RunSwaks("spammer@example.com", Recipients(1));
  EXPECT_EQ(after.CountRcpt(250), 0) << after.transcript;
  EXPECT_EQ(after.RcptTotal() - after.CountRcpt(250), 1) << after.transcript;

  daemon.Kill(SIGTERM);
  EXPECT_TRUE(daemon.Wait(std::chrono::seconds(10)).Ok()) << ReadFile(start.stderr_path);
  // No token in the daemon's log.
  const std::string log = ReadFile(start.stderr_path);
  for (const char* secret : {kWhmToken, kBotToken, kSlackToken}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << secret << " in:\n" << log;
  }
  sandbox.StopDaemon();
}

}  // namespace
}  // namespace eg::e2e
