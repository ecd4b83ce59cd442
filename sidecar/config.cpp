// config.cpp - see config.h. The validator is driven by kFields, the table of known keys below:
// the walker visits every member of the JSON document, finds its row by key path ("*" in a
// row's path matches any one key, for maps such as overrides), reports keys that have no row,
// and lets the row read and check the value. Checks that span several keys run afterwards
// (CrossChecks). ConfigToJson() is driven by the same table.

#include "config.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include "dovecot_policy.h"
#include "ip_match.h"
#include "segment.h"
#include "text_escape.h"

namespace eg::sidecar {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kMaxConfigBytes = 1 << 20;

// ---- Key paths in messages --------------------------------------------------------------------

bool PlainSegment(std::string_view s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

std::string Quoted(std::string_view s) {
  return Json(std::string(s)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

void AppendSegment(std::string* path, std::string_view segment) {
  if (!path->empty()) *path += '.';
  *path += PlainSegment(segment) ? std::string(segment) : Quoted(segment);
}

std::string RenderPath(const std::vector<std::string>& segments) {
  std::string path;
  for (const std::string& s : segments) AppendSegment(&path, s);
  return path;
}

// A value as it appears in "got ..." (JSON, cut at 60 characters).
std::string Got(const Json& v) {
  std::string s = v.dump(-1, ' ', false, Json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// ---- The walk over the document -------------------------------------------------------------

struct Walk {
  Config& config;
  std::vector<std::string>& errors;
  std::vector<std::string> segments;  // path of the value being read
  std::vector<std::string> wild;      // the keys that '*' matched in that path

  std::string Where() const { return RenderPath(segments); }
  void FailAt(const std::string& where, const std::string& reason) {
    errors.push_back("config " + config.path + ": " + where + ": " + reason);
  }
  void Fail(const std::string& reason) { FailAt(Where(), reason); }
};

// A JSON integer >= 0 (1.0, -1, "1" and true are not).
bool ReadNonNegative(const Json& v, Walk& w, uint64_t* out) {
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
  } else if (v.is_number_integer() && v.get<int64_t>() >= 0) {  // "-0"
    *out = static_cast<uint64_t>(v.get<int64_t>());
  } else {
    w.Fail("expected a non-negative integer, got " + Got(v));
    return false;
  }
  return true;
}

bool ReadCount(const Json& v, Walk& w, uint32_t* out) {
  uint64_t n = 0;
  if (!ReadNonNegative(v, w, &n)) return false;
  if (n > UINT32_MAX) {
    w.Fail("expected at most 4294967295, got " + Got(v));
    return false;
  }
  *out = static_cast<uint32_t>(n);
  return true;
}

// An integer from lo to hi; `expected` says so in the error, e.g. "expected 1 to 600 seconds".
bool ReadBounded(const Json& v, Walk& w, uint32_t lo, uint32_t hi, const char* expected,
                 uint32_t* out) {
  uint32_t n = 0;
  if (!ReadCount(v, w, &n)) return false;
  if (n < lo || n > hi) {
    w.Fail(std::string(expected) + ", got " + Got(v));
    return false;
  }
  *out = n;
  return true;
}

bool ReadPowerOfTwo(const Json& v, Walk& w, uint32_t lo, uint32_t hi, uint32_t* out) {
  uint64_t n = 0;
  if (!ReadNonNegative(v, w, &n)) return false;
  if (n < lo || n > hi || (n & (n - 1)) != 0) {
    w.Fail("expected a power of two from " + std::to_string(lo) + " to " + std::to_string(hi) +
           ", got " + Got(v));
    return false;
  }
  *out = static_cast<uint32_t>(n);
  return true;
}

bool ReadString(const Json& v, Walk& w, std::string* out) {
  if (!v.is_string()) {
    w.Fail("expected a string, got " + Got(v));
    return false;
  }
  *out = v.get<std::string>();
  return true;
}

bool ReadBool(const Json& v, Walk& w, bool* out) {
  if (!v.is_boolean()) {
    w.Fail("expected true or false, got " + Got(v));
    return false;
  }
  *out = v.get<bool>();
  return true;
}

void ReadAbsolutePath(const Json& v, Walk& w, std::string* out) {
  std::string s;
  if (!ReadString(v, w, &s)) return;
  const bool control = std::any_of(
      s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
  if (s.empty() || s[0] != '/' || control) {
    w.Fail("expected an absolute path, got " + Got(v));
    return;
  }
  *out = std::move(s);
}

// Reads a list of whitelist/blocklist keys.
void ReadKeyList(const Json& v, Walk& w, std::vector<PolicyKey>* out) {
  if (!v.is_array()) {
    w.Fail("expected a list of strings, got " + Got(v));
    return;
  }
  out->clear();
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string where = w.Where() + "[" + std::to_string(i) + "]";
    if (!v[i].is_string()) {
      w.FailAt(where, "expected a string, got " + Got(v[i]));
      continue;
    }
    PolicyKey key;
    std::string why;
    if (!ParsePolicyKey(v[i].get<std::string>(), &key, &why)) w.FailAt(where, why);
    out->push_back(std::move(key));
  }
}

Override* FindOverride(Config& c, const std::string& written) {
  for (Override& o : c.overrides) {
    if (o.key.written == written) return &o;
  }
  return nullptr;
}

Json ShowKeyList(const std::vector<PolicyKey>& keys) {
  Json list = Json::array();
  for (const PolicyKey& k : keys) list.push_back(k.written);
  return list;
}

template <int kClass, bool kMinute>
void ApplyLimit(const Json& v, Walk& w) {
  Limit& l = w.config.limits[kClass];
  ReadCount(v, w, kMinute ? &l.per_minute : &l.per_hour);
}

template <int kClass, bool kMinute>
Json ShowLimit(const Config& c) {
  return kMinute ? c.limits[kClass].per_minute : c.limits[kClass].per_hour;
}

template <bool kMinute>
void ApplyOverrideLimit(const Json& v, Walk& w) {
  uint32_t n = 0;
  if (!ReadCount(v, w, &n)) return;
  if (Override* o = FindOverride(w.config, w.wild.at(0)))
    (kMinute ? o->per_minute : o->per_hour) = n;
}

template <auto kMember>
void ApplyRuleCount(const Json& v, Walk& w) {
  ReadCount(v, w, &(w.config.detectors.*kMember));
}

template <auto kMember>
Json ShowRule(const Config& c) {
  return c.detectors.*kMember;
}

// A list of strings, each checked by `valid` (which returns "" or the reason).
void ReadStringList(const Json& v, Walk& w, std::vector<std::string>* out,
                    std::string (*valid)(const std::string&)) {
  if (!v.is_array()) {
    w.Fail("expected a list of strings, got " + Got(v));
    return;
  }
  out->clear();
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string where = w.Where() + "[" + std::to_string(i) + "]";
    if (!v[i].is_string()) {
      w.FailAt(where, "expected a string, got " + Got(v[i]));
      continue;
    }
    const std::string s = v[i].get<std::string>();
    const std::string why = valid(s);
    if (!why.empty()) {
      w.FailAt(where, why);
      continue;
    }
    out->push_back(s);
  }
}

std::string ValidDomain(const std::string& s) {
  const bool ok = !s.empty() && s.size() <= 253 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  });
  return ok ? "" : "expected a domain name, got " + Quoted(s);
}

std::string ValidRule(const std::string& s) {
  if (IsRuleName(s)) return "";
  std::string known;
  for (const char* r : kRuleNames) known += std::string(known.empty() ? "" : ", ") + r;
  return "unknown rule " + Quoted(s) + " (known: " + known + ")";
}

std::string AnyString(const std::string& s) {
  return s.find('\0') == std::string::npos ? "" : "contains a NUL byte";
}

Json ShowStrings(const std::vector<std::string>& list) {
  Json out = Json::array();
  for (const std::string& s : list) out.push_back(s);
  return out;
}

// ---- Sections of plain values (whm, notify, telegram, slack) -----------------------------

// (c.*kSection).*kMember: a member of a sub-struct of Config.
template <auto kSection, auto kMember>
auto& MemberOf(Config& c) {
  return (c.*kSection).*kMember;
}
template <auto kSection, auto kMember>
Json ShowMember(const Config& c) {
  return Json((c.*kSection).*kMember);
}

// A single-line string (no control characters).
template <auto kSection, auto kMember>
void ApplyText(const Json& v, Walk& w) {
  std::string s;
  if (!ReadString(v, w, &s)) return;
  if (std::any_of(s.begin(), s.end(),
                  [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; })) {
    w.Fail("contains a control character");
    return;
  }
  MemberOf<kSection, kMember>(w.config) = std::move(s);
}

// A secret: letters, digits and - _ : . only (it goes into a URL path or a header). The value
// never appears in the message.
template <auto kSection, auto kMember>
void ApplySecret(const Json& v, Walk& w) {
  if (!v.is_string()) {
    w.Fail("expected a string");
    return;
  }
  const std::string s = v.get<std::string>();
  if (!std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' ||
               c == '.';
      })) {
    w.Fail("may hold only letters, digits and - _ : . (value not shown)");
    return;
  }
  MemberOf<kSection, kMember>(w.config) = s;
}

