// state_store.cpp - StateStore over SQLite's C API (see state_store.h for the contract).
//
// CONTRACT
//   Internal helpers only: Stmt (a prepared statement, finalized on scope exit; values are always
//   bound, never formatted into SQL) and Txn (BEGIN IMMEDIATE ... COMMIT, rolled back on scope
//   exit unless committed). Every public member takes mu_ for its whole transaction.

#include "state_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string_view>
#include <utility>

#include "table.h"

namespace eg::sidecar {
namespace {

bool SetError(std::string* error, std::string_view op, std::string_view why) {
  if (error != nullptr) {
    *error = std::string(op) + ": " + std::string(why);
  }
  return false;
}

bool SqlError(std::string* error, std::string_view op, sqlite3* db) {
  return SetError(error, op, db != nullptr ? sqlite3_errmsg(db) : "out of memory");
}

KeyClass ClassFromText(std::string_view s) {
  if (s == "cwd") return KeyClass::kCwd;
  if (s == "uid") return KeyClass::kUid;
  return KeyClass::kSender;
}

// One prepared statement. Bind() takes 1-based indexes like SQLite.
class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) {
      sqlite3_finalize(stmt_);
      stmt_ = nullptr;
    }
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  bool ok() const { return stmt_ != nullptr; }
  bool Bind(int i, int64_t v) { return ok() && sqlite3_bind_int64(stmt_, i, v) == SQLITE_OK; }
  bool Bind(int i, const std::string& v) {
    return ok() && sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()),
                                     SQLITE_TRANSIENT) == SQLITE_OK;
  }
  bool Bind(int i, const char* v) { return Bind(i, std::string(v)); }
  // An unset optional binds NULL.
  bool Bind(int i, const std::optional<uint32_t>& v) {
    if (v) return Bind(i, int64_t{*v});
    return ok() && sqlite3_bind_null(stmt_, i) == SQLITE_OK;
  }
  // 0 binds NULL (a time that is not set).
  bool BindTime(int i, int64_t v) {
    if (v != 0) return Bind(i, v);
    return ok() && sqlite3_bind_null(stmt_, i) == SQLITE_OK;
  }

  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return ok() ? sqlite3_step(stmt_) : SQLITE_ERROR; }
  // Runs a statement that returns no rows.
  bool Run() { return Step() == SQLITE_DONE; }

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    if (p == nullptr) return {};
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

bool Exec(sqlite3* db, const char* sql) {
  return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
}

// BEGIN IMMEDIATE takes the write lock at once (waiting up to busy_timeout), so a read followed
// by a write inside the transaction cannot be overtaken by another process.
class Txn {
 public:
  explicit Txn(sqlite3* db) : db_(db) { began_ = Exec(db, "BEGIN IMMEDIATE"); }
  ~Txn() {
    if (began_ && !done_) Exec(db_, "ROLLBACK");
  }
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  bool began() const { return began_; }
  bool Commit() {
    done_ = Exec(db_, "COMMIT");
    return done_;
  }

 private:
  sqlite3* db_;
  bool began_ = false;
  bool done_ = false;
};

// Version 1. Times are Unix seconds. key_class is stored as text for an admin reading the file.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE incidents (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL,
  key_class TEXT NOT NULL CHECK (key_class IN ('sender', 'cwd', 'uid', 'ip')),
  rule TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  window_end INTEGER NOT NULL,
  time INTEGER NOT NULL,
  count INTEGER NOT NULL,
  evidence TEXT NOT NULL,
  action TEXT NOT NULL
);
CREATE INDEX incidents_key_rule_time ON incidents (key, rule, time);
CREATE INDEX incidents_time ON incidents (time);
CREATE TABLE blocks (
  id INTEGER PRIMARY KEY,
  key TEXT NOT NULL,
  key_class TEXT NOT NULL CHECK (key_class IN ('sender', 'cwd', 'uid')),
  kind TEXT NOT NULL CHECK (kind <> ''),
  since INTEGER NOT NULL,
  reason TEXT NOT NULL,
  by TEXT NOT NULL,
  active INTEGER NOT NULL CHECK (active IN (0, 1)),
  removed_at INTEGER,
  removed_by TEXT
);
CREATE UNIQUE INDEX blocks_one_active ON blocks (key_class, key, kind) WHERE active = 1;
CREATE TABLE whitelist (
  key TEXT PRIMARY KEY,
  added_by TEXT NOT NULL,
  time INTEGER NOT NULL,
  note TEXT NOT NULL
);
CREATE TABLE checkpoints (
  name TEXT PRIMARY KEY,
  dev INTEGER NOT NULL,
  ino INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  last_line_hash INTEGER NOT NULL
);
CREATE TABLE audit (
  id INTEGER PRIMARY KEY,
  time INTEGER NOT NULL,
  who TEXT NOT NULL,
  action TEXT NOT NULL,
  key TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX audit_time ON audit (time);
)sql";

