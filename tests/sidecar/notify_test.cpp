// notify_test.cpp - notices (notify.h): made from incidents, rendered with each channel's
// escaping, sent to a fake Telegram / Slack / webhook on loopback and to a fake sendmail; the
// digest under a flood; `test-notify`.

#include "notify.h"

#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fake_http_server.h"
#include "notify_verbs.h"
#include "sidecar_test_util.h"
#include "users.h"

namespace eg::sidecar {
namespace {

using eg::testing::FakeHttpServer;
using eg::testing::FakeRequest;
using eg::testing::FakeResponse;
using Json = nlohmann::ordered_json;
using testing::TempDir;
using testing::WriteFile;

const char* kHostile = "<b>x</b>&@example.com";
const char* kToken = "123456:SECRET-token_value";

Json IncidentJson(const std::string& key = "shop@example.com") {
  return Json{{"key", key},
              {"class", "sender"},
              {"rule", "rate_per_minute"},
              {"time", 1767322800},
              {"time_text", "2026-01-02T03:00:00Z"},
              {"count", 120},
              {"threshold", 8},
              {"window_start", 1767322740},
              {"window_end", 1767322800},
              {"ips", {"203.0.113.5", "198.51.100.7"}},
              {"scripts", Json::array()},
              {"subjects", {"Win <big> & \"free\""}},
              {"lines", {"2026-01-02 03:00:00 1xV13h-00017e-07 <= " + key + " ..."}},
              {"id", 42},
              {"action", "block"}};
}

// The visible text of Telegram HTML: tags removed, entities decoded.
std::string VisibleHtml(const std::string& html) {
  std::string out;
  for (size_t i = 0; i < html.size(); ++i) {
    if (html[i] == '<') {
      i = html.find('>', i);
      if (i == std::string::npos) break;
    } else if (html[i] == '&') {
      const size_t semi = html.find(';', i);
      const std::string entity = html.substr(i, semi - i + 1);
      out += entity == "&lt;" ? "<" : entity == "&gt;" ? ">" : entity == "&amp;" ? "&" : "\"";
      i = semi;
    } else {
      out += html[i];
    }
  }
  return out;
}

SendOptions Fast() {
  SendOptions o;
  o.timeout_ms = 3000;
  o.attempts = 3;
  o.retry_delay = std::chrono::milliseconds(10);
  return o;
}

// Waits (up to 5 s) for `pred`.
template <typename Pred>
bool Eventually(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

// ---- notices and rendering -------------------------------------------------------------------

TEST(Notice, FromIncidentJson) {
  const Notice n = NoticeFromIncident(IncidentJson(), "mx1.example.net");
  EXPECT_EQ(n.kind, NoticeKind::kIncident);
  EXPECT_EQ(n.host, "mx1.example.net");
  EXPECT_EQ(n.key, "shop@example.com");
  EXPECT_EQ(n.key_class, "sender");
  EXPECT_EQ(n.rule, "rate_per_minute");
  EXPECT_EQ(n.id, 42);
  EXPECT_EQ(n.count, 120u);
  EXPECT_EQ(n.threshold, 8u);
  EXPECT_EQ(n.ips.size(), 2u);
  EXPECT_EQ(n.title, "rate_per_minute: shop@example.com");
  EXPECT_EQ(n.undo, "eximguard unsuspend shop@example.com");

  Json j = IncidentJson("/home/a b/public_html");
  j["class"] = "cwd";
  EXPECT_EQ(NoticeFromIncident(j, "h").undo, "eximguard unsuspend '/home/a b/public_html'");
  j["action"] = "notify_only";
  EXPECT_EQ(NoticeFromIncident(j, "h").undo, "");

  // uid incidents name the user; the block (and so the undo) is on uid:N.
  const struct passwd* pw = getpwuid(getuid());
  ASSERT_NE(pw, nullptr);
  j = IncidentJson(pw->pw_name);
  j["class"] = "uid";
  EXPECT_EQ(NoticeFromIncident(j, "h").undo, "eximguard unsuspend uid:" + std::to_string(getuid()));

  // Garbage fields are left empty, never thrown on.
  const Notice g = NoticeFromIncident(Json{{"key", 5}, {"ips", "x"}, {"count", "many"}}, "h");
  EXPECT_EQ(g.key, "");
  EXPECT_TRUE(g.ips.empty());
  EXPECT_EQ(g.count, 0u);
}

TEST(Notice, TelegramHtmlEscapesEveryPieceOfUserText) {
  Json j = IncidentJson(kHostile);
  j["scripts"] = {"/home/u/<script>"};
  const std::string html = RenderTelegram(NoticeFromIncident(j, "h<1>"));
  EXPECT_EQ(html.find("<b>x</b>"), std::string::npos) << html;
  EXPECT_EQ(html.find("<script>"), std::string::npos) << html;
  EXPECT_EQ(html.find("<big>"), std::string::npos) << html;
  EXPECT_EQ(html.find("h<1>"), std::string::npos) << html;
  EXPECT_NE(html.find("<code>&lt;b&gt;x&lt;/b&gt;&amp;@example.com</code>"), std::string::npos)
      << html;
  EXPECT_NE(html.find("Win &lt;big&gt; &amp; \"free\""), std::string::npos) << html;
  EXPECT_NE(html.find("<pre>"), std::string::npos);
  // Every '<' left is one of our tags.
  for (size_t p = html.find('<'); p != std::string::npos; p = html.find('<', p + 1)) {
    const std::string tag = html.substr(p, html.find('>', p) - p + 1);
    EXPECT_TRUE(tag == "<b>" || tag == "</b>" || tag == "<code>" || tag == "</code>" ||
                tag == "<pre>" || tag == "</pre>")
        << tag;
  }
}

TEST(Notice, SlackMrkdwnEscapesAngleBracketsAndAmpersands) {
  Json j = IncidentJson(kHostile);
  j["subjects"] = {"<!channel> hi <https://evil.example|click>"};
  const std::string text = RenderSlack(NoticeFromIncident(j, "h"));
  EXPECT_EQ(text.find('<'), std::string::npos) << text;
  EXPECT_EQ(text.find('>'), std::string::npos) << text;
  EXPECT_NE(text.find("&lt;!channel&gt;"), std::string::npos) << text;
  EXPECT_NE(text.find("`&lt;b&gt;x&lt;/b&gt;&amp;@example.com`"), std::string::npos) << text;
}

// A folded Subject (or one with \n in the log's T="...") stays on its line: no second "Undo:".
TEST(Notice, OutsideStringsCannotAddALine) {
  Json j = IncidentJson("a@b.example\nUndo: eximguard whitelist add evil");
  j["subjects"] = {"Invoice\r\nUndo: eximguard whitelist add evil@x.example", "ok\n Undo: x"};
  j["scripts"] = {"/home/u/x\nUndo: y"};
  j["ips"] = {"1.2.3.4\nUndo: z"};
  j["lines"] = {"line one\nUndo: w"};
  const Notice n = NoticeFromIncident(j, "h\nUndo: v");
  for (const std::string& text :
       {RenderTelegram(n), RenderSlack(n), RenderText(n), RenderEmail(n, NotifySettings{}, 0)}) {
    size_t undo_lines = 0;
    size_t start = 0;
    while (start < text.size()) {
      const size_t end = std::min(text.find('\n', start), text.size());
      const std::string line = text.substr(start, end - start);
      const size_t first = line.find_first_not_of(" *<b>");
      if (first != std::string::npos && line.compare(first, 4, "Undo") == 0) ++undo_lines;
      EXPECT_EQ(line.find('\r'), std::string::npos);
      start = end + 1;
    }
    EXPECT_EQ(undo_lines, 1u) << text;
  }
}

TEST(Notice, EmailHeadersCannotBeInjected) {
  Notice n = NoticeFromIncident(IncidentJson(), "h");
  n.title = "evil\r\nBcc: victim@example.org\nX-Injected: 1";
  NotifySettings s;
  s.email = {"admin@example.com", "ops@example.com"};
  s.from = "guard@example.com";
  const std::string m = RenderEmail(n, s, 1767322800);
  const std::string headers = m.substr(0, m.find("\n\n") + 1);
  EXPECT_EQ(headers.find("\nBcc:"), std::string::npos) << headers;
  EXPECT_EQ(headers.find("\nX-Injected:"), std::string::npos) << headers;
  EXPECT_EQ(headers.find('\r'), std::string::npos);
  EXPECT_NE(headers.find("Subject: [eximguard h] evil  Bcc: victim@example.org X-Injected: 1\n"),
            std::string::npos)
      << headers;
  EXPECT_NE(headers.find("To: admin@example.com, ops@example.com\n"), std::string::npos);
  EXPECT_NE(headers.find("From: eximguard <guard@example.com>\n"), std::string::npos);
  EXPECT_NE(headers.find("Date: Fri, 02 Jan 2026 03:00:00 +0000\n"), std::string::npos) << headers;
  EXPECT_NE(m.find("Undo: eximguard unsuspend shop@example.com"), std::string::npos) << m;

  // A non-ASCII subject is RFC 2047 encoded (only ASCII in headers).
  n.title = "Überweisung für müller@example.de";
  const std::string m2 = RenderEmail(n, s, 0);
  const std::string h2 = m2.substr(0, m2.find("\n\n"));
  EXPECT_NE(h2.find("Subject: =?UTF-8?B?"), std::string::npos) << h2;
  for (char c : h2) EXPECT_LT(static_cast<unsigned char>(c), 0x80u);
}

TEST(Notice, MessagesStayWithinTelegramsLimit) {
  Json j = IncidentJson(std::string(5000, 'k') + "@example.com");
  Json ips = Json::array();
  for (int i = 0; i < 1000; ++i)
    ips.push_back("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256));
  j["ips"] = ips;
  j["lines"] = {std::string(20000, 'l'), std::string(20000, 'm')};
  j["subjects"] = {std::string(3000, '<')};
  const Notice n = NoticeFromIncident(j, "h");
  const std::string html = RenderTelegram(n);
  EXPECT_LE(VisibleHtml(html).size(), 4096u);
  EXPECT_LE(RenderSlack(n).size(), 4096u * 5);
  EXPECT_NE(html.find("(+980 more)"), std::string::npos);

  // A cut never splits a UTF-8 character.
  EXPECT_EQ(CutUtf8("aé", 2), "a");
  EXPECT_EQ(CutUtf8("aé", 3), "aé");
  const std::string pre = PreBlock(Markup::kHtml, std::string(10000, 'x') + "\n", 4096);
  EXPECT_LE(VisibleHtml(pre).size(), 4096u);
  EXPECT_NE(pre.find("(cut: "), std::string::npos);
  EXPECT_EQ(PreBlock(Markup::kMrkdwn, "a<b>\n"), "```\na&lt;b&gt;\n```");
  EXPECT_EQ(PreBlock(Markup::kHtml, ""), "<pre>(no output)</pre>");
}

TEST(Notice, WebhookJsonIsTheStructuredNotice) {
  const Json j = NoticeToJson(NoticeFromIncident(IncidentJson(kHostile), "h"));
  EXPECT_EQ(j["kind"], "incident");
  EXPECT_EQ(j["key"], kHostile);  // JSON needs no markup escaping
  EXPECT_EQ(j["rule"], "rate_per_minute");
  EXPECT_EQ(j["id"], 42);
  EXPECT_EQ(j["ips"].size(), 2u);
  EXPECT_EQ(j["undo"], std::string("eximguard unsuspend '") + kHostile + "'");
}

// ---- senders against the fake server ----------------------------------------------------------

TEST(Send, TelegramSendMessageBodyAndEscaping) {
  FakeHttpServer server({.tls = true});
  server.Handle([](const FakeRequest&) {
    return FakeResponse{200,
                        R"({"ok":true,"result":{"message_id":7,"date":1,"chat":{"id":-100}}})"};
  });
  Config c;
  c.telegram.api_url = server.url();
  c.telegram.ca_file = server.ca_file();
  c.telegram.token = kToken;
  c.telegram.notify_chat_id = "-1001234567890";
  const SendResult r =
      SendNotice(Channel::kTelegram, c, NoticeFromIncident(IncidentJson(kHostile), "h"), Fast());
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.attempts, 1);
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_EQ(reqs[0].path, std::string("/bot") + kToken + "/sendMessage");
  EXPECT_NE(reqs[0].headers.at("content-type").find("application/json"), std::string::npos);
  const Json body = Json::parse(reqs[0].body);
  EXPECT_EQ(body["chat_id"], -1001234567890);
  EXPECT_EQ(body["parse_mode"], "HTML");
  EXPECT_EQ(body["link_preview_options"]["is_disabled"], true);
  EXPECT_FALSE(body.contains("reply_parameters"));
  const std::string text = body["text"];
  EXPECT_NE(text.find("&lt;b&gt;x&lt;/b&gt;&amp;@example.com"), std::string::npos) << text;
  EXPECT_EQ(text.find("<b>x</b>"), std::string::npos);

  // A reply names the message it answers.
  ASSERT_TRUE(TelegramSendMessage(c.telegram, "@admins", "hi", 99, Fast()).ok);
  const Json reply = Json::parse(server.requests().back().body);
  EXPECT_EQ(reply["chat_id"], "@admins");
  EXPECT_EQ(reply["reply_parameters"]["message_id"], 99);
}

TEST(Send, TelegramRefusalIsReportedWithoutTheToken) {
  FakeHttpServer server;
  std::atomic<int> calls{0};
  server.Handle([&](const FakeRequest&) {
    ++calls;
    return FakeResponse{400, std::string("{\"ok\":false,\"error_code\":400,\"description\":") +
                                 "\"Bad Request: chat not found (token " + kToken + ")\"}"};
  });
  TelegramSettings t;
  t.api_url = server.url();
  t.token = kToken;
  const SendResult r = TelegramSendMessage(t, "5", "x", 0, Fast());
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(calls.load(), 1);  // a 400 is not retried
  EXPECT_NE(r.error.find("HTTP 400: Bad Request: chat not found"), std::string::npos) << r.error;
  EXPECT_EQ(r.error.find("SECRET"), std::string::npos) << r.error;
}

TEST(Send, TelegramTransientFailuresAreRetried) {
  FakeHttpServer server;
  std::atomic<int> calls{0};
  server.Handle([&](const FakeRequest&) {
    if (++calls < 3) return FakeResponse{502, "<html>bad gateway</html>", "text/html"};
    return FakeResponse{200, R"({"ok":true,"result":{}})"};
  });
  TelegramSettings t;
  t.api_url = server.url();
  t.token = kToken;
  const SendResult r = TelegramSendMessage(t, "5", "x", 0, Fast());
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.attempts, 3);

  // 429 asking for longer than we wait: reported at once.
  calls = 0;
  server.Handle([&](const FakeRequest&) {
    ++calls;
    return FakeResponse{429, R"({"ok":false,"error_code":429,"description":"Too Many Requests: )"
                             R"(retry after 30","parameters":{"retry_after":30}})"};
  });
  const SendResult busy = TelegramSendMessage(t, "5", "x", 0, Fast());
  EXPECT_FALSE(busy.ok);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_NE(busy.error.find("Too Many Requests"), std::string::npos) << busy.error;
  EXPECT_NE(busy.error.find("retry after 30 s"), std::string::npos) << busy.error;

