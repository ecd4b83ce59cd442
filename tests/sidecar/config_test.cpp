// config_test.cpp - loading and validating the sidecar config (sidecar/config.h) and
// classifying policy keys (sidecar/policy_key.h).

#include "config.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "policy_key.h"
#include "sidecar_test_util.h"

namespace eg::sidecar {
namespace {

using Errors = std::vector<std::string>;
using testing::TempDir;
using testing::WriteFile;

const std::string kPath = "/t.json";

Errors ErrorsOf(const std::string& text) {
  return ParseConfig(text, kPath).errors;
}
std::string E(const std::string& message) {
  return "config " + kPath + ": " + message;
}

Config Valid(const std::string& text) {
  ConfigResult r = ParseConfig(text, kPath);
  EXPECT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  return r.config;
}

// ---- Defaults ------------------------------------------------------------------------------

TEST(ConfigDefaults, EmptyObjectGivesEveryDefault) {
  const Config c = Valid("{}");
  EXPECT_EQ(c.path, kPath);
  EXPECT_EQ(c.shm_name, "/eximguard");
  EXPECT_EQ(c.state_dir, "/var/lib/eximguard");
  EXPECT_EQ(c.exim_log, "/var/log/exim_mainlog");
  EXPECT_EQ(c.exim_group, DefaultEximGroup());
  EXPECT_EQ(c.capacity, 65536u);
  EXPECT_EQ(c.policy_capacity, 16384u);
  EXPECT_FALSE(c.dry_run);
  EXPECT_EQ(c.fail_mode, FailMode::kOpen);
  EXPECT_EQ(c.limits[0].per_minute, 8u);
  EXPECT_EQ(c.limits[0].per_hour, 100u);
  EXPECT_EQ(c.limits[1].per_minute, 5u);
  EXPECT_EQ(c.limits[1].per_hour, 60u);
  EXPECT_EQ(c.limits[2].per_minute, 20u);
  EXPECT_EQ(c.limits[2].per_hour, 300u);
  EXPECT_TRUE(c.overrides.empty());
  EXPECT_TRUE(c.whitelist.empty());
  EXPECT_TRUE(c.blocklist.empty());
}

TEST(ConfigDefaults, EximGroupPrefersDebianEximThenEximThenMail) {
  const std::string g = DefaultEximGroup();
  if (getgrnam("Debian-exim") != nullptr) {
    EXPECT_EQ(g, "Debian-exim");
  } else if (getgrnam("exim") != nullptr) {
    EXPECT_EQ(g, "exim");
  } else {
    EXPECT_EQ(g, "mail");
  }
}

TEST(ConfigDefaults, PartialLimitsKeepTheOtherDefaults) {
  const Config c = Valid(R"({"limits": {"sender": {"per_hour": 7}, "uid": {}}})");
  EXPECT_EQ(c.limits[0].per_minute, 8u);
  EXPECT_EQ(c.limits[0].per_hour, 7u);
  EXPECT_EQ(c.limits[1].per_minute, 5u);
  EXPECT_EQ(c.limits[2].per_hour, 300u);
}

TEST(ConfigParse, EveryKeySet) {
  const std::string group = testing::OwnGroupName();
  const Config c = Valid(R"({
    "shm_name": "/eg.test_1-x", "state_dir": "/srv/state", "exim_log": "/srv/log/mainlog",
    "exim_group": ")" + group +
                         R"(",
    "capacity": 1024, "policy_capacity": 64, "new_key_budget": 50, "dry_run": true,
    "fail_mode": "defer",
    "limits": { "sender": {"per_minute": 0, "per_hour": 4294967295},
                "cwd":    {"per_minute": 1, "per_hour": 2},
                "uid":    {"per_minute": 3, "per_hour": 4} },
    "overrides": { "newsletter@example.com": {"per_minute": 50, "per_hour": 5000},
                   "uid:0042": {"per_hour": 9} },
    "whitelist": ["postmaster@example.com", "/home/acct/public_html/newsletter/"],
    "blocklist": ["sender:spam@example.com", "uid:666"] })");
  EXPECT_EQ(c.shm_name, "/eg.test_1-x");
  EXPECT_EQ(c.state_dir, "/srv/state");
  EXPECT_EQ(c.exim_log, "/srv/log/mainlog");
  EXPECT_EQ(c.exim_group, group);
  EXPECT_EQ(c.capacity, 1024u);
  EXPECT_EQ(c.policy_capacity, 64u);
  EXPECT_EQ(c.new_key_budget, 50u);
  EXPECT_TRUE(c.dry_run);
  EXPECT_EQ(c.fail_mode, FailMode::kDefer);
  EXPECT_EQ(c.limits[0].per_minute, 0u);
  EXPECT_EQ(c.limits[0].per_hour, 4294967295u);
  EXPECT_EQ(c.limits[1].per_minute, 1u);
  EXPECT_EQ(c.limits[1].per_hour, 2u);
  EXPECT_EQ(c.limits[2].per_minute, 3u);
  EXPECT_EQ(c.limits[2].per_hour, 4u);

  ASSERT_EQ(c.overrides.size(), 2u);
  EXPECT_EQ(c.overrides[0].key.written, "newsletter@example.com");
  EXPECT_EQ(c.overrides[0].key.klass, KeyClass::kSender);
  EXPECT_EQ(c.overrides[0].key.text, "newsletter@example.com");
  EXPECT_EQ(c.overrides[0].per_minute, 50u);
  EXPECT_EQ(c.overrides[0].per_hour, 5000u);
  EXPECT_EQ(c.overrides[1].key.written, "uid:0042");
  EXPECT_EQ(c.overrides[1].key.klass, KeyClass::kUid);
  EXPECT_EQ(c.overrides[1].key.text, "42");
  EXPECT_EQ(c.overrides[1].per_minute, std::nullopt);
  EXPECT_EQ(c.overrides[1].per_hour, 9u);
  EXPECT_EQ(EffectiveLimit(c, c.overrides[1]).per_minute, 3u);  // inherited from limits.uid
  EXPECT_EQ(EffectiveLimit(c, c.overrides[1]).per_hour, 9u);

