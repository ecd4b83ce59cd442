// table_watch.h - the sidecar's trusted eyes: it reads the guard's own shared table about once
// a second and turns what the guard did - refusals, letting mail through unchecked - into
// incidents and alerts. Nothing here comes from a log line, so nothing here can be forged by the
// people it judges (engine.h, TRUST).
//
// SUMMARY
//   TableWatch watch(TableWatchSettingsFromConfig(config));
//   every second: for (Incident& i : watch.Look(table, now)) engine.Add(std::move(i));
//                 for (std::string& a : watch.TakeAlerts()) tell the admins;
//
//   Rules:
//     throttled  a key (sender, cwd, uid) the guard refused throttled_refused recipients or more
//                within throttled_seconds: a leaked password or an exploited script hammering
//                its limit. The log shows nothing of it (refused recipients never become
//                messages), which is why it must come from here. Relay-host senders are keys
//                of the table like any other, so they are seen the same way. Keys already
//                blocked are left out (the block says it all).
//     bounce_storm   of the recipients of an account's (or a local uid's) messages whose outcome
//                Exim reported through the guard within the hour (event_action, eximguard_event
//                in exim-dlfunc/guard.cpp: delivered or failed), at least bounce_min_recipients,
//                and more than bounce_percent % failed, at bounce_min_domains recipient domains
//                or more: mail to harvested or made-up addresses. (A remote MX may refuse
//                what it likes: one domain refusing all of a customer's newsletter, whose
//                addresses an attacker signed up, must not block the customer.)
//                Exim's own variables of the message, not a log line: trusted. Whitelisted and
//                blocked keys are left out, as for the log's bounce_storm (detectors.h).
//   Alerts (not incidents, no key), at most one of each per cooldown_seconds, each with the count
//   since the previous one (the first look is a baseline, as for refusals):
//     - the fail-open counter in the table grew (by failopen_alert or more): the table is full or
//       contended and mail goes out unchecked;
//     - the new-key refusal counter grew: a client made up new keys faster than its budget while
//       the table was full where they land (exim-dlfunc/layout.h, NEW-KEY BUDGET).
//
// CONTRACT
//   - Caller: the daemon's following thread (`start`). Pure logic over the table it is given;
//     time is the caller's (tests inject it). The table's counters are read with relaxed atomic
//     loads, never written.
//   - Outcomes, like refusals, are deltas of the slot's counters between looks (the first
//     look a baseline), summed over 13 buckets of 300 s (an hour and up to 5 minutes more, like
//     the guard's own hour window). Keys seen by the guard within the hour are looked at.
//   - Refusals are counted as deltas of each slot's `refused` counter between looks. The first
//     look takes the counters as they are (history before it is not judged); a key first seen
//     later counts all its refusals (its slot is new). A counter that went down (its slot was
//     taken over) starts over.
//   - Incidents have source kTable, key and class as the detectors name them (a uid key by its
//     user name when this host knows it), count = refused within the window, threshold =
//     throttled_refused, owner_uid when the table recorded the submitter, and a trust note that
//     says what the guard counted. One incident per key per cooldown_seconds.
//   - Memory: at most max_keys keys are remembered (the least recently seen go first); a key
//     unseen for two hours is forgotten.
//   - Thread safety: none inside; one TableWatch per thread.

#ifndef EXIMGUARD_SIDECAR_TABLE_WATCH_H_
#define EXIMGUARD_SIDECAR_TABLE_WATCH_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "config.h"
#include "detectors.h"
#include "table.h"

namespace eg::sidecar {

struct TableWatchSettings {
  uint32_t throttled_refused = 20;  // 0: the rule is off
  uint32_t throttled_seconds = 600;
  int64_t cooldown_seconds = 3600;
  uint32_t failopen_alert = 1;          // new fail-open answers since the last alert; 0: off
  uint32_t bounce_min_recipients = 20;  // bounce_storm: outcomes needed within the hour; 0: off
  uint32_t bounce_percent = 50;         // ... and more than this % of them failed
  uint32_t bounce_min_domains = 5;      // ... at this many recipient domains or more; 0: any
  size_t max_keys = 20000;
};

TableWatchSettings TableWatchSettingsFromConfig(const Config& config);

class TableWatch {
 public:
  explicit TableWatch(TableWatchSettings settings = {});
  // A reloaded config: keeps what was seen (a changed window length starts the windows over).
  void Reconfigure(TableWatchSettings settings);

  // One look at the table at now_unix; the incidents it finds.
  std::vector<Incident> Look(const Table& table, uint32_t now_unix);

  // Alerts raised since the last call (one line each, for the log and the admins).
  std::vector<std::string> TakeAlerts();

  // Recipients of (class, key) the guard refused within the last `seconds` (<= the rule's
  // window) as of the last look; 0 for a key not watched. For judging a lapsing block again.
  uint64_t RefusedWithin(KeyClass klass, const std::string& key, uint32_t seconds) const;

  size_t watched() const { return keys_.size(); }

 private:
  struct KeyWatch {
    KeyClass klass = KeyClass::kSender;
    std::string key;
    uint32_t last_refused = 0;
    uint32_t last_seen = 0;  // of our looks
    int64_t last_incident = 0;
    // Refusals per bucket of throttled_seconds / 12, the current one included (13 buckets).
    uint32_t buckets[13] = {};
    int64_t head = -1;  // bucket number of buckets[head % 13]
    // Delivery outcomes (delivered, failed) per 300-second bucket, the current one included.
    uint32_t last_outcomes[2] = {};
    uint32_t outcomes[13][2] = {};
    uint32_t domains[13] = {};  // the slot's failed_domains bitmap as last seen in each bucket
    int64_t outcome_head = -1;
    int64_t last_bounce_incident = 0;
  };
  // Adds this look's outcome deltas; a bounce_storm incident when the hour's outcomes say so.
  void LookAtOutcomes(const Table& t, const SlotView& v, KeyWatch& k, bool created, uint32_t now,
                      std::vector<Incident>* out);
  void Advance(KeyWatch& k, int64_t bucket);
  uint64_t Sum(const KeyWatch& k, int64_t from_bucket) const;
  void Forget(uint32_t now);

  TableWatchSettings settings_;
  int64_t width_;                                // seconds per bucket
  std::unordered_map<uint64_t, KeyWatch> keys_;  // by the table's key hash
  bool first_look_ = true;
  uint64_t last_fail_open_ = 0;
  uint64_t pending_fail_open_ = 0;  // fail-open answers since the last alert
  uint64_t last_new_key_refusals_ = 0;
  uint64_t pending_new_key_refusals_ = 0;
  int64_t last_alert_ = 0;
  int64_t last_budget_alert_ = 0;
  uint32_t last_now_ = 0;
  std::vector<std::string> alerts_;
};

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_TABLE_WATCH_H_
