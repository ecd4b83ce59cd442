// reset_marks_test.cpp - which log events a `reset` hides from the detectors (reset_marks.h).
#include "reset_marks.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

namespace eg::sidecar {
namespace {

constexpr int64_t kT = 1'800'000'000;

LogEvent Event(int64_t time) {
  LogEvent ev;
  ev.time = time;
  return ev;
}

TEST(ResetMarks, HidesOnlyOlderEventsOfTheResetKey) {
  ResetMarks m;
  m.keys[ResetMarkKey("sender", "a@x.example")] = kT;
  m.keys[ResetMarkKey("cwd", "/home/u/www")] = kT;
  m.keys[ResetMarkKey("uid", "bob")] = kT;
  m.keys[ResetMarkKey("ip", "203.0.113.9")] = kT;

  LogEvent ev = Event(kT - 1);
  ev.auth_id = "A@X.example";  // compared lowercased
  EXPECT_TRUE(ResetHides(m, ev));
  ev.time = kT;  // at or after the reset: judged
  EXPECT_FALSE(ResetHides(m, ev));

  ev = Event(kT - 5);
  ev.sender = "b@x.example";
  EXPECT_FALSE(ResetHides(m, ev));  // another account
  ev.sender = "a@x.example";
  EXPECT_TRUE(ResetHides(m, ev));  // the envelope sender counts too
  ev = Event(kT - 5);
  ev.cwd = "/home/u/www/";  // trailing '/' as the detectors drop it
  EXPECT_TRUE(ResetHides(m, ev));
  ev = Event(kT - 5);
  ev.user = "bob";
  EXPECT_TRUE(ResetHides(m, ev));
  ev = Event(kT - 5);
  ev.host_ip = "203.0.113.9";
  EXPECT_TRUE(ResetHides(m, ev));
  EXPECT_FALSE(ResetHides(ResetMarks{}, ev));
}

TEST(ResetMarks, AllHidesEveryOlderEvent) {
  ResetMarks m;
  m.all = kT;
  EXPECT_FALSE(m.empty());
  EXPECT_TRUE(ResetHides(m, Event(kT - 1)));
  EXPECT_FALSE(ResetHides(m, Event(kT + 1)));
}

TEST(ResetMarks, LoadsTheLatestResetPerKeyFromTheAuditTrail) {
  char tmpl[] = "/tmp/eg-reset-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string error;
  auto store = StateStore::Open(std::string(tmpl) + "/state", &error);
  ASSERT_TRUE(store) << error;
  ASSERT_TRUE(store->Audit({0, kT - 100, "cli:root", "reset", "sender a@x", ""}, &error));
  ASSERT_TRUE(store->Audit({0, kT - 50, "cli:root", "reset", "sender a@x", ""}, &error));
  ASSERT_TRUE(store->Audit({0, kT - 40, "cli:root", "block_add", "b@x", ""}, &error));
  ASSERT_TRUE(store->Audit({0, kT - 30, "telegram:1", "reset", "*", ""}, &error));
  ASSERT_TRUE(store->Audit(
      {0, kT - kResetHorizonSeconds - 10, "cli:root", "reset", "sender old@x", ""}, &error));
  ResetMarks m;
  ASSERT_TRUE(LoadResetMarks(*store, kT, &m, &error)) << error;
  EXPECT_EQ(m.keys.size(), 1u);
  EXPECT_EQ(m.keys[ResetMarkKey("sender", "a@x")], kT - 50);
  EXPECT_EQ(m.all, kT - 30);
  store.reset();
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace eg::sidecar