// Version 2: limits set at run time (`eximguard set`). key '' is the class's default; a NULL
// window is the config's.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE limits (
  key_class TEXT NOT NULL CHECK (key_class IN ('sender', 'cwd', 'uid')),
  key TEXT NOT NULL,
  per_minute INTEGER CHECK (per_minute BETWEEN 0 AND 4294967295),
  per_hour INTEGER CHECK (per_hour BETWEEN 0 AND 4294967295),
  set_by TEXT NOT NULL,
  time INTEGER NOT NULL,
  PRIMARY KEY (key_class, key)
);
)sql";

// Version 3: when an incident was recorded (retention is judged by it, not by the log time: a
// `rerun` of an old log keeps what it recorded for retention_days); whether its evidence was
// trusted (engine.h: only a trusted incident punishes; older rows count as untrusted); and when a
// block lapses (NULL: never; automatic blocks expire, an admin's stay until `unsuspend`).
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE incidents ADD COLUMN recorded_at INTEGER;
UPDATE incidents SET recorded_at = time;
ALTER TABLE incidents ADD COLUMN trusted INTEGER NOT NULL DEFAULT 0 CHECK (trusted IN (0, 1));
CREATE INDEX incidents_recorded_at ON incidents (recorded_at);
ALTER TABLE blocks ADD COLUMN expires INTEGER;
)sql";

// migrations[i] takes the schema from version i to i + 1.
constexpr const char* kMigrations[] = {kSchemaV1, kSchemaV2, kSchemaV3};
static_assert(std::size(kMigrations) == kSchemaVersion);

// mkdir -p with mode 0700 for every directory it creates.
bool MakeDirs(const std::string& dir, std::string* error) {
  if (dir.empty()) return SetError(error, "open state store", "empty state_dir");
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string part = dir.substr(0, pos);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return SetError(error, "create state_dir " + part, std::strerror(errno));
    }
  }
  struct stat st {};
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return SetError(error, "open state store", dir + " is not a directory");
  }
  const std::string unsafe = UnsafeStateDir(dir);
  if (!unsafe.empty()) return SetError(error, "state_dir " + dir, unsafe);
  return true;
}

}  // namespace

std::string UnsafeStateDir(const std::string& dir) {
  char* real = realpath(dir.c_str(), nullptr);
  if (real == nullptr) return std::string("cannot resolve: ") + std::strerror(errno);
  std::string path(real);
  std::free(real);
  const uid_t me = geteuid();
  const std::string who =
      me == 0 ? "root" : "uid " + std::to_string(me) + " (the user running this)";
  for (bool first = true;; first = false) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return path + ": " + std::strerror(errno);
    const std::string what = first ? path : "its parent " + path;
    // The directory itself is ours; a parent may also be root's (/var/lib, /tmp).
    if (st.st_uid != me && (first || st.st_uid != 0)) {
      return "refused: " + what + " is owned by uid " + std::to_string(st.st_uid) + ", not " + who +
             ": its owner could replace the database or the lock file";
    }
    // A root-owned sticky parent (/tmp, mode 1777) is fine: nobody else can rename our entry.
    const bool sticky_root = !first && st.st_uid == 0 && (st.st_mode & S_ISVTX) != 0;
    if ((st.st_mode & 022) != 0 && !sticky_root) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      return "refused: " + what + " is writable by " +
             ((st.st_mode & 020) != 0 ? std::string("its group") : std::string("others")) +
             " (mode " + mode + "): they could replace the database or the lock file";
    }
    if (path == "/") return "";
    const size_t slash = path.rfind('/');
    path = slash == 0 ? "/" : path.substr(0, slash);
  }
}

namespace {

// Creates the file 0600 if absent; narrows an existing one to 0600.
bool PrepareFile(const std::string& path, std::string* error) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return SetError(error, "open " + path, std::strerror(errno));
  struct stat st {};
  bool ok = fstat(fd, &st) == 0;
  if (ok && (st.st_mode & 0777) != 0600) ok = fchmod(fd, 0600) == 0;
  int saved = errno;
  close(fd);
  if (!ok) return SetError(error, "set mode 0600 on " + path, std::strerror(saved));
  return true;
}

