// publish.cpp - see publish.h.

#include "publish.h"

#include "policy_from_config.h"
#include "policy_from_state.h"

namespace eg::sidecar {

bool PublishConfig(const Config& config, uint32_t now_unix, PublishResult* out, std::string* error,
                   const std::vector<PolicyRule>& extra_rules) {
  SegmentSpec spec;
  spec.name = config.shm_name;
  spec.capacity = config.capacity;
  spec.policy_capacity = config.policy_capacity;
  spec.group = config.exim_group;
  spec.mode = 0660;
  SegmentOutcome outcome{};
  out->segment = CreateSegment(spec, &outcome, error);
  if (!out->segment) return false;
  out->created = outcome != SegmentOutcome::kReused;
  out->replaced = outcome == SegmentOutcome::kReplaced;
  Policy policy = PolicyFromConfig(config);
  policy.rules.insert(policy.rules.end(), extra_rules.begin(), extra_rules.end());
  const Table& table = out->segment->table;
  if (!PublishPolicy(table, policy, error)) {
    *error = "shared memory " + spec.name + ": " + *error;
    return false;
  }
  out->rules = policy.rules.size();
  out->generation = table.header->generation.load(std::memory_order_acquire);
  out->repaired = Repair(table, now_unix);
  return true;
}

bool PublishFromStore(const Config& config, StateStore& store, uint32_t now_unix,
                      PublishResult* out, std::string* error, std::vector<std::string>* notes) {
  std::vector<StoredBlock> blocks;
  std::vector<WhitelistEntry> whitelist;
  std::vector<StoredLimit> limits;
  if (!store.ActiveBlocks(&blocks, error) || !store.ListWhitelist(&whitelist, error) ||
      !store.ListLimits(&limits, error)) {
    *error = store.path() + ": " + *error;
    return false;
  }
  const std::vector<PolicyRule> extra = RulesFromState(blocks, whitelist, notes);
  const Config effective = WithStoredLimits(config, limits);
  if (!PublishConfig(effective, now_unix, out, error, extra)) return false;
  UnlockSegment(*out->segment);
  return true;
}

std::string Describe(const Config& config, const PublishResult& r) {
  std::string line;
  if (r.segment && !r.segment->notice.empty()) {
    line = r.segment->notice;  // a squatter held the name: said first and loudly
  } else if (r.replaced) {
    line = "replaced shared memory " + config.shm_name +
           " (the old one had another size or layout; counters start from zero)";
  } else if (r.created) {
    line = "created shared memory " + config.shm_name + " (" + std::to_string(config.capacity) +
           " keys, " + std::to_string(config.policy_capacity) + " policy entries, group " +
           config.exim_group + ", mode 0660)";
  } else {
    line = "reused shared memory " + config.shm_name + " (counters kept)";
  }
  line += "; published policy generation " + std::to_string(r.generation) + " with " +
          std::to_string(r.rules) + (r.rules == 1 ? " rule" : " rules") + "; repaired " +
          std::to_string(r.repaired) + (r.repaired == 1 ? " slot" : " slots");
  return line;
}

}  // namespace eg::sidecar
