// top.cpp - see top.h.

#include "top.h"

#include <algorithm>
#include <cstdio>
#include <tuple>

#include "text_escape.h"

namespace eg::sidecar {
namespace {

std::string Fraction(uint32_t count, uint32_t limit) {
  return std::to_string(count) + "/" + (limit == kUnlimited ? "-" : std::to_string(limit));
}

nlohmann::ordered_json LimitJson(uint32_t limit) {
  return limit == kUnlimited ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(limit);
}

uint32_t Stored(uint32_t limit) {
  return limit == 0 ? kUnlimited : limit;
}

}  // namespace

const char* KeyStateName(KeyState state) {
  switch (state) {
    case KeyState::kBlocked:
      return "blocked";
    case KeyState::kWhitelisted:
      return "whitelisted";
    case KeyState::kOverride:
      return "override";
    case KeyState::kNone:
      return "none";
  }
  return "none";
}

std::string EscapeKey(std::string_view raw) {
  return PrintableAscii(raw);
}

std::string DisplayKey(std::string_view raw, size_t width) {
  const std::string full = EscapeKey(raw);
  if (full.size() <= width) return full;
  // Shortened in the middle: a path's plugin directory and an address's domain are at the end.
  const size_t room = width > 3 ? width - 3 : 0;
  std::vector<std::string> pieces;
  for (const char c : raw) pieces.push_back(PrintableAscii(std::string_view(&c, 1)));
  std::string tail;
  size_t back = pieces.size();
  while (back > 0 && tail.size() + pieces[back - 1].size() <= room - room / 2) {
    tail.insert(0, pieces[--back]);
  }
  std::string head;
  for (size_t i = 0; i < back && head.size() + pieces[i].size() <= room - tail.size(); ++i) {
    head += pieces[i];
  }
  return head + "..." + tail;
}

TopReport BuildTop(const Table& t, const std::string& segment_name, uint32_t now_unix,
                   size_t max_rows) {
  TopReport r;
  r.segment = segment_name;
  const StatTotals stats = Totals(t);
  for (int v = 0; v < 4; ++v) r.verdicts[v] = stats.verdicts[v];
  r.fail_open = stats.fail_open;
  r.evictions = stats.evictions;
  r.new_key_refusals = stats.new_key_refusals;
  r.generation = t.header->generation.load(std::memory_order_acquire);
  const Policy head = LivePolicyHead(t);
  r.dry_run = head.dry_run;
  r.fail_defer = head.fail_defer;

  std::vector<SlotView> slots = Snapshot(t, now_unix, 3600);
  r.live_keys = slots.size();
  std::sort(slots.begin(), slots.end(), [](const SlotView& a, const SlotView& b) {
    return std::tuple(b.hour, b.minute, b.refused, a.klass, a.key) <
           std::tuple(a.hour, a.minute, a.refused, b.klass, b.key);
  });
  if (max_rows != 0 && slots.size() > max_rows) slots.resize(max_rows);

  r.rows.reserve(slots.size());
  for (const SlotView& s : slots) {
    TopRow row;
    row.klass = s.klass;
    row.key = s.key;
    row.minute = s.minute;
    row.hour = s.hour;
    row.refused = s.refused;
    row.last_seen = s.last_seen;
    std::copy(std::begin(s.outcomes), std::end(s.outcomes), std::begin(row.outcomes));
    const Limit& cl = head.class_limits[static_cast<int>(s.klass)];
    row.minute_limit = Stored(cl.per_minute);
    row.hour_limit = Stored(cl.per_hour);
    uint64_t flags = 0;
    uint32_t per_minute = 0, per_hour = 0;
    if (LookupRule(t, s.klass, s.key_hash, &flags, &per_minute, &per_hour)) {
      row.minute_limit = per_minute;  // the override or the class limit, kUnlimited if none
      row.hour_limit = per_hour;
      if (flags & kFlagOverride) row.state = KeyState::kOverride;
      if (flags & kFlagWhitelist) {
        row.minute_limit = kUnlimited;
        row.hour_limit = kUnlimited;
        row.state = KeyState::kWhitelisted;
      }
      if (flags & kFlagBlocked) row.state = KeyState::kBlocked;
    }
    r.rows.push_back(std::move(row));
  }
  return r;
}

std::string FormatTopText(const TopReport& r) {
  std::string out =
      "shared memory " + r.segment + ": policy generation " + std::to_string(r.generation) +
      (r.dry_run ? " (DRY RUN)" : "") + ", fail mode " + (r.fail_defer ? "defer" : "open") + "; " +
      std::to_string(r.live_keys) + " live keys; calls: ok " + std::to_string(r.verdicts[0]) +
      ", defer " + std::to_string(r.verdicts[1]) + ", hold " + std::to_string(r.verdicts[2]) +
      ", deny " + std::to_string(r.verdicts[3]) + "; fail_open " + std::to_string(r.fail_open) +
      "; evictions " + std::to_string(r.evictions) +
      (r.new_key_refusals > 0 ? "; new-key refusals " + std::to_string(r.new_key_refusals) : "") +
      "\n";
  if (r.rows.empty()) return out + "(no key seen in the last hour)\n";

  std::vector<std::vector<std::string>> cells;
  cells.push_back({"CLASS", "KEY", "MINUTE", "HOUR", "REFUSED", "STATE"});
  for (const TopRow& row : r.rows) {
    // A uid key as `why` and `set` take it: uid:1001 (a bare 1001 would be a sender).
    const std::string key = row.klass == KeyClass::kUid ? "uid:" + row.key : row.key;
    cells.push_back({KeyClassName(row.klass), DisplayKey(key, kKeyWidth),
                     Fraction(row.minute, row.minute_limit), Fraction(row.hour, row.hour_limit),
                     std::to_string(row.refused),
                     row.state == KeyState::kNone ? "-" : KeyStateName(row.state)});
  }
  constexpr bool kRight[] = {false, false, true, true, true, false};
  size_t width[6] = {};
  for (const auto& line : cells) {
    for (size_t c = 0; c < 6; ++c) width[c] = std::max(width[c], line[c].size());
  }
  for (const auto& line : cells) {
    std::string text;
    for (size_t c = 0; c < 6; ++c) {
      const std::string pad(width[c] - line[c].size(), ' ');
      if (c > 0) text += "  ";
      text += kRight[c] ? pad + line[c] : (c == 5 ? line[c] : line[c] + pad);
    }
    out += text + "\n";
  }
  return out;
}

nlohmann::ordered_json TopToJson(const TopReport& r) {
  nlohmann::ordered_json keys = nlohmann::ordered_json::array();
  for (const TopRow& row : r.rows) {
    keys.push_back({{"class", KeyClassName(row.klass)},
                    {"key", EscapeKey(row.key)},
                    {"minute", row.minute},
                    {"minute_limit", LimitJson(row.minute_limit)},
                    {"hour", row.hour},
                    {"hour_limit", LimitJson(row.hour_limit)},
                    {"refused", row.refused},
                    {"delivered", row.outcomes[static_cast<int>(Outcome::kDelivered)]},
                    {"failed", row.outcomes[static_cast<int>(Outcome::kFailed)]},
                    {"deferred", row.outcomes[static_cast<int>(Outcome::kDeferred)]},
                    {"state", KeyStateName(row.state)},
                    {"last_seen", row.last_seen}});
  }
  return {{"segment", r.segment},
          {"generation", r.generation},
          {"dry_run", r.dry_run},
          {"fail_mode", r.fail_defer ? "defer" : "open"},
          {"live_keys", r.live_keys},
          {"stats",
           {{"ok", r.verdicts[0]},
            {"defer", r.verdicts[1]},
            {"hold", r.verdicts[2]},
            {"deny", r.verdicts[3]},
            {"fail_open", r.fail_open},
            {"evictions", r.evictions},
            {"new_key_refusals", r.new_key_refusals}}},
          {"keys", std::move(keys)}};
}

}  // namespace eg::sidecar
