// cwd_records_test.cpp - multi-line cwd= records (sidecar/cwd_records.h): a directory name
// holding newlines and a complete fake "<=" line of another mailbox is one record that never
// reaches the detectors, through CwdRecords alone and through an Engine with a real SQLite
// store; the record's bound; syslog fragments; the display escaping of the alert.

#include "cwd_records.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "engine.h"
#include "sidecar_test_util.h"

namespace eg::sidecar {
namespace {

const ParseOptions kUtc{.utc = true, .year = 0, .now = 0};

// The log lines are stamped two days ago (from the clock, never a fixed date).
const std::string& Day() {
  static const std::string day = testing::LocalDay(testing::DaysAgoAt(2, 10));
  return day;
}

std::string At(int second) {
  char ts[32];
  std::snprintf(ts, sizeof ts, "%s 10:00:%02d", Day().c_str(), second);
  return ts;
}

std::string Recipients(int n) {
  std::string s = " for";
  for (int i = 0; i < n; ++i) s += " r" + std::to_string(i) + "@far.example";
  return s;
}

// The fake line a customer puts into a directory name: another mailbox's local arrival with
// ten recipients (no '/': a directory name cannot hold one).
std::string FakeArrival() {
  return At(1) + " 1tFAKE-100001-AB <= victim@victim.example U=victim P=local S=300 T=\"x\"" +
         Recipients(10);
}

// What Exim 4.96 writes for `sendmail -t -i` run from "/home/egtest/public_html/x\n<fake>\n"
// under +arguments (exim.c: "cwd=%s" raw, then " %d args:" and the arguments), as physical lines.
std::vector<std::string> ForgedRecord() {
  return {At(1) + " [4242] cwd=/home/egtest/public_html/x", FakeArrival(),
          " 3 args: /usr/sbin/sendmail -t -i"};
}

// The attacker's own message, which Exim logs right after.
std::string RealArrival(int n) {
  return At(1) + " [4242] 1tREAL-100002-AB <= egtest@host.example U=egtest P=local S=350 T=\"hi\"" +
         Recipients(n);
}

struct Fed {
  std::vector<bool> swallowed;
  std::vector<ForgeryAlert> alerts;
};

Fed FeedAll(CwdRecords& records, const std::vector<std::string>& lines) {
  Fed out;
  for (const std::string& line : lines) {
    const LogEvent e = ParseEximLine(line, kUtc);
    std::optional<ForgeryAlert> alert;
    out.swallowed.push_back(records.Swallow(e, line, &alert));
    if (alert) out.alerts.push_back(*alert);
  }
  return out;
}

TEST(CwdRecords, TheFakeArrivalParsesAsOneOnItsOwn) {
  // The attack works because the fake line is a perfect line: without the record it counts.
  const std::string fake = FakeArrival();  // the event's fields are views into it
  const LogEvent e = ParseEximLine(fake, kUtc);
  EXPECT_EQ(e.kind, LineKind::kArrival);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.sender, "victim@victim.example");
  EXPECT_EQ(e.recipients.size(), 10u);
  // And the record's first line has no tail: the parser says so.
  const std::vector<std::string> record = ForgedRecord();
  const LogEvent first = ParseEximLine(record[0], kUtc);
  EXPECT_EQ(first.kind, LineKind::kCwdArgs);
  EXPECT_TRUE(first.counted_as_unknown);
  EXPECT_EQ(first.cwd, "/home/egtest/public_html/x");
}

TEST(CwdRecords, AForgedRecordIsSwallowedWholeAndRaisesOneAlert) {
  CwdRecords records;
  std::vector<std::string> lines = ForgedRecord();
  lines.push_back(RealArrival(2));
  const Fed fed = FeedAll(records, lines);
  EXPECT_EQ(fed.swallowed, (std::vector<bool>{true, true, true, false}));
  ASSERT_EQ(fed.alerts.size(), 1u);
  const ForgeryAlert& a = fed.alerts[0];
  EXPECT_EQ(a.pid, 4242u);
  EXPECT_EQ(a.time, ParseEximLine(lines[0], kUtc).time);
  EXPECT_EQ(a.lines, 3u);
  EXPECT_EQ(a.bytes, lines[0].size() + 1 + lines[1].size() + 1 + lines[2].size() + 1);
  EXPECT_FALSE(a.bounded);
  // The directory's first bytes, its newline shown as \n.
  EXPECT_EQ(a.cwd_preview.rfind("/home/egtest/public_html/x\\n" + At(1) + " 1tFAKE-", 0), 0u)
      << a.cwd_preview;
  EXPECT_FALSE(records.open());
  EXPECT_EQ(records.swallowed_lines(), 3u);
}

TEST(CwdRecords, CompleteAndOrdinaryLinesPassAndOpenNothing) {
  CwdRecords records;
  const Fed fed =
      FeedAll(records, {At(0) + " [7] cwd=/home/u/public_html 3 args: /usr/sbin/sendmail -t -i",
                        At(0) + " [7] cwd=/tmp/x 1 args: y 3 args: /usr/sbin/sendmail -t -i",
                        At(0) + " cwd= (failed) 2 args: sendmail -t", RealArrival(3),
                        At(0) + " 1tREAL-100002-AB Completed", "garbage"});
  EXPECT_EQ(fed.swallowed, std::vector<bool>(6, false));
  EXPECT_TRUE(fed.alerts.empty());
  EXPECT_FALSE(records.open());
}

TEST(CwdRecords, ATailAfterSeveralLinesClosesTheRecord) {
  CwdRecords records;
  const Fed fed = FeedAll(records, {At(0) + " [9] cwd=/home/u/a", "b", "",
                                    "c 4 args: x -t -i \"y z\"", RealArrival(1)});
  EXPECT_EQ(fed.swallowed, (std::vector<bool>{true, true, true, true, false}));
  ASSERT_EQ(fed.alerts.size(), 1u);
  EXPECT_EQ(fed.alerts[0].lines, 4u);
  EXPECT_EQ(fed.alerts[0].cwd_preview, "/home/u/a\\nb\\n\\nc 4 args: x -t -i \"y z\"");
}

TEST(CwdRecords, TheBoundClosesARecordWithoutTailAndTheRestIsReadNormally) {
  CwdRecords records(CwdRecords::Limits{.max_lines = 4, .max_bytes = 1 << 20});
  std::vector<std::string> lines = {
      At(0) + " [9] cwd=/home/u/a", "x", "y", "z", RealArrival(1), RealArrival(1)};
  const Fed fed = FeedAll(records, lines);
  // Four lines at most: the fifth is past the bound, so it is read (and closes the record).
  EXPECT_EQ(fed.swallowed, (std::vector<bool>{true, true, true, true, false, false}));
  ASSERT_EQ(fed.alerts.size(), 1u);
  EXPECT_TRUE(fed.alerts[0].bounded);
  EXPECT_EQ(fed.alerts[0].lines, 4u);

  CwdRecords by_bytes(CwdRecords::Limits{.max_lines = 100, .max_bytes = 64});
  const std::string first = At(0) + " cwd=/a";  // 26 + 1 bytes
  const Fed f2 = FeedAll(by_bytes, {first, std::string(30, 'x'), std::string(10, 'y'), "z"});
  EXPECT_EQ(f2.swallowed, (std::vector<bool>{true, true, false, false}));
  ASSERT_EQ(f2.alerts.size(), 1u);
  EXPECT_EQ(f2.alerts[0].bytes, first.size() + 1 + 31);
  EXPECT_LE(f2.alerts[0].bytes, 64u);
}

TEST(CwdRecords, ALinePastTheBoundMayOpenTheNextRecord) {
  CwdRecords records(CwdRecords::Limits{.max_lines = 2, .max_bytes = 1 << 20});
  const Fed fed =
      FeedAll(records, {At(0) + " cwd=/a", "x", At(0) + " cwd=/b", "1 args: y", " 1 args: y"});
  EXPECT_EQ(fed.swallowed, (std::vector<bool>{true, true, true, true, false}));
  ASSERT_EQ(fed.alerts.size(), 2u);
  EXPECT_TRUE(fed.alerts[0].bounded);
  EXPECT_TRUE(fed.alerts[1].bounded);  // "1 args: y" has no space before N: not a tail
}

TEST(CwdRecords, SyslogFragmentsNeverOpenARecord) {
  // Exim's syslog writer splits at the newline itself and numbers the pieces ("[1\3]").
  CwdRecords records;
  const Fed fed = FeedAll(
      records,
      {"Jan  2 10:00:01 host exim[4242]: [1\\3] " + At(1) + " cwd=/home/egtest/public_html/x",
       "Jan  2 10:00:01 host exim[4242]: [2\\3] " + FakeArrival(),
       "Jan  2 10:00:01 host exim[4242]: [3\\3]  3 args: /usr/sbin/sendmail -t"});
  EXPECT_EQ(fed.swallowed, std::vector<bool>(3, false));
  EXPECT_TRUE(fed.alerts.empty());
  // The pieces after the first are not classified (log_line.h), so nothing is forged either.
  EXPECT_EQ(ParseEximLine("Jan  2 10:00:01 host exim[4242]: [2\\3] " + FakeArrival(), kUtc).kind,
            LineKind::kOther);
}

TEST(CwdRecords, EscapeForDisplay) {
  EXPECT_EQ(EscapeForDisplay("a\nb\tc\\d\x01\xff", 100), "a\\nb\\tc\\\\d\\x01\\xff");
  EXPECT_EQ(EscapeForDisplay("abcdef", 3), "abc...");
  EXPECT_EQ(EscapeForDisplay("", 3), "");
}

// ---- Through the Engine, with a real state store ----------------------------------------------

class ForgedCwdEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    store_ = StateStore::Open(dir_.File("state"), &error);
    ASSERT_TRUE(store_) << error;
    config_.local_domains_file.clear();
  }
  Engine Make() {
    EngineHooks h;
    h.store = store_.get();
    h.republish = [](std::string*) { return true; };
    return Engine(config_, DetectorSettingsFromConfig(config_, {}, {}), h);
  }
  static std::vector<std::string> Keys(const std::vector<HandledIncident>& handled) {
    std::vector<std::string> keys;
    for (const HandledIncident& h : handled) keys.push_back(h.incident.key);
    return keys;
  }
  static bool AnyKeyHas(const std::vector<HandledIncident>& handled, const std::string& part) {
    for (const HandledIncident& h : handled) {
      if (h.incident.key.find(part) != std::string::npos) return true;
    }
    return false;
  }

  testing::TempDir dir_;
  std::unique_ptr<StateStore> store_;
  Config config_;
};

