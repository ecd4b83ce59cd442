// policy_from_config.h - turns a validated Config into the eg::Policy that the sidecar publishes
// into the shared-memory table (eg::PublishPolicy, exim-dlfunc/table.h).
//
// CONTRACT
//   Callers: `eximguard run` (publish.h) and tests. Pure function of a Config that LoadConfig()
//   accepted; no I/O, never fails. Mapping:
//     limits.<class>         -> Policy::class_limits[class]   (0 stays 0: unlimited)
//     overrides.<key>        -> rule kFlagOverride, limits = the override's, missing fields
//                               taken from the key's class
//     whitelist[i]           -> rule kFlagWhitelist
//     blocklist[i]           -> rule kFlagBlocked
//     dry_run / fail_mode    -> Policy::dry_run / Policy::fail_defer
//   Rules come in that order (overrides, whitelist, blocklist), each in config order.

#ifndef EXIMGUARD_SIDECAR_POLICY_FROM_CONFIG_H_
#define EXIMGUARD_SIDECAR_POLICY_FROM_CONFIG_H_

#include "config.h"
#include "table.h"

namespace eg::sidecar {

Policy PolicyFromConfig(const Config& config);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_POLICY_FROM_CONFIG_H_
