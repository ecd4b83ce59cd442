// limits_test.cpp - limits set at run time: the state store's `limits` table (the migration of a
// version-1 file, SetLimit/ListLimits/RemoveLimit and their audit rows), WithStoredLimits(), the
// VALUE syntax (limit_value.h), and the built `eximguard set` / `info` against a real shared
// table, a real store and a fake WHM (tests/fakes/fake_http_server.h).

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <ctime>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fake_http_server.h"
#include "limit_value.h"
#include "policy_from_state.h"
#include "sidecar_test_util.h"
#include "state_store.h"
#include "time_text.h"

namespace eg::sidecar {
namespace {

using eg::testing::FakeHttpServer;
using eg::testing::FakeRequest;
using eg::testing::FakeResponse;
using testing::CliResult;
using testing::RunCli;
using testing::TempDir;

constexpr int64_t kT0 = 1'780'000'000;

std::unique_ptr<StateStore> MustOpen(const std::string& dir) {
  std::string err;
  std::unique_ptr<StateStore> db = StateStore::Open(dir, &err);
  EXPECT_NE(db, nullptr) << err;
  return db;
}

bool HasTable(const std::string& db_path, const std::string& table) {
  sqlite3* raw = nullptr;
  if (sqlite3_open(db_path.c_str(), &raw) != SQLITE_OK) return false;
  const std::string sql = "SELECT 1 FROM sqlite_master WHERE type='table' AND name='" + table + "'";
  bool found = false;
  sqlite3_exec(
      raw, sql.c_str(),
      [](void* f, int, char**, char**) {
        *static_cast<bool*>(f) = true;
        return 0;
      },
      &found, nullptr);
  sqlite3_close(raw);
  return found;
}

StoredLimit MakeLimit(KeyClass klass, const std::string& key, std::optional<uint32_t> per_minute,
                      std::optional<uint32_t> per_hour, int64_t time = kT0) {
  StoredLimit l;
  l.key_class = klass;
  l.key = key;
  l.per_minute = per_minute;
  l.per_hour = per_hour;
  l.set_by = "cli:root";
  l.time = time;
  return l;
}

// ---- the store ---------------------------------------------------------------------------------

// The schema of an eximguard of version 1 (as it shipped; a fixture, not the current schema).
constexpr const char* kVersion1Schema = R"sql(
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1);
CREATE TABLE incidents (id INTEGER PRIMARY KEY, key TEXT NOT NULL, key_class TEXT NOT NULL
  CHECK (key_class IN ('sender', 'cwd', 'uid', 'ip')), rule TEXT NOT NULL,
  window_start INTEGER NOT NULL, window_end INTEGER NOT NULL, time INTEGER NOT NULL,
  count INTEGER NOT NULL, evidence TEXT NOT NULL, action TEXT NOT NULL);
CREATE INDEX incidents_key_rule_time ON incidents (key, rule, time);
CREATE INDEX incidents_time ON incidents (time);
CREATE TABLE blocks (id INTEGER PRIMARY KEY, key TEXT NOT NULL, key_class TEXT NOT NULL
  CHECK (key_class IN ('sender', 'cwd', 'uid')), kind TEXT NOT NULL CHECK (kind <> ''),
  since INTEGER NOT NULL, reason TEXT NOT NULL, by TEXT NOT NULL,
  active INTEGER NOT NULL CHECK (active IN (0, 1)), removed_at INTEGER, removed_by TEXT);
CREATE UNIQUE INDEX blocks_one_active ON blocks (key_class, key, kind) WHERE active = 1;
CREATE TABLE whitelist (key TEXT PRIMARY KEY, added_by TEXT NOT NULL, time INTEGER NOT NULL,
  note TEXT NOT NULL);
CREATE TABLE checkpoints (name TEXT PRIMARY KEY, dev INTEGER NOT NULL, ino INTEGER NOT NULL,
  offset INTEGER NOT NULL, last_line_hash INTEGER NOT NULL);
CREATE TABLE audit (id INTEGER PRIMARY KEY, time INTEGER NOT NULL, who TEXT NOT NULL,
  action TEXT NOT NULL, key TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX audit_time ON audit (time);
INSERT INTO incidents VALUES (1, 'a@example.com', 'sender', 'rate_per_minute', 1779999940,
  1780000000, 1780000000, 9, '{}', 'block');
INSERT INTO blocks VALUES (1, 'a@example.com', 'sender', 'block', 1780000000, 'spam',
  'eximguard', 1, NULL, NULL);
INSERT INTO whitelist VALUES ('b@example.com', 'cli:root', 1780000000, 'vip');
)sql";

TEST(StoredLimits, MigratesAVersion1DatabaseKeepingItsRows) {
  TempDir tmp;
  std::string err;
  const std::string path = tmp.File(kStateDbName);
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
    char* msg = nullptr;
    ASSERT_EQ(sqlite3_exec(raw, kVersion1Schema, nullptr, nullptr, &msg), SQLITE_OK)
        << (msg ? msg : "");
    sqlite3_close(raw);
    chmod(path.c_str(), 0600);
  }
  ASSERT_FALSE(HasTable(path, "limits"));