  // Nobody listening: a transport error, retried, reported.
  t.api_url = "http://127.0.0.1:1";
  const SendResult down = TelegramSendMessage(t, "5", "x", 0, Fast());
  EXPECT_FALSE(down.ok);
  EXPECT_EQ(down.attempts, 3);
  EXPECT_NE(down.error.find("no answer"), std::string::npos) << down.error;
  EXPECT_EQ(down.error.find("SECRET"), std::string::npos) << down.error;
}

TEST(Send, SlackPostMessageOkFalseReasonIsSurfaced) {
  FakeHttpServer server;
  server.Handle([](const FakeRequest& r) {
    if (r.path != "/api/chat.postMessage") return FakeResponse{404, "{}"};
    const Json body = Json::parse(r.body);
    if (body["channel"] != "C0123")
      return FakeResponse{200, R"({"ok":false,"error":"channel_not_found"})"};
    return FakeResponse{200, R"({"ok":true,"channel":"C0123","ts":"1503435956.000247"})"};
  });
  Config c;
  c.slack.api_url = server.url() + "/api";
  c.slack.bot_token = "xoxb-1-SECRET";
  c.slack.notify_channel = "C0123";
  const Notice n = NoticeFromIncident(IncidentJson(kHostile), "h");
  SendResult r = SendNotice(Channel::kSlack, c, n, Fast());
  ASSERT_TRUE(r.ok) << r.error;
  auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].headers.at("authorization"), "Bearer xoxb-1-SECRET");
  const Json body = Json::parse(reqs[0].body);
  EXPECT_EQ(body["unfurl_links"], false);
  EXPECT_EQ(body["text"].get<std::string>().find('<'), std::string::npos);

  c.slack.notify_channel = "C-missing";
  r = SendNotice(Channel::kSlack, c, n, Fast());
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.attempts, 1);  // not transient
  EXPECT_EQ(r.error, "Slack error: channel_not_found");
}

