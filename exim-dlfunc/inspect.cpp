// inspect.cpp - reading the table for `top`, repairing what killed writers leave, and crediting
// back hour counts the log disproves (sidecar only: eximguard.so does not link this file in).

#include <cstring>

#include "table.h"
#include "window.h"

namespace eg {

std::vector<SlotView> Snapshot(const Table& t, uint32_t now_unix, uint32_t max_age) {
  std::vector<SlotView> out;
  const uint32_t minute_epoch = now_unix / kMinuteBucketSeconds;
  const uint32_t hour_epoch = now_unix / kHourBucketSeconds;
  for (uint64_t i = 0; i <= t.slot_mask; ++i) {
    const HotSlot& s = t.hot[i];
    const uint64_t key = s.key.load(std::memory_order_acquire);
    if (key == 0) continue;
    const uint32_t seen = s.last_seen.load(std::memory_order_relaxed);
    if (seen + uint64_t{max_age} < now_unix) continue;
    char buf[kLabelWords * 8 + 1] = {};
    for (size_t w = 0; w < kLabelWords; ++w) {
      const uint64_t v = t.cold[i].label[w].load(std::memory_order_relaxed);
      std::memcpy(buf + 8 * w, &v, 8);
    }
    SlotView v;
    const auto klass = static_cast<uint8_t>(buf[0]);
    v.klass = klass < kKeyClasses ? static_cast<KeyClass>(klass) : KeyClass::kSender;
    v.key.assign(buf + 1, strnlen(buf + 1, kLabelChars));
    v.key_hash = key;
    v.minute = WindowCount({&t.hot[i].minute, t.cold[i].minute_hist}, minute_epoch);
    v.hour = WindowCount({&t.hot[i].hour, t.cold[i].hour_hist}, hour_epoch);
    v.refused = s.refused.load(std::memory_order_relaxed);
    for (int o = 0; o < kOutcomes; ++o)
      v.outcomes[o] = t.cold[i].outcomes[o].load(std::memory_order_relaxed);
    v.failed_domains = t.cold[i].failed_domains.load(std::memory_order_relaxed);
    v.last_seen = seen;
    out.push_back(std::move(v));
  }
  return out;
}

int Repair(const Table& t, uint32_t now_unix) {
  int repaired = 0;
  for (uint64_t i = 0; i <= t.slot_mask; ++i) {
    HotSlot& s = t.hot[i];
    ColdSlot& c = t.cold[i];
    if (s.key.load(std::memory_order_acquire) == 0) continue;
    bool fixed = false;
    // A claimer killed before writing the label: the byte after the class byte is still 0.
    const uint64_t label0 = c.label[0].load(std::memory_order_relaxed);
    if ((label0 >> 8) == 0) {
      c.label[0].store((label0 & 0xff) | uint64_t{'?'} << 8, std::memory_order_relaxed);
      fixed = true;
    }
    fixed |= WindowRepair({&s.minute, c.minute_hist}, now_unix / kMinuteBucketSeconds);
    fixed |= WindowRepair({&s.hour, c.hour_hist}, now_unix / kHourBucketSeconds);
    if (s.last_seen.load(std::memory_order_relaxed) > now_unix + 60) {
      s.last_seen.store(now_unix, std::memory_order_relaxed);
      fixed = true;
    }
    repaired += fixed;
  }
  return repaired;
}

namespace {

WindowRef HourWindowOf(const Table& t, int64_t i) {
  return {&t.hot[i].hour, t.cold[i].hour_hist};
}

}  // namespace

bool ReadHourBuckets(const Table& t, uint64_t key_hash, uint32_t now_unix, HourBuckets* out) {
  const uint32_t now_epoch = now_unix / kHourBucketSeconds;
  *out = HourBuckets{};
  out->first_epoch = now_epoch - kBuckets;
  const int64_t i = FindKeySlot(t, key_hash);
  if (i < 0) return false;
  WindowBuckets(HourWindowOf(t, i), now_epoch, out->count);
  return true;
}

bool ReadHourBuckets(const Table& t, KeyClass klass, std::string_view key, uint32_t now_unix,
                     HourBuckets* out) {
  return ReadHourBuckets(t, KeyHash(t, klass, key.data(), key.size()), now_unix, out);
}

uint32_t CreditHour(const Table& t, uint64_t key_hash, uint32_t epoch, uint32_t n,
                    uint32_t now_unix) {
  const int64_t i = FindKeySlot(t, key_hash);
  if (i < 0) return 0;
  return WindowRelease(HourWindowOf(t, i), epoch, n, now_unix / kHourBucketSeconds);
}

uint32_t CreditHour(const Table& t, KeyClass klass, std::string_view key, uint32_t epoch,
                    uint32_t n, uint32_t now_unix) {
  return CreditHour(t, KeyHash(t, klass, key.data(), key.size()), epoch, n, now_unix);
}

namespace {

// Releases every bucket of one window; returns the recipients taken back.
uint64_t ClearWindow(WindowRef w, uint32_t now_epoch) {
  uint32_t counts[kBuckets + 1];
  WindowBuckets(w, now_epoch, counts);
  uint64_t taken = 0;
  for (uint32_t b = 0; b <= kBuckets; ++b) {
    if (counts[b] != 0) taken += WindowRelease(w, now_epoch - kBuckets + b, counts[b], now_epoch);
  }
  return taken;
}

}  // namespace

uint64_t ClearCounts(const Table& t, uint64_t key_hash, uint32_t now_unix) {
  auto clear_slot = [&](int64_t i) {
    ClearWindow({&t.hot[i].minute, t.cold[i].minute_hist}, now_unix / kMinuteBucketSeconds);
    return ClearWindow(HourWindowOf(t, i), now_unix / kHourBucketSeconds);
  };
  if (key_hash != 0) {
    const int64_t i = FindKeySlot(t, key_hash);
    return i < 0 ? 0 : clear_slot(i);
  }
  uint64_t taken = 0;
  for (uint64_t i = 0; i <= t.slot_mask; ++i) {
    if (t.hot[i].key.load(std::memory_order_acquire) != 0)
      taken += clear_slot(static_cast<int64_t>(i));
  }
  return taken;
}

StatTotals Totals(const Table& t) {
  StatTotals out;
  for (uint32_t i = 0; i < kStatShards; ++i) {
    const Stats& s = t.stats[i];
    for (int v = 0; v < 4; ++v) out.verdicts[v] += s.verdicts[v].load(std::memory_order_relaxed);
    out.fail_open += s.fail_open.load(std::memory_order_relaxed);
    out.evictions += s.evictions.load(std::memory_order_relaxed);
    out.new_key_refusals += s.new_key_refusals.load(std::memory_order_relaxed);
  }
  return out;
}

}  // namespace eg
