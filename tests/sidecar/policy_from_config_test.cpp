// policy_from_config_test.cpp - the eg::Policy built from a config, and what the published
// policy then does to eg::Check.

#include "policy_from_config.h"

#include <gtest/gtest.h>

#include <ctime>
#include <string>

#include "config.h"
#include "segment.h"
#include "sidecar_test_util.h"

namespace eg::sidecar {
namespace {

Config Valid(const std::string& text) {
  ConfigResult r = ParseConfig(text, "/t.json");
  EXPECT_TRUE(r.ok()) << ::testing::PrintToString(r.errors);
  return r.config;
}

void ExpectRule(const PolicyRule& r, KeyClass klass, const std::string& key, uint64_t flags,
                uint32_t per_minute = 0, uint32_t per_hour = 0) {
  EXPECT_EQ(r.klass, klass) << key;
  EXPECT_EQ(r.key, key);
  EXPECT_EQ(r.flags, flags) << key;
  EXPECT_EQ(r.limit.per_minute, per_minute) << key;
  EXPECT_EQ(r.limit.per_hour, per_hour) << key;
}

TEST(PolicyFromConfig, DefaultsGiveClassLimitsAndNoRules) {
  const Policy p = PolicyFromConfig(Valid("{}"));
  EXPECT_EQ(p.class_limits[0].per_minute, 8u);
  EXPECT_EQ(p.class_limits[0].per_hour, 100u);
  EXPECT_EQ(p.class_limits[1].per_minute, 5u);
  EXPECT_EQ(p.class_limits[1].per_hour, 60u);
  EXPECT_EQ(p.class_limits[2].per_minute, 20u);
  EXPECT_EQ(p.class_limits[2].per_hour, 300u);
  EXPECT_FALSE(p.dry_run);
  EXPECT_FALSE(p.fail_defer);
  EXPECT_EQ(p.new_key_budget, 200u);
  EXPECT_EQ(PolicyFromConfig(Valid(R"({"new_key_budget": 0})")).new_key_budget, 0u);
  EXPECT_TRUE(p.rules.empty());
}

TEST(PolicyFromConfig, OverridesWhitelistAndBlocklistBecomeRulesInOrder) {
  const Policy p = PolicyFromConfig(Valid(R"({
    "dry_run": true, "fail_mode": "defer",
    "limits": {"sender": {"per_minute": 0, "per_hour": 40}, "cwd": {"per_hour": 0}},
    "overrides": {"newsletter@example.com": {"per_minute": 50, "per_hour": 5000},
                  "/home/a/www/": {"per_minute": 0},
                  "uid:1001": {"per_hour": 9}},
    "whitelist": ["postmaster@example.com", "/home/acct/public_html/newsletter", "uid:0"],
    "blocklist": ["sender:spam@example.com", "uid:666", "/tmp/"]})"));
  EXPECT_EQ(p.class_limits[0].per_minute, 0u);  // 0 stays 0: unlimited for eg::PublishPolicy
  EXPECT_EQ(p.class_limits[0].per_hour, 40u);
  EXPECT_EQ(p.class_limits[1].per_minute, 5u);
  EXPECT_EQ(p.class_limits[1].per_hour, 0u);
  EXPECT_TRUE(p.dry_run);
  EXPECT_TRUE(p.fail_defer);
  ASSERT_EQ(p.rules.size(), 9u);
  ExpectRule(p.rules[0], KeyClass::kSender, "newsletter@example.com", kFlagOverride, 50, 5000);
  ExpectRule(p.rules[1], KeyClass::kCwd, "/home/a/www", kFlagOverride, 0, 0);  // hour from cwd
  ExpectRule(p.rules[2], KeyClass::kUid, "1001", kFlagOverride, 20, 9);        // minute from uid
  ExpectRule(p.rules[3], KeyClass::kSender, "postmaster@example.com", kFlagWhitelist);
  ExpectRule(p.rules[4], KeyClass::kCwd, "/home/acct/public_html/newsletter", kFlagWhitelist);
  ExpectRule(p.rules[5], KeyClass::kUid, "0", kFlagWhitelist);
  ExpectRule(p.rules[6], KeyClass::kSender, "spam@example.com", kFlagBlocked);
  ExpectRule(p.rules[7], KeyClass::kUid, "666", kFlagBlocked);
  ExpectRule(p.rules[8], KeyClass::kCwd, "/tmp", kFlagBlocked);
}

// The published policy, exercised through eg::Check as eximguard.so does.
class PublishedPolicy : public ::testing::Test {
 protected:
  void Publish(const std::string& config_text) {
    SegmentSpec spec;
    spec.name = name_.name;
    spec.capacity = 1024;
    spec.policy_capacity = 64;
    eg::SegmentOutcome outcome{};
    std::string error;
    seg_ = CreateSegment(spec, &outcome, &error);
    if (seg_) UnlockSegment(*seg_);
    ASSERT_TRUE(seg_) << error;
    ASSERT_TRUE(PublishPolicy(seg_->table, PolicyFromConfig(Valid(config_text)), &error)) << error;
  }
  Verdict Send(KeyClass klass, const std::string& key, Verdict over = Verdict::kDefer) {
    const KeyRef ref{klass, key.data(), key.size()};
    return Check(seg_->table, &ref, 1, 1, now_, over).verdict;
  }
  // How many single-recipient checks pass before the first refusal (up to `tries`).
  int Admitted(KeyClass klass, const std::string& key, int tries) {
    for (int i = 0; i < tries; ++i) {
      if (Send(klass, key) != Verdict::kOk) return i;
    }
    return tries;
  }