StoredIncident ReadIncident(const Stmt& s) {
  StoredIncident inc;
  inc.id = s.Int(0);
  inc.key = s.Text(1);
  inc.key_class = s.Text(2);
  inc.rule = s.Text(3);
  inc.window_start = s.Int(4);
  inc.window_end = s.Int(5);
  inc.time = s.Int(6);
  inc.count = s.Int(7);
  inc.evidence_json = s.Text(8);
  inc.action = s.Text(9);
  inc.recorded_at = s.IsNull(10) ? inc.time : s.Int(10);
  inc.trusted = s.Int(11) != 0;
  return inc;
}

constexpr const char* kIncidentColumns =
    "SELECT id, key, key_class, rule, window_start, window_end, time, count, evidence, action, "
    "recorded_at, trusted FROM incidents ";

bool InsertAudit(sqlite3* db, int64_t time, const std::string& who, const char* action,
                 const std::string& key, const std::string& detail) {
  Stmt s(db, "INSERT INTO audit (time, who, action, key, detail) VALUES (?, ?, ?, ?, ?)");
  return s.Bind(1, time) && s.Bind(2, who) && s.Bind(3, action) && s.Bind(4, key) &&
         s.Bind(5, detail) && s.Run();
}

}  // namespace

void StateStore::DbCloser::operator()(sqlite3* db) const {
  sqlite3_close_v2(db);
}

StateStore::StateStore(std::string path, DbPtr db) : path_(std::move(path)), db_(std::move(db)) {}

StateStore::~StateStore() = default;

std::unique_ptr<StateStore> StateStore::Open(const std::string& state_dir, std::string* error,
                                             StateStoreOptions options) {
  if (!MakeDirs(state_dir, error)) return nullptr;
  std::string path = state_dir + "/" + kStateDbName;
  if (!PrepareFile(path, error)) return nullptr;

  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | SQLITE_OPEN_NOFOLLOW,
                           nullptr);
  DbPtr db(raw);
  const std::string op = "open state db " + path;
  if (rc != SQLITE_OK) {
    SqlError(error, op, db.get());
    return nullptr;
  }
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), options.busy_timeout_ms);

  // journal_mode answers with the mode it now has; anything but "wal" is a failure.
  {
    Stmt s(db.get(), "PRAGMA journal_mode=WAL");
    if (s.Step() != SQLITE_ROW) {
      SqlError(error, op + ": set journal_mode=WAL", db.get());
      return nullptr;
    }
    if (s.Text(0) != "wal") {
      SetError(error, op, "journal_mode is " + s.Text(0) + ", not wal");
      return nullptr;
    }
  }
  if (!Exec(db.get(), "PRAGMA synchronous=FULL") || !Exec(db.get(), "PRAGMA foreign_keys=ON")) {
    SqlError(error, op + ": set pragmas", db.get());
    return nullptr;
  }
  std::unique_ptr<StateStore> store(new StateStore(path, std::move(db)));
  if (!store->Migrate(error)) return nullptr;
  return store;
}

bool StateStore::Migrate(std::string* error) {
  sqlite3* db = db_.get();
  const std::string op = "migrate schema of " + path_;
  Txn txn(db);
  if (!txn.began()) return SqlError(error, op, db);
  if (!Exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")) {
    return SqlError(error, op, db);
  }
  int64_t version = 0;
  {
    Stmt s(db, "SELECT version FROM schema_version");
    int rc = s.Step();
    if (rc == SQLITE_ROW) {
      version = s.Int(0);
    } else if (rc != SQLITE_DONE) {
      return SqlError(error, op, db);
    } else {
      Stmt ins(db, "INSERT INTO schema_version (version) VALUES (0)");
      if (!ins.Run()) return SqlError(error, op, db);
    }
  }
  if (version > kSchemaVersion) {
    return SetError(error, op,
                    "schema version " + std::to_string(version) +
                        " is newer than this eximguard knows (" + std::to_string(kSchemaVersion) +
                        ")");
  }
  for (int64_t v = version; v < kSchemaVersion; ++v) {
    if (!Exec(db, kMigrations[v])) {
      return SqlError(error, op + " to version " + std::to_string(v + 1), db);
    }
  }
  Stmt upd(db, "UPDATE schema_version SET version = ?");
  if (!upd.Bind(1, int64_t{kSchemaVersion}) || !upd.Run() || !txn.Commit()) {
    return SqlError(error, op, db);
  }
  return true;
}

