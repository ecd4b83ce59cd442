// limit_value.cpp - see limit_value.h.

#include "limit_value.h"

#include <cctype>

namespace eg::sidecar {
namespace {

constexpr const char* kAccepted =
    "expected N/min or N/hour (also N/minute, N/m, per_minute=N, N/h, N/hr, per_hour=N; 0 = "
    "unlimited), several joined by ',', 0 or unlimited (no limit at all), or default";

bool ParseCount(std::string_view digits, uint32_t* out) {
  if (digits.empty() || digits.size() > 10) return false;
  uint64_t n = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  if (n > UINT32_MAX) return false;
  *out = static_cast<uint32_t>(n);
  return true;
}

// One window: "2/min", "per_hour=5". *minute says which window it is.
bool ParseWindow(std::string_view part, bool* minute, uint32_t* n) {
  std::string_view count;
  std::string_view unit;
  if (const size_t eq = part.find('='); eq != std::string_view::npos) {
    unit = part.substr(0, eq);
    count = part.substr(eq + 1);
    if (unit != "per_minute" && unit != "per_hour") return false;
    *minute = unit == "per_minute";
  } else if (const size_t slash = part.find('/'); slash != std::string_view::npos) {
    count = part.substr(0, slash);
    unit = part.substr(slash + 1);
    if (unit == "min" || unit == "minute" || unit == "m") {
      *minute = true;
    } else if (unit == "hour" || unit == "h" || unit == "hr") {
      *minute = false;
    } else {
      return false;
    }
  } else {
    return false;
  }
  return ParseCount(count, n);
}

// `"PART": ` and what is accepted. Built by appending, not as `"\"" + std::string(part) + ...`:
// GCC 12 at -O3 reports a bogus -Wrestrict inside `const char* + std::string&&` (GCC bug 105651),
// which a -Werror build (EG_WERROR) turns into a failure.
std::string Refusal(std::string_view part) {
  std::string why = "\"";
  why.append(part).append("\": ").append(kAccepted);
  return why;
}

std::string Window(uint32_t n, const char* name) {
  return n == 0 ? std::string("unlimited per ") + name : std::to_string(n) + "/" + name;
}

}  // namespace

bool ParseLimitValue(std::string_view text, LimitChange* out, std::string* why) {
  *out = LimitChange{};
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (char& c : lower) {
    if (c == ' ' || c == '\t') c = ',';
  }
  const std::string_view v = lower;
  if (v == "default") {
    out->to_default = true;
    return true;
  }
  if (v == "0" || v == "unlimited") {  // both windows: no limit for this key
    out->per_minute = 0;
    out->per_hour = 0;
    return true;
  }
  size_t start = 0;
  bool any = false;
  while (start <= v.size()) {
    size_t end = v.find(',', start);
    if (end == std::string_view::npos) end = v.size();
    const std::string_view part = v.substr(start, end - start);
    start = end + 1;
    if (part.empty()) continue;
    bool minute = false;
    uint32_t n = 0;
    if (!ParseWindow(part, &minute, &n)) {
      *why = Refusal(part);
      return false;
    }
    std::optional<uint32_t>& slot = minute ? out->per_minute : out->per_hour;
    if (slot) {
      *why = std::string("the ") + (minute ? "minute" : "hour") + " window is given twice";
      return false;
    }
    slot = n;
    any = true;
  }
  if (!any) {
    *why = Refusal(text);
    return false;
  }
  return true;
}

std::string LimitValueText(const std::optional<uint32_t>& per_minute,
                           const std::optional<uint32_t>& per_hour) {
  std::string text;
  if (per_minute) text = std::to_string(*per_minute) + "/min";
  if (per_hour) {  // appended, not `(cond ? "" : ",") + std::to_string(...)`: GCC bug 105651
    if (!text.empty()) text += ',';
    text += std::to_string(*per_hour);
    text += "/hour";
  }
  return text;
}

std::string LimitText(const Limit& limit) {
  return Window(limit.per_minute, "minute") + ", " + Window(limit.per_hour, "hour");
}

Limit LimitFor(const Config& config, const PolicyKey& key) {
  Limit limit = config.limits[static_cast<int>(key.klass)];
  const std::string id = Identity(key);
  for (const Override& o : config.overrides) {
    if (Identity(o.key) == id) limit = EffectiveLimit(config, o);
  }
  return limit;
}

}  // namespace eg::sidecar
