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
                                e.key,       e.per,        e.text};
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
