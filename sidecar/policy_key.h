// policy_key.h - how a key written in the config (whitelist, blocklist, overrides) names a key of
// the shared-memory table.
//
// SUMMARY
//   written in the config      class             text handed to the table
//   "/home/u/public_html/"     KeyClass::kCwd    "/home/u/public_html"  (trailing '/' dropped)
//   "uid:1000"                 KeyClass::kUid    "1000"                 (leading zeros dropped)
//   "sender:a@example.com"     KeyClass::kSender "a@example.com"        (explicit prefix)
//   "a@example.com"            KeyClass::kSender "a@example.com"        (anything else)
//   The text is what the sidecar hands to eg::PublishPolicy; the table itself lowercases sender
//   keys when hashing (see exim-dlfunc/key_hash.cpp), and Identity() does the same, so two
//   spellings that the table treats as one key compare equal here.
//
// CONTRACT
//   Pure functions, no I/O, thread-safe. ParsePolicyKey() never throws; on a bad key it returns
//   false and says why in *why (a phrase without the key path; the caller adds that).

#ifndef EXIMGUARD_SIDECAR_POLICY_KEY_H_
#define EXIMGUARD_SIDECAR_POLICY_KEY_H_

#include <string>
#include <string_view>

#include "layout.h"

namespace eg::sidecar {

struct PolicyKey {
  std::string written;  // exactly as in the config file
  KeyClass klass = KeyClass::kSender;
  std::string text;  // the key as the table sees it (prefix removed, normalized)
};

// Classifies `written`. Refuses an empty key, "uid:" without 1..10 decimal digits (or above
// 4294967295), and keys holding control characters (bytes < 0x20 and 0x7f).
bool ParsePolicyKey(std::string_view written, PolicyKey* out, std::string* why);

// A string equal for two keys exactly when the table treats them as the same key.
std::string Identity(const PolicyKey& key);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_POLICY_KEY_H_
