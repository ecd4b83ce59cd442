// detectors.h - the sidecar's abuse detectors: parsed log events in, incidents out.
//
// SUMMARY
//   Detectors d(settings);
//   for each line: ParseLine(line, &ev); d.Feed(ev, line);
//   for (Incident& i : d.TakeIncidents()) { ...record, block, notify... }
//
//   Rules (Incident::rule), each judged per key over a sliding window of log time:
//     rate_per_minute  recipients per minute of a key (classes sender, cwd, uid) > its limit
//     rate_per_hour    recipients per hour of a key > its limit
//                      limits: DetectorSettings::limits[class], or the key's override; 0 = none
//     many_ips         an account authenticated (SMTP AUTH arrival or Dovecot login) from more
//                      than max_ips_per_hour distinct IPs within the last hour
//     many_logins      more than max_logins_per_hour Dovecot logins of one account in an hour
//     auth_failures    auth_failures or more authentication failures of one account (class
//                      "sender") or from one IP (class "ip") within auth_failure_seconds
//     bounce_storm     of an account's recipient outcomes (=> -> >> and **) within an hour, at
//                      least bounce_min_recipients, and more than bounce_percent % bounced (**)
//                      (a notice: the trusted bounce_storm comes from Exim's delivery events
//                      through the guard, table_watch.h)
//     repeated_subject one account sent the same subject (T=) to repeated_subject_recipients or
//                      more recipients, in repeated_subject_min_messages or more messages,
//                      within an hour (one incident per account, whatever the subject)
//
// CONTRACT
//   - Pure logic: no I/O, no clock, no SQLite, no shared memory. Time is the events' own
//     LogEvent::time, so `replay` of an old log judges exactly as the live daemon did. Events
//     may come slightly out of order; one older than a window is ignored by that window.
//   - What counts: exactly what the guard counts (DetectorSettings: authenticated SMTP, relay
//     hosts, a user's local submissions; never internet mail, Exim's own messages, or a message
//     the guard held). An arrival that does not count touches no key's state.
//   - Keys. Account (class "sender"): the authenticated id (A=, set_id=, Dovecot user=), else
//     the envelope sender; lowercased (the inline guard's table does the same). The null sender
//     "<>" is no account. Script directory (class "cwd"): the `cwd=` of the `cwd=... args:` line
//     with the same [pid] as a local arrival (P=local); the log must have +pid: without pids no
//     directory is attributed (pairing by order blamed Exim's own delivery processes). cwd= lines
//     of Exim itself (its spool directory, its -Mc/-q/-E re-invocations) are ignored. At most
//     kCwdPairSeconds apart. Trailing '/' dropped.
//     Local uid (class "uid"): the log shows only the user NAME (U=user), and turning it into a
//     numeric uid needs the passwd database, which is I/O and would differ on a replay host, so
//     the uid-class key is the user name. A whitelist/override written as "uid:1000" therefore
//     does not match here; write the user name with class uid (PolicyKey{kUid, "name"}).
//   - Recipients: each address of the arrival's " for a b c" list counts one (per recipient,
//     not per message); with count_internal false (the default) only external ones count (an
//     address without '@', or whose domain is in local_domains or is_local_domain(domain),
//     is internal). An arrival without a " for" list (no +received_recipients) counts 1.
//   - Bounce storm outcomes are attributed to an account through the message id of the arrival
//     (kept for max_messages messages, least recently used evicted); an outcome of a message
//     not seen (older than the log, or evicted) is not counted.
//   - Whitelisted keys never produce rate_*, repeated_subject or bounce_storm incidents (the
//     volume rules: a whitelisted bulk sender is expected to send a lot). The security rules
//     (many_ips, many_logins, auth_failures) still apply to them. Overrides replace the rate
//     limits of one key.
//   - One incident per key + rule per cooldown_seconds (in memory; a key evicted and seen again
//     may repeat one - the persistent cooldown lives in SQLite, above this class).
//   - Windows are bucketed like the inline guard's (exim-dlfunc/layout.h): kWindowBuckets
//     buckets of span/12 seconds, the current one included, so a window covers between its span
//     and span + span/12 of log time (minute: 60-65 s, hour: 60-65 min, auth: 5:00-5:25 min).
//     many_ips uses exact last-seen times per IP.
//   - Evidence: the key's IPs, script directories, up to 5 distinct recent subjects (unescaped)
//     and up to 5 recent log lines (each cut at sample_line_bytes) as seen when the rule fired.
//     auth_failures names only the IPs that failed within its window (and spares those that also
//     logged in successfully within the hour), never every IP the account ever used.
//   - Every incident made here has source kLog and trusted false: the engine decides trust.
//
// BOUNDED MEMORY (the daemon must stay flat over a day)
//   Each key space (accounts, script directories, users, IPs, account+subject pairs) is an LRU
//   map of at most max_keys entries; a key idle for idle_seconds of log time, or the least
//   recently used one when the map is full, is evicted (Stats() counts evictions). The message
//   id -> account map holds at most max_messages entries; pending cwd= lines at most
//   kMaxPendingCwd. Per key: ~7 fixed windows (~80 B each), <= 8 IPs, <= 5 scripts, <= 5
//   subjects (<= 200 B each), <= 5 lines (<= sample_line_bytes each): about 1.5 KB plus the
//   lines, so with the defaults (20 000 keys, 512 B lines) an account map peaks near 80 MB in
//   the worst case, typically far less (most keys hold short lines). An evicted entry's slot is
//   recycled for the next new key with its small strings' buffers kept (lines up to 256 B,
//   samples up to 96 B: few allocations per new key once warm; larger buffers are freed, else
//   every slot would creep to the longest lines that ever passed through it), so a map's memory
//   does not shrink when keys go idle; it never exceeds what its cap of full entries takes.
//   Slots are made one at a time in address space reserved for the cap on first use; only the
//   pages touched take memory, and a map reserving 8 MB or more is advised to use transparent
//   huge pages (its memory then grows 2 MB at a time). Per slot also 24 B of LRU metadata and
//   <= 16 B of index. Message map: ~100 B per entry (ids and accounts up to 32 bytes are stored
//   inline), ~10 MB at the default 100 000. Measured: a replay of a 1 million line day (5 000
//   accounts, 14 000+ distinct senders) peaks at ~75 MB RSS with the defaults, replay's
//   read-ahead batches included (bench/README.md). Incidents wait in TakeIncidents()'s vector;
//   a caller that never takes them grows it (take after each batch).
//
// THREAD SAFETY
//   None inside: one Detectors per thread (the daemon feeds it from its one follower thread).
//   No global or static mutable state; separate instances are independent.