  ASSERT_EQ(c.whitelist.size(), 2u);
  EXPECT_EQ(c.whitelist[0].klass, KeyClass::kSender);
  EXPECT_EQ(c.whitelist[0].text, "postmaster@example.com");
  EXPECT_EQ(c.whitelist[1].klass, KeyClass::kCwd);
  EXPECT_EQ(c.whitelist[1].text, "/home/acct/public_html/newsletter");
  EXPECT_EQ(c.whitelist[1].written, "/home/acct/public_html/newsletter/");
  ASSERT_EQ(c.blocklist.size(), 2u);
  EXPECT_EQ(c.blocklist[0].klass, KeyClass::kSender);
  EXPECT_EQ(c.blocklist[0].text, "spam@example.com");
  EXPECT_EQ(c.blocklist[1].klass, KeyClass::kUid);
  EXPECT_EQ(c.blocklist[1].text, "666");
}

TEST(ConfigParse, ShippedDefaultConfigIsValid) {
  const std::string path = EG_SOURCE_DIR "/packaging/eximguard.json";
  const std::string text = testing::ReadFile(path);
  ASSERT_NE(text, "") << path;
  const ConfigResult r = ParseConfig(text, path);
  EXPECT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
}

// ---- Validation: one problem at a time ------------------------------------------------------

struct BadCase {
  std::string json;
  std::string error;  // without the "config <file>: " prefix
};
void PrintTo(const BadCase& c, std::ostream* os) {
  *os << c.json;
}

class ConfigRejects : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigRejects, WithExactKeyPathAndReason) {
  EXPECT_EQ(ErrorsOf(GetParam().json), Errors{E(GetParam().error)});
}

INSTANTIATE_TEST_SUITE_P(
    Limits, ConfigRejects,
    ::testing::Values(
        BadCase{R"({"limits": {"sender": {"per_minute": "ten"}}})",
                R"(limits.sender.per_minute: expected a non-negative integer, got "ten")"},
        BadCase{R"({"limits": {"sender": {"per_hour": -1}}})",
                "limits.sender.per_hour: expected a non-negative integer, got -1"},
        BadCase{R"({"limits": {"cwd": {"per_minute": 4294967296}}})",
                "limits.cwd.per_minute: expected at most 4294967295, got 4294967296"},
        BadCase{R"({"limits": {"uid": {"per_hour": 1.5}}})",
                "limits.uid.per_hour: expected a non-negative integer, got 1.5"},
        BadCase{R"({"limits": {"uid": {"per_hour": true}}})",
                "limits.uid.per_hour: expected a non-negative integer, got true"},
        BadCase{R"({"limits": {"uid": {"per_hour": null}}})",
                "limits.uid.per_hour: expected a non-negative integer, got null"},
        BadCase{R"({"limits": {"sendr": {}}})",
                R"(limits.sendr: unknown key (did you mean "sender"?))"},
        BadCase{R"({"limits": {"sender": {"per_minut": 1}}})",
                R"(limits.sender.per_minut: unknown key (did you mean "per_minute"?))"},
        BadCase{R"({"limits": {"ip": {}}})", "limits.ip: unknown key"},
        BadCase{R"({"limits": 5})", "limits: expected an object, got 5"},
        BadCase{R"({"limits": {"cwd": [1, 2]}})", "limits.cwd: expected an object, got [1,2]"}));

INSTANTIATE_TEST_SUITE_P(
    Scalars, ConfigRejects,
    ::testing::Values(
        BadCase{R"({"capacity": 1000})",
                "capacity: expected a power of two from 1024 to 16777216, got 1000"},
        BadCase{R"({"capacity": 512})",
                "capacity: expected a power of two from 1024 to 16777216, got 512"},
        BadCase{R"({"capacity": 33554432})",
                "capacity: expected a power of two from 1024 to 16777216, got 33554432"},
        BadCase{R"({"capacity": 8589934592})",
                "capacity: expected a power of two from 1024 to 16777216, got 8589934592"},
        BadCase{R"({"capacity": 1024.0})", "capacity: expected a non-negative integer, got 1024.0"},
        BadCase{R"({"capacity": "1024"})",
                R"(capacity: expected a non-negative integer, got "1024")"},
        BadCase{R"({"policy_capacity": 32})",
                "policy_capacity: expected a power of two from 64 to 1048576, got 32"},
        BadCase{R"({"policy_capacity": 100})",
                "policy_capacity: expected a power of two from 64 to 1048576, got 100"},
        BadCase{R"({"policy_capacity": 2097152})",
                "policy_capacity: expected a power of two from 64 to 1048576, got 2097152"},
        BadCase{R"({"new_key_budget": 16777216})",
                "new_key_budget: expected 0 (no budget) to 16777215 new keys per minute, got "
                "16777216"},
        BadCase{
            R"({"shm_name": "eximguard"})",
            R"(shm_name: expected "/" followed by 1 to 200 of A-Z a-z 0-9 . _ -, got "eximguard")"},
        BadCase{R"({"shm_name": "/"})",
                R"(shm_name: expected "/" followed by 1 to 200 of A-Z a-z 0-9 . _ -, got "/")"},
        BadCase{R"({"shm_name": "/a b"})",
                R"(shm_name: expected "/" followed by 1 to 200 of A-Z a-z 0-9 . _ -, got "/a b")"},
        BadCase{R"({"shm_name": "/a/b"})",
                R"(shm_name: expected "/" followed by 1 to 200 of A-Z a-z 0-9 . _ -, got "/a/b")"},
        BadCase{R"({"shm_name": 7})", "shm_name: expected a string, got 7"},
        BadCase{R"({"fail_mode": "closed"})",
                R"(fail_mode: expected "open" or "defer", got "closed")"},
        BadCase{R"({"fail_mode": 1})", R"(fail_mode: expected "open" or "defer", got 1)"},
        BadCase{R"({"dry_run": "yes"})", R"(dry_run: expected true or false, got "yes")"},
        BadCase{R"({"state_dir": "var/lib"})",
                R"(state_dir: expected an absolute path, got "var/lib")"},
        BadCase{R"({"exim_log": ""})", R"(exim_log: expected an absolute path, got "")"},
        BadCase{R"({"exim_group": "no-such-group-eg"})",
                R"(exim_group: no group "no-such-group-eg" on this system)"},
        BadCase{R"({"exim_group": ""})", R"(exim_group: no group "" on this system)"},
        BadCase{R"({"shm": "/x"})", R"(shm: unknown key (did you mean "whm"?))"},
        BadCase{R"({"capacty": 1024})", R"(capacty: unknown key (did you mean "capacity"?))"},
        BadCase{R"({"whm": {"tokn": "x"}})", R"(whm.tokn: unknown key (did you mean "token"?))"},
        BadCase{R"({"whm": {"url": "https://x", "verify_tls": "no"}})",
                R"(whm.verify_tls: expected true or false, got "no")"}));

