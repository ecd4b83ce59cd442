// table_watch_test.cpp - the sidecar's trusted eyes (sidecar/table_watch.h) on a real shared
// table: the guard's own refusals become `throttled` incidents (a sender hammering its limit, a
// relay host's envelope sender, a script directory with its submitter), blocked keys are left
// out, one incident per cooldown, and a table that makes the guard fail open raises an alert.

#include "table_watch.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "sidecar_test_util.h"

namespace eg::sidecar {
namespace {

constexpr uint32_t kNow = 1'800'000'000;  // injected: the table and the watch share this clock

class TableWatchTest : public ::testing::Test {
 protected:
  void Make(uint32_t capacity = 1024) {
    SegmentSpec spec;
    spec.name = name_.name;
    spec.capacity = capacity;
    spec.policy_capacity = 64;
    SegmentOutcome outcome{};
    std::string error;
    seg_ = CreateSegment(spec, &outcome, &error);
    ASSERT_TRUE(seg_) << error;
    Policy p;
    p.class_limits[0] = {8, 100};
    p.class_limits[1] = {5, 60};
    p.class_limits[2] = {20, 300};
    policy_ = p;
    ASSERT_TRUE(PublishPolicy(seg_->table, policy_, &error)) << error;
  }
  // `n` recipient checks of one recipient each, as eximguard_rcpt makes them.
  void Rcpts(const std::string& key, int n, uint32_t now, KeyClass klass = KeyClass::kSender) {
    const KeyRef ref{klass, key.data(), key.size()};
    for (int i = 0; i < n; ++i) Check(seg_->table, &ref, 1, 1, now, Verdict::kDefer);
  }

  testing::ScopedSegmentName name_;
  std::unique_ptr<Segment> seg_;
  Policy policy_;
};

// Issue 9.4: an authenticated sender had 12 of 20 recipients deferred, and so did a relay-host
// sender; nothing said so. The guard's own refusals are the trustworthy source.
TEST_F(TableWatchTest, AKeyThatKeepsBeingRefusedIsThrottled) {
  Make();
  TableWatchSettings s;
  s.throttled_refused = 12;
  TableWatch watch(s);
  EXPECT_TRUE(watch.Look(seg_->table, kNow).empty());  // the first look takes a baseline
  Rcpts("Leaked@Victim.example", 20, kNow + 1);        // 8 admitted, 12 deferred
  Rcpts("app@relay.example", 19, kNow + 1);            // 8 admitted, 11 deferred: one short
  std::vector<Incident> found = watch.Look(seg_->table, kNow + 2);
  ASSERT_EQ(found.size(), 1u);
  const Incident& i = found[0];
  EXPECT_EQ(i.rule, "throttled");
  EXPECT_EQ(i.key, "leaked@victim.example");
  EXPECT_EQ(i.key_class, "sender");
  EXPECT_EQ(i.count, 12u);
  EXPECT_EQ(i.threshold, 12u);
  EXPECT_EQ(i.source, EvidenceSource::kTable);
  EXPECT_TRUE(i.trusted);
  EXPECT_NE(i.trust_note.find("the guard itself refused 12 recipients"), std::string::npos)
      << i.trust_note;
  EXPECT_NE(i.trust_note.find("limit 8/minute, 100/hour; admitted 8 this minute"),
            std::string::npos)
      << i.trust_note;
  // The relay host's sender keeps trying a minute later: now over, and seen the same way.
  Rcpts("app@relay.example", 1, kNow + 30);
  found = watch.Look(seg_->table, kNow + 31);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].key, "app@relay.example");
  // Once per cooldown, however long it goes on.
  Rcpts("leaked@victim.example", 50, kNow + 40);
  EXPECT_TRUE(watch.Look(seg_->table, kNow + 41).empty());
  EXPECT_GE(watch.RefusedWithin(KeyClass::kSender, "Leaked@Victim.example", 600), 62u);
}