#ifndef EXIMGUARD_SIDECAR_DETECTORS_H_
#define EXIMGUARD_SIDECAR_DETECTORS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "ip_match.h"
#include "layout.h"
#include "log_line.h"
#include "policy_key.h"
#include "table.h"

namespace eg::sidecar {

inline constexpr int64_t kCwdPairSeconds = 60;
inline constexpr size_t kMaxPendingCwd = 64;
inline constexpr int kWindowBuckets = 13;  // 12 finished buckets + the current one

// One arrival as the rate rules counted it, for DetectorSettings::on_arrival (the sidecar
// reconciles the shared table's counters with it). Views point into the event's line or into
// the detectors' buffers: valid only during the call.
struct CountedArrival {
  int64_t time = 0;                 // LogEvent::time
  std::string_view message_id;      // "" if the line has none
  std::string_view account;         // class sender key: lowercased A= id, else sender; "" if none
  std::string_view cwd;             // class cwd key (paired cwd= line); "" if not a local arrival
                                    // with a paired cwd= line
  std::string_view user;            // U= name as logged; "" if none (class uid counts it only
                                    // when `local`)
  bool local = false;               // P=local*
  bool authenticated = false;       // the line has A=
  uint32_t recipients_all = 0;      // every address of the " for" list; 1 if there is no list
  uint32_t recipients_counted = 0;  // what the rate rules added: the external ones (all with
                                    // count_internal); 1 if there is no list
  bool has_recipient_list = false;  // the line has a " for" list
};

// A per-key replacement of the class's rate limits.
struct RateOverride {
  PolicyKey key;  // klass + text (as ParsePolicyKey gives it)
  Limit limit;    // 0 = unlimited
};

// A limit applies to what is sent after it: arrivals logged before `time` do not count toward
// the rate rules of the key (or, with key.text empty, of every key of key.klass). Made from the
// times `eximguard set` stored and from reloads that changed a limit.
struct RateFloor {
  PolicyKey key;
  int64_t time = 0;
};

// Thresholds of every rule. The defaults are the documented defaults of the config keys that a
// later step maps onto this struct.
struct DetectorSettings {
  // Recipients per minute/hour, indexed by KeyClass (sender, cwd, uid): same as Config::limits.
  Limit limits[kKeyClasses] = {{8, 100}, {5, 60}, {20, 300}};
  std::vector<RateOverride> overrides;
  std::vector<PolicyKey> whitelist;

  uint32_t max_ips_per_hour = 3;       // many_ips when MORE distinct IPs than this; 0 = off
  bool ignore_loopback_ips = true;     // 127.0.0.0/8 and ::1 (webmail on the server) don't count
  uint32_t max_logins_per_hour = 100;  // many_logins when MORE than this; 0 = off
  uint32_t auth_failures = 5;          // auth_failures when this many OR MORE; 0 = off
  uint32_t auth_failure_seconds = 300;
  uint32_t bounce_min_recipients = 20;  // bounce_storm needs at least this many outcomes ...
  uint32_t bounce_percent = 50;         // ... and more than this % of them bounced; 0 min = off
  // repeated_subject when one account sent one subject to this many OR MORE recipients in an
  // hour. 50: a compromised account's spam run easily exceeds it, while a person's mail to a
  // team or a class rarely does; newsletters go from whitelisted senders. 0 = off.
  uint32_t repeated_subject_recipients = 50;
  // ... in at least this many messages (one message to a big list is one send, judged by the
  // rate rules; the same text sent over and over is what this rule is about).
  uint32_t repeated_subject_min_messages = 2;