TEST(Send, SlackRateLimitIsRetried) {
  FakeHttpServer server;
  std::atomic<int> calls{0};
  server.Handle([&](const FakeRequest&) {
    if (++calls == 1) return FakeResponse{429, R"({"ok":false,"error":"ratelimited"})"};
    return FakeResponse{200, R"({"ok":true})"};
  });
  SlackSettings s;
  s.api_url = server.url();
  s.bot_token = "xoxb-1";
  const SendResult r = SlackPostMessage(s, "C1", "hi", Fast());
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.attempts, 2);
}

TEST(Send, WebhookPostsTheNoticeAsJson) {
  FakeHttpServer server;
  server.Handle([](const FakeRequest& r) {
    return r.path == "/hook" ? FakeResponse{204, ""} : FakeResponse{404, "no such hook"};
  });
  Config c;
  c.notify.webhook_url = server.url() + "/hook";
  const Notice n = NoticeFromIncident(IncidentJson(kHostile), "h");
  ASSERT_TRUE(SendNotice(Channel::kWebhook, c, n, Fast()).ok);
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const Json body = Json::parse(reqs[0].body);
  EXPECT_EQ(body["key"], kHostile);
  EXPECT_EQ(body["count"], 120);

  c.notify.webhook_url = server.url() + "/other";
  const SendResult r = SendNotice(Channel::kWebhook, c, n, Fast());
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(r.error, "HTTP 404: no such hook");
}

