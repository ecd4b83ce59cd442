// reconcile_test.cpp - the sidecar's reconciliation of hour counts with the log (reconcile.h),
// on a real table in a temporary segment.
#include "reconcile.h"

#include <gtest/gtest.h>

#include <string>

#include "../unit/test_segment.h"

namespace eg::sidecar {
namespace {

using eg::testing::Limits;
using eg::testing::Sender;
using eg::testing::TestSegment;

constexpr uint32_t kB = kHourBucketSeconds;
constexpr uint32_t kT0 = 1'800'000'000 / kB * kB;  // the start of an hour bucket (2027)
constexpr uint32_t kE0 = kT0 / kB;                 // its epoch
constexpr uint32_t kLag = 120;

struct ReconcileTest : ::testing::Test {
  TestSegment seg;
  const Table& t = seg.table();
  void SetUp() override { seg.Publish(Limits(0, 1000, 0, 1000, 0, 1000)); }

  Verdict Count(std::string_view key, uint32_t n, uint32_t when) {
    const KeyRef k = Sender(key);
    return Check(t, &k, 1, n, when, Verdict::kDefer).verdict;
  }
  uint32_t Bucket(KeyClass klass, std::string_view key, uint32_t epoch, uint32_t now) {
    HourBuckets hb;
    EXPECT_TRUE(ReadHourBuckets(t, klass, key, now, &hb));
    return hb.count[epoch - hb.first_epoch];
  }
  uint32_t Bucket(std::string_view key, uint32_t epoch, uint32_t now) {
    return Bucket(KeyClass::kSender, key, epoch, now);
  }
  uint32_t Hour(std::string_view key, uint32_t now) {
    for (const SlotView& v : Snapshot(t, now, 7200)) {
      if (v.key == key) return v.hour;
    }
    ADD_FAILURE() << "no slot for " << key;
    return 0;
  }
};

TEST_F(ReconcileTest, TakesBackExactlyWhatNeverArrived) {
  ASSERT_EQ(Count("a@x", 10, kT0 + 10), Verdict::kOk);      // bucket E0: 10 RCPTs
  ASSERT_EQ(Count("a@x", 4, kT0 + kB + 10), Verdict::kOk);  // bucket E0+1: 4 RCPTs
  ArrivalLedger ledger(kT0 - 1000);
  ledger.Add(KeyClass::kSender, "a@x", kT0 + 20, 6);  // 4 of the first 10 never arrived
  ledger.Add(KeyClass::kSender, "a@x", kT0 + kB + 20, 4);
  const uint32_t now = kT0 + 2 * kB + 200;
  ledger.CaughtUp(now);

  const ReconcileStats st = Reconcile(t, ledger, now, kLag);
  EXPECT_EQ(st.keys_checked, 1u);
  EXPECT_EQ(st.keys_corrected, 1u);
  EXPECT_EQ(st.recipients_credited, 4u);
  EXPECT_EQ(st.recipients_lost, 0u);
  EXPECT_EQ(Bucket("a@x", kE0, now), 6u);
  EXPECT_EQ(Bucket("a@x", kE0 + 1, now), 4u);
  EXPECT_EQ(Hour("a@x", now), 10u);

  // Idempotent: a second run finds nothing to take.
  const ReconcileStats again = Reconcile(t, ledger, now, kLag);
  EXPECT_EQ(again.keys_checked, 1u);
  EXPECT_EQ(again.recipients_credited, 0u);
  EXPECT_EQ(Hour("a@x", now), 10u);
  // And later too, while the buckets are in the window.
  EXPECT_EQ(Reconcile(t, ledger, now + kB, kLag).recipients_credited, 0u);
  EXPECT_EQ(Hour("a@x", now + kB), 10u);
}

TEST_F(ReconcileTest, AnArrivalLoggedInTheNextBucketIsNotTakenBack) {
  ASSERT_EQ(Count("a@x", 5, kT0 + kB - 10), Verdict::kOk);  // RCPTs at the end of E0
  ArrivalLedger ledger(kT0 - 1000);
  ledger.Add(KeyClass::kSender, "a@x", kT0 + kB + 30, 5);  // "<=" after a 40 s DATA, in E0+1
  const uint32_t now = kT0 + kB + kLag + 10;               // E0 ended lag + 10 s ago
  ledger.CaughtUp(now);
  const ReconcileStats st = Reconcile(t, ledger, now, kLag);
  EXPECT_EQ(st.keys_checked, 1u);
  EXPECT_EQ(st.recipients_credited, 0u);
  EXPECT_EQ(Bucket("a@x", kE0, now), 5u);
}

TEST_F(ReconcileTest, WaitsForTheLagAndForTheLog) {
  ASSERT_EQ(Count("a@x", 5, kT0 + 100), Verdict::kOk);
  ArrivalLedger ledger(kT0 - 1000);
  // E0 ended 60 s ago: a message may still be in DATA.
  uint32_t now = kT0 + kB + 60;
  ledger.CaughtUp(now);
  EXPECT_EQ(Reconcile(t, ledger, now, kLag).recipients_credited, 0u);
  // Lag passed, but the ledger has not read the log that far.
  now = kT0 + kB + kLag + 30;
  EXPECT_EQ(Reconcile(t, ledger, now, kLag).recipients_credited, 0u);
  ledger.CaughtUp(now);
  EXPECT_EQ(Reconcile(t, ledger, now, kLag).recipients_credited, 5u);
  EXPECT_EQ(Hour("a@x", now), 0u);
}

TEST_F(ReconcileTest, RespectsTheLedgersStart) {
  ASSERT_EQ(Count("unseen@x", 7, kT0 + 50), Verdict::kOk);
  ASSERT_EQ(Count("seen@x", 7, kT0 + 50), Verdict::kOk);
  const uint32_t now = kT0 + kB + 200;
  {
    // Started collecting in the middle of E0 (a sidecar restart): E0 is not judged, for a key
    // it never saw nor for one it did.
    ArrivalLedger ledger(kT0 + 100);
    ledger.Add(KeyClass::kSender, "seen@x", kT0 + 150, 1);
    ledger.CaughtUp(now);
    const ReconcileStats st = Reconcile(t, ledger, now, kLag);
    EXPECT_EQ(st.recipients_credited, 0u);
    EXPECT_EQ(st.keys_incomplete, 2u);
    EXPECT_EQ(Hour("unseen@x", now), 7u);
    EXPECT_EQ(Hour("seen@x", now), 7u);
  }
  {
    // Collecting since before E0: an unseen key's counts never became mail.
    ArrivalLedger ledger(kT0);
    ledger.Add(KeyClass::kSender, "seen@x", kT0 + 150, 1);
    ledger.CaughtUp(now);
    const ReconcileStats st = Reconcile(t, ledger, now, kLag);
    EXPECT_EQ(st.recipients_credited, 13u);
    EXPECT_EQ(Hour("unseen@x", now), 0u);
    EXPECT_EQ(Hour("seen@x", now), 1u);
  }
}

TEST_F(ReconcileTest, APartialLedgerLeavesKeysItNeverSawAlone) {
  // The daemon adds only authenticated and local arrivals: a relay host's sender it never saw
  // must keep its counts, while a key it did see is still corrected.
  ASSERT_EQ(Count("relay@x", 7, kT0 + 50), Verdict::kOk);
  ASSERT_EQ(Count("seen@x", 7, kT0 + 50), Verdict::kOk);
  const uint32_t now = kT0 + kB + kLag + 1;
  LedgerLimits limits;
  limits.sees_every_counted_key = false;
  ArrivalLedger ledger(kT0, limits);
  ledger.Add(KeyClass::kSender, "seen@x", kT0 + 60, 2);
  ledger.CaughtUp(now);
  EXPECT_EQ(Reconcile(t, ledger, now, kLag).recipients_credited, 5u);
  EXPECT_EQ(Hour("relay@x", now), 7u);
  EXPECT_EQ(Hour("seen@x", now), 2u);
}

TEST_F(ReconcileTest, AKeyDeferredForItsHourLimitIsAdmittedAgain) {
  seg.Publish(Limits(0, 10));
  for (int i = 0; i < 10; ++i) ASSERT_EQ(Count("spam@x", 1, kT0 + 10 + i), Verdict::kOk);
  EXPECT_EQ(Count("spam@x", 1, kT0 + 30), Verdict::kDefer);
  ArrivalLedger ledger(kT0 - 1000);
  ledger.Add(KeyClass::kSender, "spam@x", kT0 + 40, 3);  // 7 RCPTs were refused later on
  const uint32_t now = kT0 + kB + kLag + 1;
  ledger.CaughtUp(now);
  EXPECT_EQ(Count("spam@x", 1, now), Verdict::kDefer);
  EXPECT_EQ(Reconcile(t, ledger, now, kLag).recipients_credited, 7u);
  int admitted = 0;
  for (int i = 0; i < 20; ++i) admitted += Count("spam@x", 1, now) == Verdict::kOk;
  EXPECT_EQ(admitted, 7);  // exactly the recipients taken back, and not one more
  EXPECT_EQ(Count("spam@x", 1, now + 1), Verdict::kDefer);
}

TEST_F(ReconcileTest, CreditsTheBucketsThatHadTheExcess) {
  // Older bucket never arrived, newer one did: the older one is taken back.
  ASSERT_EQ(Count("old@x", 10, kT0 + 10), Verdict::kOk);
  ASSERT_EQ(Count("old@x", 10, kT0 + kB + 10), Verdict::kOk);
  // Older bucket arrived, newer one did not: the newer one is taken back.
  ASSERT_EQ(Count("new@x", 10, kT0 + 10), Verdict::kOk);
  ASSERT_EQ(Count("new@x", 10, kT0 + kB + 10), Verdict::kOk);
  ArrivalLedger ledger(kT0 - 1000);
  ledger.Add(KeyClass::kSender, "old@x", kT0 + kB + 20, 10);
  ledger.Add(KeyClass::kSender, "new@x", kT0 + 20, 10);
  const uint32_t now = kT0 + 2 * kB + kLag + 1;
  ledger.CaughtUp(now);
  EXPECT_EQ(Reconcile(t, ledger, now, kLag).recipients_credited, 20u);
  EXPECT_EQ(Bucket("old@x", kE0, now), 0u);
  EXPECT_EQ(Bucket("old@x", kE0 + 1, now), 10u);
  EXPECT_EQ(Bucket("new@x", kE0, now), 10u);
  EXPECT_EQ(Bucket("new@x", kE0 + 1, now), 0u);
  // Once E0 has left the window, only E0+1 counts: old@x's 10 real recipients, none of new@x.
  EXPECT_EQ(Hour("old@x", kT0 + (kBuckets + 1) * kB), 10u);
  EXPECT_EQ(Hour("new@x", kT0 + (kBuckets + 1) * kB), 0u);
}

TEST_F(ReconcileTest, LocalSubmissionsAreReconciledPerClass) {
  const std::string cwd = "/home/u/public_html/form";
  const KeyRef keys[3] = {{KeyClass::kCwd, cwd.data(), cwd.size()},
                          {KeyClass::kUid, "1000", 4},
                          {KeyClass::kSender, "u@host", 6}};
  ASSERT_EQ(Check(t, keys, 3, 5, kT0 + 10, Verdict::kHold).verdict, Verdict::kOk);
  ArrivalLedger ledger(kT0 - 1000);
  // Spelled as the log shows them: a trailing '/', a capital; the uid already converted.
  ledger.Add(KeyClass::kCwd, cwd + "/", kT0 + 11, 2);
  ledger.Add(KeyClass::kUid, "1000", kT0 + 11, 2);
  ledger.Add(KeyClass::kSender, "U@Host", kT0 + 11, 2);
  const uint32_t now = kT0 + kB + kLag + 1;
  ledger.CaughtUp(now);
  const ReconcileStats st = Reconcile(t, ledger, now, kLag);
  EXPECT_EQ(st.keys_corrected, 3u);
  EXPECT_EQ(st.recipients_credited, 9u);
  EXPECT_EQ(Bucket(KeyClass::kCwd, cwd, kE0, now), 2u);
  EXPECT_EQ(Bucket(KeyClass::kUid, "1000", kE0, now), 2u);
  EXPECT_EQ(Bucket(KeyClass::kSender, "u@host", kE0, now), 2u);
}

TEST_F(ReconcileTest, AFullLedgerStopsVouchingForKeysItDropped) {
  for (const char* k : {"a@x", "b@x", "c@x"}) ASSERT_EQ(Count(k, 4, kT0 + 10), Verdict::kOk);
  LedgerLimits limits;
  limits.max_keys = 2;
  ArrivalLedger ledger(kT0 - 1000, limits);
  ledger.Add(KeyClass::kSender, "a@x", kT0 + 20, 4);
  ledger.Add(KeyClass::kSender, "b@x", kT0 + 20, 4);
  ledger.Add(KeyClass::kSender, "c@x", kT0 + 20, 1);  // drops a@x
  EXPECT_EQ(ledger.size(), 2u);
  EXPECT_EQ(ledger.evictions(), 1u);
  EXPECT_EQ(ledger.UnheldCompleteFrom(), int64_t{kT0} + kB);
  EXPECT_EQ(ledger.CompleteFrom(KeyClass::kSender, "c@x"), int64_t{kT0} + kB);
  const uint32_t now = kT0 + kB + kLag + 1;
  ledger.CaughtUp(now);
  const ReconcileStats st = Reconcile(t, ledger, now, kLag);
  // a@x (dropped) and c@x (added after the drop) cannot be judged for E0; b@x can.
  EXPECT_EQ(st.keys_incomplete, 2u);
  EXPECT_EQ(st.recipients_credited, 0u);
  EXPECT_EQ(Hour("a@x", now), 4u);
  EXPECT_EQ(Hour("c@x", now), 4u);
}

TEST_F(ReconcileTest, LedgerKeepsKeysBoundedAndNormalized) {
  ArrivalLedger ledger(0);
  ledger.Add(KeyClass::kSender, "User@Example.COM", kT0, 2);
  ledger.Add(KeyClass::kSender, "user@example.com", kT0 + 1, 3);
  ledger.Add(KeyClass::kCwd, "/home/u/", kT0, 1);
  ledger.Add(KeyClass::kCwd, "", kT0, 1);      // the guard skips empty keys
  ledger.Add(KeyClass::kUid, "1000", kT0, 0);  // nothing
  ledger.Add(KeyClass::kUid, "1000", -5, 1);   // a time no window holds
  EXPECT_EQ(ledger.size(), 2u);
  EXPECT_EQ(ledger.Arrivals(KeyClass::kSender, "USER@example.com", kE0, kE0), 5u);
  EXPECT_EQ(ledger.Arrivals(KeyClass::kCwd, "/home/u", kE0, kE0), 1u);
  EXPECT_EQ(ledger.CompleteFrom(KeyClass::kUid, "1000"), -1);
  // A bucket 80 minutes newer takes the ring slot of an old one: the old one is forgotten,
  // and the key's record is complete only from after it.
  ledger.Add(KeyClass::kCwd, "/home/u", kT0 + kLedgerBuckets * kB, 1);
  EXPECT_EQ(ledger.Arrivals(KeyClass::kCwd, "/home/u", kE0, kE0 + kLedgerBuckets), 1u);
  EXPECT_EQ(ledger.CompleteFrom(KeyClass::kCwd, "/home/u"), int64_t{kT0} + kB);
  // Keys are cut where the guard cuts them.
  const std::string long_key(kLedgerKeyBytes + 100, 'd');
  ledger.Add(KeyClass::kCwd, long_key, kT0, 1);
  EXPECT_EQ(ledger.Arrivals(KeyClass::kCwd, long_key.substr(0, kLedgerKeyBytes), kE0, kE0), 1u);
  EXPECT_LE(ledger.bytes(), 3 * (kLedgerKeyBytes + 1 + kEntryOverheadBytes));
}

// `reset`: ClearCounts empties both windows of one key (or all keys), and the key counts from
// zero again at once.
TEST_F(ReconcileTest, ClearCountsEmptiesOneKeyOrAll) {
  seg.Publish(Limits(8, 1000, 0, 1000, 0, 1000));
  ASSERT_EQ(Count("a@x", 5, kT0 + 10), Verdict::kOk);
  ASSERT_EQ(Count("a@x", 3, kT0 + kB + 10), Verdict::kOk);     // minute window: 3 of 8
  ASSERT_EQ(Count("a@x", 6, kT0 + kB + 11), Verdict::kDefer);  // 9 > 8 a minute
  ASSERT_EQ(Count("b@x", 2, kT0 + kB + 12), Verdict::kOk);
  const uint32_t now = kT0 + kB + 20;
  EXPECT_EQ(ClearCounts(t, KeyHash(t, KeyClass::kSender, "a@x", 3), now), 8u);
  EXPECT_EQ(Hour("a@x", now), 0u);
  EXPECT_EQ(Hour("b@x", now), 2u);                    // another key is untouched
  EXPECT_EQ(Count("a@x", 8, now + 1), Verdict::kOk);  // the full minute limit again
  EXPECT_EQ(ClearCounts(t, KeyHash(t, KeyClass::kSender, "nobody@x", 8), now), 0u);
  EXPECT_EQ(ClearCounts(t, 0, now + 2), 10u);  // every key: a@x's 8 and b@x's 2
  EXPECT_EQ(Hour("a@x", now + 2), 0u);
  EXPECT_EQ(Hour("b@x", now + 2), 0u);
}

}  // namespace
}  // namespace eg::sidecar
