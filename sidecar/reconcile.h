// reconcile.h - lowers the table's hour counts to what Exim's log says really arrived.
//
// SUMMARY
//   ArrivalLedger ledger(first_complete_log_time);   // every arrival logged since then is Add()ed
//   for each "<=" line the guard would have counted:  // the engine, per key class it counted
//     ledger.Add(KeyClass::kSender, account, log_time, recipients);
//     ledger.Add(KeyClass::kUid, std::to_string(uid), log_time, recipients);   // getpwnam(U=)
//   ledger.CaughtUp(time up to which every logged line has been Add()ed);
//   every minute or so:
//     ReconcileStats st = Reconcile(table, ledger, now, 120);
//
//   The guard counts a recipient at RCPT time (eximguard_rcpt) or when a local message is
//   submitted (eximguard_local). Some counted recipients never become a message: a later ACL
//   refuses the RCPT, the client disconnects before DATA, DATA is rejected. Reconcile() finds,
//   per key, the hour buckets whose counts exceed what the log shows, and takes the excess back
//   (CreditHour, table.h), so a key is not deferred for mail it never sent.
//
// WHY ONLY THE HOUR WINDOW
//   A minute-window count is forgotten 60-65 s after it was made, while the log can only show
//   that a recipient did not arrive after the message had its chance to (lag seconds, 120 by
//   default, after the bucket ended): by then the minute window has healed itself.
//
// HOW IT STAYS CONSERVATIVE
//   A message's RCPTs are counted at time r, its "<=" line is logged at time l with
//   r <= l <= r + lag (lag must exceed the longest RCPT-to-end-of-DATA time). For each key,
//   Reconcile takes the range [lo, hi] of finished hour buckets that some future window can
//   still count (lo >= now/300 - 12), that ended at least lag seconds before the log is
//   complete (hi), and that the ledger has complete for this key (lo). Recipients counted in a
//   suffix [k, hi] of that range that did arrive are at most
//     min(table(k..hi), log arrivals logged in [k*300, (hi+1)*300 + lag))
//   (the log side is read in whole buckets, so the tail may reach a little further: more
//   arrivals, less credit). Reconcile takes back the most it can while keeping every suffix
//   sum at or above that bound, newest buckets first. Every future window covers a suffix of
//   the range plus buckets it does not touch, so no window ever counts fewer recipients than
//   really arrived. A second run finds every bound tight and credits nothing.
//
// CONTRACT
//   - Callers: the sidecar daemon, which owns the one ArrivalLedger fed from its log follower,
//     and holds the segment's writer lock: only one process may reconcile a segment at a time
//     (two would each take the same excess back). Tests.
//   - Keys: the key text as the guard sees it. Sender: $authenticated_id, else the envelope
//     sender (compared case-insensitively, like the table); script directory: $initial_cwd
//     (trailing '/' ignored); uid: $originator_uid in decimal. The log shows a local sender's
//     user NAME (U=): the engine converts it with getpwnam() before calling Add(), the ledger
//     never does. Keys are cut at kLedgerKeyBytes like the guard cuts them; empty keys are
//     ignored (the guard does not count them).
//   - What to Add: only messages the guard counted (authenticated, from a relay host, or
//     local); adding others only makes the log side larger (less credit) and fills the ledger.
//     Whitelisted keys are counted by the guard too and are reconciled like any other; blocked
//     keys are not counted, so there is nothing to take back.
//   - Times are unix seconds. The engine must turn the log's local time into unix time right
//     (DST!); an arrival placed an hour off is an arrival the range does not see.
//   - Completeness: ArrivalLedger(start) says every arrival logged from `start` on will be
//     added; CaughtUp(t) says every arrival logged before t has been. Reconcile never looks at
//     log time before start or after the last CaughtUp(): without CaughtUp() it credits
//     nothing.
//   - Ownership: the ledger owns its keys and counts; Reconcile() reads the table through its
//     own lookups and never keeps a pointer into it.
//   - Failure: nothing fails but std::bad_alloc (Add, Reconcile). A credit lost to a race with
//     a guard (see WindowRelease in window.h) shows in ReconcileStats::recipients_lost and is
//     found again by the next run.
//   - Thread safety: none inside; one thread uses a ledger (or the caller locks). Reconcile()
//     is safe against any number of Exim processes using the table at the same time.
//
// MEMORY
//   At most max_keys keys and max_bytes bytes of key text plus kEntryOverheadBytes per key
//   (defaults: 65,536 keys, 64 MiB; about 300 B per key of a typical 60-byte key, i.e. ~20 MiB
//   when full). A key holds kLedgerBuckets hour buckets (80 minutes). When full, the least
//   recently added key is dropped. A dropped key's arrivals are unknown from then on, so the
//   ledger stops vouching for any key it does not hold (and for keys added later) for the time
//   those arrivals cover: while a dropped key's arrivals are within the hour, keys the ledger
//   does not hold are not reconciled. A too-small ledger makes reconciliation do less, never
//   wrong.
//
// BUGS / LIMITS
//   - A message whose DATA lasts longer than `lag` (a slow client, a huge attachment) arrives
//     after the comparison: its recipients may be credited back (the key may send that many
//     more in the hour). Use a lag above the longest DATA you accept (smtp_receive_timeout
//     bounds each read, not the whole DATA); 120 s suits most servers, 600 s is safer.
//   - Only the hour window; only buckets at least lag seconds old: the newest minutes of the
//     hour are corrected on a later run.
//   - Arrivals logged in the first bucket of the range may belong to RCPTs counted before it:
//     they count on the log side (less credit), never the other way.
//   - The table is read bucket by bucket while guards keep counting: a bucket read just before
//     a guard's late count into it (a guard whose clock read lags by seconds) is corrected by
//     the next run, as Retire never lowers a bucket.