  auto db = MustOpen(tmp.path());
  ASSERT_NE(db, nullptr);
  int version = 0;
  ASSERT_TRUE(db->SchemaVersion(&version, &err)) << err;
  EXPECT_EQ(version, kSchemaVersion);
  EXPECT_TRUE(HasTable(path, "limits"));
  std::vector<StoredIncident> incidents;
  ASSERT_TRUE(db->ListIncidents(0, 0, &incidents, &err)) << err;
  ASSERT_EQ(incidents.size(), 1u);
  EXPECT_EQ(incidents[0].key, "a@example.com");
  EXPECT_EQ(incidents[0].recorded_at, kT0);  // an old row counts as recorded at its log time
  std::vector<StoredBlock> blocks;
  ASSERT_TRUE(db->ActiveBlocks(&blocks, &err)) << err;
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].reason, "spam");
  std::vector<WhitelistEntry> wl;
  ASSERT_TRUE(db->ListWhitelist(&wl, &err)) << err;
  ASSERT_EQ(wl.size(), 1u);
  EXPECT_EQ(wl[0].note, "vip");
  std::vector<StoredLimit> limits;
  ASSERT_TRUE(db->ListLimits(&limits, &err)) << err;
  EXPECT_TRUE(limits.empty());
  EXPECT_TRUE(db->SetLimit(MakeLimit(KeyClass::kSender, "a@example.com", 2, {}), &err)) << err;
}

TEST(StoredLimits, SetMergesWindowsAndRemoveDropsTheRowEachAudited) {
  TempDir tmp;
  auto db = MustOpen(tmp.path());
  std::string err;
  ASSERT_TRUE(db->SetLimit(MakeLimit(KeyClass::kSender, "a@example.com", 2, {}), &err)) << err;
  ASSERT_TRUE(db->SetLimit(MakeLimit(KeyClass::kSender, "a@example.com", {}, 50, kT0 + 1), &err));
  ASSERT_TRUE(db->SetLimit(MakeLimit(KeyClass::kUid, "", 0, {}, kT0 + 2), &err));
  std::vector<StoredLimit> limits;
  ASSERT_TRUE(db->ListLimits(&limits, &err)) << err;
  ASSERT_EQ(limits.size(), 2u);
  EXPECT_EQ(limits[0].key_class, KeyClass::kSender);
  EXPECT_EQ(limits[0].key, "a@example.com");
  EXPECT_EQ(limits[0].per_minute, 2u);  // kept when only the hour was set
  EXPECT_EQ(limits[0].per_hour, 50u);
  EXPECT_EQ(limits[0].time, kT0 + 1);
  EXPECT_EQ(limits[1].key_class, KeyClass::kUid);
  EXPECT_EQ(limits[1].key, "");
  EXPECT_EQ(limits[1].per_minute, 0u);  // 0 (unlimited) is not "unset"
  EXPECT_FALSE(limits[1].per_hour.has_value());

  EXPECT_FALSE(db->SetLimit(MakeLimit(KeyClass::kSender, "x@example.com", {}, {}), &err));
  EXPECT_NE(err.find("per_minute or per_hour"), std::string::npos) << err;

  bool removed = false;
  ASSERT_TRUE(
      db->RemoveLimit(KeyClass::kSender, "a@example.com", kT0 + 3, "telegram:7", &removed, &err));
  EXPECT_TRUE(removed);
  ASSERT_TRUE(
      db->RemoveLimit(KeyClass::kSender, "a@example.com", kT0 + 4, "telegram:7", &removed, &err));
  EXPECT_FALSE(removed);
  ASSERT_TRUE(db->ListLimits(&limits, &err));
  ASSERT_EQ(limits.size(), 1u);

  std::vector<AuditEntry> audit;
  ASSERT_TRUE(db->ListAudit(0, 0, &audit, &err)) << err;
  ASSERT_EQ(audit.size(), 4u);  // 3 sets, 1 remove (the second removed nothing)
  EXPECT_EQ(audit[0].action, "set_limit");
  EXPECT_EQ(audit[0].who, "cli:root");
  EXPECT_EQ(audit[0].key, "a@example.com");
  EXPECT_EQ(audit[0].detail, "per_minute=2");
  EXPECT_EQ(audit[1].detail, "per_hour=50");
  EXPECT_EQ(audit[2].key, "uid (class default)");
  EXPECT_EQ(audit[3].action, "remove_limit");
  EXPECT_EQ(audit[3].who, "telegram:7");
}

