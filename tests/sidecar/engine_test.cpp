// engine_test.cpp - the engine (sidecar/engine.h) in process, with a real SQLite state store:
// incidents become records and blocks once per cooldown; notify_only, actions.block, classes
// without a table key, uid names, the action hook; the config -> detector settings mapping.

#include "engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "sidecar_test_util.h"
#include "time_text.h"

namespace eg::sidecar {
namespace {

// The day the test logs are stamped with: two days ago (from the clock, never a fixed date).
const std::string& Day() {
  static const std::string day = testing::LocalDay(testing::DaysAgoAt(2, 10));
  return day;
}

// An authenticated arrival at Day() 10:MM:SS with n external recipients.
std::string Arrival(int minute, int second, const std::string& account, int n,
                    const std::string& ip = "198.51.100.7") {
  char ts[32];
  std::snprintf(ts, sizeof ts, "%s 10:%02d:%02d", Day().c_str(), minute, second);
  std::string line = std::string(ts) + " 1tABCD-" + std::to_string(100000 + minute * 60 + second) +
                     "-AB <= " + account + " H=(pc) [" + ip +
                     "]:5555 P=esmtpsa A=dovecot_login:" + account + " S=900 T=\"report " +
                     std::to_string(second) + "\" for";
  for (int i = 0; i < n; ++i) line += " r" + std::to_string(i) + "@far.example";
  return line;
}

std::string LocalArrival(int second, const std::string& user, int n) {
  char ts[32];
  std::snprintf(ts, sizeof ts, "%s 10:00:%02d", Day().c_str(), second);
  std::string line = std::string(ts) + " 1tLOCA-" + std::to_string(100000 + second) +
                     "-AB <= " + user + "@host.example U=" + user + " P=local S=100 T=\"x\" for";
  for (int i = 0; i < n; ++i) line += " r" + std::to_string(i) + "@far.example";
  return line;
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    store_ = StateStore::Open(dir_.File("state"), &error);
    ASSERT_TRUE(store_) << error;
    config_.local_domains_file.clear();
    // A real table whose policy limits nothing (it counts all it is told, like the guard in
    // dry-run): what the tests Count() in it is what "the guard counted".
    SegmentSpec spec;
    spec.name = segment_.name;
    spec.capacity = 1024;
    spec.policy_capacity = 64;
    SegmentOutcome outcome{};
    segment_ptr_ = CreateSegment(spec, &outcome, &error);
    ASSERT_TRUE(segment_ptr_) << error;
    ASSERT_TRUE(PublishPolicy(segment_ptr_->table, Policy{}, &error)) << error;
  }
  // The wall clock of the tests: 10:00:30 of Day(), when the bursts below were logged.
  int64_t Clock() const { return LogEvent(ParseEximLine(Arrival(0, 30, "x@y.z", 1))).time; }
  // `n` recipients of `key` counted by the guard at Clock().
  void Count(KeyClass klass, const std::string& key, uint32_t n) {
    const KeyRef ref{klass, key.data(), key.size()};
    ASSERT_EQ(
        Check(segment_ptr_->table, &ref, 1, n, static_cast<uint32_t>(Clock()), Verdict::kDefer)
            .verdict,
        Verdict::kOk);
  }
  EngineHooks Hooks() {
    EngineHooks h;
    h.store = store_.get();
    h.table = [this]() -> const Table* { return &segment_ptr_->table; };
    h.now = [this] { return Clock(); };
    h.republish = [this](std::string*) {
      ++republished_;
      return true;
    };
    h.log = [this](const std::string& line) { log_.push_back(line); };
    h.follow_up = [this](const HandledIncident& handled) { followed_.push_back(handled); };
    return h;
  }
  Engine Make() { return Engine(config_, DetectorSettingsFromConfig(config_, {}, {}), Hooks()); }
  // 10 recipients in one minute: over the sender default of 8.
  static void Burst(Engine& e, const std::string& account) {
    for (int s = 0; s < 5; ++s) e.Feed(Arrival(0, s * 5, account, 2), LogSource::kExim);
  }
  std::vector<StoredBlock> Blocks() {
    std::vector<StoredBlock> b;
    std::string error;
    EXPECT_TRUE(store_->ActiveBlocks(&b, &error)) << error;
    return b;
  }

