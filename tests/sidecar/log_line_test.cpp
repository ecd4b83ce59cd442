// log_line_test.cpp - the log-line parser (sidecar/log_line.h): every Exim line kind the
// sidecar uses, both message-id formats, with and without [pid], syslog prefixes, millisecond
// and zone timestamps, Dovecot logins and auth failures, 10 000 recipients and 64 KB lines, and
// every prefix of every sample line (truncated lines must parse partially or as unknown, with
// every view inside the line).
//
// The sample lines follow real ones: Exim's test suite (test/log/*), the Exim spec's chapter
// "Log files", eximstats' sample, and an Exim 4.96 run of tests/e2e. Times are checked in UTC
// (ParseOptions::utc) except in the one test of the local-timezone conversion.

#include "log_line.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace eg::sidecar {
namespace {

using std::string;
using std::string_view;

const ParseOptions kUtc{.utc = true, .year = 0, .now = 0};

// 2026-01-02 03:04:05 UTC and friends (calendar.timegm).
constexpr int64_t k20260102_030405 = 1767323045;
constexpr int64_t k20261122_080014 = 1795334414;
constexpr int64_t k19990302_094433 = 920367873;
constexpr int64_t k20200512_173141 = 1589304701;
constexpr int64_t k20261122_030405 = 1795316645;
constexpr int64_t k20251122_030405 = 1763780645;

LogEvent Exim(string_view line) {
  return ParseEximLine(line, kUtc);
}
LogEvent Dovecot(string_view line) {
  return ParseDovecotLine(line, kUtc);
}

std::vector<string_view> Views(const LogEvent& e) {
  std::vector<string_view> v = {e.flag,      e.message_id, e.sender,   e.recipient, e.original,
                                e.auth,      e.auth_id,    e.user,     e.host_name, e.helo,
                                e.host_ip,   e.local_ip,   e.protocol, e.subject,   e.router,
                                e.transport, e.cwd,        e.args,     e.error,     e.key_class,
                                e.key,       e.per,        e.text,     e.session,   e.secret};
  v.insert(v.end(), e.recipients.begin(), e.recipients.end());
  return v;
}

// Every non-empty view lies inside `line`.
::testing::AssertionResult InsideLine(const LogEvent& e, string_view line) {
  for (const string_view v : Views(e)) {
    if (v.empty()) continue;
    if (v.data() < line.data() || v.data() + v.size() > line.data() + line.size()) {
      return ::testing::AssertionFailure() << "view '" << v << "' outside line '" << line << "'";
    }
  }
  for (const string_view r : e.recipients) {
    if (r.empty()) return ::testing::AssertionFailure() << "empty recipient in '" << line << "'";
  }
  return ::testing::AssertionSuccess();
}

std::vector<string> Strings(const std::vector<string_view>& views) {
  return std::vector<string>(views.begin(), views.end());
}

// ---- Frame: timestamps, pid, ids, syslog ---------------------------------------------------

TEST(LogLineFrame, PlainTimestampOldIdNoPid) {
  const string_view line = "2026-01-02 03:04:05 1xV13h-00017e-07 Completed";
  const LogEvent e = Exim(line);
  EXPECT_EQ(e.kind, LineKind::kCompleted);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.time, k20260102_030405);
  EXPECT_EQ(e.millis, 0);
  EXPECT_FALSE(e.zone_known);
  EXPECT_EQ(e.pid, 0u);
  EXPECT_EQ(e.message_id, "1xV13h-00017e-07");
  EXPECT_EQ(e.text, "Completed");
}

TEST(LogLineFrame, NewIdFormatWithPidAndMillisec) {
  const LogEvent e = Exim("2026-11-22 08:00:14.537 [24145] 10HmaX-000000005vi-0000 Completed");
  EXPECT_EQ(e.kind, LineKind::kCompleted);
  EXPECT_EQ(e.time, k20261122_080014);
  EXPECT_EQ(e.millis, 537);
  EXPECT_EQ(e.pid, 24145u);
  EXPECT_EQ(e.message_id, "10HmaX-000000005vi-0000");
}

TEST(LogLineFrame, LogTimezoneOffsetIsApplied) {
  // log_timezone: "2003-04-25 11:17:07 +0100"; with millisec the zone follows ".mmm".
  LogEvent e = Exim("2026-01-02 04:04:05 +0100 [7] 1xV13h-00017e-07 Completed");
  EXPECT_TRUE(e.zone_known);
  EXPECT_EQ(e.time, k20260102_030405);
  EXPECT_EQ(e.pid, 7u);
  EXPECT_EQ(e.kind, LineKind::kCompleted);
  e = Exim("2026-01-01 23:34:05.250 -0330 1xV13h-00017e-07 Completed");
  EXPECT_TRUE(e.zone_known);
  EXPECT_EQ(e.time, k20260102_030405);
  EXPECT_EQ(e.millis, 250);
  // Zone is honoured even when the caller asks for local time.
  e = ParseEximLine("2026-01-02 04:04:05 +0100 1xV13h-00017e-07 Completed");
  EXPECT_EQ(e.time, k20260102_030405);
}

TEST(LogLineFrame, SyslogPrefixGivesPidFromTagAndTimeFromExim) {
  const string_view line =
      "Nov 22 03:04:05 mail exim[123]: 2026-01-02 03:04:05 1xV13h-00017e-07 Completed";
  const LogEvent e = Exim(line);
  EXPECT_EQ(e.kind, LineKind::kCompleted);
  EXPECT_EQ(e.time, k20260102_030405);  // Exim's own stamp (it has the year) wins
  EXPECT_EQ(e.pid, 123u);
  EXPECT_EQ(e.message_id, "1xV13h-00017e-07");
  EXPECT_FALSE(e.fragment);
}

TEST(LogLineFrame, EximPidWinsOverSyslogPid) {
  const LogEvent e =
      Exim("Nov 22 03:04:05 mail exim4[123]: 2026-01-02 03:04:05 [456] 1xV13h-00017e-07 Completed");
  EXPECT_EQ(e.pid, 456u);
}

TEST(LogLineFrame, SyslogWithoutEximTimestampUsesTheSyslogTimeAndYear) {
  // syslog_timestamp = false: Exim's stamp is left out; the year comes from the options.
  ParseOptions o = kUtc;
  o.year = 2026;
  LogEvent e = ParseEximLine("Nov 22 03:04:05 mail exim[99]: 1xV13h-00017e-07 Completed", o);
  EXPECT_EQ(e.kind, LineKind::kCompleted);
  EXPECT_EQ(e.time, k20261122_030405);
  EXPECT_EQ(e.pid, 99u);
  // Space-padded day.
  e = ParseEximLine("Jan  2 03:04:05 mail exim[99]: 1xV13h-00017e-07 Completed", o);
  EXPECT_EQ(e.time, k20260102_030405);
  // Without a year: the latest year that is not more than a day ahead of `now`.
  o.year = 0;
  o.now = k20260102_030405;  // early January: "Nov 22" is last year's
  e = ParseEximLine("Nov 22 03:04:05 mail exim[99]: 1xV13h-00017e-07 Completed", o);
  EXPECT_EQ(e.time, k20251122_030405);
  o.now = k20261122_080014;
  e = ParseEximLine("Nov 22 03:04:05 mail exim[99]: 1xV13h-00017e-07 Completed", o);
  EXPECT_EQ(e.time, k20261122_030405);
}

TEST(LogLineFrame, SyslogLineOfAnotherProgramIsUnknown) {
  const LogEvent e = Exim("Nov 22 03:04:05 mail postfix/smtpd[5]: connect from x[1.2.3.4]");
  EXPECT_EQ(e.kind, LineKind::kUnknown);
  EXPECT_TRUE(e.counted_as_unknown);
}

TEST(LogLineFrame, Rfc3339SyslogPrefix) {
  const LogEvent e = Exim(
      "2026-01-02T04:04:05.123456+01:00 mail exim[42]: 1xV13h-00017e-07 => a@b.example "
      "R=dnslookup T=remote_smtp H=mx.b.example [192.0.2.1]");
  EXPECT_EQ(e.kind, LineKind::kDelivery);
  EXPECT_EQ(e.time, k20260102_030405);
  EXPECT_TRUE(e.zone_known);
  EXPECT_EQ(e.millis, 123);
  EXPECT_EQ(e.pid, 42u);
  EXPECT_EQ(e.recipient, "a@b.example");
}

TEST(LogLineFrame, SyslogSplitMarkerSetsFragment) {
  LogEvent e = Exim(
      "Nov 22 03:04:05 mail exim[1]: [1/2] 2026-01-02 03:04:05 1xV13h-00017e-07 <= a@b.example "
      "U=u P=local S=10 for x@y.example");
  EXPECT_EQ(e.kind, LineKind::kArrival);
  EXPECT_TRUE(e.fragment);
  EXPECT_EQ(Strings(e.recipients), std::vector<string>{"x@y.example"});
  e = Exim("Nov 22 03:04:05 mail exim[1]: [2/2] Completed z@y.example w@y.example");
  EXPECT_EQ(e.kind, LineKind::kOther);  // the rest of a split line is not classified
  EXPECT_TRUE(e.fragment);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.text, "Completed z@y.example w@y.example");
  e = Exim("Nov 22 03:04:05 mail exim[1]: [1/1] 2026-01-02 03:04:05 1xV13h-00017e-07 Completed");
  EXPECT_EQ(e.kind, LineKind::kCompleted);
  EXPECT_FALSE(e.fragment);
}

TEST(LogLineFrame, BadTimestampsAreUnknown) {
  for (const string_view line : {
           "2026-13-02 03:04:05 1xV13h-00017e-07 Completed",
           "2026-01-02 24:04:05 1xV13h-00017e-07 Completed",
           "2026-01-02 03:04 1xV13h-00017e-07 Completed",
           "2026-01-02T03:04:05 1xV13h-00017e-07 Completed",
           "26-01-02 03:04:05 1xV13h-00017e-07 Completed",
           "",
           "Completed",
           "Foo 22 03:04:05 mail exim[1]: 1xV13h-00017e-07 Completed",
       }) {
    const LogEvent e = Exim(line);
    EXPECT_EQ(e.kind, LineKind::kUnknown) << line;
    EXPECT_TRUE(e.counted_as_unknown) << line;
  }
}

TEST(LogLineFrame, MalformedIdsAreNotIds) {
  for (const string_view line : {
           "2026-01-02 03:04:05 1xV13h-00017e-0 Completed",
           "2026-01-02 03:04:05 1xV13h-00017e-070 Completed",
           "2026-01-02 03:04:05 10HmaX-000000005vi-000 Completed",
           "2026-01-02 03:04:05 1xV1_h-00017e-07 Completed",
       }) {
    const LogEvent e = Exim(line);
    EXPECT_TRUE(e.message_id.empty()) << line;
    EXPECT_EQ(e.kind, LineKind::kOther) << line;
  }
}

TEST(LogLineFrame, OtherEximLinesAreOtherAndNotCountedAsUnknown) {
  const LogEvent e = Exim("2026-01-02 03:04:05 Start queue run: pid=12762");
  EXPECT_EQ(e.kind, LineKind::kOther);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.text, "Start queue run: pid=12762");
  EXPECT_EQ(e.time, k20260102_030405);
}

TEST(LogLineFrame, TrailingNewlineIsIgnored) {
  const LogEvent e = Exim("2026-01-02 03:04:05 1xV13h-00017e-07 Completed\r\n");
  EXPECT_EQ(e.kind, LineKind::kCompleted);
  EXPECT_EQ(e.text, "Completed");
}

TEST(LogLineFrame, LocalTimezoneIsThisProcesssTz) {
  // A POSIX TZ rule (no tzdata needed): CET, CEST in summer. A July hour no other test parses
  // in local mode, so the per-hour offset cache cannot hold an older answer.
  const char* old = std::getenv("TZ");
  const string saved = old ? old : "";
  setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
  tzset();
  const LogEvent summer = ParseEximLine("2026-07-15 14:00:00 1xV13h-00017e-07 Completed");
  const LogEvent winter = ParseEximLine("2026-01-15 14:00:00 1xV13h-00017e-07 Completed");
  if (old) {
    setenv("TZ", saved.c_str(), 1);
  } else {
    unsetenv("TZ");
  }
  tzset();
  EXPECT_EQ(summer.time, 1784124000 - 2 * 3600);  // 2026-07-15 14:00 UTC minus CEST
  EXPECT_EQ(winter.time, 1768485600 - 1 * 3600);  // 2026-01-15 14:00 UTC minus CET
  EXPECT_FALSE(summer.zone_known);
}

