// engine.h - the sidecar's pipeline: log lines in; parsed (log_line.h), judged by the detectors
// (detectors.h); each incident's evidence weighed (trusted or not), then remembered
// (state_store.h), blocked in the shared table when it may be, and handed to the follow-up.
//
// SUMMARY
//   Engine engine(config, DetectorSettingsFromConfig(config, ...), hooks);
//   for each line of a log: engine.Feed(line, LogSource::kExim);
//                       (or ParseLogLine() on a reader thread, then engine.FeedParsed())
//   incidents from a trusted source (table_watch.h, Dovecot's policy): engine.Add(incident)
//   after each batch:       for (const HandledIncident& h : engine.Handle()) ...;
//   warm-up after a (re)start: feed, then engine.Discard() (a warm-up records nothing)
//
// TRUST (the principle: a punishment needs evidence an attacker cannot forge)
//   Log lines are written by the people they judge (Exim logs $initial_cwd unescaped; anyone can
//   write a dovecot: line to syslog). So an incident punishes - table block, WHM step, firewall,
//   freeze, the admin's command - only when it is TRUSTED:
//     - it comes from a trusted source (Incident::source kTable: the guard's own counters and
//       verdicts, and the delivery outcomes Exim's event_action reported through the guard, as
//       in table_watch.h's throttled and bounce_storm; kPolicy: Dovecot's auth policy
//       requests), or
//     - it comes from the log and the shared table corroborates it: for rate_per_minute,
//       rate_per_hour and repeated_subject, the guard's own count for the key in that window is
//       at least what the log claims (hooks.table; uid keys by their numeric uid).
//   Everything else is a notice: recorded (untrusted), told, with why nothing was done and the
//   one command that acts on it (`eximguard act ID`). Without a table (replay, rerun) nothing
//   from the log is trusted. Never punished automatically, trusted or not: root and the system
//   accounts and the keys of actions.protect (protected_keys.h); nothing at all under
//   notify_only or dry_run.
//
//   Handle() turns each new incident into:
//     1. a row in the state store (RecordIncident with the cooldown: one incident per key and
//        rule per detectors.cooldown_seconds of LOG time, an untrusted one never holding back a
//        trusted one; so re-reading lines after a crash, a `rerun` of a day already seen, or the
//        warm-up after a restart records nothing twice);
//     2. if it punishes and actions.rules.<rule> has block, the key has a table class (sender,
//        cwd, uid): a block, in the same transaction, lapsing after actions.block_minutes.<rule>;
//        after the batch, one hooks.republish() for all its new blocks, so the next RCPT is
//        refused inline;
//     3. hooks.follow_up(handled): the follow-up (the daemon queues it: WHM steps, firewall,
//        freeze, the custom command, the notice; follow_up.h) - typed, never JSON;
//     4. a log line through hooks.log.
//   Without a store (hooks.store null: `replay`), Handle() only returns the incidents.
//
// CONTRACT
//   - Callers: the daemon (`start`), cron mode (`run`), `rerun`, `replay`; tests. One Engine per
//     thread; it owns its Detectors. The hooks' targets (store, table, callbacks) must outlive it.
//   - Keys: the detectors' uid-class key is the user NAME from U= (detectors.h); the table's uid
//     key is the numeric uid, so a block of a uid incident is placed on getpwnam(name)'s uid. A
//     name this host does not know (a log from elsewhere) is recorded but not blocked, and the
//     incident's action says so. Config overrides/whitelist written "uid:N" are given to the
//     detectors under getpwuid(N)'s name for the same reason.
//   - Errors: a store or publish failure is logged and counted (EngineStats) and the incident
//     is not lost from the log (it is returned with outcome "error"); the next occurrence after
//     the problem is fixed will be recorded. Nothing throws but std::bad_alloc.
//   - Secrets: none pass through here.

