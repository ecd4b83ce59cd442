// top_test.cpp - the `top` report (sidecar/top.h): rows, limits, states, order, formatting.

#include "top.h"

#include <gtest/gtest.h>

#include <ctime>
#include <string>

#include "config.h"
#include "policy_from_config.h"
#include "segment.h"
#include "sidecar_test_util.h"

namespace eg::sidecar {
namespace {

TEST(TopKeys, EscapeKeepsPrintableAsciiAndEscapesEverythingElse) {
  EXPECT_EQ(EscapeKey("user@example.com"), "user@example.com");
  EXPECT_EQ(EscapeKey("a b"), "a b");
  EXPECT_EQ(EscapeKey("a\\b"), "a\\\\b");
  EXPECT_EQ(EscapeKey("\x1b[2Jx"), "\\x1b[2Jx");
  EXPECT_EQ(EscapeKey(std::string("a\0b\n\x7f", 5)), "a\\x00b\\n\\x7f");
  EXPECT_EQ(EscapeKey("j\xc3\xb6rg"), "j\\xc3\\xb6rg");
}

TEST(TopKeys, DisplayCutsAtEscapeBoundariesAndMarksTheCut) {
  EXPECT_EQ(DisplayKey("short", 10), "short");
  EXPECT_EQ(DisplayKey("exactly10!", 10), "exactly10!");
  EXPECT_EQ(DisplayKey("eleven-char", 10), "ele...char");  // shortened in the middle
  EXPECT_EQ(DisplayKey("/home/shop/public_html/wp-content/plugins/evil-mailer", 30),
            "/home/shop/pu...ns/evil-mailer");
  // "abcd\x01..." escapes to "abcd\x01..."; 7 characters of room cannot hold "abcd\x01".
  EXPECT_EQ(DisplayKey("abcd\x01zzzzzz", 10), "abc...zzzz");
  EXPECT_EQ(DisplayKey("abcdefgh\x01", 12), "abcdefgh\\x01");
  EXPECT_EQ(DisplayKey(std::string(200, 'k'), kKeyWidth),
            std::string(22, 'k') + "..." + std::string(23, 'k'));
  EXPECT_EQ(DisplayKey("\x01\x02\x03\x04", 10), "...\\x04");  // an escape is never cut
}

TopReport SampleReport() {
  TopReport r;
  r.segment = "/eximguard";
  r.generation = 7;
  r.verdicts[0] = 120;
  r.verdicts[1] = 3;
  r.verdicts[2] = 1;
  r.verdicts[3] = 2;
  r.fail_open = 4;
  r.evictions = 5;
  r.live_keys = 9;
  TopRow a;
  a.klass = KeyClass::kSender;
  a.key = "bulk@example.com";
  a.minute = 8;
  a.minute_limit = 8;
  a.hour = 95;
  a.hour_limit = 100;
  a.refused = 3;
  a.last_seen = 1700000000;
  a.outcomes[0] = 60;  // delivered, failed, deferred: Exim's events through the guard
  a.outcomes[1] = 2;
  a.outcomes[2] = 1;
  TopRow b;
  b.klass = KeyClass::kCwd;
  b.key = "/home/u/public_html/\x1b";
  b.minute = 2;
  b.hour = 40;
  b.refused = 0;
  b.state = KeyState::kWhitelisted;
  b.last_seen = 1700000001;
  r.rows = {a, b};
  return r;
}

TEST(TopFormat, TextTable) {
  EXPECT_EQ(FormatTopText(SampleReport()),
            "shared memory /eximguard: policy generation 7, fail mode open; 9 live keys; calls: "
            "ok 120, defer 3, hold 1, deny 2; fail_open 4; evictions 5\n"
            "CLASS   KEY                       MINUTE    HOUR  REFUSED  STATE\n"
            "sender  bulk@example.com             8/8  95/100        3  -\n"
            "cwd     /home/u/public_html/\\x1b     2/-    40/-        0  whitelisted\n");
}

TEST(TopFormat, TextWithoutKeysAndInDryRun) {
  TopReport r;
  r.segment = "/x";
  r.dry_run = true;
  r.fail_defer = true;
  EXPECT_EQ(FormatTopText(r),
            "shared memory /x: policy generation 0 (DRY RUN), fail mode defer; 0 live keys; "
            "calls: ok 0, defer 0, hold 0, deny 0; fail_open 0; evictions 0\n"
            "(no key seen in the last hour)\n");
}

TEST(TopFormat, Json) {
  EXPECT_EQ(
      TopToJson(SampleReport()).dump(),
      R"({"segment":"/eximguard","generation":7,"dry_run":false,"fail_mode":"open",)"
      R"("live_keys":9,"stats":{"ok":120,"defer":3,"hold":1,"deny":2,"fail_open":4,)"
      R"("evictions":5,"new_key_refusals":0},"keys":[{"class":"sender","key":"bulk@example.com","minute":8,)"
      R"("minute_limit":8,"hour":95,"hour_limit":100,"refused":3,"delivered":60,"failed":2,)"
      R"("deferred":1,"state":"none",)"
      R"("last_seen":1700000000},{"class":"cwd","key":"/home/u/public_html/\\x1b",)"
      R"("minute":2,"minute_limit":null,"hour":40,"hour_limit":null,"refused":0,)"
      R"("delivered":0,"failed":0,"deferred":0,)"
      R"("state":"whitelisted","last_seen":1700000001}]})");
}

// BuildTop over a real table.
class TopOfTable : public ::testing::Test {
 protected:
  void SetUp() override {
    SegmentSpec spec;
    spec.name = name_.name;
    spec.capacity = 1024;
    spec.policy_capacity = 64;
    eg::SegmentOutcome outcome{};
    std::string error;
    seg_ = CreateSegment(spec, &outcome, &error);
    if (seg_) UnlockSegment(*seg_);
    ASSERT_TRUE(seg_) << error;
    ConfigResult config = ParseConfig(
        R"({"limits": {"sender": {"per_minute": 3, "per_hour": 50}, "cwd": {"per_minute": 0}},
            "overrides": {"news@example.com": {"per_minute": 10, "per_hour": 0}},
            "whitelist": ["postmaster@example.com"], "blocklist": ["uid:666"]})",
        "/t.json");
    ASSERT_TRUE(config.ok()) << ::testing::PrintToString(config.errors);
    ASSERT_TRUE(PublishPolicy(seg_->table, PolicyFromConfig(config.config), &error)) << error;
  }
  Verdict Send(KeyClass klass, const std::string& key, uint32_t count = 1) {
    const KeyRef ref{klass, key.data(), key.size()};
    return Check(seg_->table, &ref, 1, count, now_, Verdict::kDefer).verdict;
  }