  testing::ScopedSegmentName name_;
  std::unique_ptr<Segment> seg_;
  const uint32_t now_ = static_cast<uint32_t>(std::time(nullptr));
};

TEST_F(PublishedPolicy, ClassLimitsAndZeroMeansUnlimited) {
  Publish(R"({"limits": {"sender": {"per_minute": 3}, "cwd": {"per_minute": 0, "per_hour": 0},
                         "uid": {"per_minute": 0, "per_hour": 4}}})");
  EXPECT_EQ(Admitted(KeyClass::kSender, "a@example.com", 100), 3);
  EXPECT_EQ(Admitted(KeyClass::kCwd, "/home/u/www", 500), 500);
  EXPECT_EQ(Admitted(KeyClass::kUid, "1000", 100), 4);
  const Policy head = LivePolicyHead(seg_->table);
  EXPECT_EQ(head.class_limits[0].per_minute, 3u);
  EXPECT_EQ(head.class_limits[1].per_minute, 0u);
  EXPECT_EQ(head.class_limits[1].per_hour, 0u);
  EXPECT_EQ(head.class_limits[2].per_hour, 4u);
}

TEST_F(PublishedPolicy, OverrideWhitelistAndBlocklistApply) {
  Publish(R"({"limits": {"sender": {"per_minute": 2}, "cwd": {"per_minute": 2}},
              "overrides": {"Newsletter@Example.com": {"per_minute": 5},
                            "big@example.com": {"per_minute": 0}},
              "whitelist": ["postmaster@example.com", "/home/acct/public_html/newsletter/"],
              "blocklist": ["spam@example.com", "uid:666"]})");
  EXPECT_EQ(Admitted(KeyClass::kSender, "other@example.com", 50), 2);
  EXPECT_EQ(Admitted(KeyClass::kSender, "newsletter@example.com", 50), 5);
  EXPECT_EQ(Admitted(KeyClass::kSender, "big@example.com", 50), 50);
  EXPECT_EQ(Admitted(KeyClass::kSender, "POSTMASTER@example.com", 50), 50);
  EXPECT_EQ(Admitted(KeyClass::kCwd, "/home/acct/public_html/newsletter", 50), 50);
  EXPECT_EQ(Admitted(KeyClass::kCwd, "/home/acct/public_html", 50), 2);
  EXPECT_EQ(Send(KeyClass::kSender, "spam@example.com"), Verdict::kDeny);
  EXPECT_EQ(Send(KeyClass::kUid, "666", Verdict::kHold), Verdict::kDeny);
  EXPECT_EQ(Send(KeyClass::kUid, "667", Verdict::kHold), Verdict::kOk);
}

TEST_F(PublishedPolicy, DryRunAdmitsEverything) {
  Publish(R"({"dry_run": true, "limits": {"sender": {"per_minute": 1}},
              "blocklist": ["spam@example.com"]})");
  EXPECT_EQ(Admitted(KeyClass::kSender, "a@example.com", 10), 10);
  EXPECT_EQ(Send(KeyClass::kSender, "spam@example.com"), Verdict::kOk);
  EXPECT_TRUE(LivePolicyHead(seg_->table).dry_run);
}

}  // namespace
}  // namespace eg::sidecar