bool StateStore::SchemaVersion(int* version, std::string* error) {
  std::lock_guard lock(mu_);
  Stmt s(db_.get(), "SELECT version FROM schema_version");
  if (s.Step() != SQLITE_ROW) return SqlError(error, "SchemaVersion", db_.get());
  *version = static_cast<int>(s.Int(0));
  return true;
}

namespace {

// Inserts `block` unless an active block of the same class, key and kind exists (the partial
// unique index (class, key, kind) WHERE active = 1 makes that insert an ignored one), and audits
// it when inserted. Inside the caller's transaction.
bool InsertBlock(sqlite3* db, const StoredBlock& block, bool* inserted) {
  Stmt s(db,
         "INSERT OR IGNORE INTO blocks (key, key_class, kind, since, reason, by, active, expires) "
         "VALUES (?, ?, ?, ?, ?, ?, 1, ?)");
  if (!s.Bind(1, block.key) || !s.Bind(2, KeyClassName(block.key_class)) ||
      !s.Bind(3, block.kind) || !s.Bind(4, block.since) || !s.Bind(5, block.reason) ||
      !s.Bind(6, block.by) || !s.BindTime(7, block.expires) || !s.Run()) {
    return false;
  }
  *inserted = sqlite3_changes(db) > 0;
  return !*inserted || InsertAudit(db, block.since, block.by, "block_add", block.key,
                                   block.kind + (block.reason.empty() ? "" : ": " + block.reason));
}

}  // namespace

RecordOutcome StateStore::RecordIncident(StoredIncident* incident, int64_t cooldown_seconds,
                                         std::string* error, const StoredBlock* block,
                                         bool* block_added) {
  const char* op = "RecordIncident";
  if (incident->key.empty() || incident->rule.empty()) {
    SetError(error, op, "key and rule must not be empty");
    return RecordOutcome::kError;
  }
  const std::string& kc = incident->key_class;
  if (kc != "sender" && kc != "cwd" && kc != "uid" && kc != "ip") {
    SetError(error, op, "key_class must be sender, cwd, uid or ip");
    return RecordOutcome::kError;
  }
  if (incident->evidence_json.empty()) incident->evidence_json = "{}";
  if (!nlohmann::json::accept(incident->evidence_json)) {
    SetError(error, op, "evidence is not valid JSON");
    return RecordOutcome::kError;
  }
  std::lock_guard lock(mu_);
  sqlite3* db = db_.get();
  Txn txn(db);
  if (!txn.began()) {
    SqlError(error, op, db);
    return RecordOutcome::kError;
  }
  if (cooldown_seconds > 0) {
    // An untrusted notice does not hold back a trusted incident of the same key and rule (it
    // must still be acted on); a trusted one holds back both.
    Stmt s(db,
           "SELECT 1 FROM incidents WHERE key = ? AND rule = ? AND time > ? AND time < ? "
           "AND trusted >= ? LIMIT 1");
    if (!s.Bind(1, incident->key) || !s.Bind(2, incident->rule) ||
        !s.Bind(3, incident->time - cooldown_seconds) ||
        !s.Bind(4, incident->time + cooldown_seconds) ||
        !s.Bind(5, int64_t{incident->trusted ? 1 : 0})) {
      SqlError(error, op, db);
      return RecordOutcome::kError;
    }
    int rc = s.Step();
    if (rc == SQLITE_ROW) return RecordOutcome::kCooldown;  // Txn rolls back (nothing written)
    if (rc != SQLITE_DONE) {
      SqlError(error, op, db);
      return RecordOutcome::kError;
    }
  }
  Stmt ins(db,
           "INSERT INTO incidents (key, key_class, rule, window_start, window_end, time, count, "
           "evidence, action, recorded_at, trusted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  const int64_t recorded_at =
      incident->recorded_at != 0 ? incident->recorded_at : static_cast<int64_t>(std::time(nullptr));
  bool ok = ins.Bind(1, incident->key) && ins.Bind(2, incident->key_class) &&
            ins.Bind(3, incident->rule) && ins.Bind(4, incident->window_start) &&
            ins.Bind(5, incident->window_end) && ins.Bind(6, incident->time) &&
            ins.Bind(7, incident->count) && ins.Bind(8, incident->evidence_json) &&
            ins.Bind(9, incident->action) && ins.Bind(10, recorded_at) &&
            ins.Bind(11, int64_t{incident->trusted ? 1 : 0}) && ins.Run();
  if (!ok) {
    SqlError(error, op, db);
    return RecordOutcome::kError;
  }
  int64_t id = sqlite3_last_insert_rowid(db);
  bool added = false;
  if (block != nullptr &&
      (block->key.empty() || block->kind.empty() || !InsertBlock(db, *block, &added))) {
    if (block->key.empty() || block->kind.empty()) {
      SetError(error, op, "block key and kind must not be empty");
    } else {
      SqlError(error, op, db);
    }
    return RecordOutcome::kError;
  }
  if (!txn.Commit()) {
    SqlError(error, op, db);
    return RecordOutcome::kError;
  }
  incident->id = id;
  incident->recorded_at = recorded_at;
  if (block_added != nullptr) *block_added = added;
  return RecordOutcome::kRecorded;
}

bool StateStore::ListIncidents(int64_t since, int64_t limit, std::vector<StoredIncident>* out,
                               std::string* error) {
  std::lock_guard lock(mu_);
  out->clear();
  std::string sql = std::string(kIncidentColumns) + "WHERE time >= ? ORDER BY time, id LIMIT ?";
  Stmt s(db_.get(), sql.c_str());
  if (!s.Bind(1, since) || !s.Bind(2, limit > 0 ? limit : int64_t{-1})) {
    return SqlError(error, "ListIncidents", db_.get());
  }
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out->push_back(ReadIncident(s));
  if (rc != SQLITE_DONE) return SqlError(error, "ListIncidents", db_.get());
  return true;
}

bool StateStore::IncidentsForKey(const std::string& key, std::vector<StoredIncident>* out,
                                 std::string* error) {
  std::lock_guard lock(mu_);
  out->clear();
  std::string sql = std::string(kIncidentColumns) + "WHERE key = ? ORDER BY time, id";
  Stmt s(db_.get(), sql.c_str());
  if (!s.Bind(1, key)) return SqlError(error, "IncidentsForKey", db_.get());
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) out->push_back(ReadIncident(s));
  if (rc != SQLITE_DONE) return SqlError(error, "IncidentsForKey", db_.get());
  return true;
}

