// config_env_test.cpp - eximmon's environment variables over the config (sidecar/config_env.h):
// what each sets, that a bad value is refused with the key path, the reason and the variable's
// name, and that no secret is ever echoed.

#include "config_env.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "config.h"

namespace eg::sidecar {
namespace {

using Env = std::map<std::string, std::string>;
using Json = nlohmann::json;
using Ordered = nlohmann::ordered_json;

EnvLookup Lookup(const Env& env) {
  return [&env](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
}

// What config.cpp does once the lead wires it in: parse, override, validate, name the sources.
ConfigResult ParseWithEnv(const std::string& text, const Env& env,
                          std::vector<std::string>* applied) {
  Ordered doc = Ordered::parse(text);
  ApplyEnvOverrides(doc, Lookup(env), applied);
  ConfigResult r = ParseConfig(doc.dump(), "/t.json");
  NoteEnvSources(*applied, &r.errors);
  return r;
}

TEST(ConfigEnvTest, EveryEximmonVariableSetsItsKey) {
  const Env env = {{"API_TOKEN", "WHMTOKEN123"},
                   {"WHM_API_HOST", "server.example.com"},
                   {"MAX_PER_MIN", "12"},
                   {"MAX_PER_HOUR", "240"},
                   {"NOTIFY_EMAIL", "admin@example.com"},
                   {"EXIM_LOG", "/var/log/exim_mainlog"},
                   {"TELEGRAM_BOT_TOKEN", "123456:ABC-DEF"},
                   {"TELEGRAM_ADMIN_IDS", "123456789, 987654321"},
                   {"TELEGRAM_NOTIFY_CHAT_ID", "-100123456789"},
                   {"SLACK_BOT_TOKEN", "xoxb-1-2-abc"},
                   {"SLACK_APP_TOKEN", "xapp-1-A1-2-def"},
                   {"SLACK_ADMIN_IDS", "U12345,U67890"},
                   {"SLACK_NOTIFY_CHANNEL", "C12345"}};
  Json doc = Json::object();
  std::vector<std::string> applied;
  ApplyEnvOverrides(doc, Lookup(env), &applied);
  const Json expected = Json::parse(R"({
    "whm": {"url": "https://server.example.com:2087", "token": "WHMTOKEN123"},
    "limits": {"sender": {"per_minute": 12, "per_hour": 240}},
    "notify": {"email": ["admin@example.com"]},
    "exim_log": "/var/log/exim_mainlog",
    "telegram": {"token": "123456:ABC-DEF", "admin_ids": [123456789, 987654321],
                 "notify_chat_id": "-100123456789"},
    "slack": {"bot_token": "xoxb-1-2-abc", "app_token": "xapp-1-A1-2-def",
              "admin_ids": ["U12345", "U67890"], "notify_channel": "C12345"}
  })");
  EXPECT_EQ(doc, expected) << doc.dump(2);
  EXPECT_EQ(applied,
            (std::vector<std::string>{
                "WHM_API_HOST", "API_TOKEN", "MAX_PER_MIN", "MAX_PER_HOUR", "NOTIFY_EMAIL",
                "EXIM_LOG", "TELEGRAM_BOT_TOKEN", "TELEGRAM_ADMIN_IDS", "TELEGRAM_NOTIFY_CHAT_ID",
                "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_ADMIN_IDS", "SLACK_NOTIFY_CHANNEL"}));
  // ... and the result is a valid config with those values.
  std::vector<std::string> applied_again;
  const ConfigResult r = ParseWithEnv("{}", env, &applied_again);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  EXPECT_EQ(r.config.whm.url, "https://server.example.com:2087");
  EXPECT_EQ(r.config.whm.token, "WHMTOKEN123");
  EXPECT_EQ(r.config.limits[0].per_minute, 12u);
  EXPECT_EQ(r.config.limits[0].per_hour, 240u);
  EXPECT_EQ(r.config.notify.email, std::vector<std::string>{"admin@example.com"});
  EXPECT_EQ(r.config.telegram.admin_ids, (std::vector<int64_t>{123456789, 987654321}));
  EXPECT_EQ(r.config.telegram.notify_chat_id, "-100123456789");
  EXPECT_EQ(r.config.slack.admin_ids, (std::vector<std::string>{"U12345", "U67890"}));
}

TEST(ConfigEnvTest, TheEnvironmentWinsAndTheRestOfTheFileStays) {
  const Env env = {{"MAX_PER_MIN", "3"}, {"PREFER_MODERN_UAPI", "false"}, {"EXIM_LOG", ""}};
  std::vector<std::string> applied;
  const ConfigResult r = ParseWithEnv(
      R"({"exim_log": "/var/log/exim4/mainlog",
          "limits": {"sender": {"per_minute": 50, "per_hour": 500}, "cwd": {"per_minute": 2}}})",
      env, &applied);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  EXPECT_EQ(applied, std::vector<std::string>{"MAX_PER_MIN"});  // "" is unset, UAPI not ours
  EXPECT_EQ(r.config.limits[0].per_minute, 3u);
  EXPECT_EQ(r.config.limits[0].per_hour, 500u);
  EXPECT_EQ(r.config.limits[1].per_minute, 2u);
  EXPECT_EQ(r.config.exim_log, "/var/log/exim4/mainlog");
}

