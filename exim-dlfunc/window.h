// window.h - a lock-free sliding-window counter that many processes update at once.
//
// SUMMARY
//   A window counts admitted recipients in buckets of B seconds (5 s for the minute window,
//   300 s for the hour window). The current bucket lives in one 64-bit head word in the key's
//   hot slot (layout.h: epoch, count, and the sum of the 12 finished buckets before it); the 12
//   finished buckets live in `hist` in the cold slot, each stamped with its epoch. The window a
//   limit applies to is the current bucket plus the 12 before it, so it spans between 12*B and
//   13*B seconds of history.
//
// WHY IT IS EXACT
//   Check-and-count is one compare-and-swap on the head: a process reads the head and CASes it
//   to count+n only if sum+count+n stays within the limit. The finished buckets never grow once
//   the head has moved past them (the process that moves the head first copies the bucket it
//   retires into hist, with a CAS that only ever raises the count, and then computes the sum), so
//   the sum cached in the head stays true for the whole bucket. Hence, however many processes
//   race:
//     - never more than `limit` recipients are admitted in any span of 12*B seconds (a full
//       minute / a full hour: there is no leak at a window boundary);
//     - a key that hit its limit may have to wait up to B seconds (5 s / 5 min) longer than an
//       ideal sliding window would make it wait. That is the error bound, and it only errs on
//       the strict side.
//
// TAKING BACK
//   WindowRelease() lowers a bucket (current or finished) and, for a finished one, the cached
//   sum of the head it is part of. Lowering only ever undoes counts that were made: it never
//   creates room beyond the counts it removes, so after a release the window holds exactly the
//   recipients that were not taken back, and the 12*B bound holds for those.
//
// KILLED PROCESSES
//   A process killed between copying a bucket to hist and its CAS leaves hist holding a value it
//   would hold anyway. A process killed after reserving on one key and before releasing it (see
//   table.cpp) leaves that key counted n too many for at most one window: strict, never a leak.
//
// LIMITS
//   The head keeps the low 24 bits of the epoch: the full epoch is recovered relative to `now`,
//   which is right while a head is less than 2^23 buckets old (485 days for the minute window).
//   WindowRepair() (run at every publish) clears heads older than half that, but only if it runs
//   while the head is between 2^22 and 2^24 - 1 buckets old: a head untouched for 2^24 buckets
//   aliases a recent bucket again (its old count would hold the key for up to 13 buckets). So
//   the table also calls WindowExpire() on the windows of a key it has not seen for longer than
//   the windows span, knowing that from the key's full-width last_seen.
//
// CLOCK STEPS
//   A head or finished bucket stamped more than one bucket after `now` (the wall clock was
//   stepped back) is ignored and later overwritten: those counts are forgotten once, rather than
//   freezing the key until the clock catches up.
//
// THREAD/PROCESS SAFETY
//   All functions are safe to call concurrently from any number of processes. No allocation, no
//   system call, bounded loops.

#ifndef EXIMGUARD_WINDOW_H_
#define EXIMGUARD_WINDOW_H_

#include <atomic>
#include <cstdint>

#include "layout.h"

namespace eg {

// One window of one key: its head word and its kBuckets finished buckets.
struct WindowRef {
  std::atomic<uint64_t>* head;
  std::atomic<uint64_t>* hist;
};

// Recipients counted in the window that ends in bucket `now_epoch` (now / B).
uint32_t WindowCount(WindowRef w, uint32_t now_epoch);

enum class Reserve : uint8_t { kAdmitted, kFull, kContended };

// Counts n recipients if the window's total stays <= limit. On kAdmitted, *counted_epoch is the
// bucket the n went into (WindowRelease needs it). kContended: gave up after many lost CAS races.
Reserve WindowReserve(WindowRef w, uint32_t now_epoch, uint32_t n, uint32_t limit,
                      uint32_t* counted_epoch);

// Takes back up to n recipients counted in bucket `epoch` of the window, seen at now_epoch: the
// current bucket (a multi-key check lost a race on another key) or a finished one of the last
// kBuckets (the sidecar reconciling with the log). Returns how many it took back (0..n).
//   - Never below zero, never from another bucket: a bucket that left the window, or that hist
//     no longer holds (overwritten by a newer epoch), gives back nothing.
//   - A finished bucket is lowered in hist, and the head's cached sum with it if the head still
//     sits in the bucket it sat in before hist was touched (its sum was computed from the old
//     count). A head that moved on meanwhile is left alone: it computed its sum either after
//     the change (exact) or just before it (strict by the amount, for the rest of its bucket);
//     so a credit is never subtracted twice.
//   - Best effort, strict side: a process that copied the bucket into hist before the change
//     and finishes its (monotone-raising) copy after it may restore the old count (it had to
//     stall between reading the head and writing hist); the return value then overstates what
//     stuck. Callers that must know re-read the counts later (see WindowBuckets).
//   Several processes may release at once; the sidecar must be the only one crediting finished
//   buckets of a given window from a reconciliation (two reconcilers would each take the same
//   excess).
uint32_t WindowRelease(WindowRef w, uint32_t epoch, uint32_t n, uint32_t now_epoch);

// Sidecar: recipients counted in each bucket of the window that ends in bucket now_epoch:
// out[i] is bucket now_epoch - kBuckets + i, out[kBuckets] the current bucket. These are the
// counts future heads will sum (the head's cached sum may be stricter for the rest of its bucket).
void WindowBuckets(WindowRef w, uint32_t now_epoch, uint32_t out[kBuckets + 1]);

// The caller knows, from a full-width clock, that nothing was counted in this window for
// longer than it spans (table.cpp: the key's last_seen is over an hour and a bucket old): clears
// the head, which may otherwise alias a recent bucket (LIMITS: a head untouched for 2^24
// buckets decodes as a recent one, and WindowRepair cannot tell). Finished buckets carry full
// 32-bit epochs and need nothing. True if it changed anything. A process that moves the head
// at the same instant may lose that one count (lenient by one check, never a stuck window).
bool WindowExpire(WindowRef w);

// Sidecar: resets a window whose head is stamped after now_epoch + 1 (the clock went back) or
// that is too old for its 24-bit epoch. Returns true if it changed anything.
bool WindowRepair(WindowRef w, uint32_t now_epoch);

}  // namespace eg

#endif  // EXIMGUARD_WINDOW_H_
