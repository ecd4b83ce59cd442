// window_test.cpp - the sliding windows: exact limits, boundaries, release and credit, repair.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "window.h"

namespace eg {
namespace {

struct WindowTest : ::testing::Test {
  std::atomic<uint64_t> head{0};
  std::atomic<uint64_t> hist[kBuckets] = {};
  WindowRef w{&head, hist};
  int Admit(uint32_t epoch, int attempts, uint32_t limit) {
    int admitted = 0;
    for (int i = 0; i < attempts; ++i) {
      uint32_t counted = 0;
      if (WindowReserve(w, epoch, 1, limit, &counted) == Reserve::kAdmitted) {
        EXPECT_EQ(counted, epoch);
        ++admitted;
      }
    }
    return admitted;
  }
};

TEST_F(WindowTest, AdmitsExactlyTheLimitInOneBucket) {
  EXPECT_EQ(Admit(1000, 20, 5), 5);
  EXPECT_EQ(WindowCount(w, 1000), 5u);
}

TEST_F(WindowTest, BurstStraddlingABucketBoundaryIsCaught) {
  EXPECT_EQ(Admit(1000, 3, 5), 3);   // end of one bucket
  EXPECT_EQ(Admit(1001, 10, 5), 2);  // start of the next: only the remainder
  EXPECT_EQ(WindowCount(w, 1001), 5u);
}

TEST_F(WindowTest, FullWindowStaysFullForTwelveBucketsThenFrees) {
  EXPECT_EQ(Admit(1000, 5, 5), 5);
  for (uint32_t e = 1001; e <= 1000 + kBuckets; ++e) EXPECT_EQ(Admit(e, 1, 5), 0) << e;
  EXPECT_EQ(Admit(1000 + kBuckets + 1, 10, 5), 5);
}

TEST_F(WindowTest, NeverMoreThanLimitInAnyTwelveBuckets) {
  // One attempt per bucket-tick for a long time: every span of 12 buckets holds <= limit.
  const uint32_t limit = 7;
  std::vector<int> per_epoch;
  for (uint32_t e = 500; e < 700; ++e) per_epoch.push_back(Admit(e, 3, limit));
  for (size_t start = 0; start + kBuckets <= per_epoch.size(); ++start) {
    int sum = 0;
    for (size_t i = start; i < start + kBuckets; ++i) sum += per_epoch[i];
    EXPECT_LE(sum, static_cast<int>(limit)) << "span starting " << start;
  }
}

TEST_F(WindowTest, MultiRecipientReservationIsAllOrNothing) {
  uint32_t counted = 0;
  EXPECT_EQ(WindowReserve(w, 10, 4, 5, &counted), Reserve::kAdmitted);
  EXPECT_EQ(WindowReserve(w, 10, 2, 5, &counted), Reserve::kFull);
  EXPECT_EQ(WindowCount(w, 10), 4u);
}

TEST_F(WindowTest, ReleaseGivesBackInCurrentAndRetiredBucket) {
  uint32_t counted = 0;
  ASSERT_EQ(WindowReserve(w, 10, 3, 5, &counted), Reserve::kAdmitted);
  EXPECT_EQ(WindowRelease(w, counted, 1, 10), 1u);
  EXPECT_EQ(WindowCount(w, 10), 2u);
  ASSERT_EQ(WindowReserve(w, 11, 1, 5, &counted), Reserve::kAdmitted);  // retires bucket 10
  EXPECT_EQ(WindowRelease(w, 10, 2, 11), 2u);
  // The head of bucket 11 cached a sum that counted bucket 10: it is lowered with it.
  EXPECT_EQ(WindowCount(w, 11), 1u);
  EXPECT_EQ(WindowCount(w, 12), 1u);
}

TEST_F(WindowTest, ClockSteppedBackOneBucketStillCounts) {
  EXPECT_EQ(Admit(1000, 5, 5), 5);
  EXPECT_EQ(Admit(999, 5, 5), 0);  // a bucket back (clock jitter): the window is still full
}

TEST_F(WindowTest, ClockSteppedBackFarForgetsTheFutureInsteadOfFreezing) {
  EXPECT_EQ(Admit(1000, 5, 5), 5);
  EXPECT_EQ(Admit(1001, 1, 5), 0);  // bucket 1000 retired into hist
  // Stepped back 100 buckets: heads and buckets stamped in the future are ignored, not kept as
  // "current" (which would freeze the key until the clock caught up).
  EXPECT_EQ(Admit(901, 10, 5), 5);
  EXPECT_EQ(Admit(902, 10, 5), 0);    // and the new counts hold
  EXPECT_TRUE(WindowRepair(w, 902));  // clears the stale future bucket in hist
  EXPECT_FALSE(WindowRepair(w, 902));
  EXPECT_EQ(WindowCount(w, 902), 5u);
}

TEST_F(WindowTest, UnlimitedCountsSaturateInsteadOfWrapping) {
  uint32_t counted = 0;
  EXPECT_EQ(WindowReserve(w, 50, kMaxWindowCount - 1, kUnlimited, &counted), Reserve::kAdmitted);
  EXPECT_EQ(WindowReserve(w, 50, 10, kUnlimited, &counted), Reserve::kAdmitted);
  EXPECT_EQ(WindowCount(w, 50), kMaxWindowCount);
  EXPECT_EQ(WindowReserve(w, 50, 1, 1000, &counted), Reserve::kFull);
}

TEST_F(WindowTest, EpochsPastTwentyFourBitsStillWork) {
  const uint32_t e = (1u << 24) + (1u << 23) + 5;  // high bits the head does not store
  EXPECT_EQ(Admit(e, 10, 3), 3);
  EXPECT_EQ(Admit(e + 1, 10, 3), 0);
  EXPECT_EQ(Admit(e + kBuckets + 1, 10, 3), 3);
  EXPECT_EQ(WindowCount(w, e + kBuckets + 1), 3u);
}

TEST_F(WindowTest, EmptyHeadIsNeverMistakenForAFutureBucket) {
  // With the low 24 bits of now >= 2^23, a zero head decodes to a "future" epoch unless handled.
  const uint32_t e = (1u << 23) + 100;
  EXPECT_EQ(Admit(e, 10, 2), 2);
  EXPECT_EQ(Admit(e + kBuckets + 1, 10, 2), 2);
}

TEST_F(WindowTest, RepairClearsAncientHeads) {
  EXPECT_EQ(Admit(100, 1, 5), 1);
  EXPECT_FALSE(WindowRepair(w, 100 + 1000));
  EXPECT_TRUE(WindowRepair(w, 100 + (1u << 22) + 1));
  EXPECT_EQ(head.load(), 0u);
}

// The "minute-window stall" hunt (issue 9 item 7). The head keeps only 24 bits of its epoch:
// a head untouched for 2^24 buckets (970 days of minute buckets) decodes as a recent one, and
// its old count comes back for up to 13 buckets. WindowRepair cannot see it either (same 24
// bits), so the table, which knows a key's full-width last_seen, expires the windows of a key
// idle for longer than they span (table_test: AKeyIdleForTwoToTheTwentyFourMinuteBuckets...).
TEST_F(WindowTest, AHeadUntouchedForTwoToTheTwentyFourBucketsAliasesUntilExpired) {
  EXPECT_EQ(Admit(1000, 10, 5), 5);
  const uint32_t later = 1000 + (1u << 24) + 3;
  EXPECT_EQ(WindowCount(w, later), 5u);  // aliased: the LIMITS of window.h
  EXPECT_FALSE(WindowRepair(w, later));  // repair cannot tell either
  EXPECT_TRUE(WindowExpire(w));
  EXPECT_EQ(WindowCount(w, later), 0u);
  EXPECT_EQ(Admit(later, 10, 5), 5);
}

// Random time patterns (small and long gaps, clock steps back, credits of any bucket), checked
// against a plain model: with a clock that only goes forward the window holds exactly what was
// admitted and not taken back in its 13 buckets, never more than the limit; whatever the
// pattern, 13 quiet buckets after the latest bucket counted the window is empty and admits.
// Around a 24-bit epoch boundary too.
TEST(WindowModel, RandomTimePatternsNeverStallAndStayExact) {
  for (const bool back : {false, true}) {
    for (const uint32_t start : {360'000'000u, 352'321'536u - 40, 6'000'000u}) {
      std::mt19937_64 rng(start + back);
      for (int run = 0; run < 3000; ++run) {
        std::atomic<uint64_t> head{0};
        std::atomic<uint64_t> hist[kBuckets] = {};
        const WindowRef w{&head, hist};
        uint32_t now = start + static_cast<uint32_t>(rng() % 80);
        const uint32_t limit = 1 + static_cast<uint32_t>(rng() % 12);
        std::map<uint32_t, int64_t> model;  // bucket -> admitted - taken back
        for (int step = 0; step < 60; ++step) {
          const int r = static_cast<int>(rng() % 12);
          if (r < 6)
            now += static_cast<uint32_t>(rng() % 3);
          else if (r < 8)
            now += static_cast<uint32_t>(rng() % 30);
          else if (back && r < 9)
            now -= static_cast<uint32_t>(rng() % 3);
          else if (back && r < 10)
            now -= static_cast<uint32_t>(rng() % 30);
          if (rng() % 4 != 0) {
            const uint32_t n = 1 + static_cast<uint32_t>(rng() % 3);
            uint32_t counted = 0;
            if (WindowReserve(w, now, n, limit, &counted) == Reserve::kAdmitted) {
              model[counted] += n;
            }
          } else {
            const uint32_t e = now - static_cast<uint32_t>(rng() % 14);
            const uint32_t n = 1 + static_cast<uint32_t>(rng() % 3);
            model[e] -= WindowRelease(w, e, n, now);
            ASSERT_GE(model[e], 0);
          }
          if (!back) {
            int64_t want = 0;
            for (const auto& [e, v] : model) want += (e <= now && now - e <= kBuckets) ? v : 0;
            ASSERT_EQ(int64_t{WindowCount(w, now)}, want) << run << " " << step;
            ASSERT_LE(want, int64_t{limit});
          }
        }
        uint32_t latest = now;
        for (const auto& [e, v] : model) latest = std::max(latest, e);
        const uint32_t quiet = latest + kBuckets + 1;
        uint32_t counted = 0;
        ASSERT_EQ(WindowCount(w, quiet), 0u) << run;
        ASSERT_EQ(WindowReserve(w, quiet, 1, limit, &counted), Reserve::kAdmitted) << run;
      }
    }
  }
}

// ---- Taking back from finished buckets (the sidecar's reconciliation) ----

uint32_t HeadSum(const std::atomic<uint64_t>& head) {
  return static_cast<uint32_t>(head.load()) & kMaxWindowCount;
}

TEST_F(WindowTest, CreditLowersAFinishedBucketAndTheHeadsCachedSum) {
  EXPECT_EQ(Admit(10, 5, 100), 5);
  EXPECT_EQ(Admit(11, 1, 100), 1);  // head at 11, its sum counts bucket 10's 5
  EXPECT_EQ(HeadSum(head), 5u);
  EXPECT_EQ(WindowRelease(w, 10, 3, 11), 3u);
  EXPECT_EQ(HeadSum(head), 2u);
  EXPECT_EQ(WindowCount(w, 11), 3u);
  EXPECT_EQ(WindowCount(w, 12), 3u);  // the next head sums hist: no second subtraction
  uint32_t b[kBuckets + 1];
  WindowBuckets(w, 12, b);
  EXPECT_EQ(b[kBuckets - 2], 2u);  // bucket 10
  EXPECT_EQ(b[kBuckets - 1], 1u);  // bucket 11, still the head
  EXPECT_EQ(b[kBuckets], 0u);
}

TEST_F(WindowTest, CreditNeverGoesBelowZeroNorTakesFromAnotherBucket) {
  EXPECT_EQ(Admit(10, 2, 100), 2);
  EXPECT_EQ(Admit(12, 4, 100), 4);
  EXPECT_EQ(WindowRelease(w, 10, 100, 13), 2u);
  EXPECT_EQ(WindowRelease(w, 10, 1, 13), 0u);
  EXPECT_EQ(WindowRelease(w, 11, 5, 13), 0u);  // nothing was counted in 11
  EXPECT_EQ(WindowCount(w, 13), 4u);
  EXPECT_EQ(HeadSum(head), 0u);
  EXPECT_EQ(WindowRelease(w, 12, 0, 13), 0u);
}

TEST_F(WindowTest, CreditOutsideTheWindowOrInTheFutureTakesNothing) {
  EXPECT_EQ(Admit(100, 3, 100), 3);
  EXPECT_EQ(Admit(101, 1, 100), 1);
  EXPECT_EQ(WindowRelease(w, 100, 1, 100 + kBuckets + 1), 0u);  // left every window
  EXPECT_EQ(WindowRelease(w, 103, 1, 101), 0u);                 // a bucket not yet begun
  EXPECT_EQ(Admit(100 + kBuckets, 1, 100), 1);
  EXPECT_EQ(WindowRelease(w, 100, 1, 100 + kBuckets), 1u);  // the oldest bucket still counted
  EXPECT_EQ(WindowCount(w, 100 + kBuckets), 4u);            // 2 + 1 + 1
  EXPECT_EQ(Admit(100 + kBuckets + 1, 1, 100), 1);          // hist[100 % 12] now holds bucket 112
  EXPECT_EQ(WindowRelease(w, 100, 2, 100 + kBuckets + 1), 0u);
  EXPECT_EQ(WindowCount(w, 100 + kBuckets + 1), 3u);  // 101, 112, 113
}

TEST_F(WindowTest, CreditOfAnUnretiredStaleHeadIsKeptWhenItRetires) {
  EXPECT_EQ(Admit(20, 6, 100), 6);  // head at 20, then silence
  EXPECT_EQ(WindowRelease(w, 20, 4, 25), 4u);
  EXPECT_EQ(WindowCount(w, 25), 2u);
  EXPECT_EQ(Admit(26, 1, 100), 1);  // retires bucket 20 with the lowered count
  EXPECT_EQ(WindowCount(w, 26), 3u);
  EXPECT_EQ(HeadSum(head), 2u);
}

TEST_F(WindowTest, CreditReopensAFullWindowByExactlyTheCreditedAmount) {
  EXPECT_EQ(Admit(10, 5, 5), 5);
  EXPECT_EQ(Admit(11, 5, 5), 0);  // full for the hour
  EXPECT_EQ(WindowRelease(w, 10, 2, 11), 2u);
  EXPECT_EQ(Admit(11, 5, 5), 2);
  EXPECT_EQ(Admit(12, 5, 5), 0);
  EXPECT_EQ(WindowCount(w, 12), 5u);
}

TEST_F(WindowTest, CreditLeavesASaturatedSumAlone) {
  uint32_t counted = 0;
  ASSERT_EQ(WindowReserve(w, 50, kMaxWindowCount, kUnlimited, &counted), Reserve::kAdmitted);
  ASSERT_EQ(WindowReserve(w, 51, 1, kUnlimited, &counted), Reserve::kAdmitted);
  ASSERT_EQ(HeadSum(head), kMaxWindowCount);
  EXPECT_EQ(WindowRelease(w, 50, 10, 51), 10u);
  EXPECT_EQ(HeadSum(head), kMaxWindowCount);  // strict until the head moves on
  EXPECT_EQ(WindowCount(w, 52), kMaxWindowCount - 10 + 1);
}

// Reservers count on a shared clock that a driver advances (never more than one bucket ahead of
// any reserver: a reservation that started two buckets late would take the head for a clock
// stepped back, see window.h); a crediter, when `credit`, takes back from finished buckets and
// from the head's bucket when it lags. Checks, afterwards:
//   - in every window [E-12, E], admissions <= limit + what was credited in it: a credit
//     subtracted twice (from hist and again from a head that already summed the lowered hist)
//     would let more in;
//   - every remaining count lies between admitted - credited and admitted (nothing created,
//     nothing below zero), and the head's cached sum never claims less than what remains.
void RaceCreditsAgainstReservations(WindowTest& t, bool credit) {
  constexpr uint32_t kLimit = 40;
  constexpr uint32_t kFirst = 1000;
  constexpr uint32_t kEpochs = 60;
  constexpr uint32_t kCreditCap = 8;  // per bucket, so windows stay mostly full
  constexpr int kReservers = 3;
  std::atomic<uint32_t> clock{kFirst};
  std::atomic<bool> stop{false};
  std::vector<std::atomic<uint32_t>> admitted(kFirst + kEpochs + 4);
  std::vector<std::atomic<uint32_t>> credited(kFirst + kEpochs + 4);
  std::atomic<uint32_t> seen[kReservers] = {};
  std::atomic<uint32_t> contended{0};
  const WindowRef w = t.w;

  std::vector<std::thread> threads;
  for (int r = 0; r < kReservers; ++r) {
    threads.emplace_back([&, r] {
      while (!stop.load()) {
        const uint32_t now = clock.load();
        uint32_t counted = 0;
        const Reserve res = WindowReserve(w, now, 1, kLimit, &counted);
        if (res == Reserve::kAdmitted) {
          admitted[counted].fetch_add(1);
        } else if (res == Reserve::kContended) {
          contended.fetch_add(1);
        }
        seen[r].store(now);
      }
    });
  }
  if (credit) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        const uint32_t now = clock.load();
        for (uint32_t e = now - kBuckets; e <= now; ++e) {
          if (credited[e].load() >= kCreditCap) continue;
          credited[e].fetch_add(WindowRelease(w, e, 1 + e % 3, now));
        }
      }
    });
  }
  for (uint32_t e = kFirst + 1; e < kFirst + kEpochs; ++e) {
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    for (auto& s : seen) {
      while (s.load() + 1 < e) std::this_thread::yield();
    }
    clock.store(e);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1));
  stop.store(true);
  for (auto& th : threads) th.join();

  const uint32_t end = clock.load();
  uint64_t total_credited = 0;
  for (uint32_t e = kFirst; e <= end + 1; ++e) total_credited += credited[e].load();
  if (credit) {
    EXPECT_GT(total_credited, 0u);
  }
  for (uint32_t last = kFirst; last <= end + 1; ++last) {
    uint64_t adm = 0, cred = 0;
    for (uint32_t e = (last >= kFirst + kBuckets ? last - kBuckets : kFirst); e <= last; ++e) {
      adm += admitted[e].load();
      cred += credited[e].load();
    }
    EXPECT_LE(adm, kLimit + cred) << "window ending " << last;
  }
  uint32_t b[kBuckets + 1];
  WindowBuckets(w, end, b);
  uint64_t remaining_finished = 0;
  for (uint32_t i = 0; i <= kBuckets; ++i) {
    const uint32_t e = end - kBuckets + i;
    EXPECT_LE(b[i], admitted[e].load()) << "bucket " << e;
    EXPECT_GE(b[i] + credited[e].load(), admitted[e].load()) << "bucket " << e;
    if (i < kBuckets && admitted[e].load() > credited[e].load()) {
      remaining_finished += admitted[e].load() - credited[e].load();
    }
  }
  if ((t.head.load() >> 40) == (end & ((1u << 24) - 1))) {  // the head is in the last bucket
    EXPECT_GE(HeadSum(t.head), remaining_finished);
  }
  EXPECT_LE(WindowCount(w, end), kLimit);
  EXPECT_EQ(contended.load(), 0u);
}

TEST_F(WindowTest, RacingReservationsOnAnAdvancingClockKeepTheLimit) {
  RaceCreditsAgainstReservations(*this, false);
}

TEST_F(WindowTest, CreditRacingReservationsKeepsTheInvariants) {
  RaceCreditsAgainstReservations(*this, true);
}

}  // namespace
}  // namespace eg
