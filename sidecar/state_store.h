// state_store.h - the sidecar's durable memory: one SQLite file `<state_dir>/eximguard.db` holding
// incidents, blocks/suspensions, the whitelist, log-follower checkpoints and the audit trail.
//
// SUMMARY
//   std::string err;
//   std::unique_ptr<StateStore> db = StateStore::Open("/var/lib/eximguard", &err);
//   if (!db) ...;                                              // err names the file and the cause
//   StoredIncident inc{.key = "a@example.com", .rule = "rcpt_per_hour", .time = now, ...};
//   switch (db->RecordIncident(&inc, /*cooldown_seconds=*/3600, &err)) {
//     case RecordOutcome::kRecorded: ...;                      // inc.id is set: block, notify
//     case RecordOutcome::kCooldown: ...;                      // one already recorded: nothing to
//     do case RecordOutcome::kError: ...;                         // err says why
//   }
//   db->AddBlock(block, &added, &err);  db->ActiveBlocks(&blocks, &err);
//   db->SaveCheckpoint("mainlog", follower.checkpoint(), &err);
//   db->SetLimit({.key = "a@b.example", .per_minute = 2, .set_by = "cli:root", .time = now}, &err);
//   db->Prune(now, 30, nullptr, &err);                         // e.g. once an hour
//
// CONTRACT
//   - Callers: the sidecar daemon (`start`, `run`) records incidents, blocks and checkpoints; the
//     CLI verbs (`incidents`, `why`, `suspend`, `unsuspend`, `list`, `whitelist`, `status`,
//     `reset`, `set`, `info`) read and change the same file from another process at the same
//     time; tests.
//   - Owns: one SQLite connection (and the statements it prepares per call). The file, and the
//     state directory when it has to be created, are created with modes 0600 and 0700; an
//     existing file wider than 0600 is narrowed to 0600. SQLite's -wal and -shm files take the
//     database file's mode.
//   - SECURITY: Open() refuses a state_dir that someone else could change (UnsafeStateDir): whoever
//     can replace the database or follow.lock decides what is blocked and whom a CLI signals.
//   - Durability: WAL journal with synchronous=FULL: a function that returned success has
//     committed, and its rows survive a crash of the process or of the machine. Each function is
//     one transaction; RecordIncident's cooldown check and insert are one transaction
//     (BEGIN IMMEDIATE), so two processes cannot both record the same key+rule in one cooldown.
//   - Several processes (daemon + CLI) may open the same file: each sees the others' committed
//     writes on its next call. A writer waits up to busy_timeout for another's lock, then fails
//     with SQLite's "database is locked".
//   - Schema: a `schema_version` table; Open() applies the migrations up to kSchemaVersion in one
//     transaction and refuses a file whose version is newer than this program knows. Version 2
//     added the `limits` table (limits set at run time by `eximguard set`); version 3 added
//     incidents.recorded_at and blocks.expires. Older files are migrated in place, rows kept.
//   - Errors: every function returns false / kError (or nullptr for Open) and sets *error to
//     "<operation>: <SQLite's message>" (error may be nullptr). Nothing throws across this API
//     but std::bad_alloc. A file that is not a database (corrupted, garbage) makes Open() fail
//     with a message saying so; it never crashes.
//   - Times are Unix seconds (UTC), given by the caller, so tests and `replay` control the clock.
//   - Secrets: none pass through this API (no tokens, no passwords); nothing secret is stored.
//     Evidence is whatever JSON the detector built (addresses, IPs, subjects, log lines).
//   - Thread safety: a StateStore may be shared by threads; an internal mutex serializes its
//     calls (each call is one transaction on the one connection). Do not use one across fork():
//     a child opens its own.

#ifndef EXIMGUARD_SIDECAR_STATE_STORE_H_
#define EXIMGUARD_SIDECAR_STATE_STORE_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "layout.h"
#include "log_follower.h"

struct sqlite3;