TEST_F(TableWatchTest, RefusalsOutsideTheWindowAndBlockedKeysDoNotCount) {
  Make();
  TableWatchSettings s;
  s.throttled_refused = 10;
  s.throttled_seconds = 120;
  TableWatch watch(s);
  watch.Look(seg_->table, kNow);
  Rcpts("slow@x.example", 14, kNow + 1);  // 6 refused
  EXPECT_TRUE(watch.Look(seg_->table, kNow + 2).empty());
  Rcpts("slow@x.example", 14, kNow + 300);  // 6 more, but the first 6 are out of the window
  EXPECT_TRUE(watch.Look(seg_->table, kNow + 301).empty());
  // A blocked key is refused with deny on every recipient: its block says it all.
  Policy blocked = policy_;
  blocked.rules.push_back({KeyClass::kCwd, "/home/u/public_html", kFlagBlocked, {}});
  std::string error;
  ASSERT_TRUE(PublishPolicy(seg_->table, blocked, &error)) << error;
  Rcpts("/home/u/public_html", 30, kNow + 302, KeyClass::kCwd);
  EXPECT_TRUE(watch.Look(seg_->table, kNow + 303).empty());
  EXPECT_GE(watch.RefusedWithin(KeyClass::kCwd, "/home/u/public_html", 120), 30u);
}

// Issue 10: a bounce storm from Exim's own delivery events (event_action through the guard), not
// from `**` lines anybody can write to a log. Delivered and failed recipients are tallied on the
// key's slot (Tally, what eximguard_event does); the watch judges their growth over the hour.
TEST_F(TableWatchTest, AnAccountWhoseRecipientsMostlyFailIsABounceStormFromEximsEvents) {
  Make();
  TableWatchSettings s;
  s.bounce_min_recipients = 20;
  s.bounce_percent = 50;
  TableWatch watch(s);
  Rcpts("harvester@victim.example", 5, kNow);
  Rcpts("fine@victim.example", 5, kNow);
  EXPECT_TRUE(watch.Look(seg_->table, kNow + 1).empty());  // baseline
  const std::string bad = "Harvester@Victim.example", good = "fine@victim.example";
  auto tally = [&](const std::string& key, Outcome o, int n) {
    for (int i = 0; i < n; ++i) {
      const std::string domain = "d" + std::to_string(i) + ".example";  // a harvested list
      ASSERT_TRUE(Tally(seg_->table, {KeyClass::kSender, key.data(), key.size()}, o, domain.data(),
                        domain.size()));
    }
  };
  tally(bad, Outcome::kDelivered, 4);
  tally(bad, Outcome::kFailed, 10);  // 14 outcomes: under the 20 the rule needs
  tally(good, Outcome::kDelivered, 30);
  tally(good, Outcome::kFailed, 14);   // 44 outcomes, 32% failed: a normal list
  tally(bad, Outcome::kDeferred, 50);  // deferrals are no outcome yet
  EXPECT_TRUE(watch.Look(seg_->table, kNow + 600).empty());
  tally(bad, Outcome::kFailed, 8);  // 22 outcomes within the hour, 18 failed: 82%
  std::vector<Incident> found = watch.Look(seg_->table, kNow + 1200);
  ASSERT_EQ(found.size(), 1u);
  const Incident& i = found[0];
  EXPECT_EQ(i.rule, "bounce_storm");
  EXPECT_EQ(i.key, "harvester@victim.example");
  EXPECT_EQ(i.key_class, "sender");
  EXPECT_EQ(i.count, 18u);
  EXPECT_EQ(i.source, EvidenceSource::kTable);
  EXPECT_FALSE(i.trusted);  // others can choose the recipients: a notice
  EXPECT_NE(i.trust_note.find("Exim reported through the guard 18 of 22 recipients failed"),
            std::string::npos)
      << i.trust_note;
  EXPECT_NE(i.trust_note.find(" recipient domains (the rule: at least 20 recipients, more than "
                              "50% failed, at 5 domains or more)"),
            std::string::npos)
      << i.trust_note;
  // Once per cooldown.
  tally(bad, Outcome::kFailed, 30);
  EXPECT_TRUE(watch.Look(seg_->table, kNow + 1300).empty());
}

