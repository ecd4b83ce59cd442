// auth_attempts_test.cpp - each failed login attempt counted once (sidecar/auth_attempts.h):
// a real Dovecot 2.3.19 log (tests/sidecar/testdata/dovecot-2.3.19.log: two passdbs, with and
// without auth_verbose_passwords, doveadm's session-less requests, disallowed user names),
// summaries against their sessions' passdb lines in either order, Exim's authenticator lines
// against Dovecot's session-less ones, PAM's own lines, credits per IP, expiry and the bounds.

#include "auth_attempts.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

namespace eg::sidecar {
namespace {

ParseOptions Options() {
  ParseOptions o;
  o.utc = true;
  o.year = 2026;  // the syslog-style stamps carry none
  return o;
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// What Add() returns for each line (parsed as a mixed log: Exim's or Dovecot's).
std::vector<uint32_t> Added(AuthAttempts& a, const std::vector<std::string>& lines) {
  std::vector<uint32_t> out;
  for (const std::string& line : lines) out.push_back(a.Add(ParseLine(line, Options())));
  return out;
}

uint32_t Sum(const std::vector<uint32_t>& v) {
  uint32_t n = 0;
  for (uint32_t x : v) n += x;
  return n;
}

TEST(AuthAttempts, RealDovecot2319LogCountsEachAttemptOnce) {
  const std::vector<std::string> lines = ReadLines(EG_TESTDATA_DIR "/dovecot-2.3.19.log");
  ASSERT_GE(lines.size(), 20u);
  AuthAttempts a;
  const std::vector<uint32_t> added = Added(a, lines);
  uint32_t summaries = 0;
  for (const std::string& line : lines) {
    const LogEvent e = ParseLine(line, Options());
    if (e.kind == LineKind::kDovecotAuthFailed) summaries += e.attempts;
  }
  // The summaries say 3 + 1 + 2 + 2; doveadm's two requests have no summary (no login
  // process), so only their passdb lines tell of them.
  EXPECT_EQ(summaries, 8u);
  EXPECT_EQ(Sum(added), 10u);
  // The first connection: two passdbs, so two lines per attempt; three attempts, and its
  // summary then adds nothing.
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find("(auth failed, 3 attempts") != std::string::npos) {
      EXPECT_EQ(added[i], 0u) << lines[i];
    }
    if (lines[i].find(" - trying the next passdb") != std::string::npos) {
      EXPECT_EQ(added[i], 0u) << lines[i];
    }
  }
  // Only the summaries (the login processes' lines, auth_verbose = no): the same 8.
  AuthAttempts only;
  uint32_t n = 0;
  for (const std::string& line : lines) {
    const LogEvent e = ParseLine(line, Options());
    if (e.kind == LineKind::kDovecotAuthFailed) n += only.Add(e);
  }
  EXPECT_EQ(n, 8u);
}

TEST(AuthAttempts, ASummaryAddsWhatItsSessionsLinesDidNotCount) {
  AuthAttempts a;
  EXPECT_EQ(Added(a, {"Jan  2 10:00:01 auth: Info: passwd-file(u@d,192.0.2.1,<S1>): Password "
                      "mismatch",
                      "Jan  2 10:00:20 imap-login: Info: Disconnected: Connection closed (auth "
                      "failed, 5 attempts in 19 secs): user=<u@d>, method=PLAIN, rip=192.0.2.1, "
                      "lip=192.0.2.2, session=<S1>",
                      // a second copy of the summary (a re-read) and a late worker line: nothing
                      "Jan  2 10:00:20 imap-login: Info: Disconnected: Connection closed (auth "
                      "failed, 5 attempts in 19 secs): user=<u@d>, method=PLAIN, rip=192.0.2.1, "
                      "lip=192.0.2.2, session=<S1>",
                      "Jan  2 10:00:21 auth: Info: passwd-file(u@d,192.0.2.1,<S1>): Password "
                      "mismatch"}),
            (std::vector<uint32_t>{1, 4, 0, 0}));
}

TEST(AuthAttempts, LinesOfOneAttemptDownThePassdbChainCountOnce) {
  AuthAttempts a;
  EXPECT_EQ(Added(a, {"Jan  2 10:00:01 auth: passwd-file(u@d,192.0.2.1,<S1>): Password mismatch",
                      "Jan  2 10:00:01 auth-worker(7): pam(u@d,192.0.2.1,<S1>): unknown user",
                      // the next attempt, 2 s later (auth_failure_delay)
                      "Jan  2 10:00:03 auth: passwd-file(u@d,192.0.2.1,<S1>): Password mismatch",
                      // another user at once: another attempt
                      "Jan  2 10:00:03 auth: passwd-file(v@d,192.0.2.1,<S1>): Password mismatch"}),
            (std::vector<uint32_t>{1, 0, 1, 1}));
}

TEST(AuthAttempts, EximsLineAndDovecotsSessionlessLineAreOneSmtpAttempt) {
  AuthAttempts a;
  const std::string dovecot =
      "Jan  2 10:00:01 auth: passwd-file(u@d,203.0.113.9): Password mismatch";
  const std::string exim =
      "2026-01-02 10:00:03 dovecot_login authenticator failed for (x) [203.0.113.9]:5000: 535 "
      "Incorrect authentication data (set_id=u@d)";
  // The client's next attempt on the connection, after auth_failure_delay.
  const std::string dovecot2 =
      "Jan  2 10:00:04 auth: passwd-file(u@d,203.0.113.9): Password mismatch";
  const std::string exim2 =
      "2026-01-02 10:00:06 dovecot_login authenticator failed for (x) [203.0.113.9]:5000: 535 "
      "Incorrect authentication data (set_id=u@d)";
  EXPECT_EQ(Added(a, {dovecot, exim, dovecot2, exim2}), (std::vector<uint32_t>{1, 0, 1, 0}));
  // Exim's line first (a clock skew between the logs), or Exim's alone.
  AuthAttempts b;
  EXPECT_EQ(Added(b, {exim, dovecot, exim2}), (std::vector<uint32_t>{1, 0, 1}));
  // Another IP's lines spend nothing of this IP's.
  AuthAttempts c;
  EXPECT_EQ(Added(c, {dovecot,
                      "2026-01-02 10:00:03 dovecot_login authenticator failed for (x) "
                      "[203.0.113.10]:5000: 535 Incorrect authentication data "
                      "(set_id=u@d)"}),
            (std::vector<uint32_t>{1, 1}));
}

TEST(AuthAttempts, PamsOwnLineIsTheSameAttemptAsDovecotsLines) {
  const std::string pam =
      "Jan  2 10:00:01 host auth[3906]: pam_unix(dovecot:auth): authentication failure; "
      "logname= uid=0 euid=0 tty=dovecot ruser=bob rhost=198.51.100.4  user=bob";
  const std::string worker =
      "Jan  2 10:00:01 host dovecot: auth-worker(3906): pam(bob,198.51.100.4,<S2>): "
      "pam_authenticate() failed: Authentication failure (password mismatch?)";
  const std::string summary =
      "Jan  2 10:00:09 host dovecot: imap-login: Disconnected (auth failed, 1 attempts in 8 "
      "secs): user=<bob>, method=PLAIN, rip=198.51.100.4, lip=192.0.2.2, session=<S2>";
  AuthAttempts all;
  EXPECT_EQ(Added(all, {pam, worker, summary}), (std::vector<uint32_t>{1, 0, 0}));
  AuthAttempts no_verbose;  // auth_verbose = no: PAM's line and the summary
  EXPECT_EQ(Added(no_verbose, {pam, summary}), (std::vector<uint32_t>{1, 0}));
  AuthAttempts smtp;  // SMTP AUTH through Dovecot's PAM passdb
  EXPECT_EQ(Added(smtp, {pam,
                         "2026-01-02 10:00:03 dovecot_plain authenticator failed for (x) "
                         "[198.51.100.4]:5000: 535 Incorrect authentication data (set_id=bob)"}),
            (std::vector<uint32_t>{1, 0}));
}

TEST(AuthAttempts, ASummaryWithoutSessionSpendsTheIpsCountedSessionLines) {
  // login_log_format_elements without session=: the summary cannot name its passdb lines, so
  // it spends what this IP's unsummarized sessions counted.
  AuthAttempts a;
  EXPECT_EQ(Added(a, {"Jan  2 10:00:01 auth: passwd-file(u@d,192.0.2.7,<S3>): Password mismatch",
                      "Jan  2 10:00:03 auth: passwd-file(u@d,192.0.2.7,<S3>): Password mismatch",
                      "Jan  2 10:00:05 imap-login: Disconnected (auth failed, 3 attempts in 4 "
                      "secs): user=<u@d>, method=PLAIN, rip=192.0.2.7, lip=192.0.2.2",
                      "Jan  2 10:00:06 imap-login: Disconnected (auth failed, 2 attempts in 4 "
                      "secs): user=<u@d>, method=PLAIN, rip=192.0.2.7, lip=192.0.2.2"}),
            (std::vector<uint32_t>{1, 1, 1, 2}));
}

TEST(AuthAttempts, CreditsExpireAfterTheWindow) {
  AuthAttempts a(AuthAttempts::Limits{.max_sessions = 100, .max_ips = 100, .window_seconds = 60});
  EXPECT_EQ(Added(a, {"Jan  2 10:00:01 auth: passwd-file(u@d,203.0.113.9): Password mismatch",
                      "2026-01-02 10:05:00 dovecot_login authenticator failed for (x) "
                      "[203.0.113.9]:5000: 535 Incorrect authentication data (set_id=u@d)"}),
            (std::vector<uint32_t>{1, 1}));
}

TEST(AuthAttempts, OtherLinesAndNonFailuresAddNothing) {
  AuthAttempts a;
  EXPECT_EQ(Added(a, {"Jan  2 10:00:01 imap-login: Info: Login: user=<u@d>, method=PLAIN, "
                      "rip=192.0.2.1, lip=192.0.2.2, session=<S9>",
                      "2026-01-02 10:00:01 1tABCD-100000-AB Completed", "garbage",
                      "Jan  2 10:00:01 auth: Info: passwd-file(u@d,192.0.2.1,<S9>): unknown user "
                      "(given password: x) - trying the next passdb"}),
            (std::vector<uint32_t>{0, 0, 0, 0}));
  EXPECT_EQ(a.sessions(), 0u);
}

TEST(AuthAttempts, MemoryStaysBounded) {
  AuthAttempts a(AuthAttempts::Limits{.max_sessions = 64, .max_ips = 64, .window_seconds = 300});
  uint32_t total = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string ip = "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250);
    const std::string line = "Jan  2 10:00:01 auth: passwd-file(u," + ip + ",<S" +
                             std::to_string(i) + ">): Password mismatch";
    total += a.Add(ParseLine(line, Options()));
    EXPECT_LE(a.sessions(), 64u);
    EXPECT_LE(a.ips(), 64u);
  }
  EXPECT_EQ(total, 1000u);  // distinct IPs and sessions: every line is its own attempt
}

}  // namespace
}  // namespace eg::sidecar
