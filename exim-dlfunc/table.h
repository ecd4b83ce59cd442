// table.h - the shared counter table: check-and-count, policy publication, inspection.
//
// SUMMARY
//   A Table is one process's view of an attached segment (layout.h). Exim processes, through
//   eximguard.so, call Check() for every recipient; the sidecar formats the segment, publishes
//   the policy and reads the counters for `top`.
//
// CONTRACT
//   - Bind() validates a mapped segment once and copies every immutable header field into the
//     Table, so later corruption of the header cannot make Check() read out of bounds.
//   - Check() is the hot path: no allocation, no system call, no lock, no exception. It counts
//     only what it admits (a refused recipient is not counted), and either counts on every key
//     of the request or on none (a race lost half-way is undone). Whitelisted keys are counted
//     but never limited; a blocked key is refused with kDeny before anything is counted.
//   - PublishPolicy() is for the single writer (the sidecar). Readers switch to the new policy at
//     their next Check(); a writer killed half-way leaves the previous policy in force.
//   - Everything here is safe across processes; a Table itself is plain data and may be copied.
//
// SECURITY
//   Key hashes are keyed with a random per-segment seed (SipHash), so senders cannot be chosen to
//   collide with another key's counters or policy.

#ifndef EXIMGUARD_TABLE_H_
#define EXIMGUARD_TABLE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "layout.h"