// ---- Arrivals ------------------------------------------------------------------------------

TEST(LogLineArrival, SmtpAuthenticatedArrivalWithEveryField) {
  const string_view line =
      R"(2026-01-02 03:04:05 1xV13h-00017e-07 <= sender@example.com H=mail.client.net )"
      R"((helo.client.net) [203.0.113.5]:52144 I=[192.0.2.10]:587 P=esmtpsa )"
      R"(X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=no A=dovecot_login:user@example.com S=1234 )"
      R"(id=abc.123@client.net T="Monthly report" for a@x.org b@y.org c@z.org)";
  const LogEvent e = Exim(line);
  EXPECT_EQ(e.kind, LineKind::kArrival);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.flag, "<=");
  EXPECT_EQ(e.message_id, "1xV13h-00017e-07");
  EXPECT_EQ(e.sender, "sender@example.com");
  EXPECT_EQ(e.host_name, "mail.client.net");
  EXPECT_EQ(e.helo, "helo.client.net");
  EXPECT_EQ(e.host_ip, "203.0.113.5");
  EXPECT_EQ(e.host_port, 52144);
  EXPECT_EQ(e.protocol, "esmtpsa");
  EXPECT_EQ(e.auth, "dovecot_login");
  EXPECT_EQ(e.auth_id, "user@example.com");
  EXPECT_EQ(e.size, 1234u);
  EXPECT_EQ(e.subject, "Monthly report");
  EXPECT_EQ(Strings(e.recipients), (std::vector<string>{"a@x.org", "b@y.org", "c@z.org"}));
  EXPECT_TRUE(e.user.empty());
  EXPECT_FALSE(e.truncated);
  EXPECT_TRUE(InsideLine(e, line));
}

TEST(LogLineArrival, LocalSubmissionFromEximRun) {
  // Exim 4.96 (tests/e2e): +pid +millisec +received_sender +received_recipients +subject.
  const string_view line =
      R"(2026-11-22 08:00:14.542 [24145] 1xV2Ug-0006HR-1j <= egtest@eximguard-test.example )"
      R"(U=egtest P=local S=388 M8S=0 RT=0.001s id*=E1xV2Ug-0006HR-1j@eximguard-test.example )"
      R"(T="e2e local 0" from <egtest@eximguard-test.example> for friend0@remote.example)";
  const LogEvent e = Exim(line);
  EXPECT_EQ(e.kind, LineKind::kArrival);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.pid, 24145u);
  EXPECT_EQ(e.millis, 542);
  EXPECT_EQ(e.message_id, "1xV2Ug-0006HR-1j");
  EXPECT_EQ(e.sender, "egtest@eximguard-test.example");
  EXPECT_EQ(e.user, "egtest");
  EXPECT_EQ(e.protocol, "local");
  EXPECT_EQ(e.size, 388u);
  EXPECT_EQ(e.subject, "e2e local 0");
  EXPECT_TRUE(e.host_ip.empty());
  EXPECT_TRUE(e.auth.empty());
  EXPECT_EQ(Strings(e.recipients), std::vector<string>{"friend0@remote.example"});
}

TEST(LogLineArrival, NewIdFormatAndBareHost) {
  const LogEvent e = Exim(
      "2026-01-02 03:04:05 10HmaX-000000005vi-0000 <= a@b.example H=[2001:db8::5]:25 P=esmtp "
      "S=99");
  EXPECT_EQ(e.kind, LineKind::kArrival);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.message_id, "10HmaX-000000005vi-0000");
  EXPECT_TRUE(e.host_name.empty());
  EXPECT_TRUE(e.helo.empty());
  EXPECT_EQ(e.host_ip, "2001:db8::5");
  EXPECT_EQ(e.host_port, 25);
  EXPECT_TRUE(e.recipients.empty());
}

TEST(LogLineArrival, HeloOnlyAndVerifiedNameOnly) {
  LogEvent e = Exim(
      "2026-01-02 03:04:05 1xV13h-00017e-07 <= a@b.example H=([10.21.32.43]) [192.168.8.34] "
      "P=esmtp S=1");
  EXPECT_TRUE(e.host_name.empty());
  EXPECT_EQ(e.helo, "[10.21.32.43]");
  EXPECT_EQ(e.host_ip, "192.168.8.34");
  EXPECT_EQ(e.host_port, 0);
  e = Exim(
      "2026-01-02 03:04:05 1xV13h-00017e-07 <= a@b.example DS H=mx.b.example [192.0.2.1] "
      "P=esmtps S=1");
  EXPECT_EQ(e.host_name, "mx.b.example");
  EXPECT_TRUE(e.helo.empty());
  EXPECT_EQ(e.host_ip, "192.0.2.1");
}

TEST(LogLineArrival, NullSenderBounceWithReference) {
  const LogEvent e = Exim(
      "2026-01-02 03:04:05 1xV13i-00017f-08 <= <> R=1xV13h-00017e-07 U=Debian-exim P=local "
      "S=1800 for sender@example.com");
  EXPECT_EQ(e.kind, LineKind::kArrival);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_TRUE(e.sender.empty());
  EXPECT_EQ(e.user, "Debian-exim");
  EXPECT_EQ(Strings(e.recipients), std::vector<string>{"sender@example.com"});
}

TEST(LogLineArrival, FakeRejectIsAnArrival) {
  const LogEvent e = Exim("2026-01-02 03:04:05 1xV13h-00017e-07 (= a@b.example U=u P=local S=5");
  EXPECT_EQ(e.kind, LineKind::kArrival);
  EXPECT_EQ(e.flag, "(=");
  EXPECT_EQ(e.sender, "a@b.example");
}

TEST(LogLineArrival, SubjectQuotesAndEscapesStayEscapedAndDoNotEndTheField) {
  // receive.c: '"' and '\' get a backslash, then non-printables become \n, \ooo, ...
  const string_view line =
      R"(2026-01-02 03:04:05 1xV13h-00017e-07 <= a@b.example U=u P=local S=5 )"
      R"(T="He said \"hi\" for x@evil.example S=9 \\ ok\n\303\251" for r@c.example)";
  const LogEvent e = Exim(line);
  EXPECT_EQ(e.kind, LineKind::kArrival);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.subject, R"(He said \"hi\" for x@evil.example S=9 \\ ok\n\303\251)");
  EXPECT_EQ(UnescapeExim(e.subject), "He said \"hi\" for x@evil.example S=9 \\ ok\n\xc3\xa9");
  EXPECT_EQ(e.size, 5u);
  EXPECT_EQ(Strings(e.recipients), std::vector<string>{"r@c.example"});
}

TEST(LogLineArrival, EmptySubjectAndSubjectEndingInBackslash) {
  LogEvent e = Exim(R"(2026-01-02 03:04:05 1xV13h-00017e-07 <= a@b U=u P=local S=5 T="" for r@c)");
  EXPECT_TRUE(e.subject.empty());
  EXPECT_EQ(Strings(e.recipients), std::vector<string>{"r@c"});
  e = Exim(R"(2026-01-02 03:04:05 1xV13h-00017e-07 <= a@b U=u P=local S=5 T="x\\" for r@c)");
  EXPECT_EQ(e.subject, R"(x\\)");
  EXPECT_EQ(UnescapeExim(e.subject), "x\\");
  EXPECT_EQ(Strings(e.recipients), std::vector<string>{"r@c"});
}

TEST(LogLineArrival, QuotedLocalPartsWithSpaces) {
  const string_view line =
      R"(2026-01-02 03:04:05 1xV13h-00017e-07 <= "john for doe"@x.example U=u P=local S=5 )"
      R"(id="a b"@c for "a b"@y.example c@z.example)";
  const LogEvent e = Exim(line);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.sender, R"("john for doe"@x.example)");
  EXPECT_EQ(Strings(e.recipients), (std::vector<string>{R"("a b"@y.example)", "c@z.example"}));
}

TEST(LogLineArrival, TruncatedRecipientListIsMarked) {
  const LogEvent e =
      Exim("2026-01-02 03:04:05 1xV13h-00017e-07 <= a@b U=u P=local S=5 for r1@c r2@c<trunc>");
  EXPECT_TRUE(e.truncated);
  EXPECT_EQ(Strings(e.recipients), (std::vector<string>{"r1@c", "r2@c"}));
}

// ---- Deliveries, bounces, deferrals --------------------------------------------------------

// smtp_in.c keeps spaces in the id (string_printing()), receive.c writes " A=%s:%s" unquoted,
// after add_host_info_for_log()'s H= U= P= and before PRDR PRX= K S=.
TEST(LogLineArrival, AnAuthenticatedIdWithSpacesCannotOverrideTheRealFields) {
  // Exim 4.96 (Debian), `exim -bs`, AUTH PLAIN as "evil P=local U=root".
  const LogEvent e = Exim(
      "2026-12-02 07:37:19.730 [11089] 1xYetz-0002sr-2H <= a@remote.example U=root "
      "P=local-esmtpa L- A=plain:evil P=local U=root S=310 M8S=0 RT=0.010s "
      "id*=E1xYetz-0002sr-2H@test.example T=\"hi\" from <a@remote.example> for b@far.example");
  EXPECT_EQ(e.kind, LineKind::kArrival);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.auth, "plain");
  EXPECT_EQ(e.auth_id, "evil P=local U=root");
  EXPECT_EQ(e.protocol, "local-esmtpa");
  EXPECT_EQ(e.user, "root");
  EXPECT_EQ(e.size, 310u);
  EXPECT_EQ(e.subject, "hi");
  EXPECT_EQ(Strings(e.recipients), std::vector<string>{"b@far.example"});
  EXPECT_TRUE(e.ambiguous);  // the id spells fields: whoever chose it tried to forge
}

TEST(LogLineArrival, AnIdRunsToEximsOwnSizeLessItsFlags) {
  const string head = "2026-01-02 03:04:05 1xV13h-00017e-07 <= u@d H=(pc) [192.0.2.1]:5 P=esmtpsa ";
  string line;  // the event's fields are views into it: it must outlive each check
  LogEvent e = Exim(line = head + "A=dovecot_login:u@d PRDR PRX=10.0.0.1 K S=900 for r@x");
  EXPECT_EQ(e.auth_id, "u@d");
  EXPECT_FALSE(e.ambiguous);
  EXPECT_EQ(e.size, 900u);
  e = Exim(line = head + "A=dovecot_login:John Smith S=900 for r@x");
  EXPECT_EQ(e.auth_id, "John Smith");
  EXPECT_FALSE(e.ambiguous);
  e = Exim(line = head + "A=dovecot_login:a for b c S=900 T=\"s\" for r@x");  // a fake recipient list
  EXPECT_EQ(e.auth_id, "a for b c");
  EXPECT_EQ(Strings(e.recipients), std::vector<string>{"r@x"});
  EXPECT_TRUE(e.ambiguous);
  // An id holding " S=<n>" ends there: the first of each field counts, and the line says so.
  e = Exim(line = head + "A=dovecot_login:evil S=1 P=local H=[6.6.6.6] S=900 for r@x");
  EXPECT_EQ(e.auth_id, "evil");
  EXPECT_EQ(e.size, 1u);
  EXPECT_EQ(e.protocol, "esmtpsa");
  EXPECT_EQ(e.host_ip, "192.0.2.1");
  EXPECT_TRUE(e.ambiguous);
  // Without an S= (a cut line) the id is one word.
  e = Exim(line = head + "A=dovecot_login:u@d X=TLS1.3");
  EXPECT_EQ(e.auth_id, "u@d");
  EXPECT_TRUE(e.counted_as_unknown);
}

TEST(LogLineArrival, RepeatedFieldsKeepTheFirstAndAreAmbiguous) {
  const LogEvent e = Exim(
      "2026-01-02 03:04:05 1xV13h-00017e-07 <= u@d H=(a) [192.0.2.1]:5 H=(b) [6.6.6.6]:5 "
      "P=esmtpa S=5 T=\"one\" T=\"two words\" for r@x");
  EXPECT_EQ(e.helo, "a");
  EXPECT_EQ(e.host_ip, "192.0.2.1");
  EXPECT_EQ(e.subject, "one");
  EXPECT_EQ(Strings(e.recipients), std::vector<string>{"r@x"});
  EXPECT_TRUE(e.ambiguous);
  EXPECT_FALSE(Exim("2026-01-02 03:04:05 1xV13h-00017e-07 <= u@d P=esmtpa S=5 for r@x").ambiguous);
}