#ifndef EXIMGUARD_SIDECAR_ENGINE_H_
#define EXIMGUARD_SIDECAR_ENGINE_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config.h"
#include "cwd_records.h"
#include "detectors.h"
#include "log_line.h"
#include "reset_marks.h"
#include "state_store.h"
#include "table.h"

namespace eg::sidecar {

enum class LogSource : uint8_t {
  kExim,     // Exim's mainlog (ParseEximLine)
  kDovecot,  // Dovecot's log (ParseDovecotLine)
  kMixed,    // a syslog file holding both (ParseLine)
};

struct HandledIncident {
  Incident incident;    // incident.trusted / trust_note say what its evidence is worth
  int64_t id = 0;       // the store's id; 0 when not recorded
  std::string outcome;  // "recorded", "cooldown", "error", or "detected" (no store)
  std::string action;   // "block", "notify_only", "dry_run", "none (...)"
  // The follow-up may run the rule's punitive steps: the incident is trusted, eximguard is
  // acting (not notify_only, not dry_run) and the key is not protected.
  bool punish = false;
  std::string protected_note;  // why the key is never punished automatically; "" if it may be
};

struct EngineHooks {
  StateStore* store = nullptr;  // null: nothing is recorded, blocked or run (replay)
  // The guard's table, which corroborates log incidents (a function: the daemon replaces its
  // mapping when it re-creates the table). Unset or null: every log incident is untrusted.
  std::function<const Table*()> table;
  std::function<int64_t()> now;  // the wall clock (block expiry, corroboration); default time()
  // Publishes the policy again from the config and the store (after a block was added).
  std::function<bool(std::string* error)> republish;
  // The incident's follow-up (WHM, firewall, freeze, command, notice); may queue it.
  std::function<void(const HandledIncident&)> follow_up;
  std::function<void(const std::string& line)> log;  // one line for the daemon's log
};

struct EngineStats {
  uint64_t lines = 0;
  uint64_t unparsed = 0;   // lines the parser counted as unknown (skipped)
  uint64_t incidents = 0;  // detected
  uint64_t recorded = 0;
  uint64_t cooldown = 0;         // detected again within the cooldown: not recorded
  uint64_t blocks = 0;           // new blocks placed
  uint64_t errors = 0;           // store/publish failures
  uint64_t hidden_by_reset = 0;  // lines older than a `reset` of their key (reset_marks.h)
  uint64_t forged_lines = 0;     // lines of a multi-line cwd= record (cwd_records.h): skipped
  int64_t last_time = 0;         // log time of the last parsed line

  // Adds another engine's counters (the daemon keeps them across reloads); last_time: the later.
  EngineStats& operator+=(const EngineStats& o) {
    lines += o.lines;
    unparsed += o.unparsed;
    incidents += o.incidents;
    recorded += o.recorded;
    cooldown += o.cooldown;
    hidden_by_reset += o.hidden_by_reset;
    forged_lines += o.forged_lines;
    blocks += o.blocks;
    errors += o.errors;
    last_time = std::max(last_time, o.last_time);
    return *this;
  }
};

// The detectors' settings for a config. `extra_whitelist` is the store's whitelist;
// `file_domains` the contents of local_domains_file (ReadDomainsFile).
DetectorSettings DetectorSettingsFromConfig(const Config& config,
                                            const std::vector<PolicyKey>& extra_whitelist,
                                            const std::vector<std::string>& file_domains);

// A config key as the detectors see it: a uid key ("uid:N") by its user NAME (see CONTRACT).
PolicyKey KeyForDetectors(PolicyKey key);

// Reads a list of domains, one per line ('#' starts a comment; cPanel's /etc/localdomains). A
// missing file gives an empty list and true; an unreadable one false with *error.
bool ReadDomainsFile(const std::string& path, std::vector<std::string>* out, std::string* error);

// The incident as JSON: key, class, rule, time (unix), time_text (UTC, ISO 8601), count,
// threshold, window_start, window_end, ips, scripts, subjects, lines, and what its evidence is
// worth: source ("log", "table", "dovecot_policy"), trusted, trust_note (spared_ips and owner_uid
// when set).
nlohmann::ordered_json IncidentToJson(const Incident& incident);

// IncidentToJson plus what was done: id, action, punish (the JSON the custom command and the
// webhook get).
nlohmann::ordered_json HandledToJson(const HandledIncident& handled);
// Back from IncidentToJson()'s form (a stored incident's evidence); fields that are missing or
// of the wrong type stay at their defaults. The source is not read back (kLog).
Incident IncidentFromJson(const nlohmann::ordered_json& evidence);

// Weighs a log incident against the guard's table (see TRUST): sets incident->trusted and
// incident->trust_note. `table` may be null. now_unix: the wall clock.
void Corroborate(const Table* table, uint32_t now_unix, Incident* incident);

// The parse Engine::Feed() does for a line of `source` (ParseEximLine, ParseDovecotLine or
// ParseLine). Reentrant, like the parsers.
void ParseLogLine(std::string_view line, LogSource source, const ParseOptions& options,
                  LogEvent* out);

class Engine {
 public:
  Engine(Config config, DetectorSettings settings, EngineHooks hooks,
         ParseOptions parse_options = {});