bool StateStore::IncidentById(int64_t id, StoredIncident* out, bool* found, std::string* error) {
  std::lock_guard lock(mu_);
  *found = false;
  std::string sql = std::string(kIncidentColumns) + "WHERE id = ?";
  Stmt s(db_.get(), sql.c_str());
  if (!s.Bind(1, id)) return SqlError(error, "IncidentById", db_.get());
  const int rc = s.Step();
  if (rc == SQLITE_ROW) {
    *out = ReadIncident(s);
    *found = true;
  } else if (rc != SQLITE_DONE) {
    return SqlError(error, "IncidentById", db_.get());
  }
  return true;
}

bool StateStore::LastIncidentTime(const std::string& key, const std::string& rule,
                                  std::optional<int64_t>* out, std::string* error) {
  std::lock_guard lock(mu_);
  out->reset();
  Stmt s(db_.get(), "SELECT MAX(time) FROM incidents WHERE key = ? AND rule = ?");
  if (!s.Bind(1, key) || !s.Bind(2, rule) || s.Step() != SQLITE_ROW) {
    return SqlError(error, "LastIncidentTime", db_.get());
  }
  if (!s.IsNull(0)) *out = s.Int(0);
  return true;
}

bool StateStore::AddBlock(const StoredBlock& block, bool* added, std::string* error) {
  const char* op = "AddBlock";
  if (block.key.empty() || block.kind.empty()) {
    return SetError(error, op, "key and kind must not be empty");
  }
  std::lock_guard lock(mu_);
  sqlite3* db = db_.get();
  Txn txn(db);
  if (!txn.began()) return SqlError(error, op, db);
  bool inserted = false;
  if (!InsertBlock(db, block, &inserted)) return SqlError(error, op, db);
  if (!txn.Commit()) return SqlError(error, op, db);
  if (added != nullptr) *added = inserted;
  return true;
}