TEST_F(TableWatchTest, BounceStormCountsOnlyTheHourAndSparesWhitelistedAndBlockedKeys) {
  Make();
  TableWatchSettings s;
  s.bounce_min_recipients = 10;
  s.bounce_percent = 50;
  TableWatch watch(s);
  for (const char* k : {"slow@x.example", "bulk@x.example", "gone@x.example"}) Rcpts(k, 1, kNow);
  watch.Look(seg_->table, kNow);
  auto tally = [&](const std::string& key, Outcome o, int n) {
    for (int i = 0; i < n; ++i) {
      const std::string domain = "d" + std::to_string(i) + ".example";
      Tally(seg_->table, {KeyClass::kSender, key.data(), key.size()}, o, domain.data(),
            domain.size());
    }
  };
  tally("slow@x.example", Outcome::kFailed, 6);
  EXPECT_TRUE(watch.Look(seg_->table, kNow + 10).empty());
  // More than an hour later, 6 more: the first 6 have left the window.
  Rcpts("slow@x.example", 1, kNow + 4000);
  tally("slow@x.example", Outcome::kFailed, 6);
  EXPECT_TRUE(watch.Look(seg_->table, kNow + 4010).empty());
  // Whitelisted (a bulk sender) and blocked keys: never a bounce_storm.
  Policy p = policy_;
  p.rules.push_back({KeyClass::kSender, "bulk@x.example", kFlagWhitelist, {}});
  p.rules.push_back({KeyClass::kSender, "gone@x.example", kFlagBlocked, {}});
  std::string error;
  ASSERT_TRUE(PublishPolicy(seg_->table, p, &error)) << error;
  Rcpts("bulk@x.example", 1, kNow + 4020);
  Rcpts("gone@x.example", 1, kNow + 4020);
  tally("bulk@x.example", Outcome::kFailed, 40);
  tally("gone@x.example", Outcome::kFailed, 40);
  EXPECT_TRUE(watch.Look(seg_->table, kNow + 4030).empty());
  // The rule off: nothing.
  s.bounce_min_recipients = 0;
  TableWatch off(s);
  off.Look(seg_->table, kNow + 4040);
  tally("slow@x.example", Outcome::kFailed, 40);
  EXPECT_TRUE(off.Look(seg_->table, kNow + 4050).empty());
}

// A remote MX refuses what it likes: an attacker signs up 40 addresses of the domain whose MX
// they run to a customer's newsletter and refuses them all. One domain is no bounce storm.
TEST_F(TableWatchTest, OneDomainRefusingACustomersMailIsNoBounceStorm) {
  Make();
  TableWatchSettings s;
  s.bounce_min_recipients = 20;
  s.bounce_min_domains = 5;
  TableWatch watch(s);
  const std::string news = "news@shop.example";
  Rcpts(news, 1, kNow);
  watch.Look(seg_->table, kNow);
  const KeyRef key{KeyClass::kSender, news.data(), news.size()};
  const std::string attacker = "attacker.example", real = "gmail.example";
  for (int i = 0; i < 40; ++i)
    Tally(seg_->table, key, Outcome::kFailed, attacker.data(), attacker.size());
  for (int i = 0; i < 10; ++i)
    Tally(seg_->table, key, Outcome::kDelivered, real.data(), real.size());
  EXPECT_TRUE(watch.Look(seg_->table, kNow + 10).empty());
  // The same failures spread over many domains (a harvested list) are one.
  for (int i = 0; i < 12; ++i) {
    const std::string d = "harvested" + std::to_string(i) + ".example";
    Tally(seg_->table, key, Outcome::kFailed, d.data(), d.size());
  }
  const std::vector<Incident> found = watch.Look(seg_->table, kNow + 20);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].rule, "bounce_storm");
  // Domains that failed more than an hour ago do not count again.
  TableWatch later(s);
  Rcpts("old@shop.example", 1, kNow);
  later.Look(seg_->table, kNow);
  const std::string old = "old@shop.example";
  const KeyRef old_key{KeyClass::kSender, old.data(), old.size()};
  for (int i = 0; i < 12; ++i) {
    const std::string d = "harvested" + std::to_string(i) + ".example";
    Tally(seg_->table, old_key, Outcome::kFailed, d.data(), d.size());
  }
  later.Look(seg_->table, kNow + 10);  // 12 failures: below 20, no incident, domains seen
  Rcpts(old, 1, kNow + 4000);
  for (int i = 0; i < 30; ++i)
    Tally(seg_->table, old_key, Outcome::kFailed, attacker.data(), attacker.size());
  EXPECT_TRUE(later.Look(seg_->table, kNow + 4010).empty());
}