namespace eg::sidecar {

inline constexpr int kSchemaVersion = 3;
inline constexpr const char* kStateDbName = "eximguard.db";
inline constexpr int kDefaultRetentionDays = 30;

// Block kinds the sidecar uses today; the column takes any non-empty word, so the WHM actions of
// the next issue (suspendacct, suspend_login, ...) need no migration.
// StoredBlock::by of the blocks eximguard made itself (automatic: they lapse, and are the first
// left out of a full policy table).
inline constexpr const char* kAutomaticBy = "eximguard";
inline constexpr const char* kBlockKindBlock = "block";  // blocked in the shared table (deny)
inline constexpr const char* kBlockKindSuspendOutgoing = "suspend_outgoing";
inline constexpr const char* kBlockKindHoldOutgoing = "hold_outgoing";

// One incident as stored (the detectors' Incident, detectors.h, flattened: its ips, scripts,
// subjects, lines and threshold go into evidence_json). key_class is text because incidents have
// a class the shared table has not: "ip" (auth failures from one address).
struct StoredIncident {
  int64_t id = 0;  // set by RecordIncident
  std::string key;
  std::string key_class = "sender";  // "sender", "cwd", "uid" or "ip" (checked)
  std::string rule;
  int64_t window_start = 0;  // the detector's window that tripped
  int64_t window_end = 0;
  int64_t time = 0;  // when it was detected; the cooldown is measured on this
  int64_t count = 0;
  std::string evidence_json = "{}";  // must be valid JSON (checked); "" is stored as "{}"
  std::string action;                // what was done: "block", "notify_only", ...
  // When it was recorded (unix seconds); 0 when recording: the clock. Retention is judged by
  // this, not by `time`: a `rerun` of a 40-day-old log keeps what it found for retention_days.
  int64_t recorded_at = 0;
  // The evidence was one an attacker cannot forge (engine.h); only such an incident punishes.
  bool trusted = false;
};

enum class RecordOutcome : uint8_t {
  kRecorded,  // inserted; StoredIncident::id set
  kCooldown,  // an incident for the same key and rule lies within cooldown_seconds of this one
  kError,
};

struct StoredBlock {
  int64_t id = 0;
  std::string key;
  KeyClass key_class = KeyClass::kSender;
  std::string kind = kBlockKindBlock;
  int64_t since = 0;
  std::string reason;
  std::string by;  // who: an admin id, "cli:root", "eximguard" for automatic blocks
  bool active = true;
  int64_t expires = 0;     // when an automatic block lapses (0: never; an admin's never do)
  int64_t removed_at = 0;  // set when RemoveBlock deactivated it
  std::string removed_by;
};

struct WhitelistEntry {
  std::string key;  // as written by the admin (see policy_key.h)
  std::string added_by;
  int64_t time = 0;
  std::string note;
};

struct AuditEntry {
  int64_t id = 0;
  int64_t time = 0;
  std::string who;
  std::string action;  // "suspend", "unsuspend", "whitelist_add", "reset", ...
  std::string key;
  std::string detail;
};

// A limit an admin set at run time (`eximguard set KEY VALUE`); it applies on top of the config's
// (WithStoredLimits, policy_from_state.h). One row per class and key.
struct StoredLimit {
  KeyClass key_class = KeyClass::kSender;
  std::string key;                     // as the table sees it (policy_key.h); "" = class default
  std::optional<uint32_t> per_minute;  // unset: the config's; 0 = unlimited
  std::optional<uint32_t> per_hour;
  std::string set_by;  // who: CliUser(), "telegram:ID", ...
  int64_t time = 0;
};

struct PruneCounts {
  int64_t incidents = 0;
  int64_t audit = 0;
  int64_t blocks = 0;  // inactive ones only
};

// Why `dir` (resolved) or one of its parents is unsafe as state_dir, or "" when it is safe. Safe:
// the directory is owned by the effective user (root when running as root) and writable by no
// group or others; each parent is owned by that user or root and writable by no group or others,
// unless it is root's and sticky (/tmp, 1777).
std::string UnsafeStateDir(const std::string& dir);

struct StateStoreOptions {
  int busy_timeout_ms = 5000;
};

class StateStore {
 public:
  // Creates `state_dir` (0700, with missing parents) and the database (0600) when absent, sets
  // the pragmas (WAL, synchronous=FULL, foreign_keys, busy_timeout) and migrates the schema.
  static std::unique_ptr<StateStore> Open(const std::string& state_dir, std::string* error,
                                          StateStoreOptions options = {});
  ~StateStore();
  StateStore(const StateStore&) = delete;
  StateStore& operator=(const StateStore&) = delete;

  const std::string& path() const { return path_; }
  bool SchemaVersion(int* version, std::string* error);