TEST(Send, EmailThroughSendmailWithRecipientsAsArguments) {
  TempDir dir;
  const std::string script = dir.File("sendmail");
  WriteFile(script,
            "#!/bin/sh\n"
            "printf '%s\\n' \"$@\" > " +
                dir.File("args") +
                "\n"
                "cat > " +
                dir.File("stdin") +
                "\n"
                "exit 0\n",
            0700);
  Config c;
  c.notify.email = {"admin@example.com", "ops@example.com"};
  c.notify.sendmail = script;
  c.notify.from = "guard@example.com";
  const SendResult r =
      SendNotice(Channel::kEmail, c, NoticeFromIncident(IncidentJson(kHostile), "h"), Fast());
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(testing::ReadFile(dir.File("args")), "-i\n--\nadmin@example.com\nops@example.com\n");
  const std::string message = testing::ReadFile(dir.File("stdin"));
  EXPECT_EQ(message.rfind("From: eximguard <guard@example.com>\n", 0), 0u) << message;
  EXPECT_NE(message.find(std::string("Subject: [eximguard h] rate_per_minute: ") + kHostile),
            std::string::npos)
      << message;  // plain text: nothing to escape
  EXPECT_NE(message.find("Content-Type: text/plain; charset=utf-8\n"), std::string::npos);
  EXPECT_NE(message.find("IPs: 203.0.113.5, 198.51.100.7\n"), std::string::npos) << message;

  // A temporary failure (EX_TEMPFAIL) is retried; a hard one reported with its output.
  WriteFile(script, "#!/bin/sh\necho 'queue full' >&2\nexit 75\n", 0700);
  SendResult temp = SendNotice(Channel::kEmail, c, NoticeFromIncident(IncidentJson(), "h"), Fast());
  EXPECT_FALSE(temp.ok);
  EXPECT_EQ(temp.attempts, 3);
  EXPECT_NE(temp.error.find("sendmail exited with status 75: queue full"), std::string::npos)
      << temp.error;
  c.notify.sendmail = dir.File("missing");
  const SendResult missing =
      SendNotice(Channel::kEmail, c, NoticeFromIncident(IncidentJson(), "h"), Fast());
  EXPECT_FALSE(missing.ok);
  EXPECT_EQ(missing.attempts, 1);
  EXPECT_NE(missing.error.find("sendmail not run"), std::string::npos) << missing.error;
}