INSTANTIATE_TEST_SUITE_P(
    Keys, ConfigRejects,
    ::testing::Values(
        BadCase{R"({"whitelist": ""})", R"(whitelist: expected a list of strings, got "")"},
        BadCase{R"({"whitelist": ["a@b", 5]})", "whitelist[1]: expected a string, got 5"},
        BadCase{R"({"whitelist": [""]})", "whitelist[0]: empty key"},
        BadCase{R"({"blocklist": ["sender:"]})", "blocklist[0]: empty key"},
        BadCase{R"({"blocklist": ["uid:abc"]})",
                "blocklist[0]: expected uid:N with N a decimal uid"},
        BadCase{R"({"blocklist": ["uid:"]})", "blocklist[0]: expected uid:N with N a decimal uid"},
        BadCase{R"({"blocklist": ["uid:4294967296"]})", "blocklist[0]: uid above 4294967295"},
        BadCase{R"({"whitelist": ["a@b\nc"]})", "whitelist[0]: key contains a control character"},
        BadCase{R"({"overrides": {"": {"per_minute": 1}}})", R"(overrides."": empty key)"},
        BadCase{R"({"overrides": {"x@example.com": 5}})",
                R"(overrides."x@example.com": expected an object, got 5)"},
        BadCase{
            R"({"overrides": {"x@example.com": {"per_minute": "many"}}})",
            R"(overrides."x@example.com".per_minute: expected a non-negative integer, got "many")"},
        BadCase{R"({"overrides": {"x@example.com": {"per_day": 5}}})",
                R"(overrides."x@example.com".per_day: unknown key)"},
        BadCase{R"({"overrides": []})", "overrides: expected an object, got []"},
        BadCase{R"({"whitelist": ["Spam@Example.com"], "blocklist": ["spam@example.com"]})",
                R"(blocklist[0]: "spam@example.com" is also whitelisted (whitelist[0]))"},
        BadCase{R"({"whitelist": ["x", "/home/u/www/"], "blocklist": ["/home/u/www"]})",
                R"(blocklist[0]: "/home/u/www" is also whitelisted (whitelist[1]))"},
        BadCase{R"({"whitelist": ["uid:7"], "blocklist": ["uid:007"]})",
                R"(blocklist[0]: "uid:007" is also whitelisted (whitelist[0]))"},
        BadCase{R"({"overrides": {"a@b.c": {}, "A@B.C": {}}})",
                R"(overrides."A@B.C": the same key as overrides."a@b.c")"}));

INSTANTIATE_TEST_SUITE_P(
    Document, ConfigRejects,
    ::testing::Values(
        BadCase{"{\n  \"capacity\": 1024,\n  \"dry_run\": }\n",
                "invalid JSON at line 3, column 14: syntax error while parsing value - "
                "unexpected '}'; expected '[', '{', or a literal"},
        BadCase{"",
                "invalid JSON at line 1, column 1: syntax error while parsing value - "
                "unexpected end of input; expected '[', '{', or a literal"},
        BadCase{"{\"a\": \"\xff\"}",
                "invalid JSON at line 1, column 8: syntax error while parsing value - invalid "
                "string: ill-formed UTF-8 byte; last read: '\"\\xff'"},
        BadCase{"[1, 2]", "expected a JSON object at the top level, got [1,2]"},
        BadCase{R"({"limits": {"sender": {"per_minute": 1, "per_minute": 2}}})",
                "limits.sender.per_minute: duplicate key"}));

// ---- Validation: everything at once ---------------------------------------------------------

TEST(ConfigValidation, ReportsEveryErrorInFileOrder) {
  const Errors errors = ErrorsOf(R"({
    "shm_name": "nope",
    "capacity": 3000,
    "limits": { "sendr": {"per_minute": 1},
                "sender": {"per_minute": "ten", "per_hour": -5},
                "uid": {"per_minute": 99999999999} },
    "fail_mode": "closed",
    "overrides": { "": {"per_minute": 1}, "big@example.com": {"per_minute": [] } },
    "whitelist": ["ok@example.com", "", "/home/u/x/"],
    "blocklist": ["OK@example.com", "uid:x", "/home/u/x"],
    "telegrm": {}
  })");
  EXPECT_EQ(
      errors,
      (Errors{
          E(R"(shm_name: expected "/" followed by 1 to 200 of A-Z a-z 0-9 . _ -, got "nope")"),
          E("capacity: expected a power of two from 1024 to 16777216, got 3000"),
          E(R"(limits.sendr: unknown key (did you mean "sender"?))"),
          E(R"(limits.sender.per_minute: expected a non-negative integer, got "ten")"),
          E("limits.sender.per_hour: expected a non-negative integer, got -5"),
          E("limits.uid.per_minute: expected at most 4294967295, got 99999999999"),
          E(R"(fail_mode: expected "open" or "defer", got "closed")"),
          E(R"(overrides."": empty key)"),
          E(R"(overrides."big@example.com".per_minute: expected a non-negative integer, got [])"),
          E("whitelist[1]: empty key"),
          E("blocklist[1]: expected uid:N with N a decimal uid"),
          E(R"(telegrm: unknown key (did you mean "telegram"?))"),
          E(R"(blocklist[0]: "OK@example.com" is also whitelisted (whitelist[0]))"),
          E(R"(blocklist[2]: "/home/u/x" is also whitelisted (whitelist[2]))"),
      }));
}

TEST(ConfigValidation, ShmNameOfTwoHundredCharactersIsTheLongestAccepted) {
  const std::string name200 = "/" + std::string(200, 'a');
  EXPECT_EQ(Valid(R"({"shm_name": ")" + name200 + R"("})").shm_name, name200);
  EXPECT_EQ(ErrorsOf(R"({"shm_name": "/)" + std::string(201, 'a') + R"("})").size(), 1u);
}

