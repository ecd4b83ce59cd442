// inspect.cpp - reading the table for `top` and repairing what killed writers leave (sidecar).

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

StatTotals Totals(const Table& t) {
  StatTotals out;
  for (uint32_t i = 0; i < kStatShards; ++i) {
    const Stats& s = t.stats[i];
    for (int v = 0; v < 4; ++v) out.verdicts[v] += s.verdicts[v].load(std::memory_order_relaxed);
    out.fail_open += s.fail_open.load(std::memory_order_relaxed);
    out.evictions += s.evictions.load(std::memory_order_relaxed);
  }
  return out;
}

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
