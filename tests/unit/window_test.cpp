// window_test.cpp - the sliding windows: exact limits, boundaries, release, repair.
#include <gtest/gtest.h>

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
  WindowRelease(w, counted, 1);
  EXPECT_EQ(WindowCount(w, 10), 2u);
  ASSERT_EQ(WindowReserve(w, 11, 1, 5, &counted), Reserve::kAdmitted);  // retires bucket 10
  WindowRelease(w, 10, 2);
  // The head of bucket 11 cached the old sum: strict until it moves on, then exact.
  EXPECT_EQ(WindowCount(w, 11), 3u);
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

}  // namespace
}  // namespace eg
