// layout.h - the byte layout of eximguard's shared-memory segment.
//
// SUMMARY
//   One POSIX shared-memory segment (default name "/eximguard") holds everything the inline guard
//   and the sidecar share: a header, two policy blocks (double-buffered, switched by a generation
//   number), a fixed array of counter slots and the per-source new-key budget words. This file is
//   the contract between the two; any change to a struct below must bump kLayoutVersion, and the
//   guard fails open on a version it does not know.
//
// MEMORY
//   header 256 B + 16 statistics shards of 64 B + 2 policy blocks of (64 + 24 * policy_capacity) B
//   + capacity * 336 B (a 32-byte hot slot and a 304-byte cold slot per key) + 4096 * 8 B of
//   new-key budget. Defaults (65,536 slots, 16,384 policy entries): 21.0 MiB + 0.78 MiB. Pages are
//   touched only when used, so an idle table costs little resident memory.
//
// CONCURRENCY
//   Every field that is written after creation is a std::atomic of a lock-free, address-free type,
//   so processes that map the segment at different addresses share it safely. Nothing here is a
//   lock: a process killed at any instruction leaves at most one counter one step off (see
//   window.h for the bound) and never blocks another process.
//   Fields without std::atomic are written once by the creator before any reader can attach and
//   are read once at attach time (see table.h: readers copy them into process memory and never
//   trust them again).

#ifndef EXIMGUARD_LAYOUT_H_
#define EXIMGUARD_LAYOUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace eg {

constexpr uint64_t kMagic = 0x3144524155475845ULL;  // "EXGUARD1" little-endian
constexpr uint32_t kLayoutVersion = 3;  // 2: new-key budget; 3: delivery outcomes (ColdSlot)

// Key classes counted by the guard. The numeric value is part of the key hash and the layout.
enum class KeyClass : uint8_t { kSender = 0, kCwd = 1, kUid = 2 };
constexpr int kKeyClasses = 3;

// Sliding windows: each window is kBuckets finished buckets plus the current one (see window.h).
constexpr uint32_t kBuckets = 12;
constexpr uint32_t kMinuteBucketSeconds = 5;  // 12 x 5 s   = 60 s of history + current bucket
constexpr uint32_t kHourBucketSeconds = 300;  // 12 x 300 s = 3600 s of history + current bucket

// A limit of kUnlimited never refuses. In the config, 0 means unlimited and is stored as this.
constexpr uint32_t kUnlimited = UINT32_MAX;

// Two 64-bit words per window are read on every check, in the key's hot slot: the head
// (current bucket) of the minute and of the hour window. A head packs
//   bits 63..40  the bucket's epoch (now / bucket seconds), low 24 bits
//   bits 39..20  recipients admitted in this bucket
//   bits 19..0   recipients admitted in the 12 finished buckets before it (fixed once the head
//                entered this bucket: finished buckets never grow)
// so one load and one CAS decide. Counts saturate at kMaxWindowCount; a limit at or above it is
// unlimited. The finished buckets themselves live in the cold slot and are read only when the
// head moves to a new bucket (at most once per bucket per key).
constexpr uint32_t kMaxWindowCount = (1u << 20) - 1;

// The part of a key's state that every check touches: 32 bytes, two keys per cache line.
struct HotSlot {
  std::atomic<uint64_t> key;        // keyed hash of (class, key text); 0 = never used
  std::atomic<uint32_t> last_seen;  // unix seconds of the last check (eviction picks the oldest)
  std::atomic<uint32_t> refused;    // recipients refused for this key since the slot was claimed
  std::atomic<uint64_t> minute;     // minute window head (see above)
  std::atomic<uint64_t> hour;       // hour window head
};
static_assert(sizeof(HotSlot) == 32, "HotSlot layout changed: bump kLayoutVersion");

constexpr size_t kLabelWords = 12;                   // 96 bytes of label
constexpr size_t kLabelChars = kLabelWords * 8 - 2;  // class byte + text + NUL

// What became of the recipients of a key's messages, as Exim's event_action reports them through
// the guard (guard.cpp, eximguard_event): the index into ColdSlot::outcomes.
enum class Outcome : uint8_t { kDelivered = 0, kFailed = 1, kDeferred = 2 };
constexpr int kOutcomes = 3;

// The part touched only when a head changes bucket, a key is claimed, a delivery outcome is
// counted, or `top` looks.
struct ColdSlot {
  std::atomic<uint64_t> minute_hist[kBuckets];  // finished buckets: epoch << 32 | count,
  std::atomic<uint64_t> hour_hist[kBuckets];    // at index epoch % kBuckets
  std::atomic<uint64_t> label[kLabelWords];     // byte 0: KeyClass, then the key text
  // Recipients delivered, failed (bounced) and deferred since the slot was claimed, indexed by
  // Outcome. Counted only on a key that already has a slot (table.h, Tally); the sidecar reads
  // their growth between looks.
  std::atomic<uint32_t> outcomes[kOutcomes];
  // The recipient domains of its failures since claimed: bit (keyed hash of the domain) % 32.
  // A remote MX can refuse whatever it likes, so one domain refusing a customer's mail (an
  // attacker's, whose addresses were signed up to the customer's list) must not look like a
  // bounce storm: the sidecar wants failures at several domains (detectors.bounce_min_domains).
  std::atomic<uint32_t> failed_domains;
};
static_assert(sizeof(ColdSlot) == 304, "ColdSlot layout changed: bump kLayoutVersion");

constexpr uint64_t kSlotBytes = sizeof(HotSlot) + sizeof(ColdSlot);  // 336 bytes per key