// ---- the digest --------------------------------------------------------------------------------

Notice Numbered(int i) {
  Json j = IncidentJson("user" + std::to_string(i) + "@example.com");
  j["rule"] = i % 4 == 0 ? "many_ips" : "rate_per_minute";
  return NoticeFromIncident(j, "h");
}

TEST(Digest, AFloodBecomesOneDigestPerPeriodUntilItEnds) {
  DigestGate gate(5, 60);
  std::vector<std::string> sent_keys;
  std::vector<Notice> digests;
  int64_t now = 1000000;
  for (int i = 0; i < 100; ++i) {
    if (auto n = gate.Admit(Numbered(i), now)) sent_keys.push_back(n->key);
    if (auto d = gate.Tick(now, "h")) digests.push_back(*d);
    now += 1000;  // one a second: 100 s of flood
  }
  EXPECT_EQ(sent_keys.size(), 5u);  // the first 5 go out one by one
  EXPECT_TRUE(gate.flooding());
  ASSERT_EQ(digests.size(), 1u);  // at +60 s
  // The rest of the flood, then a quiet period ends it.
  now += 60000;
  if (auto d = gate.Tick(now, "h")) digests.push_back(*d);
  EXPECT_TRUE(gate.flooding());  // the last period still had more than 5
  now += 60000;
  EXPECT_FALSE(gate.Tick(now, "h").has_value());
  EXPECT_FALSE(gate.flooding());
  ASSERT_EQ(digests.size(), 2u);

  std::set<std::string> keys(sent_keys.begin(), sent_keys.end());
  uint64_t digested = 0;
  for (const Notice& d : digests) {
    EXPECT_EQ(d.kind, NoticeKind::kDigest);
    for (const std::string& k : d.keys) EXPECT_TRUE(keys.insert(k).second) << k;
    for (const auto& rc : d.rule_counts) digested += rc.second;
  }
  EXPECT_EQ(keys.size(), 100u);
  EXPECT_EQ(digested, 95u);
  EXPECT_EQ(digests[0].rule_counts[0].first, "rate_per_minute");

  // Afterwards notices go one by one again.
  EXPECT_TRUE(gate.Admit(Numbered(1000), now).has_value());
}

