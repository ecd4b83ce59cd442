// publish.cpp - see publish.h.

#include "publish.h"

#include <algorithm>
#include <set>
#include <utility>

#include "policy_from_config.h"
#include "policy_from_state.h"
#include "text_escape.h"

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

namespace {

// An automatic block in the table: the only rows a full policy table may leave out (the WHM
// rows of eximguard's own steps are no table rule at all).
bool AutomaticTableBlock(const StoredBlock& b) {
  return b.by == kAutomaticBy && b.kind == kBlockKindBlock;
}

// How many of `automatic` (newest first) fit beside the config's rules and `rules` when the
// policy table merges rules of one (class, key) and holds `room` distinct keys.
size_t AutomaticThatFit(const Config& config, const std::vector<PolicyRule>& rules,
                        const std::vector<StoredBlock>& automatic, size_t room) {
  std::set<std::pair<int, std::string>> keys;
  for (const PolicyRule& r : PolicyFromConfig(config).rules) {
    keys.emplace(static_cast<int>(r.klass), r.key);
  }
  for (const PolicyRule& r : rules) keys.emplace(static_cast<int>(r.klass), r.key);
  size_t fit = 0;
  for (const StoredBlock& b : automatic) {
    keys.emplace(static_cast<int>(b.key_class), b.key);
    if (keys.size() > room) break;
    ++fit;
  }
  return fit;
}

}  // namespace

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
  const Config effective = WithStoredLimits(config, limits);
  // The config's rules, the admins' blocks and the whitelist first; then the automatic blocks,
  // newest first, as many as the policy table holds. The rest are dropped (out->dropped): the
  // guard must go on enforcing what the admins decided and everything new.
  std::vector<StoredBlock> mine;
  std::vector<StoredBlock> automatic;
  for (StoredBlock& b : blocks) {
    (AutomaticTableBlock(b) ? automatic : mine).push_back(std::move(b));
  }
  std::stable_sort(automatic.begin(), automatic.end(),
                   [](const StoredBlock& a, const StoredBlock& b) { return a.since > b.since; });
  std::vector<PolicyRule> extra = RulesFromState(mine, whitelist, notes);
  size_t keep = AutomaticThatFit(effective, extra, automatic, config.policy_capacity / 2);
  out->dropped.clear();
  for (;;) {
    std::vector<StoredBlock> published(automatic.begin(),
                                       automatic.begin() + static_cast<ptrdiff_t>(keep));
    std::vector<PolicyRule> rules = extra;
    const std::vector<PolicyRule> autos = RulesFromState(published, {}, nullptr);
    rules.insert(rules.end(), autos.begin(), autos.end());
    if (PublishConfig(effective, now_unix, out, error, rules)) break;
    // Still too many (the hash table's probes are full): halve the automatic blocks; without
    // any, the failure is the admins' own rules' and is reported.
    if (keep == 0 || !out->segment) return false;
    keep /= 2;
  }
  out->dropped.assign(automatic.begin() + static_cast<ptrdiff_t>(keep), automatic.end());
  UnlockSegment(*out->segment);
  return true;
}

std::string DroppedText(const Config& config, const PublishResult& r) {
  if (r.dropped.empty()) return "";
  std::string text = std::to_string(r.dropped.size()) +
                     (r.dropped.size() == 1 ? " automatic block is" : " automatic blocks are") +
                     " NOT enforced: the policy table (policy_capacity " +
                     std::to_string(config.policy_capacity) +
                     ") is full; the oldest are left out: ";
  for (size_t i = 0; i < r.dropped.size() && i < 5; ++i) {
    text += (i == 0 ? "" : ", ") + std::string(KeyClassName(r.dropped[i].key_class)) + " " +
            Printable(r.dropped[i].key);
  }
  if (r.dropped.size() > 5) text += ", ...";
  text += ". Raise policy_capacity, or lift blocks that are no longer needed (eximguard list)";
  return text;
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