// Policy entry flags.
constexpr uint64_t kFlagWhitelist = 1;  // counted, never limited
constexpr uint64_t kFlagBlocked = 2;    // refused outright (deny)
constexpr uint64_t kFlagOverride = 4;   // limits below replace the class limits

struct PolicyEntry {
  std::atomic<uint64_t> key;     // same hash as HotSlot::key; 0 = empty
  std::atomic<uint64_t> limits;  // per_minute << 32 | per_hour
  std::atomic<uint64_t> flags;
};
static_assert(sizeof(PolicyEntry) == 24, "PolicyEntry layout changed: bump kLayoutVersion");

// Policy options.
constexpr uint64_t kOptionDryRun = 1;     // count and report, but every verdict is ok
constexpr uint64_t kOptionFailDefer = 2;  // internal trouble after attach answers defer, not ok

// A policy block is followed in memory by policy_capacity PolicyEntry (open addressing).
struct alignas(64) PolicyBlock {
  std::atomic<uint64_t> seq;                        // odd while the sidecar writes this block
  std::atomic<uint64_t> class_limits[kKeyClasses];  // per_minute << 32 | per_hour
  std::atomic<uint64_t> options;
  std::atomic<uint64_t> entries_used;
  std::atomic<uint64_t> new_key_budget;  // new keys a source may make per minute; 0: no budget
};
static_assert(sizeof(PolicyBlock) == 64, "PolicyBlock layout changed: bump kLayoutVersion");

// Verdict statistics, indexed by Verdict (see table.h) plus fail-open and eviction counts.
// kStatShards copies follow the header; a check adds to the one its first key's hash picks, so
// processes counting different keys do not bounce one cache line between them. Readers add
// them up.
constexpr uint32_t kStatShards = 16;
struct alignas(64) Stats {
  std::atomic<uint64_t> verdicts[4];       // ok, defer, hold, deny (per call, not per recipient)
  std::atomic<uint64_t> fail_open;         // calls answered ok because of an internal problem
  std::atomic<uint64_t> evictions;         // slots taken over from an idle or lightly used key
  std::atomic<uint64_t> new_key_refusals;  // calls refused: their source is over its budget
  std::atomic<uint64_t> reserved[1];
};

struct alignas(64) Header {
  uint64_t magic;
  uint32_t layout_version;
  uint32_t slot_size;  // sizeof(HotSlot) << 16 | sizeof(ColdSlot)
  uint64_t total_size;
  uint32_t capacity;         // number of slots, a power of two
  uint32_t policy_capacity;  // entries per policy block, a power of two
  uint64_t seed[2];          // hash key, random per segment
  uint64_t policy_offset[2];
  uint64_t hot_offset;   // HotSlot[capacity]
  uint64_t cold_offset;  // ColdSlot[capacity]
  uint64_t created_unix;
  std::atomic<uint32_t> retired;  // set when the sidecar replaced this segment: re-attach
                                  // (magic and retired keep their offsets in every version)
  uint32_t pad0;
  std::atomic<uint64_t> generation;  // policy generation; block generation % 2 is live
  uint64_t budget_offset;            // std::atomic<uint64_t>[kBudgetWords], after the cold slots
  uint32_t budget_words;             // kBudgetWords
  uint32_t pad1;
};
static_assert(sizeof(Header) <= 256, "Header grew past its reserved 256 bytes");

static_assert(std::atomic<uint64_t>::is_always_lock_free, "shared memory needs lock-free atomics");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "shared memory needs lock-free atomics");

// NEW-KEY BUDGET (issue 10 item 11)
//   A client that makes up thousands of senders (a relay host, a script) would otherwise fill
//   the table and push out the keys of everybody else. Every new key (a slot claimed or taken
//   over) is charged to its source: the SMTP client's IP, or the uid of a local submission. A
//   source that made more than PolicyBlock::new_key_budget new keys in the current minute
//   (unix / 60) may still claim empty slots, but may not take one over: its further new keys
//   are refused (defer / hold) instead of evicting others. One word per source:
//     bits 63..40  tag: bits 63..40 of the source's keyed hash (24 bits; 0 = empty word)
//     bits 39..24  the minute (unix / 60), low 16 bits
//     bits 23..0   new keys made in that minute (saturating)
//   kBudgetWords words, a source lives in one of kBudgetProbe words from hash & (words - 1); a
//   word of an earlier minute is free to take (CAS). When all of them belong to other sources
//   this minute, the source is not tracked (its new keys are not limited: fail open). Two
//   sources with one tag share a budget (strict, not a leak). A fixed minute, so a source can
//   make up to twice the budget across a minute boundary.
constexpr uint32_t kBudgetWords = 4096;
constexpr uint32_t kBudgetProbe = 4;
constexpr uint32_t kDefaultNewKeyBudget = 200;

constexpr uint64_t kHeaderBytes = 256;
constexpr uint64_t kStatsBytes = kStatShards * sizeof(Stats);  // right after the header

constexpr uint64_t PolicyBlockBytes(uint32_t policy_capacity) {
  return sizeof(PolicyBlock) + uint64_t{policy_capacity} * sizeof(PolicyEntry);
}

constexpr uint64_t SegmentBytes(uint32_t capacity, uint32_t policy_capacity) {
  return kHeaderBytes + kStatsBytes + 2 * PolicyBlockBytes(policy_capacity) +
         uint64_t{capacity} * kSlotBytes + uint64_t{kBudgetWords} * 8;
}

}  // namespace eg

#endif  // EXIMGUARD_LAYOUT_H_
