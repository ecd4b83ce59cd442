// policy_from_config.cpp - see policy_from_config.h.

#include "policy_from_config.h"

namespace eg::sidecar {
namespace {

PolicyRule Rule(const PolicyKey& key, uint64_t flags, Limit limit = {}) {
  PolicyRule r;
  r.klass = key.klass;
  r.key = key.text;
  r.flags = flags;
  r.limit = limit;
  return r;
}

}  // namespace

Policy PolicyFromConfig(const Config& config) {
  Policy p;
  for (int c = 0; c < kKeyClasses; ++c) p.class_limits[c] = config.limits[c];
  p.dry_run = config.dry_run;
  p.fail_defer = config.fail_mode == FailMode::kDefer;
  p.new_key_budget = config.new_key_budget;
  p.rules.reserve(config.overrides.size() + config.whitelist.size() + config.blocklist.size());
  for (const Override& o : config.overrides) {
    p.rules.push_back(Rule(o.key, kFlagOverride, EffectiveLimit(config, o)));
  }
  for (const PolicyKey& k : config.whitelist) p.rules.push_back(Rule(k, kFlagWhitelist));
  for (const PolicyKey& k : config.blocklist) p.rules.push_back(Rule(k, kFlagBlocked));
  return p;
}

}  // namespace eg::sidecar
