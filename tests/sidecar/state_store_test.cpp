// state_store_test.cpp - tests of the SQLite state store (sidecar/state_store.h): schema, reopen
// durability, the incident cooldown, blocks, whitelist, checkpoints, audit, pruning, file modes, a
// corrupted file, two stores on one file, and a SIGKILLed writer.
//
// CONTRACT
//   Each test works in its own temporary directory (TempDir) and takes well under a second except
//   the crash test (a few hundred synchronous commits). The crash test forks; the child opens its
//   own store and leaves with _exit().

#include "state_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "sidecar_test_util.h"

namespace eg::sidecar {
namespace {

using testing::TempDir;
using testing::WriteFile;

constexpr int64_t kT0 = 1'780'000'000;  // some time in 2026

std::unique_ptr<StateStore> MustOpen(const std::string& dir) {
  std::string err;
  std::unique_ptr<StateStore> db = StateStore::Open(dir, &err);
  EXPECT_NE(db, nullptr) << err;
  return db;
}

StoredIncident MakeIncident(const std::string& key, const std::string& rule, int64_t time) {
  StoredIncident inc;
  inc.key = key;
  inc.rule = rule;
  inc.window_start = time - 3600;
  inc.window_end = time;
  inc.time = time;
  inc.count = 150;
  inc.evidence_json = R"({"count":150,"ips":["192.0.2.1"],"subjects":["hi"]})";
  inc.action = "block";
  return inc;
}

TEST(StateStore, CreatesSchema) {
  TempDir tmp;
  auto db = MustOpen(tmp.path());
  ASSERT_NE(db, nullptr);
  std::string err;
  int version = 0;
  ASSERT_TRUE(db->SchemaVersion(&version, &err)) << err;
  EXPECT_EQ(version, kSchemaVersion);
  EXPECT_EQ(db->path(), tmp.path() + "/eximguard.db");

  // The tables exist and the pragmas hold (checked over a raw connection).
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db->path().c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  std::set<std::string> tables;
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT name FROM sqlite_master WHERE type = 'table'", -1, &s,
                               nullptr),
            SQLITE_OK);
  while (sqlite3_step(s) == SQLITE_ROW) {
    tables.insert(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
  }
  sqlite3_finalize(s);
  ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "wal");
  sqlite3_finalize(s);
  sqlite3_close(raw);
  for (const char* t :
       {"schema_version", "incidents", "blocks", "whitelist", "checkpoints", "audit"}) {
    EXPECT_TRUE(tables.count(t)) << t;
  }

  // Opening again does not migrate twice.
  db.reset();
  db = MustOpen(tmp.path());
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->SchemaVersion(&version, &err)) << err;
  EXPECT_EQ(version, kSchemaVersion);
}

