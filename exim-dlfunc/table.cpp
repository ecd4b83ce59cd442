// table.cpp - Format, Bind and the hot path Check(); see table.h for the contract.

#include "table.h"

#include <cstring>

#include "policy_read.h"
#include "window.h"

namespace eg {
namespace {

// Slots probed from a key's home slot. A key lives in the first free slot of its probe run, or
// replaces the idlest key of the run when none is free, so a full table keeps counting.
constexpr uint32_t kProbe = 16;

bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

void WriteLabel(Slot& s, KeyClass klass, const char* text, size_t len) {
  char buf[kLabelWords * 8] = {};
  buf[0] = static_cast<char>(klass);
  const size_t n = len < kLabelChars ? len : kLabelChars;
  std::memcpy(buf + 1, text, n);
  for (size_t i = 0; i < kLabelWords; ++i) {
    uint64_t w;
    std::memcpy(&w, buf + 8 * i, 8);
    s.label[i].store(w, std::memory_order_relaxed);
  }
}

void Claimed(Slot& s, KeyClass klass, const char* text, size_t len, uint32_t now) {
  s.last_seen.store(now, std::memory_order_relaxed);
  s.refused.store(0, std::memory_order_relaxed);
  WriteLabel(s, klass, text, len);
}

// The slot counting `hash`, claiming or taking over one if needed. nullptr only if the probe
// run changed under us many times in a row.
Slot* FindSlot(const Table& t, uint64_t hash, const KeyRef& k, uint32_t now) {
  const uint32_t home = static_cast<uint32_t>(hash >> 32) & t.slot_mask;
  for (int round = 0; round < 8; ++round) {
    Slot* victim = nullptr;
    uint64_t victim_key = 0;
    uint32_t oldest = UINT32_MAX;
    for (uint32_t i = 0; i < kProbe; ++i) {
      Slot& s = t.slots[(home + i) & t.slot_mask];
      uint64_t key = s.key.load(std::memory_order_acquire);
      if (key == hash) return &s;
      if (key == 0) {  // slots are never emptied, so the key is not further along: claim this
        if (s.key.compare_exchange_strong(key, hash, std::memory_order_acq_rel)) {
          Claimed(s, k.klass, k.text, k.len, now);
          return &s;
        }
        if (key == hash) return &s;
        continue;  // another key took it; it is not ours, keep probing
      }
      const uint32_t seen = s.last_seen.load(std::memory_order_relaxed);
      if (seen < oldest) {
        oldest = seen;
        victim = &s;
        victim_key = key;
      }
    }
    if (victim == nullptr) continue;
    // Take over the idlest key. Its windows are kept: counts older than an hour have expired
    // anyway, and counts of a recently active victim make us strict, never lenient.
    uint64_t expected = victim_key;
    if (victim->key.compare_exchange_strong(expected, hash, std::memory_order_acq_rel)) {
      t.header->stats.evictions.fetch_add(1, std::memory_order_relaxed);
      Claimed(*victim, k.klass, k.text, k.len, now);
      return victim;
    }
    if (expected == hash) return victim;
  }
  return nullptr;
}

struct Reservation {
  Window* window;
  uint32_t epoch;
};

}  // namespace

const char* Format(void* base, uint64_t size, uint32_t capacity, uint32_t policy_capacity,
                   const uint64_t seed[2], uint64_t now_unix) {
  if (!IsPowerOfTwo(capacity) || capacity < kProbe) return "capacity must be a power of two >= 16";
  if (!IsPowerOfTwo(policy_capacity) || policy_capacity < 64) {
    return "policy_capacity must be a power of two >= 64";
  }
  if (size < SegmentBytes(capacity, policy_capacity)) return "segment too small for capacity";
  auto* bytes = static_cast<unsigned char*>(base);
  auto* h = new (base) Header();
  h->magic = kMagic;
  h->layout_version = kLayoutVersion;
  h->slot_size = sizeof(Slot);
  h->total_size = SegmentBytes(capacity, policy_capacity);
  h->capacity = capacity;
  h->policy_capacity = policy_capacity;
  h->seed[0] = seed[0];
  h->seed[1] = seed[1];
  h->policy_offset[0] = kHeaderBytes;
  h->policy_offset[1] = kHeaderBytes + PolicyBlockBytes(policy_capacity);
  h->slots_offset = kHeaderBytes + 2 * PolicyBlockBytes(policy_capacity);
  h->created_unix = now_unix;
  for (int b = 0; b < 2; ++b) {
    auto* block = new (bytes + h->policy_offset[b]) PolicyBlock();
    for (int c = 0; c < kKeyClasses; ++c) {
      block->class_limits[c].store(PackLimits(kUnlimited, kUnlimited), std::memory_order_relaxed);
    }
    new (bytes + h->policy_offset[b] + sizeof(PolicyBlock)) PolicyEntry[policy_capacity]();
  }
  new (bytes + h->slots_offset) Slot[capacity]();
  std::atomic_thread_fence(std::memory_order_release);
  return nullptr;
}

const char* Bind(void* base, uint64_t size, Table* t) {
  if (base == nullptr || size < kHeaderBytes) return "segment smaller than its header";
  auto* h = static_cast<Header*>(base);
  if (h->magic != kMagic) return "not an eximguard segment (bad magic)";
  if (h->layout_version != kLayoutVersion) return "unknown segment layout version";
  if (h->slot_size != sizeof(Slot)) return "segment slot size mismatch";
  const uint32_t capacity = h->capacity;
  const uint32_t policy_capacity = h->policy_capacity;
  if (!IsPowerOfTwo(capacity) || capacity < kProbe || !IsPowerOfTwo(policy_capacity) ||
      policy_capacity < 64) {
    return "segment capacity is not a power of two";
  }
  const uint64_t need = SegmentBytes(capacity, policy_capacity);
  if (h->total_size != need || size < need) return "segment size does not match its header";
  if (h->policy_offset[0] != kHeaderBytes ||
      h->policy_offset[1] != kHeaderBytes + PolicyBlockBytes(policy_capacity) ||
      h->slots_offset != kHeaderBytes + 2 * PolicyBlockBytes(policy_capacity)) {
    return "segment offsets do not match its header";
  }
  auto* bytes = static_cast<unsigned char*>(base);
  t->header = h;
  for (int b = 0; b < 2; ++b) {
    t->policy[b] = reinterpret_cast<PolicyBlock*>(bytes + kHeaderBytes +
                                                  b * PolicyBlockBytes(policy_capacity));
    t->entries[b] = reinterpret_cast<PolicyEntry*>(reinterpret_cast<unsigned char*>(t->policy[b]) +
                                                   sizeof(PolicyBlock));
  }
  t->slots = reinterpret_cast<Slot*>(bytes + kHeaderBytes + 2 * PolicyBlockBytes(policy_capacity));
  t->slot_mask = capacity - 1;
  t->policy_mask = policy_capacity - 1;
  t->seed[0] = h->seed[0];
  t->seed[1] = h->seed[1];
  return nullptr;
}

Decision Check(const Table& t, const KeyRef* keys, int nkeys, uint32_t count, uint32_t now_unix,
               Verdict over_limit) {
  Decision d;
  Stats& stats = t.header->stats;
  if (nkeys > kMaxKeys) nkeys = kMaxKeys;
  if (count == 0) count = 1;

  uint64_t hashes[kMaxKeys] = {};
  KeyClass classes[kMaxKeys] = {};
  for (int i = 0; i < nkeys; ++i) {
    classes[i] = keys[i].klass;
    if (keys[i].len > 0) hashes[i] = KeyHash(t, keys[i].klass, keys[i].text, keys[i].len);
  }
  PolicySnapshot pol;
  if (!ReadPolicy(t, hashes, classes, nkeys, &pol)) {
    d.failed = true;
    stats.fail_open.fetch_add(1, std::memory_order_relaxed);
    return d;  // cannot know the fail mode without a policy: open
  }
  const bool dry_run = pol.options & kOptionDryRun;
  auto refuse = [&](Verdict v, int key, Slot* slot) {
    d.key = key;
    d.would = v;
    if (slot) slot->refused.fetch_add(count, std::memory_order_relaxed);
    if (dry_run) {
      d.dry_run = true;
      d.verdict = Verdict::kOk;
    } else {
      d.verdict = v;
    }
  };
  auto fail = [&]() {
    d.failed = true;
    d.verdict = (pol.options & kOptionFailDefer) ? over_limit : Verdict::kOk;
    stats.fail_open.fetch_add(1, std::memory_order_relaxed);
  };

  for (int i = 0; i < nkeys; ++i) {
    if (hashes[i] != 0 && (pol.key[i].flags & kFlagBlocked)) {
      refuse(Verdict::kDeny, i, nullptr);
      if (!dry_run) {
        stats.verdicts[static_cast<int>(d.verdict)].fetch_add(1, std::memory_order_relaxed);
        return d;
      }
    }
  }

  const uint32_t minute_epoch = now_unix / kMinuteBucketSeconds;
  const uint32_t hour_epoch = now_unix / kHourBucketSeconds;
  Slot* slots[kMaxKeys] = {};
  uint32_t minute_limit[kMaxKeys];
  uint32_t hour_limit[kMaxKeys];
  for (int i = 0; i < nkeys; ++i) {
    if (hashes[i] == 0) continue;
    slots[i] = FindSlot(t, hashes[i], keys[i], now_unix);
    if (slots[i] == nullptr) {
      fail();
      return d;
    }
    if (slots[i]->last_seen.load(std::memory_order_relaxed) != now_unix) {
      slots[i]->last_seen.store(now_unix, std::memory_order_relaxed);
    }
    const bool whitelisted = pol.key[i].flags & kFlagWhitelist;
    const uint32_t per_minute = whitelisted ? kUnlimited : pol.key[i].per_minute;
    const uint32_t per_hour = whitelisted ? kUnlimited : pol.key[i].per_hour;
    // Read-only pre-check, so a sender hammering a full window writes nothing shared.
    if (d.key < 0) {
      if (uint64_t{WindowCount(slots[i]->minute, minute_epoch)} + count > per_minute) {
        refuse(over_limit, i, slots[i]);
        d.limit = per_minute;
      } else if (uint64_t{WindowCount(slots[i]->hour, hour_epoch)} + count > per_hour) {
        refuse(over_limit, i, slots[i]);
        d.hour = true;
        d.limit = per_hour;
      }
    }
    // A dry run counts everything that really goes out.
    minute_limit[i] = dry_run ? kUnlimited : per_minute;
    hour_limit[i] = dry_run ? kUnlimited : per_hour;
  }
  if (d.verdict != Verdict::kOk) {
    stats.verdicts[static_cast<int>(d.verdict)].fetch_add(1, std::memory_order_relaxed);
    return d;
  }

  // Count on every key, or on none.
  Reservation held[2 * kMaxKeys];
  int nheld = 0;
  for (int i = 0; i < nkeys; ++i) {
    if (slots[i] == nullptr) continue;
    Window* windows[2] = {&slots[i]->minute, &slots[i]->hour};
    const uint32_t epochs[2] = {minute_epoch, hour_epoch};
    const uint32_t limits[2] = {minute_limit[i], hour_limit[i]};
    for (int w = 0; w < 2; ++w) {
      uint32_t counted = 0;
      const Reserve r = WindowReserve(*windows[w], epochs[w], count, limits[w], &counted);
      if (r == Reserve::kAdmitted) {
        held[nheld++] = {windows[w], counted};
        continue;
      }
      for (int j = 0; j < nheld; ++j) WindowRelease(*held[j].window, held[j].epoch, count);
      if (r == Reserve::kFull) {  // lost the race for the last places
        refuse(over_limit, i, slots[i]);
        d.hour = (w == 1);
        d.limit = limits[w];
      } else {
        fail();
      }
      stats.verdicts[static_cast<int>(d.verdict)].fetch_add(1, std::memory_order_relaxed);
      return d;
    }
  }
  stats.verdicts[static_cast<int>(Verdict::kOk)].fetch_add(1, std::memory_order_relaxed);
  return d;
}

}  // namespace eg
