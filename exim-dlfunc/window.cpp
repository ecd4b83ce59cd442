// window.cpp - see window.h for the algorithm and its error bound.

#include "window.h"

#include <algorithm>

namespace eg {
namespace {

// A CAS loses only when another process changed the same word in between; 256 losses in a row
// means something is badly wrong (or the word is corrupt), and the caller fails open.
constexpr int kMaxRaces = 256;

constexpr uint64_t Pack(uint32_t epoch, uint32_t count) { return uint64_t{epoch} << 32 | count; }
constexpr uint32_t EpochOf(uint64_t word) { return static_cast<uint32_t>(word >> 32); }
constexpr uint32_t CountOf(uint64_t word) { return static_cast<uint32_t>(word); }

// Sum of the finished buckets in [end - kBuckets, end - 1].
uint64_t FinishedSum(const Window& w, uint32_t end) {
  uint64_t sum = 0;
  for (const auto& bucket : w.hist) {
    const uint64_t v = bucket.load(std::memory_order_acquire);
    const uint32_t e = EpochOf(v);
    if (e < end && end - e <= kBuckets) sum += CountOf(v);
  }
  return sum;
}

// Copies the bucket (epoch, count) that head is about to leave into hist. Only ever raises the
// stored count for that epoch, so a late or repeated copy cannot lower it. False: gave up.
bool Retire(Window& w, uint32_t epoch, uint32_t count) {
  if (count == 0) return true;  // an empty bucket contributes nothing; stale entries age out
  auto& bucket = w.hist[epoch % kBuckets];
  uint64_t cur = bucket.load(std::memory_order_acquire);
  for (int i = 0; i < kMaxRaces; ++i) {
    const uint32_t e = EpochOf(cur);
    if (e > epoch || (e == epoch && CountOf(cur) >= count)) return true;
    if (bucket.compare_exchange_weak(cur, Pack(epoch, count), std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
      return true;
    }
  }
  return false;
}

uint32_t Saturate(uint64_t v) { return v > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(v); }

}  // namespace

uint32_t WindowCount(const Window& w, uint32_t now_epoch) {
  const uint64_t head = w.head.load(std::memory_order_acquire);
  const uint32_t e = EpochOf(head);
  if (e >= now_epoch) return Saturate(FinishedSum(w, e) + CountOf(head));
  // head is a finished bucket not yet retired; hist may already hold a copy of it: count once.
  uint64_t sum = 0;
  for (const auto& bucket : w.hist) {
    const uint64_t v = bucket.load(std::memory_order_acquire);
    const uint32_t be = EpochOf(v);
    if (be != e && be < now_epoch && now_epoch - be <= kBuckets) sum += CountOf(v);
  }
  if (now_epoch - e <= kBuckets) sum += CountOf(head);
  return Saturate(sum);
}

Reserve WindowReserve(Window& w, uint32_t now_epoch, uint32_t n, uint32_t limit,
                      uint32_t* counted_epoch) {
  uint64_t head = w.head.load(std::memory_order_acquire);
  for (int i = 0; i < kMaxRaces; ++i) {
    const uint32_t e = EpochOf(head);
    const uint32_t c = CountOf(head);
    uint64_t total;
    uint64_t next;
    if (e >= now_epoch) {  // the current bucket (or the clock went back: keep counting in it)
      total = FinishedSum(w, e) + c + n;
      next = Pack(e, Saturate(uint64_t{c} + n));
    } else {  // head is stale: retire it, start the current bucket
      if (!Retire(w, e, c)) return Reserve::kContended;
      total = FinishedSum(w, now_epoch) + n;
      next = Pack(now_epoch, n);
    }
    if (total > limit) return Reserve::kFull;
    if (w.head.compare_exchange_weak(head, next, std::memory_order_acq_rel,
                                     std::memory_order_acquire)) {
      *counted_epoch = EpochOf(next);
      return Reserve::kAdmitted;
    }
  }
  return Reserve::kContended;
}

void WindowRelease(Window& w, uint32_t epoch, uint32_t n) {
  uint64_t head = w.head.load(std::memory_order_acquire);
  for (int i = 0; i < kMaxRaces && EpochOf(head) == epoch; ++i) {
    const uint32_t c = CountOf(head);
    if (w.head.compare_exchange_weak(head, Pack(epoch, c - std::min(c, n)),
                                     std::memory_order_acq_rel, std::memory_order_acquire)) {
      return;
    }
  }
  // head moved on, so the bucket was retired into hist before that: take it back there.
  auto& bucket = w.hist[epoch % kBuckets];
  uint64_t cur = bucket.load(std::memory_order_acquire);
  for (int i = 0; i < kMaxRaces && EpochOf(cur) == epoch; ++i) {
    const uint32_t c = CountOf(cur);
    if (bucket.compare_exchange_weak(cur, Pack(epoch, c - std::min(c, n)),
                                     std::memory_order_acq_rel, std::memory_order_acquire)) {
      return;
    }
  }
}

bool WindowRepair(Window& w, uint32_t now_epoch) {
  if (EpochOf(w.head.load(std::memory_order_acquire)) <= now_epoch + 1) return false;
  w.head.store(0, std::memory_order_release);
  for (auto& bucket : w.hist) bucket.store(0, std::memory_order_release);
  return true;
}

}  // namespace eg