TEST(StateStore, RefusesNewerSchema) {
  TempDir tmp;
  MustOpen(tmp.path()).reset();
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(tmp.File("eximguard.db").c_str(), &raw), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(raw, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(raw);
  std::string err;
  EXPECT_EQ(StateStore::Open(tmp.path(), &err), nullptr);
  EXPECT_NE(err.find("newer"), std::string::npos) << err;
}

TEST(StateStore, ReopenKeepsData) {
  TempDir tmp;
  std::string err;
  {
    auto db = MustOpen(tmp.path());
    ASSERT_NE(db, nullptr);
    StoredIncident inc = MakeIncident("a@example.com", "rcpt_per_hour", kT0);
    inc.key_class = "ip";
    ASSERT_EQ(db->RecordIncident(&inc, 3600, &err), RecordOutcome::kRecorded) << err;
    EXPECT_GT(inc.id, 0);
    StoredBlock b;
    b.key = "/home/u/public_html";
    b.key_class = KeyClass::kCwd;
    b.since = kT0;
    b.reason = "script";
    b.by = "eximguard";
    ASSERT_TRUE(db->AddBlock(b, nullptr, &err)) << err;
    ASSERT_TRUE(db->AddWhitelist({"bulk@example.com", "admin", kT0, "newsletter"}, nullptr, &err));
    ASSERT_TRUE(db->SaveCheckpoint("mainlog", {1, 2, 3, 4}, &err)) << err;
  }
  auto db = MustOpen(tmp.path());
  ASSERT_NE(db, nullptr);
  std::vector<StoredIncident> incs;
  ASSERT_TRUE(db->ListIncidents(0, 0, &incs, &err)) << err;
  ASSERT_EQ(incs.size(), 1u);
  EXPECT_EQ(incs[0].key, "a@example.com");
  EXPECT_EQ(incs[0].rule, "rcpt_per_hour");
  EXPECT_EQ(incs[0].key_class, "ip");
  EXPECT_EQ(incs[0].window_start, kT0 - 3600);
  EXPECT_EQ(incs[0].window_end, kT0);
  EXPECT_EQ(incs[0].count, 150);
  EXPECT_EQ(incs[0].evidence_json, R"({"count":150,"ips":["192.0.2.1"],"subjects":["hi"]})");
  EXPECT_EQ(incs[0].action, "block");
  std::vector<StoredBlock> blocks;
  ASSERT_TRUE(db->ActiveBlocks(&blocks, &err)) << err;
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].key_class, KeyClass::kCwd);
  EXPECT_EQ(blocks[0].key, "/home/u/public_html");
  std::vector<WhitelistEntry> wl;
  ASSERT_TRUE(db->ListWhitelist(&wl, &err)) << err;
  ASSERT_EQ(wl.size(), 1u);
  Checkpoint cp;
  bool found = false;
  ASSERT_TRUE(db->LoadCheckpoint("mainlog", &cp, &found, &err)) << err;
  EXPECT_TRUE(found);
  EXPECT_EQ(cp, (Checkpoint{1, 2, 3, 4}));
}

TEST(StateStore, IncidentValidation) {
  TempDir tmp;
  auto db = MustOpen(tmp.path());
  ASSERT_NE(db, nullptr);
  std::string err;
  StoredIncident bad = MakeIncident("a@example.com", "r", kT0);
  bad.evidence_json = "{not json";
  EXPECT_EQ(db->RecordIncident(&bad, 0, &err), RecordOutcome::kError);
  EXPECT_NE(err.find("RecordIncident"), std::string::npos) << err;
  StoredIncident empty = MakeIncident("", "r", kT0);
  EXPECT_EQ(db->RecordIncident(&empty, 0, &err), RecordOutcome::kError);
  // Values with quotes and SQL are data, never SQL.
  StoredIncident odd = MakeIncident("x'); DROP TABLE incidents; --", "r", kT0);
  odd.evidence_json = "";
  ASSERT_EQ(db->RecordIncident(&odd, 0, &err), RecordOutcome::kRecorded) << err;
  std::vector<StoredIncident> incs;
  ASSERT_TRUE(db->IncidentsForKey(odd.key, &incs, &err)) << err;
  ASSERT_EQ(incs.size(), 1u);
  EXPECT_EQ(incs[0].evidence_json, "{}");
}