TEST(LogLineDelivery, RemoteDelivery) {
  const string_view line =
      R"(2026-01-02 03:04:07 [99] 1xV13h-00017e-07 => a@x.org R=dnslookup T=remote_smtp )"
      R"(H=mx.x.org [198.51.100.7]:25 X=TLS1.3:TLS_AES_256_GCM_SHA384:256 CV=yes )"
      R"(C="250 2.0.0 Ok: queued as \"12345\" => x" QT=2s DT=1s)";
  const LogEvent e = Exim(line);
  EXPECT_EQ(e.kind, LineKind::kDelivery);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.flag, "=>");
  EXPECT_EQ(e.pid, 99u);
  EXPECT_EQ(e.recipient, "a@x.org");
  EXPECT_TRUE(e.original.empty());
  EXPECT_EQ(e.CountedRecipient(), "a@x.org");
  EXPECT_EQ(e.router, "dnslookup");
  EXPECT_EQ(e.transport, "remote_smtp");
  EXPECT_EQ(e.host_name, "mx.x.org");
  EXPECT_EQ(e.host_ip, "198.51.100.7");
  EXPECT_EQ(e.host_port, 25);
  EXPECT_TRUE(InsideLine(e, line));
}

TEST(LogLineDelivery, AdditionalAddressOnTheSameConnection) {
  const LogEvent e = Exim(
      "2026-01-02 03:04:07 1xV13h-00017e-07 -> b@x.org R=dnslookup T=remote_smtp "
      "H=mx.x.org [198.51.100.7]* C=\"250 OK\"");
  EXPECT_EQ(e.kind, LineKind::kDelivery);
  EXPECT_EQ(e.flag, "->");
  EXPECT_EQ(e.recipient, "b@x.org");
  EXPECT_EQ(e.host_ip, "198.51.100.7");
  EXPECT_FALSE(e.counted_as_unknown);
}

TEST(LogLineDelivery, LocalDeliveryWithOriginal) {
  const LogEvent e = Exim(
      "1999-03-02 09:44:33 10HmaX-000000005vi-0000 => userx <userx@test.ex> R=localuser "
      "T=local_delivery");
  EXPECT_EQ(e.kind, LineKind::kDelivery);
  EXPECT_EQ(e.time, k19990302_094433);
  EXPECT_EQ(e.recipient, "userx");
  EXPECT_EQ(e.original, "userx@test.ex");
  EXPECT_EQ(e.CountedRecipient(), "userx@test.ex");
  EXPECT_EQ(e.router, "localuser");
  EXPECT_EQ(e.transport, "local_delivery");
  EXPECT_TRUE(e.host_ip.empty());
}

TEST(LogLineDelivery, SenderReturnPathSizeAndDnssecHost) {
  const LogEvent e = Exim(
      "2026-01-02 03:04:07 1xV13h-00017e-07 => news@x.example F=<s@y.example> P=<s@y.example> "
      "R=dnslookup T=remote_smtp S=75389 H=mx.x.example DS [10.0.100.25]:587 CV=yes");
  EXPECT_EQ(e.sender, "s@y.example");
  EXPECT_EQ(e.size, 75389u);
  EXPECT_EQ(e.host_name, "mx.x.example");
  EXPECT_EQ(e.host_ip, "10.0.100.25");
  EXPECT_EQ(e.host_port, 587);
}

TEST(LogLineDelivery, PipeBlackholeCutthroughAndFake) {
  LogEvent e = Exim(
      "2026-01-02 03:04:07 1xV13h-00017e-07 => |/usr/bin/procmail (alias@x) <u@x.example> "
      "R=system_aliases T=address_pipe");
  EXPECT_EQ(e.recipient, "|/usr/bin/procmail");
  EXPECT_EQ(e.original, "u@x.example");
  EXPECT_EQ(e.transport, "address_pipe");
  e = Exim(
      "2026-01-02 03:04:07 1xV13h-00017e-07 => :blackhole: <hole@x.example> R=blackhole_router");
  EXPECT_EQ(e.recipient, ":blackhole:");
  EXPECT_EQ(e.original, "hole@x.example");
  EXPECT_EQ(e.router, "blackhole_router");
  e = Exim("2026-01-02 03:04:07 1xV13h-00017e-07 >> a@x.org R=dnslookup T=smtp H=m [1.2.3.4]");
  EXPECT_EQ(e.kind, LineKind::kDelivery);
  EXPECT_EQ(e.flag, ">>");
  e = Exim("2026-01-02 03:04:07 1xV13h-00017e-07 *> a@x.org R=dnslookup T=smtp");
  EXPECT_EQ(e.kind, LineKind::kDelivery);
  EXPECT_EQ(e.flag, "*>");
}

TEST(LogLineBounce, NewFormatSpaceColon) {
  const LogEvent e =
      Exim(R"(2026-01-02 03:04:07 1xV13h-00017e-07 ** userx@badbad.ex R=fail_remote_domains : )"
           R"(unrouteable mail domain "badbad.ex" (:fail:))");
  EXPECT_EQ(e.kind, LineKind::kBounce);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.flag, "**");
  EXPECT_EQ(e.recipient, "userx@badbad.ex");
  EXPECT_EQ(e.router, "fail_remote_domains");
  EXPECT_EQ(e.error, R"(unrouteable mail domain "badbad.ex" (:fail:))");
  const LogEvent f =
      Exim("2026-01-02 03:04:07 1xV13h-00017e-07 ** userx@bad.ex : Unrouteable address");
  EXPECT_EQ(f.recipient, "userx@bad.ex");
  EXPECT_EQ(f.error, "Unrouteable address");
  EXPECT_FALSE(f.counted_as_unknown);
}

TEST(LogLineBounce, OldFormatColonOnTheLastField) {
  LogEvent e = Exim(
      "2002-07-11 07:14:17 17SXDU-000189-00 ** ace400@pb.example R=dnslookup T=remote_smtp: SMTP "
      "error from remote mailer after pipelined RCPT TO:<ace400@pb.example>: host "
      "pbmail3.py.example [192.168.63.111]: 553 5.3.0 <ace400@pb.example>...Addressee unknown");
  EXPECT_EQ(e.kind, LineKind::kBounce);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.recipient, "ace400@pb.example");
  EXPECT_EQ(e.router, "dnslookup");
  EXPECT_EQ(e.transport, "remote_smtp");
  EXPECT_TRUE(e.host_ip.empty());
  EXPECT_EQ(e.error,
            "SMTP error from remote mailer after pipelined RCPT TO:<ace400@pb.example>: host "
            "pbmail3.py.example [192.168.63.111]: 553 5.3.0 <ace400@pb.example>...Addressee "
            "unknown");
  e = Exim(
      "1995-12-19 16:20:23 0tRiQz-0002Q5-00 ** jim@trek99.example <jim@trek99.example>: unknown "
      "mail domain");
  EXPECT_EQ(e.recipient, "jim@trek99.example");
  EXPECT_EQ(e.original, "jim@trek99.example");
  EXPECT_EQ(e.error, "unknown mail domain");
  e = Exim("2026-01-02 03:04:07 1xV13h-00017e-07 ** userx@bad.ex: Unrouteable address");
  EXPECT_EQ(e.recipient, "userx@bad.ex");
  EXPECT_EQ(e.error, "Unrouteable address");
  // deliver.c's other "**" lines have no colon at all.
  e = Exim(
      "1999-03-02 09:44:33 10HmbE-000000005vi-0000 ** file@x.y routing yielded a local delivery");
  EXPECT_EQ(e.recipient, "file@x.y");
  EXPECT_EQ(e.error, "routing yielded a local delivery");
  EXPECT_FALSE(e.counted_as_unknown);
}

TEST(LogLineBounce, HostBeforeTheError) {
  LogEvent e = Exim(
      "2026-01-02 03:04:07 1xV13h-00017e-07 ** a@b.example F=<s@y.example> R=dnslookup "
      "T=remote_smtp H=mx.b.example [192.0.2.1]: SMTP error from remote mail server after RCPT "
      "TO:<a@b.example>: 550 5.1.1 User unknown");
  EXPECT_EQ(e.host_ip, "192.0.2.1");
  EXPECT_EQ(e.sender, "s@y.example");
  EXPECT_EQ(e.error,
            "SMTP error from remote mail server after RCPT TO:<a@b.example>: 550 5.1.1 User "
            "unknown");
  e = Exim(
      "2026-01-02 03:04:07 1xV13h-00017e-07 ** a@b.example R=dnslookup T=remote_smtp "
      "H=mx.b.example [192.0.2.1]:25 X=TLS1.3:x:256 CV=yes : 550 5.1.1 User unknown");
  EXPECT_EQ(e.host_port, 25);
  EXPECT_EQ(e.error, "550 5.1.1 User unknown");
  EXPECT_FALSE(e.counted_as_unknown);
}

TEST(LogLineDeferral, TransportRoutingAndErrnoForms) {
  LogEvent e = Exim(
      "1999-03-02 09:44:33 10HmaX-0005vi-00 == userx@test.ex R=r1 T=smtp defer (-44): SMTP error "
      "from remote mail server after RCPT TO:<userx@test.ex>: host 127.0.0.1 [127.0.0.1]: 451 "
      "Recipient not OK");
  EXPECT_EQ(e.kind, LineKind::kDeferral);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.flag, "==");
  EXPECT_EQ(e.message_id, "10HmaX-0005vi-00");
  EXPECT_EQ(e.recipient, "userx@test.ex");
  EXPECT_EQ(e.router, "r1");
  EXPECT_EQ(e.transport, "smtp");
  EXPECT_EQ(e.error,
            "SMTP error from remote mail server after RCPT TO:<userx@test.ex>: host 127.0.0.1 "
            "[127.0.0.1]: 451 Recipient not OK");
  e = Exim(
      "2026-01-02 03:04:07 1xV13h-00017e-07 == xxx@local.test.ex routing defer (-56): domain is in "
      "queue_domains");
  EXPECT_EQ(e.recipient, "xxx@local.test.ex");
  EXPECT_TRUE(e.router.empty());
  EXPECT_EQ(e.error, "domain is in queue_domains");
  e = Exim(
      "2026-01-02 03:04:07 1xV13h-00017e-07 == marvin@endrest.example <m@x.example> R=dnslookup "
      "T=smtp defer (111): Connection refused");
  EXPECT_EQ(e.original, "m@x.example");
  EXPECT_EQ(e.error, "Connection refused");
  e = Exim("2026-01-02 03:04:07 1xV13h-00017e-07 == a@b.example R=r T=t defer (0)");
  EXPECT_TRUE(e.error.empty());
  EXPECT_FALSE(e.counted_as_unknown);
}

// ---- Completed, frozen -------------------------------------------------------------------------

TEST(LogLineCompleted, WithAndWithoutQueueTime) {
  LogEvent e = Exim("2026-01-02 03:04:07 10HmaX-000000005vi-0000 Completed QT=1.5s");
  EXPECT_EQ(e.kind, LineKind::kCompleted);
  EXPECT_FALSE(e.counted_as_unknown);
  e = Exim("2026-01-02 03:04:07 Completed");  // no id: malformed
  EXPECT_EQ(e.kind, LineKind::kCompleted);
  EXPECT_TRUE(e.counted_as_unknown);
}

TEST(LogLineFrozen, EveryFreezeForm) {
  struct Case {
    string_view line;
    string_view reason;
  };
  for (const Case& c : {
           Case{"2026-01-02 03:04:07 1xV13h-00017e-07 Frozen", ""},
           Case{"2026-01-02 03:04:07 1xV13h-00017e-07 Frozen (delivery error message)",
                "(delivery error message)"},
           Case{"2026-01-02 03:04:07 1xV13h-00017e-07 Frozen by the system filter: spam",
                "by the system filter: spam"},
           Case{"2026-11-22 08:00:14.621 [24148] 1xV2Ug-0006HU-1z frozen by ACL", "by ACL"},
           Case{"2026-01-02 03:04:07 1xV13h-00017e-07 frozen by root", "by root"},
           Case{"2026-01-02 03:04:07 1xV13h-00017e-07 *** Frozen (message created with -f <>)",
                "(message created with -f <>)"},
       }) {
    const LogEvent e = Exim(c.line);
    EXPECT_EQ(e.kind, LineKind::kFrozen) << c.line;
    EXPECT_FALSE(e.counted_as_unknown) << c.line;
    EXPECT_EQ(e.error, c.reason) << c.line;
  }
  // A queue run skipping a frozen message, and thawing, are not freezes.
  EXPECT_EQ(Exim("2026-01-02 03:04:07 1xV13h-00017e-07 Message is frozen").kind, LineKind::kOther);
  EXPECT_EQ(Exim("2026-01-02 03:04:07 1xV13h-00017e-07 unfrozen by root").kind, LineKind::kOther);
}