// ---- WithStoredLimits, VALUE -------------------------------------------------------------------

PolicyKey Key(const std::string& written) {
  PolicyKey k;
  std::string why;
  EXPECT_TRUE(ParsePolicyKey(written, &k, &why)) << why;
  return k;
}

TEST(StoredLimits, WithStoredLimitsReplacesClassLimitsAndOverridesOrAddsThem) {
  Config c;                                // sender 8/100, cwd 5/60, uid 20/300
  c.exim_group = testing::OwnGroupName();  // for the round trip below
  c.overrides.push_back({Key("Big@Example.com"), 50, std::nullopt});
  c.overrides.push_back({Key("/home/u/public_html"), std::nullopt, 10});
  const std::vector<StoredLimit> stored = {
      MakeLimit(KeyClass::kSender, "", 3, {}),                   // class default, minute only
      MakeLimit(KeyClass::kSender, "big@example.com", {}, 500),  // same key as the override
      MakeLimit(KeyClass::kUid, "1000", 0, 7),                   // new
      MakeLimit(KeyClass::kSender, "/odd", 1, {}),  // a sender key that looks like a dir
  };
  const Config e = WithStoredLimits(c, stored);
  EXPECT_EQ(e.limits[0].per_minute, 3u);
  EXPECT_EQ(e.limits[0].per_hour, 100u);
  EXPECT_EQ(e.limits[2].per_minute, 20u);
  ASSERT_EQ(e.overrides.size(), 4u);
  EXPECT_EQ(LimitFor(e, Key("big@example.com")).per_minute, 50u);
  EXPECT_EQ(LimitFor(e, Key("big@example.com")).per_hour, 500u);
  EXPECT_EQ(LimitFor(e, Key("/home/u/public_html")).per_minute, 5u);  // untouched
  EXPECT_EQ(LimitFor(e, Key("uid:1000")).per_minute, 0u);
  EXPECT_EQ(LimitFor(e, Key("uid:1000")).per_hour, 7u);
  EXPECT_EQ(LimitFor(e, Key("sender:/odd")).per_minute, 1u);
  EXPECT_EQ(LimitFor(e, Key("sender:/odd")).per_hour, 100u);
  EXPECT_EQ(LimitFor(e, Key("other@example.com")).per_minute, 3u);  // the new class default
  EXPECT_EQ(e.overrides[2].key.written, "uid:1000");
  EXPECT_EQ(e.overrides[3].key.written, "sender:/odd");
  EXPECT_EQ(c.limits[0].per_minute, 8u);  // the original is left alone
  // The effective config still round-trips through the config's own syntax.
  const ConfigResult back = ParseConfig(ConfigToJson(e).dump(), "x.json");
  ASSERT_TRUE(back.ok()) << back.errors[0];
  EXPECT_EQ(back.config.overrides.size(), 4u);
}