TEST(StateStore, CooldownOneIncidentPerKeyAndRule) {
  TempDir tmp;
  auto db = MustOpen(tmp.path());
  ASSERT_NE(db, nullptr);
  std::string err;
  const int64_t cooldown = 3600;
  StoredIncident a = MakeIncident("a@example.com", "rcpt_per_hour", kT0);
  ASSERT_EQ(db->RecordIncident(&a, cooldown, &err), RecordOutcome::kRecorded) << err;

  StoredIncident again = MakeIncident("a@example.com", "rcpt_per_hour", kT0 + 600);
  EXPECT_EQ(db->RecordIncident(&again, cooldown, &err), RecordOutcome::kCooldown);
  EXPECT_EQ(again.id, 0);

  StoredIncident other_rule = MakeIncident("a@example.com", "many_ips", kT0 + 600);
  EXPECT_EQ(db->RecordIncident(&other_rule, cooldown, &err), RecordOutcome::kRecorded) << err;
  StoredIncident other_key = MakeIncident("b@example.com", "rcpt_per_hour", kT0 + 600);
  EXPECT_EQ(db->RecordIncident(&other_key, cooldown, &err), RecordOutcome::kRecorded) << err;

  StoredIncident later = MakeIncident("a@example.com", "rcpt_per_hour", kT0 + cooldown);
  EXPECT_EQ(db->RecordIncident(&later, cooldown, &err), RecordOutcome::kRecorded) << err;

  std::optional<int64_t> last;
  ASSERT_TRUE(db->LastIncidentTime("a@example.com", "rcpt_per_hour", &last, &err)) << err;
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, kT0 + cooldown);
  ASSERT_TRUE(db->LastIncidentTime("nobody@example.com", "rcpt_per_hour", &last, &err)) << err;
  EXPECT_FALSE(last.has_value());

  std::vector<StoredIncident> incs;
  ASSERT_TRUE(db->IncidentsForKey("a@example.com", &incs, &err)) << err;
  ASSERT_EQ(incs.size(), 3u);
  EXPECT_EQ(incs[0].time, kT0);
  EXPECT_EQ(incs[2].time, kT0 + cooldown);

  // ListIncidents: since is inclusive, limit caps, oldest first.
  ASSERT_TRUE(db->ListIncidents(kT0 + 600, 2, &incs, &err)) << err;
  ASSERT_EQ(incs.size(), 2u);
  EXPECT_EQ(incs[0].rule, "many_ips");
  EXPECT_EQ(incs[1].key, "b@example.com");
}

TEST(StateStore, AddBlockIsIdempotentAndRemoveWorks) {
  TempDir tmp;
  auto db = MustOpen(tmp.path());
  ASSERT_NE(db, nullptr);
  std::string err;
  StoredBlock b;
  b.key = "a@example.com";
  b.since = kT0;
  b.reason = "rcpt_per_hour";
  b.by = "eximguard";
  bool added = false;
  ASSERT_TRUE(db->AddBlock(b, &added, &err)) << err;
  EXPECT_TRUE(added);
  b.since = kT0 + 5;
  ASSERT_TRUE(db->AddBlock(b, &added, &err)) << err;
  EXPECT_FALSE(added);
  StoredBlock suspend = b;
  suspend.kind = kBlockKindSuspendOutgoing;
  ASSERT_TRUE(db->AddBlock(suspend, &added, &err)) << err;
  EXPECT_TRUE(added);
  StoredBlock uid = b;
  uid.key_class = KeyClass::kUid;
  uid.key = "1000";
  ASSERT_TRUE(db->AddBlock(uid, &added, &err)) << err;

  std::vector<StoredBlock> blocks;
  ASSERT_TRUE(db->ActiveBlocks(&blocks, &err)) << err;
  EXPECT_EQ(blocks.size(), 3u);

  int removed = 0;
  ASSERT_TRUE(db->RemoveBlock(KeyClass::kSender, "a@example.com", "block", kT0 + 10, "cli:root",
                              &removed, &err))
      << err;
  EXPECT_EQ(removed, 1);
  ASSERT_TRUE(db->RemoveBlock(KeyClass::kSender, "a@example.com", "block", kT0 + 11, "cli:root",
                              &removed, &err));
  EXPECT_EQ(removed, 0);
  ASSERT_TRUE(db->ActiveBlocks(&blocks, &err)) << err;
  ASSERT_EQ(blocks.size(), 2u);
  // Every kind at once.
  ASSERT_TRUE(db->RemoveBlock(KeyClass::kSender, "a@example.com", "", kT0 + 12, "cli:root",
                              &removed, &err));
  EXPECT_EQ(removed, 1);
  ASSERT_TRUE(db->ActiveBlocks(&blocks, &err)) << err;
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].key, "1000");
  EXPECT_EQ(blocks[0].key_class, KeyClass::kUid);

  // Blocked again after removal: a new active block.
  b.since = kT0 + 20;
  ASSERT_TRUE(db->AddBlock(b, &added, &err)) << err;
  EXPECT_TRUE(added);

  // Changes were audited with who and when; the ignored duplicate and no-op removal were not.
  std::vector<AuditEntry> audit;
  ASSERT_TRUE(db->ListAudit(0, 0, &audit, &err)) << err;
  ASSERT_EQ(audit.size(), 6u);
  EXPECT_EQ(audit[3].action, "block_remove");
  EXPECT_EQ(audit[3].who, "cli:root");
  EXPECT_EQ(audit[3].time, kT0 + 10);
}