TEST_F(ForgedCwdEngineTest, WithoutTheRecordTheFakeLineWouldMakeAnIncidentForTheVictim) {
  // The control: the same fake line on its own is counted (so the next test can fail).
  Engine e = Make();
  e.Feed(FakeArrival(), LogSource::kExim);
  const std::vector<HandledIncident> h = e.Handle();
  EXPECT_TRUE(AnyKeyHas(h, "victim")) << ::testing::PrintToString(Keys(h));
}

TEST_F(ForgedCwdEngineTest, TheVictimGetsNoIncidentTheAttackerStillCountsAndOneAlertIsRaised) {
  Engine e = Make();
  for (const std::string& line : ForgedRecord()) e.Feed(line, LogSource::kExim);
  e.Feed(RealArrival(10), LogSource::kExim);  // the attacker's own message: 10 recipients
  const std::vector<HandledIncident> h = e.Handle();
  EXPECT_FALSE(AnyKeyHas(h, "victim")) << ::testing::PrintToString(Keys(h));
  EXPECT_TRUE(AnyKeyHas(h, "egtest")) << ::testing::PrintToString(Keys(h));
  EXPECT_EQ(e.stats().lines, 4u);
  EXPECT_EQ(e.stats().forged_lines, 3u);
  EXPECT_EQ(e.stats().unparsed, 0u);  // the swallowed lines are not "not understood" either
  const std::vector<ForgeryAlert> alerts = e.TakeForgeryAlerts();
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].pid, 4242u);
  EXPECT_EQ(alerts[0].lines, 3u);
  EXPECT_TRUE(e.TakeForgeryAlerts().empty());
  std::vector<StoredIncident> stored;
  std::string error;
  ASSERT_TRUE(store_->ListIncidents(0, 0, &stored, &error)) << error;
  for (const StoredIncident& s : stored) EXPECT_EQ(s.key.find("victim"), std::string::npos);
  EngineStats sum;
  sum += e.stats();
  sum += e.stats();
  EXPECT_EQ(sum.forged_lines, 6u);
}

TEST_F(ForgedCwdEngineTest, FeedParsedTakesTheSameRoute) {
  Engine e = Make();
  LogEvent ev;
  for (const std::string& line : ForgedRecord()) {
    ParseLogLine(line, LogSource::kExim, e.parse_options(), &ev);
    e.FeedParsed(ev, line);
  }
  EXPECT_EQ(e.stats().forged_lines, 3u);
  EXPECT_FALSE(AnyKeyHas(e.Handle(), "victim"));
  EXPECT_EQ(e.TakeForgeryAlerts().size(), 1u);
}

}  // namespace
}  // namespace eg::sidecar