TEST(ConfigValidation, BoundariesAreAccepted) {
  const Config c = Valid(
      R"({"capacity": 16777216, "policy_capacity": 1048576,
          "limits": {"sender": {"per_minute": 4294967295, "per_hour": 0}}})");
  EXPECT_EQ(c.capacity, 16777216u);
  EXPECT_EQ(c.policy_capacity, 1048576u);
  EXPECT_EQ(c.limits[0].per_minute, 4294967295u);
  EXPECT_EQ(c.limits[0].per_hour, 0u);
  EXPECT_EQ(Valid(R"({"capacity": 1024, "policy_capacity": 64})").capacity, 1024u);
  EXPECT_EQ(Valid(R"({"limits": {"cwd": {"per_minute": -0}}})").limits[1].per_minute, 0u);
}

TEST(ConfigValidation, MorePolicyKeysThanHalfThePolicyCapacityAreRefused) {
  std::string list;
  for (int i = 0; i < 33; ++i) list += std::string(i ? "," : "") + "\"u" + std::to_string(i) + "\"";
  EXPECT_EQ(ErrorsOf(R"({"policy_capacity": 64, "whitelist": [)" + list + "]}"),
            Errors{E("policy_capacity: 64 holds at most 32 whitelist/blocklist/override keys, "
                     "the config has 33")});
  // Two spellings of one key count once.
  std::string list32;
  for (int i = 0; i < 32; ++i) list32 += "\"u" + std::to_string(i) + "\",";
  EXPECT_TRUE(
      ParseConfig(R"({"policy_capacity": 64, "whitelist": [)" + list32 + "\"U0\"]}", kPath).ok());
}

TEST(ConfigValidation, DuplicateKeysAnywhereAreReported) {
  EXPECT_EQ(ErrorsOf(R"({"dry_run": true, "whitelist": [{"a": 1, "a": 2}], "dry_run": false})"),
            (Errors{E("whitelist[0].a: duplicate key"), E("dry_run: duplicate key"),
                    E("whitelist[0]: expected a string, got {\"a\":2}")}));
}

// ---- The file --------------------------------------------------------------------------------

TEST(ConfigFile, ModeGivingGroupOrOthersAccessIsRefused) {
  TempDir dir;
  for (const mode_t mode : {0644, 0640, 0604, 0660, 0602, 0601, 0610, 0666}) {
    const std::string path = dir.File("c.json");
    WriteFile(path, "{}", mode);
    char octal[8];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
    EXPECT_EQ(LoadConfig(path).errors,
              Errors{"config " + path + ": mode " + octal +
                     " gives group or others access to it; run chmod 600 " + path});
  }
}

TEST(ConfigFile, FileOwnedBySomeoneElseIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown the file";
  TempDir dir;
  const std::string path = dir.File("c.json");
  WriteFile(path, "{}", 0600);
  ASSERT_EQ(chown(path.c_str(), 65534, static_cast<gid_t>(-1)), 0);
  EXPECT_EQ(LoadConfig(path).errors,
            Errors{"config " + path + ": owned by uid 65534, not root: run chown root " + path});
}

TEST(ConfigFile, OwnerOnlyModesAreAccepted) {
  TempDir dir;
  for (const mode_t mode : {0600, 0400, 0700}) {
    const std::string path = dir.File("c.json");
    WriteFile(path, R"({"dry_run": true})", mode);
    const ConfigResult r = LoadConfig(path);
    EXPECT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
    EXPECT_TRUE(r.config.dry_run);
    EXPECT_EQ(r.config.path, path);
  }
}

TEST(ConfigFile, BadModeAndBadContentAreBothReported) {
  TempDir dir;
  const std::string path = dir.File("c.json");
  WriteFile(path, R"({"dry_run": 1})", 0644);
  EXPECT_EQ(LoadConfig(path).errors,
            (Errors{"config " + path +
                        ": mode 0644 gives group or others access to it; run chmod "
                        "600 " +
                        path,
                    "config " + path + ": dry_run: expected true or false, got 1"}));
}

TEST(ConfigFile, MissingFileAndDirectoryAreRefused) {
  TempDir dir;
  const std::string missing = dir.File("none.json");
  EXPECT_EQ(LoadConfig(missing).errors,
            Errors{"config " + missing + ": cannot open: No such file or directory"});
  EXPECT_EQ(LoadConfig(dir.path()).errors, Errors{"config " + dir.path() + ": not a regular file"});
}

TEST(ConfigFile, LargerThanOneMebibyteIsRefused) {
  TempDir dir;
  const std::string path = dir.File("big.json");
  WriteFile(path, "{\"whitelist\": [\"" + std::string(1 << 20, 'a') + "\"]}");
  EXPECT_EQ(LoadConfig(path).errors, Errors{"config " + path + ": larger than 1 MiB"});
}

// ---- Key classification ----------------------------------------------------------------------

struct KeyCase {
  std::string written;
  KeyClass klass;
  std::string text;
};
void PrintTo(const KeyCase& c, std::ostream* os) {
  *os << ::testing::PrintToString(c.written);
}

class PolicyKeyClassifies : public ::testing::TestWithParam<KeyCase> {};

TEST_P(PolicyKeyClassifies, AsTheTableSeesIt) {
  PolicyKey key;
  std::string why;
  ASSERT_TRUE(ParsePolicyKey(GetParam().written, &key, &why)) << why;
  EXPECT_EQ(key.written, GetParam().written);
  EXPECT_EQ(key.klass, GetParam().klass);
  EXPECT_EQ(key.text, GetParam().text);
}

INSTANTIATE_TEST_SUITE_P(
    All, PolicyKeyClassifies,
    ::testing::Values(
        KeyCase{"user@example.com", KeyClass::kSender, "user@example.com"},
        KeyCase{"User@Example.COM", KeyClass::kSender, "User@Example.COM"},
        KeyCase{"cpaneluser", KeyClass::kSender, "cpaneluser"},
        KeyCase{"sender:a@b", KeyClass::kSender, "a@b"},
        KeyCase{"sender:/home/x", KeyClass::kSender, "/home/x"},
        KeyCase{"sender:uid:5", KeyClass::kSender, "uid:5"},
        KeyCase{"UID:5", KeyClass::kSender, "UID:5"}, KeyCase{"uid:1000", KeyClass::kUid, "1000"},
        KeyCase{"uid:0", KeyClass::kUid, "0"}, KeyCase{"uid:000", KeyClass::kUid, "0"},
        KeyCase{"uid:4294967295", KeyClass::kUid, "4294967295"},
        KeyCase{"/home/u/public_html", KeyClass::kCwd, "/home/u/public_html"},
        KeyCase{"/home/u/public_html///", KeyClass::kCwd, "/home/u/public_html"},
        KeyCase{"/", KeyClass::kCwd, "/"}, KeyCase{"//", KeyClass::kCwd, "/"},
        KeyCase{"j\xc3\xb6rg@example.com", KeyClass::kSender, "j\xc3\xb6rg@example.com"}));