TEST(StateStore, WhitelistCrud) {
  TempDir tmp;
  auto db = MustOpen(tmp.path());
  ASSERT_NE(db, nullptr);
  std::string err;
  bool added = false;
  ASSERT_TRUE(db->AddWhitelist({"bulk@example.com", "admin1", kT0, "newsletter"}, &added, &err));
  EXPECT_TRUE(added);
  ASSERT_TRUE(db->AddWhitelist({"bulk@example.com", "admin2", kT0 + 1, "again"}, &added, &err));
  EXPECT_FALSE(added);
  ASSERT_TRUE(db->AddWhitelist({"uid:1000", "admin1", kT0 + 2, ""}, &added, &err));
  std::vector<WhitelistEntry> wl;
  ASSERT_TRUE(db->ListWhitelist(&wl, &err)) << err;
  ASSERT_EQ(wl.size(), 2u);
  EXPECT_EQ(wl[0].key, "bulk@example.com");
  EXPECT_EQ(wl[0].added_by, "admin1");
  EXPECT_EQ(wl[0].note, "newsletter");
  EXPECT_EQ(wl[0].time, kT0);
  bool removed = false;
  ASSERT_TRUE(db->RemoveWhitelist("bulk@example.com", kT0 + 3, "admin2", &removed, &err));
  EXPECT_TRUE(removed);
  ASSERT_TRUE(db->RemoveWhitelist("bulk@example.com", kT0 + 4, "admin2", &removed, &err));
  EXPECT_FALSE(removed);
  ASSERT_TRUE(db->ListWhitelist(&wl, &err)) << err;
  ASSERT_EQ(wl.size(), 1u);
  EXPECT_EQ(wl[0].key, "uid:1000");
}

TEST(StateStore, CheckpointRoundtrip) {
  TempDir tmp;
  auto db = MustOpen(tmp.path());
  ASSERT_NE(db, nullptr);
  std::string err;
  Checkpoint cp;
  bool found = true;
  ASSERT_TRUE(db->LoadCheckpoint("mainlog", &cp, &found, &err)) << err;
  EXPECT_FALSE(found);
  // Values above INT64_MAX survive the signed column.
  const Checkpoint big{UINT64_MAX, 1ull << 63, 123456789012345ull, 0xfedcba9876543210ull};
  ASSERT_TRUE(db->SaveCheckpoint("mainlog", big, &err)) << err;
  ASSERT_TRUE(db->SaveCheckpoint("dovecot", {5, 6, 7, 8}, &err)) << err;
  ASSERT_TRUE(db->LoadCheckpoint("mainlog", &cp, &found, &err)) << err;
  EXPECT_TRUE(found);
  EXPECT_EQ(cp, big);
  const Checkpoint next{9, 10, 11, 12};
  ASSERT_TRUE(db->SaveCheckpoint("mainlog", next, &err)) << err;
  ASSERT_TRUE(db->LoadCheckpoint("mainlog", &cp, &found, &err)) << err;
  EXPECT_EQ(cp, next);
  ASSERT_TRUE(db->LoadCheckpoint("dovecot", &cp, &found, &err)) << err;
  EXPECT_EQ(cp, (Checkpoint{5, 6, 7, 8}));
}