#ifndef EXIMGUARD_SIDECAR_RECONCILE_H_
#define EXIMGUARD_SIDECAR_RECONCILE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "layout.h"
#include "table.h"

namespace eg::sidecar {

// The guard counts the first 4096 bytes of a key (guard.cpp, kMaxKeyBytes); so does the ledger.
inline constexpr size_t kLedgerKeyBytes = 4096;
// Hour buckets a ledger key keeps: the 13 of a window plus the lag's tail, with room to spare.
inline constexpr uint32_t kLedgerBuckets = 16;
inline constexpr size_t kEntryOverheadBytes = 256;

struct LedgerLimits {
  size_t max_keys = 65536;
  size_t max_bytes = size_t{64} << 20;
  // True when every arrival the guard counted is Add()ed. The daemon sets it false: it adds
  // authenticated and local arrivals only (inbound mail would churn the ledger), so a table key
  // the ledger never saw (a relay host's sender, say) is left alone rather than emptied.
  bool sees_every_counted_key = true;
};

class ArrivalLedger {
 public:
  // Every arrival logged at or after start_time will be Add()ed (e.g. the log time of the first
  // line the follower read since this process started).
  explicit ArrivalLedger(int64_t start_time, LedgerLimits limits = {});

  // `recipients` recipients of one message of `key`, logged ("<=") at log_time.
  void Add(KeyClass klass, std::string_view key, int64_t log_time, uint32_t recipients);

  // Every arrival logged before `log_time` has been added (call after each batch of lines,
  // and with the current time when the follower is at the end of the log). Never goes back.
  void CaughtUp(int64_t log_time);

  int64_t start_time() const { return start_; }
  bool sees_every_counted_key() const { return limits_.sees_every_counted_key; }
  int64_t caught_up() const { return caught_up_; }
  // From when on the ledger knows every arrival of keys it does not hold.
  int64_t UnheldCompleteFrom() const { return horizon_ > start_ ? horizon_ : start_; }
  size_t size() const { return lru_.size(); }
  size_t bytes() const { return bytes_; }
  uint64_t evictions() const { return evictions_; }

  // Arrivals of one key logged in hour buckets [first_epoch, last_epoch] (0 if not held), and
  // from when on the ledger has them all (-1: the key is not held).
  uint64_t Arrivals(KeyClass klass, std::string_view key, uint32_t first_epoch,
                    uint32_t last_epoch) const;
  int64_t CompleteFrom(KeyClass klass, std::string_view key) const;

  // One key's record (Reconcile() reads them; nothing else needs to).
  struct Entry {
    KeyClass klass = KeyClass::kSender;
    std::string id;             // class byte + the normalized key text
    int64_t complete_from = 0;  // arrivals logged before this may be missing
    std::array<uint32_t, kLedgerBuckets> epoch{};
    std::array<uint32_t, kLedgerBuckets> count{};
    uint64_t Sum(uint32_t first_epoch, uint32_t last_epoch) const;
  };

 private:
  friend struct ReconcileAccess;

  static std::string Id(KeyClass klass, std::string_view key);
  const Entry* Find(KeyClass klass, std::string_view key) const;
  void EvictOne();

  int64_t start_;
  int64_t caught_up_ = INT64_MIN;
  int64_t horizon_ = INT64_MIN;  // arrivals of dropped keys logged before this are lost
  LedgerLimits limits_;
  size_t bytes_ = 0;
  uint64_t evictions_ = 0;
  std::list<Entry> lru_;  // most recently added first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // views into ids
};

struct ReconcileStats {
  uint64_t keys_checked = 0;         // table keys with counts in their range
  uint64_t keys_corrected = 0;       // keys something was taken back from
  uint64_t keys_incomplete = 0;      // keys skipped: the ledger does not cover their range
  uint64_t recipients_credited = 0;  // taken back
  uint64_t recipients_lost = 0;      // meant to be taken back, but a bucket moved meanwhile
};

// Takes back, per key, the hour counts the log disproves (see HOW IT STAYS CONSERVATIVE).
// now_unix is the wall clock; lag_seconds the longest time from a RCPT to its "<=" line.
ReconcileStats Reconcile(const Table& t, const ArrivalLedger& ledger, uint32_t now_unix,
                         uint32_t lag_seconds);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_RECONCILE_H_