TEST(ConfigEnvTest, NoVariableNoChange) {
  Ordered doc = Ordered::parse(R"({"dry_run": true})");
  const Ordered before = doc;
  std::vector<std::string> applied;
  ApplyEnvOverrides(doc, Lookup({}), &applied);
  EXPECT_EQ(doc, before);
  EXPECT_TRUE(applied.empty());
  ApplyEnvOverrides(doc, nullptr, nullptr);  // no lookup at all
  EXPECT_EQ(doc, before);
}

TEST(ConfigEnvTest, NumbersComeAsTextAndBecomeIntegers) {
  EXPECT_EQ(ConvertEnvValue(EnvKind::kCount, "8"), Json(8));
  EXPECT_EQ(ConvertEnvValue(EnvKind::kCount, " 100 "), Json(100));
  EXPECT_EQ(ConvertEnvValue(EnvKind::kCount, "ten"), Json("ten"));  // for the validator
  EXPECT_EQ(ConvertEnvValue(EnvKind::kCount, "-1"), Json("-1"));
  EXPECT_EQ(ConvertEnvValue(EnvKind::kCount, "1.5"), Json("1.5"));
  EXPECT_EQ(ConvertEnvValue(EnvKind::kCount, "99999999999999999999999"),
            Json("99999999999999999999999"));
  EXPECT_EQ(ConvertEnvValue(EnvKind::kIntList, "1,-2, ,3"), Json::parse("[1, -2, 3]"));
  EXPECT_EQ(ConvertEnvValue(EnvKind::kStringList, " a@x.org , b@y.org,"),
            Json::parse(R"(["a@x.org", "b@y.org"])"));
}

TEST(ConfigEnvTest, WhmApiHostBecomesAUrl) {
  EXPECT_EQ(WhmUrlFromHost("127.0.0.1"), "https://127.0.0.1:2087");
  EXPECT_EQ(WhmUrlFromHost(" node.servername.com "), "https://node.servername.com:2087");
  EXPECT_EQ(WhmUrlFromHost("host.example.com:2088"), "https://host.example.com:2088");
  EXPECT_EQ(WhmUrlFromHost("::1"), "https://[::1]:2087");
  EXPECT_EQ(WhmUrlFromHost("[::1]"), "https://[::1]:2087");
  EXPECT_EQ(WhmUrlFromHost("https://whm.example.com:2087"), "https://whm.example.com:2087");
}