TEST(StateStore, AuditOrderAndFiltering) {
  TempDir tmp;
  auto db = MustOpen(tmp.path());
  ASSERT_NE(db, nullptr);
  std::string err;
  // Written out of time order; listed by time, then insertion.
  ASSERT_TRUE(db->Audit({0, kT0 + 20, "tg:42", "reset", "", "all counters"}, &err)) << err;
  ASSERT_TRUE(db->Audit({0, kT0, "cli:root", "suspend", "a@example.com", ""}, &err)) << err;
  ASSERT_TRUE(db->Audit({0, kT0 + 10, "slack:U1", "unsuspend", "a@example.com", ""}, &err));
  ASSERT_TRUE(db->Audit({0, kT0 + 10, "cli:root", "skip", "", "mainlog"}, &err)) << err;
  EXPECT_FALSE(db->Audit({0, kT0, "x", "", "", ""}, &err));

  std::vector<AuditEntry> audit;
  ASSERT_TRUE(db->ListAudit(0, 0, &audit, &err)) << err;
  ASSERT_EQ(audit.size(), 4u);
  EXPECT_EQ(audit[0].action, "suspend");
  EXPECT_EQ(audit[0].who, "cli:root");
  EXPECT_EQ(audit[0].key, "a@example.com");
  EXPECT_EQ(audit[1].action, "unsuspend");
  EXPECT_EQ(audit[2].action, "skip");
  EXPECT_EQ(audit[3].action, "reset");
  EXPECT_EQ(audit[3].detail, "all counters");

  ASSERT_TRUE(db->ListAudit(kT0 + 10, 0, &audit, &err)) << err;
  ASSERT_EQ(audit.size(), 3u);
  EXPECT_EQ(audit[0].action, "unsuspend");
  ASSERT_TRUE(db->ListAudit(kT0 + 10, 1, &audit, &err)) << err;
  ASSERT_EQ(audit.size(), 1u);
  ASSERT_TRUE(db->ListAudit(kT0 + 21, 0, &audit, &err)) << err;
  EXPECT_TRUE(audit.empty());
}