// An http:// or https:// URL without spaces; no trailing slash kept.
template <auto kSection, auto kMember>
void ApplyUrl(const Json& v, Walk& w) {
  std::string s;
  if (!ReadString(v, w, &s)) return;
  const bool scheme = s.starts_with("https://") || s.starts_with("http://");
  const bool clean = std::all_of(
      s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) > 0x20 && c != 0x7f; });
  if (!scheme || !clean || s.size() > 2048 || s.find("://") + 3 == s.size()) {
    // Shown masked: a webhook's path is its secret (text_escape.h, MaskUrl).
    w.Fail("expected an http:// or https:// URL, got " + Quoted(MaskUrl(s)));
    return;
  }
  while (s.ends_with("/")) s.pop_back();
  MemberOf<kSection, kMember>(w.config) = std::move(s);
}

// An absolute path, or "" for none.
template <auto kSection, auto kMember>
void ApplyOptionalPath(const Json& v, Walk& w) {
  if (v == "") {
    MemberOf<kSection, kMember>(w.config).clear();
  } else {
    ReadAbsolutePath(v, w, &MemberOf<kSection, kMember>(w.config));
  }
}

template <auto kSection, auto kMember>
void ApplyFlag(const Json& v, Walk& w) {
  ReadBool(v, w, &MemberOf<kSection, kMember>(w.config));
}

template <auto kSection, auto kMember, uint32_t kLo, uint32_t kHi>
void ApplyRange(const Json& v, Walk& w) {
  const std::string expected = "expected " + std::to_string(kLo) + " to " + std::to_string(kHi);
  ReadBounded(v, w, kLo, kHi, expected.c_str(), &MemberOf<kSection, kMember>(w.config));
}

// An argv whose program is an absolute path; `placeholder`, when given, must appear.
void ReadArgv(const Json& v, Walk& w, std::vector<std::string>* out, const char* placeholder) {
  ReadStringList(v, w, out, AnyString);
  if (out->empty()) return;
  if ((*out)[0].empty() || (*out)[0][0] != '/') {
    w.Fail("the program (first element) must be an absolute path, got " + Quoted((*out)[0]));
    return;
  }
  if (placeholder != nullptr && std::none_of(out->begin(), out->end(), [&](const std::string& a) {
        return a.find(placeholder) != std::string::npos;
      })) {
    w.Fail(std::string("no argument holds ") + placeholder + " (where the IP goes)");
  }
}

std::string ValidAction(const std::string& s) {
  if (IsActionName(s)) return "";
  std::string known;
  for (const char* a : kActionNames) known += std::string(known.empty() ? "" : ", ") + a;
  return "unknown action " + Quoted(s) + " (known: " + known + ")";
}

std::string ValidAddress(const std::string& s) {
  const size_t at = s.find('@');
  const bool ok = at != std::string::npos && at > 0 && at + 1 < s.size() && s.size() <= 254 &&
                  std::all_of(s.begin(), s.end(), [](char c) {
                    return static_cast<unsigned char>(c) > 0x20 && c != 0x7f && c != '<' &&
                           c != '>' && c != ',' && c != '"';
                  });
  return ok ? "" : "expected an email address, got " + Quoted(s);
}

std::string ValidSlackId(const std::string& s) {
  const bool ok = !s.empty() && s.size() <= 32 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isupper(static_cast<unsigned char>(c)) ||
           std::isdigit(static_cast<unsigned char>(c));
  });
  return ok ? "" : "expected a Slack user id such as \"U024BE7LH\", got " + Quoted(s);
}

// ---- dovecot_policy ----------------------------------------------------------------------

std::string ValidIpRange(const std::string& s) {
  IpRange r;
  std::string why;
  return ParseIpRange(s, &r, &why) ? "" : why + ", got " + Quoted(s);
}

template <auto kMember, uint32_t kLo, uint32_t kHi>
void ApplyOptionalDovecotCount(const Json& v, Walk& w) {
  const std::string expected = "expected " + std::to_string(kLo) + " to " + std::to_string(kHi);
  uint32_t n = 0;
  if (ReadBounded(v, w, kLo, kHi, expected.c_str(), &n)) w.config.dovecot_policy.*kMember = n;
}

// ---- The table of known keys ----------------------------------------------------------------

enum class Shape : uint8_t {
  kValue,   // apply() reads the whole value
  kObject,  // must be an object; its members are looked up in the table in turn
};

