// table_test.cpp - Check() across keys, processes, policy generations and a full table.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "test_segment.h"

namespace eg {
namespace {

using testing::Limits;
using testing::Sender;
using testing::TestSegment;

constexpr uint32_t kNow = 1'800'000'000;  // a fixed wall-clock second (2027)

int Admitted(const Table& t, const std::string& key, int attempts, uint32_t now = kNow) {
  int ok = 0;
  const KeyRef k = Sender(key);
  for (int i = 0; i < attempts; ++i) {
    ok += Check(t, &k, 1, 1, now, Verdict::kDefer).verdict == Verdict::kOk;
  }
  return ok;
}

TEST(Table, SenderGetsExactlyItsMinuteLimitThenDefer) {
  TestSegment s;
  s.Publish(Limits(5, 100));
  const KeyRef k = Sender("user@example.com");
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(Check(s.table(), &k, 1, 1, kNow, Verdict::kDefer).verdict, Verdict::kOk);
  const Decision d = Check(s.table(), &k, 1, 1, kNow, Verdict::kDefer);
  EXPECT_EQ(d.verdict, Verdict::kDefer);
  EXPECT_EQ(d.key, 0);
  EXPECT_EQ(d.limit, 5u);
  EXPECT_FALSE(d.hour);
  EXPECT_EQ(Totals(s.table()).verdicts[0], 5u);
  EXPECT_EQ(Totals(s.table()).verdicts[1], 1u);
}

TEST(Table, HourLimitAppliesAcrossMinutes) {
  TestSegment s;
  s.Publish(Limits(5, 12));
  int ok = 0;
  for (uint32_t m = 0; m < 10; ++m) ok += Admitted(s.table(), "a@x", 5, kNow + 70 * m);
  EXPECT_EQ(ok, 12);
  const KeyRef k = Sender("a@x");
  const Decision d = Check(s.table(), &k, 1, 1, kNow + 700, Verdict::kDefer);
  EXPECT_TRUE(d.hour);
  EXPECT_EQ(d.limit, 12u);
  // An hour and a bucket later everything has expired.
  EXPECT_EQ(Admitted(s.table(), "a@x", 5, kNow + 700 + 3600 + 300), 5);
}

TEST(Table, MinuteBoundaryStraddleIsCaught) {
  TestSegment s;
  s.Publish(Limits(5, 0));
  const uint32_t end_of_minute = (kNow / 60) * 60 + 59;
  EXPECT_EQ(Admitted(s.table(), "b@x", 5, end_of_minute), 5);
  EXPECT_EQ(Admitted(s.table(), "b@x", 5, end_of_minute + 2), 0);   // next minute
  EXPECT_EQ(Admitted(s.table(), "b@x", 5, end_of_minute + 59), 0);  // still within 60 s
  EXPECT_EQ(Admitted(s.table(), "b@x", 5, end_of_minute + 65), 5);  // after 60 s + one bucket
}

TEST(Table, SenderKeysAreCaseInsensitiveAndClassesSeparate) {
  TestSegment s;
  s.Publish(Limits(2, 0, 2, 0));
  EXPECT_EQ(Admitted(s.table(), "User@Example.COM", 1), 1);
  EXPECT_EQ(Admitted(s.table(), "user@example.com", 5), 1);
  const std::string dir = "user@example.com";
  const KeyRef as_cwd{KeyClass::kCwd, dir.data(), dir.size()};
  EXPECT_EQ(Check(s.table(), &as_cwd, 1, 1, kNow, Verdict::kHold).verdict, Verdict::kOk);
}

TEST(Table, KeyHashLowercasesExactlyAsciiLettersOfSenders) {
  TestSegment s;
  const Table& t = s.table();
  auto h = [&](KeyClass k, const std::string& text) {
    return KeyHash(t, k, text.data(), text.size());
  };
  // Every byte value at every position of a 3-word key: lowercasing agrees with a scalar tolower
  // of ASCII letters only (bytes >= 0x80, '@', '[', '`', '{' stay as they are).
  for (int pos = 0; pos < 20; pos += 3) {
    for (int c = 0; c < 256; ++c) {
      std::string a(20, 'q'), b(20, 'q');
      a[pos] = static_cast<char>(c);
      b[pos] = static_cast<char>((c >= 'A' && c <= 'Z') ? c + 32 : c);
      EXPECT_EQ(h(KeyClass::kSender, a), h(KeyClass::kSender, b)) << pos << " " << c;
      if (c != static_cast<unsigned char>(b[pos])) {
        EXPECT_NE(h(KeyClass::kCwd, a), h(KeyClass::kCwd, b)) << "cwd keys are case-sensitive";
      }
    }
  }
  EXPECT_NE(h(KeyClass::kSender, "\xC1"), h(KeyClass::kSender, "\xE1"));
  EXPECT_NE(h(KeyClass::kSender, "1001"), h(KeyClass::kUid, "1001"));  // classes never collide
  EXPECT_NE(h(KeyClass::kSender, "abcdefgh"),
            h(KeyClass::kSender, std::string("abcdefgh\0", 9)));  // length counts
}

TEST(Table, TrailingSlashOfScriptDirIsIgnored) {
  TestSegment s;
  s.Publish(Limits(0, 0, 1, 0));
  const std::string a = "/home/u/public_html", b = "/home/u/public_html/";
  const KeyRef ka{KeyClass::kCwd, a.data(), a.size()}, kb{KeyClass::kCwd, b.data(), b.size()};
  EXPECT_EQ(Check(s.table(), &ka, 1, 1, kNow, Verdict::kHold).verdict, Verdict::kOk);
  EXPECT_EQ(Check(s.table(), &kb, 1, 1, kNow, Verdict::kHold).verdict, Verdict::kHold);
}

TEST(Table, OverridesWhitelistAndBlocklist) {
  TestSegment s;
  Policy p = Limits(2, 0);
  p.rules.push_back({KeyClass::kSender, "news@example.com", kFlagOverride, {10, 0}});
  p.rules.push_back({KeyClass::kSender, "postmaster@example.com", kFlagWhitelist, {}});
  p.rules.push_back({KeyClass::kSender, "spammer@example.com", kFlagBlocked, {}});
  s.Publish(p);
  EXPECT_EQ(Admitted(s.table(), "news@example.com", 20), 10);
  EXPECT_EQ(Admitted(s.table(), "postmaster@example.com", 200), 200);
  EXPECT_EQ(Admitted(s.table(), "other@example.com", 20), 2);
  const KeyRef k = Sender("SPAMMER@example.com");
  const Decision d = Check(s.table(), &k, 1, 1, kNow, Verdict::kDefer);
  EXPECT_EQ(d.verdict, Verdict::kDeny);
  EXPECT_EQ(d.key, 0);
  // A blocked key is refused before counting: nothing counted, the refusal recorded.
  for (const SlotView& v : Snapshot(s.table(), kNow, 60)) {
    if (v.key == "SPAMMER@example.com") {
      EXPECT_EQ(v.minute, 0u);
      EXPECT_EQ(v.refused, 1u);
    }
    if (v.key == "postmaster@example.com") {
      EXPECT_EQ(v.minute, 200u);
    }
  }
}

TEST(Table, PolicyGenerationReachesAnotherAttachedView) {
  TestSegment s;
  s.Publish(Limits(3, 0));
  std::string error;
  auto reader = OpenSegment(s.spec.name, &error);  // a second mapping, as another process has
  ASSERT_TRUE(reader) << error;
  const uint64_t g0 = reader->table.header->generation.load();
  EXPECT_EQ(Admitted(reader->table, "c@x", 10), 3);
  Policy p = Limits(3, 0);
  p.rules.push_back({KeyClass::kSender, "c@x", kFlagOverride, {6, 0}});
  s.Publish(p);
  EXPECT_EQ(reader->table.header->generation.load(), g0 + 1);
  EXPECT_EQ(Admitted(reader->table, "c@x", 10), 3);  // 6 - 3 already counted
  p.rules.back().flags = kFlagBlocked;
  s.Publish(p);
  const KeyRef k = Sender("c@x");
  EXPECT_EQ(Check(reader->table, &k, 1, 1, kNow, Verdict::kDefer).verdict, Verdict::kDeny);
}

TEST(Table, LocalMessageCountsAllKeysOrNone) {
  TestSegment s;
  s.Publish(Limits(100, 0, 3, 0, 100, 0));
  const std::string cwd = "/home/u/public_html", uid = "1001", sender = "u@host";
  const KeyRef keys[3] = {{KeyClass::kCwd, cwd.data(), cwd.size()},
                          {KeyClass::kUid, uid.data(), uid.size()},
                          {KeyClass::kSender, sender.data(), sender.size()}};
  EXPECT_EQ(Check(s.table(), keys, 3, 2, kNow, Verdict::kHold).verdict, Verdict::kOk);
  const Decision d = Check(s.table(), keys, 3, 2, kNow, Verdict::kHold);  // 2 + 2 > 3
  EXPECT_EQ(d.verdict, Verdict::kHold);
  EXPECT_EQ(d.key, 0);
  EXPECT_EQ(Check(s.table(), keys, 3, 1, kNow, Verdict::kHold).verdict, Verdict::kOk);
  for (const SlotView& v : Snapshot(s.table(), kNow, 60)) {
    EXPECT_EQ(v.minute, 3u) << KeyClassName(v.klass) << " " << v.key;  // the hold counted nothing
  }
}

TEST(Table, WhitelistedCwdDoesNotExemptTheUid) {
  TestSegment s;
  Policy p = Limits(0, 0, 1, 0, 2, 0);
  p.rules.push_back({KeyClass::kCwd, "/home/u/newsletter", kFlagWhitelist, {}});
  s.Publish(p);
  const std::string cwd = "/home/u/newsletter", uid = "1001";
  const KeyRef keys[2] = {{KeyClass::kCwd, cwd.data(), cwd.size()},
                          {KeyClass::kUid, uid.data(), uid.size()}};
  int ok = 0;
  for (int i = 0; i < 5; ++i)
    ok += Check(s.table(), keys, 2, 1, kNow, Verdict::kHold).verdict == Verdict::kOk;
  EXPECT_EQ(ok, 2);
}

TEST(Table, DryRunCountsEverythingAndRefusesNothing) {
  TestSegment s;
  Policy p = Limits(2, 0);
  p.dry_run = true;
  p.rules.push_back({KeyClass::kSender, "blocked@x", kFlagBlocked, {}});
  s.Publish(p);
  const KeyRef k = Sender("d@x");
  Decision last;
  for (int i = 0; i < 5; ++i) last = Check(s.table(), &k, 1, 1, kNow, Verdict::kDefer);
  EXPECT_EQ(last.verdict, Verdict::kOk);
  EXPECT_TRUE(last.dry_run);
  EXPECT_EQ(last.would, Verdict::kDefer);
  EXPECT_EQ(last.limit, 2u);
  const KeyRef b = Sender("blocked@x");
  const Decision db = Check(s.table(), &b, 1, 1, kNow, Verdict::kDefer);
  EXPECT_EQ(db.verdict, Verdict::kOk);
  EXPECT_EQ(db.would, Verdict::kDeny);
  auto views = Snapshot(s.table(), kNow, 60);
  bool found = false;
  for (const auto& v : views) {
    if (v.key == "d@x") {
      found = true;
      EXPECT_EQ(v.minute, 5u);
      EXPECT_EQ(v.refused, 3u);
    }
  }
  EXPECT_TRUE(found);
}

TEST(Table, ForkedProcessesCountExactly) {
  TestSegment s;
  s.Publish(Limits(0, 0));  // unlimited: every increment must land
  constexpr int kProcs = 8, kEach = 20000;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::string error;
      auto seg = OpenSegment(s.spec.name, &error);
      if (!seg) _exit(3);
      const KeyRef k = Sender("shared@x");
      for (int i = 0; i < kEach; ++i) {
        if (Check(seg->table, &k, 1, 1, kNow, Verdict::kDefer).verdict != Verdict::kOk) _exit(4);
      }
      _exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  auto views = Snapshot(s.table(), kNow, 60);
  ASSERT_EQ(views.size(), 1u);
  EXPECT_EQ(views[0].minute, uint32_t{kProcs * kEach});
  EXPECT_EQ(views[0].hour, uint32_t{kProcs * kEach});
}

TEST(Table, ForkedProcessesRacingForTheLastPlacesAdmitExactlyTheLimit) {
  TestSegment s;
  s.Publish(Limits(500, 1000));
  constexpr int kProcs = 8, kEach = 400;
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::string error;
      auto seg = OpenSegment(s.spec.name, &error);
      int ok = seg ? Admitted(seg->table, "race@x", kEach) : -1;
      if (write(pipefd[1], &ok, sizeof ok) != sizeof ok) _exit(5);
      _exit(0);
    }
    kids.push_back(pid);
  }
  int total = 0;
  for (size_t i = 0; i < kids.size(); ++i) {
    int ok = 0;
    ASSERT_EQ(read(pipefd[0], &ok, sizeof ok), static_cast<ssize_t>(sizeof ok));
    ASSERT_GE(ok, 0);
    total += ok;
  }
  for (pid_t pid : kids) waitpid(pid, nullptr, 0);
  close(pipefd[0]);
  close(pipefd[1]);
  EXPECT_EQ(total, 500);
}