// ---- Rejections ----------------------------------------------------------------------------

TEST(LogLineRejected, RcptWithHostSenderAndAuth) {
  const string_view line =
      "2026-01-02 03:04:05 H=(helo.bad) [198.51.100.9]:41234 F=<spam@bad.example> "
      "A=dovecot_login:user@example.com rejected RCPT <victim@target.example>: 5.7.1 Sending "
      "blocked (sender user@example.com blocked)";
  const LogEvent e = Exim(line);
  EXPECT_EQ(e.kind, LineKind::kRejectedRcpt);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_TRUE(e.message_id.empty());
  EXPECT_EQ(e.helo, "helo.bad");
  EXPECT_EQ(e.host_ip, "198.51.100.9");
  EXPECT_EQ(e.host_port, 41234);
  EXPECT_EQ(e.sender, "spam@bad.example");
  EXPECT_EQ(e.auth, "dovecot_login");
  EXPECT_EQ(e.auth_id, "user@example.com");
  EXPECT_EQ(e.recipient, "victim@target.example");
  EXPECT_EQ(e.error, "5.7.1 Sending blocked (sender user@example.com blocked)");
}

TEST(LogLineRejected, TemporarilyRejected) {
  const LogEvent e =
      Exim(R"(1999-03-02 09:44:33 H=(test) [56.56.57.57] U=CALLER F=<userx@test.ex> temporarily )"
           R"(rejected RCPT <cond-rhubarb@test.ex>: invalid "condition" value "rhubarb")");
  EXPECT_EQ(e.kind, LineKind::kTempRejectedRcpt);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.user, "CALLER");
  EXPECT_EQ(e.sender, "userx@test.ex");
  EXPECT_EQ(e.recipient, "cond-rhubarb@test.ex");
  EXPECT_EQ(e.error, R"(invalid "condition" value "rhubarb")");
}

TEST(LogLineRejected, PidDnssecTlsFieldsAndNoMessage) {
  LogEvent e = Exim(
      "2026-01-02 03:04:05.001 [777] DS H=mail.x.example [1.2.3.4]:2525 X=TLS1.3:x:256 CV=no "
      "F=<> rejected RCPT <c@d.example> NOTIFY=NEVER: Unrouteable address");
  EXPECT_EQ(e.kind, LineKind::kRejectedRcpt);
  EXPECT_EQ(e.pid, 777u);
  EXPECT_EQ(e.host_name, "mail.x.example");
  EXPECT_TRUE(e.sender.empty());
  EXPECT_EQ(e.recipient, "c@d.example");
  EXPECT_EQ(e.error, "Unrouteable address");
  e = Exim("1999-03-02 09:44:33 U=CALLER F=<x@y> rejected RCPT <a@b>");
  EXPECT_EQ(e.kind, LineKind::kRejectedRcpt);
  EXPECT_EQ(e.recipient, "a@b");
  EXPECT_TRUE(e.error.empty());
  EXPECT_FALSE(e.counted_as_unknown);
}

TEST(LogLineRejected, ASenderThatSpellsOutARejectionCannotForgeOne) {
  const LogEvent e = Exim(
      R"(2026-01-02 03:04:05 H=(x) [192.0.2.7] F=<"y rejected RCPT <fake@f.example>: z"@s.example> )"
      R"(rejected RCPT <real@r.example>: no)");
  EXPECT_EQ(e.kind, LineKind::kRejectedRcpt);
  EXPECT_EQ(e.sender, R"("y rejected RCPT <fake@f.example>: z"@s.example)");
  EXPECT_EQ(e.recipient, "real@r.example");
  EXPECT_EQ(e.error, "no");
}

TEST(LogLineRejected, AnIdWithSpacesRunsToRejectedRcpt) {
  // smtp_in.c smtp_handle_acl_fail(): "F=<%s> A=%s:%s " then "[temporarily ]rejected RCPT".
  LogEvent e = Exim(
      "2026-01-02 03:04:05 H=(pc) [192.0.2.1]:5 F=<a@b> A=dovecot_login:a b F=<x@y> rejected "
      "RCPT <v@x>: denied");
  EXPECT_EQ(e.kind, LineKind::kRejectedRcpt);
  EXPECT_EQ(e.auth_id, "a b F=<x@y>");
  EXPECT_EQ(e.sender, "a@b");
  EXPECT_EQ(e.recipient, "v@x");
  EXPECT_EQ(e.error, "denied");
  EXPECT_TRUE(e.ambiguous);
  e = Exim(
      "2026-01-02 03:04:05 H=(pc) [192.0.2.1]:5 F=<a@b> A=plain:x y temporarily rejected RCPT "
      "<v@x>: later");
  EXPECT_EQ(e.kind, LineKind::kTempRejectedRcpt);
  EXPECT_EQ(e.auth_id, "x y");
  EXPECT_FALSE(e.ambiguous);
}

TEST(LogLineRejected, OtherRejectionsAreOther) {
  const LogEvent e =
      Exim(R"(2026-01-02 03:04:05 H=(x) [192.0.2.7] F=<"rejected RCPT <a@b>"@s> rejected MAIL )"
           R"(<"rejected RCPT <a@b>"@s>: no)");
  EXPECT_EQ(e.kind, LineKind::kOther);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_TRUE(e.sender.empty());
  EXPECT_TRUE(e.host_ip.empty());
}

// ---- Authenticator failures --------------------------------------------------------------------

TEST(LogLineAuthFailed, CpanelFormatBefore499) {
  const LogEvent e = Exim(
      "2026-01-02 03:04:05 dovecot_login authenticator failed for (User) [185.143.75.81]:28556: "
      "535 Incorrect authentication data (set_id=info@example.com)");
  EXPECT_EQ(e.kind, LineKind::kAuthFailed);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.auth, "dovecot_login");
  EXPECT_EQ(e.auth_id, "info@example.com");
  EXPECT_EQ(e.helo, "User");
  EXPECT_EQ(e.host_ip, "185.143.75.81");
  EXPECT_EQ(e.host_port, 28556);
  EXPECT_EQ(e.error, "535 Incorrect authentication data (set_id=info@example.com)");
}

TEST(LogLineAuthFailed, EximstatsSampleWithInterface) {
  const LogEvent e = Exim(
      "2020-05-12 17:31:41.630 [23229] auth_login authenticator failed for (User) "
      "[185.143.75.81]:28556 I=[192.168.56.110]:25: 535 Incorrect authentication data "
      "(set_id=dropped@foo.us)");
  EXPECT_EQ(e.kind, LineKind::kAuthFailed);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.time, k20200512_173141);
  EXPECT_EQ(e.millis, 630);
  EXPECT_EQ(e.pid, 23229u);
  EXPECT_EQ(e.auth, "auth_login");
  EXPECT_EQ(e.auth_id, "dropped@foo.us");
  EXPECT_EQ(e.host_ip, "185.143.75.81");
  EXPECT_EQ(e.error, "535 Incorrect authentication data (set_id=dropped@foo.us)");
}

TEST(LogLineAuthFailed, Exim499FormatWithHAndIdent) {
  LogEvent e = Exim(
      "1999-03-02 09:44:33 plain authenticator failed for H=(test.host) [10.0.0.1] U=CALLER: 535 "
      "Incorrect authentication data (set_id=eserx)");
  EXPECT_EQ(e.kind, LineKind::kAuthFailed);
  EXPECT_EQ(e.auth, "plain");
  EXPECT_EQ(e.auth_id, "eserx");
  EXPECT_EQ(e.helo, "test.host");
  EXPECT_EQ(e.host_ip, "10.0.0.1");
  EXPECT_EQ(e.user, "CALLER");
  EXPECT_EQ(e.error, "535 Incorrect authentication data (set_id=eserx)");
  e = Exim(
      "2026-01-02 03:04:05 dovecot_plain authenticator failed for H=host.example (helo) "
      "[2001:db8::1]:587: 535 Incorrect authentication data (set_id=a@b)");
  EXPECT_EQ(e.host_name, "host.example");
  EXPECT_EQ(e.host_ip, "2001:db8::1");
  EXPECT_EQ(e.host_port, 587);
  EXPECT_EQ(e.auth_id, "a@b");
}

TEST(LogLineAuthFailed, SetIdInTheMiddleOrAbsent) {
  LogEvent e = Exim(
      "1999-03-02 09:44:33 defer authenticator failed for H=(test.host) [10.0.0.1] U=CALLER: 435 "
      "Unable to authenticate at present (set_id=userx): account suspended");
  EXPECT_EQ(e.auth_id, "userx");
  e = Exim(
      "1999-03-02 09:44:33 login authenticator failed for H=(test.host) [10.0.0.1] U=CALLER: 501 "
      "Authentication cancelled");
  EXPECT_EQ(e.kind, LineKind::kAuthFailed);
  EXPECT_TRUE(e.auth_id.empty());
  EXPECT_EQ(e.error, "501 Authentication cancelled");
  EXPECT_FALSE(e.counted_as_unknown);
}

TEST(LogLineAuthFailed, SetIdWithSpacesAndParentheses) {
  // Exim 4.96 (Debian), `exim -bs`, AUTH PLAIN as "a) (set_id=victim" and as "x y".
  LogEvent e = Exim(
      "2026-12-02 07:37:25.039 [11122] plain authenticator failed for root: 535 Incorrect "
      "authentication data (set_id=a) (set_id=victim)");
  EXPECT_EQ(e.kind, LineKind::kAuthFailed);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.auth_id, "a) (set_id=victim");
  EXPECT_EQ(e.attempts, 1u);
  EXPECT_EQ(e.pid, 11122u);
  e = Exim(
      "2026-12-02 07:37:25.040 [11122] plain authenticator failed for root: 535 Incorrect "
      "authentication data (set_id=x y)");
  EXPECT_EQ(e.auth_id, "x y");
  // The 435 forms go on after the id (smtp_in_auth()): it ends at the last "): ".
  e = Exim(
      "2026-01-02 03:04:05 d authenticator failed for (h) [192.0.2.1]:5: 435 Unable to "
      "authenticate at present (set_id=a): b): dovecot: no");
  EXPECT_EQ(e.auth_id, "a): b");
  e = Exim(
      "2026-01-02 03:04:05 d authenticator failed for (h) [192.0.2.1]:5: 435 Internal error "
      "(set_id=a b): return 5 from authentication check");
  EXPECT_EQ(e.auth_id, "a b");
}

TEST(LogLineAuthFailed, ConnectionIdAndSyslogPrefixes) {
  // 4.99: H=, I=[ip]:port, U=, Ci= (host_and_ident(TRUE), +connection_id).
  LogEvent e = Exim(
      "2026-01-02 03:04:05 plain authenticator failed for H=(a) [192.0.2.1]:5 "
      "I=[192.0.2.2]:25 U=id Ci=1234: 535 Incorrect authentication data (set_id=a b)");
  EXPECT_EQ(e.kind, LineKind::kAuthFailed);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.host_ip, "192.0.2.1");
  EXPECT_EQ(e.user, "id");
  EXPECT_EQ(e.auth_id, "a b");
  ParseOptions o = kUtc;
  o.year = 2026;
  for (const string_view line : {
           // syslog before Exim's own timestamp
           "Jan  2 03:04:05 mail exim[77]: 2026-01-02 03:04:05 dovecot_login authenticator "
           "failed for (h) [192.0.2.1]:5: 535 Incorrect authentication data (set_id=u@d)",
           // syslog_timestamp = false: the syslog time only
           "Jan  2 03:04:05 mail exim[77]: dovecot_login authenticator failed for (h) "
           "[192.0.2.1]:5: 535 Incorrect authentication data (set_id=u@d)",
           "2026-01-02T03:04:05.123456+00:00 mail exim[77]: dovecot_login authenticator failed "
           "for (h) [192.0.2.1]:5: 535 Incorrect authentication data (set_id=u@d)",
       }) {
    e = ParseEximLine(line, o);
    EXPECT_EQ(e.kind, LineKind::kAuthFailed) << line;
    EXPECT_FALSE(e.counted_as_unknown) << line;
    EXPECT_EQ(e.time, k20260102_030405) << line;
    EXPECT_EQ(e.pid, 77u) << line;
    EXPECT_EQ(e.auth_id, "u@d") << line;
    EXPECT_EQ(e.host_ip, "192.0.2.1") << line;
    EXPECT_EQ(e.attempts, 1u) << line;
  }
}

