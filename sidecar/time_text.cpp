// time_text.cpp - see time_text.h.

#include "time_text.h"

#include <ctime>

namespace eg::sidecar {

std::string LocalTimeText(int64_t unix_time) {
  if (unix_time == 0) return "-";
  const time_t t = static_cast<time_t>(unix_time);
  struct tm tm {};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string UtcTimeText(int64_t unix_time) {
  const time_t t = static_cast<time_t>(unix_time);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace eg::sidecar
