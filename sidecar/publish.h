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

#include "config.h"
#include "segment.h"

namespace eg::sidecar {

struct PublishResult {
  std::unique_ptr<Segment> segment;
  bool created = false;   // a new table: counters start from zero
  bool replaced = false;  // created, after retiring an incompatible table of the same name
  uint64_t generation = 0;
  size_t rules = 0;  // whitelist + blocklist + override rules published
  int repaired = 0;  // slots eg::Repair fixed
};

bool PublishConfig(const Config& config, uint32_t now_unix, PublishResult* out, std::string* error);

// One line for the operator, e.g. "reused shared memory /eximguard (counters kept); published
// policy generation 4 with 3 rules; repaired 0 slots".
std::string Describe(const Config& config, const PublishResult& result);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_PUBLISH_H_