struct Field {
  std::string_view path;  // dotted; "*" matches any one key
  Shape shape;
  void (*apply)(const Json& v, Walk& w);  // reads and checks the value; may be null for kObject
  Json (*show)(const Config& c);          // the effective value; null: shown by its parent/leaves
};

constexpr Field kFields[] = {
    {"shm_name", Shape::kValue,
     [](const Json& v, Walk& w) {
       std::string s;
       if (!ReadString(v, w, &s)) return;
       if (!ValidSegmentName(s)) {
         w.Fail("expected \"/\" followed by 1 to 200 of A-Z a-z 0-9 . _ -, got " + Got(v));
         return;
       }
       w.config.shm_name = s;
     },
     [](const Config& c) { return Json(c.shm_name); }},
    {"state_dir", Shape::kValue,
     [](const Json& v, Walk& w) { ReadAbsolutePath(v, w, &w.config.state_dir); },
     [](const Config& c) { return Json(c.state_dir); }},
    {"exim_log", Shape::kValue,
     [](const Json& v, Walk& w) { ReadAbsolutePath(v, w, &w.config.exim_log); },
     [](const Config& c) { return Json(c.exim_log); }},
    {"exim_group", Shape::kValue,
     [](const Json& v, Walk& w) {
       std::string s;
       if (!ReadString(v, w, &s)) return;
       if (s.empty() || getgrnam(s.c_str()) == nullptr) {
         w.Fail("no group " + Got(v) + " on this system");
         return;
       }
       w.config.exim_group = s;
     },
     [](const Config& c) { return Json(c.exim_group); }},
    {"capacity", Shape::kValue,
     [](const Json& v, Walk& w) { ReadPowerOfTwo(v, w, 1024, 16777216, &w.config.capacity); },
     [](const Config& c) { return Json(c.capacity); }},
    {"policy_capacity", Shape::kValue,
     [](const Json& v, Walk& w) { ReadPowerOfTwo(v, w, 64, 1048576, &w.config.policy_capacity); },
     [](const Config& c) { return Json(c.policy_capacity); }},
    {"new_key_budget", Shape::kValue,
     [](const Json& v, Walk& w) {
       ReadBounded(v, w, 0, 16777215, "expected 0 (no budget) to 16777215 new keys per minute",
                   &w.config.new_key_budget);
     },
     [](const Config& c) { return Json(c.new_key_budget); }},
    {"dry_run", Shape::kValue, [](const Json& v, Walk& w) { ReadBool(v, w, &w.config.dry_run); },
     [](const Config& c) { return Json(c.dry_run); }},
    {"fail_mode", Shape::kValue,
     [](const Json& v, Walk& w) {
       if (v == "open") {
         w.config.fail_mode = FailMode::kOpen;
       } else if (v == "defer") {
         w.config.fail_mode = FailMode::kDefer;
       } else {
         w.Fail("expected \"open\" or \"defer\", got " + Got(v));
       }
     },
     [](const Config& c) { return Json(FailModeName(c.fail_mode)); }},
    {"limits", Shape::kObject, nullptr, nullptr},
    {"limits.sender", Shape::kObject, nullptr, nullptr},
    {"limits.sender.per_minute", Shape::kValue, ApplyLimit<0, true>, ShowLimit<0, true>},
    {"limits.sender.per_hour", Shape::kValue, ApplyLimit<0, false>, ShowLimit<0, false>},
    {"limits.cwd", Shape::kObject, nullptr, nullptr},
    {"limits.cwd.per_minute", Shape::kValue, ApplyLimit<1, true>, ShowLimit<1, true>},
    {"limits.cwd.per_hour", Shape::kValue, ApplyLimit<1, false>, ShowLimit<1, false>},
    {"limits.uid", Shape::kObject, nullptr, nullptr},
    {"limits.uid.per_minute", Shape::kValue, ApplyLimit<2, true>, ShowLimit<2, true>},
    {"limits.uid.per_hour", Shape::kValue, ApplyLimit<2, false>, ShowLimit<2, false>},
    {"overrides", Shape::kObject, nullptr,
     [](const Config& c) {
       Json map = Json::object();
       for (const Override& o : c.overrides) {
         const Limit l = EffectiveLimit(c, o);
         map[o.key.written] = {{"per_minute", l.per_minute}, {"per_hour", l.per_hour}};
       }
       return map;
     }},
    {"overrides.*", Shape::kObject,
     [](const Json&, Walk& w) {
       Override o;
       std::string why;
       if (!ParsePolicyKey(w.wild.at(0), &o.key, &why)) w.Fail(why);
       w.config.overrides.push_back(std::move(o));
     },
     nullptr},
    {"overrides.*.per_minute", Shape::kValue, ApplyOverrideLimit<true>, nullptr},
    {"overrides.*.per_hour", Shape::kValue, ApplyOverrideLimit<false>, nullptr},
    {"whitelist", Shape::kValue,
     [](const Json& v, Walk& w) { ReadKeyList(v, w, &w.config.whitelist); },
     [](const Config& c) { return ShowKeyList(c.whitelist); }},
    {"blocklist", Shape::kValue,
     [](const Json& v, Walk& w) { ReadKeyList(v, w, &w.config.blocklist); },
     [](const Config& c) { return ShowKeyList(c.blocklist); }},
    {"relay_hosts", Shape::kValue,
     [](const Json& v, Walk& w) { ReadStringList(v, w, &w.config.relay_hosts, ValidIpRange); },
     [](const Config& c) { return ShowStrings(c.relay_hosts); }},
    {"dovecot_log", Shape::kValue,
     [](const Json& v, Walk& w) {
       if (v == "") {
         w.config.dovecot_log.clear();
       } else {
         ReadAbsolutePath(v, w, &w.config.dovecot_log);
       }
     },
     [](const Config& c) { return Json(c.dovecot_log); }},
    {"http_proxy", Shape::kValue,
     [](const Json& v, Walk& w) {
       std::string s;
       if (!ReadString(v, w, &s)) return;
       const bool scheme = s.starts_with("http://") || s.starts_with("https://") ||
                           s.starts_with("socks5://") || s.starts_with("socks5h://");
       const size_t host = s.find("://") + 3;
       const bool clean = std::all_of(s.begin(), s.end(), [](char c) {
         return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
       });
       if (!s.empty() && (!scheme || !clean || s.size() > 2048 || host == s.size())) {
         w.Fail("expected \"\" or an http://, https://, socks5:// or socks5h:// proxy URL, got " +
                Quoted(MaskUrl(s)));
         return;
       }
       w.config.http_proxy = s;
     },
     [](const Config& c) { return Json(c.http_proxy); }},
    {"log_utc", Shape::kValue, [](const Json& v, Walk& w) { ReadBool(v, w, &w.config.log_utc); },
     [](const Config& c) { return Json(c.log_utc); }},
    {"count_internal", Shape::kValue,
     [](const Json& v, Walk& w) { ReadBool(v, w, &w.config.count_internal); },
     [](const Config& c) { return Json(c.count_internal); }},
    {"local_domains", Shape::kValue,
     [](const Json& v, Walk& w) {
       ReadStringList(v, w, &w.config.local_domains, ValidDomain);
       for (std::string& d : w.config.local_domains) {
         for (char& ch : d) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
       }
     },
     [](const Config& c) { return ShowStrings(c.local_domains); }},
    {"local_domains_file", Shape::kValue,
     [](const Json& v, Walk& w) {
       if (v == "") {
         w.config.local_domains_file.clear();
       } else {
         ReadAbsolutePath(v, w, &w.config.local_domains_file);
       }
     },
     [](const Config& c) { return Json(c.local_domains_file); }},
    {"local_domains_from_exim", Shape::kValue,
     [](const Json& v, Walk& w) { ReadBool(v, w, &w.config.local_domains_from_exim); },
     [](const Config& c) { return Json(c.local_domains_from_exim); }},
    {"notify_only", Shape::kValue,
     [](const Json& v, Walk& w) { ReadBool(v, w, &w.config.notify_only); },
     [](const Config& c) { return Json(c.notify_only); }},
    {"retention_days", Shape::kValue,
     [](const Json& v, Walk& w) {
       ReadBounded(v, w, 1, 3650, "expected 1 to 3650 days", &w.config.retention_days);
     },
     [](const Config& c) { return Json(c.retention_days); }},
    {"detectors", Shape::kObject, nullptr, nullptr},
    {"detectors.max_ips_per_hour", Shape::kValue, ApplyRuleCount<&RuleSettings::max_ips_per_hour>,
     ShowRule<&RuleSettings::max_ips_per_hour>},
    {"detectors.ignore_loopback_ips", Shape::kValue,
     [](const Json& v, Walk& w) { ReadBool(v, w, &w.config.detectors.ignore_loopback_ips); },
     ShowRule<&RuleSettings::ignore_loopback_ips>},
    {"detectors.max_logins_per_hour", Shape::kValue,
     ApplyRuleCount<&RuleSettings::max_logins_per_hour>,
     ShowRule<&RuleSettings::max_logins_per_hour>},
    {"detectors.auth_failures", Shape::kValue, ApplyRuleCount<&RuleSettings::auth_failures>,
     ShowRule<&RuleSettings::auth_failures>},
    {"detectors.auth_failure_seconds", Shape::kValue,
     [](const Json& v, Walk& w) {
       ReadBounded(v, w, 12, 86400, "expected 12 to 86400 seconds",
                   &w.config.detectors.auth_failure_seconds);
     },
     ShowRule<&RuleSettings::auth_failure_seconds>},
    {"detectors.bounce_min_recipients", Shape::kValue,
     ApplyRuleCount<&RuleSettings::bounce_min_recipients>,
     ShowRule<&RuleSettings::bounce_min_recipients>},
    {"detectors.bounce_percent", Shape::kValue,
     [](const Json& v, Walk& w) {
       ReadBounded(v, w, 0, 99, "expected a percentage from 0 to 99",
                   &w.config.detectors.bounce_percent);
     },
     ShowRule<&RuleSettings::bounce_percent>},
    {"detectors.bounce_min_domains", Shape::kValue,
     [](const Json& v, Walk& w) {
       ReadBounded(v, w, 0, 32, "expected 0 to 32 domains",
                   &w.config.detectors.bounce_min_domains);
     },
     ShowRule<&RuleSettings::bounce_min_domains>},
    {"detectors.repeated_subject_recipients", Shape::kValue,
     ApplyRuleCount<&RuleSettings::repeated_subject_recipients>,
     ShowRule<&RuleSettings::repeated_subject_recipients>},
    {"detectors.repeated_subject_min_messages", Shape::kValue,
     ApplyRuleCount<&RuleSettings::repeated_subject_min_messages>,
     ShowRule<&RuleSettings::repeated_subject_min_messages>},
    {"detectors.cooldown_seconds", Shape::kValue, ApplyRuleCount<&RuleSettings::cooldown_seconds>,
     ShowRule<&RuleSettings::cooldown_seconds>},
    {"detectors.throttled_refused", Shape::kValue,
     ApplyRuleCount<&RuleSettings::throttled_refused>, ShowRule<&RuleSettings::throttled_refused>},
    {"detectors.throttled_seconds", Shape::kValue,
     [](const Json& v, Walk& w) {
       ReadBounded(v, w, 60, 86400, "expected 60 to 86400 seconds",
                   &w.config.detectors.throttled_seconds);
     },
     ShowRule<&RuleSettings::throttled_seconds>},
    {"actions", Shape::kObject, nullptr, nullptr},
    {"actions.rules", Shape::kObject, nullptr,
     [](const Config& c) {
       Json map = Json::object();
       for (const RuleActions& r : c.actions.rules) map[r.rule] = ShowStrings(r.actions);
       return map;
     }},
    {"actions.rules.*", Shape::kValue,
     [](const Json& v, Walk& w) {
       const std::string& rule = w.wild.at(0);
       const std::string why = ValidRule(rule);
       if (!why.empty()) {
         w.Fail(why);
         return;
       }
       std::vector<std::string> listed;
       ReadStringList(v, w, &listed, ValidAction);
       for (RuleActions& r : w.config.actions.rules) {
         if (r.rule != rule) continue;
         r.actions.clear();
         for (const char* a : kActionNames) {  // kActionNames order: block first
           if (std::find(listed.begin(), listed.end(), a) != listed.end()) r.actions.push_back(a);
         }
       }
     },
     nullptr},
    {"actions.command", Shape::kValue,
     [](const Json& v, Walk& w) { ReadArgv(v, w, &w.config.actions.command, nullptr); },
     [](const Config& c) { return ShowStrings(c.actions.command); }},
    {"actions.firewall_command", Shape::kValue,
     [](const Json& v, Walk& w) { ReadArgv(v, w, &w.config.actions.firewall_command, "{ip}"); },
     [](const Config& c) { return ShowStrings(c.actions.firewall_command); }},
    {"actions.exim_command", Shape::kValue,
     [](const Json& v, Walk& w) {
       ReadArgv(v, w, &w.config.actions.exim_command, nullptr);
       if (w.config.actions.exim_command.empty()) w.Fail("expected at least the program");
     },
     [](const Config& c) { return ShowStrings(c.actions.exim_command); }},
    {"actions.max_auto_suspensions_per_hour", Shape::kValue,
     [](const Json& v, Walk& w) {
       ReadBounded(v, w, 0, 100000, "expected 0 (never automatically) to 100000",
                   &w.config.actions.max_auto_suspensions_per_hour);
     },
     [](const Config& c) { return Json(c.actions.max_auto_suspensions_per_hour); }},
    {"actions.protect", Shape::kValue,
     [](const Json& v, Walk& w) { ReadKeyList(v, w, &w.config.actions.protect); },
     [](const Config& c) { return ShowKeyList(c.actions.protect); }},
    {"actions.firewall_allow", Shape::kValue,
     [](const Json& v, Walk& w) {
       ReadStringList(v, w, &w.config.actions.firewall_allow, ValidIpRange);
     },
     [](const Config& c) { return ShowStrings(c.actions.firewall_allow); }},
    {"actions.block_minutes", Shape::kObject, nullptr,
     [](const Config& c) {
       Json map = Json::object();
       for (const auto& [rule, minutes] : c.actions.block_minutes) map[rule] = minutes;
       return map;
     }},
    {"actions.block_minutes.*", Shape::kValue,
     [](const Json& v, Walk& w) {
       const std::string& rule = w.wild.at(0);
       const std::string why = ValidRule(rule);
       if (!why.empty()) {
         w.Fail(why);
         return;
       }
       uint32_t minutes = 0;
       if (!ReadBounded(v, w, 0, 525600, "expected 0 (until unsuspend) to 525600 minutes",
                        &minutes)) {
         return;
       }
       for (auto& [r, m] : w.config.actions.block_minutes) {
         if (r == rule) m = minutes;
       }
     },
     nullptr},
    {"actions.timeout_seconds", Shape::kValue,
     [](const Json& v, Walk& w) {
       ReadBounded(v, w, 1, 600, "expected 1 to 600 seconds", &w.config.actions.timeout_seconds);
     },
     [](const Config& c) { return Json(c.actions.timeout_seconds); }},
    {"whm", Shape::kObject, nullptr, nullptr},
    {"whm.url", Shape::kValue, ApplyUrl<&Config::whm, &WhmSettings::url>,
     ShowMember<&Config::whm, &WhmSettings::url>},
    {"whm.token", Shape::kValue, ApplySecret<&Config::whm, &WhmSettings::token>,
     ShowMember<&Config::whm, &WhmSettings::token>},
    {"whm.user", Shape::kValue, ApplyText<&Config::whm, &WhmSettings::user>,
     ShowMember<&Config::whm, &WhmSettings::user>},
    {"whm.ca_file", Shape::kValue, ApplyOptionalPath<&Config::whm, &WhmSettings::ca_file>,
     ShowMember<&Config::whm, &WhmSettings::ca_file>},
    {"whm.verify_tls", Shape::kValue, ApplyFlag<&Config::whm, &WhmSettings::verify_tls>,
     ShowMember<&Config::whm, &WhmSettings::verify_tls>},
    {"whm.timeout_seconds", Shape::kValue,
     ApplyRange<&Config::whm, &WhmSettings::timeout_seconds, 1, 300>,
     ShowMember<&Config::whm, &WhmSettings::timeout_seconds>},
    {"whm.retries", Shape::kValue, ApplyRange<&Config::whm, &WhmSettings::retries, 0, 10>,
     ShowMember<&Config::whm, &WhmSettings::retries>},
    {"notify", Shape::kObject, nullptr, nullptr},
    {"notify.email", Shape::kValue,
     [](const Json& v, Walk& w) { ReadStringList(v, w, &w.config.notify.email, ValidAddress); },
     [](const Config& c) { return ShowStrings(c.notify.email); }},
    {"notify.sendmail", Shape::kValue,
     [](const Json& v, Walk& w) { ReadAbsolutePath(v, w, &w.config.notify.sendmail); },
     ShowMember<&Config::notify, &NotifySettings::sendmail>},
    {"notify.from", Shape::kValue,
     [](const Json& v, Walk& w) {
       std::string s;
       if (!ReadString(v, w, &s)) return;
       const std::string why = s.empty() ? "" : ValidAddress(s);
       if (!why.empty()) {
         w.Fail(why);
         return;
       }
       w.config.notify.from = s;
     },
     ShowMember<&Config::notify, &NotifySettings::from>},
    {"notify.webhook_url", Shape::kValue,
     [](const Json& v, Walk& w) {
       if (v == "") {
         w.config.notify.webhook_url.clear();
       } else {
         ApplyUrl<&Config::notify, &NotifySettings::webhook_url>(v, w);
       }
     },
     ShowMember<&Config::notify, &NotifySettings::webhook_url>},
    {"notify.webhook_ca_file", Shape::kValue,
     ApplyOptionalPath<&Config::notify, &NotifySettings::webhook_ca_file>,
     ShowMember<&Config::notify, &NotifySettings::webhook_ca_file>},
    {"notify.digest_after", Shape::kValue,
     ApplyRange<&Config::notify, &NotifySettings::digest_after, 1, 1000>,
     ShowMember<&Config::notify, &NotifySettings::digest_after>},
    {"notify.digest_seconds", Shape::kValue,
     ApplyRange<&Config::notify, &NotifySettings::digest_seconds, 10, 3600>,
     ShowMember<&Config::notify, &NotifySettings::digest_seconds>},
    {"telegram", Shape::kObject, nullptr, nullptr},
    {"telegram.api_url", Shape::kValue, ApplyUrl<&Config::telegram, &TelegramSettings::api_url>,
     ShowMember<&Config::telegram, &TelegramSettings::api_url>},
    {"telegram.token", Shape::kValue, ApplySecret<&Config::telegram, &TelegramSettings::token>,
     ShowMember<&Config::telegram, &TelegramSettings::token>},
    {"telegram.admin_ids", Shape::kValue,
     [](const Json& v, Walk& w) {
       if (!v.is_array()) {
         w.Fail("expected a list of Telegram user ids (integers), got " + Got(v));
         return;
       }
       w.config.telegram.admin_ids.clear();
       for (size_t i = 0; i < v.size(); ++i) {
         if (!v[i].is_number_integer()) {
           w.FailAt(w.Where() + "[" + std::to_string(i) + "]",
                    "expected a Telegram user id (an integer), got " + Got(v[i]));
           continue;
         }
         w.config.telegram.admin_ids.push_back(v[i].get<int64_t>());
       }
     },
     ShowMember<&Config::telegram, &TelegramSettings::admin_ids>},
    {"telegram.notify_chat_id", Shape::kValue,
     [](const Json& v, Walk& w) {
       if (v.is_number_integer()) {
         w.config.telegram.notify_chat_id = std::to_string(v.get<int64_t>());
         return;
       }
       std::string s;
       if (!ReadString(v, w, &s)) return;
       const bool id = !s.empty() && (s[0] == '@' || s[0] == '-' || std::isdigit(static_cast<unsigned char>(s[0]))) &&
                       std::all_of(s.begin() + 1, s.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
                       });
       if (!s.empty() && !id) {
         w.Fail("expected a chat id (an integer) or @channelname, got " + Got(v));
         return;
       }
       w.config.telegram.notify_chat_id = s;
     },
     ShowMember<&Config::telegram, &TelegramSettings::notify_chat_id>},
    {"telegram.ca_file", Shape::kValue,
     ApplyOptionalPath<&Config::telegram, &TelegramSettings::ca_file>,
     ShowMember<&Config::telegram, &TelegramSettings::ca_file>},
    {"telegram.poll_seconds", Shape::kValue,
     ApplyRange<&Config::telegram, &TelegramSettings::poll_seconds, 1, 50>,
     ShowMember<&Config::telegram, &TelegramSettings::poll_seconds>},
    {"slack", Shape::kObject, nullptr, nullptr},
    {"slack.api_url", Shape::kValue, ApplyUrl<&Config::slack, &SlackSettings::api_url>,
     ShowMember<&Config::slack, &SlackSettings::api_url>},
    {"slack.bot_token", Shape::kValue, ApplySecret<&Config::slack, &SlackSettings::bot_token>,
     ShowMember<&Config::slack, &SlackSettings::bot_token>},
    {"slack.app_token", Shape::kValue, ApplySecret<&Config::slack, &SlackSettings::app_token>,
     ShowMember<&Config::slack, &SlackSettings::app_token>},
    {"slack.admin_ids", Shape::kValue,
     [](const Json& v, Walk& w) { ReadStringList(v, w, &w.config.slack.admin_ids, ValidSlackId); },
     [](const Config& c) { return ShowStrings(c.slack.admin_ids); }},
    {"slack.notify_channel", Shape::kValue,
     ApplyText<&Config::slack, &SlackSettings::notify_channel>,
     ShowMember<&Config::slack, &SlackSettings::notify_channel>},
    {"slack.ca_file", Shape::kValue, ApplyOptionalPath<&Config::slack, &SlackSettings::ca_file>,
     ShowMember<&Config::slack, &SlackSettings::ca_file>},
    {"dovecot_policy", Shape::kObject, nullptr, nullptr},
    {"dovecot_policy.enabled", Shape::kValue,
     ApplyFlag<&Config::dovecot_policy, &DovecotPolicyConfig::enabled>,
     ShowMember<&Config::dovecot_policy, &DovecotPolicyConfig::enabled>},
    {"dovecot_policy.listen", Shape::kValue,
     [](const Json& v, Walk& w) {
       std::string s;
       if (!ReadString(v, w, &s)) return;
       std::string ip;
       uint16_t port = 0;
       std::string why;
       if (!ParseLoopbackListen(s, &ip, &port, &why)) {
         w.Fail(why + ", got " + Got(v));
         return;
       }
       if (port == 0) {
         w.Fail("expected a port from 1 to 65535 (Dovecot's auth_policy_server_url names it), got " +
                Got(v));
         return;
       }
       w.config.dovecot_policy.listen = s;
     },
     ShowMember<&Config::dovecot_policy, &DovecotPolicyConfig::listen>},
    {"dovecot_policy.api_header", Shape::kValue,
     [](const Json& v, Walk& w) {
       std::string s;
       if (!ReadString(v, w, &s)) return;
       const bool token = !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
         return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
       });
       if (!token) {
         w.Fail("expected an HTTP header name such as \"X-API-Key\" or \"Authorization\", got " +
                Got(v));
         return;
       }
       w.config.dovecot_policy.api_header = s;
     },
     ShowMember<&Config::dovecot_policy, &DovecotPolicyConfig::api_header>},
    {"dovecot_policy.api_secret", Shape::kValue,
     [](const Json& v, Walk& w) {
       // The header's value, e.g. a random key or "Basic dXNlcjpwYXNz". Never in a message.
       if (!v.is_string()) {
         w.Fail("expected a string");
         return;
       }
       const std::string s = v.get<std::string>();
       const bool chars = std::all_of(s.begin(), s.end(), [](char c) {
         return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
                c == ':' || c == '+' || c == '/' || c == '=' || c == ' ';
       });
       if (!chars || s.starts_with(" ") || s.ends_with(" ") || s.size() > 512) {
         w.Fail("may hold only letters, digits, inner spaces and - _ . : + / = (value not shown)");
         return;
       }
       if (!s.empty() && s.size() < 16) {
         w.Fail("too short: at least 16 characters (value not shown)");
         return;
       }
       w.config.dovecot_policy.api_secret = s;
     },
     ShowMember<&Config::dovecot_policy, &DovecotPolicyConfig::api_secret>},
    {"dovecot_policy.failures", Shape::kValue,
     ApplyOptionalDovecotCount<&DovecotPolicyConfig::failures, 1, 100>,
     [](const Config& c) { return Json(DovecotFailures(c)); }},
    {"dovecot_policy.failure_seconds", Shape::kValue,
     ApplyOptionalDovecotCount<&DovecotPolicyConfig::failure_seconds, 12, 86400>,
     [](const Config& c) { return Json(DovecotFailureSeconds(c)); }},
    {"dovecot_policy.block_seconds", Shape::kValue,
     ApplyRange<&Config::dovecot_policy, &DovecotPolicyConfig::block_seconds, 1, 604800>,
     ShowMember<&Config::dovecot_policy, &DovecotPolicyConfig::block_seconds>},
    {"dovecot_policy.account_ips", Shape::kValue,
     ApplyRange<&Config::dovecot_policy, &DovecotPolicyConfig::account_ips, 1, 100>,
     ShowMember<&Config::dovecot_policy, &DovecotPolicyConfig::account_ips>},
    {"dovecot_policy.tarpit_seconds", Shape::kValue,
     ApplyRange<&Config::dovecot_policy, &DovecotPolicyConfig::tarpit_seconds, 1, 15>,
     ShowMember<&Config::dovecot_policy, &DovecotPolicyConfig::tarpit_seconds>},
    {"dovecot_policy.trusted_seconds", Shape::kValue,
     ApplyRange<&Config::dovecot_policy, &DovecotPolicyConfig::trusted_seconds, 0, 604800>,
     ShowMember<&Config::dovecot_policy, &DovecotPolicyConfig::trusted_seconds>},
    {"dovecot_policy.exempt_loopback", Shape::kValue,
     ApplyFlag<&Config::dovecot_policy, &DovecotPolicyConfig::exempt_loopback>,
     ShowMember<&Config::dovecot_policy, &DovecotPolicyConfig::exempt_loopback>},
    {"dovecot_policy.allow_ips", Shape::kValue,
     [](const Json& v, Walk& w) {
       ReadStringList(v, w, &w.config.dovecot_policy.allow_ips, ValidIpRange);
     },
     [](const Config& c) { return ShowStrings(c.dovecot_policy.allow_ips); }},
};