  testing::TempDir dir_;
  testing::ScopedSegmentName segment_;
  std::unique_ptr<Segment> segment_ptr_;
  std::unique_ptr<StateStore> store_;
  Config config_;
  int republished_ = 0;
  std::vector<std::string> log_;
  std::vector<HandledIncident> followed_;
};

TEST_F(EngineTest, AnIncidentIsRecordedAndBlockedOncePerCooldown) {
  Count(KeyClass::kSender, "spam@victim.example", 10);  // the guard saw them too
  Engine e = Make();
  Burst(e, "Spam@Victim.example");
  std::vector<HandledIncident> h = e.Handle();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].incident.rule, "rate_per_minute");
  EXPECT_EQ(h[0].incident.key, "spam@victim.example");
  EXPECT_EQ(h[0].outcome, "recorded");
  EXPECT_TRUE(h[0].incident.trusted) << h[0].incident.trust_note;
  EXPECT_TRUE(h[0].punish);
  EXPECT_EQ(h[0].action, "block");
  EXPECT_GT(h[0].id, 0);
  EXPECT_GT(Blocks()[0].expires, Clock());  // an automatic block lapses (actions.block_minutes)
  ASSERT_EQ(Blocks().size(), 1u);
  EXPECT_EQ(Blocks()[0].key, "spam@victim.example");
  EXPECT_EQ(Blocks()[0].key_class, KeyClass::kSender);
  EXPECT_EQ(Blocks()[0].by, "eximguard");
  EXPECT_EQ(republished_, 1);
  ASSERT_EQ(log_.size(), 1u);
  EXPECT_NE(log_[0].find("rate_per_minute sender spam@victim.example: 10 (threshold 8); trusted"),
            std::string::npos)
      << log_[0];

  // The same lines again (a restart re-reading them, a rerun): detected, not recorded again.
  Engine again = Make();
  Burst(again, "spam@victim.example");
  h = again.Handle();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].outcome, "cooldown");
  EXPECT_EQ(republished_, 1);
  std::vector<StoredIncident> all;
  std::string error;
  ASSERT_TRUE(store_->ListIncidents(0, 0, &all, &error));
  EXPECT_EQ(all.size(), 1u);
  EXPECT_EQ(again.stats().cooldown, 1u);
}

// Issue 10: log lines are written by the people they judge. A log burst the guard's own table
// does not show (forged lines, or mail that never passed the guard) is a notice: recorded as
// untrusted, never blocked, handed on with punish false, and the action names the command
// that acts on it.
TEST_F(EngineTest, ALogIncidentTheTableDoesNotCorroborateIsOnlyANotice) {
  Count(KeyClass::kSender, "victim@victim.example", 3);  // the guard saw 3, the log claims 10
  Engine e = Make();
  Burst(e, "victim@victim.example");
  Burst(e, "nobody-counted@victim.example");  // not in the table at all
  const std::vector<HandledIncident> h = e.Handle();
  ASSERT_EQ(h.size(), 2u);
  for (const HandledIncident& i : h) {
    EXPECT_EQ(i.outcome, "recorded");
    EXPECT_FALSE(i.incident.trusted);
    EXPECT_FALSE(i.punish);
    EXPECT_NE(i.action.find("eximguard act ID"), std::string::npos) << i.action;
  }
  EXPECT_NE(h[0].incident.trust_note.find("the guard counted 3"), std::string::npos)
      << h[0].incident.trust_note;
  EXPECT_NE(h[1].incident.trust_note.find("the guard counted none"), std::string::npos);
  EXPECT_TRUE(Blocks().empty());
  EXPECT_EQ(republished_, 0);
  ASSERT_EQ(followed_.size(), 2u);
  EXPECT_FALSE(followed_[0].punish);
  std::vector<StoredIncident> all;
  std::string error;
  ASSERT_TRUE(store_->ListIncidents(0, 0, &all, &error));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_FALSE(all[0].trusted);

  // The same burst, now corroborated (a trusted incident is not held back by the untrusted
  // notice's cooldown): blocked.
  Count(KeyClass::kSender, "victim@victim.example", 7);
  Engine again = Make();
  Burst(again, "victim@victim.example");
  const std::vector<HandledIncident> t = again.Handle();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].outcome, "recorded");
  EXPECT_TRUE(t[0].incident.trusted);
  EXPECT_EQ(t[0].action, "block");
}

