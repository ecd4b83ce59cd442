// table.cpp - Format, Bind and the hot path Check(); see table.h for the contract.

#include "table.h"

#include <cstring>

#include "policy_read.h"
#include "window.h"

namespace eg {
namespace {

// Slots probed from a key's home slot. A key lives in the first free slot of its probe run, or
// takes over a key of the run as table.h (EVICTION) says, so a full table keeps counting new
// senders without pushing out keys that are near their limits.
constexpr uint32_t kProbe = kProbeSlots;
// Both windows of a key hold nothing once it has been silent this long (13 hour buckets).
constexpr uint32_t kWindowsSpanSeconds = (kBuckets + 1) * kHourBucketSeconds;

bool IsPowerOfTwo(uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

void WriteLabel(ColdSlot& s, KeyClass klass, const char* text, size_t len) {
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

void Claimed(const Table& t, uint32_t i, const KeyRef& k, uint32_t now, bool taken_over) {
  t.hot[i].last_seen.store(now, std::memory_order_relaxed);
  t.hot[i].refused.store(0, std::memory_order_relaxed);
  for (auto& o : t.cold[i].outcomes) o.store(0, std::memory_order_relaxed);
  t.cold[i].failed_domains.store(0, std::memory_order_relaxed);
  if (taken_over) {  // the old key was silent for over an hour: its windows hold nothing live
    t.hot[i].minute.store(0, std::memory_order_relaxed);
    t.hot[i].hour.store(0, std::memory_order_relaxed);
    for (auto& b : t.cold[i].minute_hist) b.store(0, std::memory_order_relaxed);
    for (auto& b : t.cold[i].hour_hist) b.store(0, std::memory_order_relaxed);
  }
  WriteLabel(t.cold[i], k.klass, k.text, k.len);
}

WindowRef MinuteWindow(const Table& t, uint32_t i) {
  return {&t.hot[i].minute, t.cold[i].minute_hist};
}
WindowRef HourWindow(const Table& t, uint32_t i) {
  return {&t.hot[i].hour, t.cold[i].hour_hist};
}

// ---- new-key budget words (layout.h, NEW-KEY BUDGET) ----
constexpr uint64_t kTagMask = ~((uint64_t{1} << 40) - 1);
constexpr uint64_t kBudgetCountMask = (uint64_t{1} << 24) - 1;
constexpr uint64_t kBudgetMinuteMask = uint64_t{0xffff} << 24;

struct Source {
  uint64_t tag = 0;     // 0: no source (not budgeted)
  uint32_t budget = 0;  // 0: no budget
};

uint64_t BudgetMinute(uint32_t now) {
  return uint64_t{(now / 60) & 0xffff} << 24;
}

// New keys `src` made this minute (0 if untracked).
uint32_t NewKeysThisMinute(const Table& t, const Source& src, uint32_t now) {
  const uint64_t home = src.tag >> 40;
  const uint64_t want = src.tag | BudgetMinute(now);
  for (uint32_t p = 0; p < kBudgetProbe; ++p) {
    const uint64_t w = t.budget[(home + p) & (kBudgetWords - 1)].load(std::memory_order_relaxed);
    if ((w & ~kBudgetCountMask) == want) return static_cast<uint32_t>(w & kBudgetCountMask);
  }
  return 0;
}

// Charges one new key to `src`: its word of this minute, else a word of an earlier minute.
void ChargeNewKey(const Table& t, const Source& src, uint32_t now) {
  if (src.tag == 0) return;
  const uint64_t home = src.tag >> 40;
  const uint64_t want = src.tag | BudgetMinute(now);
  for (int round = 0; round < 4; ++round) {
    std::atomic<uint64_t>* stale = nullptr;
    uint64_t stale_word = 0;
    for (uint32_t p = 0; p < kBudgetProbe; ++p) {
      std::atomic<uint64_t>& word = t.budget[(home + p) & (kBudgetWords - 1)];
      uint64_t w = word.load(std::memory_order_relaxed);
      if ((w & ~kBudgetCountMask) == want) {
        for (int i = 0; i < 64 && (w & ~kBudgetCountMask) == want; ++i) {
          if ((w & kBudgetCountMask) == kBudgetCountMask) return;  // saturated
          if (word.compare_exchange_weak(w, w + 1, std::memory_order_relaxed)) return;
        }
        break;  // the word changed owner meanwhile: look again
      }
      if (stale == nullptr && (w == 0 || (w & kBudgetMinuteMask) != BudgetMinute(now))) {
        stale = &word;  // empty, or of an earlier minute: free to take
        stale_word = w;
      }
    }
    if (stale == nullptr) return;  // every word is another source's this minute: untracked
    if (stale->compare_exchange_strong(stale_word, want | 1, std::memory_order_relaxed)) return;
  }
}

// The slot index counting `hash`, claiming or taking over one if needed (table.h, EVICTION).
// kNoSlot if no slot of the probe run may be taken (fail open), or the run changed under us
// many times in a row; kOverBudget if one would have to be taken over but `src` is over its
// new-key budget.
constexpr uint32_t kNoSlot = UINT32_MAX;
constexpr uint32_t kOverBudget = UINT32_MAX - 1;

uint32_t FindSlot(const Table& t, uint64_t hash, const KeyRef& k, uint32_t now, const Source& src) {
  const uint32_t home = HomeSlot(t, hash);
  const uint32_t minute_epoch = now / kMinuteBucketSeconds;
  const uint32_t hour_epoch = now / kHourBucketSeconds;
  for (int round = 0; round < 8; ++round) {
    uint32_t idle = kNoSlot;  // tier 1: nothing counted, least recently seen
    uint64_t idle_key = 0;
    uint32_t idle_seen = UINT32_MAX;
    uint32_t light = kNoSlot;  // tier 2: lightly used, fewest hour recipients
    uint64_t light_key = 0;
    uint32_t light_hour = UINT32_MAX;
    uint32_t light_seen = UINT32_MAX;
    for (uint32_t p = 0; p < kProbe; ++p) {
      const uint32_t i = (home + p) & t.slot_mask;
      HotSlot& s = t.hot[i];
      uint64_t key = s.key.load(std::memory_order_acquire);
      if (key == hash) return i;
      if (key == 0) {  // slots are never emptied, so the key is not further along: claim this
        if (s.key.compare_exchange_strong(key, hash, std::memory_order_acq_rel)) {
          Claimed(t, i, k, now, false);
          ChargeNewKey(t, src, now);
          return i;
        }
        if (key == hash) return i;
        continue;  // another key took it; it is not ours, keep probing
      }
    }
    // Every slot of the run is held: someone must go, if anyone may.
    if (src.tag != 0 && src.budget != 0 && NewKeysThisMinute(t, src, now) >= src.budget) {
      return kOverBudget;
    }
    for (uint32_t p = 0; p < kProbe; ++p) {
      const uint32_t i = (home + p) & t.slot_mask;
      const uint64_t key = t.hot[i].key.load(std::memory_order_acquire);
      if (key == hash) return i;
      const uint32_t seen = t.hot[i].last_seen.load(std::memory_order_relaxed);
      const uint32_t in_minute = WindowCount(MinuteWindow(t, i), minute_epoch);
      const uint32_t in_hour = WindowCount(HourWindow(t, i), hour_epoch);
      if (in_minute == 0 && in_hour == 0) {
        if (seen < idle_seen || idle == kNoSlot) {
          idle = i;
          idle_key = key;
          idle_seen = seen;
        }
        continue;
      }
      if (idle != kNoSlot) continue;  // an idle key goes first anyway
      if (in_hour > light_hour || (in_hour == light_hour && seen >= light_seen)) continue;
      // Near its own limits? The key's class is label byte 0.
      const auto klass = static_cast<KeyClass>(
          static_cast<uint8_t>(t.cold[i].label[0].load(std::memory_order_relaxed) & 0xff));
      if (static_cast<uint8_t>(klass) >= kKeyClasses) continue;
      PolicySnapshot pol;
      if (!ReadPolicy(t, &key, &klass, 1, &pol)) continue;
      const KeyPolicy& kp = pol.key[0];
      const bool whitelisted = kp.flags & kFlagWhitelist;
      const uint64_t per_minute = whitelisted ? kUnlimited : kp.per_minute;
      const uint64_t per_hour = whitelisted ? kUnlimited : kp.per_hour;
      if (uint64_t{in_minute} * 4 > per_minute || uint64_t{in_hour} * 4 > per_hour) continue;
      light = i;
      light_key = key;
      light_hour = in_hour;
      light_seen = seen;
    }
    const uint32_t victim = idle != kNoSlot ? idle : light;
    if (victim == kNoSlot) return kNoSlot;
    uint64_t expected = idle != kNoSlot ? idle_key : light_key;
    if (t.hot[victim].key.compare_exchange_strong(expected, hash, std::memory_order_acq_rel)) {
      t.stats[hash % kStatShards].evictions.fetch_add(1, std::memory_order_relaxed);
      Claimed(t, victim, k, now, true);
      ChargeNewKey(t, src, now);
      return victim;
    }
    if (expected == hash) return victim;
  }
  return kNoSlot;
}

struct Reservation {
  WindowRef window;
  uint32_t epoch;      // the bucket the count went into
  uint32_t now_epoch;  // the bucket of now, as the reservation saw it
};

}  // namespace

int64_t FindKeySlot(const Table& t, uint64_t key_hash) {
  const uint32_t home = HomeSlot(t, key_hash);
  for (uint32_t p = 0; p < kProbeSlots; ++p) {
    const uint32_t i = (home + p) & t.slot_mask;
    if (t.hot[i].key.load(std::memory_order_acquire) == key_hash) return i;
  }
  return -1;
}

bool Tally(const Table& t, const KeyRef& key, Outcome outcome, const char* domain,
           size_t domain_len) {
  if (key.len == 0 || static_cast<int>(outcome) >= kOutcomes) return false;
  const int64_t i = FindKeySlot(t, KeyHash(t, key.klass, key.text, key.len));
  if (i < 0) return false;
  ColdSlot& c = t.cold[i];
  c.outcomes[static_cast<int>(outcome)].fetch_add(1, std::memory_order_relaxed);
  if (outcome == Outcome::kFailed && domain_len > 0) {
    const uint64_t h = KeyHash(t, KeyClass::kSender, domain, domain_len);  // case-insensitive
    c.failed_domains.fetch_or(uint32_t{1} << (h >> 59), std::memory_order_relaxed);
  }
  return true;
}

const char* Format(void* base, uint64_t size, uint32_t capacity, uint32_t policy_capacity,
                   const uint64_t seed[2], uint64_t now_unix) {
  if (!IsPowerOfTwo(capacity) || capacity < kProbe) return "capacity must be a power of two >= 16";
  if (!IsPowerOfTwo(policy_capacity) || policy_capacity < 64) {
    return "policy_capacity must be a power of two >= 64";
  }
  if (size < SegmentBytes(capacity, policy_capacity)) return "segment too small for capacity";
  // The memory is zero-filled (fresh ftruncate pages), and zero is an empty slot, an empty
  // policy entry and a zero statistic: only the header and the two policy heads are written, so
  // creating a table does not make its megabytes resident.
  auto* bytes = static_cast<unsigned char*>(base);
  auto* h = new (base) Header();
  h->layout_version = kLayoutVersion;
  h->slot_size = sizeof(HotSlot) << 16 | sizeof(ColdSlot);
  h->total_size = SegmentBytes(capacity, policy_capacity);
  h->capacity = capacity;
  h->policy_capacity = policy_capacity;
  h->seed[0] = seed[0];
  h->seed[1] = seed[1];
  h->policy_offset[0] = kHeaderBytes + kStatsBytes;
  h->policy_offset[1] = h->policy_offset[0] + PolicyBlockBytes(policy_capacity);
  h->hot_offset = h->policy_offset[1] + PolicyBlockBytes(policy_capacity);
  h->cold_offset = h->hot_offset + uint64_t{capacity} * sizeof(HotSlot);
  h->created_unix = now_unix;
  h->budget_offset = h->cold_offset + uint64_t{capacity} * sizeof(ColdSlot);
  h->budget_words = kBudgetWords;
  for (int b = 0; b < 2; ++b) {
    auto* block = new (bytes + h->policy_offset[b]) PolicyBlock();
    for (int c = 0; c < kKeyClasses; ++c) {
      block->class_limits[c].store(PackLimits(kUnlimited, kUnlimited), std::memory_order_relaxed);
    }
  }
  // Last: a guard that attaches meanwhile sees no magic and fails open, never a half header.
  std::atomic_ref<uint64_t>(h->magic).store(kMagic, std::memory_order_release);
  return nullptr;
}

const char* Bind(void* base, uint64_t size, Table* t) {
  if (base == nullptr || size < kHeaderBytes) return "segment smaller than its header";
  auto* h = static_cast<Header*>(base);
  if (std::atomic_ref<uint64_t>(h->magic).load(std::memory_order_acquire) != kMagic) {
    return "not an eximguard segment (bad magic)";
  }
  if (h->layout_version != kLayoutVersion) return "unknown segment layout version";
  if (h->slot_size != (sizeof(HotSlot) << 16 | sizeof(ColdSlot))) {
    return "segment slot size mismatch";
  }
  const uint32_t capacity = h->capacity;
  const uint32_t policy_capacity = h->policy_capacity;
  if (!IsPowerOfTwo(capacity) || capacity < kProbe || !IsPowerOfTwo(policy_capacity) ||
      policy_capacity < 64) {
    return "segment capacity is not a power of two";
  }
  const uint64_t need = SegmentBytes(capacity, policy_capacity);
  if (h->total_size != need || size < need) return "segment size does not match its header";
  const uint64_t policy0 = kHeaderBytes + kStatsBytes;
  const uint64_t policy1 = policy0 + PolicyBlockBytes(policy_capacity);
  const uint64_t hot = policy1 + PolicyBlockBytes(policy_capacity);
  if (h->policy_offset[0] != policy0 || h->policy_offset[1] != policy1 || h->hot_offset != hot ||
      h->cold_offset != h->hot_offset + uint64_t{capacity} * sizeof(HotSlot) ||
      h->budget_offset != h->cold_offset + uint64_t{capacity} * sizeof(ColdSlot) ||
      h->budget_words != kBudgetWords) {
    return "segment offsets do not match its header";
  }
  auto* bytes = static_cast<unsigned char*>(base);
  t->header = h;
  t->stats = reinterpret_cast<Stats*>(bytes + kHeaderBytes);
  for (int b = 0; b < 2; ++b) {
    t->policy[b] = reinterpret_cast<PolicyBlock*>(bytes + (b == 0 ? policy0 : policy1));
    t->entries[b] = reinterpret_cast<PolicyEntry*>(reinterpret_cast<unsigned char*>(t->policy[b]) +
                                                   sizeof(PolicyBlock));
  }
  t->hot = reinterpret_cast<HotSlot*>(bytes + hot);
  t->cold = reinterpret_cast<ColdSlot*>(bytes + hot + uint64_t{capacity} * sizeof(HotSlot));
  t->slot_mask = capacity - 1;
  t->policy_mask = policy_capacity - 1;
  t->seed[0] = h->seed[0];
  t->seed[1] = h->seed[1];
  t->budget = reinterpret_cast<std::atomic<uint64_t>*>(bytes + h->budget_offset);
  return nullptr;
}

Decision Check(const Table& t, const KeyRef* keys, int nkeys, uint32_t count, uint32_t now_unix,
               Verdict over_limit, const KeyRef* source) {
  Decision d;
  if (nkeys > kMaxKeys) nkeys = kMaxKeys;
  if (count == 0) count = 1;

  uint64_t hashes[kMaxKeys] = {};
  KeyClass classes[kMaxKeys] = {};
  uint64_t any_hash = 0;
  for (int i = 0; i < nkeys; ++i) {
    classes[i] = keys[i].klass;
    if (keys[i].len > 0) hashes[i] = KeyHash(t, keys[i].klass, keys[i].text, keys[i].len);
    any_hash ^= hashes[i];
  }
  Stats& stats = t.stats[any_hash % kStatShards];
  PolicySnapshot pol;
  if (!ReadPolicy(t, hashes, classes, nkeys, &pol)) {
    d.failed = "policy unreadable";
    stats.fail_open.fetch_add(1, std::memory_order_relaxed);
    return d;  // cannot know the fail mode without a policy: open
  }
  const bool dry_run = pol.options & kOptionDryRun;
  Source src;
  if (source != nullptr && source->len > 0) {
    src.tag = KeyHash(t, KeyClass::kUid, source->text, source->len) & kTagMask;
    if (src.tag == 0) src.tag = uint64_t{1} << 40;
    src.budget = pol.new_key_budget > kBudgetCountMask ? static_cast<uint32_t>(kBudgetCountMask)
                                                       : static_cast<uint32_t>(pol.new_key_budget);
  }
  auto refuse = [&](Verdict v, int key, uint32_t slot) {
    d.key = key;
    d.would = v;
    if (slot != kNoSlot) t.hot[slot].refused.fetch_add(count, std::memory_order_relaxed);
    if (dry_run) {
      d.dry_run = true;
      d.verdict = Verdict::kOk;
    } else {
      d.verdict = v;
    }
  };
  auto fail = [&](const char* why) {
    d.failed = why;
    d.verdict = (pol.options & kOptionFailDefer) ? over_limit : Verdict::kOk;
    stats.fail_open.fetch_add(1, std::memory_order_relaxed);
  };

  for (int i = 0; i < nkeys; ++i) {
    if (hashes[i] != 0 && (pol.key[i].flags & kFlagBlocked)) {
      // Counted nowhere, but given a slot so `top` shows how much a blocked key still tries.
      const uint32_t slot = FindSlot(t, hashes[i], keys[i], now_unix, src);
      refuse(Verdict::kDeny, i, slot == kOverBudget ? kNoSlot : slot);
      if (!dry_run) {
        stats.verdicts[static_cast<int>(d.verdict)].fetch_add(1, std::memory_order_relaxed);
        return d;
      }
    }
  }

  const uint32_t minute_epoch = now_unix / kMinuteBucketSeconds;
  const uint32_t hour_epoch = now_unix / kHourBucketSeconds;
  uint32_t slots[kMaxKeys];
  uint32_t minute_limit[kMaxKeys];
  uint32_t hour_limit[kMaxKeys];
  for (int i = 0; i < nkeys; ++i) {
    slots[i] = kNoSlot;
    if (hashes[i] == 0) continue;
    slots[i] = FindSlot(t, hashes[i], keys[i], now_unix, src);
    if (slots[i] == kOverBudget) {  // a new key that would push out others: not this minute
      slots[i] = kNoSlot;
      stats.new_key_refusals.fetch_add(1, std::memory_order_relaxed);
      refuse(over_limit, i, kNoSlot);
      d.new_keys = true;
      d.hour = false;
      d.limit = src.budget;
      if (dry_run) continue;  // count the other keys, as a dry run counts what goes out
      stats.verdicts[static_cast<int>(d.verdict)].fetch_add(1, std::memory_order_relaxed);
      return d;
    }
    if (slots[i] == kNoSlot) {
      fail("table full");
      return d;
    }
    HotSlot& hot = t.hot[slots[i]];
    uint32_t seen = hot.last_seen.load(std::memory_order_relaxed);
    if (seen != now_unix &&
        hot.last_seen.compare_exchange_strong(seen, now_unix, std::memory_order_relaxed) &&
        seen < now_unix && now_unix - seen > kWindowsSpanSeconds) {
      // Nothing was counted for longer than both windows span, so they hold nothing; but a head
      // untouched for 2^24 buckets would decode as a recent one (window.h, LIMITS): clear them.
      // Only the process that moved last_seen does it.
      WindowExpire(MinuteWindow(t, slots[i]));
      WindowExpire(HourWindow(t, slots[i]));
    }
    const bool whitelisted = pol.key[i].flags & kFlagWhitelist;
    const uint32_t per_minute = whitelisted ? kUnlimited : pol.key[i].per_minute;
    const uint32_t per_hour = whitelisted ? kUnlimited : pol.key[i].per_hour;
    // Read-only pre-check, so a sender hammering a full window writes nothing shared.
    if (d.key < 0) {
      if (uint64_t{WindowCount(MinuteWindow(t, slots[i]), minute_epoch)} + count > per_minute) {
        refuse(over_limit, i, slots[i]);
        d.limit = per_minute;
      } else if (uint64_t{WindowCount(HourWindow(t, slots[i]), hour_epoch)} + count > per_hour) {
        refuse(over_limit, i, slots[i]);
        d.hour = true;
        d.limit = per_hour;
      }
    }
    // A dry run counts everything that really goes out; a limit at or above the count's
    // saturation point cannot be enforced and is unlimited.
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
    if (slots[i] == kNoSlot) continue;
    const WindowRef windows[2] = {MinuteWindow(t, slots[i]), HourWindow(t, slots[i])};
    const uint32_t epochs[2] = {minute_epoch, hour_epoch};
    const uint32_t limits[2] = {minute_limit[i], hour_limit[i]};
    for (int w = 0; w < 2; ++w) {
      uint32_t counted = 0;
      const Reserve r = WindowReserve(windows[w], epochs[w], count, limits[w], &counted);
      if (r == Reserve::kAdmitted) {
        held[nheld++] = {windows[w], counted, epochs[w]};
        continue;
      }
      for (int j = 0; j < nheld; ++j) {
        WindowRelease(held[j].window, held[j].epoch, count, held[j].now_epoch);
      }
      if (r == Reserve::kFull) {  // lost the race for the last places
        refuse(over_limit, i, slots[i]);
        d.hour = (w == 1);
        d.limit = limits[w];
      } else {
        fail("table contended");
      }
      stats.verdicts[static_cast<int>(d.verdict)].fetch_add(1, std::memory_order_relaxed);
      return d;
    }
  }
  stats.verdicts[static_cast<int>(Verdict::kOk)].fetch_add(1, std::memory_order_relaxed);
  return d;
}

// Here, not in inspect.cpp: the guard names verdicts and classes, and pulling inspect.o into
// eximguard.so would bring the sidecar's readers (and their allocations) with them.
const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kOk:
      return "ok";
    case Verdict::kDefer:
      return "defer";
    case Verdict::kHold:
      return "hold";
    case Verdict::kDeny:
      return "deny";
  }
  return "ok";
}

const char* KeyClassName(KeyClass k) {
  switch (k) {
    case KeyClass::kSender:
      return "sender";
    case KeyClass::kCwd:
      return "cwd";
    case KeyClass::kUid:
      return "uid";
  }
  return "sender";
}

}  // namespace eg
