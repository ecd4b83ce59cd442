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

}  // namespace eg::sidecar
