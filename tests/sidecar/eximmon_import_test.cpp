// eximmon_import_test.cpp - `eximguard import-eximmon` (sidecar/eximmon_import.h): an eximmon
// .eximmon.conf as its installer writes it becomes exactly our config, keys we do not take are
// listed, secrets never reach stderr, and --output is written 0600 and never overwritten by
// accident.

#include "eximmon_import.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "config.h"
#include "sidecar_test_util.h"

namespace eg::sidecar {
namespace {

using Json = nlohmann::json;
using Ordered = nlohmann::ordered_json;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

// The secrets of kEximmon, none of which may ever appear on stderr.
const char* const kSecrets[] = {"WHMTOKENabc123XYZ", "123456:ABC-DEFghi", "xoxb-111-222-secret"};

// What eximmon's install.sh writes (its keys, its types), every channel filled in, plus a key
// eximmon does not know.
const char* const kEximmon = R"({
  "api_token": "WHMTOKENabc123XYZ",
  "notify_email": "admin@example.com",
  "exim_log": "/var/log/exim_mainlog",
  "whm_api_host": "127.0.0.1",
  "prefer_modern_uapi": "true",
  "max_per_min": 10,
  "max_per_hour": 150,
  "telegram_bot_token": "123456:ABC-DEFghi",
  "telegram_admin_ids": "123456789,987654321",
  "telegram_notify_chat_id": "-100123456789",
  "slack_bot_token": "xoxb-111-222-secret",
  "slack_admin_ids": "U12345, U67890",
  "slack_notify_channel": "C12345",
  "data_dir": "/opt/eximmon/data"
})";

const char* const kExpected = R"({
  "whm": {
    "url": "https://127.0.0.1:2087",
    "token": "WHMTOKENabc123XYZ"
  },
  "limits": {
    "sender": {
      "per_minute": 10,
      "per_hour": 150
    }
  },
  "notify": {
    "email": [
      "admin@example.com"
    ]
  },
  "exim_log": "/var/log/exim_mainlog",
  "telegram": {
    "token": "123456:ABC-DEFghi",
    "admin_ids": [
      123456789,
      987654321
    ],
    "notify_chat_id": "-100123456789"
  },
  "slack": {
    "bot_token": "xoxb-111-222-secret",
    "admin_ids": [
      "U12345",
      "U67890"
    ],
    "notify_channel": "C12345"
  }
})";

void ExpectNoSecret(const std::string& text) {
  for (const char* s : kSecrets) EXPECT_EQ(text.find(s), std::string::npos) << text;
}

TEST(EximmonImportTest, MapsEveryEximmonKeyExactly) {
  Ordered ours;
  std::vector<std::string> notes;
  std::string error;
  ASSERT_TRUE(EximmonToConfig(Json::parse(kEximmon), &ours, &notes, &error)) << error;
  EXPECT_EQ(ours.dump(2), kExpected);
  EXPECT_EQ(notes,
            (std::vector<std::string>{
                "not carried over: data_dir (not an eximmon setting eximguard knows)",
                "not carried over: prefer_modern_uapi (eximguard always calls WHM API 1 on port "
                "2087 with the root token, UAPI through WHM for mailboxes; there is no choice to "
                "make)",
                "note: eximmon did not check WHM's TLS certificate; eximguard does: set "
                "whm.ca_file to the certificate WHM serves on port 2087, or, knowingly, "
                "whm.verify_tls to false",
                "note: slack.bot_token sends notices; for commands from Slack, eximguard uses "
                "Socket Mode: add slack.app_token (xapp-...)"}));
  for (const std::string& n : notes) ExpectNoSecret(n);
}