std::vector<std::string> Split(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    out.emplace_back(path.substr(start, dot - start));
    if (dot == std::string_view::npos) return out;
    start = dot + 1;
  }
}

const std::vector<std::vector<std::string>>& FieldSegments() {
  static const auto* segments = [] {
    auto* s = new std::vector<std::vector<std::string>>();
    for (const Field& f : kFields) s->push_back(Split(f.path));
    return s;
  }();
  return *segments;
}

// The row for a key path, and the keys its '*' matched; nullptr for an unknown key.
const Field* Match(const std::vector<std::string>& segments, std::vector<std::string>* wild) {
  const auto& all = FieldSegments();
  for (size_t f = 0; f < all.size(); ++f) {
    const auto& pattern = all[f];
    if (pattern.size() != segments.size()) continue;
    std::vector<std::string> matched;
    bool ok = true;
    for (size_t i = 0; ok && i < pattern.size(); ++i) {
      if (pattern[i] == "*") {
        matched.push_back(segments[i]);
      } else {
        ok = pattern[i] == segments[i];
      }
    }
    if (ok) {
      *wild = std::move(matched);
      return &kFields[f];
    }
  }
  return nullptr;
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// A known key next to an unknown one that is spelled almost the same, or "".
std::string Suggestion(const std::vector<std::string>& segments) {
  std::string best;
  size_t best_distance = 3;
  const std::string& name = segments.back();
  for (const auto& pattern : FieldSegments()) {
    if (pattern.size() != segments.size() || pattern.back() == "*") continue;
    bool sibling = true;
    for (size_t i = 0; sibling && i + 1 < pattern.size(); ++i) {
      sibling = pattern[i] == "*" || pattern[i] == segments[i];
    }
    if (!sibling) continue;
    const size_t d = EditDistance(name, pattern.back());
    const size_t allowed = pattern.back().size() >= 6 ? 2 : 1;  // "ip" is not a typo of "uid"
    if (d <= allowed && d < best_distance) {
      best_distance = d;
      best = pattern.back();
    }
  }
  return best;
}

void WalkObject(const Json& object, Walk& w) {
  for (const auto& [key, value] : object.items()) {
    w.segments.push_back(key);
    std::vector<std::string> wild;
    const Field* field = Match(w.segments, &wild);
    if (field == nullptr) {
      const std::string hint = Suggestion(w.segments);
      w.Fail(hint.empty() ? "unknown key" : "unknown key (did you mean \"" + hint + "\"?)");
    } else {
      std::swap(w.wild, wild);
      if (field->apply != nullptr) field->apply(value, w);
      if (field->shape == Shape::kObject) {
        if (value.is_object()) {
          WalkObject(value, w);
        } else {
          w.Fail("expected an object, got " + Got(value));
        }
      }
      std::swap(w.wild, wild);
    }
    w.segments.pop_back();
  }
}

// ---- Checks across keys ---------------------------------------------------------------------

void CrossChecks(Walk& w) {
  Config& c = w.config;
  std::map<std::string, size_t> whitelisted;  // identity -> index
  for (size_t i = 0; i < c.whitelist.size(); ++i) whitelisted.emplace(Identity(c.whitelist[i]), i);
  for (size_t i = 0; i < c.blocklist.size(); ++i) {
    const PolicyKey& k = c.blocklist[i];
    if (k.text.empty()) continue;  // already reported
    auto it = whitelisted.find(Identity(k));
    if (it != whitelisted.end()) {
      w.FailAt("blocklist[" + std::to_string(i) + "]", Quoted(k.written) +
                                                           " is also whitelisted (whitelist[" +
                                                           std::to_string(it->second) + "])");
    }
  }
  std::map<std::string, std::string> overridden;  // identity -> written
  for (const Override& o : c.overrides) {
    if (o.key.text.empty()) continue;
    auto [it, inserted] = overridden.emplace(Identity(o.key), o.key.written);
    if (!inserted) {
      std::string here, there;
      AppendSegment(&here, "overrides");
      AppendSegment(&here, o.key.written);
      AppendSegment(&there, "overrides");
      AppendSegment(&there, it->second);
      w.FailAt(here, "the same key as " + there);
    }
  }
  std::set<std::string> rule_keys;
  for (const PolicyKey& k : c.whitelist) rule_keys.insert(Identity(k));
  for (const PolicyKey& k : c.blocklist) rule_keys.insert(Identity(k));
  for (const Override& o : c.overrides) rule_keys.insert(Identity(o.key));
  if (c.dovecot_policy.enabled && c.dovecot_policy.api_secret.empty()) {
    w.FailAt("dovecot_policy.api_secret",
             "required when dovecot_policy.enabled is true (Dovecot sends it in "
             "auth_policy_server_api_header; nobody else may ask the policy server)");
  }
  const size_t room = c.policy_capacity / 2;  // what eg::PublishPolicy accepts
  if (rule_keys.size() > room) {
    w.FailAt("policy_capacity", std::to_string(c.policy_capacity) + " holds at most " +
                                    std::to_string(room) +
                                    " whitelist/blocklist/override keys, the config has " +
                                    std::to_string(rule_keys.size()));
  }
}

// ---- Duplicate keys (the parser itself keeps the last one silently) -------------------------

struct DuplicateFinder {
  struct Frame {
    bool object = true;
    std::set<std::string> keys;
    std::string key;
    size_t index = 0;
  };
  std::vector<Frame> frames;
  std::vector<std::string> duplicates;  // rendered paths

  void AfterValue() {
    if (!frames.empty() && !frames.back().object) ++frames.back().index;
  }
  std::string Path() const {
    std::string path;
    for (const Frame& f : frames) {
      if (f.object) {
        AppendSegment(&path, f.key);
      } else {
        path += "[" + std::to_string(f.index) + "]";
      }
    }
    return path;
  }
  bool operator()(int, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
        frames.emplace_back();
        break;
      case Json::parse_event_t::array_start:
        frames.emplace_back().object = false;
        break;
      case Json::parse_event_t::key: {
        Frame& f = frames.back();
        f.key = parsed.get<std::string>();
        if (!f.keys.insert(f.key).second) duplicates.push_back(Path());
        break;
      }
      case Json::parse_event_t::object_end:
      case Json::parse_event_t::array_end:
        frames.pop_back();
        AfterValue();
        break;
      case Json::parse_event_t::value:
        AfterValue();
        break;
    }
    return true;
  }
};

}  // namespace