// Without a table (replay, rerun) nothing from the log is trusted, and dry_run enforces nothing.
TEST_F(EngineTest, NoTableOrDryRunMeansNoPunishment) {
  Count(KeyClass::kSender, "a@victim.example", 10);
  EngineHooks hooks = Hooks();
  hooks.table = nullptr;
  Engine e(config_, DetectorSettingsFromConfig(config_, {}, {}), hooks);
  Burst(e, "a@victim.example");
  std::vector<HandledIncident> h = e.Handle();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_FALSE(h[0].incident.trusted);
  EXPECT_NE(h[0].incident.trust_note.find("replay or rerun"), std::string::npos);
  config_.dry_run = true;
  config_.detectors.cooldown_seconds = 0;
  Engine dry = Make();
  Burst(dry, "a@victim.example");
  h = dry.Handle();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_TRUE(h[0].incident.trusted);
  EXPECT_FALSE(h[0].punish);
  EXPECT_EQ(h[0].action, "dry_run (nothing is enforced)");
  EXPECT_TRUE(Blocks().empty());
}

TEST_F(EngineTest, NotifyOnlyRecordsButNeverBlocks) {
  config_.notify_only = true;
  Engine e = Make();
  Burst(e, "a@victim.example");
  const std::vector<HandledIncident> h = e.Handle();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].outcome, "recorded");
  EXPECT_EQ(h[0].action, "notify_only");
  EXPECT_TRUE(Blocks().empty());
  EXPECT_EQ(republished_, 0);
}

TEST_F(EngineTest, RulesNotInActionsBlockAndIpKeysAreNotBlocked) {
  Engine e = Make();
  // Five failed logins from one IP for one account: auth_failures for the account and the IP.
  for (int s = 0; s < 5; ++s) {
    e.Feed(Day() + " 10:00:0" + std::to_string(s) +
               " dovecot_login authenticator failed for (pc) [203.0.113.9]:4000: 535 Incorrect "
               "authentication data (set_id=bob@victim.example)",
           LogSource::kExim);
  }
  const std::vector<HandledIncident> h = e.Handle();
  ASSERT_EQ(h.size(), 2u);
  for (const HandledIncident& i : h) {
    EXPECT_EQ(i.incident.rule, "auth_failures");
    EXPECT_EQ(i.outcome, "recorded");
    EXPECT_FALSE(i.incident.trusted);  // log lines: the trusted source is Dovecot's policy
    EXPECT_EQ(i.action.rfind("none (", 0), 0u) << i.action;
  }
  EXPECT_TRUE(Blocks().empty());

  // Listing block for the rule blocks the account of a trusted incident (the IP still has no
  // table key).
  for (RuleActions& r : config_.actions.rules) {
    if (r.rule == "auth_failures") r.actions.insert(r.actions.begin(), "block");
  }
  Engine blocking = Make();
  blocking.Feed(Day() +
                    " 10:00:09 dovecot_login authenticator failed for (pc) [203.0.113.9]:4000: "
                    "535 Incorrect authentication data (set_id=bob@victim.example)",
                LogSource::kExim);  // one line: below the threshold, but evidence to enrich with
  for (const std::string& key : {std::string("bob@victim.example"), std::string("203.0.113.9")}) {
    Incident i;
    i.key = key;
    i.key_class = key[0] == 'b' ? "sender" : "ip";
    i.rule = "auth_failures";
    i.time = Clock();
    i.count = 5;
    i.threshold = 5;
    i.source = EvidenceSource::kPolicy;
    blocking.Add(i);
  }
  const std::vector<HandledIncident> t = blocking.Handle();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_TRUE(t[0].incident.trusted);
  EXPECT_EQ(t[1].action, "none (an IP address has no key in the shared table)");
  ASSERT_EQ(Blocks().size(), 1u);
  EXPECT_EQ(Blocks()[0].key, "bob@victim.example");
  EXPECT_FALSE(t[0].incident.lines.empty());  // enriched with what the log showed
}

