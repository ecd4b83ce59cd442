// policy.cpp - publishing the policy (sidecar) and reading it (hot path).
//
// Two policy blocks alternate: generation g is live in block g % 2. The sidecar writes the next
// generation into the other block, bracketed by that block's sequence number (odd while being
// written), then stores the new generation. A reader loads the generation, reads its block and
// re-checks the block's sequence number; if the sidecar was rewriting that very block (the reader
// was two generations behind), the numbers differ and the reader starts over. Readers never wait
// for the writer and a writer killed mid-write leaves the old generation live.

#include <algorithm>
#include <map>
#include <utility>

#include "policy_read.h"

namespace eg {
namespace {

// 0 means unlimited in the config; so does a limit the window counts cannot reach.
uint32_t Stored(uint32_t limit) {
  return limit == 0 || limit >= kMaxWindowCount ? kUnlimited : limit;
}

// Finds the entry for hash in a block, or nullptr. Bounded by kMaxPolicyProbes.
const PolicyEntry* Find(const Table& t, int block, uint64_t hash) {
  const PolicyEntry* entries = t.entries[block];
  for (int i = 0; i < kMaxPolicyProbes; ++i) {
    const PolicyEntry& e = entries[(hash + i) & t.policy_mask];
    const uint64_t k = e.key.load(std::memory_order_relaxed);
    if (k == hash) return &e;
    if (k == 0) return nullptr;
  }
  return nullptr;
}

}  // namespace

bool ReadPolicy(const Table& t, const uint64_t* hashes, const KeyClass* classes, int n,
                PolicySnapshot* out) {
  for (int attempt = 0; attempt < 8; ++attempt) {
    const uint64_t gen = t.header->generation.load(std::memory_order_acquire);
    const int b = static_cast<int>(gen & 1);
    const PolicyBlock& block = *t.policy[b];
    const uint64_t seq = block.seq.load(std::memory_order_acquire);
    if (seq & 1) continue;
    out->generation = gen;
    out->options = block.options.load(std::memory_order_relaxed);
    out->new_key_budget = block.new_key_budget.load(std::memory_order_relaxed);
    for (int i = 0; i < n; ++i) {
      const uint64_t cl =
          block.class_limits[static_cast<int>(classes[i])].load(std::memory_order_relaxed);
      KeyPolicy kp{MinuteOf(cl), HourOf(cl), 0};
      if (hashes[i] != 0) {
        if (const PolicyEntry* e = Find(t, b, hashes[i])) {
          kp.flags = e->flags.load(std::memory_order_relaxed);
          if (kp.flags & kFlagOverride) {
            const uint64_t l = e->limits.load(std::memory_order_relaxed);
            kp.per_minute = MinuteOf(l);
            kp.per_hour = HourOf(l);
          }
        }
      }
      out->key[i] = kp;
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (block.seq.load(std::memory_order_relaxed) == seq) return true;
  }
  return false;
}

bool PublishPolicy(const Table& t, const Policy& p, std::string* error) {
  // Merge rules per key hash.
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> merged;  // hash -> (flags, limits)
  for (const PolicyRule& r : p.rules) {
    const uint64_t h = KeyHash(t, r.klass, r.key.data(), r.key.size());
    auto& [flags, limits] = merged[h];
    flags |= r.flags;
    if (r.flags & kFlagOverride) {
      limits = PackLimits(Stored(r.limit.per_minute), Stored(r.limit.per_hour));
    }
  }
  const uint64_t capacity = uint64_t{t.policy_mask} + 1;
  if (merged.size() > capacity / 2) {
    *error = "too many whitelist/blocklist/override keys (" + std::to_string(merged.size()) +
             "); the table holds " + std::to_string(capacity / 2) + ": raise policy_capacity";
    return false;
  }

  const uint64_t next = t.header->generation.load(std::memory_order_acquire) + 1;
  const int b = static_cast<int>(next & 1);
  PolicyBlock& block = *t.policy[b];
  PolicyEntry* entries = t.entries[b];

  // Odd while being written. A writer killed here before left it odd already: stay odd, so the
  // parity (and with it every later publish into this block) is right again.
  const uint64_t writing = (block.seq.load(std::memory_order_relaxed) + 1) | 1;
  block.seq.store(writing, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  for (uint64_t i = 0; i < capacity; ++i) entries[i].key.store(0, std::memory_order_relaxed);
  for (int c = 0; c < kKeyClasses; ++c) {
    block.class_limits[c].store(
        PackLimits(Stored(p.class_limits[c].per_minute), Stored(p.class_limits[c].per_hour)),
        std::memory_order_relaxed);
  }
  block.options.store((p.dry_run ? kOptionDryRun : 0) | (p.fail_defer ? kOptionFailDefer : 0),
                      std::memory_order_relaxed);
  block.new_key_budget.store(p.new_key_budget, std::memory_order_relaxed);
  bool fits = true;
  for (const auto& [hash, value] : merged) {
    int i = 0;
    while (i < kMaxPolicyProbes &&
           entries[(hash + i) & t.policy_mask].key.load(std::memory_order_relaxed) != 0) {
      ++i;
    }
    if (i == kMaxPolicyProbes) {
      fits = false;
      break;
    }
    PolicyEntry& e = entries[(hash + i) & t.policy_mask];
    e.flags.store(value.first, std::memory_order_relaxed);
    e.limits.store(value.second, std::memory_order_relaxed);
    e.key.store(hash, std::memory_order_relaxed);
  }
  block.entries_used.store(merged.size(), std::memory_order_relaxed);
  block.seq.store(writing + 1, std::memory_order_release);  // even: complete
  if (!fits) {
    // The block is complete but unusable; the live generation was not switched.
    *error = "policy keys cluster too much for policy_capacity: raise policy_capacity";
    return false;
  }
  t.header->generation.store(next, std::memory_order_release);
  return true;
}

bool LookupRule(const Table& t, KeyClass klass, uint64_t key_hash, uint64_t* flags,
                uint32_t* per_minute, uint32_t* per_hour) {
  PolicySnapshot snap;
  if (!ReadPolicy(t, &key_hash, &klass, 1, &snap)) return false;
  *flags = snap.key[0].flags;
  *per_minute = snap.key[0].per_minute;
  *per_hour = snap.key[0].per_hour;
  return true;
}

Policy LivePolicyHead(const Table& t) {
  Policy p;
  const uint64_t gen = t.header->generation.load(std::memory_order_acquire);
  const PolicyBlock& block = *t.policy[gen & 1];
  for (int c = 0; c < kKeyClasses; ++c) {
    const uint64_t cl = block.class_limits[c].load(std::memory_order_relaxed);
    p.class_limits[c].per_minute = MinuteOf(cl) == kUnlimited ? 0 : MinuteOf(cl);
    p.class_limits[c].per_hour = HourOf(cl) == kUnlimited ? 0 : HourOf(cl);
  }
  const uint64_t options = block.options.load(std::memory_order_relaxed);
  p.dry_run = options & kOptionDryRun;
  p.fail_defer = options & kOptionFailDefer;
  p.new_key_budget = static_cast<uint32_t>(block.new_key_budget.load(std::memory_order_relaxed));
  return p;
}

}  // namespace eg