TEST(Digest, NotifierFoldsAFloodOf100IntoAFewMessages) {
  FakeHttpServer server;
  server.Handle([](const FakeRequest&) { return FakeResponse{200, "{}"}; });
  Config c;
  c.notify.webhook_url = server.url() + "/hook";
  c.notify.digest_after = 5;
  c.notify.digest_seconds = 60;
  std::atomic<int64_t> clock{5000000};
  NotifierOptions o;
  o.now_ms = [&] { return clock.load(); };
  o.wake = std::chrono::milliseconds(5);
  o.send = Fast();
  o.host = "h";
  Notifier notifier(c, o);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(notifier.Post(Numbered(i)));
  ASSERT_TRUE(Eventually([&] { return notifier.stats().of(Channel::kWebhook).sent >= 5; }));
  EXPECT_FALSE(notifier.Idle());  // 95 held for the digest
  clock += 60000;
  ASSERT_TRUE(Eventually([&] { return notifier.Idle(); }));
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 6u);
  std::set<std::string> keys;
  for (const auto& r : reqs) {
    const Json j = Json::parse(r.body);
    if (j["kind"] == "digest") {
      for (const auto& k : j["keys"]) keys.insert(k.get<std::string>());
      EXPECT_EQ(j["rules"]["rate_per_minute"].get<int>() + j["rules"]["many_ips"].get<int>(), 95);
    } else {
      keys.insert(j["key"].get<std::string>());
    }
  }
  EXPECT_EQ(keys.size(), 100u);
  const NotifierStats s = notifier.stats();
  EXPECT_EQ(s.posted, 100u);
  EXPECT_EQ(s.digests, 1u);
  EXPECT_EQ(s.digested, 95u);
  EXPECT_EQ(s.of(Channel::kWebhook).sent, 6u);
  EXPECT_EQ(s.of(Channel::kWebhook).failed, 0u);
}