  void Feed(std::string_view line, LogSource source);
  // An incident a trusted source found (source kTable or kPolicy): handled with the next
  // Handle(), its evidence enriched from what the log showed about the key.
  void Add(Incident incident);
  std::vector<HandledIncident> Handle();
  // What the detectors found since the last Handle() is dropped unrecorded (a warm-up
  // re-reads lines that were judged before: it refills the windows and records nothing).
  void Discard();

  // Feed() in two halves, for a caller that parses on another thread (replay's read-ahead,
  // verbs_logs.cpp): Feed(line, source) is ParseLogLine(line, source, parse_options(), &ev)
  // followed by FeedParsed(ev, line). `event` must be that parse of `line`, which must stay
  // valid during the call. parse_options() never changes after construction, so another
  // thread may read it while this one feeds. `source` picks the stream's CwdRecords (a
  // multi-line cwd= record is skipped, cwd_records.h).
  void FeedParsed(const LogEvent& event, std::string_view line,
                  LogSource source = LogSource::kExim);
  const ParseOptions& parse_options() const { return parse_options_; }
  // Events older than a reset of a key they touch are skipped from now on (reset_marks.h).
  void SetResetMarks(ResetMarks marks) { resets_ = std::move(marks); }

  const EngineStats& stats() const { return stats_; }
  const Detectors& detectors() const { return detectors_; }
  // The forgery alerts of the records closed since the last call (at most kMaxForgeryAlerts
  // are kept between calls; the oldest go first, stats().forged_lines still counts them).
  std::vector<ForgeryAlert> TakeForgeryAlerts() { return std::exchange(forgery_alerts_, {}); }
  static constexpr size_t kMaxForgeryAlerts = 1024;

  // The last few lines the parser did not understand (stats().unparsed counts them all), each
  // cut to kSampleBytes and escaped for display (EscapeForDisplay): for `status` and `replay`.
  const std::deque<std::string>& UnparsedSamples() const { return unparsed_samples_; }
  static constexpr size_t kMaxSamples = 5;
  static constexpr size_t kSampleBytes = 300;

 private:
  HandledIncident Act(Incident incident);
  int64_t Now() const;

  Config config_;
  Detectors detectors_;
  EngineHooks hooks_;
  ParseOptions parse_options_;
  LogEvent event_;  // reused: its recipients' capacity survives
  EngineStats stats_;
  ResetMarks resets_;
  bool blocks_pending_ = false;  // blocks added since the last publish
  std::vector<Incident> added_;  // from trusted sources, for the next Handle()
  CwdRecords cwd_records_[3];    // one per LogSource
  std::vector<ForgeryAlert> forgery_alerts_;
  std::deque<std::string> unparsed_samples_;
};

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_ENGINE_H_
