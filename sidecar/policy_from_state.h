// policy_from_state.h - the policy rules that come from the state store rather than the config:
// keys blocked by an incident or an admin (`suspend`), and keys an admin whitelisted
// (`whitelist add`). PublishConfig() (publish.h) publishes them after the config's rules.
//
// CONTRACT
//   Callers: the daemon (after an incident, at start, on reload) and the CLI verbs that change
//   blocks or the whitelist. Pure functions; no I/O. Blocks of kind "block" become kFlagBlocked
//   rules (other kinds - WHM suspensions of the next issue - are not table rules). Whitelist
//   entries are parsed like config keys (policy_key.h); an entry that does not parse (it was
//   checked when added, so only a hand-edited database has one) is skipped and reported in
//   *skipped (may be null).

#ifndef EXIMGUARD_SIDECAR_POLICY_FROM_STATE_H_
#define EXIMGUARD_SIDECAR_POLICY_FROM_STATE_H_

#include <string>
#include <vector>

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

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_POLICY_FROM_STATE_H_