TEST(PolicyKey, RefusesBadKeysWithReason) {
  PolicyKey key;
  std::string why;
  EXPECT_FALSE(ParsePolicyKey("", &key, &why));
  EXPECT_EQ(why, "empty key");
  EXPECT_FALSE(ParsePolicyKey("sender:", &key, &why));
  EXPECT_EQ(why, "empty key");
  EXPECT_FALSE(ParsePolicyKey("uid:-1", &key, &why));
  EXPECT_EQ(why, "expected uid:N with N a decimal uid");
  EXPECT_FALSE(ParsePolicyKey("uid:12345678901", &key, &why));
  EXPECT_EQ(why, "expected uid:N with N a decimal uid");
  EXPECT_FALSE(ParsePolicyKey("uid:9999999999", &key, &why));
  EXPECT_EQ(why, "uid above 4294967295");
  EXPECT_FALSE(ParsePolicyKey(std::string("a\0b", 3), &key, &why));
  EXPECT_EQ(why, "key contains a control character");
  EXPECT_FALSE(ParsePolicyKey("a\x7f", &key, &why));
  EXPECT_EQ(why, "key contains a control character");
}

TEST(PolicyKey, IdentityMatchesTheTablesNotionOfSameKey) {
  auto id = [](const std::string& w) {
    PolicyKey k;
    std::string why;
    EXPECT_TRUE(ParsePolicyKey(w, &k, &why)) << w;
    return Identity(k);
  };
  EXPECT_EQ(id("A@B.c"), id("sender:a@b.C"));
  EXPECT_EQ(id("/home/x/"), id("/home/x"));
  EXPECT_EQ(id("uid:01"), id("uid:1"));
  EXPECT_NE(id("/Home/x"), id("/home/x"));  // directories are case-sensitive
  EXPECT_NE(id("sender:/home/x"), id("/home/x"));
  EXPECT_NE(id("sender:uid:1"), id("uid:1"));
}

// ---- Showing the config ----------------------------------------------------------------------

TEST(ConfigShow, DefaultsAreFilledInInTableOrder) {
  const Config c = Valid("{}");
  const std::string expected =
      R"({"shm_name":"/eximguard","state_dir":"/var/lib/eximguard",)"
      R"("exim_log":"/var/log/exim_mainlog","exim_group":")" +
      DefaultEximGroup() +
      R"(","capacity":65536,"policy_capacity":16384,"new_key_budget":200,"dry_run":false,)"
      R"("fail_mode":"open","limits":{"sender":{"per_minute":8,)"
      R"("per_hour":100},"cwd":{"per_minute":5,"per_hour":60},)"
      R"("uid":{"per_minute":20,"per_hour":300}},"overrides":{},)"
      R"("whitelist":[],"blocklist":[],"relay_hosts":["127.0.0.1","::1"],"dovecot_log":"",)"
      R"("http_proxy":"",)"
      R"("log_utc":false,"count_internal":false,"local_domains":[],)"
      R"("local_domains_file":"/etc/localdomains","local_domains_from_exim":false,)"
      R"("notify_only":false,)"
      R"("retention_days":30,"detectors":{"max_ips_per_hour":3,)"
      R"("ignore_loopback_ips":true,"max_logins_per_hour":100,)"
      R"("auth_failures":5,"auth_failure_seconds":300,)"
      R"("bounce_min_recipients":20,"bounce_percent":50,"bounce_min_domains":5,)"
      R"("repeated_subject_recipients":50,)"
      R"("repeated_subject_min_messages":2,"cooldown_seconds":3600,)"
      R"("throttled_refused":20,"throttled_seconds":600},)"
      R"("actions":{"rules":{)"
      R"("rate_per_minute":["block","hold_outgoing","command"],)"
      R"("rate_per_hour":["block","hold_outgoing","command"],)"
      R"("many_ips":["block","hold_outgoing","command"],)"
      R"("many_logins":["block","hold_outgoing","command"],)"
      R"("auth_failures":["firewall","command"],)"
      R"("bounce_storm":["block","hold_outgoing","command"],)"
      R"("repeated_subject":["block","hold_outgoing","command"],)"
      R"("throttled":["command"]},)"
      R"("command":[],"firewall_command":[],)"
      R"("exim_command":["/usr/sbin/exim"],)"
      R"("max_auto_suspensions_per_hour":10,"protect":[],"firewall_allow":[],)"
      R"("block_minutes":{"rate_per_minute":60,"rate_per_hour":120,"many_ips":240,)"
      R"("many_logins":240,"auth_failures":60,"bounce_storm":240,"repeated_subject":240,)"
      R"("throttled":60},"timeout_seconds":10},)"
      R"("whm":{"url":"https://127.0.0.1:2087","token":"","user":"root",)"
      R"("ca_file":"","verify_tls":true,"timeout_seconds":10,"retries":3},)"
      R"("notify":{"email":[],"sendmail":"/usr/sbin/sendmail","from":"",)"
      R"("webhook_url":"","webhook_ca_file":"","digest_after":5,)"
      R"("digest_seconds":60},)"
      R"("telegram":{"api_url":"https://api.telegram.org","token":"",)"
      R"("admin_ids":[],"notify_chat_id":"","ca_file":"",)"
      R"("poll_seconds":30},)"
      R"("slack":{"api_url":"https://slack.com/api","bot_token":"",)"
      R"("app_token":"","admin_ids":[],"notify_channel":"","ca_file":""},)"
      R"("dovecot_policy":{"enabled":false,"listen":"127.0.0.1:8744",)"
      R"("api_header":"X-API-Key","api_secret":"","failures":5,)"
      R"("failure_seconds":300,"block_seconds":900,"account_ips":5,)"
      R"("tarpit_seconds":3,"trusted_seconds":3600,"exempt_loopback":true,)"
      R"("allow_ips":[]}})";
  EXPECT_EQ(ConfigToJson(c).dump(), expected);
}

