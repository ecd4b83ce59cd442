// cli_test.cpp - the built `eximguard` program, run as a child process: run, top, config
// check/show, exit codes and usage errors.

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config.h"
#include "segment.h"
#include "sidecar_test_util.h"
#include "table.h"
#include "top.h"

namespace eg::sidecar {
namespace {

using testing::CliResult;
using testing::RunCli;
using Json = nlohmann::ordered_json;

using Cli = testing::CliFixture;

// The first line of `text`, with its '\n'.
std::string FirstLine(const std::string& text) {
  return text.substr(0, text.find('\n') + 1);
}

// ---- run -------------------------------------------------------------------------------------

TEST_F(Cli, RunCreatesTheSegmentAndPublishesThePolicy) {
  WriteConfig({{"limits", {{"sender", {{"per_minute", 4}}}}},
               {"overrides", {{"news@example.com", {{"per_minute", 50}}}}},
               {"whitelist", {"postmaster@example.com", "/home/a/www"}}});
  const CliResult r = RunCli({"run", "--config", config_path_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(FirstLine(r.out), "created shared memory " + segment_.name +
                                  " (1024 keys, 64 policy entries, " + "group " + group_ +
                                  ", mode 0660); published policy generation 1 with 3 " +
                                  "rules; repaired 0 slots\n");
  EXPECT_EQ(r.err, "");

  struct stat st {};
  ASSERT_EQ(stat(("/dev/shm" + segment_.name).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_gid, getegid());

  auto seg = Open();
  ASSERT_TRUE(seg);
  EXPECT_EQ(seg->table.header->capacity, 1024u);
  EXPECT_EQ(seg->table.header->policy_capacity, 64u);
  EXPECT_EQ(seg->table.header->generation.load(), 1u);
  const Policy head = LivePolicyHead(seg->table);
  EXPECT_EQ(head.class_limits[0].per_minute, 4u);
  EXPECT_EQ(head.class_limits[0].per_hour, 100u);
  EXPECT_EQ(head.class_limits[2].per_minute, 20u);
  const uint32_t now = static_cast<uint32_t>(std::time(nullptr));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(Send(*seg, KeyClass::kSender, "x@y", 1, now), Verdict::kOk);
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "x@y", 1, now), Verdict::kDefer);
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "news@example.com", 50, now), Verdict::kOk);
  EXPECT_EQ(Send(*seg, KeyClass::kCwd, "/home/a/www/", 1000, now), Verdict::kOk);
}

TEST_F(Cli, SecondRunReusesTheSegmentKeepsCountersAndPublishesChangedLimits) {
  WriteConfig();
  ASSERT_EQ(RunCli({"run", "--config", config_path_}).exit_code, 0);
  auto seg = Open();
  ASSERT_TRUE(seg);
  const uint32_t now = static_cast<uint32_t>(std::time(nullptr));
  ASSERT_EQ(Send(*seg, KeyClass::kSender, "a@example.com", 3, now), Verdict::kOk);

  CliResult r = RunCli({"run", "--config", config_path_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(FirstLine(r.out),
            "reused shared memory " + segment_.name +
                " (counters kept); published policy generation 2 with 0 rules; repaired 0 "
                "slots\n");
  std::vector<SlotView> slots = Snapshot(seg->table, now, 3600);
  ASSERT_EQ(slots.size(), 1u);
  EXPECT_EQ(slots[0].key, "a@example.com");
  EXPECT_EQ(slots[0].minute, 3u);

  WriteConfig({{"limits", {{"sender", {{"per_minute", 4}, {"per_hour", 0}}}}},
               {"blocklist", {"spam@example.com"}}});
  r = RunCli({"run", "--config", config_path_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(FirstLine(r.out),
            "reused shared memory " + segment_.name +
                " (counters kept); published policy generation 3 with 1 rule; repaired 0 "
                "slots\n");
  auto fresh = Open();
  ASSERT_TRUE(fresh);
  const Policy head = LivePolicyHead(fresh->table);
  EXPECT_EQ(head.class_limits[0].per_minute, 4u);
  EXPECT_EQ(head.class_limits[0].per_hour, 0u);
  EXPECT_EQ(fresh->table.header->generation.load(), 3u);
  // The mapping taken before the change sees the new policy too; 3 of 4 are used.
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "a@example.com", 1, now), Verdict::kOk);
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "a@example.com", 1, now), Verdict::kDefer);
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "spam@example.com", 1, now), Verdict::kDeny);
}