TEST_F(EngineTest, AUidIncidentBlocksTheNumericUidOfTheUserName) {
  const int64_t uid = testing::CustomerUid();
  ASSERT_GE(uid, 0) << "cannot create the test user (needs root)";
  config_.limits[0] = {0, 0};  // the sender is not what this test is about
  Count(KeyClass::kUid, std::to_string(uid), 21);
  Engine e = Make();
  e.Feed(LocalArrival(1, "egcustomer", 21), LogSource::kExim);  // uid default: 20 per minute
  std::vector<HandledIncident> h = e.Handle();
  ASSERT_EQ(h.size(), 1u) << (h.empty() ? "" : h[0].incident.rule);
  EXPECT_EQ(h[0].incident.key_class, "uid");
  EXPECT_EQ(h[0].incident.key, "egcustomer");
  ASSERT_EQ(Blocks().size(), 1u);
  EXPECT_EQ(Blocks()[0].key_class, KeyClass::kUid);
  EXPECT_EQ(Blocks()[0].key, std::to_string(uid));

  // A user this host does not know: recorded, not blocked, and the action says why.
  e.Feed(LocalArrival(2, "nosuchuser-eg", 21), LogSource::kExim);
  h = e.Handle();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].outcome, "recorded");
  EXPECT_FALSE(h[0].incident.trusted);  // no uid, no table count
  EXPECT_EQ(Blocks().size(), 1u);
}

// Issue 10.1: forged lines blocked uid 0, so root's mail - cron output and eximguard's own
// notices - was refused. Root and the system accounts are never punished automatically, even
// on trusted evidence; nor is eximguard's own notice sender.
TEST_F(EngineTest, RootAndSystemAccountsAreNeverPunishedAutomatically) {
  config_.notify.from = "eximguard@mail.example";
  Engine e = Make();
  for (const auto& [klass, key] :
       std::vector<std::pair<std::string, std::string>>{{"uid", "root"},
                                                        {"uid", "0"},
                                                        {"uid", "daemon"},
                                                        {"sender", "root"},
                                                        {"sender", "eximguard@mail.example"},
                                                        {"cwd", "/var/spool/exim4"}}) {
    Incident i;
    i.key = key;
    i.key_class = klass;
    i.rule = "throttled";
    i.time = Clock();
    i.count = 50;
    i.threshold = 20;
    i.source = EvidenceSource::kTable;
    e.Add(i);
  }
  Incident system_owner;  // a directory a system uid submitted from
  system_owner.key = "/srv/www";
  system_owner.key_class = "cwd";
  system_owner.rule = "rate_per_minute";
  system_owner.time = Clock();
  system_owner.source = EvidenceSource::kTable;
  system_owner.owner_uid = 33;  // www-data
  e.Add(system_owner);
  const std::vector<HandledIncident> h = e.Handle();
  ASSERT_EQ(h.size(), 7u);
  for (const HandledIncident& i : h) {
    EXPECT_TRUE(i.incident.trusted);
    EXPECT_FALSE(i.punish) << i.incident.key;
    EXPECT_FALSE(i.protected_note.empty()) << i.incident.key;
    EXPECT_EQ(i.action.rfind("none (never automatically: ", 0), 0u) << i.action;
  }
  EXPECT_TRUE(Blocks().empty());
}