TEST(Table, WritersKilledAtRandomMomentsLeaveNothingHeld) {
  TestSegment s(64, 64);  // small: children also claim and evict slots while being killed
  s.Publish(Limits(1000000, 0));
  std::mt19937 rng(42);
  for (int round = 0; round < 30; ++round) {
    std::vector<pid_t> kids;
    for (int p = 0; p < 4; ++p) {
      pid_t pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        std::string error;
        auto seg = OpenSegment(s.spec.name, &error);
        if (!seg) _exit(3);
        for (uint32_t i = 0;; ++i) {
          const std::string key = "k" + std::to_string((i * 7 + p) % 200) + "@x";
          const KeyRef k = Sender(key);
          Check(seg->table, &k, 1, 1 + i % 3, kNow + i / 5000, Verdict::kDefer);
        }
      }
      kids.push_back(pid);
    }
    usleep(1000 + rng() % 20000);
    for (pid_t pid : kids) kill(pid, SIGKILL);
    for (pid_t pid : kids) waitpid(pid, nullptr, 0);
  }
  Repair(s.table(), kNow);
  // Afterwards a fresh account still gets exactly its limit (once the hammered keys have been
  // silent long enough to give up their slots in this small table).
  Policy p = Limits(1000000, 0);
  p.rules.push_back({KeyClass::kSender, "fresh@x", kFlagOverride, {7, 0}});
  s.Publish(p);
  EXPECT_EQ(Admitted(s.table(), "fresh@x", 20, kNow + 100 + 3900), 7);
}