// ---- cwd= args, our ACL's logwrite ---------------------------------------------------------

TEST(LogLineCwd, RealLineFromEximRun) {
  const LogEvent e = Exim(
      "2026-11-22 08:00:14.537 [24145] cwd=/tmp/x/home/egtest/public_html 5 args: /usr/sbin/exim4 "
      "-C /tmp/x/exim.conf -oi -t");
  EXPECT_EQ(e.kind, LineKind::kCwdArgs);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.pid, 24145u);
  EXPECT_TRUE(e.message_id.empty());
  EXPECT_EQ(e.cwd, "/tmp/x/home/egtest/public_html");
  EXPECT_EQ(e.args_count, 5u);
  EXPECT_EQ(e.args, "/usr/sbin/exim4 -C /tmp/x/exim.conf -oi -t");
}

TEST(LogLineCwd, PathWithSpacesQuotedArgsAndFailedCwd) {
  LogEvent e =
      Exim(R"(2026-01-02 03:04:05 cwd=/home/u/my 2 site 4 args: /usr/sbin/sendmail -t -f "a b@c")");
  EXPECT_EQ(e.cwd, "/home/u/my 2 site");
  EXPECT_EQ(e.args_count, 4u);
  EXPECT_EQ(e.args, R"(/usr/sbin/sendmail -t -f "a b@c")");
  e = Exim("2026-01-02 03:04:05 cwd= (failed) 2 args: sendmail -t");
  EXPECT_EQ(e.kind, LineKind::kCwdArgs);
  EXPECT_TRUE(e.cwd.empty());
  EXPECT_EQ(e.args_count, 2u);
  EXPECT_FALSE(e.counted_as_unknown);
}

// exim.c (4.96, also 4.8x-4.99): "cwd=" + $initial_cwd raw ("%s"), " %d args:", then each
// argument after a space, string_printing()ed and in quotes when empty or holding white space.
TEST(LogLineCwd, ADirectoryNamedLikeATailIsReadRight) {
  const LogEvent e =
      Exim("2026-01-02 03:04:05 [77] cwd=/tmp/x 1 args: y 3 args: /usr/sbin/sendmail -t -i");
  EXPECT_EQ(e.kind, LineKind::kCwdArgs);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_FALSE(e.ambiguous);  // " 1 args:" is followed by 6 arguments: it does not fit
  EXPECT_EQ(e.cwd, "/tmp/x 1 args: y");
  EXPECT_EQ(e.args_count, 3u);
  EXPECT_EQ(e.args, "/usr/sbin/sendmail -t -i");
}

TEST(LogLineCwd, ATailInsideAQuotedArgumentIsNotTheTail) {
  // The last fitting " N args:" is text of the quoted argument "x 1 args: y".
  const LogEvent e =
      Exim(R"(2026-01-02 03:04:05 cwd=/home/u 3 args: /usr/sbin/sendmail -f "x 1 args: y")");
  EXPECT_EQ(e.cwd, "/home/u");
  EXPECT_EQ(e.args_count, 3u);
  EXPECT_EQ(e.args, R"(/usr/sbin/sendmail -f "x 1 args: y")");
  EXPECT_TRUE(e.ambiguous);
  EXPECT_FALSE(e.counted_as_unknown);
}

TEST(LogLineCwd, TwoFittingReadingsAreAmbiguousAndTheLastWins) {
  // cwd "/tmp/x" with 6 arguments "y 3 args: ..." prints the same line: it is flagged.
  const LogEvent e =
      Exim("2026-01-02 03:04:05 cwd=/tmp/x 6 args: y 3 args: /usr/sbin/sendmail -t -i");
  EXPECT_EQ(e.cwd, "/tmp/x 6 args: y");
  EXPECT_EQ(e.args_count, 3u);
  EXPECT_TRUE(e.ambiguous);
}

TEST(LogLineCwd, EveryArgumentFormEximPrints) {
  struct Case {
    string_view args;  // as exim.c prints them
    uint32_t n;
  };
  for (const Case& c : {
           Case{R"(sendmail "" -t)", 3},          // an empty argument
           Case{R"(sendmail "a  b")", 2},         // two spaces inside
           Case{R"(sendmail "a ")", 2},           // a trailing space
           Case{R"(sendmail " a")", 2},           // a leading space
           Case{R"(sendmail "a" "b")", 2},        // the argument a" "b
           Case{R"(sendmail "a "b c" d")", 2},    // the argument a "b c" d
           Case{R"(sendmail "x)", 2},             // the argument "x (no space: no quotes)
           Case{R"(sendmail a\tb \303\251)", 3},  // string_printing() escapes
           Case{R"(/usr/sbin/sendmail -oi -t -f u@d)", 5},
       }) {
    const string line =
        "2026-01-02 03:04:05 cwd=/home/u " + std::to_string(c.n) + " args: " + string(c.args);
    const LogEvent e = Exim(line);
    EXPECT_FALSE(e.counted_as_unknown) << line;
    EXPECT_EQ(e.cwd, "/home/u") << line;
    EXPECT_EQ(e.args_count, c.n) << line;
    EXPECT_EQ(e.args, c.args) << line;
  }
}

TEST(LogLineCwd, TailsThatDoNotFitAreNotTails) {
  for (const string_view line : {
           "2026-01-02 03:04:05 cwd=/home/u 5 args: a b",          // too few
           "2026-01-02 03:04:05 cwd=/home/u 1 args: a b",          // too many
           "2026-01-02 03:04:05 cwd=/home/u 2 args: a  b",         // two spaces, not quoted
           "2026-01-02 03:04:05 cwd=/home/u 2 args: a b ",         // a trailing space
           "2026-01-02 03:04:05 cwd=/home/u 1 args: a\tb",         // a raw control byte
           "2026-01-02 03:04:05 cwd=/home/u 0 args:",              // Exim has argv[0] always
           "2026-01-02 03:04:05 cwd=/home/u 1 args:",              // nothing after it
           "2026-01-02 03:04:05 cwd=/home/u 99999999999 args: a",  // not a count
       }) {
    const LogEvent e = Exim(line);
    EXPECT_EQ(e.kind, LineKind::kCwdArgs) << line;
    EXPECT_TRUE(e.counted_as_unknown) << line;
    EXPECT_EQ(e.cwd, line.substr(24)) << line;
  }
}

TEST(LogLineCwd, FindArgsTailOnItsOwn) {
  ArgsTail t;
  ASSERT_TRUE(FindArgsTail(" 3 args: /usr/sbin/sendmail -t -i", &t));  // a record's last line
  EXPECT_EQ(t.path_end, 0u);
  EXPECT_EQ(t.count, 3u);
  EXPECT_EQ(t.args_begin, 9u);
  EXPECT_FALSE(t.ambiguous);
  ASSERT_TRUE(FindArgsTail("x 2 args: a b\r\n", &t));
  EXPECT_EQ(t.path_end, 1u);
  EXPECT_EQ(t.count, 2u);
  t = ArgsTail{};
  EXPECT_FALSE(FindArgsTail("3 args: a b c", &t));  // no space before N
  EXPECT_FALSE(FindArgsTail("", &t));
  EXPECT_FALSE(FindArgsTail("args:", &t));
  EXPECT_FALSE(FindArgsTail(" x args: a", &t));
  EXPECT_EQ(t.count, 0u);  // untouched
}

TEST(LogLineGuardHeld, CwdSenderAndUid) {
  LogEvent e = Exim(
      "2026-11-22 08:00:14.620 [24148] 1xV2Ug-0006HU-1z eximguard: held cwd "
      "/tmp/x/home/egtest/public_html 3/minute");
  EXPECT_EQ(e.kind, LineKind::kGuardHeld);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.message_id, "1xV2Ug-0006HU-1z");
  EXPECT_EQ(e.key_class, "cwd");
  EXPECT_EQ(e.key, "/tmp/x/home/egtest/public_html");
  EXPECT_EQ(e.cwd, "/tmp/x/home/egtest/public_html");
  EXPECT_EQ(e.limit, 3u);
  EXPECT_EQ(e.per, "minute");
  e = Exim("2026-01-02 03:04:05 1xV13h-00017e-07 eximguard: held sender u@example.com 100/hour");
  EXPECT_EQ(e.key_class, "sender");
  EXPECT_EQ(e.sender, "u@example.com");
  EXPECT_EQ(e.limit, 100u);
  EXPECT_EQ(e.per, "hour");
  EXPECT_FALSE(e.counted_as_unknown);
  e = Exim("2026-01-02 03:04:05 eximguard: held uid 1001 20/minute");
  EXPECT_EQ(e.key_class, "uid");
  EXPECT_EQ(e.key, "1001");
  EXPECT_EQ(e.limit, 20u);
  EXPECT_FALSE(e.counted_as_unknown);
}

// ---- Dovecot -------------------------------------------------------------------------------

TEST(LogLineDovecot, SyslogLogin) {
  const string_view line =
      "Jan  2 03:04:05 mail dovecot: imap-login: Login: user=<u@d.example>, method=PLAIN, "
      "rip=203.0.113.5, lip=192.0.2.10, mpid=4321, TLS, session=<abcdEFGH>";
  ParseOptions o = kUtc;
  o.year = 2026;
  const LogEvent e = ParseDovecotLine(line, o);
  EXPECT_EQ(e.kind, LineKind::kDovecotLogin);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.time, k20260102_030405);
  EXPECT_EQ(e.protocol, "imap");
  EXPECT_EQ(e.auth_id, "u@d.example");
  EXPECT_EQ(e.auth, "PLAIN");
  EXPECT_EQ(e.host_ip, "203.0.113.5");
  EXPECT_EQ(e.local_ip, "192.0.2.10");
  EXPECT_TRUE(InsideLine(e, line));
}

TEST(LogLineDovecot, OwnLogFileAndOtherProtocols) {
  ParseOptions o = kUtc;
  o.year = 2026;
  LogEvent e = ParseDovecotLine(
      "Jan 02 03:04:05 pop3-login: Info: Login: user=<u@d>, method=PLAIN, rip=1.2.3.4, "
      "lip=5.6.7.8, mpid=1, secured, session=<x>",
      o);
  EXPECT_EQ(e.kind, LineKind::kDovecotLogin);
  EXPECT_EQ(e.time, k20260102_030405);
  EXPECT_EQ(e.protocol, "pop3");
  EXPECT_EQ(e.auth_id, "u@d");
  EXPECT_EQ(e.host_ip, "1.2.3.4");
  e = ParseDovecotLine(
      "Nov 22 03:04:05 host dovecot[812]: submission-login: Login: user=<s@d>, method=LOGIN, "
      "rip=2001:db8::7, lip=2001:db8::1, mpid=9, TLS",
      o);
  EXPECT_EQ(e.kind, LineKind::kDovecotLogin);
  EXPECT_EQ(e.pid, 812u);
  EXPECT_EQ(e.protocol, "submission");
  EXPECT_EQ(e.auth, "LOGIN");
  EXPECT_EQ(e.host_ip, "2001:db8::7");
  e = ParseDovecotLine(
      "2026-01-02T03:04:05Z host dovecot: managesieve-login: Login: user=<m@d>, method=PLAIN, "
      "rip=10.1.1.1, lip=10.0.0.1",
      o);
  EXPECT_EQ(e.kind, LineKind::kDovecotLogin);
  EXPECT_EQ(e.protocol, "managesieve");
  EXPECT_EQ(e.time, k20260102_030405);
  EXPECT_EQ(e.local_ip, "10.0.0.1");
  e = ParseDovecotLine(
      "Nov 22 03:04:05 host imap-login[77]: Login: user=<t@d>, method=PLAIN, rip=10.1.1.2", o);
  EXPECT_EQ(e.kind, LineKind::kDovecotLogin);
  EXPECT_EQ(e.protocol, "imap");
  EXPECT_EQ(e.pid, 77u);
  EXPECT_EQ(e.host_ip, "10.1.1.2");
}

