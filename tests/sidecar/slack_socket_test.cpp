// slack_socket_test.cpp - the Slack Socket Mode bot (sidecar/slack_socket.h) against the fake
// Slack (tests/fakes/fake_slack.h): commands in, acks, replies out, duplicates, reconnects,
// refused tokens and certificates. Backoffs are milliseconds so every test takes well under a
// second or two.

#include "slack_socket.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fake_slack.h"

namespace eg::sidecar {
namespace {

using eg::testing::FakeSlack;
using eg::testing::FakeSlackOptions;
using namespace std::chrono_literals;

bool WaitUntil(const std::function<bool()>& done, std::chrono::milliseconds limit = 5000ms) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

// Records the commands the bot delivers and the lines it logs.
struct Recorder {
  std::mutex mu;
  std::vector<SlackCommand> commands;
  std::vector<std::string> log;

  SlackCommandHandler Handler(std::string reply = "ok") {
    return [this, reply](const SlackCommand& c) {
      std::lock_guard lock(mu);
      commands.push_back(c);
      return reply + ": " + c.text;
    };
  }
  std::function<void(const std::string&)> Log() {
    return [this](const std::string& line) {
      std::lock_guard lock(mu);
      log.push_back(line);
    };
  }
  size_t count() {
    std::lock_guard lock(mu);
    return commands.size();
  }
  SlackCommand at(size_t i) {
    std::lock_guard lock(mu);
    return commands.at(i);
  }
  std::vector<std::string> lines() {
    std::lock_guard lock(mu);
    return log;
  }
};

SlackSettings SettingsFor(const FakeSlack& slack) {
  SlackSettings s;
  s.api_url = slack.api_url();
  s.app_token = slack.app_token();
  s.bot_token = slack.bot_token();
  s.ca_file = slack.ca_file();
  s.admin_ids = {"UADMIN", "UOTHERADMIN"};
  return s;
}

SlackBotOptions FastOptions(Recorder* rec) {
  SlackBotOptions o;
  o.min_backoff = 10ms;
  o.max_backoff = 50ms;
  o.connect_timeout = 3000ms;
  o.http_timeout_ms = 3000;
  o.log = rec->Log();
  return o;
}

// A bot connected to `slack` (hello received).
void StartAndWait(SlackBot& bot, FakeSlack& slack, int sockets = 1) {
  bot.Start();
  ASSERT_TRUE(WaitUntil([&] { return bot.stats().connections >= uint64_t(sockets); }))
      << "last error: " << bot.stats().last_error;
  ASSERT_EQ(slack.sockets_open(), 1);
}

// ---------------------------------------------------------------------------------------------
// Text and message parsing.

TEST(SlackText, CommandTextStripsMentionAndMarkup) {
  EXPECT_EQ(SlackCommandText("  <@UBOT> status ", true), "status");
  EXPECT_EQ(SlackCommandText("<@UBOT|eximguard>   why x@y", true), "why x@y");
  EXPECT_EQ(SlackCommandText("<@UBOT> why <mailto:bob@example.com|bob@example.com>", true),
            "why bob@example.com");
  EXPECT_EQ(SlackCommandText("whitelist <http://example.com|example.com>", false),
            "whitelist example.com");
  EXPECT_EQ(SlackCommandText("why <mailto:a@b.c>", false), "why a@b.c");
  EXPECT_EQ(SlackCommandText("top &lt;10&gt; &amp;&amp; more", false), "top <10> && more");
  // Only a leading mention goes, and only when asked.
  EXPECT_EQ(SlackCommandText("<@UBOT> block <@U2>", true), "block <@U2>");
  EXPECT_EQ(SlackCommandText("<@UBOT> status", false), "<@UBOT> status");
  EXPECT_EQ(SlackCommandText("", true), "");
  EXPECT_EQ(SlackCommandText("<@UBOT>", true), "");
  EXPECT_EQ(SlackCommandText("a < b", false), "a < b");
}

TEST(SlackText, ParseSocketMessages) {
  using Kind = SlackSocketMessage::Kind;
  EXPECT_EQ(ParseSlackSocketMessage("not json").kind, Kind::kInvalid);
  EXPECT_EQ(ParseSlackSocketMessage("[1]").kind, Kind::kInvalid);
  EXPECT_EQ(ParseSlackSocketMessage(R"({"type":"hello","num_connections":1})").kind, Kind::kHello);
  SlackSocketMessage d = ParseSlackSocketMessage(R"({"type":"disconnect","reason":"warning"})");
  EXPECT_EQ(d.kind, Kind::kDisconnect);
  EXPECT_EQ(d.reason, "warning");

  SlackSocketMessage s = ParseSlackSocketMessage(FakeSlack::SlashCommand("E1", "U1", "C1", "top"));
  EXPECT_EQ(s.kind, Kind::kCommand);
  EXPECT_EQ(s.envelope_id, "E1");
  EXPECT_EQ(s.command.user_id, "U1");
  EXPECT_EQ(s.command.channel_id, "C1");
  EXPECT_EQ(s.command.text, "top");
  EXPECT_EQ(s.command.command, "/eximguard");

  SlackSocketMessage m =
      ParseSlackSocketMessage(FakeSlack::AppMention("E2", "U2", "C2", "<@UBOT> why a@b", "Ev9"));
  EXPECT_EQ(m.kind, Kind::kCommand);
  EXPECT_EQ(m.event_id, "Ev9");
  EXPECT_EQ(m.command.text, "why a@b");
  EXPECT_EQ(m.command.command, "");

  // Other envelopes are still envelopes (acknowledged), but not commands.
  SlackSocketMessage other = ParseSlackSocketMessage(
      R"({"envelope_id":"E3","type":"events_api","payload":{"event":{"type":"message","text":"hi","user":"U","channel":"C"}}})");
  EXPECT_EQ(other.kind, Kind::kOther);
  EXPECT_EQ(other.envelope_id, "E3");
  SlackSocketMessage bot = ParseSlackSocketMessage(
      R"({"envelope_id":"E4","type":"events_api","payload":{"event":{"type":"app_mention","bot_id":"B1","text":"<@UBOT> x","user":"U","channel":"C"}}})");
  EXPECT_EQ(bot.kind, Kind::kOther);
  SlackSocketMessage interactive =
      ParseSlackSocketMessage(R"({"envelope_id":"E5","type":"interactive","payload":{}})");
  EXPECT_EQ(interactive.kind, Kind::kOther);
  EXPECT_EQ(interactive.envelope_id, "E5");
}

// ---------------------------------------------------------------------------------------------
// Against the fake Slack.

TEST(SlackBot, SlashCommandRunsHandlerAcksAndReplies) {
  FakeSlack slack;
  Recorder rec;
  SlackBot bot(SettingsFor(slack), rec.Handler("done"), FastOptions(&rec));
  StartAndWait(bot, slack);

  ASSERT_TRUE(slack.Send(FakeSlack::SlashCommand("E100", "UADMIN", "C1", "  status  ")));
  ASSERT_TRUE(WaitUntil([&] { return slack.posts().size() == 1; })) << bot.stats().last_error;
  ASSERT_TRUE(WaitUntil([&] { return bot.stats().replies == 1; }));  // counted after the answer
  ASSERT_EQ(rec.count(), 1u);
  SlackCommand c = rec.at(0);
  EXPECT_EQ(c.user_id, "UADMIN");
  EXPECT_EQ(c.channel_id, "C1");
  EXPECT_EQ(c.text, "status");
  EXPECT_EQ(c.command, "/eximguard");
  EXPECT_TRUE(c.is_admin);
  EXPECT_TRUE(WaitUntil([&] { return slack.acks() == std::vector<std::string>{"E100"}; }));
  EXPECT_EQ(slack.received().at(0), R"({"envelope_id":"E100"})");
  EXPECT_EQ(slack.posts()[0].channel, "C1");
  EXPECT_EQ(slack.posts()[0].text, "done: status");

  SlackBotStats st = bot.stats();
  EXPECT_TRUE(st.connected);
  EXPECT_EQ(st.open_calls, 1u);
  EXPECT_EQ(st.connections, 1u);
  EXPECT_EQ(st.envelopes, 1u);
  EXPECT_EQ(st.commands, 1u);
  EXPECT_EQ(st.replies, 1u);
  EXPECT_EQ(st.errors, 0u) << st.last_error;
  // Each token went only where it belongs.
  std::vector<std::string> auth = slack.authorizations();
  ASSERT_EQ(auth.size(), 2u);
  EXPECT_EQ(auth[0], "Bearer " + slack.app_token());
  EXPECT_EQ(auth[1], "Bearer " + slack.bot_token());
}

TEST(SlackBot, AppMentionStripsMentionAndNonAdminIsFlagged) {
  FakeSlack slack;
  Recorder rec;
  SlackBot bot(SettingsFor(slack), rec.Handler(), FastOptions(&rec));
  StartAndWait(bot, slack);

  ASSERT_TRUE(slack.Send(FakeSlack::AppMention("E200", "UNOBODY", "C9",
                                               "<@UBOT> why <mailto:x@y.com|x@y.com>", "Ev200")));
  ASSERT_TRUE(WaitUntil([&] { return slack.posts().size() == 1; }));
  ASSERT_EQ(rec.count(), 1u);
  EXPECT_EQ(rec.at(0).text, "why x@y.com");
  EXPECT_EQ(rec.at(0).user_id, "UNOBODY");
  EXPECT_EQ(rec.at(0).channel_id, "C9");
  EXPECT_EQ(rec.at(0).command, "");
  EXPECT_FALSE(rec.at(0).is_admin);
  EXPECT_TRUE(WaitUntil([&] { return slack.acks() == std::vector<std::string>{"E200"}; }));
  EXPECT_EQ(slack.posts()[0].channel, "C9");
}

TEST(SlackBot, ReplyIsSentAsIsAndEmptyReplyPostsNothing) {
  FakeSlack slack;
  Recorder rec;
  SlackBot bot(
      SettingsFor(slack),
      [](const SlackCommand& c) {
        return c.text == "quiet" ? std::string() : "&lt;b&gt; &amp; *x* <@U1>";
      },
      FastOptions(&rec));
  StartAndWait(bot, slack);
  ASSERT_TRUE(slack.Send(FakeSlack::SlashCommand("E1", "UADMIN", "C1", "quiet")));
  ASSERT_TRUE(slack.Send(FakeSlack::SlashCommand("E2", "UADMIN", "C1", "loud")));
  ASSERT_TRUE(WaitUntil([&] { return slack.posts().size() == 1; }));
  EXPECT_EQ(slack.posts()[0].text, "&lt;b&gt; &amp; *x* <@U1>");  // the handler's mrkdwn
  ASSERT_TRUE(WaitUntil([&] { return bot.stats().commands == 2; }));
  EXPECT_TRUE(WaitUntil([&] { return slack.acks() == (std::vector<std::string>{"E1", "E2"}); }));
}

TEST(SlackBot, DuplicateEnvelopeHandledOnce) {
  FakeSlack slack;
  Recorder rec;
  SlackBot bot(SettingsFor(slack), rec.Handler(), FastOptions(&rec));
  StartAndWait(bot, slack);

  std::string envelope = FakeSlack::SlashCommand("E300", "UADMIN", "C1", "status");
  ASSERT_TRUE(slack.Send(envelope));
  ASSERT_TRUE(slack.Send(envelope));
  // A retried event comes in a new envelope with the same event id.
  ASSERT_TRUE(slack.Send(FakeSlack::AppMention("E301", "UADMIN", "C1", "<@UBOT> top", "Ev301")));
  ASSERT_TRUE(slack.Send(FakeSlack::AppMention("E302", "UADMIN", "C1", "<@UBOT> top", "Ev301")));
  ASSERT_TRUE(slack.Send(FakeSlack::SlashCommand("E303", "UADMIN", "C1", "last")));
  ASSERT_TRUE(WaitUntil([&] { return slack.acks().size() == 5; }));
  ASSERT_TRUE(WaitUntil([&] { return bot.stats().replies == 3; }));
  EXPECT_TRUE(WaitUntil([&] {
    return slack.acks() == (std::vector<std::string>{"E300", "E300", "E301", "E302", "E303"});
  }));
  ASSERT_EQ(rec.count(), 3u);
  EXPECT_EQ(rec.at(0).text, "status");
  EXPECT_EQ(rec.at(1).text, "top");
  EXPECT_EQ(rec.at(2).text, "last");
  SlackBotStats st = bot.stats();
  EXPECT_EQ(st.envelopes, 5u);
  EXPECT_EQ(st.duplicates, 2u);
  EXPECT_EQ(st.commands, 3u);
}

TEST(SlackBot, DisconnectReconnectsAndKeepsWorking) {
  FakeSlack slack;
  Recorder rec;
  SlackBot bot(SettingsFor(slack), rec.Handler(), FastOptions(&rec));
  StartAndWait(bot, slack);

  ASSERT_TRUE(slack.SendDisconnect("refresh_requested"));
  ASSERT_TRUE(WaitUntil([&] { return bot.stats().connections == 2; })) << bot.stats().last_error;
  EXPECT_EQ(slack.open_calls(), 2);
  EXPECT_EQ(slack.sockets_accepted(), 2);
  ASSERT_TRUE(WaitUntil([&] { return slack.sockets_open() == 1; }));
  EXPECT_EQ(bot.stats().disconnects, 1u);
  EXPECT_EQ(bot.stats().errors, 0u) << bot.stats().last_error;

  ASSERT_TRUE(slack.Send(FakeSlack::SlashCommand("E400", "UADMIN", "C1", "status")));
  ASSERT_TRUE(WaitUntil([&] { return slack.posts().size() == 1; }));
  EXPECT_TRUE(WaitUntil([&] { return slack.acks() == std::vector<std::string>{"E400"}; }));
}

TEST(SlackBot, DroppedConnectionReconnects) {
  FakeSlack slack;
  Recorder rec;
  SlackBot bot(SettingsFor(slack), rec.Handler(), FastOptions(&rec));
  StartAndWait(bot, slack);

  ASSERT_TRUE(slack.DropConnection());
  ASSERT_TRUE(WaitUntil([&] { return bot.stats().connections == 2; })) << bot.stats().last_error;
  EXPECT_EQ(slack.open_calls(), 2);
  EXPECT_GE(bot.stats().errors, 1u);
  EXPECT_NE(bot.stats().last_error.find("connection lost"), std::string::npos)
      << bot.stats().last_error;
  ASSERT_TRUE(WaitUntil([&] { return slack.sockets_open() == 1; }));
  ASSERT_TRUE(slack.Send(FakeSlack::SlashCommand("E500", "UADMIN", "C1", "status")));
  ASSERT_TRUE(WaitUntil([&] { return slack.posts().size() == 1; }));
}

TEST(SlackBot, InvalidAppTokenIsReportedAndRetriedWithoutTheToken) {
  FakeSlack slack;
  Recorder rec;
  SlackSettings settings = SettingsFor(slack);
  settings.app_token = "xapp-1-WRONG-very-secret-token";
  SlackBot bot(settings, rec.Handler(), FastOptions(&rec));
  bot.Start();
  ASSERT_TRUE(WaitUntil([&] { return slack.open_refused() >= 3; }));
  bot.Stop();
  SlackBotStats st = bot.stats();
  EXPECT_FALSE(st.connected);
  EXPECT_EQ(st.connections, 0u);
  EXPECT_GE(st.errors, 3u);
  EXPECT_EQ(st.last_error, "apps.connections.open: invalid_auth (HTTP 200)");
  EXPECT_EQ(slack.sockets_accepted(), 0);
  std::vector<std::string> lines = rec.lines();
  ASSERT_GE(lines.size(), 3u);
  for (const std::string& line : lines) {
    EXPECT_EQ(line.find("secret"), std::string::npos) << line;
    EXPECT_EQ(line.find("xapp"), std::string::npos) << line;
    EXPECT_EQ(line.find("xoxb"), std::string::npos) << line;
  }
}

TEST(SlackBot, WrongBotTokenReplyRefusedAndCounted) {
  FakeSlack slack;
  Recorder rec;
  SlackSettings settings = SettingsFor(slack);
  settings.bot_token = "xoxb-WRONG-secret";
  SlackBot bot(settings, rec.Handler(), FastOptions(&rec));
  StartAndWait(bot, slack);
  ASSERT_TRUE(slack.Send(FakeSlack::SlashCommand("E1", "UADMIN", "C1", "status")));
  ASSERT_TRUE(WaitUntil([&] { return bot.stats().errors == 1; }));
  EXPECT_NE(bot.stats().last_error.find("chat.postMessage"), std::string::npos);
  EXPECT_NE(bot.stats().last_error.find("invalid_auth"), std::string::npos);
  EXPECT_EQ(bot.stats().last_error.find("secret"), std::string::npos);
  EXPECT_EQ(bot.stats().replies, 0u);
  EXPECT_TRUE(slack.posts().empty());
  EXPECT_TRUE(bot.stats().connected);  // the socket is not affected
}

TEST(SlackBot, HandlerExceptionAnsweredAndCounted) {
  FakeSlack slack;
  Recorder rec;
  SlackBot bot(
      SettingsFor(slack),
      [](const SlackCommand&) -> std::string { throw std::runtime_error("boom"); },
      FastOptions(&rec));
  StartAndWait(bot, slack);
  ASSERT_TRUE(slack.Send(FakeSlack::SlashCommand("E1", "UADMIN", "C1", "status")));
  ASSERT_TRUE(WaitUntil([&] { return slack.posts().size() == 1; }));
  EXPECT_EQ(slack.posts()[0].text, "internal error");
  EXPECT_EQ(bot.stats().errors, 1u);
  EXPECT_EQ(bot.stats().last_error, "command handler failed: boom");
}

TEST(SlackBot, UntrustedSocketCertificateRefused) {
  FakeSlack slack({.https_api = false});  // only the socket is TLS: its certificate is tested
  Recorder rec;
  SlackSettings settings = SettingsFor(slack);
  settings.ca_file = slack.untrusted_ca_file();
  SlackBot bot(settings, rec.Handler(), FastOptions(&rec));
  bot.Start();
  ASSERT_TRUE(WaitUntil([&] { return slack.open_calls() >= 2; }));
  ASSERT_TRUE(WaitUntil([&] { return bot.stats().errors >= 2; }));
  bot.Stop();
  SlackBotStats st = bot.stats();
  EXPECT_EQ(st.connections, 0u);
  EXPECT_EQ(slack.sockets_accepted(), 0);
  EXPECT_NE(st.last_error.find("TLS handshake"), std::string::npos) << st.last_error;
  EXPECT_NE(st.last_error.find("certificate"), std::string::npos) << st.last_error;
  EXPECT_EQ(st.last_error.find("ticket"), std::string::npos) << st.last_error;
}

TEST(SlackBot, UntrustedApiCertificateRefused) {
  FakeSlack slack;
  Recorder rec;
  SlackSettings settings = SettingsFor(slack);
  settings.ca_file = slack.untrusted_ca_file();
  SlackBot bot(settings, rec.Handler(), FastOptions(&rec));
  bot.Start();
  ASSERT_TRUE(WaitUntil([&] { return bot.stats().errors >= 2; }));
  bot.Stop();
  EXPECT_EQ(slack.open_calls(), 0);
  EXPECT_EQ(bot.stats().connections, 0u);
  EXPECT_NE(bot.stats().last_error.find("apps.connections.open"), std::string::npos);
}

TEST(SlackBot, PlainWebSocketWhenTheUrlSaysSo) {
  FakeSlack slack({.https_api = false, .tls_socket = false});
  Recorder rec;
  SlackBot bot(SettingsFor(slack), rec.Handler(), FastOptions(&rec));
  StartAndWait(bot, slack);
  ASSERT_TRUE(slack.Send(FakeSlack::SlashCommand("E1", "UADMIN", "C1", "status")));
  ASSERT_TRUE(WaitUntil([&] { return slack.posts().size() == 1; }));
}

TEST(SlackBot, StopIsQuickWhileConnectedAndWhileWaiting) {
  {
    FakeSlack slack;
    Recorder rec;
    SlackBot bot(SettingsFor(slack), rec.Handler(), FastOptions(&rec));
    StartAndWait(bot, slack);
    auto t0 = std::chrono::steady_clock::now();
    bot.Stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms);
    bot.Stop();  // idempotent
  }
  {
    FakeSlack slack;
    Recorder rec;
    SlackSettings settings = SettingsFor(slack);
    settings.app_token = "xapp-wrong";
    SlackBotOptions options = FastOptions(&rec);
    options.min_backoff = 60s;
    options.max_backoff = 60s;
    SlackBot bot(settings, rec.Handler(), options);
    bot.Start();
    ASSERT_TRUE(WaitUntil([&] { return slack.open_refused() == 1; }));
    auto t0 = std::chrono::steady_clock::now();
    bot.Stop();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 1000ms);
  }
  {
    // Never started: Stop and destruction are fine.
    SlackBot bot(SlackSettings{}, nullptr);
    bot.Stop();
  }
}