  // Which arrivals count, exactly as the guard counts them (exim-config ACLs): SMTP with an
  // authenticated id, SMTP from a host in relay_hosts (by envelope sender), and local
  // submissions (P=local) of a user. Never mail from the internet (a forged MAIL FROM is not the
  // sender's outgoing mail), never Exim's own messages (bounces and warnings: U= one of
  // exim_users), never a message the guard held (an "eximguard: held" line for its id).
  std::vector<IpRange> relay_hosts;  // Exim's relay_from_hosts; loopback by default
  std::vector<std::string> exim_users = {"Debian-exim", "mailnull", "exim"};
  // cwd= lines of Exim's own processes are never a script directory: its spool directory, and
  // its re-invocations (-Mc, -MC, -q..., -E..., -bd).
  std::vector<std::string> spool_dirs = {"/var/spool/exim4", "/var/spool/exim"};
  std::vector<RateFloor> rate_floors;

  bool count_internal = false;             // false: only external recipients count
  std::vector<std::string> local_domains;  // compared case-insensitively
  std::function<bool(std::string_view domain)> is_local_domain;  // optional, besides the list

  int64_t cooldown_seconds = 3600;  // one incident per key + rule per this much log time
  size_t max_keys = 20000;          // per key space (see BOUNDED MEMORY)
  size_t max_messages = 100000;     // message id -> account, for bounces
  int64_t idle_seconds = 7200;      // a key untouched this long (log time) is evicted
  size_t sample_line_bytes = 512;

  // Optional: called from Feed() once per arrival (<= or (=) that some key's rate counted, i.e.
  // that has an account, a paired cwd= or a local U= user, after the rules judged it. An empty
  // function costs one test per arrival. It must not throw (an exception leaves Feed() with the
  // arrival counted) and must not call back into this Detectors.
  std::function<void(const CountedArrival&)> on_arrival;
};

// Where an incident's evidence comes from. Only kLog can be forged by the people it judges; see
// the trust rules in engine.h.
enum class EvidenceSource : uint8_t {
  kLog,     // log lines (the detectors below)
  kTable,   // the guard's own counters and verdicts in the shared table (table_watch.h)
  kPolicy,  // Dovecot's auth policy requests
};
const char* EvidenceSourceName(EvidenceSource s);

struct Incident {
  std::string key;
  std::string key_class;  // "sender", "cwd", "uid" or "ip"
  std::string rule;       // see SUMMARY
  int64_t window_start = 0;
  int64_t window_end = 0;
  int64_t time = 0;  // the log time of the event that made the rule fire
  uint64_t count = 0;
  uint64_t threshold = 0;  // the limit that `count` went over (or reached, for >= rules)
  std::set<std::string> ips;
  std::vector<std::string> scripts;   // script directories (cwd=)
  std::vector<std::string> subjects;  // <= 5, unescaped
  std::vector<std::string> lines;     // <= 5, oldest first
  // auth_failures: the IPs that failed within the window (ips above), minus those that also
  // logged in successfully within the last hour, which are listed here instead.
  std::set<std::string> spared_ips;
  EvidenceSource source = EvidenceSource::kLog;
  // Set by the engine: the evidence is one an attacker cannot forge (a trusted source, or log
  // evidence the table corroborates), and why / why not, in one line for notices.
  bool trusted = false;
  std::string trust_note;
  int64_t owner_uid = -1;  // the submitting uid when a trusted source knows it
};

struct DetectorStats {
  uint64_t events = 0;
  uint64_t incidents = 0;
  uint64_t evictions = 0;
  size_t accounts = 0, cwds = 0, uids = 0, ips = 0, subjects = 0, messages = 0;
  size_t TrackedKeys() const { return accounts + cwds + uids + ips + subjects; }
};

class Detectors {
 public:
  explicit Detectors(DetectorSettings settings = {});
  ~Detectors();
  Detectors(const Detectors&) = delete;
  Detectors& operator=(const Detectors&) = delete;

  // One parsed line; `raw_line` is the line itself (kept, cut, as evidence). Never throws
  // except std::bad_alloc.
  void Feed(const LogEvent& event, std::string_view raw_line);

  // The incidents found since the last call, in the order they fired.
  std::vector<Incident> TakeIncidents();

  DetectorStats Stats() const;
  const DetectorSettings& settings() const;

  // Copies what the log showed about a key (IPs, scripts, subjects, lines) into `into`, for an
  // incident a trusted source found (its evidence is the source's; the log only enriches it).
  // klass: "sender", "cwd", "uid" (user name) or "ip". False if the log showed nothing.
  bool Enrich(std::string_view klass, std::string_view key, Incident* into);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_DETECTORS_H_
