// policy_read.h - internal to the table library: reading the live policy on the hot path.
//
// ReadPolicy() takes a consistent snapshot of what the live policy generation says about up to
// kMaxKeys key hashes, under the per-block sequence number (see policy.cpp). No allocation, no
// system call; gives up (returns false) after a few torn reads, which needs the sidecar to
// publish twice during one read.

#ifndef EXIMGUARD_POLICY_READ_H_
#define EXIMGUARD_POLICY_READ_H_

#include <cstdint>

#include "table.h"

namespace eg {

constexpr int kMaxKeys = 4;
constexpr int kMaxPolicyProbes = 64;  // PublishPolicy refuses a table that needs more

struct KeyPolicy {
  uint32_t per_minute = kUnlimited;
  uint32_t per_hour = kUnlimited;
  uint64_t flags = 0;
};

struct PolicySnapshot {
  uint64_t options = 0;
  uint64_t generation = 0;
  uint64_t new_key_budget = 0;  // 0: none
  KeyPolicy key[kMaxKeys];
};

bool ReadPolicy(const Table& t, const uint64_t* hashes, const KeyClass* classes, int n,
                PolicySnapshot* out);

constexpr uint64_t PackLimits(uint32_t per_minute, uint32_t per_hour) {
  return uint64_t{per_minute} << 32 | per_hour;
}
constexpr uint32_t MinuteOf(uint64_t packed) {
  return static_cast<uint32_t>(packed >> 32);
}
constexpr uint32_t HourOf(uint64_t packed) {
  return static_cast<uint32_t>(packed);
}

}  // namespace eg

#endif  // EXIMGUARD_POLICY_READ_H_
