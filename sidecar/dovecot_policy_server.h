// dovecot_policy_server.h - Dovecot's auth policy server: the HTTP side of dovecot_policy.h.
//
// SUMMARY
//   Dovecot (auth_policy_server_url, 2.2.27+) POSTs a JSON object about every authentication
//   attempt: `?command=allow` before it checks the password, `?command=report` after (the same
//   attributes plus "success" and "policy_reject", both JSON booleans; every other attribute is a
//   JSON string, named by auth_policy_request_attributes - the shipped snippet
//   exim-config/dovecot/95-eximguard-policy.conf sends login, remote, protocol, session_id).
//   DovecotPolicyServer answers `{"status": S, "msg": M}` from DovecotPolicy (0 allow, -1 refuse,
//   > 0 tarpit seconds) and turns every report, and every allow it refused, into an AuthAttempt
//   handed to `on_attempt`: Dovecot's own account of who tried what from where, the trusted
//   evidence the detectors may act on (unlike log lines, which anyone can write).
//
//   HTTP, per request, in this order:
//     401  the configured API header (auth_policy_server_api_header) is missing or wrong
//          (compared in constant time); nothing is parsed or counted
//     405  not a POST;  400  no or unknown ?command=, a body that is not a JSON object, a report
//          without a boolean "success"; nothing counted
//     413  a body over max_body_bytes (the connection is closed)
//     200  {"status":S,"msg":M}  (report: status 0)
//
// CONTRACT
//   - Callers: the daemon (`start`, when dovecot_policy.enabled) and tests. Start() binds the
//     listen address (which must be a loopback address: config validation refuses others, Start()
//     checks again) and runs one thread (Boost.Asio, asynchronous, one io_context) that serves
//     every connection; it never blocks the caller. Stop() (and the destructor) ends it within a
//     second: open connections are dropped, Dovecot falls back to auth_policy_reject_on_fail.
//   - on_attempt and log are called from the server thread, one call at a time, while a request is
//     being answered: they must be quick and thread-safe with respect to the caller's other
//     threads (the daemon's only count and log). They must not throw.
//   - Bounded: at most max_connections open connections (more are closed at once), headers of at
//     most 8 KiB, bodies of at most max_body_bytes, each request read within read_timeout (longer
//     than Dovecot's 10 s keep-alive idle time, so Dovecot closes idle connections first), each
//     answer written within 5 s. The decision's memory is bounded by dovecot_policy.h.
//   - The API header's value is a secret: never logged, never in an error or a stat.
//   - Stats() and Policy stats are safe to read from any thread.

#ifndef EXIMGUARD_SIDECAR_DOVECOT_POLICY_SERVER_H_
#define EXIMGUARD_SIDECAR_DOVECOT_POLICY_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "dovecot_policy.h"

namespace eg::sidecar {

// One authentication attempt as Dovecot told it.
enum class AttemptSource : uint8_t {
  kReport,        // ?command=report: the attempt's result
  kRefusedAllow,  // ?command=allow that we refused (Dovecot reports it again, policy_reject)
};

struct AuthAttempt {
  int64_t time = 0;  // unix seconds when it arrived
  std::string login;
  std::string remote_ip;
  std::string protocol;  // "imap", "pop3", "smtp" (Exim's dovecot authenticator), ...
  bool success = false;
  bool refused_by_us = false;  // kRefusedAllow, or a report with policy_reject
  std::string session;         // Dovecot's session id (ties allow and report together)
  AttemptSource source = AttemptSource::kReport;
  PolicyRule rule = PolicyRule::kNone;  // kRefusedAllow: why
};

struct DovecotPolicyServerOptions {
  std::string listen = "127.0.0.1:0";  // "IP:PORT", IPv6 as "[::1]:PORT"; port 0: any free
  std::string api_header_name = "X-API-Key";
  std::string api_header_value;  // secret; must not be empty
  DovecotPolicySettings policy;
  std::function<void(const AuthAttempt&)> on_attempt;  // may be empty
  std::function<void(const std::string&)> log;         // may be empty
  std::function<int64_t()> clock;                      // default: time(nullptr)
  size_t max_connections = 128;                        // Dovecot opens up to 100 in parallel
  size_t max_body_bytes = 16384;
  std::chrono::milliseconds read_timeout{12000};
};

struct DovecotPolicyServerStats {
  uint64_t requests = 0;  // answered with 200
  uint64_t allow_requests = 0;
  uint64_t report_requests = 0;
  uint64_t unauthorized = 0;  // 401
  uint64_t bad_requests = 0;  // 400, 405
  uint64_t too_large = 0;     // 413
  uint64_t busy = 0;          // connections closed for max_connections
  DovecotPolicyStats policy;
};

struct DovecotPolicyServerImpl;  // dovecot_policy_server.cpp

class DovecotPolicyServer {
 public:
  explicit DovecotPolicyServer(DovecotPolicyServerOptions options);
  ~DovecotPolicyServer();
  DovecotPolicyServer(const DovecotPolicyServer&) = delete;
  DovecotPolicyServer& operator=(const DovecotPolicyServer&) = delete;

  // Binds and starts the thread; false with `error` (no secret in it) when it cannot.
  bool Start(std::string* error);
  void Stop();
  uint16_t port() const;  // after Start()
  DovecotPolicyServerStats Stats() const;

 private:
  std::unique_ptr<DovecotPolicyServerImpl> impl_;
};

// The options from the config's dovecot_policy section: listen, API header, thresholds,
// allow_ips plus OwnAddresses(). Callbacks and clock are left for the caller.
DovecotPolicyServerOptions DovecotPolicyServerOptionsFromConfig(const Config& config);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_DOVECOT_POLICY_SERVER_H_