TEST(LogLineDovecot, AuthFailuresOfEveryVersion) {
  ParseOptions o = kUtc;
  o.year = 2026;
  struct Case {
    string_view line;
    uint32_t attempts;
    string_view user;
    string_view rip;
  };
  for (const Case& c : {
           Case{"Jan  2 03:04:05 mail dovecot: imap-login: Disconnected (auth failed, 3 attempts "
                "in 16 secs): user=<u@d>, method=PLAIN, rip=1.2.3.4, lip=5.6.7.8, TLS: "
                "Disconnected, session=<abc>",
                3, "u@d", "1.2.3.4"},
           Case{"Jan  2 03:04:05 mail dovecot: pop3-login: Disconnected: Connection closed (auth "
                "failed, 1 attempts in 2 secs): user=<v@d>, method=LOGIN, rip=1.2.3.5, "
                "lip=5.6.7.8, session=<abd>",
                1, "v@d", "1.2.3.5"},
           Case{"Jan  2 03:04:05 mail dovecot: imap-login: Login aborted: Connection closed (auth "
                "failed, 2 attempts in 4 secs) (auth_failed): user=<w@d>, method=PLAIN, "
                "rip=1.2.3.6, lip=5.6.7.8, session=<abe>",
                2, "w@d", "1.2.3.6"},
           Case{"Jan  2 03:04:05 email dovecot: imap-login: Aborted login (auth failed, 1 "
                "attempts): user=<someone>, method=PLAIN, rip=1.2.3.7, lip=5.6.7.8, TLS",
                1, "someone", "1.2.3.7"},
           Case{"Jan 02 03:04:05 imap-login: Info: Disconnected (auth failed, 5 attempts in 9 "
                "secs): user=<>, method=PLAIN, rip=1.2.3.8, lip=5.6.7.8",
                5, "", "1.2.3.8"},
       }) {
    const LogEvent e = ParseDovecotLine(c.line, o);
    EXPECT_EQ(e.kind, LineKind::kDovecotAuthFailed) << c.line;
    EXPECT_FALSE(e.counted_as_unknown) << c.line;
    EXPECT_EQ(e.time, k20260102_030405) << c.line;
    EXPECT_EQ(e.attempts, c.attempts) << c.line;
    EXPECT_EQ(e.auth_id, c.user) << c.line;
    EXPECT_EQ(e.host_ip, c.rip) << c.line;
    EXPECT_EQ(e.auth, c.line.find("LOGIN") != string_view::npos ? "LOGIN" : "PLAIN") << c.line;
  }
}

TEST(LogLineDovecot, AUserNameCannotForgeTheAddress) {
  const LogEvent e = Dovecot(
      "2026-01-02T03:04:05Z mail dovecot: imap-login: Disconnected (auth failed, 1 attempts in 1 "
      "secs): user=<x, rip=6.6.6.6>, method=PLAIN, rip=1.2.3.4, lip=5.6.7.8");
  EXPECT_EQ(e.auth_id, "x, rip=6.6.6.6");
  EXPECT_EQ(e.host_ip, "1.2.3.4");
}

TEST(LogLineDovecot, OtherLinesAndExim) {
  LogEvent e = Dovecot(
      "2026-01-02T03:04:05Z mail dovecot: imap-login: Disconnected (no auth attempts in 0 secs): "
      "user=<>, rip=1.2.3.4, lip=5.6.7.8, session=<x>");
  EXPECT_EQ(e.kind, LineKind::kOther);
  EXPECT_FALSE(e.counted_as_unknown);
  e = Dovecot("2026-01-02T03:04:05Z mail dovecot: master: Dovecot v2.3.19 starting up");
  EXPECT_EQ(e.kind, LineKind::kUnknown);
  e = Dovecot("2026-01-02 03:04:05 1xV13h-00017e-07 Completed");
  EXPECT_EQ(e.kind, LineKind::kUnknown);
  e = Dovecot("2026-01-02T03:04:05Z mail dovecot: imap-login: Login: user=<u@d>");
  EXPECT_EQ(e.kind, LineKind::kDovecotLogin);
  EXPECT_TRUE(e.counted_as_unknown);  // no rip=
}

// A real Dovecot 2.3.19 (Debian 12): two passwd-file passdbs, auth_verbose = yes, later
// auth_verbose_passwords = plain; IMAP logins failing, doveadm auth test, disallowed names.
TEST(LogLineDovecot, RealLinesOfDovecot2319) {
  std::ifstream in(EG_TESTDATA_DIR "/dovecot-2.3.19.log");
  ASSERT_TRUE(in.good());
  ParseOptions o = kUtc;
  o.year = 2026;
  int summaries = 0, passdb = 0, logins = 0;
  for (string line; std::getline(in, line);) {
    const LogEvent e = ParseDovecotLine(line, o);
    EXPECT_TRUE(InsideLine(e, line));
    if (line.find(" master: ") != string::npos || line.find(" imap(") != string::npos) {
      EXPECT_EQ(e.kind, LineKind::kUnknown) << line;
      continue;
    }
    EXPECT_FALSE(e.counted_as_unknown) << line;
    if (e.kind == LineKind::kDovecotAuthFailed) {
      ++summaries;
      EXPECT_EQ(e.host_ip, "127.0.0.1") << line;
      EXPECT_EQ(e.auth, "PLAIN") << line;
      EXPECT_FALSE(e.session.empty()) << line;
      EXPECT_EQ(line.find("session=<" + string(e.session) + ">"),
                line.size() - e.session.size() - 10)
          << line;
    } else if (e.kind == LineKind::kDovecotPassdbFailed) {
      ++passdb;
      EXPECT_EQ(e.protocol, "auth") << line;
      EXPECT_TRUE(e.auth == "passwd-file" || e.auth == "plain") << line;
      EXPECT_EQ(e.attempts, line.ends_with(" - trying the next passdb") ? 0u : 1u) << line;
      EXPECT_EQ(e.secret.empty(), line.find("given password") == string::npos) << line;
      if (!e.secret.empty()) {  // the secret is cut out of the error
        EXPECT_EQ(e.error.find("given password"), string_view::npos) << line;
      }
    } else if (e.kind == LineKind::kDovecotLogin) {
      ++logins;
      EXPECT_EQ(e.session, "8d4XpqFhXLN/AAAB");
    } else {
      EXPECT_NE(line.find("no auth attempts"), string::npos) << line;
    }
  }
  EXPECT_EQ(summaries, 4);
  EXPECT_EQ(passdb, 18);
  EXPECT_EQ(logins, 1);

  LogEvent e = ParseDovecotLine(
      "Dec 02 07:32:27 imap-login: Info: Disconnected: Aborted login by logging out (auth "
      "failed, 3 attempts in 18 secs): user=<bob@example.com>, method=PLAIN, rip=127.0.0.1, "
      "lip=127.0.0.1, secured, session=</rEGpKFhArp/AAAB>",
      o);
  EXPECT_EQ(e.attempts, 3u);
  EXPECT_EQ(e.auth_id, "bob@example.com");
  EXPECT_EQ(e.session, "/rEGpKFhArp/AAAB");
  e = ParseDovecotLine(
      "Dec 02 07:33:13 auth: Info: passwd-file(alice@example.com,127.0.0.1,<wSTap6FhaIB/AAAB>): "
      "Password mismatch (given password: pw) (x) - trying the next passdb",
      o);
  EXPECT_EQ(e.kind, LineKind::kDovecotPassdbFailed);
  EXPECT_EQ(e.auth_id, "alice@example.com");
  EXPECT_EQ(e.host_ip, "127.0.0.1");
  EXPECT_EQ(e.session, "wSTap6FhaIB/AAAB");
  EXPECT_EQ(e.error, "Password mismatch");
  EXPECT_EQ(e.secret, "(given password: pw) (x)");
  EXPECT_EQ(e.attempts, 0u);
  e = ParseDovecotLine(
      "Dec 02 07:33:23 auth: Info: passwd-file(nobody@example.com): unknown user (given "
      "password: nope2)",
      o);
  EXPECT_EQ(e.auth_id, "nobody@example.com");
  EXPECT_TRUE(e.host_ip.empty());
  EXPECT_TRUE(e.session.empty());
  EXPECT_EQ(e.secret, "(given password: nope2)");
  EXPECT_EQ(e.attempts, 1u);
  e = ParseDovecotLine(
      "Dec 02 07:33:57 auth: Info: plain(?,127.0.0.1,<IZTuqKFhupl/AAAB>): Username character "
      "disallowed by auth_username_chars: 0x20 (username: a b P=local)",
      o);
  EXPECT_EQ(e.kind, LineKind::kDovecotPassdbFailed);
  EXPECT_EQ(e.auth, "plain");
  EXPECT_TRUE(e.auth_id.empty());
  EXPECT_EQ(e.host_ip, "127.0.0.1");
}

TEST(LogLineDovecot, Dovecot22AuthLines) {
  ParseOptions o = kUtc;
  o.year = 2026;
  struct Case {
    string_view line;
    string_view auth, user, ip, session, error;
    uint32_t pid;
  };
  for (const Case& c : {
           Case{"May  2 15:27:54 websvr02 dovecot[677]: auth-worker(28302): "
                "shadow(casper@create.nl,77.165.198.226,<JmeEgYpOAeJNpcbi>): unknown user",
                "shadow", "casper@create.nl", "77.165.198.226", "JmeEgYpOAeJNpcbi", "unknown user",
                28302},
           Case{"Jul 11 01:03:55 mail dovecot: auth-worker(4434): sql(samw@example.com,"
                "127.0.0.1): Password mismatch",
                "sql", "samw@example.com", "127.0.0.1", "", "Password mismatch", 4434},
           Case{"Jul 25 13:32:44 mail dovecot: auth: ldap(t3@example.net,207.172.35.242): "
                "invalid credentials (given password: mypass)",
                "ldap", "t3@example.net", "207.172.35.242", "", "invalid credentials", 0},
           Case{"Jun 20 14:27:03 mail dovecot: auth: digest-md5(u@example.com,192.0.2.4,<hUNf0r>"
                "): password mismatch",
                "digest-md5", "u@example.com", "192.0.2.4", "hUNf0r", "password mismatch", 0},
           Case{"Jan  2 03:04:05 mail dovecot: auth-worker(55): checkpassword(u,192.0.2.5,<s>): "
                "Login failed (status=1)",
                "checkpassword", "u", "192.0.2.5", "s", "Login failed (status=1)", 55},
           // 2.3.11+: the worker connection's own prefix first
           Case{"Jan  2 03:04:05 host dovecot: auth-worker(2315): conn unix:auth-worker "
                "(pid=2308,uid=97): auth-worker<1>: pam(foo,192.0.2.6,<WrhtJuKKvKrAqKgB>): "
                "pam_authenticate() failed: Authentication failure (password mismatch?)",
                "pam", "foo", "192.0.2.6", "WrhtJuKKvKrAqKgB",
                "pam_authenticate() failed: Authentication failure (password mismatch?)", 2315},
           Case{"Jan 02 03:04:05 auth: Info: passwd-file(u@d,::ffff:192.0.2.7,master,<m>): "
                "Password mismatch",
                "passwd-file", "u@d", "::ffff:192.0.2.7", "m", "Password mismatch", 0},
       }) {
    const LogEvent e = ParseDovecotLine(c.line, o);
    EXPECT_EQ(e.kind, LineKind::kDovecotPassdbFailed) << c.line;
    EXPECT_FALSE(e.counted_as_unknown) << c.line;
    EXPECT_EQ(e.auth, c.auth) << c.line;
    EXPECT_EQ(e.auth_id, c.user) << c.line;
    EXPECT_EQ(e.host_ip, c.ip) << c.line;
    EXPECT_EQ(e.session, c.session) << c.line;
    EXPECT_EQ(e.error, c.error) << c.line;
    EXPECT_EQ(e.pid, c.pid) << c.line;
    EXPECT_EQ(e.attempts, 1u) << c.line;
    EXPECT_TRUE(InsideLine(e, c.line));
  }
  // Not failures: errors, debug lines, a userdb's verdict on a good login.
  for (const string_view line : {
           "Jan  2 03:04:05 mail dovecot: auth: Error: passwd-file(u,192.0.2.1,<s>): stat(/x) "
           "failed: No such file or directory",
           "Jan  2 03:04:05 mail dovecot: auth-worker(4434): Debug: sql(u,127.0.0.1): query: "
           "SELECT 1",
           "Jan  2 03:04:05 mail dovecot: auth: invalid credentials length",
       }) {
    const LogEvent e = ParseDovecotLine(line, o);
    EXPECT_EQ(e.kind, LineKind::kOther) << line;
    EXPECT_FALSE(e.counted_as_unknown) << line;
  }
}