TEST(Table, FullTableTakesOverKeysSilentForAnHourAndFailsOpenOtherwise) {
  TestSegment s(16, 64);  // 16 slots: the whole table is one probe run
  s.Publish(Limits(1, 3));
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(Admitted(s.table(), "old" + std::to_string(i) + "@x", 1, kNow + i), 1);
  }
  // Every key holds live counts above a quarter of its hour limit (1 of 3): a newcomer cannot
  // take a slot without pushing out a key near its limit, so the guard fails open for it (and
  // says so).
  const KeyRef newcomer = Sender("new@x");
  const Decision full = Check(s.table(), &newcomer, 1, 1, kNow + 100, Verdict::kDefer);
  EXPECT_EQ(full.verdict, Verdict::kOk);
  ASSERT_NE(full.failed, nullptr);
  EXPECT_STREQ(full.failed, "table full");
  EXPECT_EQ(Totals(s.table()).fail_open, 1u);
  EXPECT_EQ(Totals(s.table()).evictions, 0u);
  // Over an hour (and a bucket) later, the idlest key (old0) is taken over cleanly.
  const uint32_t later = kNow + 3900 + 1;
  EXPECT_EQ(Admitted(s.table(), "new@x", 3, later), 1);
  EXPECT_EQ(Totals(s.table()).evictions, 1u);
  auto views = Snapshot(s.table(), later, 7200);
  EXPECT_EQ(views.size(), 16u);
  for (const auto& v : views) EXPECT_NE(v.key, "old0@x");
  // Many more new keys than slots, each after the others fell silent: each limited to exactly 1.
  for (uint32_t i = 0; i < 200; ++i) {
    EXPECT_EQ(Admitted(s.table(), "n" + std::to_string(i) + "@x", 3, later + 4000 * (i + 1)), 1)
        << i;
  }
}