// `reset`: lines before the key's reset no longer count, and its cooldown ends.
TEST_F(EngineTest, AResetKeyIsJudgedAfreshFromTheReset) {
  {
    Engine e = Make();
    Burst(e, "spam@victim.example");  // 10:00:00-10:00:20
    ASSERT_EQ(e.Handle().size(), 1u);
  }
  ResetMarks marks;
  marks.keys[ResetMarkKey("sender", "spam@victim.example")] =
      LogEvent(ParseEximLine(Arrival(0, 30, "x@y.z", 1))).time;  // reset at 10:00:30
  Engine e = Make();
  e.SetResetMarks(marks);
  Burst(e, "spam@victim.example");  // the old burst again, as a warm-up would: hidden
  for (int s = 31; s < 35; ++s) e.Feed(Arrival(0, s, "spam@victim.example", 2), LogSource::kExim);
  EXPECT_TRUE(e.Handle().empty());  // 8 recipients since the reset: not over 8
  EXPECT_EQ(e.stats().hidden_by_reset, 5u);
  e.Feed(Arrival(0, 36, "spam@victim.example", 1), LogSource::kExim);  // 9 > 8
  std::vector<HandledIncident> h = e.Handle();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].incident.count, 9u);
  EXPECT_EQ(h[0].outcome, "recorded");  // the pre-reset incident's cooldown no longer holds
}

TEST_F(EngineTest, TheFollowUpGetsEveryRecordedIncidentTyped) {
  config_.actions.command = {"/bin/true"};
  Count(KeyClass::kSender, "a@victim.example", 10);
  Engine e = Make();
  Burst(e, "a@victim.example");
  e.Handle();
  ASSERT_EQ(followed_.size(), 1u);
  EXPECT_TRUE(followed_[0].punish);
  const nlohmann::ordered_json j = HandledToJson(followed_[0]);  // the command's stdin
  EXPECT_EQ(j["key"], "a@victim.example");
  EXPECT_EQ(j["rule"], "rate_per_minute");
  EXPECT_EQ(j["count"], 10);
  EXPECT_EQ(j["threshold"], 8);
  EXPECT_EQ(j["action"], "block");
  EXPECT_GT(j["id"].get<int64_t>(), 0);
  EXPECT_EQ(j["ips"], nlohmann::ordered_json::array({"198.51.100.7"}));
  EXPECT_EQ(j["lines"].size(), 5u);
  EXPECT_EQ(j["trusted"], true);
  EXPECT_EQ(j["source"], "log");
  EXPECT_EQ(j["punish"], true);
}

TEST_F(EngineTest, WithoutAStoreIncidentsAreOnlyReturned) {
  Engine e(config_, DetectorSettingsFromConfig(config_, {}, {}), EngineHooks{});
  Burst(e, "a@victim.example");
  e.Feed("garbage that is no log line", LogSource::kExim);
  const std::vector<HandledIncident> h = e.Handle();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].outcome, "detected");
  EXPECT_EQ(e.stats().lines, 6u);
  EXPECT_EQ(e.stats().unparsed, 1u);
  EXPECT_TRUE(Blocks().empty());
}