TEST(ConfigEngine, EngineKeysAreReadAndChecked) {
  const Config c = Valid(R"({"dovecot_log": "/var/log/dovecot.log", "count_internal": true,
      "local_domains": ["Example.COM"], "notify_only": true, "retention_days": 7,
      "detectors": {"max_ips_per_hour": 5, "bounce_percent": 70, "cooldown_seconds": 600},
      "actions": {"rules": {"rate_per_hour": ["command", "block"]},
                  "command": ["/usr/local/bin/on-incident", "-v"], "timeout_seconds": 30}})");
  EXPECT_EQ(c.dovecot_log, "/var/log/dovecot.log");
  EXPECT_TRUE(c.count_internal);
  EXPECT_EQ(c.local_domains, std::vector<std::string>{"example.com"});
  EXPECT_TRUE(c.notify_only);
  EXPECT_EQ(c.retention_days, 7u);
  EXPECT_EQ(c.detectors.max_ips_per_hour, 5u);
  EXPECT_EQ(c.detectors.bounce_percent, 70u);
  EXPECT_EQ(c.detectors.cooldown_seconds, 600u);
  EXPECT_EQ(c.detectors.auth_failures, 5u);                           // untouched: the default
  EXPECT_TRUE(RuleHasAction(c.actions, "rate_per_hour", "block"));    // written order normalized:
  EXPECT_TRUE(RuleHasAction(c.actions, "rate_per_hour", "command"));  // block first
  EXPECT_FALSE(RuleHasAction(c.actions, "rate_per_hour", "hold_outgoing"));
  EXPECT_TRUE(RuleHasAction(c.actions, "rate_per_minute", "hold_outgoing"));  // default kept
  EXPECT_FALSE(RuleHasAction(c.actions, "auth_failures", "block"));
  EXPECT_EQ(c.actions.command.size(), 2u);
  EXPECT_EQ(c.actions.timeout_seconds, 30u);
}

TEST(ConfigEngine, BadEngineKeysNameTheKeyAndTheReason) {
  const ConfigResult r = ParseConfig(
      R"({"retention_days": 0, "detectors": {"bounce_percent": 100, "max_ips": 3},
          "actions": {"rules": {"rate_per_day": ["block"], "many_ips": ["nuke"]},
                      "command": ["on-incident"],
                      "timeout_seconds": 0},
          "local_domains": ["bad domain"], "dovecot_log": "relative.log"})",
      "/etc/eg.json");
  const std::vector<std::string> want = {
      "config /etc/eg.json: retention_days: expected 1 to 3650 days, got 0",
      "config /etc/eg.json: detectors.bounce_percent: expected a percentage from 0 to 99, got 100",
      "config /etc/eg.json: detectors.max_ips: unknown key",
      "config /etc/eg.json: actions.rules.rate_per_day: unknown rule \"rate_per_day\" (known: "
      "rate_per_minute, rate_per_hour, many_ips, many_logins, auth_failures, bounce_storm, "
      "repeated_subject, throttled)",
      "config /etc/eg.json: actions.rules.many_ips[0]: unknown action \"nuke\" (known: block, "
      "suspend_outgoing, hold_outgoing, suspend_login, suspend_account_outgoing, "
      "hold_account_outgoing, suspend_account, freeze_queue, firewall, command)",
      "config /etc/eg.json: actions.command: the program (first element) must be an absolute "
      "path, got \"on-incident\"",
      "config /etc/eg.json: actions.timeout_seconds: expected 1 to 600 seconds, got 0",
      "config /etc/eg.json: local_domains[0]: expected a domain name, got \"bad domain\"",
      "config /etc/eg.json: dovecot_log: expected an absolute path, got \"relative.log\""};
  EXPECT_EQ(r.errors, want);
}

TEST(ConfigShow, OverridesShowTheirEffectiveLimitsAndKeysAsWritten) {
  const Config c = Valid(
      R"({"limits": {"cwd": {"per_minute": 3}}, "overrides": {"/home/u/": {"per_hour": 7}},
          "whitelist": ["Sender:x"], "blocklist": ["uid:0010"]})");
  const nlohmann::ordered_json j = ConfigToJson(c);
  EXPECT_EQ(j["overrides"].dump(), R"({"/home/u/":{"per_minute":3,"per_hour":7}})");
  EXPECT_EQ(j["whitelist"].dump(), R"(["Sender:x"])");
  EXPECT_EQ(j["blocklist"].dump(), R"(["uid:0010"])");
}

TEST(ConfigShow, RoundTripsThroughTheParser) {
  const Config c = Valid(R"({
    "shm_name": "/eg-x", "capacity": 2048, "dry_run": true, "fail_mode": "defer",
    "limits": {"uid": {"per_minute": 0}},
    "overrides": {"newsletter@example.com": {"per_minute": 50, "per_hour": 5000}, "uid:5": {}},
    "whitelist": ["postmaster@example.com", "/home/acct/public_html/newsletter"],
    "blocklist": ["bad@example.com"]})");
  const std::string shown = ConfigToJson(c).dump(2);
  const Config again = Valid(shown);
  EXPECT_EQ(ConfigToJson(again).dump(2), shown);
}

TEST(ConfigShow, SecretKeyNames) {
  for (const char* name : {"token", "bot_token", "api_token", "password", "secret", "smtp_password",
                           "signing_secret"}) {
    EXPECT_TRUE(IsSecretKey(name)) << name;
  }
  for (const char* name :
       {"tokens", "token_file", "user", "secretary", "base_url", "", "_tokenx"}) {
    EXPECT_FALSE(IsSecretKey(name)) << name;
  }
}

