// reset_marks.cpp - see reset_marks.h.

#include "reset_marks.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace eg::sidecar {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool Hidden(const ResetMarks& marks, std::string_view key_class, std::string_view key,
            int64_t time) {
  if (key.empty()) return false;
  auto it = marks.keys.find(ResetMarkKey(key_class, key));
  return it != marks.keys.end() && time < it->second;
}

}  // namespace

std::string ResetMarkKey(std::string_view key_class, std::string_view key) {
  std::string out;
  out.reserve(key_class.size() + 1 + key.size());
  out.append(key_class).append(" ").append(key);
  return out;
}

bool LoadResetMarks(StateStore& store, int64_t now, ResetMarks* out, std::string* error) {
  *out = ResetMarks{};
  std::vector<AuditEntry> audit;
  if (!store.ListAudit(now - kResetHorizonSeconds, 0, &audit, error)) return false;
  for (const AuditEntry& a : audit) {
    if (a.action != kAuditReset) continue;
    if (a.key == "*") {
      out->all = std::max(out->all, a.time);
    } else {
      int64_t& t = out->keys[a.key];
      t = std::max(t, a.time);
    }
  }
  return true;
}

bool ResetHides(const ResetMarks& marks, const LogEvent& ev) {
  if (ev.time < marks.all) return true;
  if (marks.keys.empty()) return false;
  std::string_view cwd = ev.cwd;
  while (cwd.size() > 1 && cwd.back() == '/') cwd.remove_suffix(1);
  return Hidden(marks, "sender", Lower(ev.auth_id), ev.time) ||
         Hidden(marks, "sender", Lower(ev.sender), ev.time) ||
         Hidden(marks, "uid", ev.user, ev.time) || Hidden(marks, "cwd", cwd, ev.time) ||
         Hidden(marks, "ip", ev.host_ip, ev.time);
}

}  // namespace eg::sidecar