// replay's read-ahead (verbs_logs.cpp) parses on another thread and feeds FeedParsed(): the
// same incidents and counters as Feed(), evictions included.
TEST_F(EngineTest, FeedingParsedEventsEqualsFeedingLines) {
  DetectorSettings settings = DetectorSettingsFromConfig(config_, {}, {});
  settings.max_keys = 16;  // evictions and recycled slots on the way
  settings.max_messages = 32;
  std::vector<std::string> lines;
  for (int minute = 0; minute < 30; ++minute) {
    for (int k = 0; k < 40; ++k) {
      // One busy account (fires) among 30 that come and go (evicted and recycled).
      const std::string account =
          k % 2 == 0 ? "hot@v.example" : "u" + std::to_string((k * 7 + minute) % 30) + "@v.example";
      lines.push_back(Arrival(minute, k, account, 1 + (k % 4), "198.51.100." + std::to_string(k)));
      const std::string id = lines.back().substr(20, 16);
      lines.push_back(lines.back().substr(0, 20) + id + " ** r0@far.example: unknown user");
    }
    lines.push_back("garbage " + std::to_string(minute));
  }
  Engine fed(config_, settings, EngineHooks{});
  Engine parsed(config_, settings, EngineHooks{});
  std::vector<LogEvent> events(lines.size());
  for (size_t i = 0; i < lines.size(); ++i)
    ParseLogLine(lines[i], LogSource::kExim, parsed.parse_options(), &events[i]);
  std::vector<std::string> a, b;
  for (size_t i = 0; i < lines.size(); ++i) {
    fed.Feed(lines[i], LogSource::kExim);
    parsed.FeedParsed(events[i], lines[i]);
  }
  for (const HandledIncident& h : fed.Handle()) a.push_back(IncidentToJson(h.incident).dump());
  for (const HandledIncident& h : parsed.Handle()) b.push_back(IncidentToJson(h.incident).dump());
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  EXPECT_EQ(fed.stats().lines, parsed.stats().lines);
  EXPECT_EQ(fed.stats().unparsed, parsed.stats().unparsed);
  EXPECT_EQ(fed.stats().last_time, parsed.stats().last_time);
  EXPECT_GT(fed.detectors().Stats().evictions, 0u);
  EXPECT_EQ(fed.detectors().Stats().evictions, parsed.detectors().Stats().evictions);
}

TEST_F(EngineTest, SettingsFromConfigMapRulesDomainsAndUidKeysToNames) {
  std::string error;
  ConfigResult c = ParseConfig(R"({"detectors": {"max_ips_per_hour": 7, "cooldown_seconds": 60},
      "count_internal": true, "local_domains": ["Example.COM"],
      "overrides": {"uid:0": {"per_minute": 99}}, "whitelist": ["uid:0", "a@b.example"]})",
                               "test.json");
  ASSERT_TRUE(c.ok()) << c.errors[0];
  PolicyKey extra;
  ASSERT_TRUE(ParsePolicyKey("/home/x/www/", &extra, &error));
  const DetectorSettings s = DetectorSettingsFromConfig(c.config, {extra}, {"local.example"});
  EXPECT_EQ(s.max_ips_per_hour, 7u);
  EXPECT_EQ(s.cooldown_seconds, 60);
  EXPECT_TRUE(s.count_internal);
  EXPECT_EQ(s.local_domains, (std::vector<std::string>{"example.com", "local.example"}));
  ASSERT_EQ(s.overrides.size(), 1u);
  EXPECT_EQ(s.overrides[0].key.text, "root");  // uid 0 by name, as the log shows it
  EXPECT_EQ(s.overrides[0].limit.per_minute, 99u);
  ASSERT_EQ(s.whitelist.size(), 3u);
  EXPECT_EQ(s.whitelist[0].text, "root");
  EXPECT_EQ(s.whitelist[2].text, "/home/x/www");
}

TEST_F(EngineTest, ReadDomainsFileSkipsCommentsAndBlanksAndToleratesAMissingFile) {
  testing::WriteFile(dir_.File("domains"), "# cPanel\nExample.com\n\n  other.example \r\nx # c\n");
  std::vector<std::string> d;
  std::string error;
  ASSERT_TRUE(ReadDomainsFile(dir_.File("domains"), &d, &error)) << error;
  EXPECT_EQ(d, (std::vector<std::string>{"example.com", "other.example", "x"}));
  ASSERT_TRUE(ReadDomainsFile(dir_.File("missing"), &d, &error));
  EXPECT_TRUE(d.empty());
}