TEST(Table, TakeOverStartsFromZeroAndAnActiveKeyKeepsItsCounts) {
  TestSegment s(16, 64);
  s.Publish(Limits(0, 100));
  // A spammer fills its hour; 15 other keys fill the rest of the table a little later.
  EXPECT_EQ(Admitted(s.table(), "spammer@x", 150, kNow), 100);
  for (int i = 0; i < 15; ++i) Admitted(s.table(), "k" + std::to_string(i) + "@x", 1, kNow + 60);
  // Within the hour the spammer (at its limit) cannot be evicted, so it stays limited; the
  // newcomer takes the slot of a lightly used key (1 of 100) instead.
  const KeyRef newcomer = Sender("innocent@x");
  const Decision d = Check(s.table(), &newcomer, 1, 1, kNow + 1800, Verdict::kDefer);
  EXPECT_EQ(d.failed, nullptr);
  EXPECT_EQ(d.verdict, Verdict::kOk);
  EXPECT_EQ(Totals(s.table()).evictions, 1u);
  EXPECT_EQ(Admitted(s.table(), "spammer@x", 5, kNow + 1800), 0);
  // Once everything has been silent past the hour window, a key starts at zero.
  EXPECT_EQ(Admitted(s.table(), "innocent@x", 5, kNow + 1800 + 3901), 5);
  EXPECT_EQ(Admitted(s.table(), "other@x", 5, kNow + 1800 + 3901), 5);
}

