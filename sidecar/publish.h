// publish.h - puts a validated config into force: opens or creates the shared-memory segment,
// publishes the policy built from the config, and repairs what killed writers left behind.
//
// CONTRACT
//   Callers: `eximguard run` (and, later, the daemon at start and on reload). Needs the
//   privilege to create the segment and give it to exim_group (root, in production).
//   PublishConfig() never throws; on failure it returns false with *error naming the segment
//   and the cause, and the previous policy (if any) stays in force. On success the result owns
//   the mapping (the segment object itself outlives the process).

#ifndef EXIMGUARD_SIDECAR_PUBLISH_H_
#define EXIMGUARD_SIDECAR_PUBLISH_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "segment.h"
#include "state_store.h"

namespace eg::sidecar {

struct PublishResult {
  std::unique_ptr<Segment> segment;
  bool created = false;   // a new table: counters start from zero
  bool replaced = false;  // created, after retiring an incompatible table of the same name or
                          // removing a foreign object (segment->notice says which)
  uint64_t generation = 0;
  size_t rules = 0;  // whitelist + blocklist + override rules published
  int repaired = 0;  // slots eg::Repair fixed
  // PublishFromStore: automatic blocks left out because the policy table is full (oldest).
  std::vector<StoredBlock> dropped;
};

// `extra_rules` (the state store's blocks and whitelist: RulesFromState()) are published after the
// config's own rules; several rules for one key merge (flags or'ed, so a block wins in the guard).
bool PublishConfig(const Config& config, uint32_t now_unix, PublishResult* out, std::string* error,
                   const std::vector<PolicyRule>& extra_rules = {});

// PublishConfig() of the config with the store's limits laid over it (WithStoredLimits) and with
// the store's active blocks and whitelist (policy_from_state.h), then gives up
// the segment's writer lock (the mapping in out->segment stays usable), so CLI verbs and the
// daemon can publish in turn. *notes (may be null) gets whitelist entries that were skipped.
// The policy table never overflows into a failure because of automatic blocks: the config's
// rules, the admins' blocks and the whitelist are published first, then the automatic blocks
// newest first as long as they fit; the rest are in out->dropped (say so loudly: DroppedText).
// It fails only when the config's and the admins' own rules do not fit.
bool PublishFromStore(const Config& config, StateStore& store, uint32_t now_unix,
                      PublishResult* out, std::string* error,
                      std::vector<std::string>* notes = nullptr);

// "3 automatic blocks are NOT enforced: the policy table ... is full; ..." or "" when none were
// dropped.
std::string DroppedText(const Config& config, const PublishResult& result);

// One line for the operator, e.g. "reused shared memory /eximguard (counters kept); published
// policy generation 4 with 3 rules; repaired 0 slots".
std::string Describe(const Config& config, const PublishResult& result);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_PUBLISH_H_