TEST(Digest, StopSendsWhatIsHeldAsOneLastDigest) {
  FakeHttpServer server;
  server.Handle([](const FakeRequest&) { return FakeResponse{500, "down"}; });
  Config c;
  c.notify.webhook_url = server.url();
  c.notify.digest_after = 1;
  c.notify.digest_seconds = 60;
  std::vector<std::string> log;
  std::mutex log_mu;
  NotifierOptions o;
  o.now_ms = [] { return int64_t{1}; };
  o.wake = std::chrono::milliseconds(5);
  o.send = Fast();
  o.host = "h";
  o.log = [&](const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mu);
    log.push_back(line);
  };
  {
    Notifier notifier(c, o);
    for (int i = 0; i < 4; ++i) notifier.Post(Numbered(i));
    ASSERT_TRUE(Eventually([&] { return notifier.stats().of(Channel::kWebhook).failed == 1; }));
    notifier.Stop();
    EXPECT_FALSE(notifier.Post(Numbered(9)));
    const NotifierStats s = notifier.stats();
    EXPECT_EQ(s.of(Channel::kWebhook).failed, 2u);  // the first one, then the digest of 3
    EXPECT_EQ(s.digested, 3u);
    EXPECT_EQ(s.of(Channel::kWebhook).last_error, "HTTP 500: down");
  }
  // 3 attempts for the first, 1 for the last digest (no retries when stopping).
  EXPECT_EQ(server.requests().size(), 4u);
  std::lock_guard<std::mutex> lock(log_mu);
  ASSERT_GE(log.size(), 2u);
  EXPECT_NE(log[0].find("notify: webhook: "), std::string::npos) << log[0];
}

// ---- test-notify -------------------------------------------------------------------------------

using TestNotify = testing::CliFixture;

TEST_F(TestNotify, NoChannelIsAFailure) {
  WriteConfig();
  std::ostringstream out, err;
  EXPECT_EQ(TestNotifyVerb(config_path_, out, err), 1);
  EXPECT_NE(err.str().find("no channel configured"), std::string::npos) << err.str();
}

TEST_F(TestNotify, EveryChannelSaysOkOrWhyNot) {
  FakeHttpServer server;
  server.Handle([](const FakeRequest& r) {
    if (r.path.find("/sendMessage") != std::string::npos) {
      return FakeResponse{200, R"({"ok":true,"result":{}})"};
    }
    return FakeResponse{200, R"({"ok":false,"error":"invalid_auth"})"};
  });
  WriteConfig(
      {{"telegram", {{"api_url", server.url()}, {"token", kToken}, {"notify_chat_id", "42"}}},
       {"slack", {{"api_url", server.url()}, {"bot_token", "xoxb-9"}, {"notify_channel", "C1"}}}});
  std::ostringstream out, err;
  EXPECT_EQ(TestNotifyVerb(config_path_, out, err), 1);
  EXPECT_EQ(out.str(), "telegram: ok\n");
  EXPECT_EQ(err.str(), "slack: Slack error: invalid_auth\n");
  const auto reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u);
  EXPECT_NE(Json::parse(reqs[0].body)["text"].get<std::string>().find("test notice"),
            std::string::npos);

  WriteConfig(
      {{"telegram", {{"api_url", server.url()}, {"token", kToken}, {"notify_chat_id", "42"}}}});
  std::ostringstream out2, err2;
  EXPECT_EQ(TestNotifyVerb(config_path_, out2, err2), 0) << err2.str();
  EXPECT_EQ(out2.str(), "telegram: ok\n");
}

}  // namespace
}  // namespace eg::sidecar
