// telegram_bot_test.cpp - the Telegram admin bot (telegram_bot.h) against a fake Bot API on
// loopback answering as https://core.telegram.org/bots/api documents: getMe, getUpdates (long
// polling, offsets), sendMessage, 409 Conflict; the offset file; admins vs others.

#include "telegram_bot.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "fake_http_server.h"
#include "sidecar_test_util.h"
#include "state_store.h"

namespace eg::sidecar {
namespace {

using eg::testing::FakeHttpServer;
using eg::testing::FakeRequest;
using eg::testing::FakeResponse;
using Json = nlohmann::json;

const char* kToken = "4242:BOT-SECRET";
constexpr int64_t kAdmin = 1001;
constexpr int64_t kStranger = 5005;

template <typename Pred>
bool Eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

Json Message(int64_t update_id, int64_t from, const std::string& text, int64_t date = 0) {
  return {{"update_id", update_id},
          {"message",
           {{"message_id", update_id * 10},
            {"from", {{"id", from}, {"is_bot", false}, {"first_name", "A"}}},
            {"chat", {{"id", from}, {"type", "private"}}},
            {"date", date != 0 ? date : static_cast<int64_t>(time(nullptr))},
            {"text", text}}}};
}

// A fake Bot API: updates are kept until the test clears them; getUpdates answers those with
// update_id >= offset at once, or an empty list after a short wait (a long poll's end).
class FakeTelegram {
 public:
  FakeTelegram() {
    server_.Handle([this](const FakeRequest& r) { return Answer(r); });
  }
  std::string url() const { return server_.url(); }
  void Add(Json update) {
    std::lock_guard<std::mutex> lock(mu_);
    updates_.push_back(std::move(update));
  }
  void FailPolls(int n, int status, const std::string& body) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_polls_ = n;
    fail_status_ = status;
    fail_body_ = body;
  }
  std::vector<Json> Sent() {
    std::vector<Json> out;
    for (const FakeRequest& r : server_.requests()) {
      if (r.path == std::string("/bot") + kToken + "/sendMessage")
        out.push_back(Json::parse(r.body));
    }
    return out;
  }
  std::vector<Json> Polls() {
    std::vector<Json> out;
    for (const FakeRequest& r : server_.requests()) {
      if (r.path == std::string("/bot") + kToken + "/getUpdates")
        out.push_back(Json::parse(r.body));
    }
    return out;
  }

 private:
  FakeResponse Answer(const FakeRequest& r) {
    const std::string base = std::string("/bot") + kToken + "/";
    if (r.method != "POST" || r.path.rfind(base, 0) != 0) {
      return {404, R"({"ok":false,"error_code":404,"description":"Not Found"})"};
    }
    const std::string method = r.path.substr(base.size());
    if (method == "getMe") {
      return {200, R"({"ok":true,"result":{"id":4242,"is_bot":true,"first_name":"Guard",)"
                   R"("username":"GuardBot"}})"};
    }
    if (method == "sendMessage") {
      return {200,
              R"({"ok":true,"result":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"}}})"};
    }
    if (method != "getUpdates") return {404, R"({"ok":false,"error_code":404})"};
    const Json body = Json::parse(r.body);
    const int64_t offset = body.value("offset", int64_t{0});
    std::lock_guard<std::mutex> lock(mu_);
    if (fail_polls_ > 0) {
      --fail_polls_;
      return {fail_status_, fail_body_};
    }
    Json result = Json::array();
    for (const Json& u : updates_) {
      if (u["update_id"].get<int64_t>() >= offset) result.push_back(u);
    }
    FakeResponse resp{200, Json{{"ok", true}, {"result", result}}.dump()};
    if (result.empty()) resp.delay_ms = 50;
    return resp;
  }

  std::mutex mu_;
  std::vector<Json> updates_;
  int fail_polls_ = 0;
  int fail_status_ = 0;
  std::string fail_body_;
  FakeHttpServer server_;  // last: stopped (its handler threads joined) first
};

class TelegramBotTest : public testing::CliFixture {
 protected:
  Config Load() {
    WriteConfig({{"telegram",
                  {{"api_url", fake_.url()},
                   {"token", kToken},
                   {"admin_ids", {kAdmin}},
                   {"poll_seconds", 1}}}});
    ConfigResult r = LoadConfig(config_path_);
    EXPECT_TRUE(r.ok()) << (r.errors.empty() ? "" : r.errors[0]);
    return r.config;
  }
  TelegramBotOptions Options() {
    TelegramBotOptions o;
    o.backoff_min = std::chrono::milliseconds(10);
    o.backoff_max = std::chrono::milliseconds(40);
    o.min_poll_interval = std::chrono::milliseconds(10);
    o.log = [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.push_back(line);
    };
    return o;
  }
  std::vector<std::string> Log() {
    std::lock_guard<std::mutex> lock(log_mu_);
    return log_;
  }
  std::vector<StoredBlock> Blocks() {
    std::string error;
    auto store = StateStore::Open(dir_.File("state"), &error);
    std::vector<StoredBlock> blocks;
    EXPECT_TRUE(store && store->ActiveBlocks(&blocks, &error)) << error;
    return blocks;
  }

