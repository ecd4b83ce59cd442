// policy_from_state.cpp - see policy_from_state.h.

#include "policy_from_state.h"

namespace eg::sidecar {

std::vector<PolicyKey> WhitelistKeys(const std::vector<WhitelistEntry>& whitelist,
                                     std::vector<std::string>* skipped) {
  std::vector<PolicyKey> keys;
  for (const WhitelistEntry& e : whitelist) {
    PolicyKey key;
    std::string why;
    if (ParsePolicyKey(e.key, &key, &why)) {
      keys.push_back(std::move(key));
    } else if (skipped != nullptr) {
      skipped->push_back("whitelist entry \"" + e.key + "\": " + why);
    }
  }
  return keys;
}

std::vector<PolicyRule> RulesFromState(const std::vector<StoredBlock>& blocks,
                                       const std::vector<WhitelistEntry>& whitelist,
                                       std::vector<std::string>* skipped) {
  std::vector<PolicyRule> rules;
  for (const StoredBlock& b : blocks) {
    if (!b.active || b.kind != kBlockKindBlock) continue;
    PolicyRule r;
    r.klass = b.key_class;
    r.key = b.key;
    r.flags = kFlagBlocked;
    rules.push_back(std::move(r));
  }
  for (const PolicyKey& k : WhitelistKeys(whitelist, skipped)) {
    PolicyRule r;
    r.klass = k.klass;
    r.key = k.text;
    r.flags = kFlagWhitelist;
    rules.push_back(std::move(r));
  }
  return rules;
}

PolicyKey StoredLimitKey(const StoredLimit& limit) {
  PolicyKey key;
  key.klass = limit.key_class;
  key.text = limit.key;
  if (limit.key.empty()) return key;
  switch (limit.key_class) {
    case KeyClass::kUid:
      key.written = "uid:" + limit.key;
      break;
    case KeyClass::kCwd:
      key.written = limit.key;
      break;
    case KeyClass::kSender: {
      PolicyKey back;
      std::string why;
      const bool plain = ParsePolicyKey(limit.key, &back, &why) &&
                         back.klass == KeyClass::kSender && back.text == limit.key;
      key.written = plain ? limit.key : "sender:" + limit.key;
      break;
    }
  }
  return key;
}

Config WithStoredLimits(const Config& config, const std::vector<StoredLimit>& limits) {
  Config c = config;
  for (const StoredLimit& l : limits) {
    if (l.key.empty()) {
      Limit& base = c.limits[static_cast<int>(l.key_class)];
      if (l.per_minute) base.per_minute = *l.per_minute;
      if (l.per_hour) base.per_hour = *l.per_hour;
      continue;
    }
    const PolicyKey key = StoredLimitKey(l);
    const std::string id = Identity(key);
    Override* o = nullptr;
    for (Override& candidate : c.overrides) {
      if (Identity(candidate.key) == id) o = &candidate;
    }
    if (o == nullptr) {
      c.overrides.push_back({key, std::nullopt, std::nullopt});
      o = &c.overrides.back();
    }
    if (l.per_minute) o->per_minute = l.per_minute;
    if (l.per_hour) o->per_hour = l.per_hour;
  }
  return c;
}

}  // namespace eg::sidecar