  testing::ScopedSegmentName name_;
  std::unique_ptr<Segment> seg_;
  const uint32_t now_ = static_cast<uint32_t>(std::time(nullptr));
};

TEST_F(TopOfTable, RowsBusiestFirstWithLimitsAndStates) {
  for (int i = 0; i < 5; ++i) Send(KeyClass::kSender, "a@example.com");  // 3 ok, 2 refused
  EXPECT_EQ(Send(KeyClass::kSender, "news@example.com", 6), Verdict::kOk);
  EXPECT_EQ(Send(KeyClass::kSender, "postmaster@example.com", 4), Verdict::kOk);
  EXPECT_EQ(Send(KeyClass::kCwd, "/home/u/www", 4), Verdict::kOk);
  EXPECT_EQ(Send(KeyClass::kUid, "666"), Verdict::kDeny);  // denied, counted nowhere, but listed

  const TopReport r = BuildTop(seg_->table, name_.name, now_, 0);
  EXPECT_EQ(r.segment, name_.name);
  EXPECT_EQ(r.generation, 1u);
  EXPECT_EQ(r.verdicts[0], 6u);
  EXPECT_EQ(r.verdicts[1], 2u);
  EXPECT_EQ(r.verdicts[2], 0u);
  EXPECT_EQ(r.verdicts[3], 1u);
  EXPECT_EQ(r.fail_open, 0u);
  EXPECT_EQ(r.evictions, 0u);
  EXPECT_EQ(r.live_keys, 5u);
  ASSERT_EQ(r.rows.size(), 5u);

  // news 6, then cwd and postmaster tie at 4 (class order: sender before cwd), then a@ 3.
  EXPECT_EQ(r.rows[0].key, "news@example.com");
  EXPECT_EQ(r.rows[0].minute, 6u);
  EXPECT_EQ(r.rows[0].hour, 6u);
  EXPECT_EQ(r.rows[0].minute_limit, 10u);
  EXPECT_EQ(r.rows[0].hour_limit, kUnlimited);
  EXPECT_EQ(r.rows[0].state, KeyState::kOverride);

  EXPECT_EQ(r.rows[1].key, "postmaster@example.com");
  EXPECT_EQ(r.rows[1].klass, KeyClass::kSender);
  EXPECT_EQ(r.rows[1].hour, 4u);
  EXPECT_EQ(r.rows[1].minute_limit, kUnlimited);
  EXPECT_EQ(r.rows[1].hour_limit, kUnlimited);
  EXPECT_EQ(r.rows[1].state, KeyState::kWhitelisted);

  EXPECT_EQ(r.rows[2].key, "/home/u/www");
  EXPECT_EQ(r.rows[2].klass, KeyClass::kCwd);
  EXPECT_EQ(r.rows[2].minute, 4u);
  EXPECT_EQ(r.rows[2].minute_limit, kUnlimited);  // limits.cwd.per_minute 0
  EXPECT_EQ(r.rows[2].hour_limit, 60u);
  EXPECT_EQ(r.rows[2].state, KeyState::kNone);

  EXPECT_EQ(r.rows[3].key, "a@example.com");
  EXPECT_EQ(r.rows[3].minute, 3u);
  EXPECT_EQ(r.rows[3].hour, 3u);
  EXPECT_EQ(r.rows[3].refused, 2u);
  EXPECT_EQ(r.rows[3].minute_limit, 3u);
  EXPECT_EQ(r.rows[3].hour_limit, 50u);
  EXPECT_EQ(r.rows[3].last_seen, now_);

  EXPECT_EQ(r.rows[4].key, "666");
  EXPECT_EQ(r.rows[4].klass, KeyClass::kUid);
  EXPECT_EQ(r.rows[4].minute, 0u);
  EXPECT_EQ(r.rows[4].refused, 1u);
  EXPECT_EQ(r.rows[4].state, KeyState::kBlocked);

  const TopReport two = BuildTop(seg_->table, name_.name, now_, 2);
  EXPECT_EQ(two.live_keys, 5u);
  ASSERT_EQ(two.rows.size(), 2u);
  EXPECT_EQ(two.rows[1].key, "postmaster@example.com");
}