TEST(ConfigEnvTest, ABadValueIsRefusedWithKeyPathReasonAndVariable) {
  std::vector<std::string> applied;
  ConfigResult r = ParseWithEnv("{}", {{"MAX_PER_MIN", "ten"}}, &applied);
  EXPECT_EQ(r.errors, std::vector<std::string>{
                          "config /t.json: limits.sender.per_minute: expected a non-negative "
                          "integer, got \"ten\" (from environment variable MAX_PER_MIN)"});

  applied.clear();
  r = ParseWithEnv("{}", {{"TELEGRAM_ADMIN_IDS", "123, bob"}, {"EXIM_LOG", "exim_mainlog"}},
                   &applied);
  EXPECT_EQ(r.errors,
            (std::vector<std::string>{
                "config /t.json: exim_log: expected an absolute path, got \"exim_mainlog\" (from "
                "environment variable EXIM_LOG)",
                "config /t.json: telegram.admin_ids[1]: expected a Telegram user id (an integer), "
                "got \"bob\" (from environment variable TELEGRAM_ADMIN_IDS)"}));

  applied.clear();
  r = ParseWithEnv("{}", {{"WHM_API_HOST", "bad host"}}, &applied);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("whm.url: expected an http:// or https:// URL"), std::string::npos);
  EXPECT_NE(r.errors[0].find("(from environment variable WHM_API_HOST)"), std::string::npos);
}

TEST(ConfigEnvTest, SecretsAreNeverEchoed) {
  const std::string secret = "s3cret/with spaces";
  const Env env = {{"API_TOKEN", secret},
                   {"TELEGRAM_BOT_TOKEN", secret},
                   {"SLACK_BOT_TOKEN", secret},
                   {"SLACK_APP_TOKEN", secret}};
  std::vector<std::string> applied;
  const ConfigResult r = ParseWithEnv("{}", env, &applied);
  ASSERT_EQ(r.errors.size(), 4u) << ::testing::PrintToString(r.errors);
  for (const std::string& e : r.errors) {
    EXPECT_EQ(e.find("s3cret"), std::string::npos) << e;
    EXPECT_NE(e.find("(value not shown)"), std::string::npos) << e;
  }
  EXPECT_NE(r.errors[0].find("whm.token"), std::string::npos);
  EXPECT_NE(r.errors[0].find("environment variable API_TOKEN"), std::string::npos);
  for (const std::string& name : applied) EXPECT_EQ(name.find("s3cret"), std::string::npos);
  EXPECT_EQ(applied.size(), 4u);
}

TEST(ConfigEnvTest, AFileErrorInTheWayIsLeftForTheValidator) {
  std::vector<std::string> applied;
  const ConfigResult r = ParseWithEnv(R"({"whm": "https://x"})", {{"API_TOKEN", "abc"}}, &applied);
  EXPECT_TRUE(applied.empty());
  EXPECT_EQ(r.errors,
            std::vector<std::string>{"config /t.json: whm: expected an object, got \"https://x\""});
}

TEST(ConfigEnvTest, NamesAreFoundWhateverTheirCase) {
  ASSERT_NE(FindEximmonSetting("api_token"), nullptr);
  EXPECT_STREQ(FindEximmonSetting("Api_Token")->key_path, "whm.token");
  EXPECT_EQ(FindEximmonSetting("API_TOKENS"), nullptr);
  EXPECT_NE(FindEximmonIgnored("prefer_modern_uapi"), nullptr);
  // Every variable lands on a key the config knows, and the secret ones on secret keys.
  for (const EximmonSetting& s : kEximmonSettings) {
    const std::string path = s.key_path;
    const std::string leaf = path.substr(path.rfind('.') + 1);
    const bool secret_name = std::string(s.name).ends_with("_TOKEN");
    EXPECT_EQ(IsSecretKey(leaf), secret_name) << s.name;
  }
}

}  // namespace
}  // namespace eg::sidecar