// Issue 10 item 11: a relay-host client made 1,440 distinct senders in 3 s and filled a
// 1,024-key table; a new sender then got 20 of 20 recipients past a limit of 8 (fail open:
// every slot was held by a key seen within the hour). Now the flood's further new keys are
// refused once the table is full where they land (the source's new-key budget), and a new
// sender from elsewhere takes over a lightly used slot and is limited at 8.
TEST(Table, ASourceMakingUpSendersCannotPushOthersOutOfAFullTable) {
  TestSegment s(1024, 256);
  Policy p = Limits(8, 0);
  p.new_key_budget = 200;
  s.Publish(p);
  const std::string relay = "192.0.2.7";
  const KeyRef relay_src{KeyClass::kSender, relay.data(), relay.size()};
  int admitted = 0, budget_refused = 0, failed = 0;
  for (int i = 0; i < 1440; ++i) {
    const std::string sender = "bulk" + std::to_string(i) + "@relay.example";
    const KeyRef k = Sender(sender);
    const Decision d = Check(s.table(), &k, 1, 1, kNow + i / 480, Verdict::kDefer, &relay_src);
    admitted += d.verdict == Verdict::kOk && d.failed == nullptr;
    budget_refused += d.new_keys;
    failed += d.failed != nullptr;
    if (d.new_keys) {
      EXPECT_EQ(d.verdict, Verdict::kDefer);
      EXPECT_EQ(d.limit, 200u);
    }
  }
  EXPECT_GT(budget_refused, 0);
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(admitted + budget_refused, 1440);
  EXPECT_EQ(Totals(s.table()).new_key_refusals, static_cast<uint64_t>(budget_refused));

  // A new sender from another client: limited at 8, not let through.
  const std::string other = "198.51.100.1";
  const KeyRef other_src{KeyClass::kSender, other.data(), other.size()};
  const KeyRef fresh = Sender("new-sender@example.com");
  int fresh_ok = 0, fresh_deferred = 0;
  for (int i = 0; i < 20; ++i) {
    const Decision d = Check(s.table(), &fresh, 1, 1, kNow + 3, Verdict::kDefer, &other_src);
    EXPECT_EQ(d.failed, nullptr);
    fresh_ok += d.verdict == Verdict::kOk;
    fresh_deferred += d.verdict == Verdict::kDefer && !d.new_keys;
  }
  EXPECT_EQ(fresh_ok, 8);
  EXPECT_EQ(fresh_deferred, 12);
  // A new sender through the flooding relay is refused outright this minute, and is limited at 8
  // like anybody once the minute has turned (the budget is per minute).
  const KeyRef via_relay = Sender("another@relay.example");
  const Decision r = Check(s.table(), &via_relay, 1, 1, kNow + 3, Verdict::kDefer, &relay_src);
  EXPECT_TRUE(r.new_keys);
  EXPECT_EQ(r.verdict, Verdict::kDefer);
  const uint32_t next_minute = (kNow / 60 + 1) * 60;
  int relay_ok = 0;
  for (int i = 0; i < 20; ++i) {
    relay_ok +=
        Check(s.table(), &via_relay, 1, 1, next_minute, Verdict::kDefer, &relay_src).verdict ==
        Verdict::kOk;
  }
  EXPECT_EQ(relay_ok, 8);
  EXPECT_EQ(Totals(s.table()).fail_open, 0u);
}