TEST(StoredLimits, ParsesLimitValues) {
  LimitChange c;
  std::string why;
  ASSERT_TRUE(ParseLimitValue("2/min", &c, &why)) << why;
  EXPECT_EQ(c.per_minute, 2u);
  EXPECT_FALSE(c.per_hour.has_value());
  for (const char* v : {"5/minute", "per_minute=5", "5/m", "5/MIN"}) {
    ASSERT_TRUE(ParseLimitValue(v, &c, &why)) << v << ": " << why;
    EXPECT_EQ(c.per_minute, 5u) << v;
  }
  for (const char* v : {"7/hour", "7/h", "per_hour=7", "7/hr"}) {
    ASSERT_TRUE(ParseLimitValue(v, &c, &why)) << v << ": " << why;
    EXPECT_EQ(c.per_hour, 7u) << v;
    EXPECT_FALSE(c.per_minute.has_value()) << v;
  }
  ASSERT_TRUE(ParseLimitValue("0/min,100/hour", &c, &why)) << why;
  EXPECT_EQ(c.per_minute, 0u);
  EXPECT_EQ(c.per_hour, 100u);
  EXPECT_EQ(LimitValueText(c.per_minute, c.per_hour), "0/min,100/hour");
  ASSERT_TRUE(ParseLimitValue("default", &c, &why));
  EXPECT_TRUE(c.to_default);
  for (const char* v : {"0", "unlimited", "Unlimited"}) {  // the help's "0 = unlimited"
    ASSERT_TRUE(ParseLimitValue(v, &c, &why)) << v;
    EXPECT_EQ(c.per_minute, 0u) << v;
    EXPECT_EQ(c.per_hour, 0u) << v;
  }
  for (const char* v : {"", "2", "2/day", "-1/min", "x/min", "4294967296/min", "2/min,3/min",
                        "per_day=3", "default,2/min"}) {
    EXPECT_FALSE(ParseLimitValue(v, &c, &why)) << v;
    EXPECT_FALSE(why.empty()) << v;
  }
  EXPECT_EQ(LimitText({2, 0}), "2/minute, unlimited per hour");
}

// ---- the built program -------------------------------------------------------------------------

class LimitsCli : public testing::CliFixture {
 protected:
  static uint32_t Now() { return static_cast<uint32_t>(time(nullptr)); }
  CliResult Set(const std::string& key, const std::string& value) {
    return RunCli({"set", key, value, "--config", config_path_});
  }
};

TEST_F(LimitsCli, SetTakesEffectInTheTableAtOnceAndDefaultRestoresTheConfigs) {
  WriteConfig();  // sender: 8/minute, 100/hour
  CliResult r = Set("A@B.c", "2/min");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("sender a@b.c: set 2/min"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("effective limit: 2/minute, 100/hour (was 8/minute, 100/hour)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("published policy generation"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("undo: eximguard set A@B.c default"), std::string::npos) << r.out;

  auto seg = Open();
  ASSERT_TRUE(seg);
  const uint32_t now = Now();
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "a@b.c", 1, now), Verdict::kOk);
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "a@b.c", 1, now), Verdict::kOk);
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "a@b.c", 1, now), Verdict::kDefer);
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "other@b.c", 3, now), Verdict::kOk);

  // Persisted and audited.
  std::string err;
  auto store = MustOpen(dir_.File("state"));
  std::vector<StoredLimit> limits;
  ASSERT_TRUE(store->ListLimits(&limits, &err)) << err;
  ASSERT_EQ(limits.size(), 1u);
  EXPECT_EQ(limits[0].key, "a@b.c");
  EXPECT_EQ(limits[0].set_by.rfind("cli:", 0), 0u) << limits[0].set_by;

  // `config show` keeps its JSON and says the stored limit applies on top of the file.
  r = RunCli({"config", "show", "--config", config_path_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(nlohmann::json::parse(r.out, nullptr, false).is_discarded());
  EXPECT_NE(r.err.find("sender a@b.c 2/min (by cli:"), std::string::npos) << r.err;

  r = Set("a@b.c", "default");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("removed the limit set with `eximguard set` (2/min)"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("effective limit: 8/minute, 100/hour"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("undo: eximguard set a@b.c 2/min"), std::string::npos) << r.out;
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "a@b.c", 1, Now()), Verdict::kOk);
  ASSERT_TRUE(store->ListLimits(&limits, &err)) << err;
  EXPECT_TRUE(limits.empty());

  r = Set("a@b.c", "default");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("no limit was set"), std::string::npos) << r.out;
}

