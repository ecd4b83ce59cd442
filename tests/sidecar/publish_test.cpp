// publish_test.cpp - PublishFromStore() (publish.h) against a real shared table and a real
// state store: automatic blocks never overflow the policy table into a failure; the config's
// rules, the admins' blocks and the whitelist always go in first, the oldest automatic blocks
// are left out and reported; the `suspend` verb still publishes and warns.

#include <gtest/gtest.h>

#include <ctime>
#include <string>
#include <vector>

#include "config.h"
#include "publish.h"
#include "sidecar_test_util.h"
#include "state_store.h"

namespace eg::sidecar {
namespace {

using testing::CliResult;
using testing::RunCli;

class Publish : public testing::CliFixture {
 protected:
  void SetUp() override {
    WriteConfig({{"whitelist", {"vip@shop.test"}}});  // policy_capacity 64: 32 keys fit
    ConfigResult loaded = LoadConfig(config_path_);
    ASSERT_TRUE(loaded.ok()) << loaded.errors.front();
    config_ = loaded.config;
    std::string error;
    store_ = StateStore::Open(config_.state_dir, &error);
    ASSERT_TRUE(store_) << error;
  }
  void Block(const std::string& key, const std::string& by, int64_t since) {
    StoredBlock b;
    b.key = key;
    b.key_class = KeyClass::kSender;
    b.since = since;
    b.by = by;
    b.reason = "test";
    bool added = false;
    std::string error;
    ASSERT_TRUE(store_->AddBlock(b, &added, &error)) << error;
  }
  static std::string Spammer(int i) { return "s" + std::to_string(i) + "@shop.test"; }

  Config config_;
  std::unique_ptr<StateStore> store_;
};

TEST_F(Publish, AFullPolicyTableDropsTheOldestAutomaticBlocksNeverTheAdminsOrTheConfigs) {
  const int64_t t0 = std::time(nullptr) - 10000;
  Block("admin@shop.test", "cli:root", t0);  // the oldest of all, but an admin's
  for (int i = 0; i < 40; ++i) Block(Spammer(i), kAutomaticBy, t0 + i);
  {  // eximguard's own WHM step on a key: no table rule, never counted or dropped
    StoredBlock b;
    b.key = Spammer(0);
    b.kind = "hold_outgoing";
    b.since = t0 + 100;
    b.by = kAutomaticBy;
    bool added = false;
    std::string error;
    ASSERT_TRUE(store_->AddBlock(b, &added, &error)) << error;
  }

  PublishResult r;
  std::string error;
  const auto now = static_cast<uint32_t>(std::time(nullptr));
  ASSERT_TRUE(PublishFromStore(config_, *store_, now, &r, &error)) << error;
  // 32 keys fit: the whitelisted one, the admin's block, and the 30 newest automatic blocks.
  ASSERT_EQ(r.dropped.size(), 10u);
  for (const StoredBlock& b : r.dropped) EXPECT_EQ(b.by, kAutomaticBy);
  EXPECT_EQ(r.dropped.back().key, Spammer(0));
  const std::string text = DroppedText(config_, r);
  EXPECT_NE(text.find("10 automatic blocks are NOT enforced"), std::string::npos) << text;
  EXPECT_NE(text.find("policy_capacity 64"), std::string::npos) << text;

  auto seg = Open();
  ASSERT_TRUE(seg);
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "admin@shop.test", 1, now), Verdict::kDeny);
  EXPECT_EQ(Send(*seg, KeyClass::kSender, Spammer(39), 1, now), Verdict::kDeny);
  EXPECT_EQ(Send(*seg, KeyClass::kSender, Spammer(10), 1, now), Verdict::kDeny);
  EXPECT_EQ(Send(*seg, KeyClass::kSender, Spammer(9), 1, now), Verdict::kOk);  // dropped
  for (int i = 0; i < 20; ++i) {  // the config's whitelist is still in force
    ASSERT_EQ(Send(*seg, KeyClass::kSender, "vip@shop.test", 1, now), Verdict::kOk) << i;
  }

  // An admin's verb still publishes (its own block goes in) and says what is left out.
  const CliResult c = RunCli({"suspend", "late@shop.test", "--config", config_path_});
  ASSERT_EQ(c.exit_code, 0) << c.err;
  EXPECT_NE(c.err.find("WARNING: 11 automatic blocks are NOT enforced"), std::string::npos)
      << c.err;
  EXPECT_EQ(Send(*seg, KeyClass::kSender, "late@shop.test", 1, now), Verdict::kDeny);
}

TEST_F(Publish, NothingIsDroppedWhenItFits) {
  const int64_t t0 = std::time(nullptr) - 100;
  for (int i = 0; i < 5; ++i) Block(Spammer(i), kAutomaticBy, t0 + i);
  PublishResult r;
  std::string error;
  ASSERT_TRUE(
      PublishFromStore(config_, *store_, static_cast<uint32_t>(std::time(nullptr)), &r, &error))
      << error;
  EXPECT_TRUE(r.dropped.empty());
  EXPECT_EQ(DroppedText(config_, r), "");
  EXPECT_EQ(r.rules, 6u);
}

}  // namespace
}  // namespace eg::sidecar
