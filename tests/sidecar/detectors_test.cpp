// detectors_test.cpp - scenario tests of sidecar/detectors.h: each feeds real-format log lines
// (through the parser) of one abuse pattern, with benign traffic around it that must not
// trigger, and checks the incidents. Times are UTC (ParseOptions::utc); t = 0 is
// 2026-01-02 03:00:00.

#include "detectors.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "log_line.h"

namespace eg::sidecar {
namespace {

constexpr int64_t kT0 = 1767322800;  // 2026-01-02 03:00:00 UTC
const ParseOptions kOpts{.utc = true, .year = 2026, .now = 0};

std::string Ts(int64_t off) {
  const time_t t = static_cast<time_t>(kT0 + off);
  tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string SyslogTs(int64_t off) {
  const time_t t = static_cast<time_t>(kT0 + off);
  tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%b %e %H:%M:%S", &tm);
  return buf;
}

// A valid old-format message id, distinct for each n < 1 000 000.
std::string Mid(int n) {
  std::string digits = std::to_string(n);
  return "1xV13h-" + std::string(6 - digits.size(), '0') + digits + "-07";
}

// "p0@dom p1@dom ..." (n addresses).
std::string Rcpts(int n, const std::string& dom, const std::string& prefix = "r") {
  std::string s;
  for (int i = 0; i < n; ++i) {
    if (i) s += ' ';
    s += prefix + std::to_string(i) + "@" + dom;
  }
  return s;
}

class Harness {
 public:
  explicit Harness(DetectorSettings s = Defaults()) : d_(std::move(s)) {}

  static DetectorSettings Defaults() {
    DetectorSettings s;
    s.local_domains = {"host.example", "Local.Example"};
    return s;
  }

  void Line(const std::string& line) {
    ParseLine(line, &ev_, kOpts);
    ASSERT_NE(ev_.kind, LineKind::kUnknown) << line;
    ASSERT_NE(ev_.kind, LineKind::kOther) << line;
    ASSERT_FALSE(ev_.counted_as_unknown) << line;
    d_.Feed(ev_, line);
    for (Incident& i : d_.TakeIncidents()) got_.push_back(std::move(i));
  }

  // SMTP-authenticated arrival.
  std::string Smtp(int64_t t, const std::string& auth, const std::string& rcpts,
                   const std::string& ip = "203.0.113.9", std::string subject = "") {
    const std::string id = Mid(next_id_++);
    if (subject.empty()) subject = "note " + id;  // distinct unless a test wants repeats
    Line(Ts(t) + " [4000] " + id + " <= " + auth + " H=(pc) [" + ip +
         "]:51234 P=esmtpsa A=dovecot_login:" + auth + " S=1234 T=\"" + subject + "\" for " +
         rcpts);
    return id;
  }
  // A local submission (PHP mail()): optional cwd= line with `cwd_pid` (0: no [pid]) first.
  std::string Local(int64_t t, const std::string& user, const std::string& rcpts, uint32_t pid,
                    const std::string& cwd = "", const std::string& subject = "news") {
    const std::string p = pid ? " [" + std::to_string(pid) + "]" : "";
    if (!cwd.empty()) Line(Ts(t) + p + " cwd=" + cwd + " 3 args: /usr/sbin/sendmail -t -i");
    const std::string id = Mid(next_id_++);
    Line(Ts(t) + p + " " + id + " <= " + user + "@host.example U=" + user + " P=local S=300 T=\"" +
         subject + "\" for " + rcpts);
    return id;
  }
  void Delivered(int64_t t, const std::string& id, const std::string& rcpt) {
    Line(Ts(t) + " " + id + " => " + rcpt +
         " R=dnslookup T=remote_smtp H=mx.example [192.0.2.1] C=\"250 OK\"");
  }
  void Bounced(int64_t t, const std::string& id, const std::string& rcpt) {
    Line(Ts(t) + " " + id + " ** " + rcpt +
         " R=dnslookup T=remote_smtp H=mx.example [192.0.2.1]: 550 5.1.1 no such user");
  }
  void AuthFailed(int64_t t, const std::string& user, const std::string& ip) {
    Line(Ts(t) + " dovecot_login authenticator failed for (User) [" + ip +
         "]:28556: 535 Incorrect authentication data (set_id=" + user + ")");
  }
  void Login(int64_t t, const std::string& user, const std::string& ip) {
    Line(SyslogTs(t) + " mail dovecot: imap-login: Login: user=<" + user +
         ">, method=PLAIN, rip=" + ip + ", lip=192.0.2.10, mpid=4321, TLS");
  }

  std::vector<const Incident*> Find(std::string_view rule, std::string_view key = {}) const {
    std::vector<const Incident*> v;
    for (const Incident& i : got_)
      if (i.rule == rule && (key.empty() || i.key == key)) v.push_back(&i);
    return v;
  }
  size_t Count(std::string_view rule, std::string_view key = {}) const {
    return Find(rule, key).size();
  }
  const std::vector<Incident>& all() const { return got_; }
  // Forgets the rate incidents of `key`.
  void TakeRate(std::string_view key) {
    std::erase_if(
        got_, [&](const Incident& i) { return i.key == key && i.rule.substr(0, 5) == "rate_"; });
  }
  Detectors& d() { return d_; }
  Incident& scratch() { return scratch_; }

 private:
  Detectors d_;
  LogEvent ev_;
  std::vector<Incident> got_;
  Incident scratch_;
  int next_id_ = 0;
};

std::string Keys(const Harness& h) {
  std::string s;
  for (const Incident& i : h.all()) s += i.rule + ":" + i.key + " ";
  return s;
}

// ---- Rates ---------------------------------------------------------------------------------

TEST(DetectorRate, PerAccountWithOverrideWhitelistAndInternalMail) {
  DetectorSettings s = Harness::Defaults();  // sender: 8/minute, 100/hour
  s.overrides.push_back({PolicyKey{"big@ex.com", KeyClass::kSender, "big@ex.com"}, {1000, 5000}});
  s.whitelist.push_back(PolicyKey{"bulk@ex.com", KeyClass::kSender, "bulk@ex.com"});
  Harness h(s);
  for (int m = 0; m < 10; ++m) {
    const int64_t t = m * 70;                                      // 5 per window of 60..65 s
    h.Smtp(t, "normal@ex.com", Rcpts(5, "ext.example"));           // 5/minute, 50/hour
    h.Smtp(t + 1, "normal@ex.com", Rcpts(50, "local.example"));    // internal: not counted
    h.Smtp(t + 2, "Big@Ex.com", Rcpts(50, "ext.example"));         // under its override
    h.Smtp(t + 3, "bulk@ex.com", Rcpts(500, "ext.example", "b"));  // whitelisted
  }
  EXPECT_TRUE(h.all().empty()) << Keys(h);

  for (int i = 0; i < 20; ++i)
    h.Smtp(700 + i, "Spammer@ex.com", "victim@ext.example", "198.51.100.7", "hello");
  ASSERT_EQ(h.all().size(), 1u) << Keys(h);
  const Incident& inc = h.all()[0];
  EXPECT_EQ(inc.rule, "rate_per_minute");
  EXPECT_EQ(inc.key, "spammer@ex.com");
  EXPECT_EQ(inc.key_class, "sender");
  EXPECT_EQ(inc.count, 9u);
  EXPECT_EQ(inc.threshold, 8u);
  EXPECT_EQ(inc.time, kT0 + 708);
  EXPECT_EQ(inc.window_end - inc.window_start, 60);
  EXPECT_EQ(inc.ips, std::set<std::string>{"198.51.100.7"});
  EXPECT_EQ(inc.lines.size(), 5u);
  EXPECT_NE(inc.lines.back().find(Ts(708)), std::string::npos);
  EXPECT_EQ(inc.subjects, std::vector<std::string>{"hello"});
}

TEST(DetectorRate, PerHourSlidesAcrossTheHourBoundary) {
  Harness h;
  // 20 x 5 recipients from 03:50 to 04:12, then one more: the hour count reaches 101.
  for (int m = 0; m < 20; ++m) h.Smtp(3000 + m * 70, "a@ex.com", Rcpts(5, "ext.example"));
  EXPECT_TRUE(h.all().empty()) << Keys(h);
  h.Smtp(4400, "a@ex.com", "x@ext.example");
  EXPECT_EQ(h.Count("rate_per_hour", "a@ex.com"), 1u) << Keys(h);
  EXPECT_EQ(h.all().size(), 1u) << Keys(h);
}

TEST(DetectorRate, PerCwdViaCwdLinePairing) {
  Harness h;  // cwd: 5/minute
  // Interleaved processes: each arrival takes the cwd= of its own pid.
  for (int i = 0; i < 7; ++i) {
    const int64_t t = i * 5;
    h.Line(Ts(t) + " [100] cwd=/home/bad/public_html/wp/ 3 args: /usr/sbin/sendmail -t -i");
    h.Line(Ts(t) + " [101] cwd=/home/good/public_html 3 args: /usr/sbin/sendmail -t -i");
    if (i % 3 == 0)
      h.Line(Ts(t) + " [101] " + Mid(900 + i) +
             " <= good@host.example U=good P=local S=300 T=\"order\" for c@ext.example");
    h.Line(Ts(t) + " [100] " + Mid(i) +
           " <= bad@host.example U=bad P=local S=300 T=\"viagra\" for v@ext.example");
  }
  ASSERT_EQ(h.all().size(), 1u) << Keys(h);
  const Incident& inc = h.all()[0];
  EXPECT_EQ(inc.rule, "rate_per_minute");
  EXPECT_EQ(inc.key_class, "cwd");
  EXPECT_EQ(inc.key, "/home/bad/public_html/wp");
  EXPECT_EQ(inc.count, 6u);
  EXPECT_EQ(inc.scripts, std::vector<std::string>{"/home/bad/public_html/wp"});
  EXPECT_EQ(inc.subjects, std::vector<std::string>{"viagra"});

  // Without [pid]s nothing says which process wrote a cwd= line: no directory is attributed
  // (the uid and the sender still count).
  Harness n;
  for (int i = 0; i < 7; ++i) n.Local(1000 + i * 5, "nopid", "v@ext.example", 0, "/home/np/x");
  EXPECT_EQ(n.Count("rate_per_minute", "/home/np/x"), 0u) << Keys(n);
}

// Issue 9.2, as a Debian user saw it (default log_selector: no +pid): the script's cwd= line,
// then Exim's own delivery process and bounce, each with a cwd= line of the spool directory.
// Pairing by order blamed /var/spool/exim4 with Exim's bounces as evidence. Now: Exim's own
// cwd= lines are never a script directory, its bounces count for nobody, and without pids no
// directory is guessed.
TEST(DetectorRate, EximsOwnProcessesAreNeverBlamedAsAScriptDirectory) {
  Harness h;  // cwd 5/minute, sender 8/minute
  for (int i = 0; i < 10; ++i) {
    const int64_t t = i * 3;
    h.Line(Ts(t) + " cwd=/home/shop/public_html 3 args: /usr/sbin/sendmail -t -i");
    h.Line(Ts(t) + " cwd=/var/spool/exim4 3 args: /usr/sbin/exim4 -Mc " + Mid(500 + i));
    h.Line(Ts(t) + " " + Mid(i) + " <= shop@host.example U=shop P=local S=300 T=\"order\" for c" +
           std::to_string(i) + "@ext.example");
    // Exim's bounce: child_open_exim2() runs "exim -t -oem -oi -f <> -E<id>" (7 args).
    h.Line(Ts(t) + " cwd=/var/spool/exim4 7 args: /usr/sbin/exim4 -t -oem -oi -f <> -E" + Mid(i));
    h.Line(Ts(t) + " " + Mid(700 + i) + " <= <> R=" + Mid(i) +
           " U=Debian-exim P=local S=1800 T=\"Mail delivery failed\" for shop@host.example");
  }
  // With pids the spool directory's lines are still skipped: -E / -Mc re-invocations.
  h.Line(Ts(40) + " [77] cwd=/var/spool/exim4 3 args: /usr/sbin/exim4 -Mc " + Mid(900));
  h.Line(Ts(40) + " [78] cwd=/tmp 2 args: /usr/sbin/exim4 -E" + Mid(901));
  h.Line(Ts(40) + " [78] " + Mid(902) +
         " <= <> U=Debian-exim P=local S=100 T=\"Warning\" for shop@host.example");
  for (const Incident& i : h.all()) {
    EXPECT_NE(i.key, "/var/spool/exim4") << Keys(h);
    EXPECT_NE(i.key, "/tmp") << Keys(h);
    EXPECT_NE(i.key_class, "cwd") << Keys(h);  // no pids: no directory attributed
    EXPECT_NE(i.key, "debian-exim") << Keys(h);
  }
  // The script's own sender and uid still count: 10 > 8 per minute.
  EXPECT_EQ(h.Count("rate_per_minute", "shop@host.example"), 1u) << Keys(h);
  // Exim's bounces are no evidence of the script's sender.
  for (const Incident* i : h.Find("rate_per_minute", "shop@host.example")) {
    for (const std::string& line : i->lines) EXPECT_EQ(line.find("<= <>"), std::string::npos);
  }
}

TEST(DetectorRate, PerUidIsTheUserName) {
  // uid: 20/minute; sender 8/minute would fire too, so give the sender an override
  DetectorSettings s = Harness::Defaults();
  s.overrides.push_back(
      {PolicyKey{"www@host.example", KeyClass::kSender, "www@host.example"}, {0, 0}});
  s.whitelist.push_back(PolicyKey{"okuser", KeyClass::kUid, "okuser"});
  Harness u(s);
  for (int i = 0; i < 25; ++i) {
    u.Local(i * 2, "www", "v@ext.example", 2000 + i, "/home/www/s" + std::to_string(i % 25));
    u.Local(i * 2, "okuser", Rcpts(3, "ext.example"), 3000 + i);
  }
  // okuser: whitelisted uid, but its sender key okuser@host.example is still limited.
  EXPECT_EQ(u.Count("rate_per_minute", "www"), 1u) << Keys(u);
  EXPECT_EQ(u.Count("rate_per_minute", "okuser"), 0u) << Keys(u);
  EXPECT_EQ(u.Count("rate_per_minute", "www@host.example"), 0u) << Keys(u);
  const auto www = u.Find("rate_per_minute", "www");
  ASSERT_EQ(www.size(), 1u);
  EXPECT_EQ(www[0]->key_class, "uid");
  EXPECT_EQ(www[0]->count, 21u);
  EXPECT_EQ(www[0]->scripts.size(), 5u);
}

// ---- Many IPs, logins, auth failures -------------------------------------------------------

TEST(DetectorManyIps, TwoIpsPlusWebmailNoFourYes) {
  Harness h;
  h.Login(0, "user@ex.com", "198.51.100.1");
  h.Smtp(60, "user@ex.com", "a@ext.example", "198.51.100.1");
  h.Login(120, "user@ex.com", "203.0.113.50");
  h.Login(180, "user@ex.com", "127.0.0.1");  // webmail on the server
  h.Smtp(240, "user@ex.com", "b@ext.example", "127.0.0.1");
  h.Login(300, "user@ex.com", "::1");
  EXPECT_TRUE(h.all().empty()) << Keys(h);

  h.Login(400, "hacked@ex.com", "192.0.2.1");
  h.Smtp(500, "hacked@ex.com", "a@ext.example", "192.0.2.2");
  h.Login(600, "hacked@ex.com", "192.0.2.3");
  EXPECT_TRUE(h.all().empty()) << Keys(h);
  h.Smtp(700, "hacked@ex.com", "b@ext.example", "192.0.2.4");
  ASSERT_EQ(h.Count("many_ips", "hacked@ex.com"), 1u) << Keys(h);
  const Incident& inc = *h.Find("many_ips")[0];
  EXPECT_EQ(inc.count, 4u);
  EXPECT_EQ(inc.threshold, 3u);
  EXPECT_EQ(inc.ips.size(), 4u);
  EXPECT_EQ(h.all().size(), 1u) << Keys(h);

  // IPs more than an hour apart don't add up.
  for (int i = 0; i < 6; ++i)
    h.Login(10000 + i * 3700, "roamer@ex.com", "10.0.0." + std::to_string(i));
  EXPECT_EQ(h.Count("many_ips", "roamer@ex.com"), 0u) << Keys(h);
}

TEST(DetectorLogins, HundredPerHourNoHundredAndOneYes) {
  Harness h;
  for (int i = 0; i < 100; ++i) h.Login(i * 30, "busy@ex.com", "198.51.100.1");
  for (int i = 0; i < 150; ++i) h.Login(i * 40, "phone@ex.com", "198.51.100.2");  // 90/hour
  EXPECT_TRUE(h.all().empty()) << Keys(h);
  h.Login(100 * 30, "busy@ex.com", "198.51.100.1");
  ASSERT_EQ(h.Count("many_logins", "busy@ex.com"), 1u) << Keys(h);
  EXPECT_EQ(h.Find("many_logins")[0]->count, 101u);
  EXPECT_EQ(h.all().size(), 1u);
}

TEST(DetectorAuthFailures, ByAccountAndByIp) {
  Harness h;
  // Account: 4 failures from 4 IPs - no; a 5th - yes.
  for (int i = 0; i < 4; ++i) h.AuthFailed(i * 30, "victim@ex.com", "192.0.2." + std::to_string(i));
  // 5 failures spread over 8 minutes - no.
  for (int i = 0; i < 5; ++i) h.AuthFailed(i * 120, "typo@ex.com", "198.51.100.77");
  // IP: 4 failures with 4 different names - no.
  for (int i = 0; i < 4; ++i)
    h.AuthFailed(i * 10, "guess" + std::to_string(i) + "@ex.com", "185.143.75.81");
  EXPECT_TRUE(h.all().empty()) << Keys(h);

  h.AuthFailed(200, "victim@ex.com", "192.0.2.9");
  h.AuthFailed(210, "guess9@ex.com", "185.143.75.81");
  EXPECT_EQ(h.Count("auth_failures", "victim@ex.com"), 1u) << Keys(h);
  ASSERT_EQ(h.Count("auth_failures", "185.143.75.81"), 1u) << Keys(h);
  EXPECT_EQ(h.Find("auth_failures", "185.143.75.81")[0]->key_class, "ip");
  EXPECT_EQ(h.Find("auth_failures", "victim@ex.com")[0]->count, 5u);
  EXPECT_EQ(h.all().size(), 2u) << Keys(h);

  // Dovecot's summary line counts its attempts.
  h.Line(SyslogTs(1000) +
         " mail dovecot: imap-login: Disconnected (auth failed, 5 attempts in 12 secs): "
         "user=<brute@ex.com>, method=PLAIN, rip=45.0.0.1, lip=192.0.2.10, TLS");
  EXPECT_EQ(h.Count("auth_failures", "brute@ex.com"), 1u) << Keys(h);
  EXPECT_EQ(h.Count("auth_failures", "45.0.0.1"), 1u) << Keys(h);
}

// Issue 10.4: five failed AUTHs by an attacker firewalled the victim's own IPs, because the
// incident listed every IP the account ever used. Only the IPs that failed within the window are
// named, and one that also logged in successfully within the hour is spared.
TEST(DetectorAuthFailures, NameOnlyTheIpsThatFailedAndSpareThoseThatLoggedIn) {
  Harness h;
  h.Smtp(0, "anna@ex.com", "x@ext.example", "198.51.100.10");  // her office
  h.Login(10, "anna@ex.com", "198.51.100.11");                 // her phone
  h.AuthFailed(20, "anna@ex.com", "198.51.100.11");            // a typo on the phone
  for (int i = 0; i < 4; ++i) h.AuthFailed(30 + i, "anna@ex.com", "203.0.113.66");
  ASSERT_EQ(h.Count("auth_failures", "anna@ex.com"), 1u) << Keys(h);
  const Incident& i = *h.Find("auth_failures", "anna@ex.com")[0];
  EXPECT_EQ(i.ips, (std::set<std::string>{"203.0.113.66"}));
  EXPECT_EQ(i.spared_ips, (std::set<std::string>{"198.51.100.11"}));
  // Failures outside the window are not named either.
  Harness late;
  late.AuthFailed(0, "bob@ex.com", "192.0.2.1");
  for (int k = 0; k < 5; ++k) late.AuthFailed(1000 + k, "bob@ex.com", "192.0.2.2");
  ASSERT_EQ(late.Count("auth_failures", "bob@ex.com"), 1u) << Keys(late);
  EXPECT_EQ(late.Find("auth_failures", "bob@ex.com")[0]->ips, (std::set<std::string>{"192.0.2.2"}));
}

// ---- What counts: exactly what the guard counts --------------------------------------------

// Issue 10.3: ten unauthenticated recipients from an internet host with MAIL FROM:<ceo@victim>
// were counted as the victim's outgoing mail. Internet mail counts for nobody; a relay host
// (relay_hosts) counts by envelope sender, like the guard.
TEST(DetectorCounting, InternetMailIsNobodysOutgoingMailButRelayHostsCount) {
  DetectorSettings s = Harness::Defaults();
  std::string why;
  ASSERT_TRUE(ParseIpRange("10.0.0.0/8", &s.relay_hosts.emplace_back(), &why));
  Harness h(s);
  for (int i = 0; i < 10; ++i) {
    h.Line(Ts(i) + " " + Mid(i) +
           " <= ceo@victim.example H=mx.evil.example [192.0.2.66]:25 P=esmtp S=900 "
           "T=\"Invoice\" for r" +
           std::to_string(i) + "@ext.example");
    h.Line(Ts(i) + " " + Mid(100 + i) +
           " <= app@shop.example H=web1 [10.1.2.3]:25 P=esmtp S=900 T=\"Order " +
           std::to_string(i) + "\" for c" + std::to_string(i) + "@ext.example");
  }
  EXPECT_EQ(h.Count("rate_per_minute", "ceo@victim.example"), 0u) << Keys(h);
  EXPECT_EQ(h.Count("rate_per_minute", "app@shop.example"), 1u) << Keys(h);
  EXPECT_FALSE(h.d().Enrich("sender", "ceo@victim.example", &h.scratch()));
}

// Issue 9.3: a script sent 10 messages with a cwd limit of 5/min; 6-9 were held (frozen, as
// promised), and the daemon counted the frozen messages as sent: the uid's sender went over 8
// and message 10 was refused. A held message is not sent mail.
TEST(DetectorCounting, MessagesTheGuardHeldAreNotSent) {
  Harness h;  // sender 8/minute, cwd 5/minute
  for (int i = 0; i < 10; ++i) {
    const std::string pid = " [" + std::to_string(2000 + i) + "] ";
    const std::string id = Mid(i);
    h.Line(Ts(i) + pid + "cwd=/home/u/public_html 3 args: /usr/sbin/sendmail -t -i");
    if (i >= 5) {
      h.Line(Ts(i) + pid + id + " eximguard: held cwd /home/u/public_html 5/minute");
    }
    h.Line(Ts(i) + pid + id + " <= u@host.example U=u P=local S=300 T=\"hi\" for f" +
           std::to_string(i) + "@ext.example");
    if (i >= 5) h.Line(Ts(i) + pid + id + " frozen by ACL");
  }
  EXPECT_TRUE(h.all().empty()) << Keys(h);  // 5 sent: nobody is over a limit
}

// Issue 9.1: `set a@x 2/min` after the account had sent 8 (its limit then) judged those 8 under
// the new limit. A limit applies to what is sent after it.
TEST(DetectorRate, ALimitAppliesToWhatIsSentAfterIt) {
  DetectorSettings s = Harness::Defaults();
  s.overrides.push_back({PolicyKey{"shop@ex.com", KeyClass::kSender, "shop@ex.com"}, {2, 0}});
  s.rate_floors.push_back({PolicyKey{"shop@ex.com", KeyClass::kSender, "shop@ex.com"}, kT0 + 30});
  s.rate_floors.push_back({PolicyKey{"", KeyClass::kCwd, ""}, kT0 + 30});
  Harness h(s);
  for (int i = 0; i < 8; ++i) h.Smtp(i, "shop@ex.com", "r" + std::to_string(i) + "@ext.example");
  EXPECT_TRUE(h.all().empty()) << Keys(h);  // before the change: not judged by 2/min
  h.Smtp(31, "shop@ex.com", "a@ext.example");
  h.Smtp(32, "shop@ex.com", "b@ext.example");
  EXPECT_TRUE(h.all().empty()) << Keys(h);  // 2 after the change: at the limit
  h.Smtp(33, "shop@ex.com", "c@ext.example");
  ASSERT_EQ(h.Count("rate_per_minute", "shop@ex.com"), 1u) << Keys(h);
  EXPECT_EQ(h.Find("rate_per_minute", "shop@ex.com")[0]->count, 3u);
}

// ---- Bounce storm --------------------------------------------------------------------------

TEST(DetectorBounceStorm, NineteenNoTwentyOfThirtyYesFifteenOfFortyNo) {
  DetectorSettings s = Harness::Defaults();
  s.limits[0] = {0, 0};  // rates are not what this test is about
  Harness h(s);
  // 19 of 19 bounced: too few recipients.
  std::string id = h.Smtp(0, "few@ex.com", Rcpts(19, "ext.example"));
  for (int i = 0; i < 19; ++i) h.Bounced(10 + i, id, "r" + std::to_string(i) + "@ext.example");
  // 15 of 40 bounced (bounces first).
  id = h.Smtp(100, "fine@ex.com", Rcpts(40, "ext.example"));
  for (int i = 0; i < 15; ++i) h.Bounced(110 + i, id, "r" + std::to_string(i) + "@ext.example");
  for (int i = 15; i < 40; ++i) h.Delivered(130 + i, id, "r" + std::to_string(i) + "@ext.example");
  EXPECT_TRUE(h.all().empty()) << Keys(h);

  // 20 of 30 bounced, over two messages: fires once more than half of at least 20 bounced.
  const std::string a = h.Smtp(300, "storm@ex.com", Rcpts(10, "ext.example", "a"));
  const std::string b = h.Smtp(301, "storm@ex.com", Rcpts(20, "ext.example", "b"));
  for (int i = 0; i < 10; ++i) h.Delivered(310 + i, a, "a" + std::to_string(i) + "@ext.example");
  for (int i = 0; i < 10; ++i) h.Bounced(330 + i, b, "b" + std::to_string(i) + "@ext.example");
  EXPECT_EQ(h.Count("bounce_storm"), 0u) << Keys(h);  // 10 of 20: not more than half
  for (int i = 10; i < 20; ++i) h.Bounced(340 + i, b, "b" + std::to_string(i) + "@ext.example");
  ASSERT_EQ(h.Count("bounce_storm", "storm@ex.com"), 1u) << Keys(h);
  const Incident& inc = *h.Find("bounce_storm")[0];
  EXPECT_EQ(inc.count, 11u);  // 11 of 21 when it fired
  EXPECT_EQ(inc.threshold, 20u);
  EXPECT_NE(inc.lines.back().find(" ** "), std::string::npos);
  EXPECT_EQ(h.all().size(), 1u) << Keys(h);
}

// ---- Repeated subject ----------------------------------------------------------------------

TEST(DetectorRepeatedSubject, FiftyRecipientsOfOneSubjectInAnHour) {
  Harness h;
  for (int i = 0; i < 7; ++i) {
    h.Smtp(i * 120, "team@ex.com", Rcpts(7, "ext.example", "t" + std::to_string(i)), "192.0.2.1",
           "Meeting notes");  // 49
    h.Smtp(i * 120 + 1, "mixed@ex.com", Rcpts(7, "ext.example", "m" + std::to_string(i)),
           "192.0.2.2", "Subject " + std::to_string(i));  // different subjects
  }
  // One message to a big list is one send (the rate rules judge it), not a repeated subject.
  h.Smtp(1000, "announce@ex.com", Rcpts(60, "ext.example"), "192.0.2.4", "Meeting notes");
  h.TakeRate("announce@ex.com");
  EXPECT_TRUE(h.all().empty()) << Keys(h);
  for (int i = 0; i < 10; ++i)
    h.Smtp(2000 + i * 120, "spam@ex.com", Rcpts(5, "ext.example", "s" + std::to_string(i)),
           "192.0.2.3", R"(Your \"invoice\" is ready)");
  ASSERT_EQ(h.Count("repeated_subject", "spam@ex.com"), 1u) << Keys(h);
  const Incident& inc = *h.Find("repeated_subject")[0];
  EXPECT_EQ(inc.count, 50u);
  EXPECT_EQ(inc.threshold, 50u);
  EXPECT_EQ(inc.subjects, std::vector<std::string>{"Your \"invoice\" is ready"});
  EXPECT_EQ(h.all().size(), 1u) << Keys(h);
}

// ---- Cooldown and windows ------------------------------------------------------------------

TEST(DetectorCooldown, OneIncidentPerKeyAndRuleNotPerMessage) {
  Harness h;
  for (int i = 0; i < 600; ++i) h.Smtp(i * 5, "flood@ex.com", "x@ext.example");  // 12/min
  EXPECT_EQ(h.Count("rate_per_minute", "flood@ex.com"), 1u) << Keys(h);
  EXPECT_EQ(h.Count("rate_per_hour", "flood@ex.com"), 1u) << Keys(h);
  EXPECT_EQ(h.all().size(), 2u) << Keys(h);
  // After the cooldown, a new burst is a new incident.
  for (int i = 0; i < 20; ++i) h.Smtp(3700 + i, "flood@ex.com", "x@ext.example");
  EXPECT_EQ(h.Count("rate_per_minute", "flood@ex.com"), 2u) << Keys(h);

  DetectorSettings s = Harness::Defaults();
  s.cooldown_seconds = 60;
  Harness shortc(s);
  for (int i = 0; i < 60; ++i) shortc.Smtp(i * 5, "flood@ex.com", "x@ext.example");
  EXPECT_EQ(shortc.Count("rate_per_minute"), 5u) << Keys(shortc);
}

TEST(DetectorWindows, ByLogTimestampsSpreadOverMoreThanAnHour) {
  Harness h;
  // 90 recipients, a gap of more than an hour, 90 more: never 100 in an hour.
  for (int m = 0; m < 18; ++m) h.Smtp(m * 70, "slow@ex.com", Rcpts(5, "ext.example"));
  for (int m = 0; m < 18; ++m) h.Smtp(95 * 60 + m * 70, "slow@ex.com", Rcpts(5, "ext.example"));
  EXPECT_TRUE(h.all().empty()) << Keys(h);
  // The same within 40 minutes does.
  for (int m = 0; m < 36; ++m) h.Smtp(4 * 3600 + m * 66, "fast@ex.com", Rcpts(5, "ext.example"));
  EXPECT_EQ(h.Count("rate_per_hour", "fast@ex.com"), 1u) << Keys(h);
  EXPECT_EQ(h.all().size(), 1u) << Keys(h);
}

// ---- on_arrival hook -----------------------------------------------------------------------

struct SeenArrival {  // a CountedArrival with its views copied
  int64_t time;
  std::string message_id, account, cwd, user;
  bool local, authenticated;
  uint32_t all, counted;
  bool has_list;
};

TEST(DetectorHook, OnArrivalSeesEachCountedArrivalWithItsKeys) {
  DetectorSettings s = Harness::Defaults();
  std::vector<SeenArrival> seen;
  s.on_arrival = [&](const CountedArrival& a) {
    seen.push_back({a.time, std::string(a.message_id), std::string(a.account), std::string(a.cwd),
                    std::string(a.user), a.local, a.authenticated, a.recipients_all,
                    a.recipients_counted, a.has_recipient_list});
  };
  Harness h(s);
  // SMTP AUTH: the account is the lowercased A= id; local.example is internal.
  const std::string id1 =
      h.Smtp(10, "User@Ex.com", "a@ext.example b@Local.Example c@ext.example", "198.51.100.7");
  // A PHP script: cwd= paired by pid, U= user.
  const std::string id2 = h.Local(20, "www", "v@ext.example w@host.example", 555, "/home/www/x/");
  // A local submission without cwd= or a " for" list.
  h.Line(Ts(30) + " 1xV13h-777777-07 <= root@host.example U=root P=local S=10");
  // A bounce message of Exim (null sender, U= the Exim user) counts for nobody: the guard does
  // not count Exim's own messages (they start in its spool directory).
  h.Line(Ts(40) + " 1xV13h-777778-07 <= <> R=" + id1 +
         " U=mailnull P=local S=1800 for user@ex.com");
  // Not counted by any key: SMTP from the internet without auth. No call.
  h.Line(Ts(50) +
         " 1xV13h-777779-07 <= <> H=mx.ext.example [192.0.2.5]:25 P=esmtps S=900 for "
         "user@ex.com");
  h.Line(Ts(51) +
         " 1xV13h-777780-07 <= ceo@ex.com H=mx.ext.example [192.0.2.5]:25 P=esmtps S=900 for "
         "user@ex.com");
  ASSERT_EQ(seen.size(), 3u);

  EXPECT_EQ(seen[0].time, kT0 + 10);
  EXPECT_EQ(seen[0].message_id, id1);
  EXPECT_EQ(seen[0].account, "user@ex.com");
  EXPECT_EQ(seen[0].cwd, "");
  EXPECT_EQ(seen[0].user, "");
  EXPECT_FALSE(seen[0].local);
  EXPECT_TRUE(seen[0].authenticated);
  EXPECT_EQ(seen[0].all, 3u);
  EXPECT_EQ(seen[0].counted, 2u);
  EXPECT_TRUE(seen[0].has_list);

  EXPECT_EQ(seen[1].message_id, id2);
  EXPECT_EQ(seen[1].account, "www@host.example");
  EXPECT_EQ(seen[1].cwd, "/home/www/x");  // as the cwd key: trailing '/' dropped
  EXPECT_EQ(seen[1].user, "www");
  EXPECT_TRUE(seen[1].local);
  EXPECT_FALSE(seen[1].authenticated);
  EXPECT_EQ(seen[1].all, 2u);
  EXPECT_EQ(seen[1].counted, 1u);
  EXPECT_TRUE(seen[1].has_list);

  EXPECT_EQ(seen[2].account, "root@host.example");
  EXPECT_EQ(seen[2].cwd, "");
  EXPECT_EQ(seen[2].user, "root");
  EXPECT_EQ(seen[2].all, 1u);
  EXPECT_EQ(seen[2].counted, 1u);
  EXPECT_FALSE(seen[2].has_list);

  // count_internal: every recipient counts.
  DetectorSettings all = Harness::Defaults();
  all.count_internal = true;
  uint32_t counted = 0;
  all.on_arrival = [&](const CountedArrival& a) { counted = a.recipients_counted; };
  Harness hi(all);
  hi.Smtp(10, "u@ex.com", "a@ext.example b@local.example");
  EXPECT_EQ(counted, 2u);
}

// ---- Memory bound --------------------------------------------------------------------------

TEST(DetectorMemory, MillionDistinctSendersStayUnderTheCap) {
  DetectorSettings s = Harness::Defaults();
  s.max_keys = 1000;
  s.max_messages = 2000;
  Detectors d(s);
  LogEvent e;
  e.kind = LineKind::kArrival;
  e.counted_as_unknown = false;
  e.flag = "<=";
  e.protocol = "esmtpa";
  e.auth = "dovecot_login";  // authenticated: counted (the account is the envelope sender)
  e.recipients = {"a@ext.example"};
  std::string sender, id, subject;
  const std::string raw = "2026-01-02 03:00:00 1xV13h-000000-07 <= x@y for a@ext.example";
  for (int i = 0; i < 1000000; ++i) {
    sender = "s" + std::to_string(i) + "@ex.com";
    id = "1xV13h-" + std::to_string(100000 + i % 900000) + "-07";
    subject = "subj " + std::to_string(i);
    e.sender = sender;
    e.message_id = id;
    e.subject = subject;
    e.host_ip = "192.0.2.1";
    e.time = kT0 + i / 100;
    d.Feed(e, raw);
    if (i % 100000 == 0) {
      const DetectorStats st = d.Stats();
      ASSERT_LE(st.accounts, 1000u);
      ASSERT_LE(st.subjects, 1000u);
      ASSERT_LE(st.messages, 2000u);
    }
  }
  const DetectorStats st = d.Stats();
  EXPECT_LE(st.TrackedKeys(), 2000u);
  EXPECT_EQ(st.accounts, 1000u);
  EXPECT_LE(st.messages, 2000u);
  EXPECT_GE(st.evictions, 1998000u);
  EXPECT_TRUE(d.TakeIncidents().empty());

  // Idle keys go as soon as new keys come, even below the cap.
  DetectorSettings idle = Harness::Defaults();
  idle.idle_seconds = 600;
  Detectors di(idle);
  for (int i = 0; i < 3; ++i) {
    sender = "i" + std::to_string(i) + "@ex.com";
    e.sender = sender;
    e.subject = {};
    e.message_id = {};
    e.time = kT0 + i;
    di.Feed(e, raw);
  }
  EXPECT_EQ(di.Stats().accounts, 3u);
  sender = "late@ex.com";
  e.sender = sender;
  e.time = kT0 + 3600;
  di.Feed(e, raw);
  EXPECT_EQ(di.Stats().accounts, 1u);
}

}  // namespace
}  // namespace eg::sidecar