  // Incidents. RecordIncident refuses (kCooldown) when an incident for the same key and rule has a
  // time within (time - cooldown, time + cooldown) and is at least as trusted (an untrusted
  // notice never holds back a trusted incident); cooldown 0 records always. Lists are oldest
  // first (time, then id); `since` is inclusive; limit 0 means no limit.
  // With `block`, the block is added (as AddBlock does) in the same transaction as the
  // incident, so a crash cannot leave a recorded incident without its block; *block_added (may
  // be null) says whether it was new.
  RecordOutcome RecordIncident(StoredIncident* incident, int64_t cooldown_seconds,
                               std::string* error, const StoredBlock* block = nullptr,
                               bool* block_added = nullptr);
  bool ListIncidents(int64_t since, int64_t limit, std::vector<StoredIncident>* out,
                     std::string* error);
  bool IncidentsForKey(const std::string& key, std::vector<StoredIncident>* out,
                       std::string* error);
  // *found is false when there is no incident `id` (pruned, or never recorded).
  bool IncidentById(int64_t id, StoredIncident* out, bool* found, std::string* error);
  // *out is empty when the key never had an incident for that rule.
  bool LastIncidentTime(const std::string& key, const std::string& rule,
                        std::optional<int64_t>* out, std::string* error);

  // Blocks. AddBlock is idempotent: an active block of the same class, key and kind already
  // there leaves the store unchanged (*added false). RemoveBlock deactivates (keeps the row for
  // history); an empty kind removes every kind for the key; *removed counts them. Both write an
  // audit row (who = block.by / by) in the same transaction when they change something.
  bool AddBlock(const StoredBlock& block, bool* added, std::string* error);
  bool RemoveBlock(KeyClass key_class, const std::string& key, const std::string& kind, int64_t now,
                   const std::string& by, int* removed, std::string* error);
  bool ActiveBlocks(std::vector<StoredBlock>* out, std::string* error);
  // A lapsing automatic block judged again and kept: its expiry moves to `expires` (audited
  // "block_renew" by `by`).
  bool RenewBlock(int64_t id, int64_t expires, const std::string& by, std::string* error);

  // Whitelist: one entry per key; adding an existing key keeps the first entry (*added false).
  // Changes are audited like blocks.
  bool AddWhitelist(const WhitelistEntry& entry, bool* added, std::string* error);
  bool RemoveWhitelist(const std::string& key, int64_t now, const std::string& by, bool* removed,
                       std::string* error);
  bool ListWhitelist(std::vector<WhitelistEntry>* out, std::string* error);

  // Limits set at run time. SetLimit stores limit.per_minute / per_hour for the class and key;
  // a window it leaves unset keeps what was stored for it before (unset when nothing was), and
  // at least one must be set. RemoveLimit deletes the row (*removed: there was one; may be
  // null). Both write an audit row ("set_limit" / "remove_limit", who = set_by / by) in the same
  // transaction. ListLimits: every row, by class then key.
  bool SetLimit(const StoredLimit& limit, std::string* error);
  bool RemoveLimit(KeyClass key_class, const std::string& key, int64_t now, const std::string& by,
                   bool* removed, std::string* error);
  bool ListLimits(std::vector<StoredLimit>* out, std::string* error);

  // Checkpoints of the log followers, by name ("mainlog", "dovecot"). *found false: none saved.
  bool SaveCheckpoint(const std::string& name, const Checkpoint& cp, std::string* error);
  bool LoadCheckpoint(const std::string& name, Checkpoint* out, bool* found, std::string* error);

  // Audit trail of admin actions. Oldest first, since inclusive, limit 0 = no limit.
  bool Audit(const AuditEntry& entry, std::string* error);
  bool ListAudit(int64_t since, int64_t limit, std::vector<AuditEntry>* out, std::string* error);

  // Deletes incidents RECORDED before now - retention_days days (recorded_at, not their log
  // time), audit rows older than that, and inactive blocks removed before then. Never active
  // blocks, the whitelist, limits or checkpoints. counts may be null.
  bool Prune(int64_t now, int retention_days, PruneCounts* counts, std::string* error);

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const;  // sqlite3_close_v2
  };
  using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

  StateStore(std::string path, DbPtr db);
  bool Migrate(std::string* error);

  std::string path_;
  DbPtr db_;
  std::mutex mu_;
};

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_STATE_STORE_H_