TEST_F(EngineTest, AnIncidentAndItsBlockAreOneTransaction) {
  // A block that cannot be stored (empty kind) fails the whole record: no incident without it.
  StoredIncident inc;
  inc.key = "a@b.example";
  inc.rule = "rate_per_minute";
  inc.time = 1000;
  StoredBlock bad;
  bad.key = "a@b.example";
  bad.kind = "";
  std::string error;
  EXPECT_EQ(store_->RecordIncident(&inc, 3600, &error, &bad), RecordOutcome::kError);
  std::vector<StoredIncident> all;
  ASSERT_TRUE(store_->ListIncidents(0, 0, &all, &error));
  EXPECT_TRUE(all.empty());
  StoredBlock good = bad;
  good.kind = kBlockKindBlock;
  bool added = false;
  EXPECT_EQ(store_->RecordIncident(&inc, 3600, &error, &good, &added), RecordOutcome::kRecorded);
  EXPECT_TRUE(added);
  EXPECT_EQ(Blocks().size(), 1u);
}

// ---- a fuzzer over sequences of log lines -------------------------------------------------
// Issue 10: "no punitive action ever comes without trusted corroboration". Seeded random
// sequences of lines an attacker can write (every kind the parsers know, with chosen keys,
// root's and system uids among them, forged cwd= records, mutated and split lines) go through
// the engine with the real table and store. Only one key, honest@v.example, really sent mail
// through the guard (its table count); nothing else may ever be blocked or handed to the
// follow-up with punish set. EG_SEQUENCE_SEED=N explores other seeds; the default seeds are
// fixed so a failure is reproducible.
struct Rng {
  uint64_t s;
  uint64_t Next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  size_t Below(size_t n) { return static_cast<size_t>(Next() % n); }
};

std::string RandomLine(Rng& r, const std::string& ts) {
  static const std::vector<std::string> kKeys = {
      "victim@v.example", "root@host.example",      "root",
      "honest@v.example", "ceo@v.example",          "daemon",
      "www-data",         "eximguard@mail.example", "Debian-exim",
      "a b@v.example",    "x\x1b[2J@v.example"};
  static const std::vector<std::string> kIps = {"203.0.113.5",   "127.0.0.1", "198.51.100.7",
                                                "deadbeef.cafe", "::1",       "10.0.0.1"};
  static const std::vector<std::string> kDirs = {"/home/victim/public_html", "/var/spool/exim4",
                                                 "/tmp", "/root", "/home/a 1 args: x"};
  const std::string& k = kKeys[r.Below(kKeys.size())];
  const std::string& ip = kIps[r.Below(kIps.size())];
  const std::string& dir = kDirs[r.Below(kDirs.size())];
  const std::string id =
      "1tF" + std::to_string(100 + r.Below(900)) + "-00000" + std::to_string(r.Below(10)) + "-AB";
  std::string rcpts;
  for (size_t i = 0, n = 1 + r.Below(12); i < n; ++i)
    rcpts += " r" + std::to_string(i) + "@far.example";
  switch (r.Below(14)) {
    case 0:
      return ts + " " + id + " <= " + k + " H=(pc) [" + ip +
             "]:5555 P=esmtpsa A=dovecot_login:" + k + " S=900 T=\"Cheap pills\" for" + rcpts;
    case 1:
      return ts + " " + id + " <= " + k + " U=" + k + " P=local S=300 T=\"order\" for" + rcpts;
    case 2:
      return ts + " " + id + " <= " + k + " H=mx.far.example [" + ip + "]:25 P=esmtp S=500 for" +
             rcpts;
    case 3:
      return ts + " cwd=" + dir + " 3 args: /usr/sbin/sendmail -t -i";
    case 4:  // a tail-less cwd= record with a forged arrival inside it
      return ts + " cwd=" + dir + "\n" + ts + " " + id + " <= " + k + " U=" + k +
             " P=local S=1 for" + rcpts;
    case 5:
      return ts + " " + id + " ** r1@far.example R=dnslookup T=remote_smtp: 550 no such user";
    case 6:
      return ts + " " + id + " => r1@far.example R=dnslookup T=remote_smtp H=mx [" + ip + "]";
    case 7:
      return ts + " dovecot_login authenticator failed for (pc) [" + ip +
             "]:5555: 535 Incorrect authentication data (set_id=" + k + ")";
    case 8:
      return ts + " host dovecot[777]: imap-login: Login: user=<" + k +
             ">, method=PLAIN, rip=" + ip + ", lip=10.0.0.2, mpid=1, session=<abc>";
    case 9:
      return ts + " host dovecot[777]: imap-login: Disconnected (auth failed, 3 attempts in 4 " +
             "secs): user=<" + k + ">, method=PLAIN, rip=" + ip + ", lip=10.0.0.2, session=<x>";
    case 10:
      return ts + " [" + std::to_string(r.Below(100)) + "] cwd=" + dir +
             " 4 args: /usr/sbin/sendmail -t -i -f" + k;
    case 11:
      return ts + " H=(pc) [" + ip + "] F=<" + k +
             "> temporarily rejected RCPT <r@far.example>: " + "eximguard: rate limit";
    case 12:
      return ts + " " + id + " <= <> R=" + id + " U=Debian-exim P=local S=1800 T=\"Mail " +
             "delivery failed\" for " + k;
    default: {  // garbage
      std::string g = ts + " ";
      for (size_t i = 0, n = r.Below(80); i < n; ++i) g += static_cast<char>(1 + r.Below(255));
      return g;
    }
  }
}

