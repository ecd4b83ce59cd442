// dovecot_policy.h - the decision of the Dovecot auth policy server: should this login attempt
// go ahead, be refused, or be slowed down? Pure logic (no I/O, no clock of its own, no threads).
//
// SUMMARY
//   Dovecot asks before every authentication (`?command=allow`) and reports every result after it
//   (`?command=report`, dovecot_policy_server.h parses both). DovecotPolicy keeps, per remote IP
//   and per account (the login as Dovecot sent it, lowercased), what recent attempts showed and
//   answers `allow` at once, so a password guesser or a credential stuffer is stopped at its first
//   attempts, not after a log file shows them:
//     1. IP refused: an IP with `failures` failed logins (any accounts) within `failure_seconds`
//        is refused (status -1) for `block_seconds` from the failure that made the count, even
//        with the right password.
//     2. Account under attack: an account whose logins failed from `account_ips` different IPs
//        within `failure_seconds` has every new attempt tarpitted (status = `tarpit_seconds`:
//        Dovecot waits that long before it answers) - except from an IP that logged in to that
//        account successfully within `trusted_seconds` (the owner keeps working).
//     3. Never refused or tarpitted: loopback (127.0.0.0/8, ::1; unless exempt_loopback is off,
//        for tests), the server's own addresses and the allowlist (IPs and CIDRs). Their failures
//        are not counted either.
//   Reports that Dovecot marks policy_reject (our own refusal) are not failures: they say nothing
//   about the password. A success does not forgive an IP's failures (an attacker with one good
//   account could otherwise reset its count between guesses).
//
// CONTRACT
//   - Callers: dovecot_policy_server.cpp (one instance per server, under its mutex) and tests.
//     Not thread-safe: the caller serialises Allow() and Report().
//   - Times are unix seconds passed in by the caller (the server passes time(nullptr), tests a
//     made-up clock). A clock that goes back never crashes; windows just look younger.
//   - Memory is bounded: at most max_ips IPs and max_accounts accounts are tracked, the least
//     recently used one is forgotten first (an evicted IP starts again at zero failures; an evicted
//     account stops being under attack). Per entry the state is O(failures) or O(account_ips) and
//     kMaxTrustedPerAccount; both thresholds are bounded by config validation (<= 100).
//   - Bad input (an unparsable IP, an empty login) never throws: an unparsable remote is treated
//     as "no IP" (rule 1 does not apply to it), an empty login as "no account" (rule 2 does not).

#ifndef EXIMGUARD_SIDECAR_DOVECOT_POLICY_H_
#define EXIMGUARD_SIDECAR_DOVECOT_POLICY_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ip_match.h"

namespace eg::sidecar {

struct DovecotPolicySettings {
  uint32_t failures = 5;            // rule 1: failed logins of one IP ...
  uint32_t failure_seconds = 300;   // ... within this many seconds
  uint32_t block_seconds = 900;     // how long such an IP is refused
  uint32_t account_ips = 5;         // rule 2: failing IPs of one account within failure_seconds
  uint32_t tarpit_seconds = 3;      // the tarpit's delay
  uint32_t trusted_seconds = 3600;  // a success from an IP exempts it from its account's tarpit
  bool exempt_loopback = true;
  std::vector<IpRange> allow;  // allowlist plus the server's own addresses
  size_t max_ips = 50000;
  size_t max_accounts = 50000;
};

inline constexpr size_t kMaxTrustedPerAccount = 8;  // recent successful IPs kept per account

// What Dovecot sent (the fields eximguard uses).
struct AuthQuery {
  std::string login;      // as sent ("login"), may be empty
  std::string remote_ip;  // "remote", may be empty or unparsable
  std::string protocol;   // "imap", "pop3", "smtp", ...
};

enum class PolicyRule : uint8_t { kNone, kExempt, kIpBlocked, kAccountTarpit };
const char* PolicyRuleName(PolicyRule rule);

struct PolicyVerdict {
  int status = 0;  // Dovecot's answer: 0 allow, < 0 refuse, > 0 tarpit seconds
  PolicyRule rule = PolicyRule::kNone;
  std::string message;  // for Dovecot's "msg" (shown to the client): "" when allowed
};

struct DovecotPolicyStats {
  uint64_t allowed = 0;
  uint64_t refused = 0;
  uint64_t tarpitted = 0;
  uint64_t exempt = 0;     // allow answered 0 because the IP is exempt
  uint64_t failures = 0;   // failed logins counted
  uint64_t successes = 0;  // successful logins seen
  uint64_t evictions = 0;  // IP or account entries forgotten for room
  size_t tracked_ips = 0;
  size_t tracked_accounts = 0;
};

class DovecotPolicy {
 public:
  explicit DovecotPolicy(DovecotPolicySettings settings);

  // `?command=allow`: the answer to give Dovecot now.
  PolicyVerdict Allow(const AuthQuery& q, int64_t now);
  // `?command=report`: the result of an attempt. `policy_reject`: Dovecot refused it because we
  // (or the policy) said so; not counted as a failure.
  void Report(const AuthQuery& q, bool success, bool policy_reject, int64_t now);

  // True when `ip_text` is never refused or tarpitted (loopback, own, allowlisted).
  bool IsExempt(std::string_view ip_text) const;
  DovecotPolicyStats Stats() const;
  const DovecotPolicySettings& settings() const { return settings_; }

 private:
  struct IpState {
    std::vector<int64_t> failures;  // ring of the last settings_.failures failure times
    size_t next = 0;                // ring position of the oldest
    int64_t blocked_until = 0;
  };
  struct AccountState {
    struct Seen {
      std::string ip;
      int64_t time = 0;
    };
    std::vector<Seen> failed_ips;  // distinct IPs, at most account_ips, most recent failure
    std::vector<Seen> trusted;     // successful IPs, at most kMaxTrustedPerAccount
  };
  template <typename State>
  struct Lru {
    std::list<std::pair<std::string, State>> order;  // most recently used first
    std::unordered_map<std::string, typename std::list<std::pair<std::string, State>>::iterator>
        index;
    State* Find(const std::string& key);
    State& Get(const std::string& key, size_t cap, uint64_t* evictions);
  };

  bool Exempt(const std::optional<IpAddress>& ip) const;
  bool AccountUnderAttack(const AccountState& a, int64_t now) const;

  DovecotPolicySettings settings_;
  Lru<IpState> ips_;
  Lru<AccountState> accounts_;
  DovecotPolicyStats stats_;
};

// Splits "IP:PORT" / "[IPv6]:PORT" (port 0 to 65535); false with `why` for anything else or
// for an IP that is not a loopback address (the policy server listens on loopback only).
bool ParseLoopbackListen(std::string_view text, std::string* ip, uint16_t* port, std::string* why);

// The login as an account key: lowercased, surrounding spaces trimmed.
std::string AccountKey(std::string_view login);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_DOVECOT_POLICY_H_