TEST_F(LimitsCli, SetSaysWhoIsOverTheNewLimitAlreadyAndWhyShowsTheSetLimit) {
  WriteConfig();                                 // sender: 8/minute, 100/hour
  ASSERT_EQ(Set("uid:1001", "0").exit_code, 0);  // "0 = unlimited", as the help says
  auto seg = Open();
  ASSERT_TRUE(seg);
  const uint32_t now = Now();
  ASSERT_EQ(Send(*seg, KeyClass::kSender, "shop@shop.test", 5, now), Verdict::kOk);
  ASSERT_EQ(Send(*seg, KeyClass::kSender, "quiet@shop.test", 1, now), Verdict::kOk);

  CliResult r = Set("shop@shop.test", "2/min");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("already at or over the new limit: 1 key: shop@shop.test (5/minute, "
                       "5/hour)"),
            std::string::npos)
      << r.out;
  r = Set("sender", "3/min");  // the class default: shop has its own 2/min, quiet is under 3
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("already at or over the new limit: 1 key: shop@shop.test"),
            std::string::npos)
      << r.out;
  r = Set("nobody@shop.test", "1/min");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("already at or over the new limit: 0 keys"), std::string::npos) << r.out;

  r = RunCli({"why", "shop@shop.test", "--config", config_path_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("limits: 2/minute, 100/hour"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("set with eximguard set: sender shop@shop.test 2/min (by cli:"),
            std::string::npos)
      << r.out;
  r = RunCli({"why", "uid:1001", "--config", config_path_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("limits: unlimited per minute, unlimited per hour"), std::string::npos)
      << r.out;
}

TEST_F(LimitsCli, SetAClassDefaultAndUnlimitedWindows) {
  WriteConfig();
  CliResult r = Set("sender", "1/min,0/hour");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("sender (class default): set 1/min,0/hour"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("effective limit: 1/minute, unlimited per hour"), std::string::npos)
      << r.out;
  auto seg = Open();
  ASSERT_TRUE(seg);
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "x@y.z", 1, Now()), Verdict::kOk);
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "x@y.z", 1, Now()), Verdict::kDefer);
  // A key's own limit beats the class default; 0/min lifts the minute window for it.
  r = Set("big@y.z", "0/min");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(Send(*seg, KeyClass::kSender, "big@y.z", 1, Now()), Verdict::kOk) << i;
  }
}