bool IsRuleName(std::string_view name) {
  for (const char* r : kRuleNames) {
    if (name == r) return true;
  }
  return false;
}

bool IsActionName(std::string_view name) {
  for (const char* a : kActionNames) {
    if (name == a) return true;
  }
  return false;
}

std::vector<RuleActions> Actions::DefaultRuleActions() {
  std::vector<RuleActions> rules;
  for (const char* r : kRuleNames) {
    if (std::string_view(r) == "auth_failures") {
      rules.push_back({r, {"firewall", "command"}});
    } else if (std::string_view(r) == "throttled") {
      rules.push_back({r, {"command"}});  // a notice: the guard already defers the key
    } else {
      rules.push_back({r, {"block", "hold_outgoing", "command"}});
    }
  }
  return rules;
}

std::vector<std::pair<std::string, uint32_t>> Actions::DefaultBlockMinutes() {
  std::vector<std::pair<std::string, uint32_t>> out;
  for (const char* r : kRuleNames) {
    const std::string_view rule(r);
    // A minute's burst lapses sooner than an hour's; the security rules and the signs of a
    // spam run (bounces, one subject over and over) hold for a few hours.
    uint32_t minutes = 240;
    if (rule == "rate_per_minute" || rule == "throttled" || rule == "auth_failures") minutes = 60;
    if (rule == "rate_per_hour") minutes = 120;
    out.emplace_back(r, minutes);
  }
  return out;
}