// A key first seen after the first look counts all its refusals (its slot is new); the first
// look does not judge history.
TEST_F(TableWatchTest, TheFirstLookIsABaseline) {
  Make();
  Rcpts("before@x.example", 40, kNow);  // refused before eximguard started watching
  TableWatch watch;
  EXPECT_TRUE(watch.Look(seg_->table, kNow + 1).empty());
  Rcpts("after@x.example", 40, kNow + 2);
  const std::vector<Incident> found = watch.Look(seg_->table, kNow + 3);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].key, "after@x.example");
  EXPECT_EQ(found[0].count, 32u);
}

// Issue 10.11: a full table makes the guard let mail through unchecked; say so loudly, from the
// first check let through on.
TEST_F(TableWatchTest, AGuardFailingOpenRaisesOneAlert) {
  Make(16);  // 16 slots, each key at its limit (8 of 8): nobody may be pushed out
  for (int k = 0; k < 16; ++k) Rcpts("s" + std::to_string(k) + "@flood.example", 8, kNow);
  TableWatch watch;
  watch.Look(seg_->table, kNow);
  EXPECT_TRUE(watch.TakeAlerts().empty());
  Rcpts("one-more@flood.example", 1, kNow + 1);  // one check let through unchecked
  EXPECT_TRUE(watch.TakeAlerts().empty());
  watch.Look(seg_->table, kNow + 2);
  const std::vector<std::string> alerts = watch.TakeAlerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_NE(alerts[0].find("let 1 check through unchecked"), std::string::npos) << alerts[0];
  for (int k = 40; k < 80; ++k) Rcpts("s" + std::to_string(k) + "@flood.example", 1, kNow + 3);
  watch.Look(seg_->table, kNow + 4);
  EXPECT_TRUE(watch.TakeAlerts().empty());  // once per cooldown
  watch.Look(seg_->table, kNow + 3606);     // the cooldown is over: what piled up meanwhile
  const std::vector<std::string> later = watch.TakeAlerts();
  ASSERT_EQ(later.size(), 1u);
  EXPECT_NE(later[0].find("let 40 checks through"), std::string::npos) << later[0];
}

// Fail-open answers from before the sidecar watched are a baseline, not an alert.
TEST_F(TableWatchTest, FailOpenHistoryIsABaseline) {
  Make(16);
  for (int k = 0; k < 20; ++k) Rcpts("s" + std::to_string(k) + "@flood.example", 8, kNow);
  ASSERT_GT(Totals(seg_->table).fail_open, 0u);
  TableWatch watch;
  watch.Look(seg_->table, kNow + 1);
  EXPECT_TRUE(watch.TakeAlerts().empty());
}

// A client over its new-key budget is refused, and the admins hear of it.
TEST_F(TableWatchTest, NewKeyRefusalsRaiseAnAlert) {
  Make(16);
  Policy p = policy_;
  p.new_key_budget = 2;
  std::string error;
  ASSERT_TRUE(PublishPolicy(seg_->table, p, &error)) << error;
  TableWatch watch;
  watch.Look(seg_->table, kNow);
  const std::string ip = "192.0.2.7";
  const KeyRef src{KeyClass::kSender, ip.data(), ip.size()};
  int refused = 0;
  for (int k = 0; k < 20; ++k) {
    const std::string key = "made-up" + std::to_string(k) + "@relay.example";
    const KeyRef ref{KeyClass::kSender, key.data(), key.size()};
    refused += Check(seg_->table, &ref, 1, 1, kNow + 1, Verdict::kDefer, &src).new_keys;
  }
  EXPECT_EQ(refused, 4);
  watch.Look(seg_->table, kNow + 2);
  const std::vector<std::string> alerts = watch.TakeAlerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_NE(alerts[0].find("refused 4 checks"), std::string::npos) << alerts[0];
  EXPECT_NE(alerts[0].find("new-key budget"), std::string::npos) << alerts[0];
}

}  // namespace
}  // namespace eg::sidecar
