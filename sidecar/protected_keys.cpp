// protected_keys.cpp - see protected_keys.h.

#include "protected_keys.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "notify.h"
#include "users.h"

namespace eg::sidecar {
namespace {

std::string Lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// The uid of a user name or of a decimal uid text; -1 if neither.
int64_t UidOf(std::string_view name_or_uid) {
  const std::string uid = UidOfUser(std::string(name_or_uid));
  if (uid.empty() || uid.size() > 10) return -1;
  return std::stoll(uid);
}

bool SystemUid(int64_t uid) {
  return uid >= 0 && uid < static_cast<int64_t>(UidMin());
}

std::string Who(int64_t uid) {
  const std::string name = UserOfUid(static_cast<uid_t>(uid));
  return "uid " + std::to_string(uid) + (name.empty() ? "" : " (" + name + ")");
}

}  // namespace

uint32_t UidMinFromLoginDefs(std::string_view text, uint32_t fallback) {
  std::istringstream in{std::string(text)};
  std::string line;
  uint32_t found = fallback;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string name, value;
    if (!(words >> name >> value) || name != "UID_MIN") continue;
    if (value.empty() || value.size() > 9 ||
        !std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    found = static_cast<uint32_t>(std::stoul(value));
  }
  return found;
}

uint32_t UidMin() {
  static const uint32_t uid_min = [] {
    std::ifstream in("/etc/login.defs");
    std::stringstream ss;
    ss << in.rdbuf();
    return UidMinFromLoginDefs(ss.str(), 1000);
  }();
  return uid_min;
}

bool IsProtectedKey(const Config& config, std::string_view key_class, std::string_view key,
                    int64_t owner_uid, std::string* why) {
  if (SystemUid(owner_uid)) {
    *why = "its mail comes from " + Who(owner_uid) + ", a system account";
    return true;
  }
  for (const PolicyKey& p : config.actions.protect) {
    if (KeyClassName(p.klass) == key_class &&
        Lowered(p.text) == (key_class == "sender" ? Lowered(key) : std::string(key))) {
      *why = "listed in actions.protect";
      return true;
    }
  }
  if (key_class == "uid") {
    const int64_t uid = UidOf(key);
    if (SystemUid(uid)) {
      *why = Who(uid) + " is a system account (below UID_MIN " + std::to_string(UidMin()) + ")";
      return true;
    }
    return false;
  }
  if (key_class == "sender") {
    const std::string k = Lowered(key);
    const std::string from = Lowered(config.notify.from);
    if (!from.empty() && (k == from || k == "<" + from + ">")) {
      *why = "eximguard's own notice sender (notify.from)";
      return true;
    }
    const size_t at = k.rfind('@');
    const std::string local = k.substr(0, at);
    const std::string domain = at == std::string::npos ? "" : k.substr(at + 1);
    const std::string host = Lowered(HostName());
    const bool this_host = domain.empty() || domain == "localhost" || domain == host ||
                           domain == host.substr(0, host.find('.'));
    if (this_host && SystemUid(UidOf(local))) {
      *why = "the address of " + Who(UidOf(local)) + ", a system account, on this host";
      return true;
    }
    if (from.empty() && local == "eximguard" && this_host) {
      *why = "eximguard's own notice sender";
      return true;
    }
    return false;
  }
  if (key_class == "cwd") {
    for (const std::string& spool :
         {std::string("/var/spool/exim4"), std::string("/var/spool/exim")}) {
      if (key == spool || key.starts_with(spool + "/")) {
        *why = "Exim's own spool directory";
        return true;
      }
    }
    if (key == "/" || key == "/root" || key.starts_with("/root/")) {
      *why = "root's directory";
      return true;
    }
  }
  return false;
}

}  // namespace eg::sidecar
