// cwd_records_fuzz.cpp - libFuzzer target: arbitrary bytes as a SEQUENCE of log lines (split
// at '\n') through ParseEximLine, CwdRecords (sidecar/cwd_records.h) and AuthAttempts
// (sidecar/auth_attempts.h), the way Engine::FeedParsed uses them.
//
// Input: byte 0 picks the bounds (max_lines 1..16, max_bytes 16..4111) so records are cut by
// both; the rest is the lines. Checks, after each line: a record never holds more lines or
// bytes than its bound; Swallow() returns true only while a record is open or opening;
// every alert closes the record that was open (its lines and bytes are what was swallowed
// since it opened, it was open before the call, and lines >= 1); a record that closes at its
// tail ends on a line FindArgsTail accepts; an open record at the end has given no alert;
// AuthAttempts never adds more than the event reports (max(1, attempts)) and stays within
// its bounds. Any failed check aborts; ASan/UBSan catch the rest.
// Contract: single-threaded; no state survives between inputs.

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>

#include "auth_attempts.h"
#include "cwd_records.h"
#include "log_line.h"

namespace {

using eg::sidecar::AuthAttempts;
using eg::sidecar::CwdRecords;
using eg::sidecar::ForgeryAlert;
using eg::sidecar::LineKind;
using eg::sidecar::LogEvent;
using eg::sidecar::ParseOptions;

void Check(bool ok) {
  if (!ok) abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  CwdRecords::Limits limits;
  limits.max_lines = 1 + (data[0] & 15);
  limits.max_bytes = 16 + (static_cast<uint64_t>(data[0] >> 4) << 8);
  CwdRecords records(limits);
  AuthAttempts::Limits auth_limits;
  auth_limits.max_sessions = 8;
  auth_limits.max_ips = 8;
  auth_limits.window_seconds = 60;
  AuthAttempts attempts(auth_limits);
  ParseOptions options;
  options.utc = true;
  options.now = 1767323045;

  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  LogEvent e;
  uint32_t open_lines = 0;  // what the open record swallowed, as seen from here
  uint64_t open_bytes = 0;
  size_t at = 0;
  while (at <= input.size()) {
    size_t nl = input.find('\n', at);
    if (nl == std::string_view::npos) nl = input.size();
    const std::string_view line = input.substr(at, nl - at);
    at = nl + 1;

    eg::sidecar::ParseEximLine(line, &e, options);
    if (e.kind == LineKind::kUnknown) eg::sidecar::ParseDovecotLine(line, &e, options);
    const bool was_open = records.open();
    std::optional<ForgeryAlert> alert;
    const bool swallowed = records.Swallow(e, line, &alert);
    std::string_view trimmed = line;
    if (trimmed.ends_with('\r')) trimmed.remove_suffix(1);
    const uint64_t bytes = trimmed.size() + 1;

    if (alert) {
      Check(was_open);
      Check(alert->lines >= 1 && alert->lines <= limits.max_lines);
      Check(alert->bytes <= limits.max_bytes);
      if (alert->bounded) {
        Check(!swallowed || records.open());  // the line past the bound may open the next
        Check(alert->lines == open_lines && alert->bytes == open_bytes);
      } else {
        Check(swallowed);
        Check(alert->lines == open_lines + 1 && alert->bytes == open_bytes + bytes);
        eg::sidecar::ArgsTail tail;
        Check(eg::sidecar::FindArgsTail(line, &tail));
      }
      open_lines = 0;
      open_bytes = 0;
    }
    if (swallowed) {
      Check(records.open() || alert);
      if (records.open()) {
        if (!was_open || (alert && alert->bounded)) {  // a record opened on this line
          Check(e.kind == LineKind::kCwdArgs && e.counted_as_unknown && !e.fragment);
          open_lines = 1;
          open_bytes = bytes;
        } else {
          ++open_lines;
          open_bytes += bytes;
        }
        Check(open_lines <= limits.max_lines && open_bytes <= limits.max_bytes);
      }
    } else {
      Check(!records.open());
      Check(was_open == static_cast<bool>(alert));  // an open record ended here, by the bound
    }

    const uint32_t added = attempts.Add(e);
    Check(added <= (e.attempts > 1 ? e.attempts : 1));
    Check(attempts.sessions() <= auth_limits.max_sessions);
    Check(attempts.ips() <= auth_limits.max_ips);
    if (nl == input.size()) break;
  }
  return 0;
}
