// time_text.h - unix times as the text the sidecar shows: local "YYYY-MM-DD HH:MM:SS" (as Exim
// writes its log, so an admin can grep for it) and UTC ISO 8601 (in JSON).
//
// CONTRACT
//   Callers: the CLI verbs, the daemon's log lines, IncidentToJson, tests. Pure apart from the
//   process's timezone (TZ, /etc/localtime); reentrant (localtime_r/gmtime_r). Never throws but
//   std::bad_alloc.

#ifndef EXIMGUARD_SIDECAR_TIME_TEXT_H_
#define EXIMGUARD_SIDECAR_TIME_TEXT_H_

#include <cstdint>
#include <string>

namespace eg::sidecar {

// "2026-11-21 10:00:07" in local time; "-" for 0 (never happened).
std::string LocalTimeText(int64_t unix_time);

// "2026-11-21T09:00:07Z".
std::string UtcTimeText(int64_t unix_time);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_TIME_TEXT_H_