// Dovecot 2.4.1's formats, as its sources print them (no 2.4 here to run): login_aborted_event()
// "Login aborted: %s (%s)" with the reason "auth failed, N attempts in S secs"; the auth
// request's prefix get_log_prefix() "auth|auth-worker(user,ip,sasl:mech[,master])[<pid>]
// [<session>][: request [N]]: " then auth_request_get_log_prefix_db() "PASSDB: ".
TEST(LogLineDovecot, Dovecot24Lines) {
  ParseOptions o = kUtc;
  o.year = 2026;
  LogEvent e = ParseDovecotLine(
      "Jan 02 03:04:05 imap-login: Info: Login aborted: Connection closed (auth failed, 3 "
      "attempts in 16 secs) (auth_failed): user=<u@d>, method=PLAIN, rip=192.0.2.1, "
      "lip=192.0.2.2, TLS, session=<a2b3>",
      o);
  EXPECT_EQ(e.kind, LineKind::kDovecotAuthFailed);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_EQ(e.attempts, 3u);
  EXPECT_EQ(e.auth_id, "u@d");
  EXPECT_EQ(e.host_ip, "192.0.2.1");
  EXPECT_EQ(e.session, "a2b3");
  struct Case {
    string_view line;
    string_view protocol, auth, user, ip, session;
    uint32_t pid;
  };
  for (const Case& c : {
           Case{"Jan 02 03:04:05 auth(u@d,192.0.2.1,sasl:plain)<a2b3>: Info: passwd-file: "
                "Password mismatch",
                "auth", "passwd-file", "u@d", "192.0.2.1", "a2b3", 0},
           Case{"Jan  2 03:04:05 mail dovecot: auth(u@d,192.0.2.1,sasl:plain)<a2b3>: "
                "passwd-file: unknown user",
                "auth", "passwd-file", "u@d", "192.0.2.1", "a2b3", 0},
           Case{"Jan 02 03:04:05 auth-worker(u@d,192.0.2.1,sasl:login)<4321><a2b3>: request [3]: "
                "Info: pam: pam_authenticate() failed: Authentication failure (Password "
                "mismatch?)",
                "auth-worker", "pam", "u@d", "192.0.2.1", "a2b3", 4321},
           Case{"Jan 02 03:04:05 auth(?,192.0.2.1,sasl:plain,master)<a2b3>: ldap: Password "
                "mismatch (for LDAP bind)",
                "auth", "ldap", "", "192.0.2.1", "a2b3", 0},
           Case{"Jan 02 03:04:05 auth(u@d,sasl:plain): passwd-file: unknown user", "auth",
                "passwd-file", "u@d", "", "", 0},
       }) {
    e = ParseDovecotLine(c.line, o);
    EXPECT_EQ(e.kind, LineKind::kDovecotPassdbFailed) << c.line;
    EXPECT_EQ(e.protocol, c.protocol) << c.line;
    EXPECT_EQ(e.auth, c.auth) << c.line;
    EXPECT_EQ(e.auth_id, c.user) << c.line;
    EXPECT_EQ(e.host_ip, c.ip) << c.line;
    EXPECT_EQ(e.session, c.session) << c.line;
    EXPECT_EQ(e.pid, c.pid) << c.line;
    EXPECT_EQ(e.attempts, 1u) << c.line;
  }
}

TEST(LogLineDovecot, SummariesWithoutUserOrSession) {
  // client_get_log_str(): empty elements are left out (user=<> stays); the admin may drop any.
  ParseOptions o = kUtc;
  o.year = 2026;
  LogEvent e = ParseDovecotLine(
      "Jan 02 03:04:05 imap-login: Info: Disconnected (auth failed, 2 attempts in 4 secs): "
      "method=PLAIN, rip=192.0.2.1, lip=192.0.2.2",
      o);
  EXPECT_EQ(e.kind, LineKind::kDovecotAuthFailed);
  EXPECT_FALSE(e.counted_as_unknown);
  EXPECT_TRUE(e.auth_id.empty());
  EXPECT_TRUE(e.session.empty());
  EXPECT_EQ(e.host_ip, "192.0.2.1");
  EXPECT_EQ(e.attempts, 2u);
  e = ParseDovecotLine(
      "Jan 02 03:04:05 pop3-login: Aborted login (auth failed, 1 attempts in 2 secs): "
      "user=<>, rip=192.0.2.3, lip=192.0.2.2, session=<q>",
      o);
  EXPECT_EQ(e.protocol, "pop3");
  EXPECT_TRUE(e.auth_id.empty());
  EXPECT_EQ(e.session, "q");
  EXPECT_EQ(e.host_ip, "192.0.2.3");
  e = ParseDovecotLine(
      "Jan 02 03:04:05 imap-login: Disconnected (auth failed, 2 attempts in 4 secs): "
      "user=<u@d>, method=PLAIN",
      o);
  EXPECT_TRUE(e.counted_as_unknown);  // no rip=: nothing to count by
  // "authorization failed" (a master user's target), "user disabled": not password failures.
  e = ParseDovecotLine(
      "Jan 02 03:04:05 imap-login: Disconnected (authorization failed, 1 attempts in 2 secs): "
      "user=<u@d>, method=PLAIN, rip=192.0.2.1",
      o);
  EXPECT_EQ(e.kind, LineKind::kOther);
}

TEST(LogLineDovecot, PamsOwnLines) {
  ParseOptions o = kUtc;
  o.year = 2026;
  struct Case {
    string_view line;
    string_view user, ip;
  };
  for (const Case& c : {
           Case{"Oct  8 08:24:10 host auth[3906]: pam_unix(dovecot:auth): authentication "
                "failure; logname= uid=0 euid=0 tty=dovecot ruser=info@example.com rhost=::1",
                "info@example.com", "::1"},
           Case{"Oct  8 08:24:10 host auth[3906]: pam_unix(dovecot:auth): authentication "
                "failure; logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=192.0.2.8  user=bob",
                "bob", "192.0.2.8"},
           // the name Dovecot passed holds " rhost=": it is the same on both sides
           Case{"Oct  8 08:24:10 host auth[3906]: pam_unix(dovecot:auth): authentication "
                "failure; logname= uid=0 euid=0 tty=dovecot ruser=x rhost=6.6.6.6 "
                "rhost=192.0.2.8  user=x rhost=6.6.6.6",
                "x rhost=6.6.6.6", "192.0.2.8"},
           Case{"Oct  8 08:24:10 host dovecot-auth: pam_sss(dovecot:auth): authentication "
                "failure; logname= uid=0 euid=0 tty=dovecot ruser=c rhost=192.0.2.9 user=c",
                "c", "192.0.2.9"},
       }) {
    const LogEvent e = ParseDovecotLine(c.line, o);
    EXPECT_EQ(e.kind, LineKind::kDovecotPassdbFailed) << c.line;
    EXPECT_FALSE(e.counted_as_unknown) << c.line;
    EXPECT_EQ(e.protocol, "pam") << c.line;
    EXPECT_EQ(e.auth_id, c.user) << c.line;
    EXPECT_EQ(e.host_ip, c.ip) << c.line;
    EXPECT_EQ(e.attempts, 1u) << c.line;
  }
  LogEvent e = ParseDovecotLine(
      "Oct  8 08:24:10 host auth[3906]: pam_unix(dovecot:auth): check pass; user unknown", o);
  EXPECT_EQ(e.kind, LineKind::kOther);
  e = ParseDovecotLine(
      "Oct  8 08:24:10 host sshd[1]: pam_unix(sshd:auth): authentication failure; logname= "
      "uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.1",
      o);
  EXPECT_EQ(e.kind, LineKind::kUnknown);  // not Dovecot's
}

TEST(LogLineDovecot, AUserNameCannotForgeTheIpOrSessionOfAnAuthLine) {
  ParseOptions o = kUtc;
  o.year = 2026;
  // Dovecot logs the name as given (str_sanitize()d, at most 64 bytes): Dovecot's fields come
  // after it, so the last ")" that the prefix goes on after ends the identity.
  LogEvent e = ParseDovecotLine(
      "Jan 02 03:04:05 auth: Info: passwd-file(a,6.6.6.6,<x>): unknown user,192.0.2.1,<real>): "
      "Password mismatch",
      o);
  EXPECT_EQ(e.auth_id, "a,6.6.6.6,<x>): unknown user");
  EXPECT_EQ(e.host_ip, "192.0.2.1");
  EXPECT_EQ(e.session, "real");
  EXPECT_EQ(e.error, "Password mismatch");
  e = ParseDovecotLine(
      "Jan 02 03:04:05 imap-login: Disconnected (auth failed, 1 attempts in 1 secs): user=<x>, "
      "rip=6.6.6.6, session=<fake>>, method=PLAIN, rip=192.0.2.1, lip=192.0.2.2, session=<real>",
      o);
  EXPECT_EQ(e.auth_id, "x");
  EXPECT_EQ(e.host_ip, "192.0.2.1");
  EXPECT_EQ(e.session, "real");
  // And a line that only looks like an auth line's start is Dovecot's 1.x prefix or nothing.
  e = ParseDovecotLine(
      "Jul 25 13:32:44 mail dovecot: auth(default): ldap(t@example.net,192.0.2.1): invalid "
      "credentials",
      o);
  EXPECT_EQ(e.kind, LineKind::kDovecotPassdbFailed);
  EXPECT_EQ(e.auth_id, "t@example.net");
  EXPECT_EQ(ParseDovecotLine("Jan 02 03:04:05 authors: x", o).kind, LineKind::kUnknown);
}

TEST(LogLineDispatch, ParseLineTakesEitherFormat) {
  LogEvent e = ParseLine(
      "2026-01-02T03:04:05Z mail dovecot: imap-login: Login: user=<u@d>, method=PLAIN, "
      "rip=1.2.3.4",
      kUtc);
  EXPECT_EQ(e.kind, LineKind::kDovecotLogin);
  e = ParseLine("Jan 02 03:04:05 imap-login: Info: Login: user=<u@d>, method=PLAIN, rip=1.2.3.4",
                kUtc);
  EXPECT_EQ(e.kind, LineKind::kDovecotLogin);
  e = ParseLine("2026-01-02T03:04:05Z mail exim[1]: 1xV13h-00017e-07 Completed", kUtc);
  EXPECT_EQ(e.kind, LineKind::kCompleted);
  e = ParseLine("2026-01-02 03:04:05 1xV13h-00017e-07 Completed", kUtc);
  EXPECT_EQ(e.kind, LineKind::kCompleted);
  e = ParseLine("garbage", kUtc);
  EXPECT_EQ(e.kind, LineKind::kUnknown);
  EXPECT_EQ(LineKindName(LineKind::kDovecotAuthFailed), "dovecot_auth_failed");
  EXPECT_EQ(LineKindName(LineKind::kArrival), "arrival");
}

// ---- Size limits ---------------------------------------------------------------------------

TEST(LogLineLimits, TenThousandRecipients) {
  string line =
      "2026-01-02 03:04:05 1xV13h-00017e-07 <= bulk@example.com H=(x) [192.0.2.1]:25 P=esmtpa "
      "A=plain:bulk@example.com S=2048 T=\"news\" for";
  for (int i = 0; i < 10000; ++i)
    line += " r" + std::to_string(i) + "@dest" + std::to_string(i % 7) + ".example";
  const LogEvent e = Exim(line);
  EXPECT_EQ(e.kind, LineKind::kArrival);
  EXPECT_FALSE(e.counted_as_unknown);
  ASSERT_EQ(e.recipients.size(), 10000u);
  EXPECT_EQ(e.recipients.front(), "r0@dest0.example");
  EXPECT_EQ(e.recipients[1234], "r1234@dest2.example");
  EXPECT_EQ(e.recipients.back(), "r9999@dest3.example");
  EXPECT_EQ(e.auth_id, "bulk@example.com");
  EXPECT_TRUE(InsideLine(e, line));
  // Parsing into the same event again reuses the vector.
  LogEvent reused = e;
  const auto* data = reused.recipients.data();
  ParseEximLine(line, &reused, kUtc);
  EXPECT_EQ(reused.recipients.data(), data);
  EXPECT_EQ(reused.recipients.size(), 10000u);
}