bool StateStore::RemoveBlock(KeyClass key_class, const std::string& key, const std::string& kind,
                             int64_t now, const std::string& by, int* removed, std::string* error) {
  const char* op = "RemoveBlock";
  std::lock_guard lock(mu_);
  sqlite3* db = db_.get();
  Txn txn(db);
  if (!txn.began()) return SqlError(error, op, db);
  Stmt s(db,
         "UPDATE blocks SET active = 0, removed_at = ?, removed_by = ? "
         "WHERE active = 1 AND key_class = ? AND key = ? AND (? = '' OR kind = ?)");
  if (!s.Bind(1, now) || !s.Bind(2, by) || !s.Bind(3, KeyClassName(key_class)) || !s.Bind(4, key) ||
      !s.Bind(5, kind) || !s.Bind(6, kind) || !s.Run()) {
    return SqlError(error, op, db);
  }
  int n = sqlite3_changes(db);
  if (n > 0 && !InsertAudit(db, now, by, "block_remove", key, kind.empty() ? "all kinds" : kind)) {
    return SqlError(error, op, db);
  }
  if (!txn.Commit()) return SqlError(error, op, db);
  if (removed != nullptr) *removed = n;
  return true;
}

bool StateStore::RenewBlock(int64_t id, int64_t expires, const std::string& by,
                            std::string* error) {
  const char* op = "RenewBlock";
  std::lock_guard lock(mu_);
  sqlite3* db = db_.get();
  Txn txn(db);
  if (!txn.began()) return SqlError(error, op, db);
  std::string key;
  {
    Stmt q(db, "SELECT key FROM blocks WHERE id = ? AND active = 1");
    if (!q.Bind(1, id)) return SqlError(error, op, db);
    const int rc = q.Step();
    if (rc == SQLITE_DONE) return SetError(error, op, "no active block #" + std::to_string(id));
    if (rc != SQLITE_ROW) return SqlError(error, op, db);
    key = q.Text(0);
  }
  Stmt s(db, "UPDATE blocks SET expires = ? WHERE id = ? AND active = 1");
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  if (!s.BindTime(1, expires) || !s.Bind(2, id) || !s.Run() ||
      !InsertAudit(db, now, by, "block_renew", key,
                   "until " + std::to_string(expires) + " (unix)")) {
    return SqlError(error, op, db);
  }
  if (!txn.Commit()) return SqlError(error, op, db);
  return true;
}

bool StateStore::ActiveBlocks(std::vector<StoredBlock>* out, std::string* error) {
  std::lock_guard lock(mu_);
  out->clear();
  Stmt s(db_.get(),
         "SELECT id, key, key_class, kind, since, reason, by, expires FROM blocks "
         "WHERE active = 1 ORDER BY since, id");
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    StoredBlock b;
    b.id = s.Int(0);
    b.key = s.Text(1);
    b.key_class = ClassFromText(s.Text(2));
    b.kind = s.Text(3);
    b.since = s.Int(4);
    b.reason = s.Text(5);
    b.by = s.Text(6);
    b.expires = s.IsNull(7) ? 0 : s.Int(7);
    b.active = true;
    out->push_back(std::move(b));
  }
  if (rc != SQLITE_DONE) return SqlError(error, "ActiveBlocks", db_.get());
  return true;
}

bool StateStore::AddWhitelist(const WhitelistEntry& entry, bool* added, std::string* error) {
  const char* op = "AddWhitelist";
  if (entry.key.empty()) return SetError(error, op, "key must not be empty");
  std::lock_guard lock(mu_);
  sqlite3* db = db_.get();
  Txn txn(db);
  if (!txn.began()) return SqlError(error, op, db);
  Stmt s(db, "INSERT OR IGNORE INTO whitelist (key, added_by, time, note) VALUES (?, ?, ?, ?)");
  if (!s.Bind(1, entry.key) || !s.Bind(2, entry.added_by) || !s.Bind(3, entry.time) ||
      !s.Bind(4, entry.note) || !s.Run()) {
    return SqlError(error, op, db);
  }
  bool inserted = sqlite3_changes(db) > 0;
  if (inserted &&
      !InsertAudit(db, entry.time, entry.added_by, "whitelist_add", entry.key, entry.note)) {
    return SqlError(error, op, db);
  }
  if (!txn.Commit()) return SqlError(error, op, db);
  if (added != nullptr) *added = inserted;
  return true;
}

bool StateStore::RemoveWhitelist(const std::string& key, int64_t now, const std::string& by,
                                 bool* removed, std::string* error) {
  const char* op = "RemoveWhitelist";
  std::lock_guard lock(mu_);
  sqlite3* db = db_.get();
  Txn txn(db);
  if (!txn.began()) return SqlError(error, op, db);
  Stmt s(db, "DELETE FROM whitelist WHERE key = ?");
  if (!s.Bind(1, key) || !s.Run()) return SqlError(error, op, db);
  bool deleted = sqlite3_changes(db) > 0;
  if (deleted && !InsertAudit(db, now, by, "whitelist_remove", key, "")) {
    return SqlError(error, op, db);
  }
  if (!txn.Commit()) return SqlError(error, op, db);
  if (removed != nullptr) *removed = deleted;
  return true;
}