TEST(EximmonImportTest, TheResultIsAValidConfigWithTheSameMeaning) {
  Ordered ours;
  std::vector<std::string> notes;
  std::string error;
  ASSERT_TRUE(EximmonToConfig(Json::parse(kEximmon), &ours, &notes, &error)) << error;
  const ConfigResult r = ParseConfig(ours.dump(), "/t.json");
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  const Config& c = r.config;
  EXPECT_EQ(c.whm.url, "https://127.0.0.1:2087");
  EXPECT_EQ(c.whm.token, "WHMTOKENabc123XYZ");
  EXPECT_EQ(c.whm.user, "root");
  EXPECT_EQ(c.limits[0].per_minute, 10u);
  EXPECT_EQ(c.limits[0].per_hour, 150u);
  EXPECT_EQ(c.notify.email, std::vector<std::string>{"admin@example.com"});
  EXPECT_EQ(c.exim_log, "/var/log/exim_mainlog");
  EXPECT_EQ(c.telegram.token, "123456:ABC-DEFghi");
  EXPECT_EQ(c.telegram.admin_ids, (std::vector<int64_t>{123456789, 987654321}));
  EXPECT_EQ(c.telegram.notify_chat_id, "-100123456789");
  EXPECT_EQ(c.slack.bot_token, "xoxb-111-222-secret");
  EXPECT_EQ(c.slack.admin_ids, (std::vector<std::string>{"U12345", "U67890"}));
  EXPECT_EQ(c.slack.notify_channel, "C12345");
}

TEST(EximmonImportTest, OnlyKeysThatWereSetAreWritten) {
  // eximmon's installer writes "" for every question left unanswered; 0 is not a limit there.
  const Json eximmon = Json::parse(R"({
    "api_token": "T0KEN", "notify_email": "", "exim_log": "/var/log/exim_mainlog",
    "whm_api_host": "", "max_per_min": 0, "max_per_hour": 100, "telegram_bot_token": "",
    "telegram_admin_ids": "", "telegram_notify_chat_id": null, "slack_admin_ids": " , "
  })");
  Ordered ours;
  std::vector<std::string> notes;
  std::string error;
  ASSERT_TRUE(EximmonToConfig(eximmon, &ours, &notes, &error)) << error;
  EXPECT_EQ(ours, Ordered::parse(R"({"whm": {"token": "T0KEN"},
                                     "limits": {"sender": {"per_hour": 100}},
                                     "exim_log": "/var/log/exim_mainlog"})"));
  ASSERT_GE(notes.size(), 1u);
  EXPECT_EQ(notes[0],
            "not carried over: max_per_min (0 is not a limit in eximmon; in eximguard 0 means "
            "unlimited, so the default, 8 per minute, stays)");
}

TEST(EximmonImportTest, KeysMatchWhateverTheirCaseLikeGo) {
  Ordered ours;
  std::vector<std::string> notes;
  std::string error;
  ASSERT_TRUE(EximmonToConfig(Json::parse(R"({"API_TOKEN": "abc", "Max_Per_Hour": "90",
                                              "TELEGRAM_NOTIFY_CHAT_ID": -100123})"),
                              &ours, &notes, &error));
  EXPECT_EQ(ours, Ordered::parse(R"({"whm": {"token": "abc"},
                                     "limits": {"sender": {"per_hour": 90}},
                                     "telegram": {"notify_chat_id": "-100123"}})"));
  EXPECT_FALSE(EximmonToConfig(Json::parse(R"({"api_token": "a", "API_TOKEN": "b"})"), &ours,
                               &notes, &error));
  EXPECT_EQ(error, "\"API_TOKEN\" and \"api_token\" are the same eximmon setting");
  EXPECT_FALSE(EximmonToConfig(Json::parse("[1]"), &ours, &notes, &error));
}

TEST(EximmonImportTest, ListsMayAlsoBeJsonLists) {
  Ordered ours;
  std::vector<std::string> notes;
  std::string error;
  ASSERT_TRUE(EximmonToConfig(
      Json::parse(R"({"telegram_admin_ids": [1, "2"], "slack_admin_ids": ["UA1"]})"), &ours, &notes,
      &error));
  EXPECT_EQ(ours, Ordered::parse(R"({"telegram": {"admin_ids": [1, 2]},
                                     "slack": {"admin_ids": ["UA1"]}})"));
}