TEST(SlackBot, AnsweredPingsKeepTheLinkUp) {
  FakeSlack slack;
  Recorder rec;
  SlackBotOptions options = FastOptions(&rec);
  options.idle_timeout = 400ms;
  SlackBot bot(SettingsFor(slack), rec.Handler(), options);
  StartAndWait(bot, slack);
  // The fake answers pings, so the link stays up past several idle timeouts.
  std::this_thread::sleep_for(1200ms);
  EXPECT_EQ(bot.stats().connections, 1u) << bot.stats().last_error;
  EXPECT_EQ(bot.stats().errors, 0u) << bot.stats().last_error;
}

TEST(SlackBot, UnansweredPingsDropTheLinkAndReconnect) {
  FakeSlack slack({.read_frames = false});
  Recorder rec;
  SlackBotOptions options = FastOptions(&rec);
  options.idle_timeout = 300ms;
  SlackBot bot(SettingsFor(slack), rec.Handler(), options);
  bot.Start();
  ASSERT_TRUE(WaitUntil([&] { return bot.stats().connections >= 2; })) << bot.stats().last_error;
  EXPECT_GE(slack.open_calls(), 2);
  EXPECT_NE(bot.stats().last_error.find("no answer to pings"), std::string::npos)
      << bot.stats().last_error;
}

}  // namespace
}  // namespace eg::sidecar