TEST_F(LimitsCli, RerunJudgesTheLogWithTheStoredLimits) {
  WriteConfig();
  const int64_t day = testing::DaysAgoAt(2, 10);  // 10:00 two days ago, local time
  testing::WriteFile(dir_.File("mainlog"),
                     LocalTimeText(day) +
                         " 1tABCD-000001-AB <= a@v.example H=(pc) [198.51.100.7]:5555 P=esmtpsa "
                         "A=dovecot_login:a@v.example S=900 T=\"hi\" for r1@far.example "
                         "r2@far.example r3@far.example\n");
  auto incidents = [&] {
    std::string err;
    std::vector<StoredIncident> out;
    auto store = MustOpen(dir_.File("state"));
    EXPECT_TRUE(store->ListIncidents(0, 0, &out, &err)) << err;
    return out;
  };
  CliResult r = RunCli({"rerun", testing::LocalDay(day), "--config", config_path_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(incidents().empty());  // 3 recipients: under the config's 8/minute
  ASSERT_EQ(Set("a@v.example", "2/min").exit_code, 0);
  r = RunCli({"rerun", testing::LocalDay(day), "--config", config_path_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<StoredIncident> now = incidents();
  ASSERT_EQ(now.size(), 1u) << r.err;
  EXPECT_EQ(now[0].key, "a@v.example");
  EXPECT_EQ(now[0].rule, "rate_per_minute");
}

TEST_F(LimitsCli, BadValueOrKeyIsRefusedWithAClearMessageAndChangesNothing) {
  WriteConfig();
  CliResult r = Set("a@b.c", "2/fortnight");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("set: VALUE \"2/fortnight\": expected N/min or N/hour"), std::string::npos)
      << r.err;
  r = Set("uid:abc", "2/min");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("key \"uid:abc\": expected uid:N"), std::string::npos) << r.err;
  std::string err;
  auto store = MustOpen(dir_.File("state"));
  std::vector<StoredLimit> limits;
  ASSERT_TRUE(store->ListLimits(&limits, &err)) << err;
  EXPECT_TRUE(limits.empty());
  r = RunCli({"set", "a@b.c", "--config", config_path_});  // VALUE missing
  EXPECT_EQ(r.exit_code, 2);
}

TEST_F(LimitsCli, InfoShowsTheOwnerFromWhmAndWhatEximguardKnows) {
  FakeHttpServer whm({.tls = true});
  whm.Handle([](const FakeRequest& q) {
    if (q.path == "/json-api/getdomainowner" && q.query.count("domain") &&
        q.query.at("domain") == "example.com") {
      return FakeResponse{200, R"({"data":{"user":"bobcp"},"metadata":{"result":1}})"};
    }
    return FakeResponse{404, "{}"};
  });
  WriteConfig(
      {{"whm", {{"url", whm.url()}, {"token", "s3cr3t-token"}, {"ca_file", whm.ca_file()}}}});
  ASSERT_EQ(Set("limited@example.com", "3/min").exit_code, 0);
  ASSERT_EQ(RunCli({"whitelist", "add", "vip@example.com", "--config", config_path_}).exit_code, 0);
  {
    std::string err;
    auto store = MustOpen(dir_.File("state"));
    StoredIncident recent;
    recent.key = "spam@example.com";
    recent.rule = "rate_per_minute";
    recent.time = time(nullptr) - 3600;
    recent.count = 42;
    StoredIncident old = recent;
    old.rule = "bounce_storm";
    old.time = time(nullptr) - 10 * 86400;
    StoredIncident elsewhere = recent;
    elsewhere.key = "spam@other.example";
    for (StoredIncident* i : {&recent, &old, &elsewhere}) {
      ASSERT_EQ(store->RecordIncident(i, 0, &err), RecordOutcome::kRecorded) << err;
    }
    StoredBlock block;  // (`suspend` would ask WHM too)
    block.key = "spam@example.com";
    block.since = time(nullptr);
    block.reason = "spam run";
    block.by = "cli:root";
    bool added = false;
    ASSERT_TRUE(store->AddBlock(block, &added, &err)) << err;
  }
  auto seg = Open();
  ASSERT_TRUE(seg);
  Send(*seg, KeyClass::kSender, "limited@example.com", 2, Now());

  CliResult r = RunCli({"info", "Example.com", "--config", config_path_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string& o = r.out;
  EXPECT_NE(o.find("domain example.com"), std::string::npos) << o;
  EXPECT_NE(o.find("owner: cPanel user bobcp"), std::string::npos) << o;
  EXPECT_NE(o.find("sender spam@example.com: block since"), std::string::npos) << o;
  EXPECT_NE(o.find("spam run"), std::string::npos) << o;
  EXPECT_NE(o.find("rate_per_minute sender spam@example.com: 42"), std::string::npos) << o;
  EXPECT_EQ(o.find("bounce_storm"), std::string::npos) << o;        // older than 7 days
  EXPECT_EQ(o.find("spam@other.example"), std::string::npos) << o;  // another domain
  EXPECT_NE(o.find("whitelisted: vip@example.com (by cli:"), std::string::npos) << o;
  EXPECT_NE(o.find("sender limited@example.com 3/min (by cli:"), std::string::npos) << o;
  EXPECT_NE(o.find("in force: 3/minute, 100/hour"), std::string::npos) << o;
  EXPECT_NE(o.find("now: sender limited@example.com: 2 in the last minute"), std::string::npos)
      << o;
  EXPECT_EQ(o.find("s3cr3t-token"), std::string::npos);
  EXPECT_EQ(r.err.find("s3cr3t-token"), std::string::npos);
  const std::vector<FakeRequest> reqs = whm.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].path, "/json-api/getdomainowner");
  EXPECT_EQ(reqs[0].headers.at("authorization"), "whm root:s3cr3t-token");

  // One address: only its own rows, and its limit.
  r = RunCli({"info", "limited@example.com", "--config", config_path_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("address limited@example.com"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("limit: 3/minute, 100/hour"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("blocked / suspended: no"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("incidents in the last 7 days: none"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("spam@example.com"), std::string::npos) << r.out;
}

TEST_F(LimitsCli, InfoWithoutWhmTokenSaysSoAndRefusesNonsense) {
  WriteConfig();
  CliResult r = RunCli({"info", "example.com", "--config", config_path_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("owner: not asked: whm.token is not set in " + config_path_),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("now: "), std::string::npos) << r.out;
  r = RunCli({"info", "/home/u/public_html", "--config", config_path_});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("expected a domain"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace eg::sidecar