uint32_t BlockMinutes(const Actions& actions, std::string_view rule) {
  for (const auto& [r, m] : actions.block_minutes) {
    if (r == rule) return m;
  }
  return 0;
}

bool RuleHasAction(const Actions& actions, std::string_view rule, std::string_view action) {
  for (const RuleActions& r : actions.rules) {
    if (r.rule == rule)
      return std::find(r.actions.begin(), r.actions.end(), action) != r.actions.end();
  }
  return false;
}

const char* FailModeName(FailMode mode) {
  return mode == FailMode::kDefer ? "defer" : "open";
}

std::string DefaultEximGroup() {
  // Debian/Ubuntu: Debian-exim. RHEL/Fedora's exim package: exim. cPanel runs Exim as user
  // mailnull with group mail. `exim -bP exim_group` tells for sure.
  for (const char* name : {"Debian-exim", "exim"}) {
    if (getgrnam(name) != nullptr) return name;
  }
  return "mail";
}

uint32_t DovecotFailures(const Config& config) {
  return std::clamp<uint32_t>(
      config.dovecot_policy.failures.value_or(config.detectors.auth_failures), 1, 100);
}

uint32_t DovecotFailureSeconds(const Config& config) {
  return config.dovecot_policy.failure_seconds.value_or(config.detectors.auth_failure_seconds);
}

