// users.cpp - see users.h.

#include "users.h"

#include <pwd.h>

#include <algorithm>

namespace eg::sidecar {

std::string UidOfUser(const std::string& name) {
  if (!name.empty() &&
      std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return name;
  }
  char buf[4096];
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (getpwnam_r(name.c_str(), &pw, buf, sizeof buf, &found) != 0 || found == nullptr) return "";
  return std::to_string(found->pw_uid);
}

std::string UserOfUid(uid_t uid) {
  char buf[4096];
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) != 0 || found == nullptr) return "";
  return found->pw_name;
}

}  // namespace eg::sidecar