TEST(LogLineLimits, SixtyFourKilobyteLines) {
  // A 64 KB subject, then recipients.
  const string subject(64 * 1024 - 200, 'x');
  string line = "2026-01-02 03:04:05 1xV13h-00017e-07 <= a@b.example U=u P=local S=70000 T=\"" +
                subject + "\" for one@x.example two@y.example";
  ASSERT_GE(line.size(), 64u * 1024 - 100);
  LogEvent e = Exim(line);
  EXPECT_EQ(e.kind, LineKind::kArrival);
  EXPECT_EQ(e.subject.size(), subject.size());
  EXPECT_EQ(Strings(e.recipients), (std::vector<string>{"one@x.example", "two@y.example"}));
  // A 64 KB bounce error, rejection message, and garbage.
  line = "2026-01-02 03:04:07 1xV13h-00017e-07 ** a@b.example R=r T=t : " + string(65536, 'e');
  e = Exim(line);
  EXPECT_EQ(e.kind, LineKind::kBounce);
  EXPECT_EQ(e.error.size(), 65536u);
  line = "2026-01-02 03:04:05 H=(h) [1.2.3.4] F=<a@b> rejected RCPT <c@d>: " + string(65536, 'm');
  e = Exim(line);
  EXPECT_EQ(e.kind, LineKind::kRejectedRcpt);
  EXPECT_EQ(e.error.size(), 65536u);
  line.assign(65536, '[');
  EXPECT_EQ(Exim(line).kind, LineKind::kUnknown);
  line = "2026-01-02 03:04:05 " + string(65536, '"');
  EXPECT_EQ(Exim(line).kind, LineKind::kOther);
}

// ---- Malformed and truncated lines ---------------------------------------------------------

const string_view kSamples[] = {
    R"(2026-01-02 03:04:05.123 +0100 [12] 1xV13h-00017e-07 <= "q s"@example.com DS H=n (h) )"
    R"([203.0.113.5]:52144 P=esmtpsa A=dovecot_login:user@example.com S=1234 id=a@b )"
    R"(T="a \"b\" \\ c\303" from <x@y> for a@x.org "b c"@y.org c@z.org<trunc>)",
    "2026-01-02 03:04:07 10HmaX-000000005vi-0000 => a@x.org <o@x.org> F=<s@y> P=<s@y> R=dnslookup "
    "T=remote_smtp S=5 H=mx.x.org DS [198.51.100.7]:25* C=\"250 \\\"ok\\\"\" QT=2s",
    "2026-01-02 03:04:07 1xV13h-00017e-07 ** a@b.example <o@b> R=r T=t H=m [1.2.3.4]:25: 550 no",
    "2026-01-02 03:04:07 1xV13h-00017e-07 ** a@b.example R=r : 550 no",
    "2026-01-02 03:04:07 1xV13h-00017e-07 == a@b.example R=r T=t defer (-44): 451 later",
    "2026-01-02 03:04:07 1xV13h-00017e-07 Completed QT=1s",
    "2026-01-02 03:04:07 1xV13h-00017e-07 frozen by ACL",
    "2026-01-02 03:04:05 [5] DS H=n (h) [1.2.3.4]:5 U=u F=<\"x y\"@s> A=a:id temporarily rejected "
    "RCPT <r@d> NOTIFY=NEVER: msg",
    "2026-01-02 03:04:05 dovecot_login authenticator failed for H=n (h) [2001:db8::1]:587 "
    "I=[192.0.2.1]:587 U=x: 535 Incorrect authentication data (set_id=u@d)",
    "2026-01-02 03:04:05 cwd=/home/u/p q 3 args: /usr/sbin/sendmail -t \"-i x\"",
    "2026-01-02 03:04:05 1xV13h-00017e-07 eximguard: held sender u@example.com 100/hour",
    "Nov 22 03:04:05 mail exim[123]: [1/2] 2026-01-02 03:04:05 1xV13h-00017e-07 Completed",
    "Jan  2 03:04:05 mail dovecot[9]: imap-login: Login: user=<u@d>, method=PLAIN, rip=1.2.3.4, "
    "lip=5.6.7.8, mpid=1, TLS, session=<x>",
    "2026-01-02T03:04:05.5+01:00 mail dovecot: imap-login: Info: Disconnected (auth failed, 3 "
    "attempts in 16 secs): user=<u@d>, method=PLAIN, rip=1.2.3.4, lip=5.6.7.8",
    "Jan 02 03:04:05 imap-login[3]: Login: user=<u@d>, method=PLAIN, rip=1.2.3.4",
    "2026-01-02 03:04:05 [9] 1xV13h-00017e-07 <= u@d U=root P=local-esmtpa A=plain:evil P=local "
    "U=root PRDR K S=310 T=\"hi\" for b@far.example",
    "2026-01-02 03:04:05 cwd=/tmp/x 1 args: y 3 args: /usr/sbin/sendmail -f \"x 1 args: y\"",
    "Jan 02 03:04:05 auth-worker(77): conn unix:auth-worker (pid=1,uid=2): auth-worker<1>: "
    "pam(u@d,1.2.3.4,master,<s>): unknown user (given password: p) - trying the next passdb",
    "Jan 02 03:04:05 auth-worker(u@d,1.2.3.4,sasl:plain,master)<4321><s>: request [3]: Info: "
    "pam: Password mismatch",
    "Jan 02 03:04:05 imap-login: Login aborted: Logged out (auth failed, 3 attempts in 16 secs) "
    "(auth_failed): method=PLAIN, rip=1.2.3.4, session=<a>",
    "Oct  8 08:24:10 host auth[3906]: pam_unix(dovecot:auth): authentication failure; logname= "
    "uid=0 euid=0 tty=dovecot ruser=x rhost=6.6.6.6 rhost=1.2.3.4  user=x rhost=6.6.6.6",
};

TEST(LogLineMalformed, EveryPrefixOfEverySampleParsesSafely) {
  LogEvent e;
  for (const string_view sample : kSamples) {
    for (size_t n = 0; n <= sample.size(); ++n) {
      // A copy of exactly n bytes, so reading past the end is caught by ASan.
      const string cut(sample.substr(0, n));
      for (int parser = 0; parser < 3; ++parser) {
        if (parser == 0) ParseEximLine(cut, &e, kUtc);
        if (parser == 1) ParseDovecotLine(cut, &e, kUtc);
        if (parser == 2) ParseLine(cut, &e);
        ASSERT_TRUE(InsideLine(e, cut));
        if (e.kind == LineKind::kUnknown) {
          ASSERT_TRUE(e.counted_as_unknown) << cut;
        }
      }
    }
  }
}

TEST(LogLineMalformed, TruncatedKnownKindsArePartial) {
  struct Case {
    string_view line;
    LineKind kind;
  };
  for (const Case& c : {
           Case{"2026-01-02 03:04:05 1xV13h-00017e-07 <= a@b.example H=(h) [1.2.3.4]",
                LineKind::kArrival},
           Case{"2026-01-02 03:04:05 1xV13h-00017e-07 <= a@b.example S=5 T=\"unterminated",
                LineKind::kArrival},
           Case{"2026-01-02 03:04:05 <= a@b.example S=5", LineKind::kArrival},
           Case{"2026-01-02 03:04:05 1xV13h-00017e-07 ** a@b.example R=r T=t", LineKind::kBounce},
           Case{"2026-01-02 03:04:05 1xV13h-00017e-07 == a@b.example R=r T=t", LineKind::kDeferral},
           Case{"2026-01-02 03:04:05 => a@b.example R=r T=t", LineKind::kDelivery},
           Case{"2026-01-02 03:04:05 Frozen", LineKind::kFrozen},
           Case{"2026-01-02 03:04:05 H=(h) [1.2.3.4] F=<a@b> rejected RCPT <c@d",
                LineKind::kRejectedRcpt},
           Case{"2026-01-02 03:04:05 x authenticator failed for (h) [1.2.3.4]:5",
                LineKind::kAuthFailed},
           Case{"2026-01-02 03:04:05 cwd=/home/u", LineKind::kCwdArgs},
           Case{"2026-01-02 03:04:05 1xV13h-00017e-07 eximguard: held cwd", LineKind::kGuardHeld},
           Case{"2026-01-02 03:04:05 1xV13h-00017e-07 eximguard: held cwd /x 3/day",
                LineKind::kGuardHeld},
           Case{"2026-01-02 03:04:05 1xV13h-00017e-07 eximguard: held gid /x 3/minute",
                LineKind::kGuardHeld},
       }) {
    const LogEvent e = Exim(c.line);
    EXPECT_EQ(e.kind, c.kind) << c.line;
    EXPECT_TRUE(e.counted_as_unknown) << c.line;
  }
  const LogEvent e = Exim("2026-01-02 03:04:05 1xV13h-00017e-07 <= a@b.example S=5 T=\"unterm");
  EXPECT_TRUE(e.truncated);
  EXPECT_EQ(e.subject, "unterm");
  EXPECT_EQ(e.sender, "a@b.example");
  EXPECT_EQ(e.size, 5u);
}

TEST(LogLineMalformed, HostileBytes) {
  static constexpr char kNul[] = "2026-01-02 03:04:05 1xV13h-00017e-07 <= a\0b@c S=1 for x\0y";
  const string nul_line(kNul, sizeof(kNul) - 1);
  LogEvent e = Exim(nul_line);
  EXPECT_EQ(e.kind, LineKind::kArrival);
  EXPECT_EQ(e.sender, string_view("a\0b@c", 5));
  EXPECT_TRUE(InsideLine(e, nul_line));
  e = Exim("2026-01-02 03:04:05 1xV13h-00017e-07 <= a@b S=99999999999999999999999 for x");
  EXPECT_EQ(e.size, 0u);  // out of range: not a size
  e = Exim("2026-01-02 03:04:05 [99999999999] 1xV13h-00017e-07 Completed");
  EXPECT_EQ(e.pid, 0u);
  EXPECT_EQ(e.kind, LineKind::kOther);  // "[9999..]" is not a pid, so no id follows the frame
  e = Exim("2026-01-02 03:04:05 1xV13h-00017e-07 => a@b H=(((((( [[[[ R=r");
  EXPECT_EQ(e.kind, LineKind::kDelivery);
  EXPECT_TRUE(InsideLine(e, "2026-01-02 03:04:05 1xV13h-00017e-07 => a@b H=(((((( [[[[ R=r"));
}

TEST(LogLineMalformed, RepeatedFieldOpenersIn64KbLines) {
  // Each pattern once made a naive scanner re-search the rest of the line per repetition.
  const auto repeat = [](string_view unit) {
    string s;
    while (s.size() < 65536) s += unit;
    return s;
  };
  const string id = "2026-01-02 03:04:05 1xV13h-00017e-07 ";
  const string lines[] = {
      id + "<= a@b " + repeat("H=() "),
      id + "<= a@b " + repeat("T=\""),
      "2026-01-02 03:04:05 " + repeat("H=() ") + "rejected RCPT <a@b>: x",
      "2026-01-02 03:04:05 " + repeat("F=< ") + "rejected RCPT <a@b>: x",
      "2026-01-02 03:04:05 cwd=" + repeat("x args: "),
      id + "** a " + repeat("(x "),
      id + "=> a " + repeat("<x "),
      "2026-01-02 03:04:05 x authenticator failed for (h) [1.2.3.4]" + repeat(" U=x"),
      "2026-01-02T03:04:05Z h dovecot: imap-login: Login: user=<>" + repeat(", a=<"),
  };
  LogEvent e;
  for (const string& line : lines) {
    ParseLine(line, &e, kUtc);
    EXPECT_NE(e.kind, LineKind::kUnknown) << line.substr(0, 80);
    EXPECT_TRUE(InsideLine(e, line));
  }
  ParseEximLine(lines[2], &e, kUtc);
  EXPECT_EQ(e.kind, LineKind::kRejectedRcpt);
  EXPECT_EQ(e.recipient, "a@b");
}

TEST(LogLineUnescape, EximEscapes) {
  EXPECT_EQ(UnescapeExim(R"(a\"b\\c)"), "a\"b\\c");
  EXPECT_EQ(UnescapeExim(R"(\n\r\t\b\v\f)"), "\n\r\t\b\v\f");
  EXPECT_EQ(UnescapeExim(R"(\303\251\0017)"),
            "\xc3\xa9\x01"
            "7");
  EXPECT_EQ(UnescapeExim(R"(\q\)"), "q\\");
  EXPECT_EQ(UnescapeExim(""), "");
}

}  // namespace
}  // namespace eg::sidecar