TEST_F(Cli, RunWithAnotherCapacityReplacesTheSegment) {
  WriteConfig();
  ASSERT_EQ(RunCli({"run", "--config", config_path_}).exit_code, 0);
  {
    auto seg = Open();
    ASSERT_TRUE(seg);
    ASSERT_EQ(Send(*seg, KeyClass::kSender, "a@example.com", 1,
                   static_cast<uint32_t>(std::time(nullptr))),
              Verdict::kOk);
  }
  WriteConfig({{"capacity", 2048}});
  const CliResult r = RunCli({"run", "--config", config_path_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(FirstLine(r.out),
            "replaced shared memory " + segment_.name +
                " (the old one had another size or layout; counters start from zero); "
                "published policy generation 1 with 0 rules; repaired 0 slots\n");
  auto seg = Open();
  ASSERT_TRUE(seg);
  EXPECT_EQ(seg->table.header->capacity, 2048u);
  EXPECT_TRUE(Snapshot(seg->table, static_cast<uint32_t>(std::time(nullptr)), 3600).empty());
}

TEST_F(Cli, RunWithAnInvalidConfigFailsAndCreatesNothing) {
  WriteConfig({{"limits", {{"sender", {{"per_minute", "ten"}}}}}, {"fail_mode", "closed"}});
  const CliResult r = RunCli({"run", "--config", config_path_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "config " + config_path_ +
                       ": limits.sender.per_minute: expected a non-negative integer, got \"ten\"\n"
                       "config " +
                       config_path_ +
                       ": fail_mode: expected \"open\" or \"defer\", got \"closed\"\n");
  std::string error;
  EXPECT_FALSE(OpenSegment(segment_.name, &error));
}

TEST_F(Cli, RunRefusesAConfigOthersCanRead) {
  WriteConfig(Json::object(), 0644);
  const CliResult r = RunCli({"run", "--config", config_path_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, "config " + config_path_ +
                       ": mode 0644 gives group or others access to it; run chmod 600 " +
                       config_path_ + "\n");
  std::string error;
  EXPECT_FALSE(OpenSegment(segment_.name, &error));
}

// ---- top -------------------------------------------------------------------------------------

TEST_F(Cli, TopListsCountedKeysWithCountsLimitsAndStates) {
  WriteConfig({{"limits", {{"sender", {{"per_minute", 3}, {"per_hour", 50}}}}},
               {"overrides", {{"news@example.com", {{"per_minute", 10}, {"per_hour", 0}}}}},
               {"whitelist", {"postmaster@example.com"}}});
  ASSERT_EQ(RunCli({"run", "--config", config_path_}).exit_code, 0);
  auto seg = Open();
  ASSERT_TRUE(seg);
  const uint32_t now = static_cast<uint32_t>(std::time(nullptr));
  for (int i = 0; i < 5; ++i) Send(*seg, KeyClass::kSender, "a@example.com", 1, now);
  ASSERT_EQ(Send(*seg, KeyClass::kSender, "news@example.com", 6, now), Verdict::kOk);
  ASSERT_EQ(Send(*seg, KeyClass::kSender, "postmaster@example.com", 7, now), Verdict::kOk);
  ASSERT_EQ(Send(*seg, KeyClass::kCwd, "/home/u/www", 1, now), Verdict::kOk);
  ASSERT_EQ(Send(*seg, KeyClass::kUid, "1000", 2, now), Verdict::kOk);
  // Blocked after it sent: the next run publishes the block.
  WriteConfig({{"limits", {{"sender", {{"per_minute", 3}, {"per_hour", 50}}}}},
               {"overrides", {{"news@example.com", {{"per_minute", 10}, {"per_hour", 0}}}}},
               {"whitelist", {"postmaster@example.com"}},
               {"blocklist", {"uid:1000"}}});
  ASSERT_EQ(RunCli({"run", "--config", config_path_}).exit_code, 0);
  ASSERT_EQ(Send(*seg, KeyClass::kUid, "1000", 1, now), Verdict::kDeny);
  // Exim's delivery events for a@example.com's three recipients (eximguard_event).
  const std::string a = "A@example.com";
  for (Outcome o : {Outcome::kDelivered, Outcome::kFailed, Outcome::kDeferred, Outcome::kFailed})
    ASSERT_TRUE(Tally(seg->table, {KeyClass::kSender, a.data(), a.size()}, o));

  CliResult r = RunCli({"top", "--config", config_path_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const Json expected = {{"segment", segment_.name},
                         {"generation", 2},
                         {"dry_run", false},
                         {"fail_mode", "open"},
                         {"live_keys", 5},
                         {"stats",
                          {{"ok", 7},
                           {"defer", 2},
                           {"hold", 0},
                           {"deny", 1},
                           {"fail_open", 0},
                           {"evictions", 0},
                           {"new_key_refusals", 0}}},
                         {"keys",
                          {{{"class", "sender"},
                            {"key", "postmaster@example.com"},
                            {"minute", 7},
                            {"minute_limit", nullptr},
                            {"hour", 7},
                            {"hour_limit", nullptr},
                            {"refused", 0},
                            {"delivered", 0},
                            {"failed", 0},
                            {"deferred", 0},
                            {"state", "whitelisted"},
                            {"last_seen", now}},
                           {{"class", "sender"},
                            {"key", "news@example.com"},
                            {"minute", 6},
                            {"minute_limit", 10},
                            {"hour", 6},
                            {"hour_limit", nullptr},
                            {"refused", 0},
                            {"delivered", 0},
                            {"failed", 0},
                            {"deferred", 0},
                            {"state", "override"},
                            {"last_seen", now}},
                           {{"class", "sender"},
                            {"key", "a@example.com"},
                            {"minute", 3},
                            {"minute_limit", 3},
                            {"hour", 3},
                            {"hour_limit", 50},
                            {"refused", 2},
                            {"delivered", 1},
                            {"failed", 2},
                            {"deferred", 1},
                            {"state", "none"},
                            {"last_seen", now}},
                           {{"class", "uid"},
                            {"key", "1000"},
                            {"minute", 2},
                            {"minute_limit", 20},
                            {"hour", 2},
                            {"hour_limit", 300},
                            {"refused", 1},  // the attempt after the block
                            {"delivered", 0},
                            {"failed", 0},
                            {"deferred", 0},
                            {"state", "blocked"},
                            {"last_seen", now}},
                           {{"class", "cwd"},
                            {"key", "/home/u/www"},
                            {"minute", 1},
                            {"minute_limit", 5},
                            {"hour", 1},
                            {"hour_limit", 60},
                            {"refused", 0},
                            {"delivered", 0},
                            {"failed", 0},
                            {"deferred", 0},
                            {"state", "none"},
                            {"last_seen", now}}}}};
  EXPECT_EQ(Json::parse(r.out), expected) << r.out;

  r = RunCli({"top", "--config", config_path_, "-n", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Json two = Json::parse(r.out);
  EXPECT_EQ(two["live_keys"], 5);
  ASSERT_EQ(two["keys"].size(), 2u);
  EXPECT_EQ(two["keys"][1]["key"], "news@example.com");

  r = RunCli({"top", "--config", config_path_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, FormatTopText(BuildTop(seg->table, segment_.name, now, 20)));
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')),
            "shared memory " + segment_.name +
                ": policy generation 2, fail mode open; 5 live keys; calls: ok 7, defer 2, hold "
                "0, deny 1; fail_open 0; evictions 0");
}

TEST_F(Cli, TopWithoutASegmentFails) {
  WriteConfig();
  const CliResult r = RunCli({"top", "--config", config_path_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "cannot open shared memory " + segment_.name +
                       ": No such file or directory (`eximguard run` creates it)\n");
}

// ---- config check / show ---------------------------------------------------------------------

TEST_F(Cli, ConfigCheckExitCodes) {
  testing::WriteFile(dir_.File("mainlog"), "");  // a missing log is a problem (doctor_test)
  WriteConfig({{"whitelist", {"a@b", "/x"}}, {"overrides", {{"uid:5", Json::object()}}}});
  CliResult r = RunCli({"config", "check", "--config", config_path_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out, "config OK: " + config_path_ + "\n  shared memory " + segment_.name +
                       ": 1024 keys, 64 policy entries, group " + group_ +
                       "\n  limits per minute/hour (0 = unlimited): sender 8/100, cwd 5/60, uid "
                       "20/300\n  1 override, 2 whitelisted, 0 blocked; fail mode open; dry run "
                       "off\n");

  WriteConfig({{"limits", {{"sendr", Json::object()}}}, {"capacity", 3}});
  r = RunCli({"config", "check", "--config", config_path_});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "config " + config_path_ +
                       ": capacity: expected a power of two from 1024 to 16777216, got 3\n"
                       "config " +
                       config_path_ + ": limits.sendr: unknown key (did you mean \"sender\"?)\n");

  r = RunCli({"config", "check", "--config", dir_.File("missing.json")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err,
            "config " + dir_.File("missing.json") + ": cannot open: No such file or directory\n");

  for (const std::vector<std::string>& usage :
       std::vector<std::vector<std::string>>{{"config", "check", "--bogus"},
                                             {"config", "check", "--config"},
                                             {"config"},
                                             {},
                                             {"frobnicate"},
                                             {"top", "-n", "many"},
                                             {"top", "-n", "-1"},
                                             {"--config", config_path_, "run"},
                                             {"run", "extra-argument"}}) {
    r = RunCli(usage);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(usage) << r.out << r.err;
    EXPECT_NE(r.err, "") << ::testing::PrintToString(usage);
  }
}

TEST_F(Cli, DefaultConfigPathIsUsedWithoutConfigOption) {
  if (access(kDefaultConfigPath, F_OK) == 0) GTEST_SKIP() << kDefaultConfigPath << " exists here";
  const CliResult r = RunCli({"config", "check"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.err, std::string("config ") + kDefaultConfigPath +
                       ": cannot open: No such file or directory\n");
}

TEST_F(Cli, ConfigShowPrintsTheEffectiveConfig) {
  WriteConfig(
      {{"overrides", {{"uid:5", {{"per_hour", 9}}}}},
       {"notify", {{"webhook_url", "https://hooks.example.com/services/T0/B0/SECRETHOOK"}}}});
  const CliResult r = RunCli({"config", "show", "--config", config_path_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const ConfigResult loaded = LoadConfig(config_path_);
  ASSERT_TRUE(loaded.ok());
  Json masked = ConfigToJson(loaded.config);
  MaskSecrets(masked);
  EXPECT_EQ(r.out, masked.dump(2) + "\n");
  EXPECT_EQ(r.out.find("SECRETHOOK"), std::string::npos) << r.out;  // a webhook's path is a secret
  const Json shown = Json::parse(r.out);
  EXPECT_EQ(shown["notify"]["webhook_url"], "https://hooks.example.com/\u2026");
  EXPECT_EQ(shown["overrides"]["uid:5"], Json({{"per_minute", 20}, {"per_hour", 9}}));
  EXPECT_EQ(shown["state_dir"], dir_.File("state"));
  EXPECT_EQ(shown["retention_days"], 30);
  EXPECT_EQ(shown["detectors"]["max_ips_per_hour"], 3);
  EXPECT_EQ(shown["actions"]["timeout_seconds"], 10);
  EXPECT_EQ(shown["fail_mode"], "open");

  WriteConfig({{"dry_run", "no"}});
  EXPECT_EQ(RunCli({"config", "show", "--config", config_path_}).exit_code, 1);
}

TEST_F(Cli, EveryVerbHasHelp) {
  for (const std::vector<std::string>& help :
       std::vector<std::vector<std::string>>{{"--help"},
                                             {"run", "--help"},
                                             {"start", "--help"},
                                             {"rerun", "--help"},
                                             {"skip", "--help"},
                                             {"replay", "--help"},
                                             {"incidents", "--help"},
                                             {"why", "--help"},
                                             {"suspend", "--help"},
                                             {"unsuspend", "--help"},
                                             {"act", "--help"},
                                             {"list", "--help"},
                                             {"whitelist", "--help"},
                                             {"whitelist", "add", "--help"},
                                             {"whitelist", "remove", "--help"},
                                             {"whitelist", "list", "--help"},
                                             {"status", "--help"},
                                             {"doctor", "--help"},
                                             {"top", "--help"},
                                             {"config", "--help"},
                                             {"config", "check", "--help"},
                                             {"config", "show", "--help"}}) {
    const CliResult r = RunCli(help);
    EXPECT_EQ(r.exit_code, 0) << ::testing::PrintToString(help);
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << r.out;
    EXPECT_EQ(r.err, "");
  }
  const CliResult top = RunCli({"top", "--help"});
  EXPECT_NE(top.out.find("--config"), std::string::npos);
  EXPECT_NE(top.out.find("--json"), std::string::npos);
  EXPECT_NE(top.out.find("-n"), std::string::npos);
  const CliResult version = RunCli({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("eximguard ", 0), 0u) << version.out;
}

}  // namespace
}  // namespace eg::sidecar