TEST_F(TopOfTable, BlockedAfterCountingShowsBlocked) {
  EXPECT_EQ(Send(KeyClass::kSender, "later@example.com", 2), Verdict::kOk);
  Policy p = LivePolicyHead(seg_->table);
  p.rules.push_back({KeyClass::kSender, "LATER@example.com", kFlagBlocked, {}});
  std::string error;
  ASSERT_TRUE(PublishPolicy(seg_->table, p, &error)) << error;
  EXPECT_EQ(Send(KeyClass::kSender, "later@example.com"), Verdict::kDeny);
  const TopReport r = BuildTop(seg_->table, name_.name, now_, 0);
  EXPECT_EQ(r.generation, 2u);
  ASSERT_EQ(r.rows.size(), 1u);
  EXPECT_EQ(r.rows[0].state, KeyState::kBlocked);
  EXPECT_EQ(r.rows[0].minute, 2u);
  EXPECT_EQ(r.rows[0].refused, 1u);  // refused outright, and the attempt is recorded
}

TEST_F(TopOfTable, KeysOlderThanAnHourAreLeftOut) {
  EXPECT_EQ(Send(KeyClass::kSender, "a@example.com"), Verdict::kOk);
  EXPECT_EQ(BuildTop(seg_->table, name_.name, now_ + 3600, 0).live_keys, 1u);
  EXPECT_EQ(BuildTop(seg_->table, name_.name, now_ + 3601, 0).live_keys, 0u);
}

}  // namespace
}  // namespace eg::sidecar
