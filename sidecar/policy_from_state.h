// policy_from_state.h - the policy rules that come from the state store rather than the config:
// keys blocked by an incident or an admin (`suspend`), and keys an admin whitelisted
// (`whitelist add`). PublishConfig() (publish.h) publishes them after the config's rules. And the
// limits an admin set at run time (`set KEY VALUE`), which WithStoredLimits() lays over the
// config's before the policy and the detectors are built from it.
//
// CONTRACT
//   Callers: the daemon (after an incident, at start, on reload) and the CLI verbs that change
//   blocks or the whitelist. Pure functions; no I/O. Blocks of kind "block" become kFlagBlocked
//   rules (other kinds - WHM suspensions of the next issue - are not table rules). Whitelist
//   entries are parsed like config keys (policy_key.h); an entry that does not parse (it was
//   checked when added, so only a hand-edited database has one) is skipped and reported in
//   *skipped (may be null).
//   WithStoredLimits(): a stored class default (key "") replaces the windows it sets in
//   config.limits; a stored key limit replaces those windows of the config's override for the
//   same key (policy_key.h Identity) or is added as a new override. Unset windows keep the
//   config's (an override's missing window still inherits its class limit, EffectiveLimit).

#ifndef EXIMGUARD_SIDECAR_POLICY_FROM_STATE_H_
#define EXIMGUARD_SIDECAR_POLICY_FROM_STATE_H_

#include <string>
#include <vector>

#include "config.h"
#include "policy_key.h"
#include "state_store.h"
#include "table.h"

namespace eg::sidecar {

std::vector<PolicyRule> RulesFromState(const std::vector<StoredBlock>& blocks,
                                       const std::vector<WhitelistEntry>& whitelist,
                                       std::vector<std::string>* skipped);

// The whitelist entries as keys (the same parsing and skipping as RulesFromState()).
std::vector<PolicyKey> WhitelistKeys(const std::vector<WhitelistEntry>& whitelist,
                                     std::vector<std::string>* skipped);

// The config with the store's limits laid over it (see the contract). Every consumer of limits -
// PublishFromStore() for the shared table, the daemon for its detectors - uses the result.
Config WithStoredLimits(const Config& config, const std::vector<StoredLimit>& limits);

// A stored limit's key as a PolicyKey; `written` is how an admin would write it ("uid:1000",
// "/home/u/public_html", "a@example.com", "sender:/odd" for a sender key that would not parse
// back as one). Empty for a class default.
PolicyKey StoredLimitKey(const StoredLimit& limit);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_POLICY_FROM_STATE_H_