bool StateStore::ListWhitelist(std::vector<WhitelistEntry>* out, std::string* error) {
  std::lock_guard lock(mu_);
  out->clear();
  Stmt s(db_.get(), "SELECT key, added_by, time, note FROM whitelist ORDER BY key");
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out->push_back({s.Text(0), s.Text(1), s.Int(2), s.Text(3)});
  }
  if (rc != SQLITE_DONE) return SqlError(error, "ListWhitelist", db_.get());
  return true;
}

namespace {

// How the audit trail names a limit's key: as an admin writes it.
std::string LimitAuditKey(KeyClass key_class, const std::string& key) {
  if (key.empty()) return std::string(KeyClassName(key_class)) + " (class default)";
  return key_class == KeyClass::kUid ? "uid:" + key : key;
}

std::string WindowText(const std::optional<uint32_t>& v, const char* name) {
  return v ? std::string(name) + "=" + std::to_string(*v) : "";
}

}  // namespace

bool StateStore::SetLimit(const StoredLimit& limit, std::string* error) {
  const char* op = "SetLimit";
  if (!limit.per_minute && !limit.per_hour) {
    return SetError(error, op, "per_minute or per_hour must be set");
  }
  std::lock_guard lock(mu_);
  sqlite3* db = db_.get();
  Txn txn(db);
  if (!txn.began()) return SqlError(error, op, db);
  Stmt s(db,
         "INSERT INTO limits (key_class, key, per_minute, per_hour, set_by, time) "
         "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key_class, key) DO UPDATE SET "
         "per_minute = COALESCE(excluded.per_minute, limits.per_minute), "
         "per_hour = COALESCE(excluded.per_hour, limits.per_hour), "
         "set_by = excluded.set_by, time = excluded.time");
  if (!s.Bind(1, KeyClassName(limit.key_class)) || !s.Bind(2, limit.key) ||
      !s.Bind(3, limit.per_minute) || !s.Bind(4, limit.per_hour) || !s.Bind(5, limit.set_by) ||
      !s.Bind(6, limit.time) || !s.Run()) {
    return SqlError(error, op, db);
  }
  std::string detail = WindowText(limit.per_minute, "per_minute");
  if (limit.per_hour) {
    detail += (detail.empty() ? "" : " ") + WindowText(limit.per_hour, "per_hour");
  }
  if (!InsertAudit(db, limit.time, limit.set_by, "set_limit",
                   LimitAuditKey(limit.key_class, limit.key), detail) ||
      !txn.Commit()) {
    return SqlError(error, op, db);
  }
  return true;
}

bool StateStore::RemoveLimit(KeyClass key_class, const std::string& key, int64_t now,
                             const std::string& by, bool* removed, std::string* error) {
  const char* op = "RemoveLimit";
  std::lock_guard lock(mu_);
  sqlite3* db = db_.get();
  Txn txn(db);
  if (!txn.began()) return SqlError(error, op, db);
  Stmt s(db, "DELETE FROM limits WHERE key_class = ? AND key = ?");
  if (!s.Bind(1, KeyClassName(key_class)) || !s.Bind(2, key) || !s.Run()) {
    return SqlError(error, op, db);
  }
  const bool deleted = sqlite3_changes(db) > 0;
  if (deleted && !InsertAudit(db, now, by, "remove_limit", LimitAuditKey(key_class, key),
                              "back to the config's")) {
    return SqlError(error, op, db);
  }
  if (!txn.Commit()) return SqlError(error, op, db);
  if (removed != nullptr) *removed = deleted;
  return true;
}

bool StateStore::ListLimits(std::vector<StoredLimit>* out, std::string* error) {
  std::lock_guard lock(mu_);
  out->clear();
  Stmt s(db_.get(),
         "SELECT key_class, key, per_minute, per_hour, set_by, time FROM limits "
         "ORDER BY key_class, key");
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    StoredLimit l;
    l.key_class = ClassFromText(s.Text(0));
    l.key = s.Text(1);
    if (!s.IsNull(2)) l.per_minute = static_cast<uint32_t>(s.Int(2));
    if (!s.IsNull(3)) l.per_hour = static_cast<uint32_t>(s.Int(3));
    l.set_by = s.Text(4);
    l.time = s.Int(5);
    out->push_back(std::move(l));
  }
  if (rc != SQLITE_DONE) return SqlError(error, "ListLimits", db_.get());
  return true;
}