// Eviction order: an idle key (nothing counted) first, then the lightest key; never a key above
// a quarter of its limit, whatever number of newcomers (each from its own source) arrive.
TEST(Table, EvictionPrefersIdleThenLightKeysAndNeverOneNearItsLimit) {
  TestSegment s(16, 64);  // one probe run
  s.Publish(Limits(8, 0));
  EXPECT_EQ(Admitted(s.table(), "heavy@x", 20, kNow), 8);  // at its limit
  for (int i = 0; i < 14; ++i) {
    EXPECT_EQ(Admitted(s.table(), "light" + std::to_string(i) + "@x", 1, kNow), 1);
  }
  Policy blocked = Limits(8, 0);
  blocked.rules.push_back({KeyClass::kSender, "blocked@x", kFlagBlocked, {}});
  s.Publish(blocked);
  const KeyRef b = Sender("blocked@x");
  EXPECT_EQ(Check(s.table(), &b, 1, 1, kNow, Verdict::kDefer).verdict, Verdict::kDeny);
  // The table is full: 16 keys. The blocked key has nothing counted: it goes first.
  EXPECT_EQ(Admitted(s.table(), "first@x", 1, kNow + 1), 1);
  for (const auto& v : Snapshot(s.table(), kNow + 1, 60)) EXPECT_NE(v.key, "blocked@x");
  for (int i = 0; i < 100; ++i) {
    const std::string src = "203.0.113." + std::to_string(i);
    const KeyRef source{KeyClass::kSender, src.data(), src.size()};
    const std::string key = "newcomer" + std::to_string(i) + "@x";
    const KeyRef k = Sender(key);
    const Decision d = Check(s.table(), &k, 1, 1, kNow + 2, Verdict::kDefer, &source);
    EXPECT_EQ(d.failed, nullptr) << i;
    EXPECT_EQ(d.verdict, Verdict::kOk) << i;
  }
  EXPECT_EQ(Admitted(s.table(), "heavy@x", 5, kNow + 2), 0);  // kept its 8: still limited
}

// Issue 9 item 7 (the minute-window stall): a key that comes back 2^24 minute buckets (970 days)
// later found its old minute head decoded as a recent bucket (24-bit epoch) and was deferred on
// its first recipients. Its last_seen (32 bits of seconds) says the windows hold nothing.
TEST(Table, AKeyIdleForTwoToTheTwentyFourMinuteBucketsIsNotHeldByItsOldCount) {
  TestSegment s;
  s.Publish(Limits(5, 0));
  EXPECT_EQ(Admitted(s.table(), "idle@x", 10, kNow), 5);
  const uint32_t later = kNow + ((1u << 24) + 3) * kMinuteBucketSeconds;
  EXPECT_EQ(Admitted(s.table(), "idle@x", 10, later), 5);
  EXPECT_EQ(Admitted(s.table(), "idle@x", 10, later + 1), 0);  // and counted again at once
}

TEST(Table, HostileKeysAreHandled) {
  TestSegment s;
  s.Publish(Limits(1, 0));
  const std::string huge(10000, 'A');
  const std::string binary("\xff\xfe\x00\x01\x80 bad", 10);
  const std::string empty;
  EXPECT_EQ(Admitted(s.table(), huge, 3), 1);
  EXPECT_EQ(Admitted(s.table(), binary, 3), 1);
  EXPECT_EQ(Admitted(s.table(), empty, 3), 3);  // no key: nothing to count, nothing to limit
  bool found = false;
  for (const auto& v : Snapshot(s.table(), kNow, 60)) {
    EXPECT_LE(v.key.size(), kLabelChars);
    if (v.key.size() == kLabelChars) found = true;
  }
  EXPECT_TRUE(found);
}