Limit EffectiveLimit(const Config& config, const Override& o) {
  const Limit& base = config.limits[static_cast<int>(o.key.klass)];
  return {o.per_minute.value_or(base.per_minute), o.per_hour.value_or(base.per_hour)};
}

ConfigResult ParseConfig(std::string_view text, const std::string& path, const EnvLookup& getenv) {
  ConfigResult r;
  r.config.path = path;
  const std::string prefix = "config " + path + ": ";
  Json doc;
  DuplicateFinder duplicates;
  try {
    doc = Json::parse(text.begin(), text.end(), std::ref(duplicates));
  } catch (const Json::parse_error& e) {
    std::string what = e.what();
    const size_t bracket = what.find("] ");
    if (bracket != std::string::npos) what.erase(0, bracket + 2);
    if (what.starts_with("parse error at ")) {
      what.replace(0, 15, "invalid JSON at ");
    } else {
      what = "invalid JSON: " + what;
    }
    r.errors.push_back(prefix + Printable(what));
    return r;
  }
  for (const std::string& where : duplicates.duplicates) {
    r.errors.push_back(prefix + where + ": duplicate key");
  }
  if (!doc.is_object()) {
    r.errors.push_back(prefix + "expected a JSON object at the top level, got " + Got(doc));
    return r;
  }
  ApplyEnvOverrides(doc, getenv, &r.env_applied);  // eximmon's variables (config_env.h)
  Walk w{r.config, r.errors, {}, {}};
  WalkObject(doc, w);
  if (r.config.exim_group.empty()) r.config.exim_group = DefaultEximGroup();
  r.config.whm.proxy = r.config.notify.proxy = r.config.telegram.proxy = r.config.slack.proxy =
      r.config.http_proxy;
  CrossChecks(w);
  NoteEnvSources(r.env_applied, &r.errors);
  return r;
}

