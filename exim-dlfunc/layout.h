// layout.h - the byte layout of eximguard's shared-memory segment.
//
// SUMMARY
//   One POSIX shared-memory segment (default name "/eximguard") holds everything the inline guard
//   and the sidecar share: a header, two policy blocks (double-buffered, switched by a generation
//   number) and a fixed array of counter slots. This file is the contract between the two; any
//   change to a struct below must bump kLayoutVersion, and the guard fails open on a version it
//   does not know.
//
// MEMORY
//   header 256 B + 2 policy blocks of (64 + 24 * policy_capacity) B + capacity * 320 B.
//   Defaults (65,536 slots, 16,384 policy entries): 20.0 MiB + 0.75 MiB. Pages are touched only
//   when used, so an idle table costs little resident memory.
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
constexpr uint32_t kLayoutVersion = 1;

// Key classes counted by the guard. The numeric value is part of the key hash and the layout.
enum class KeyClass : uint8_t { kSender = 0, kCwd = 1, kUid = 2 };
constexpr int kKeyClasses = 3;

// Sliding windows: each window is kBuckets finished buckets plus the current one (see window.h).
constexpr uint32_t kBuckets = 12;
constexpr uint32_t kMinuteBucketSeconds = 5;    // 12 x 5 s   = 60 s of history + current bucket
constexpr uint32_t kHourBucketSeconds = 300;    // 12 x 300 s = 3600 s of history + current bucket

// A limit of kUnlimited never refuses. In the config, 0 means unlimited and is stored as this.
constexpr uint32_t kUnlimited = UINT32_MAX;

// Packs (epoch, count) into one word so that a single CAS moves both.
struct Window {
  std::atomic<uint64_t> head;            // current bucket: epoch << 32 | count
  std::atomic<uint64_t> hist[kBuckets];  // finished buckets at index epoch % kBuckets
};

constexpr size_t kLabelWords = 12;                     // 96 bytes of label
constexpr size_t kLabelChars = kLabelWords * 8 - 2;    // class byte + text + NUL

// One counted key. 320 bytes, aligned to cache lines.
struct alignas(64) Slot {
  std::atomic<uint64_t> key;        // keyed hash of (class, key text); 0 = never used
  std::atomic<uint32_t> last_seen;  // unix seconds of the last check (eviction picks the oldest)
  std::atomic<uint32_t> refused;    // recipients refused for this key since the slot was claimed
  Window minute;
  Window hour;
  std::atomic<uint64_t> label[kLabelWords];  // byte 0: KeyClass, then the key text (for `top`)
};
static_assert(sizeof(Slot) == 320, "Slot layout changed: bump kLayoutVersion");

// Policy entry flags.
constexpr uint64_t kFlagWhitelist = 1;  // counted, never limited
constexpr uint64_t kFlagBlocked = 2;    // refused outright (deny)
constexpr uint64_t kFlagOverride = 4;   // limits below replace the class limits

struct PolicyEntry {
  std::atomic<uint64_t> key;     // same hash as Slot::key; 0 = empty
  std::atomic<uint64_t> limits;  // per_minute << 32 | per_hour
  std::atomic<uint64_t> flags;
};
static_assert(sizeof(PolicyEntry) == 24, "PolicyEntry layout changed: bump kLayoutVersion");

// Policy options.
constexpr uint64_t kOptionDryRun = 1;     // count and report, but every verdict is ok
constexpr uint64_t kOptionFailDefer = 2;  // internal trouble after attach answers defer, not ok

// A policy block is followed in memory by policy_capacity PolicyEntry (open addressing).
struct alignas(64) PolicyBlock {
  std::atomic<uint64_t> seq;  // odd while the sidecar writes this block
  std::atomic<uint64_t> class_limits[kKeyClasses];  // per_minute << 32 | per_hour
  std::atomic<uint64_t> options;
  std::atomic<uint64_t> entries_used;
};
static_assert(sizeof(PolicyBlock) == 64, "PolicyBlock layout changed: bump kLayoutVersion");

// Verdict statistics, indexed by Verdict (see table.h) plus fail-open and eviction counts.
struct Stats {
  std::atomic<uint64_t> verdicts[4];  // ok, defer, hold, deny (per call, not per recipient)
  std::atomic<uint64_t> fail_open;    // calls answered ok because of an internal problem
  std::atomic<uint64_t> evictions;    // slots taken over from an idle key
  std::atomic<uint64_t> reserved[2];
};

struct alignas(64) Header {
  uint64_t magic;
  uint32_t layout_version;
  uint32_t slot_size;
  uint64_t total_size;
  uint32_t capacity;         // number of slots, a power of two
  uint32_t policy_capacity;  // entries per policy block, a power of two
  uint64_t seed[2];          // hash key, random per segment
  uint64_t policy_offset[2];
  uint64_t slots_offset;
  uint64_t created_unix;
  std::atomic<uint32_t> retired;     // set when the sidecar replaced this segment: re-attach
  uint32_t pad0;
  std::atomic<uint64_t> generation;  // policy generation; block generation % 2 is live
  alignas(64) Stats stats;
};
static_assert(sizeof(Header) <= 256, "Header grew past its reserved 256 bytes");

static_assert(std::atomic<uint64_t>::is_always_lock_free, "shared memory needs lock-free atomics");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "shared memory needs lock-free atomics");

constexpr uint64_t kHeaderBytes = 256;

constexpr uint64_t PolicyBlockBytes(uint32_t policy_capacity) {
  return sizeof(PolicyBlock) + uint64_t{policy_capacity} * sizeof(PolicyEntry);
}

constexpr uint64_t SegmentBytes(uint32_t capacity, uint32_t policy_capacity) {
  return kHeaderBytes + 2 * PolicyBlockBytes(policy_capacity) + uint64_t{capacity} * sizeof(Slot);
}

}  // namespace eg

#endif  // EXIMGUARD_LAYOUT_H_