TEST(StateStore, PruneKeepsActiveBlocksAndWhitelist) {
  TempDir tmp;
  auto db = MustOpen(tmp.path());
  ASSERT_NE(db, nullptr);
  std::string err;
  const int64_t day = 86400;
  const int64_t now = kT0 + 100 * day;
  const int64_t old = now - 40 * day;
  const int64_t recent = now - 5 * day;

  StoredIncident old_inc = MakeIncident("a@example.com", "r", old);
  old_inc.recorded_at = old;
  StoredIncident new_inc = MakeIncident("a@example.com", "r", recent);
  new_inc.recorded_at = recent;
  // A `rerun` of a 40-day-old log records, now, an incident of that day: retention counts from
  // when it was recorded, so the next prune keeps it.
  StoredIncident rerun_inc = MakeIncident("b@example.com", "r", old);
  rerun_inc.recorded_at = now - 60;
  ASSERT_EQ(db->RecordIncident(&rerun_inc, 0, &err), RecordOutcome::kRecorded) << err;
  ASSERT_EQ(db->RecordIncident(&old_inc, 0, &err), RecordOutcome::kRecorded) << err;
  ASSERT_EQ(db->RecordIncident(&new_inc, 0, &err), RecordOutcome::kRecorded) << err;

  StoredBlock active;  // old but active: kept
  active.key = "old-active@example.com";
  active.since = old;
  active.by = "eximguard";
  ASSERT_TRUE(db->AddBlock(active, nullptr, &err)) << err;
  StoredBlock gone = active;  // removed long ago: pruned
  gone.key = "old-removed@example.com";
  ASSERT_TRUE(db->AddBlock(gone, nullptr, &err)) << err;
  ASSERT_TRUE(db->RemoveBlock(KeyClass::kSender, gone.key, "", old + 1, "admin", nullptr, &err));
  StoredBlock recently_gone = active;  // removed recently: kept for history
  recently_gone.key = "recent-removed@example.com";
  ASSERT_TRUE(db->AddBlock(recently_gone, nullptr, &err)) << err;
  ASSERT_TRUE(
      db->RemoveBlock(KeyClass::kSender, recently_gone.key, "", recent, "admin", nullptr, &err));
  ASSERT_TRUE(db->AddWhitelist({"old-white@example.com", "admin", old, ""}, nullptr, &err));
  ASSERT_TRUE(db->SaveCheckpoint("mainlog", {1, 2, 3, 4}, &err)) << err;
  ASSERT_TRUE(db->Audit({0, recent, "admin", "status", "", ""}, &err)) << err;

  PruneCounts counts;
  ASSERT_TRUE(db->Prune(now, kDefaultRetentionDays, &counts, &err)) << err;
  EXPECT_EQ(counts.incidents, 1);
  EXPECT_EQ(counts.blocks, 1);
  // Audit rows older than 30 days: 3 block_add, 1 block_remove, 1 whitelist_add.
  EXPECT_EQ(counts.audit, 5);

  std::vector<StoredIncident> incs;
  ASSERT_TRUE(db->ListIncidents(0, 0, &incs, &err)) << err;
  ASSERT_EQ(incs.size(), 2u);
  EXPECT_EQ(incs[0].key, "b@example.com");  // oldest log time first
  EXPECT_EQ(incs[0].time, old);
  EXPECT_EQ(incs[0].recorded_at, now - 60);
  EXPECT_EQ(incs[1].time, recent);
  std::vector<StoredBlock> blocks;
  ASSERT_TRUE(db->ActiveBlocks(&blocks, &err)) << err;
  ASSERT_EQ(blocks.size(), 1u);
  EXPECT_EQ(blocks[0].key, "old-active@example.com");
  std::vector<WhitelistEntry> wl;
  ASSERT_TRUE(db->ListWhitelist(&wl, &err)) << err;
  EXPECT_EQ(wl.size(), 1u);
  Checkpoint cp;
  bool found = false;
  ASSERT_TRUE(db->LoadCheckpoint("mainlog", &cp, &found, &err)) << err;
  EXPECT_TRUE(found);
  std::vector<AuditEntry> audit;
  ASSERT_TRUE(db->ListAudit(0, 0, &audit, &err)) << err;
  EXPECT_EQ(audit.size(), 2u);  // the recent block_remove and "status"
  EXPECT_FALSE(db->Prune(now, -1, nullptr, &err));
}