ConfigResult LoadConfig(const std::string& path) {
  ConfigResult r;
  r.config.path = path;
  const std::string prefix = "config " + path + ": ";
  // O_NONBLOCK: opening a FIFO must not hang; it is refused below as not a regular file.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    r.errors.push_back(prefix + "cannot open: " + std::strerror(errno));
    return r;
  }
  std::string text;
  struct stat st {};
  bool readable = false;
  if (fstat(fd, &st) != 0) {
    r.errors.push_back(prefix + "cannot stat: " + std::strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    r.errors.push_back(prefix + "not a regular file");
  } else if (st.st_size > static_cast<off_t>(kMaxConfigBytes)) {
    r.errors.push_back(prefix + "larger than 1 MiB");
  } else {
    readable = true;
    if ((st.st_mode & 077) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      r.errors.push_back(prefix + "mode " + mode +
                         " gives group or others access to it; run chmod 600 " + path);
    }
    // Whoever owns the file decides the policy and, later, holds the API tokens: only root (or
    // the user running eximguard, for tests and unprivileged trials) may own it.
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
      r.errors.push_back(prefix + "owned by uid " + std::to_string(st.st_uid) +
                         ", not root: run chown root " + path);
    }
  }
  while (readable) {
    char buf[8192];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      r.errors.push_back(prefix + "cannot read: " + std::strerror(errno));
      readable = false;
    }
    if (n <= 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigBytes) {
      r.errors.push_back(prefix + "larger than 1 MiB");
      readable = false;
    }
  }
  close(fd);
  if (!readable) return r;
  ConfigResult parsed = ParseConfig(text, path, [](const char* n) { return std::getenv(n); });
  r.config = std::move(parsed.config);
  r.env_applied = std::move(parsed.env_applied);
  r.errors.insert(r.errors.end(), parsed.errors.begin(), parsed.errors.end());
  return r;
}

nlohmann::ordered_json ConfigToJson(const Config& config) {
  Json out = Json::object();
  const auto& segments = FieldSegments();
  for (size_t f = 0; f < segments.size(); ++f) {
    if (kFields[f].show == nullptr) continue;
    Json* node = &out;
    for (const std::string& s : segments[f]) node = &(*node)[s];
    *node = kFields[f].show(config);
  }
  return out;
}

bool IsSecretKey(std::string_view name) {
  return name == "token" || name == "password" || name == "secret" || name.ends_with("_token") ||
         name.ends_with("_password") || name.ends_with("_secret");
}

void MaskSecrets(nlohmann::ordered_json& json) {
  if (json.is_array()) {
    for (auto& v : json) MaskSecrets(v);
    return;
  }
  if (!json.is_object()) return;
  for (auto& [key, value] : json.items()) {
    if (value.is_structured()) {
      MaskSecrets(value);
    } else if (IsSecretKey(key) && !(value.is_string() && value.get<std::string>().empty())) {
      value = kSecretMask;
    } else if (value.is_string() && value.get<std::string>().find("://") != std::string::npos) {
      value = MaskUrl(value.get<std::string>());  // a webhook's path is its secret
    }
  }
}

}  // namespace eg::sidecar
