// reset_marks.h - what `eximguard reset` leaves for the engine: "judge this key (or every key)
// afresh from time T".
//
// SUMMARY
//   `reset KEY` clears the key's counters in the shared table (ClearCounts, table.h) and writes
//   an audit row {action "reset", key "<class> <text>"} (key "*" for `reset --all`); then it
//   sends the daemon SIGHUP. The daemon's new engine loads the marks (LoadResetMarks) and skips
//   every log event older than a mark that touches its key (ResetHides), during the warm-up and
//   afterwards, so the detectors' windows, evidence and in-memory cooldowns of the key start
//   empty: what happened before the reset no longer counts toward a new incident.
//
// CONTRACT
//   - Keys are written as the incidents write them: "sender a@b.c" (lowercased), "cwd /home/u/x"
//     (no trailing '/'), "uid NAME" (the user name the log shows as U=), "ip 1.2.3.4".
//   - An event touches: its authenticated id and its sender (class sender, lowercased), its U=
//     user (class uid), its cwd= (class cwd) and its host IP (class ip).
//   - Only marks of the last kResetHorizonSeconds are loaded: older lines are beyond every window
//     and every warm-up.
//   - Pure functions besides LoadResetMarks (which reads the store); no threads inside.

#ifndef EXIMGUARD_SIDECAR_RESET_MARKS_H_
#define EXIMGUARD_SIDECAR_RESET_MARKS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "log_line.h"
#include "state_store.h"

namespace eg::sidecar {

inline constexpr int64_t kResetHorizonSeconds = 2 * 86400;
inline constexpr const char* kAuditReset = "reset";

struct ResetMarks {
  std::unordered_map<std::string, int64_t> keys;  // "<class> <key>" -> latest reset time
  int64_t all = 0;                                // latest `reset --all`; 0 = none
  bool empty() const { return keys.empty() && all == 0; }
};

// "<class> <key>", the form marks are kept in.
std::string ResetMarkKey(std::string_view key_class, std::string_view key);

// The marks of the audit trail's resets since now - kResetHorizonSeconds.
bool LoadResetMarks(StateStore& store, int64_t now, ResetMarks* out, std::string* error);

// True when `ev` is older than a reset of a key it touches (the engine then skips it).
bool ResetHides(const ResetMarks& marks, const LogEvent& ev);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_RESET_MARKS_H_
