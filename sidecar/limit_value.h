// limit_value.h - the VALUE of `eximguard set KEY VALUE`, and how a limit is shown and found.
//
// SUMMARY
//   LimitChange c;
//   std::string why;
//   ParseLimitValue("2/min", &c, &why);           // c.per_minute = 2
//   ParseLimitValue("per_hour=500", &c, &why);    // c.per_hour = 500
//   ParseLimitValue("0/min,100/h", &c, &why);     // unlimited per minute, 100 per hour
//   ParseLimitValue("0", &c, &why);               // unlimited in both windows (also "unlimited")
//   ParseLimitValue("default", &c, &why);         // c.to_default: drop what `set` stored
//   LimitValueText(c.per_minute, c.per_hour)  -> "0/min,100/hour" (parses back to the same)
//   LimitText({2, 0})                         -> "2/minute, unlimited per hour"
//   LimitFor(config, key)                     -> the limit the key gets: its override's, else
//                                                its class's (EffectiveLimit, config.h)
//
// CONTRACT
//   Pure functions, no I/O, thread-safe, nothing throws but std::bad_alloc. VALUE is one or
//   more windows joined by ',' (or spaces), each N/min, N/minute, N/m, per_minute=N, N/hour,
//   N/h, N/hr or per_hour=N, case-insensitive; N is 0..4294967295 and 0 means unlimited for that
//   window; a window may be given once. Or the single word `0` / `unlimited` (both windows
//   unlimited), or `default`. On anything else
//   ParseLimitValue() returns false and *why quotes the part it refused and says what it
//   accepts: "\"2/day\": expected N/min or N/hour (...)".

#ifndef EXIMGUARD_SIDECAR_LIMIT_VALUE_H_
#define EXIMGUARD_SIDECAR_LIMIT_VALUE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config.h"
#include "policy_key.h"

namespace eg::sidecar {

struct LimitChange {
  bool to_default = false;  // `default`: the stored limit is removed
  std::optional<uint32_t> per_minute;
  std::optional<uint32_t> per_hour;
};

bool ParseLimitValue(std::string_view text, LimitChange* out, std::string* why);

// The windows that are set, as `set` takes them: "2/min", "100/hour", "2/min,100/hour".
std::string LimitValueText(const std::optional<uint32_t>& per_minute,
                           const std::optional<uint32_t>& per_hour);

// "2/minute, 100/hour"; a window of 0 is "unlimited per minute" / "unlimited per hour".
std::string LimitText(const Limit& limit);

// The limit that applies to `key` under `config` (lay stored limits over it first:
// WithStoredLimits, policy_from_state.h).
Limit LimitFor(const Config& config, const PolicyKey& key);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_LIMIT_VALUE_H_