TEST(ConfigTalk, WhmNotifyTelegramSlackAreReadAndChecked) {
  const Config c = Valid(R"({
    "whm": {"url": "https://server.example.com:2087/", "token": "ABC123DEF", "user": "reseller",
            "ca_file": "/etc/eximguard/whm.pem", "verify_tls": true, "retries": 5},
    "notify": {"email": ["ops@example.com"], "webhook_url": "https://hooks.example.com/x",
               "digest_after": 3, "digest_seconds": 120},
    "telegram": {"token": "123456:AAH-x_y", "admin_ids": [111, -222], "notify_chat_id": -1001234},
    "slack": {"bot_token": "xoxb-1-2", "app_token": "xapp-1-A", "admin_ids": ["U024BE7LH"],
              "notify_channel": "C123"},
    "actions": {"firewall_command": ["/usr/sbin/csf", "-d", "{ip}", "eximguard"],
                "max_auto_suspensions_per_hour": 0}})");
  EXPECT_EQ(c.whm.url, "https://server.example.com:2087");  // trailing slash dropped
  EXPECT_EQ(c.whm.token, "ABC123DEF");
  EXPECT_EQ(c.whm.user, "reseller");
  EXPECT_EQ(c.whm.retries, 5u);
  EXPECT_EQ(c.notify.email, std::vector<std::string>{"ops@example.com"});
  EXPECT_EQ(c.notify.digest_after, 3u);
  EXPECT_EQ(c.telegram.admin_ids, (std::vector<int64_t>{111, -222}));
  EXPECT_EQ(c.telegram.notify_chat_id, "-1001234");
  EXPECT_EQ(c.slack.admin_ids, std::vector<std::string>{"U024BE7LH"});
  EXPECT_EQ(c.actions.firewall_command.size(), 4u);
  EXPECT_EQ(c.actions.max_auto_suspensions_per_hour, 0u);

  // `config show` masks every token.
  nlohmann::ordered_json shown = ConfigToJson(c);
  MaskSecrets(shown);
  const std::string text = shown.dump();
  for (const char* secret : {"ABC123DEF", "123456:AAH", "xoxb-1-2", "xapp-1-A"}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << secret;
  }
  EXPECT_EQ(shown["whm"]["token"], "********");
}

TEST(ConfigTalk, BadValuesNameTheKeyAndNeverShowASecret) {
  const ConfigResult r = ParseConfig(R"({
    "whm": {"url": "ftp://x", "token": "abc def/../SECRETVALUE", "timeout_seconds": 0},
    "notify": {"email": ["not-an-address"], "webhook_url": "hooks.example.com"},
    "telegram": {"admin_ids": ["111"], "notify_chat_id": "chat room"},
    "slack": {"admin_ids": ["alice"]},
    "actions": {"firewall_command": ["/usr/sbin/csf", "-d"]}})",
                                     "/etc/eg.json");
  const std::vector<std::string> want = {
      "config /etc/eg.json: whm.url: expected an http:// or https:// URL, got \"ftp://x\"",
      "config /etc/eg.json: whm.token: may hold only letters, digits and - _ : . (value not shown)",
      "config /etc/eg.json: whm.timeout_seconds: expected 1 to 300, got 0",
      "config /etc/eg.json: notify.email[0]: expected an email address, got \"not-an-address\"",
      "config /etc/eg.json: notify.webhook_url: expected an http:// or https:// URL, got "
      "\"********\"",
      "config /etc/eg.json: telegram.admin_ids[0]: expected a Telegram user id (an integer), got "
      "\"111\"",
      "config /etc/eg.json: telegram.notify_chat_id: expected a chat id (an integer) or "
      "@channelname, got \"chat room\"",
      "config /etc/eg.json: slack.admin_ids[0]: expected a Slack user id such as \"U024BE7LH\", "
      "got \"alice\"",
      "config /etc/eg.json: actions.firewall_command: no argument holds {ip} (where the IP goes)",
  };
  EXPECT_EQ(r.errors, want);
  for (const std::string& e : r.errors) EXPECT_EQ(e.find("SECRETVALUE"), std::string::npos);
}

TEST(ConfigDovecotPolicy, KeysAreReadCheckedAndTheSecretMasked) {
  const Config c = Valid(R"({
    "detectors": {"auth_failures": 9, "auth_failure_seconds": 600},
    "dovecot_policy": {"enabled": true, "listen": "[::1]:9000", "api_header": "Authorization",
                       "api_secret": "Basic ZG92ZWNvdDpzM2NyZXQ=", "block_seconds": 60,
                       "account_ips": 4, "tarpit_seconds": 2, "trusted_seconds": 0,
                       "exempt_loopback": false, "allow_ips": ["192.0.2.0/24", "2001:db8::1"]}})");
  const DovecotPolicyConfig& d = c.dovecot_policy;
  EXPECT_TRUE(d.enabled);
  EXPECT_EQ(d.listen, "[::1]:9000");
  EXPECT_EQ(d.api_header, "Authorization");
  EXPECT_EQ(d.api_secret, "Basic ZG92ZWNvdDpzM2NyZXQ=");
  EXPECT_EQ(d.block_seconds, 60u);
  EXPECT_EQ(d.account_ips, 4u);
  EXPECT_EQ(d.tarpit_seconds, 2u);
  EXPECT_EQ(d.trusted_seconds, 0u);
  EXPECT_FALSE(d.exempt_loopback);
  EXPECT_EQ(d.allow_ips, (std::vector<std::string>{"192.0.2.0/24", "2001:db8::1"}));
  // Unset thresholds follow the detectors' auth_failures and auth_failure_seconds ...
  EXPECT_EQ(DovecotFailures(c), 9u);
  EXPECT_EQ(DovecotFailureSeconds(c), 600u);
  // ... set ones do not, whichever comes first in the file.
  const Config set = Valid(R"({"dovecot_policy": {"failures": 3, "failure_seconds": 60},
                               "detectors": {"auth_failures": 9}})");
  EXPECT_EQ(DovecotFailures(set), 3u);
  EXPECT_EQ(DovecotFailureSeconds(set), 60u);
  // The detectors' value is brought into the policy's 1..100.
  EXPECT_EQ(DovecotFailures(Valid(R"({"detectors": {"auth_failures": 100000}})")), 100u);
  EXPECT_EQ(DovecotFailures(Valid(R"({"detectors": {"auth_failures": 0}})")), 1u);

  nlohmann::ordered_json shown = ConfigToJson(c);
  MaskSecrets(shown);
  EXPECT_EQ(shown["dovecot_policy"]["api_secret"], "********");
  EXPECT_EQ(shown.dump().find("ZG92"), std::string::npos);
  EXPECT_EQ(shown["dovecot_policy"]["failures"], 9);
  // Round trip: what `config show` prints (unmasked) parses to the same config.
  const std::string text = ConfigToJson(c).dump(2);
  EXPECT_EQ(ConfigToJson(Valid(text)).dump(2), text);
}

