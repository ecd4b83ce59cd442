// auth_attempts.h - counts every failed login attempt once, although several log lines of
// Exim, Dovecot and PAM may report the same one.
//
// SUMMARY
//   AuthAttempts attempts;                        // one per engine, fed in log order
//   const uint32_t n = attempts.Add(event);       // new failed attempts this line adds
//   if (n > 0) ...count n failures for event.auth_id and event.host_ip...
//
// WHICH LINES REPORT ONE ATTEMPT (log_line.h has the formats)
//   IMAP/POP3/submission/managesieve, through a Dovecot login process:
//     [PAM "authentication failure" line] -> [Dovecot passdb line "PASSDB(user,ip,<session>)"]
//     -> at the disconnect, one summary for ALL the connection's attempts ("(auth failed, N
//     attempts ..): .., session=<session>").
//   SMTP AUTH through Exim's dovecot authenticator (no session id: Exim is not a login
//   process):  [PAM line] -> [Dovecot passdb line without a session] -> Exim's "NAME
//   authenticator failed for ..." ~2 s later (auth_failure_delay).
//   SMTP AUTH with another authenticator: Exim's line alone.
//   The bracketed lines exist only with auth_verbose = yes (PAM's with a PAM passdb); PAM's
//   line usually lands in auth.log / secure, not the mail log.
//
// THE RULE
//   The first line of an attempt counts it and leaves a credit; a later line of the same
//   attempt spends that credit instead of counting again. Credits are kept per session (exact)
//   and per remote IP (for lines without a session); an IP's credits are spent only by lines
//   of the same IP. In detail, with n = what Add() returns:
//   - passdb line, `attempts` 0 (" - trying the next passdb"):            n = 0.
//   - passdb line with session S: 0 if S's summary was already counted (a late line); 0 if
//     S's last counted line had the same user and is at most 1 s older (the same attempt
//     going down the passdb chain: a real Dovecot 2.3.19 with two passdbs logs two lines per
//     attempt, and without auth_verbose_passwords neither says " - trying the next passdb";
//     a client's next attempt on the connection comes after auth_failure_delay, 2 s); 0 if
//     the IP has a PAM credit (spent; the credit moves to S); else 1, and S holds one more
//     counted attempt. (Merging too much only delays the count: the summary adds the rest.)
//   - passdb line without session: 0 if the IP's last session-less line had the same user
//     and is at most 1 s older (as above); else it spends a PAM credit (which moves to the
//     IP's session-less credit) or an Exim credit (n = 0); else n = 1 and a session-less
//     credit.
//   - PAM line: spends an Exim credit (n = 0), else n = 1 and a PAM credit.
//   - summary of N attempts with session S: N minus S's counted attempts, minus the IP's PAM
//     and session-less credits it spends (at most what is left); never below 0; a second
//     summary of S adds 0.
//   - summary without a session: N minus the IP's PAM, session-less and session credits
//     (counted attempts of sessions of this IP whose summary has not come) it spends.
//   - Exim "authenticator failed": spends a session-less or PAM credit (n = 0); else n = 1
//     and an Exim credit.
//   So when only summaries (or only Exim lines) are logged each counts in full, and when
//   several kinds are, the total per IP is still the number of attempts. Known imprecision:
//   attempts of one user faster than 1 s apart without a session (auth_failure_delay = 0)
//   count once; userdb "unknown user" lines look like passdb ones.
//
// CONTRACT
//   - Bounded: at most Limits::max_sessions sessions and max_ips IPs are remembered (the older
//     half is dropped when full), and credits older than window_seconds of log time expire
//     (Dovecot ends an unauthenticated connection after 3 minutes, so its summary comes within
//     that time of its attempts). Memory: about 100 bytes per entry.
//   - Add() never throws but std::bad_alloc; events other than kAuthFailed,
//     kDovecotAuthFailed and kDovecotPassdbFailed give 0 and change nothing.
//   - Callers: the detectors (the lead wires it), tests, fuzzers. Standard library only. Not
//     thread-safe: one instance per engine.

#ifndef EXIMGUARD_SIDECAR_AUTH_ATTEMPTS_H_
#define EXIMGUARD_SIDECAR_AUTH_ATTEMPTS_H_

#include <cstdint>
#include <string>
#include <unordered_map>

#include "log_line.h"

namespace eg::sidecar {

class AuthAttempts {
 public:
  struct Limits {
    size_t max_sessions = 16384;
    size_t max_ips = 16384;
    int64_t window_seconds = 300;
  };

  AuthAttempts() = default;
  explicit AuthAttempts(Limits limits) : limits_(limits) {}

  // The failed attempts `e` reports that no earlier event did (see THE RULE).
  uint32_t Add(const LogEvent& e);

  size_t sessions() const { return sessions_.size(); }
  size_t ips() const { return ips_.size(); }

 private:
  struct Session {
    int64_t last = 0;
    uint32_t counted = 0;      // attempts its passdb lines counted or took over
    int64_t last_counted = 0;  // time of the line that last counted (or took over) one
    bool summarized = false;
    std::string ip;
    std::string last_user;  // and its user
  };
  struct Credits {
    int64_t last = 0;
    uint32_t pam = 0;              // PAM lines counted, no Dovecot line seen for them yet
    uint32_t sessionless = 0;      // Dovecot passdb lines without a session (Exim's authenticator)
    uint32_t exim = 0;             // Exim lines counted before any Dovecot line
    uint32_t sessions = 0;         // counted attempts of this IP's sessions not yet summarized
    int64_t last_sessionless = 0;  // the last session-less passdb line that counted
    std::string sessionless_user;  // and its user
  };

  Session& SessionOf(const std::string& id, int64_t now);
  Credits* CreditsOf(std::string_view ip, int64_t now);  // null for an empty ip
  template <typename Map>
  void MakeRoom(Map* map, size_t max, int64_t now);

  Limits limits_;
  int64_t now_ = 0;  // the latest log time seen
  std::unordered_map<std::string, Session> sessions_;
  std::unordered_map<std::string, Credits> ips_;
  std::string key_;  // reused for look-ups
};

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_AUTH_ATTEMPTS_H_