class ImportVerbTest : public ::testing::Test {
 protected:
  int Run(const std::string& output, bool force) {
    out_.str("");
    err_.str("");
    return ImportEximmonVerb(input_, output, force, out_, err_);
  }
  static mode_t ModeOf(const std::string& path) {
    struct stat st {};
    EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
    return st.st_mode & 07777;
  }

  TempDir dir_;
  std::string input_ = dir_.File("eximmon.conf");
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(ImportVerbTest, StdoutGetsTheConfigWithSecretsStderrNone) {
  WriteFile(input_, kEximmon);
  ASSERT_EQ(Run("", false), 0) << err_.str();
  EXPECT_EQ(out_.str(), std::string(kExpected) + "\n");
  EXPECT_NE(err_.str().find("not carried over: data_dir"), std::string::npos);
  ExpectNoSecret(err_.str());
}

TEST_F(ImportVerbTest, OutputIsMode0600AndNeverOverwrittenWithoutForce) {
  WriteFile(input_, kEximmon);
  const std::string output = dir_.File("eximguard.json");
  ASSERT_EQ(Run(output, false), 0) << err_.str();
  EXPECT_EQ(ReadFile(output), std::string(kExpected) + "\n");
  EXPECT_EQ(ModeOf(output), 0600u);
  EXPECT_NE(out_.str().find("wrote " + output), std::string::npos);
  ExpectNoSecret(out_.str() + err_.str());
  // The file it wrote loads as a config (mode, owner and content all accepted).
  const ConfigResult loaded = LoadConfig(output);
  EXPECT_TRUE(loaded.ok()) << ::testing::PrintToString(loaded.errors);

  WriteFile(output, "{\"dry_run\": true}\n", 0644);
  EXPECT_EQ(Run(output, false), 1);
  EXPECT_NE(err_.str().find(output + " exists; --force replaces it"), std::string::npos);
  EXPECT_EQ(ReadFile(output), "{\"dry_run\": true}\n");  // untouched

  ASSERT_EQ(Run(output, true), 0) << err_.str();
  EXPECT_EQ(ReadFile(output), std::string(kExpected) + "\n");
  EXPECT_EQ(ModeOf(output), 0600u);  // not the old file's 0644
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".import-"), std::string::npos);
  }
}

TEST_F(ImportVerbTest, ABadValueIsRefusedNamingBothKeysNeverTheSecret) {
  Json eximmon = Json::parse(kEximmon);
  eximmon["api_token"] = "WHMTOKENabc123XYZ with a space";
  eximmon["max_per_hour"] = "lots";
  WriteFile(input_, eximmon.dump());
  const std::string output = dir_.File("eximguard.json");
  EXPECT_EQ(Run(output, false), 1);
  const std::string err = err_.str();
  ExpectNoSecret(err);
  EXPECT_NE(err.find("config (imported from " + input_ +
                     "): whm.token: may hold only letters, digits and - _ : . (value not shown) "
                     "(from eximmon key api_token)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("limits.sender.per_hour: expected a non-negative integer, got \"lots\" (from "
                     "eximmon key max_per_hour)"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("nothing written"), std::string::npos);
  EXPECT_TRUE(out_.str().empty());
  EXPECT_FALSE(std::filesystem::exists(output));
}

TEST_F(ImportVerbTest, BrokenJsonIsRefusedWithoutQuotingIt) {
  WriteFile(input_, "{\"api_token\": \"WHMTOKENabc123XYZ\n");
  EXPECT_EQ(Run("", false), 1);
  EXPECT_NE(err_.str().find("not valid JSON (near byte"), std::string::npos) << err_.str();
  ExpectNoSecret(err_.str());
  EXPECT_TRUE(out_.str().empty());
}

TEST_F(ImportVerbTest, AMissingFileOrNoFileIsAFailure) {
  EXPECT_EQ(Run("", false), 1);
  EXPECT_NE(err_.str().find("cannot open: No such file"), std::string::npos) << err_.str();
  out_.str("");
  EXPECT_EQ(ImportEximmonVerb("", "", false, out_, err_), 2);
}

}  // namespace
}  // namespace eg::sidecar