  FakeTelegram fake_;
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

TEST(TelegramOffset, SavedAtomicallyPrivateAndReadBack) {
  testing::TempDir dir;
  int64_t offset = -1;
  std::string error;
  ASSERT_TRUE(LoadTelegramOffset(dir.path(), &offset, &error)) << error;
  EXPECT_EQ(offset, 0);
  ASSERT_TRUE(SaveTelegramOffset(dir.path(), 123456789012, &error)) << error;
  EXPECT_EQ(testing::ReadFile(dir.File(kTelegramOffsetName)), "123456789012\n");
  struct stat st {};
  ASSERT_EQ(stat(dir.File(kTelegramOffsetName).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_TRUE(LoadTelegramOffset(dir.path(), &offset, &error));
  EXPECT_EQ(offset, 123456789012);
  testing::WriteFile(dir.File(kTelegramOffsetName), "garbage");
  EXPECT_FALSE(LoadTelegramOffset(dir.path(), &offset, &error));
  EXPECT_EQ(offset, 0);
  EXPECT_NE(error.find("not an offset"), std::string::npos);
  EXPECT_FALSE(SaveTelegramOffset(dir.File("missing/dir"), 1, &error));
}

TEST_F(TelegramBotTest, AdminsActOthersAreRefusedAndTheOffsetSurvivesARestart) {
  const Config config = Load();
  fake_.Add(Message(100, kStranger, "/suspend bad@example.com"));
  fake_.Add(Message(101, kAdmin, "/suspend@GuardBot bad@example.com"));
  fake_.Add(Message(102, kAdmin, "/status@OtherBot"));  // another bot's: no answer
  fake_.Add(Json{{"update_id", 103}, {"edited_message", {{"text", "x"}}}});  // not a message
  {
    TelegramBot bot(config_path_, config, Options());
    bot.Start();
    ASSERT_TRUE(Eventually([&] { return fake_.Sent().size() >= 2; }));
    ASSERT_TRUE(Eventually([&] { return bot.stats().updates >= 4; }));
    ASSERT_TRUE(Eventually([&] { return fake_.Polls().size() >= 2; }));  // the next long poll
    const auto begin = std::chrono::steady_clock::now();
    bot.Stop();
    EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(2));
    const TelegramBotStats s = bot.stats();
    EXPECT_EQ(s.bot_name, "GuardBot");
    EXPECT_EQ(s.commands, 2u);
    EXPECT_EQ(s.replies_failed, 0u);
  }
  const std::vector<Json> sent = fake_.Sent();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[0]["chat_id"], kStranger);
  EXPECT_EQ(sent[0]["reply_parameters"]["message_id"], 1000);
  EXPECT_EQ(sent[0]["parse_mode"], "HTML");
  EXPECT_EQ(sent[0]["text"], "only admins can suspend (telegram.admin_ids); your id is 5005");
  EXPECT_EQ(sent[1]["chat_id"], kAdmin);
  EXPECT_NE(sent[1]["text"].get<std::string>().find("blocked sender bad@example.com"),
            std::string::npos)
      << sent[1]["text"];
  std::vector<StoredBlock> blocks = Blocks();
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].by, "telegram:1001");

  // Polls asked for what the API documents, and the offset moved past every update.
  const std::vector<Json> polls = fake_.Polls();
  ASSERT_FALSE(polls.empty());
  EXPECT_EQ(polls[0]["offset"], 0);
  EXPECT_EQ(polls[0]["timeout"], 1);
  EXPECT_EQ(polls[0]["allowed_updates"], Json::array({"message"}));
  EXPECT_EQ(polls.back()["offset"], 104);
  EXPECT_EQ(testing::ReadFile(dir_.File("state/telegram.offset")), "104\n");

  // A restart goes on from the saved offset: nothing runs twice, the new command runs once.
  fake_.Add(Message(104, kAdmin, "unsuspend bad@example.com"));
  {
    TelegramBot bot(config_path_, config, Options());
    bot.Start();
    ASSERT_TRUE(Eventually([&] { return fake_.Sent().size() >= 3; }));
    ASSERT_TRUE(Eventually([&] { return bot.stats().polls >= 2; }));
    bot.Stop();
    EXPECT_EQ(bot.stats().commands, 1u);
  }
  EXPECT_EQ(fake_.Sent().size(), 3u);
  EXPECT_TRUE(Blocks().empty());
  EXPECT_EQ(testing::ReadFile(dir_.File("state/telegram.offset")), "105\n");
  for (const std::string& line : Log()) EXPECT_EQ(line.find("SECRET"), std::string::npos) << line;
}

