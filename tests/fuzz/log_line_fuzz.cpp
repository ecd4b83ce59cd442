// log_line_fuzz.cpp - libFuzzer target: arbitrary bytes as one log line to the sidecar's parsers
// (sidecar/log_line.h): ParseEximLine, ParseDovecotLine and ParseLine, into a reused event and a
// fresh one.
//
// Input: the whole input is the line (it may hold NULs and newlines). Checks, after each parse:
// every string_view of the event is empty or lies inside the input; recipients are non-empty
// and there are at most (size + 1) / 2 of them; kUnknown lines are counted as unknown; millis
// < 1000; a reused event gives the same answer as a fresh one; ParseLine agrees with the parser
// it dispatches to; UnescapeExim never grows a subject; a password span (`secret`) never
// overlaps the error; a cwd= line with a tail has one that FindArgsTail finds in the line. Any
// failed check aborts. The sanitizers (ASan, UBSan) catch reads outside the input and undefined
// arithmetic. Contract: single-threaded (libFuzzer calls it serially); the only state kept between
// inputs is the reused LogEvent, which is the point of that check.

#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "log_line.h"

namespace {

using eg::sidecar::LineKind;
using eg::sidecar::LogEvent;
using eg::sidecar::ParseOptions;

std::vector<std::string_view> Views(const LogEvent& e) {
  std::vector<std::string_view> v = {
      e.flag,   e.message_id, e.sender,  e.recipient, e.original, e.auth,      e.auth_id,
      e.user,   e.host_name,  e.helo,    e.host_ip,   e.local_ip, e.protocol,  e.subject,
      e.router, e.transport,  e.cwd,     e.args,      e.error,    e.key_class, e.key,
      e.per,    e.text,       e.session, e.secret};
  v.insert(v.end(), e.recipients.begin(), e.recipients.end());
  return v;
}

void Check(bool ok) {
  if (!ok) abort();
}

void CheckEvent(const LogEvent& e, std::string_view line) {
  for (const std::string_view v : Views(e)) {
    if (v.empty()) continue;
    Check(v.data() >= line.data() && v.data() + v.size() <= line.data() + line.size());
  }
  for (const std::string_view r : e.recipients) Check(!r.empty());
  Check(e.recipients.size() <= (line.size() + 1) / 2);
  Check(e.kind != LineKind::kUnknown || e.counted_as_unknown);
  Check(e.millis < 1000);
  Check(eg::sidecar::UnescapeExim(e.subject).size() <= e.subject.size());
  // A secret is never part of the error shown for the line.
  if (!e.secret.empty() && !e.error.empty()) {
    Check(e.error.data() + e.error.size() <= e.secret.data() ||
          e.secret.data() + e.secret.size() <= e.error.data());
  }
  // The cwd= tail and the line agree.
  if (e.kind == LineKind::kCwdArgs && !e.counted_as_unknown) {
    eg::sidecar::ArgsTail tail;
    Check(eg::sidecar::FindArgsTail(line, &tail));
    Check(tail.count == e.args_count && e.args_count >= 1);
  }
}

bool Same(const LogEvent& a, const LogEvent& b) {
  const std::vector<std::string_view> va = Views(a), vb = Views(b);
  if (va.size() != vb.size()) return false;
  for (size_t i = 0; i < va.size(); ++i) {
    if (va[i].data() != vb[i].data() && !(va[i].empty() && vb[i].empty())) return false;
    if (va[i].size() != vb[i].size()) return false;
  }
  return a.kind == b.kind && a.counted_as_unknown == b.counted_as_unknown &&
         a.ambiguous == b.ambiguous && a.fragment == b.fragment && a.truncated == b.truncated &&
         a.zone_known == b.zone_known && a.millis == b.millis && a.host_port == b.host_port &&
         a.pid == b.pid && a.time == b.time && a.size == b.size && a.args_count == b.args_count &&
         a.limit == b.limit && a.attempts == b.attempts;
}

LogEvent g_reused;  // carries recipients' capacity (and any stale state) between inputs

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  ParseOptions options;
  options.utc = true;
  options.now = 1767323045;  // 2026-01-02 03:04:05 UTC: year inference stays deterministic

  eg::sidecar::ParseEximLine(line, &g_reused, options);
  CheckEvent(g_reused, line);
  const LogEvent exim = eg::sidecar::ParseEximLine(line, options);
  CheckEvent(exim, line);
  Check(Same(exim, g_reused));

  eg::sidecar::ParseDovecotLine(line, &g_reused, options);
  CheckEvent(g_reused, line);
  const LogEvent dovecot = eg::sidecar::ParseDovecotLine(line, options);
  Check(Same(dovecot, g_reused));

  eg::sidecar::ParseLine(line, &g_reused, options);
  CheckEvent(g_reused, line);
  Check(Same(g_reused, exim.kind != LineKind::kUnknown ? exim : dovecot));

  // Local time (mktime) and a fixed year: only the time may differ.
  ParseOptions local;
  local.year = 2026;
  eg::sidecar::ParseEximLine(line, &g_reused, local);
  CheckEvent(g_reused, line);
  Check(g_reused.kind == exim.kind);
  return 0;
}
