// whm_client.h - cPanel's WHM API 1 (and UAPI through it) as the configured WHM user: who owns
// a domain, suspend/hold a mailbox's outgoing mail or its login, suspend/hold a whole account.
//
// SUMMARY
//   WhmClient whm(config.whm);
//   std::string user;
//   WhmResult r = whm.DomainOwner("example.com", &user);          // "bob"
//   r = whm.Mailbox(MailboxAction::kSuspendOutgoing, user, "info@example.com");
//   r = whm.Account(AccountAction::kSuspend, user, "eximguard: 900 mails/min");
//   if (!r.ok) log("WHM: %s%s", r.reason, r.transient ? " (will retry later)" : "");
//
// CONTRACT
//   - Callers: the daemon's action worker, the `suspend`/`unsuspend` verbs, the bots; any
//     thread. Each call is one or more blocking HTTPS requests (http_client.h) to
//     settings.url + "/json-api/<function>?api.version=1&...", header
//     `Authorization: whm USER:TOKEN`, TLS per settings.ca_file / settings.verify_tls, each
//     request timing out after settings.timeout_seconds.
//   - Answers (cPanel's documentation, api.docs.cpanel.net, read for this file):
//       WHM API 1 {"data":…, "metadata":{"result":1|0, "reason":"…", "command":…}}
//         /openapi/whm/operation/suspend_outgoing_email/ (and unsuspend_, hold_, release_),
//         /openapi/whm/operation/getdomainowner/   data.user
//         /openapi/whm/operation/domainuserdata/   data.userdata.user
//         suspendacct (user=, reason=), unsuspendacct (user=)
//       UAPI through WHM: /specifications/whm.openapi/api-execution/cpanel-uapi_cpanel
//         /json-api/uapi_cpanel?api.version=1&cpanel.user=U&cpanel.module=Email&
//         cpanel.function=F&email=E; the UAPI result is data.uapi {"status":1|0,"errors":[…]}
//         (/openapi/cpanel/operation/suspend_outgoing, hold_outgoing, suspend_login, …)
//       The older bridge: /specifications/whm.openapi/api-execution/other-cpanel
//         /json-api/cpanel?cpanel_jsonapi_user=U&cpanel_jsonapi_apiversion=3&
//         cpanel_jsonapi_module=Email&cpanel_jsonapi_func=F&email=E; its answer is read as
//         {"result":{"status","errors"}} (UAPI), else {"cpanelresult":{"error", "event":
//         {"result"}}} (API 2), else WHM API 1 metadata.
//   - Outcomes: metadata.result 1 (and, for UAPI, data.uapi.status 1) is ok. Result 0 is a
//     refusal: ok=false, transient=false, reason = metadata.reason (UAPI: its errors joined
//     with "; "). A refusal that says the state already holds ("already" in the reason, or
//     "not suspended" for an unsuspend/release) counts as ok with already=true: the caller
//     asked for a state and it is there.
//     HTTP 401/403 (bad token) and other 4xx are refusals too. Transient, retried: no answer
//     (connection refused, TLS failure, timeout), HTTP 5xx or 429, or a 2xx body that is not
//     JSON; up to settings.retries further attempts, sleeping backoff, 2*backoff, 4*backoff…
//     (capped at max_backoff) in between; after the last one ok=false, transient=true.
//     `attempts` counts the HTTP requests made by the call (all endpoints together).
//   - UAPI -> legacy fallback: Mailbox() asks uapi_cpanel first and asks the /cpanel bridge
//     ONLY when the first answer says the endpoint or function does not exist: HTTP 404, or a
//     metadata.reason / data.uapi error that says "unknown app", "unknown function", "unknown
//     module", or names a function/module/app together with "does not exist", "doesn't
//     exist", "not found", "no such", "could not find", "cannot find" or "failed to load"
//     (the mailbox and user are cut out of the text before it is matched, so "the account
//     function@x does not exist" is a plain refusal). A plain refusal is never retried
//     elsewhere. WhmResult::legacy says the bridge answered.
//   - DomainOwner(): getdomainowner; when that is refused or names nobody (data.user null or
//     ""), domainuserdata. A transient failure of the first is returned as is (the second
//     would go to the same unreachable server). Found owners are cached for owner_ttl
//     (mutex-guarded, at most kWhmOwnerCacheMax domains); "nobody owns it" is not cached.
//   - Idempotency and bookkeeping are the caller's (SQLite state): this only talks to WHM.
//   - Empty settings.token: every call fails at once (no request) with reason
//     "whm.token is not set", transient=false, attempts=0. Empty domain/user/email: refused the
//     same way.
//   - SECURITY: the token is only ever in the Authorization header. No reason ever contains
//     it: transport errors come from HttpSend (which keeps URLs and headers out), WHM's own
//     texts are scrubbed of the token as well, and reasons are capped at 300 bytes. Nothing
//     here logs.
//   - Never throws but std::bad_alloc.
//
// THREAD SAFETY
//   All methods may be called from several threads at once: settings are copied at
//   construction and never change; the owner cache has its own mutex (not held during
//   requests). Calls block the calling thread for up to
//   (retries+1) * timeout + the backoff sleeps, per endpoint tried.

