// top.h - the `eximguard top` report: the busiest keys of the shared-memory table with their
// counts, limits and policy state, plus the table's verdict statistics.
//
// CONTRACT
//   - Callers: `eximguard top` (text or --json) and tests.
//   - BuildTop() only reads the attached table (eg::Snapshot, eg::LookupRule,
//     eg::LivePolicyHead, eg::Totals): it never writes, never fails, and tolerates counters
//     moving while it reads (each row is a sample; the totals are not a transaction).
//   - Formatting is pure. Keys are shown escaped: printable ASCII stays, '\' becomes "\\",
//     every other byte (control characters, non-ASCII) becomes "\xNN", so a key can never move
//     the terminal's cursor. The text table cuts long keys to kKeyWidth, ending in "...".
//   - Unlimited limits print as "-" in text and null in JSON; a key without a rule has state
//     "-" in text and "none" in JSON.

#ifndef EXIMGUARD_SIDECAR_TOP_H_
#define EXIMGUARD_SIDECAR_TOP_H_

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "table.h"

namespace eg::sidecar {

enum class KeyState : uint8_t { kNone, kBlocked, kWhitelisted, kOverride };

struct TopRow {
  KeyClass klass = KeyClass::kSender;
  std::string key;  // raw bytes as the table stores them (cut at kLabelChars by the table)
  uint32_t minute = 0;
  uint32_t minute_limit = kUnlimited;  // the limit that applies now; kUnlimited: none
  uint32_t hour = 0;
  uint32_t hour_limit = kUnlimited;
  uint32_t refused = 0;
  uint32_t last_seen = 0;
  uint32_t outcomes[kOutcomes] = {};  // delivered, failed, deferred (Exim's events, Tally)
  KeyState state = KeyState::kNone;   // blocked wins over whitelisted wins over override
};

struct TopReport {
  std::string segment;
  uint64_t generation = 0;
  bool dry_run = false;
  bool fail_defer = false;
  uint64_t verdicts[4] = {};  // calls answered ok, defer, hold, deny (index: eg::Verdict)
  uint64_t fail_open = 0;
  uint64_t evictions = 0;
  uint64_t new_key_refusals = 0;  // calls refused for their source's new-key budget
  size_t live_keys = 0;           // keys seen within the last hour
  std::vector<TopRow> rows;       // busiest first (hour, then minute, then refused), maybe cut
};

constexpr size_t kKeyWidth = 48;

// Keys seen within the last hour, busiest first; at most max_rows rows (0: all of them).
TopReport BuildTop(const Table& t, const std::string& segment_name, uint32_t now_unix,
                   size_t max_rows);

std::string FormatTopText(const TopReport& report);
nlohmann::ordered_json TopToJson(const TopReport& report);

std::string EscapeKey(std::string_view raw);
// EscapeKey(raw), cut to at most `width` characters (never inside an escape) ending in "...".
std::string DisplayKey(std::string_view raw, size_t width);

const char* KeyStateName(KeyState state);  // "blocked", "whitelisted", "override", "none"

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_TOP_H_