TEST(Table, BindRefusesForeignOrChangedLayouts) {
  alignas(64) static unsigned char buf[1 << 16];
  Table t;
  EXPECT_STREQ(Bind(buf, 10, &t), "segment smaller than its header");
  EXPECT_NE(Bind(buf, sizeof buf, &t), nullptr);  // zeroes: bad magic
  const uint64_t seed[2] = {1, 2};
  ASSERT_EQ(Format(buf, sizeof buf, 16, 64, seed, kNow), nullptr);
  EXPECT_EQ(Bind(buf, sizeof buf, &t), nullptr);
  reinterpret_cast<Header*>(buf)->layout_version = kLayoutVersion + 1;
  EXPECT_STREQ(Bind(buf, sizeof buf, &t), "unknown segment layout version");
  reinterpret_cast<Header*>(buf)->layout_version = kLayoutVersion;
  reinterpret_cast<Header*>(buf)->capacity = 1 << 20;  // claims more than is mapped
  EXPECT_NE(Bind(buf, sizeof buf, &t), nullptr);
}

TEST(Table, RepairFixesUnlabelledSlotsAndFutureStamps) {
  TestSegment s;
  s.Publish(Limits(5, 0));
  EXPECT_EQ(Admitted(s.table(), "e@x", 5, kNow + 10000), 5);  // counted with a clock far ahead
  s.table().hot[3].key.store(12345);  // as if a claimer died before writing the label
  EXPECT_EQ(Repair(s.table(), kNow), 2);
  EXPECT_EQ(Admitted(s.table(), "e@x", 5, kNow), 5);
  EXPECT_EQ(Repair(s.table(), kNow), 0);
  bool labelled = false;
  for (const SlotView& v : Snapshot(s.table(), kNow, 1u << 31)) {
    if (v.key_hash == 12345) {
      labelled = true;
      EXPECT_EQ(v.key, "?");
      EXPECT_EQ(v.klass, KeyClass::kSender);
    }
  }
  EXPECT_TRUE(labelled);
}

TEST(Table, AWriterKilledMidPublishLeavesTheOldPolicyAndTheNextPublishWorks) {
  TestSegment s;
  s.Publish(Limits(2, 0));
  // As if a publish of the next generation died after marking its block as being written.
  const uint64_t g = s.table().header->generation.load();
  s.table().policy[(g + 1) & 1]->seq.fetch_add(1);
  EXPECT_EQ(Admitted(s.table(), "p@x", 5), 2);     // the old policy is still in force
  for (uint32_t limit = 3; limit <= 6; ++limit) {  // later publishes land in both blocks
    s.Publish(Limits(limit, 0));
    const std::string key = "q" + std::to_string(limit) + "@x";
    const KeyRef k = Sender(key);
    const Decision d = Check(s.table(), &k, 1, limit + 1, kNow, Verdict::kDefer);
    EXPECT_EQ(d.failed, nullptr) << "generation " << s.table().header->generation.load();
    EXPECT_EQ(d.verdict, Verdict::kDefer);
    EXPECT_EQ(d.limit, limit);
  }
}

TEST(Table, PublishRefusesMoreRulesThanFit) {
  TestSegment s(1024, 64);
  Policy p = Limits(1, 1);
  for (int i = 0; i < 40; ++i)
    p.rules.push_back({KeyClass::kSender, "w" + std::to_string(i), kFlagWhitelist, {}});
  std::string error;
  const uint64_t g = s.table().header->generation.load();
  EXPECT_FALSE(PublishPolicy(s.table(), p, &error));
  EXPECT_NE(error.find("policy_capacity"), std::string::npos);
  EXPECT_EQ(s.table().header->generation.load(), g);
}

TEST(Table, SegmentIsReusedWithCountersAndReplacedWhenResized) {
  TestSegment s;
  s.Publish(Limits(5, 0));
  EXPECT_EQ(Admitted(s.table(), "f@x", 3), 3);
  SegmentOutcome outcome{};
  std::string error;
  auto again = CreateSegment(s.spec, &outcome, &error);
  ASSERT_TRUE(again) << error;
  EXPECT_EQ(outcome, SegmentOutcome::kReused);
  EXPECT_EQ(Admitted(again->table, "f@x", 5), 2);
  UnlockSegment(*again);
  SegmentSpec bigger = s.spec;
  bigger.capacity = 2048;
  auto resized = CreateSegment(bigger, &outcome, &error);
  ASSERT_TRUE(resized) << error;
  EXPECT_EQ(outcome, SegmentOutcome::kReplaced);
  EXPECT_EQ(again->table.header->retired.load(), 1u);  // old mappings learn to re-attach
}

}  // namespace
}  // namespace eg