std::string Mutate(Rng& r, std::string line) {
  switch (r.Below(6)) {
    case 0:
      if (!line.empty()) line.insert(r.Below(line.size()), 1, static_cast<char>(r.Below(256)));
      break;
    case 1:
      if (!line.empty()) line.resize(r.Below(line.size()));
      break;
    case 2:
      if (!line.empty()) line.insert(r.Below(line.size()), "\n");
      break;
    default:
      break;
  }
  return line;
}

TEST_F(EngineTest, FuzzedLogSequencesNeverPunishWithoutTrustedCorroboration) {
  config_.notify.from = "eximguard@mail.example";
  config_.detectors.auth_failures = 2;
  Count(KeyClass::kSender, "honest@v.example", 1000);  // the only mail the guard saw
  std::vector<uint64_t> seeds = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  if (const char* s = std::getenv("EG_SEQUENCE_SEED")) seeds = {std::strtoull(s, nullptr, 10)};
  const int64_t t0 = Clock() - 600;
  size_t handled = 0;
  for (const uint64_t seed : seeds) {
    Rng r{seed * 0x9E3779B97F4A7C15ULL + 1};
    Engine e = Make();
    for (int n = 0; n < 400; ++n) {
      const std::string ts = LocalTimeText(t0 + static_cast<int64_t>(r.Below(660)));
      std::string text = Mutate(r, RandomLine(r, ts));
      // Lines arrive one per '\n', as the follower hands them on.
      size_t start = 0;
      while (start <= text.size()) {
        const size_t end = std::min(text.find('\n', start), text.size());
        e.Feed(std::string_view(text).substr(start, end - start), LogSource::kMixed);
        start = end + 1;
      }
      if (n % 50 == 49) {
        for (const HandledIncident& h : e.Handle()) {
          ++handled;
          if (h.punish) {
            EXPECT_TRUE(h.incident.trusted) << "seed " << seed << ": " << h.incident.key;
            EXPECT_EQ(h.incident.key, "honest@v.example")
                << "seed " << seed << ": " << h.incident.rule << " " << h.incident.trust_note;
          }
        }
      }
    }
    for (const StoredBlock& b : Blocks()) {
      EXPECT_EQ(b.key, "honest@v.example") << "seed " << seed << ": " << b.reason;
    }
  }
  for (const HandledIncident& h : followed_) {
    if (h.punish) {
      EXPECT_EQ(h.incident.key, "honest@v.example") << h.incident.rule;
    }
  }
  EXPECT_GT(handled, 50u);  // the sequences did make the rules fire (as notices)
}

}  // namespace
}  // namespace eg::sidecar