TEST(ConfigDovecotPolicy, BadValuesNameTheKeyAndNeverShowTheSecret) {
  const ConfigResult r = ParseConfig(R"({"dovecot_policy": {
    "enabled": "yes", "listen": "0.0.0.0:8744", "api_header": "X API Key",
    "api_secret": "short#SECRETVALUE", "failures": 0, "failure_seconds": 5,
    "block_seconds": 0, "account_ips": 101, "tarpit_seconds": 16, "trusted_seconds": -1,
    "exempt_loopback": 1, "allow_ips": ["192.0.2.0/33", "example.com", 7], "allowips": []}})",
                                     "/etc/eg.json");
  const std::string p = "config /etc/eg.json: dovecot_policy.";
  const std::vector<std::string> want = {
      p + "enabled: expected true or false, got \"yes\"",
      p + "listen: must be a loopback address (127.0.0.0/8 or ::1): the policy server is for the "
          "local Dovecot only, got \"0.0.0.0:8744\"",
      p + "api_header: expected an HTTP header name such as \"X-API-Key\" or \"Authorization\", "
          "got \"X API Key\"",
      p + "api_secret: may hold only letters, digits, inner spaces and - _ . : + / = (value not "
          "shown)",
      p + "failures: expected 1 to 100, got 0",
      p + "failure_seconds: expected 12 to 86400, got 5",
      p + "block_seconds: expected 1 to 604800, got 0",
      p + "account_ips: expected 1 to 100, got 101",
      p + "tarpit_seconds: expected 1 to 15, got 16",
      p + "trusted_seconds: expected a non-negative integer, got -1",
      p + "exempt_loopback: expected true or false, got 1",
      p + "allow_ips[0]: prefix length 33 is longer than 32 bits, got \"192.0.2.0/33\"",
      p + "allow_ips[1]: expected an IP address or CIDR (such as 192.0.2.0/24), got "
          "\"example.com\"",
      p + "allow_ips[2]: expected a string, got 7",
      p + "allowips: unknown key (did you mean \"allow_ips\"?)",
  };
  EXPECT_EQ(r.errors, want);
  for (const std::string& e : r.errors) EXPECT_EQ(e.find("SECRETVALUE"), std::string::npos);
}

TEST(ConfigDovecotPolicy, EnabledNeedsASecretOfSixteenCharactersAndAFixedLoopbackPort) {
  EXPECT_EQ(ErrorsOf(R"({"dovecot_policy": {"enabled": true}})"),
            Errors{E("dovecot_policy.api_secret: required when dovecot_policy.enabled is true "
                     "(Dovecot sends it in auth_policy_server_api_header; nobody else may ask the "
                     "policy server)")});
  EXPECT_EQ(ErrorsOf(R"({"dovecot_policy": {"api_secret": "abc"}})"),
            Errors{E("dovecot_policy.api_secret: too short: at least 16 characters (value not "
                     "shown)")});
  EXPECT_EQ(ErrorsOf(R"({"dovecot_policy": {"listen": "127.0.0.1:0"}})"),
            Errors{E("dovecot_policy.listen: expected a port from 1 to 65535 (Dovecot's "
                     "auth_policy_server_url names it), got \"127.0.0.1:0\"")});
  EXPECT_EQ(ErrorsOf(R"({"dovecot_policy": {"listen": "192.168.1.5:8744"}})").size(), 1u);
  EXPECT_EQ(ErrorsOf(R"({"dovecot_policy": {"listen": "localhost:8744"}})").size(), 1u);
  // Disabled, no secret is needed; a loopback alias is fine.
  Valid(R"({"dovecot_policy": {"enabled": false, "listen": "127.0.0.53:8744"}})");
}

TEST(ConfigShow, MaskSecretsAtAnyDepth) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(R"({
    "token": "t0p", "shm_name": "/eximguard",
    "whm": {"api_token": "abc", "host": "h", "password": ""},
    "telegram": {"bots": [{"bot_token": 12345, "chat": 1}]},
    "slack": {"secret": {"nested": "kept"}}})");
  MaskSecrets(j);
  EXPECT_EQ(j.dump(), R"({"token":"********","shm_name":"/eximguard",)"
                      R"("whm":{"api_token":"********","host":"h","password":""},)"
                      R"("telegram":{"bots":[{"bot_token":"********","chat":1}]},)"
                      R"("slack":{"secret":{"nested":"kept"}}})");
}

TEST(ConfigProxy, HttpProxyIsValidatedAndReachesEveryHttpClient) {
  EXPECT_EQ(Valid("{}").http_proxy, "");
  const Config c = Valid(R"({"http_proxy": "http://proxy.example:3128"})");
  EXPECT_EQ(c.http_proxy, "http://proxy.example:3128");
  EXPECT_EQ(c.whm.proxy, c.http_proxy);
  EXPECT_EQ(c.notify.proxy, c.http_proxy);
  EXPECT_EQ(c.telegram.proxy, c.http_proxy);
  EXPECT_EQ(c.slack.proxy, c.http_proxy);
  for (const char* bad : {R"({"http_proxy": "ftp://p:21"})", R"({"http_proxy": "http://"})",
                          R"({"http_proxy": "proxy:3128"})", R"({"http_proxy": 3128})",
                          R"({"http_proxy": "http://u:SECRETPW@p:1 x"})"}) {
    const Errors e = ErrorsOf(bad);
    ASSERT_EQ(e.size(), 1u) << bad;
    EXPECT_EQ(e[0].rfind(E("http_proxy: "), 0), 0u) << e[0];
    EXPECT_EQ(e[0].find("SECRETPW"), std::string::npos) << e[0];
  }
}

TEST(ConfigShow, EveryUrlShowsOnlySchemeHostAndPort) {
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(R"({
    "notify": {"webhook_url": "https://hooks.example.com/services/T0/B0/SECRETPATH?k=SECRETQ"},
    "whm": {"url": "https://root:SECRETPW@server.example.com:2087"}})");
  MaskSecrets(j);
  const std::string text = j.dump();
  for (const char* secret : {"SECRETPATH", "SECRETQ", "SECRETPW", "services"}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << secret << " in " << text;
  }
  EXPECT_EQ(j["notify"]["webhook_url"], "https://hooks.example.com/\u2026");
  EXPECT_EQ(j["whm"]["url"], "https://server.example.com:2087/\u2026");
}

}  // namespace
}  // namespace eg::sidecar