namespace eg {

struct Table {
  Header* header = nullptr;
  PolicyBlock* policy[2] = {nullptr, nullptr};
  PolicyEntry* entries[2] = {nullptr, nullptr};
  HotSlot* hot = nullptr;  // capacity entries; index i of both arrays is one key
  ColdSlot* cold = nullptr;
  Stats* stats = nullptr;                   // kStatShards shards, picked by key hash
  std::atomic<uint64_t>* budget = nullptr;  // kBudgetWords new-key budget words (layout.h)
  uint32_t slot_mask = 0;
  uint32_t policy_mask = 0;
  uint64_t seed[2] = {0, 0};
};

// Writes a fresh header and empty policy into `base` (size bytes, which must be zero-filled, as
// ftruncate leaves them; the magic number is stored last). capacity and policy_capacity must be
// powers of two; the size must be enough. Returns nullptr on success, else a static string saying
// what is wrong.
const char* Format(void* base, uint64_t size, uint32_t capacity, uint32_t policy_capacity,
                   const uint64_t seed[2], uint64_t now_unix);

// Validates a mapped segment and fills *t . Returns nullptr on success, else a static string
// naming the problem (bad magic, unknown layout version, size mismatch, ...).
const char* Bind(void* base, uint64_t size, Table* t);

enum class Verdict : uint8_t { kOk = 0, kDefer = 1, kHold = 2, kDeny = 3 };

// One key of a request. `text` need not be NUL-terminated; len may be 0 (the key is skipped).
struct KeyRef {
  KeyClass klass;
  const char* text;
  size_t len;
};

// What Check() decided and why.
struct Decision {
  Verdict verdict = Verdict::kOk;
  Verdict would = Verdict::kOk;  // the refusal, also when dry_run turned it into kOk
  int key = -1;                  // index of the key that decided a refusal, -1 if none
  uint32_t limit = 0;            // the limit that was reached
  bool hour = false;             // true: the hour window was full, false: the minute window
  bool dry_run = false;          // over a limit, but the policy is dry-run: verdict stays kOk
  bool new_keys = false;         // refused because the source is over its new-key budget (limit)
  const char* failed = nullptr;  // internal trouble, in words: the verdict is the fail mode
};

// Counts `count` recipients on every key, or refuses: kDeny if a key is blocked, else
// `over_limit` (kDefer for SMTP, kHold for local submissions) if a key's window is full, or if
// a key is new, the table is full where it lands, and `source` (the client IP, the local uid;
// nullptr or empty: none) made more new keys this minute than the policy's new_key_budget
// (Decision::new_keys). `now_unix` is wall-clock seconds.
Decision Check(const Table& t, const KeyRef* keys, int nkeys, uint32_t count, uint32_t now_unix,
               Verdict over_limit, const KeyRef* source = nullptr);

// A key lives in one of the kProbeSlots slots from its home slot (or nowhere: not counted yet,
// or evicted).
//
// EVICTION (issue 10 item 11)
//   A new key takes the first empty slot of its probe run. When there is none it takes over, in
//   this order: (1) a key whose minute and hour windows both hold nothing (idle: silent for the
//   hour, or only ever refused/blocked), the least recently seen first; (2) a key with live
//   counts that are all at most a quarter of its own limits (policy overrides included), the
//   fewest hour recipients first. A key above a quarter of a limit is never evicted for a
//   newcomer (a spammer near its limit must not start afresh); if every key of the run is, the
//   newcomer fails open ("table full", counted in fail_open, which the sidecar alerts on). Tier
//   (2) costs an evicted key at most a quarter of its limit per eviction, and evictions are
//   bounded by the new-key budget of each source (layout.h). A process counting on a slot while
//   it is taken over can put one check's count on the newcomer (strict) or lose it (lenient).
constexpr uint32_t kProbeSlots = 16;
inline uint32_t HomeSlot(const Table& t, uint64_t key_hash) {
  return static_cast<uint32_t>(key_hash >> 32) & t.slot_mask;
}

// The slot holding key_hash, without claiming one; -1 if none.
int64_t FindKeySlot(const Table& t, uint64_t key_hash);

// DELIVERY OUTCOMES (issue 10: Exim's event_action through the guard)
//   Counts one recipient's outcome (delivered, failed, deferred) on the key's slot, and for a
//   failure the recipient's domain (domain_len 0: none) in ColdSlot::failed_domains. Never
//   claims or takes over a slot: a key the guard never counted (internet mail, Exim's own
//   bounces) or one evicted since has none, and false is returned. No allocation, no system
//   call, no lock. A slot taken over between the lookup and the add puts one outcome on the
//   newcomer, whose counters were just zeroed (at most one step off, like every counter here).
bool Tally(const Table& t, const KeyRef& key, Outcome outcome, const char* domain = nullptr,
           size_t domain_len = 0);

// Keyed hash of a key as the table sees it (sender keys are compared case-insensitively, a
// trailing '/' of a script directory is ignored). Never returns 0.
uint64_t KeyHash(const Table& t, KeyClass klass, const char* text, size_t len);

// ---- The sidecar's side -------------------------------------------------------------------

struct Limit {
  uint32_t per_minute = 0;  // 0 = unlimited
  uint32_t per_hour = 0;
};

struct PolicyRule {
  KeyClass klass = KeyClass::kSender;
  std::string key;
  uint64_t flags = 0;  // kFlagWhitelist | kFlagBlocked | kFlagOverride
  Limit limit;         // used with kFlagOverride
};

struct Policy {
  Limit class_limits[kKeyClasses];
  bool dry_run = false;
  bool fail_defer = false;
  // New keys one source (client IP, local uid) may make per minute once the table is full where
  // they land (layout.h, NEW-KEY BUDGET); 0: no budget.
  uint32_t new_key_budget = kDefaultNewKeyBudget;
  std::vector<PolicyRule> rules;  // several rules for one key are merged (flags or'ed)
};

// Publishes `p` as the next generation. Returns false with *error set when the rules do not fit
// (more than 1/2 of policy_capacity distinct keys, or clustered beyond the probe limit).
bool PublishPolicy(const Table& t, const Policy& p, std::string* error);

// What the live generation says about one key, for display: its flags (0: no rule) and the
// limits that apply to it (its override, else its class's), kUnlimited meaning unlimited.
// Returns false only if the policy could not be read consistently (retry later).
bool LookupRule(const Table& t, KeyClass klass, uint64_t key_hash, uint64_t* flags,
                uint32_t* per_minute, uint32_t* per_hour);

// The class limits and options of the live generation.
Policy LivePolicyHead(const Table& t);

// One used slot, as `top` shows it.
struct SlotView {
  KeyClass klass = KeyClass::kSender;
  std::string key;  // as stored (truncated to kLabelChars, may hold any bytes)
  uint64_t key_hash = 0;
  uint32_t minute = 0;   // recipients counted in the sliding minute
  uint32_t hour = 0;     // recipients counted in the sliding hour
  uint32_t refused = 0;  // recipients refused since the slot was claimed
  uint32_t last_seen = 0;
  uint32_t outcomes[kOutcomes] = {};  // delivered, failed, deferred since claimed (Tally)
  uint32_t failed_domains = 0;        // bitmap of the failures' recipient domains (layout.h)
};

// Every used slot seen within the last `max_age` seconds.
std::vector<SlotView> Snapshot(const Table& t, uint32_t now_unix, uint32_t max_age);

// Repairs what a killed writer can leave: a claimed slot without a label, counters stamped in
// the future (clock stepped back). Returns the number of slots repaired. Sidecar only.
int Repair(const Table& t, uint32_t now_unix);

// ---- Reconciliation with the log (sidecar only; inspect.cpp, not linked into the .so) -----
// Only the hour window: the minute window forgets a count within 65 s, before the log can say
// that a recipient never became a message.

// One key's hour window, bucket by bucket.
struct HourBuckets {
  uint32_t first_epoch = 0;           // hour bucket (unix / kHourBucketSeconds) of count[0]
  uint32_t count[kBuckets + 1] = {};  // bucket first_epoch + i; count[kBuckets]: the current one
};

// The hour buckets of the window ending at now_unix of the key with hash `key_hash` (KeyHash),
// or of (klass, key) hashed as Check() hashes it. False if the key has no slot (all zeros).
bool ReadHourBuckets(const Table& t, uint64_t key_hash, uint32_t now_unix, HourBuckets* out);
bool ReadHourBuckets(const Table& t, KeyClass klass, std::string_view key, uint32_t now_unix,
                     HourBuckets* out);

// Takes back up to n recipients from hour bucket `epoch` of a key: a finished bucket of the
// last kBuckets or the current one (WindowRelease in window.h: never below zero, the head's
// cached sum kept consistent). Returns how many were taken back; 0 if the key has no slot. One
// crediting process per segment at a time (the sidecar holds the segment's writer lock).
uint32_t CreditHour(const Table& t, uint64_t key_hash, uint32_t epoch, uint32_t n,
                    uint32_t now_unix);
uint32_t CreditHour(const Table& t, KeyClass klass, std::string_view key, uint32_t epoch,
                    uint32_t n, uint32_t now_unix);

// `reset`: takes back every recipient counted in both windows of a key (WindowRelease of each
// bucket), and of every key when key_hash is 0. Returns how many hour-window recipients were
// taken back. Counts an Exim process makes meanwhile stay (they happen after the reset).
uint64_t ClearCounts(const Table& t, uint64_t key_hash, uint32_t now_unix);

// The statistics of all shards added up.
struct StatTotals {
  uint64_t verdicts[4] = {};  // calls answered ok, defer, hold, deny
  uint64_t fail_open = 0;
  uint64_t evictions = 0;
  uint64_t new_key_refusals = 0;  // calls refused for their source's new-key budget
};
StatTotals Totals(const Table& t);

const char* VerdictName(Verdict v);
const char* KeyClassName(KeyClass k);

}  // namespace eg

#endif  // EXIMGUARD_TABLE_H_