TEST(StateStore, FileModes) {
  TempDir tmp;
  const std::string dir = tmp.File("state/nested");
  auto db = MustOpen(dir);
  ASSERT_NE(db, nullptr);
  struct stat st {};
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(tmp.File("state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(stat(db->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  std::string err;
  ASSERT_TRUE(db->Audit({0, kT0, "t", "x", "", ""}, &err)) << err;
  ASSERT_EQ(stat((db->path() + "-wal").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);
  db.reset();

  // An existing file readable by others is narrowed.
  ASSERT_EQ(chmod((dir + "/eximguard.db").c_str(), 0644), 0);
  db = MustOpen(dir);
  ASSERT_NE(db, nullptr);
  ASSERT_EQ(stat(db->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(StateStore, CorruptedFileIsAClearError) {
  TempDir tmp;
  std::string garbage;
  for (int i = 0; i < 8192; ++i) garbage.push_back(static_cast<char>((i * 7919 + 13) & 0xff));
  WriteFile(tmp.File("eximguard.db"), garbage);
  std::string err;
  EXPECT_EQ(StateStore::Open(tmp.path(), &err), nullptr);
  EXPECT_NE(err.find(tmp.File("eximguard.db")), std::string::npos) << err;
  EXPECT_NE(err.find("not a database"), std::string::npos) << err;

  // A valid database header over a damaged body also fails cleanly (or opens), never crashes.
  TempDir tmp2;
  MustOpen(tmp2.path()).reset();
  std::string good = testing::ReadFile(tmp2.File("eximguard.db"));
  ASSERT_GT(good.size(), 200u);
  for (size_t i = 100; i < good.size(); ++i) good[i] = static_cast<char>(0xA5);
  WriteFile(tmp2.File("eximguard.db"), good);
  auto db = StateStore::Open(tmp2.path(), &err);
  if (db != nullptr) {
    std::vector<StoredIncident> incs;
    (void)db->ListIncidents(0, 0, &incs, &err);
  } else {
    EXPECT_FALSE(err.empty());
  }
}

TEST(StateStore, TwoStoresSeeEachOthersWrites) {
  TempDir tmp;
  auto daemon = MustOpen(tmp.path());
  auto cli = MustOpen(tmp.path());
  ASSERT_NE(daemon, nullptr);
  ASSERT_NE(cli, nullptr);
  std::string err;
  StoredIncident inc = MakeIncident("a@example.com", "rcpt_per_hour", kT0);
  ASSERT_EQ(daemon->RecordIncident(&inc, 3600, &err), RecordOutcome::kRecorded) << err;
  std::vector<StoredIncident> incs;
  ASSERT_TRUE(cli->IncidentsForKey("a@example.com", &incs, &err)) << err;
  EXPECT_EQ(incs.size(), 1u);
  // The cooldown holds across connections.
  StoredIncident dup = MakeIncident("a@example.com", "rcpt_per_hour", kT0 + 1);
  EXPECT_EQ(cli->RecordIncident(&dup, 3600, &err), RecordOutcome::kCooldown);

  StoredBlock b;
  b.key = "a@example.com";
  b.since = kT0;
  b.by = "cli:root";
  ASSERT_TRUE(cli->AddBlock(b, nullptr, &err)) << err;
  std::vector<StoredBlock> blocks;
  ASSERT_TRUE(daemon->ActiveBlocks(&blocks, &err)) << err;
  EXPECT_EQ(blocks.size(), 1u);
  bool added = true;
  ASSERT_TRUE(daemon->AddBlock(b, &added, &err)) << err;
  EXPECT_FALSE(added);
  ASSERT_TRUE(cli->AddWhitelist({"w@example.com", "cli:root", kT0, ""}, nullptr, &err));
  std::vector<WhitelistEntry> wl;
  ASSERT_TRUE(daemon->ListWhitelist(&wl, &err)) << err;
  EXPECT_EQ(wl.size(), 1u);
}

// Reads exactly n bytes unless the pipe closes; returns the count read.
size_t ReadFull(int fd, void* buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, static_cast<char*>(buf) + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  return got;
}

TEST(StateStore, SurvivesSigkillOfAWriter) {
  TempDir tmp;
  MustOpen(tmp.path()).reset();  // schema exists before the child starts
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    std::string err;
    auto db = StateStore::Open(tmp.path(), &err);
    if (db == nullptr) _exit(3);
    for (int64_t i = 0;; ++i) {
      StoredIncident inc = MakeIncident("k" + std::to_string(i) + "@example.com", "r", kT0 + i);
      if (db->RecordIncident(&inc, 3600, &err) != RecordOutcome::kRecorded) _exit(4);
      StoredBlock b;  // a second kind of write in between
      b.key = inc.key;
      b.since = inc.time;
      if (!db->AddBlock(b, nullptr, &err)) _exit(5);
      int64_t id = inc.id;
      if (write(fds[1], &id, sizeof id) != static_cast<ssize_t>(sizeof id)) _exit(6);
    }
  }
  close(fds[1]);
  std::vector<int64_t> committed;
  int64_t id = 0;
  while (committed.size() < 80 && ReadFull(fds[0], &id, sizeof id) == sizeof id) {
    committed.push_back(id);
  }
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  // Ids written after we stopped counting but before the kill were committed too.
  while (ReadFull(fds[0], &id, sizeof id) == sizeof id) committed.push_back(id);
  close(fds[0]);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  ASSERT_GE(committed.size(), 80u);

  std::string err;
  auto db = StateStore::Open(tmp.path(), &err);
  ASSERT_NE(db, nullptr) << err;
  std::vector<StoredIncident> incs;
  ASSERT_TRUE(db->ListIncidents(0, 0, &incs, &err)) << err;
  std::set<int64_t> have;
  for (const StoredIncident& inc : incs) have.insert(inc.id);
  for (int64_t c : committed) EXPECT_TRUE(have.count(c)) << "lost committed incident " << c;
  std::vector<StoredBlock> blocks;
  ASSERT_TRUE(db->ActiveBlocks(&blocks, &err)) << err;
  EXPECT_GE(blocks.size(), committed.size());
  // The store still takes writes.
  StoredIncident after = MakeIncident("after@example.com", "r", kT0);
  EXPECT_EQ(db->RecordIncident(&after, 3600, &err), RecordOutcome::kRecorded) << err;
}

}  // namespace
}  // namespace eg::sidecar

namespace eg::sidecar {
namespace {

// Someone else's state_dir would give them the database and follow.lock.
TEST(StateStoreOwnership, ADirectoryOfAnotherUidIsRefused) {
  testing::TempDir tmp;
  const std::string dir = tmp.File("state");
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  const uid_t other = geteuid() == 0 ? 65534 : 0;
  if (geteuid() == 0) {
    ASSERT_EQ(chown(dir.c_str(), other, static_cast<gid_t>(-1)), 0);
  }
  const std::string probe = geteuid() == 0 ? dir : std::string("/usr");  // root's: not ours
  std::string err;
  EXPECT_EQ(StateStore::Open(probe, &err), nullptr);
  EXPECT_EQ(err.rfind("state_dir " + probe + ": refused: ", 0), 0u) << err;
  EXPECT_NE(err.find("owned by uid " + std::to_string(other)), std::string::npos) << err;
  EXPECT_FALSE(std::filesystem::exists(probe + "/eximguard.db"));
}

TEST(StateStoreOwnership, WritableByGroupOrOthersIsRefusedAParentToo) {
  testing::TempDir tmp;
  const std::string dir = tmp.File("state");
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  ASSERT_EQ(chmod(dir.c_str(), 0770), 0);
  std::string err;
  EXPECT_EQ(StateStore::Open(dir, &err), nullptr);
  EXPECT_NE(err.find("writable by its group (mode 0770)"), std::string::npos) << err;
  ASSERT_EQ(chmod(dir.c_str(), 0700), 0);
  ASSERT_EQ(chmod(tmp.path().c_str(), 0757), 0);
  EXPECT_EQ(StateStore::Open(dir, &err), nullptr);
  EXPECT_NE(err.find("its parent " + tmp.path() + " is writable by others"), std::string::npos)
      << err;
  // A sticky parent is only fine when root owns it (as /tmp): a temp dir is ours, so not here.
  ASSERT_EQ(chmod(tmp.path().c_str(), 01777), 0);
  EXPECT_EQ(StateStore::Open(dir, &err) == nullptr, geteuid() != 0) << err;
  ASSERT_EQ(chmod(tmp.path().c_str(), 0700), 0);
  EXPECT_NE(MustOpen(dir), nullptr);  // mkdtemp's 0700 under /tmp (root's, 1777) is fine
  EXPECT_EQ(UnsafeStateDir(dir), "");
}

}  // namespace
}  // namespace eg::sidecar