TEST_F(TelegramBotTest, ConflictIsLoggedOnceAndPollingGoesOn) {
  const Config config = Load();
  fake_.FailPolls(5, 409,
                  R"({"ok":false,"error_code":409,"description":"Conflict: terminated by other )"
                  R"(getUpdates request; make sure that only one bot instance is running"})");
  fake_.Add(Message(7, kAdmin, "/help"));
  TelegramBot bot(config_path_, config, Options());
  bot.Start();
  ASSERT_TRUE(Eventually([&] { return fake_.Sent().size() == 1; }));
  bot.Stop();
  const TelegramBotStats s = bot.stats();
  EXPECT_EQ(s.conflicts, 5u);
  int conflict_lines = 0;
  bool again = false;
  for (const std::string& line : Log()) {
    EXPECT_EQ(line.find("SECRET"), std::string::npos) << line;
    if (line.find("409") != std::string::npos) {
      ++conflict_lines;
      EXPECT_NE(line.find("another program is polling with this bot's token"), std::string::npos)
          << line;
      EXPECT_NE(line.find("Conflict: terminated by other getUpdates request"), std::string::npos);
    }
    if (line == "telegram: polling again") again = true;
  }
  EXPECT_EQ(conflict_lines, 1);
  EXPECT_TRUE(again);
}

TEST_F(TelegramBotTest, OtherErrorsBackOffAndStopIsPrompt) {
  Config config = Load();
  fake_.FailPolls(1000, 502, "<html>Bad Gateway</html>");
  TelegramBotOptions o = Options();
  o.backoff_min = std::chrono::milliseconds(20);
  o.backoff_max = std::chrono::seconds(60);
  TelegramBot bot(config_path_, config, o);
  bot.Start();
  ASSERT_TRUE(Eventually([&] { return bot.stats().errors >= 3; }));
  const uint64_t polls_before = fake_.Polls().size();
  const auto begin = std::chrono::steady_clock::now();
  bot.Stop();  // in a backoff wait: returns at once
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::milliseconds(1500));
  EXPECT_LE(fake_.Polls().size(), polls_before + 1);
  // Exponential: 20, 40, 80, ... ms, so a handful of polls, not hundreds.
  EXPECT_LT(fake_.Polls().size(), 12u);
  int failed_lines = 0;
  for (const std::string& line : Log()) {
    if (line.find("getUpdates failed: HTTP 502") != std::string::npos) ++failed_lines;
  }
  EXPECT_EQ(failed_lines, 1);

  // Nobody at the URL at all: getMe fails, Stop still returns at once.
  config.telegram.api_url = "http://127.0.0.1:1";
  TelegramBot down(config_path_, config, o);
  down.Start();
  ASSERT_TRUE(Eventually([&] { return down.stats().errors >= 1; }));
  const auto begin2 = std::chrono::steady_clock::now();
  down.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - begin2, std::chrono::milliseconds(1500));
}

TEST_F(TelegramBotTest, OldMessagesAreNotRunAndReadingIsForTheAdminsChat) {
  Config config = Load();
  fake_.Add(Message(1, kAdmin, "/suspend late@example.com", time(nullptr) - 3600));
  fake_.Add(Message(2, kStranger, "/status"));  // a stranger in a private chat
  Json group = Message(3, kStranger, "/list");  // a stranger in the admins' group
  group["message"]["chat"] = {{"id", -100777}, {"type", "supergroup"}};
  fake_.Add(group);
  config.telegram.notify_chat_id = "-100777";
  TelegramBot bot(config_path_, config, Options());
  bot.Start();
  ASSERT_TRUE(Eventually([&] { return fake_.Sent().size() >= 3; }));
  bot.Stop();
  const std::vector<Json> sent = fake_.Sent();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_NE(sent[0]["text"].get<std::string>().find("not run: this message was sent 60 minutes"),
            std::string::npos)
      << sent[0]["text"];
  EXPECT_TRUE(Blocks().empty());
  EXPECT_NE(sent[1]["text"].get<std::string>().find("only admins can use this bot"),
            std::string::npos)
      << sent[1]["text"];
  EXPECT_EQ(sent[2]["chat_id"], -100777);
  EXPECT_EQ(sent[2]["text"], "<pre>nothing is blocked</pre>");
}

}  // namespace
}  // namespace eg::sidecar
