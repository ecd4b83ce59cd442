// window.cpp - see window.h for the algorithm and its error bound.

#include "window.h"

#include <algorithm>

namespace eg {
namespace {

// A CAS loses only when another process changed the same word in between; 256 losses in a row
// means something is badly wrong (or the word is corrupt), and the caller fails open.
constexpr int kMaxRaces = 256;
constexpr uint32_t kEpochMask = (1u << 24) - 1;
constexpr int32_t kMaxHeadAge = 1 << 23;  // buckets; older heads are ambiguous

// ---- head: epoch(24) | count(20) | sum(20) ----
struct Head {
  bool used;       // false: nothing counted in it (never used, or released to zero)
  uint32_t epoch;  // full epoch, recovered relative to now; meaningless when !used
  uint32_t count;
  uint32_t sum;

  // The head is the current bucket (or a future one: the clock went back).
  bool Current(uint32_t now_epoch) const { return used && epoch >= now_epoch; }
};

constexpr uint64_t PackHead(uint32_t epoch, uint32_t count, uint32_t sum) {
  return uint64_t{epoch & kEpochMask} << 40 | uint64_t{count} << 20 | sum;
}

// Signed distance now - epoch, from 24-bit epochs.
int32_t Age(uint64_t word, uint32_t now_epoch) {
  const uint32_t e24 = static_cast<uint32_t>(word >> 40);
  const uint32_t d = (now_epoch - e24) & kEpochMask;
  return d >= (1u << 23) ? static_cast<int32_t>(d) - (1 << 24) : static_cast<int32_t>(d);
}

Head Unpack(uint64_t word, uint32_t now_epoch) {
  // A head with nothing in it is as good as stale: its epoch bits mean nothing, so it must not
  // pass for the current or a future bucket.
  if ((word & ((uint64_t{1} << 40) - 1)) == 0) return {false, 0, 0, 0};
  // Stamped more than a bucket ahead: the clock was stepped back. Keeping it "current" would
  // freeze the window until the clock catches up (hours); forgetting it errs once, leniently.
  const int32_t age = Age(word, now_epoch);
  if (age < -1) return {false, 0, 0, 0};
  return {true, now_epoch - static_cast<uint32_t>(age),
          static_cast<uint32_t>(word >> 20) & kMaxWindowCount,
          static_cast<uint32_t>(word) & kMaxWindowCount};
}

uint32_t Saturate(uint64_t v) {
  return v > kMaxWindowCount ? kMaxWindowCount : static_cast<uint32_t>(v);
}

// ---- hist: epoch(32) | count(32) ----
constexpr uint64_t PackHist(uint32_t epoch, uint32_t count) {
  return uint64_t{epoch} << 32 | count;
}
constexpr uint32_t HistEpoch(uint64_t word) {
  return static_cast<uint32_t>(word >> 32);
}
constexpr uint32_t HistCount(uint64_t word) {
  return static_cast<uint32_t>(word);
}

// Sum of the finished buckets in [end - kBuckets, end - 1], skipping epoch `skip`.
uint64_t FinishedSum(const std::atomic<uint64_t>* hist, uint32_t end, uint32_t skip) {
  uint64_t sum = 0;
  for (uint32_t i = 0; i < kBuckets; ++i) {
    const uint64_t v = hist[i].load(std::memory_order_acquire);
    const uint32_t e = HistEpoch(v);
    if (e != skip && e < end && end - e <= kBuckets) sum += HistCount(v);
  }
  return sum;
}

// Copies the bucket (epoch, count) that the head is about to leave into hist. Only ever raises
// the stored count for that epoch, so a late or repeated copy cannot lower it; an entry stamped
// after now + 1 (left by a clock that was ahead) is garbage and is overwritten. False: gave up.
bool Retire(std::atomic<uint64_t>* hist, uint32_t epoch, uint32_t count, uint32_t now_epoch) {
  if (count == 0) return true;  // an empty bucket contributes nothing; stale entries age out
  auto& bucket = hist[epoch % kBuckets];
  uint64_t cur = bucket.load(std::memory_order_acquire);
  for (int i = 0; i < kMaxRaces; ++i) {
    const uint32_t e = HistEpoch(cur);
    const bool garbage = e > now_epoch + 1;
    if (!garbage && (e > epoch || (e == epoch && HistCount(cur) >= count))) return true;
    if (bucket.compare_exchange_weak(cur, PackHist(epoch, count), std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
      return true;
    }
  }
  return false;
}

}  // namespace

uint32_t WindowCount(WindowRef w, uint32_t now_epoch) {
  const uint64_t word = w.head->load(std::memory_order_acquire);
  const Head h = Unpack(word, now_epoch);
  if (h.Current(now_epoch)) return Saturate(uint64_t{h.sum} + h.count);
  if (!h.used) return Saturate(FinishedSum(w.hist, now_epoch, now_epoch));
  // The head is a finished bucket not yet retired; hist may already hold a copy: count it once.
  uint64_t sum = FinishedSum(w.hist, now_epoch, h.epoch);
  if (now_epoch - h.epoch <= kBuckets) sum += h.count;
  return Saturate(sum);
}

Reserve WindowReserve(WindowRef w, uint32_t now_epoch, uint32_t n, uint32_t limit,
                      uint32_t* counted_epoch) {
  uint64_t word = w.head->load(std::memory_order_acquire);
  for (int i = 0; i < kMaxRaces; ++i) {
    const Head h = Unpack(word, now_epoch);
    uint64_t total;
    uint64_t next;
    if (h.Current(now_epoch)) {  // the current bucket (or the clock went back: keep counting)
      total = uint64_t{h.sum} + h.count + n;
      next = PackHead(h.epoch, Saturate(uint64_t{h.count} + n), h.sum);
      *counted_epoch = h.epoch;
    } else {  // the head is stale: retire it, then start the current bucket
      if (h.used && !Retire(w.hist, h.epoch, h.count, now_epoch)) return Reserve::kContended;
      const uint64_t sum = FinishedSum(w.hist, now_epoch, now_epoch);
      total = sum + n;
      next = PackHead(now_epoch, Saturate(n), Saturate(sum));
      *counted_epoch = now_epoch;
    }
    if (total > limit) return Reserve::kFull;
    if (w.head->compare_exchange_weak(word, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      return Reserve::kAdmitted;
    }
  }
  return Reserve::kContended;
}

uint32_t WindowRelease(WindowRef w, uint32_t epoch, uint32_t n, uint32_t now_epoch) {
  // Only a bucket some window can still count: the current one (one ahead when the clock went
  // back a little) or a finished one of the last kBuckets.
  if (n == 0 || uint64_t{epoch} > uint64_t{now_epoch} + 1) return 0;
  if (epoch < now_epoch && now_epoch - epoch > kBuckets) return 0;

  auto& bucket = w.hist[epoch % kBuckets];

  // The bucket is still the head: take it back there.
  uint64_t word = w.head->load(std::memory_order_acquire);
  Head h = Unpack(word, now_epoch);
  for (int i = 0; h.used && h.epoch == epoch; ++i) {
    const uint32_t k = std::min(h.count, n);
    if (k == 0 || i == kMaxRaces) return 0;
    const uint32_t left = h.count - k;
    if (w.head->compare_exchange_weak(word, PackHead(epoch, left, h.sum), std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      // A process that found the head stale may already have copied the bucket into hist
      // (every refused reservation of a full key does) and would keep that copy, as Retire only
      // raises. Lower such a copy to what the head now holds: any later move of the head
      // retires the head's own count first, which raises the copy again if the head grew.
      uint64_t cur = bucket.load(std::memory_order_acquire);
      for (int j = 0; j < kMaxRaces && HistEpoch(cur) == epoch && HistCount(cur) > left; ++j) {
        if (bucket.compare_exchange_weak(cur, PackHist(epoch, left), std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
          break;
        }
      }
      return k;
    }
    h = Unpack(word, now_epoch);
  }

  // The head moved on (or never reached the bucket): the bucket is in hist, if anywhere. `h` is
  // the head as it was before hist is touched; its sum counted the bucket if the bucket is one
  // of the kBuckets before it.
  uint64_t cur = bucket.load(std::memory_order_acquire);
  uint32_t k = 0;
  for (int i = 0;; ++i) {
    if (HistEpoch(cur) != epoch || i == kMaxRaces) return 0;
    const uint32_t c = HistCount(cur);
    k = std::min(c, n);
    if (k == 0) return 0;
    if (bucket.compare_exchange_weak(cur, PackHist(epoch, c - k), std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
      break;
    }
  }

  // Lower that head's cached sum too, while the head is still in the same bucket. A saturated
  // sum is not a true sum: leave it (strict). The head cannot have left its bucket and come
  // back with a fresh sum: a head is recomputed in place only from an empty word (count and sum
  // both 0), and its sum held at least this bucket's k until the subtraction below.
  if (!h.used || h.epoch <= epoch || h.epoch - epoch > kBuckets || h.sum == 0 ||
      h.sum >= kMaxWindowCount) {
    return k;
  }
  const uint32_t head_epoch = h.epoch;
  for (int i = 0; i < kMaxRaces; ++i) {
    const Head now = Unpack(word, now_epoch);
    if (!now.used || now.epoch != head_epoch) break;
    const uint64_t next = PackHead(head_epoch, now.count, now.sum - std::min(now.sum, k));
    if (w.head->compare_exchange_weak(word, next, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      break;
    }
  }
  return k;
}

void WindowBuckets(WindowRef w, uint32_t now_epoch, uint32_t out[kBuckets + 1]) {
  for (uint32_t i = 0; i <= kBuckets; ++i) out[i] = 0;
  const Head h = Unpack(w.head->load(std::memory_order_acquire), now_epoch);
  for (uint32_t i = 0; i < kBuckets; ++i) {
    const uint64_t v = w.hist[i].load(std::memory_order_acquire);
    const uint32_t e = HistEpoch(v);
    // A copy of the head's bucket (retired by a process whose head move is in flight): the head
    // is the truth for it, as in WindowCount.
    if (h.used && e == h.epoch) continue;
    if (e <= now_epoch && now_epoch - e <= kBuckets) out[kBuckets - (now_epoch - e)] = HistCount(v);
  }
  if (h.used && h.epoch <= now_epoch && now_epoch - h.epoch <= kBuckets) {
    out[kBuckets - (now_epoch - h.epoch)] = h.count;
  }
}

bool WindowExpire(WindowRef w) {
  uint64_t word = w.head->load(std::memory_order_acquire);
  return word != 0 && w.head->compare_exchange_strong(word, 0, std::memory_order_acq_rel);
}

bool WindowRepair(WindowRef w, uint32_t now_epoch) {
  uint64_t word = w.head->load(std::memory_order_acquire);
  bool changed = false;
  if (word != 0) {
    const int32_t age = Age(word, now_epoch);
    // Ahead of the clock, or too old for its 24-bit epoch: clear it, unless a guard just moved it.
    if ((age < -1 || age >= kMaxHeadAge / 2) &&
        w.head->compare_exchange_strong(word, 0, std::memory_order_acq_rel)) {
      changed = true;
    }
  }
  for (uint32_t i = 0; i < kBuckets; ++i) {
    uint64_t v = w.hist[i].load(std::memory_order_relaxed);
    if (HistEpoch(v) > now_epoch + 1 &&
        w.hist[i].compare_exchange_strong(v, 0, std::memory_order_acq_rel)) {
      changed = true;
    }
  }
  return changed;
}

}  // namespace eg