// SQLite integers are signed 64-bit: the unsigned fields are stored as their two's-complement
// bit pattern and converted back on load.
bool StateStore::SaveCheckpoint(const std::string& name, const Checkpoint& cp, std::string* error) {
  std::lock_guard lock(mu_);
  Stmt s(db_.get(),
         "INSERT INTO checkpoints (name, dev, ino, offset, last_line_hash) VALUES (?, ?, ?, ?, ?) "
         "ON CONFLICT (name) DO UPDATE SET dev = excluded.dev, ino = excluded.ino, "
         "offset = excluded.offset, last_line_hash = excluded.last_line_hash");
  if (!s.Bind(1, name) || !s.Bind(2, static_cast<int64_t>(cp.dev)) ||
      !s.Bind(3, static_cast<int64_t>(cp.ino)) || !s.Bind(4, static_cast<int64_t>(cp.offset)) ||
      !s.Bind(5, static_cast<int64_t>(cp.last_line_hash)) || !s.Run()) {
    return SqlError(error, "SaveCheckpoint " + name, db_.get());
  }
  return true;
}

bool StateStore::LoadCheckpoint(const std::string& name, Checkpoint* out, bool* found,
                                std::string* error) {
  std::lock_guard lock(mu_);
  *found = false;
  Stmt s(db_.get(), "SELECT dev, ino, offset, last_line_hash FROM checkpoints WHERE name = ?");
  if (!s.Bind(1, name)) return SqlError(error, "LoadCheckpoint " + name, db_.get());
  int rc = s.Step();
  if (rc == SQLITE_DONE) return true;
  if (rc != SQLITE_ROW) return SqlError(error, "LoadCheckpoint " + name, db_.get());
  out->dev = static_cast<uint64_t>(s.Int(0));
  out->ino = static_cast<uint64_t>(s.Int(1));
  out->offset = static_cast<uint64_t>(s.Int(2));
  out->last_line_hash = static_cast<uint64_t>(s.Int(3));
  *found = true;
  return true;
}

bool StateStore::Audit(const AuditEntry& entry, std::string* error) {
  if (entry.action.empty()) return SetError(error, "Audit", "action must not be empty");
  std::lock_guard lock(mu_);
  if (!InsertAudit(db_.get(), entry.time, entry.who, entry.action.c_str(), entry.key,
                   entry.detail)) {
    return SqlError(error, "Audit", db_.get());
  }
  return true;
}

bool StateStore::ListAudit(int64_t since, int64_t limit, std::vector<AuditEntry>* out,
                           std::string* error) {
  std::lock_guard lock(mu_);
  out->clear();
  Stmt s(db_.get(),
         "SELECT id, time, who, action, key, detail FROM audit WHERE time >= ? "
         "ORDER BY time, id LIMIT ?");
  if (!s.Bind(1, since) || !s.Bind(2, limit > 0 ? limit : int64_t{-1})) {
    return SqlError(error, "ListAudit", db_.get());
  }
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    out->push_back({s.Int(0), s.Int(1), s.Text(2), s.Text(3), s.Text(4), s.Text(5)});
  }
  if (rc != SQLITE_DONE) return SqlError(error, "ListAudit", db_.get());
  return true;
}

bool StateStore::Prune(int64_t now, int retention_days, PruneCounts* counts, std::string* error) {
  const char* op = "Prune";
  if (retention_days < 0) return SetError(error, op, "retention_days must not be negative");
  const int64_t cutoff = now - int64_t{retention_days} * 86400;
  std::lock_guard lock(mu_);
  sqlite3* db = db_.get();
  Txn txn(db);
  if (!txn.began()) return SqlError(error, op, db);
  PruneCounts c;
  struct Step {
    const char* sql;
    int64_t* count;
  };
  const Step steps[] = {
      {"DELETE FROM incidents WHERE COALESCE(recorded_at, time) < ?", &c.incidents},
      {"DELETE FROM audit WHERE time < ?", &c.audit},
      {"DELETE FROM blocks WHERE active = 0 AND COALESCE(removed_at, since) < ?", &c.blocks},
  };
  for (const Step& step : steps) {
    Stmt s(db, step.sql);
    if (!s.Bind(1, cutoff) || !s.Run()) return SqlError(error, op, db);
    *step.count = sqlite3_changes(db);
  }
  if (!txn.Commit()) return SqlError(error, op, db);
  if (counts != nullptr) *counts = c;
  return true;
}

}  // namespace eg::sidecar