#ifndef EXIMGUARD_SIDECAR_WHM_CLIENT_H_
#define EXIMGUARD_SIDECAR_WHM_CLIENT_H_

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "config.h"

namespace eg::sidecar {

inline constexpr size_t kWhmOwnerCacheMax = 10000;

// UAPI Email functions on one mailbox (email=).
enum class MailboxAction {
  kSuspendOutgoing,    // Email::suspend_outgoing: its outgoing mail is rejected
  kUnsuspendOutgoing,  // Email::unsuspend_outgoing
  kHoldOutgoing,       // Email::hold_outgoing: its outgoing mail waits in Exim's queue
  kReleaseOutgoing,    // Email::release_outgoing
  kSuspendLogin,       // Email::suspend_login: no IMAP/POP/SMTP-AUTH login
  kUnsuspendLogin,     // Email::unsuspend_login
};

// WHM API 1 functions on a whole cPanel account (user=).
enum class AccountAction {
  kSuspendOutgoing,    // suspend_outgoing_email
  kUnsuspendOutgoing,  // unsuspend_outgoing_email
  kHoldOutgoing,       // hold_outgoing_email
  kReleaseOutgoing,    // release_outgoing_email
  kSuspend,            // suspendacct (with reason=)
  kUnsuspend,          // unsuspendacct
};

// The cPanel function names ("suspend_outgoing", "suspendacct", ...).
std::string_view MailboxFunction(MailboxAction action);
std::string_view AccountFunction(AccountAction action);

struct WhmResult {
  bool ok = false;
  std::string reason;      // why not (or WHM's note when ok); never the token
  bool transient = false;  // worth trying again later (no answer, 5xx, 429, not JSON)
  int attempts = 0;        // HTTP requests made
  bool already = false;    // ok because WHM said the state already held
  bool legacy = false;     // Mailbox(): the /json-api/cpanel bridge answered
};

struct WhmClientOptions {
  std::chrono::milliseconds backoff{1000};  // sleep before the 1st retry; doubled after each
  std::chrono::milliseconds max_backoff{30000};
  std::chrono::seconds owner_ttl{600};  // DomainOwner cache lifetime
};

class WhmClient {
 public:
  explicit WhmClient(const WhmSettings& settings, WhmClientOptions options = {});

  // The owner (cPanel user) of `domain` into *user (left alone unless ok).
  WhmResult DomainOwner(const std::string& domain, std::string* user);

  WhmResult Mailbox(MailboxAction action, const std::string& cpanel_user, const std::string& email);

  // `reason` is only sent with kSuspend (suspendacct); it shows in WHM.
  WhmResult Account(AccountAction action, const std::string& user, const std::string& reason = "");

  void ClearOwnerCache();

 private:
  struct CachedOwner {
    std::string user;
    std::chrono::steady_clock::time_point expires;
  };

  WhmSettings settings_;
  WhmClientOptions options_;
  std::mutex mu_;
  std::map<std::string, CachedOwner> owners_;  // lowercased domain -> owner
};

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_WHM_CLIENT_H_
