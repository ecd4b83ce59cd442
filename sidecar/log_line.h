// log_line.h - parses one line of Exim's main log or of Dovecot's log into a plain LogEvent.
//
// SUMMARY
//   LogEvent ev;
//   ParseEximLine(line, &ev);        // or ParseDovecotLine, or ParseLine (either of the two)
//   switch (ev.kind) { case LineKind::kArrival: ... ev.sender, ev.recipients ... }
//
//   Exim (main log written to a file, or the same text through syslog):
//     [syslog prefix] YYYY-MM-DD HH:MM:SS[.mmm][ +hhmm] [[pid] ][message-id ]text
//   where the syslog prefix is "Mmm dd HH:MM:SS host exim[pid]: " or
//   "YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+hh:mm) host exim[pid]: ", optionally followed by Exim's split
//   marker "[n/m] " (then `fragment` is set). With `syslog_timestamp = false` Exim's own timestamp
//   is missing and the syslog one is used (the tag must then start with "exim"). Message ids:
//   old 1xV13h-00017e-07 (6-6-2) and Exim >= 4.97's 10HmaX-000000005vi-0000 (6-11-4).
//   Dovecot: "[syslog prefix with tag dovecot or X-login] X-login: [Info: ]Login: user=<u>, ..."
//   or Dovecot's own log file "Mmm dd HH:MM:SS X-login: Info: ...", and the auth-failure lines
//   of the login processes (one summary per connection, N attempts):
//     2.2/2.3 "X-login: Disconnected[: REASON] (auth failed, N attempts in S secs): user=<u>, ..."
//             "X-login: Aborted login (auth failed, N attempts in S secs): ..."
//     2.4     "X-login: Login aborted: REASON (auth failed, N attempts in S secs) (auth_failed):
//     ..."
//   with or without user=<..> and session=<..> (login_log_format_elements decides); the auth
//   process's passdb/mechanism lines (one attempt each, auth_verbose = yes):
//     2.2/2.3 "auth: PASSDB(user,ip[,master][,<session>]): MESSAGE"
//             "auth-worker(PID): [conn ...: auth-worker<N>: ]PASSDB(user,ip,...): MESSAGE"
//     2.4     "auth(user,ip[,sasl:mech][,master])<session>: PASSDB: MESSAGE"
//             "auth-worker(user,ip,...)<PID><session>: request [N]: PASSDB: MESSAGE"
//   MESSAGE "unknown user", "Password mismatch", "pam_authenticate() failed: ...", "invalid
//   credentials", "Login failed (status=1)", "User unknown", "password mismatch"; and PAM's own
//   "pam_unix(dovecot:auth): authentication failure; ... rhost=IP [user=U]".
//
// CONTRACT
//   - Callers: the follower and `replay`/`rerun` (each line of a log), the detectors (read the
//     events), tests and the fuzzer. Nothing here does I/O, and nothing is owned: an event
//     borrows the caller's line (below).
//   - Never throws, never crashes, never reads outside `line`, O(line length), no regex, no
//     allocation except growing `recipients` (reuse one LogEvent across calls and the vector's
//     capacity is reused too; the by-value overloads allocate only for arrival lines with
//     recipients).
//   - Every string_view in a LogEvent points into `line` (or is empty): the event is valid only
//     while the caller's line buffer is. Zero-copy is the point: a replay of a million lines
//     must not copy ten thousand recipients per line just to count them; a caller that keeps a
//     value (a key, a sample subject) copies it. Views are exactly what the log says: the
//     subject keeps Exim's escaping (two lines with the same subject compare equal; use
//     UnescapeExim() to show it).
//   - A line that is not recognized gives kind kUnknown; a well-formed line of a kind nobody
//     needs (queue runs, SMTP connections, ...) gives kOther; a known kind with a missing or
//     truncated part gives that kind with whatever was found and `counted_as_unknown` set.
//     The caller counts `counted_as_unknown` lines and skips what it cannot use; none is fatal.
//   - Time: Exim writes local wall-clock time unless `log_timezone` adds an offset (then it is
//     used exactly, `zone_known`). Without an offset the time is taken to be in this process's
//     local timezone (TZ, /etc/localtime) - the sidecar runs on the mail server, beside Exim -
//     or UTC when ParseOptions::utc is set (Exim's `timezone = UTC`, and tests). The local
//     conversion caches the UTC offset per wall-clock hour (one mktime() per hour of log); the
//     hour repeated when DST ends is ambiguous in the log itself, and both copies get one offset.
//     Timestamps without a year (syslog's, Dovecot's) get ParseOptions::year, or else the year
//     that puts them closest before ParseOptions::now (+1 day of slack), `now` being the clock
//     when 0.
//   - Thread safety: every function is reentrant; the offset cache is thread_local; mktime()
//     and time() are thread-safe in glibc.
//
// SOURCES (what the formats here rely on)
//   - Exim spec, chapter "Log files" (doc/doc-docbook/spec.xfpt): flags <= (= => -> >> *> ** ==,
//     "Completed", log_selector pid/millisec/log_timezone/subject/arguments/received_recipients,
//     syslog splitting "[n/m]".
//   - Exim sources (github.com/Exim/exim, 4.91..4.99 and master): log.c (timestamp, "[pid] ",
//     " for a b c", "<trunc>"), tod.c (".mmm", " +hhmm"), receive.c (the <= line; T= quoting:
//     '"' and '\' backslash-escaped, then string_printing() escapes: \n \r \b \v \f \t \ooo),
//     deliver.c (delivery_log, deferral_log "defer (errno)", failure_log ": " up to 4.98 and
//     " : " from 4.99), smtp_in.c (smtp_handle_acl_fail: "F=<s> A=auth:id [temporarily ]rejected
//     RCPT <r>: msg"; "NAME authenticator failed for HOST: msg", HOST with "H=" from 4.99),
//     exim.c ("cwd=PATH N args: ..."), eximstats (its sample auth-failure line with I=).
//   - Exim test suite logs (test/log/*) for real lines of every kind, both id formats, [pid].
//   - A real Exim 4.96 run here (tests/e2e with EG_E2E_KEEP): "+millisec +pid", "id*=",
//     "from <s> for r", our "eximguard: held cwd DIR 3/minute" and "frozen by ACL".
//   - Dovecot (github.com/dovecot/core, tags 2.2.36, 2.3.19, 2.4.1):
//     login-common/login-settings.c (login_log_format "%$: %s" / "%{message}: %{elements}",
//     elements user=<%u> method=%m rip=%r lip=%l mpid=%e %c session=<%{session}>);
//     login-common/client-common.c: client_get_log_str() (", "-joined elements, user=<> kept
//     even when empty, empty others dropped), client_get_extra_disconnect_reason() ("(auth
//     failed, %u attempts in %u secs)"; 2.4: "auth failed, %u attempts in %u secs" inside
//     login_aborted_event()'s "Login aborted: %s (%s)"); imap-login/imap-login-client.c and
//     pop3-login/client.c ("Aborted login", 2.2); auth/auth-request.c: get_log_prefix() /
//     auth_request_get_log_prefix() (2.2/2.3 "NAME(user,ip[,master][,<session>]): "; 2.4
//     "auth|auth-worker(user[,ip][,sasl:mech][,master])[<pid>][<session>][: request [N]]: " then
//     "PASSDB: "), auth_request_log_login_failure() (" - trying the next passdb|userdb" when
//     another db follows, "(given password: ..)" with auth_verbose_passwords);
//     auth/passdb-pam.c ("pam_authenticate() failed: %s (password mismatch?)", "unknown user"),
//     auth/passdb-ldap.c (2.2 "invalid credentials", 2.3+ "Password mismatch (for LDAP bind)"),
//     auth/db-checkpassword.c ("Login failed (status=1)", "User unknown"; gone in 2.4),
//     auth/password-scheme.h ("Password mismatch"), auth/mech-*.c ("password mismatch").
//   - Linux-PAM pam_unix (pam_unix_auth.c): "authentication failure; logname= uid= euid= tty=
//     ruser=U rhost=IP[  user=U]" under the service "dovecot".
//   - Exim smtp_in.c smtp_in_auth(): set_id is string_printing()ed (spaces kept, unquoted):
//     "535 Incorrect authentication data (set_id=ID)" (ID to the end of the line), "435 Unable
//     to authenticate at present (set_id=ID): MSG", "435 Internal error (set_id=ID): return N
//     from authentication check"; receive.c: the <= line's A=NAME:ID is also unquoted, written
//     after H= U= P= (add_host_info_for_log) and before PRDR PRX= K S= (see `ambiguous`).

#ifndef EXIMGUARD_SIDECAR_LOG_LINE_H_
#define EXIMGUARD_SIDECAR_LOG_LINE_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace eg::sidecar {

enum class LineKind : uint8_t {
  kUnknown,              // not an Exim/Dovecot line this parser understands
  kOther,                // a well-formed line of a kind not listed here
  kArrival,              // <= (also "(=", a fakereject)                     Exim
  kDelivery,             // => -> (also ">>" cutthrough, "*>" suppressed by -N); see `flag`
  kBounce,               // ** delivery failed
  kDeferral,             // == delivery deferred
  kCompleted,            // Completed
  kFrozen,               // "Frozen...", "frozen by ACL|user", "*** Frozen..."
  kRejectedRcpt,         // ... rejected RCPT <r>: msg
  kTempRejectedRcpt,     // ... temporarily rejected RCPT <r>: msg
  kAuthFailed,           // NAME authenticator failed for HOST: msg (set_id=id)
  kCwdArgs,              // cwd=/path N args: ...                          (log_selector +arguments)
  kGuardHeld,            // eximguard: held CLASS KEY LIMIT/minute|hour   (our ACL's logwrite)
  kDovecotLogin,         // X-login: Login: user=<u>, ...                  Dovecot
  kDovecotAuthFailed,    // X-login: ... (auth failed, N attempts ...): user=<u>, ...
  kDovecotPassdbFailed,  // auth[-worker]: PASSDB(user,ip,..): unknown user|Password mismatch|..
                         // (one attempt), or PAM's pam_unix(dovecot:auth): authentication failure
};

// "unknown", "other", "arrival", "delivery", ... (stable, for logs and JSON).
std::string_view LineKindName(LineKind kind);

struct ParseOptions {
  bool utc = false;  // timestamps without an offset are UTC (default: this process's local time)
  int year = 0;      // the year of timestamps that carry none; 0: inferred from `now`
  int64_t now = 0;   // unix time the year is inferred from; 0: the clock
};

// Fields not set by a line stay empty / 0. Field by kind:
//   all        time, millis, zone_known, pid ([pid], else syslog's tag[pid]), text (after the
//              timestamp, pid and message id: the message itself), fragment
//   arrival    flag, message_id, sender, host_name, helo, host_ip, host_port, user (U=),
//              protocol (P=), auth + auth_id (A=auth:id; the id may hold spaces: it runs up
//              to Exim's own PRDR/PRX=/K/S=), size (S=), subject (T=), recipients (" for a b
//              c"), truncated; each field from its first occurrence (see `ambiguous`)
//   delivery,  flag, message_id, recipient (the address delivered to, which for a local
//   bounce,    delivery is just the local part or pipe/file), original (the "<address>" it came
//   deferral   from, if shown), router (R=), transport (T=), host_name + host_ip + host_port
//              (H=, the remote server), sender (F=<..> with +sender_on_delivery), size, error
//              (bounce: the text after ':'; deferral: after "defer (errno): ")
//   completed  message_id;  frozen: message_id, error (the reason after the first word)
//   rejected   sender (F=<..>), auth + auth_id (A=, the id up to "[temporarily ]rejected RCPT"),
//              host_*, helo, user, recipient, error
//   auth fail  auth (the authenticator), auth_id (set_id=), host_ip, host_port, helo,
//              host_name, user, error (e.g. "535 Incorrect authentication data (set_id=u)"),
//              attempts (1)
//   cwd args   cwd ("" when Exim logged "cwd= (failed)"), args_count, args (quoted as logged)
//   held       key_class ("sender", "cwd", "uid"), key, limit, per ("minute" or "hour"); also
//              sender (class sender) or cwd (class cwd) = key
//   dovecot    protocol ("imap", "pop3", "submission", "managesieve"), auth_id (user=<..>),
//              auth (method=), host_ip (rip=), local_ip (lip=), session (session=<..>),
//              attempts (auth failures: N of the summary)
//   passdb     protocol ("auth" or "auth-worker"; "pam" for PAM's line), auth (the passdb or
//              mechanism: "pam", "sql", "passwd-file", "digest-md5", ...; "pam_unix"), auth_id
//              (the user name Dovecot logged, at most 64 bytes + "..."), host_ip, session,
//              error (the message, without a "(given password: ..)" secret), attempts (1, or 0
//              when the line says " - trying the next passdb/userdb": the same attempt goes on)
// An empty sender means the null sender "<>".
struct LogEvent {
  LineKind kind = LineKind::kUnknown;
  bool counted_as_unknown = true;  // the caller's "could not parse" counter should count it
  // The line can be read more than one way because text its subject controls spells out
  // fields: an arrival or rejection whose A= id holds " S=<n>" or repeats H= U= P= A= S= T=,
  // or "for"; a cwd= line with more than one " N args:" tail that fits. The fields hold the
  // reading documented for the kind (first occurrence of each field; the id up to Exim's S=;
  // the last fitting args tail); treat them as forged evidence.
  bool ambiguous = false;
  bool fragment = false;    // a piece of a line syslog split ("[n/m]", m > 1)
  bool truncated = false;   // Exim cut the line: "<trunc>" or an unclosed T="...
  bool zone_known = false;  // the timestamp carried its UTC offset
  uint16_t millis = 0;      // +millisec
  uint16_t host_port = 0;
  uint32_t pid = 0;
  int64_t time = 0;       // unix seconds (UTC); see the time contract above
  std::string_view flag;  // "<=" "(=" "=>" "->" ">>" "*>" "**" "==", else empty
  std::string_view message_id;
  std::string_view sender;
  std::string_view recipient;
  std::string_view original;
  std::vector<std::string_view> recipients;
  std::string_view auth;
  std::string_view auth_id;
  std::string_view user;
  std::string_view host_name;
  std::string_view helo;
  std::string_view host_ip;
  std::string_view local_ip;
  std::string_view protocol;
  uint64_t size = 0;
  std::string_view subject;  // inside the quotes, still escaped as Exim logged it
  std::string_view router;
  std::string_view transport;
  std::string_view cwd;
  std::string_view args;
  uint32_t args_count = 0;
  std::string_view error;
  std::string_view key_class;
  std::string_view key;
  uint32_t limit = 0;
  std::string_view per;
  uint32_t attempts = 0;
  std::string_view session;  // Dovecot's session id (session=<..>, or "<..>" of an auth line)
  // A password the line gives away (Dovecot's auth_verbose_passwords: "(given password: P)" or
  // "(SHA1 of given password: H)", the parentheses included): a caller that stores or shows
  // the line replaces this span first. Empty when there is none.
  std::string_view secret;
  std::string_view text;

  // The recipient a delivery/bounce/deferral counts for: the original address when the line
  // shows one ("=> user <user@dom>"), else the address itself.
  std::string_view CountedRecipient() const { return original.empty() ? recipient : original; }
};

// Parse `line` (a trailing "\n" or "\r\n" is ignored) into *out, which is reset first (its
// recipients' capacity is kept).
void ParseEximLine(std::string_view line, LogEvent* out, const ParseOptions& options = {});
void ParseDovecotLine(std::string_view line, LogEvent* out, const ParseOptions& options = {});
// Either kind of line (a mixed syslog file such as cPanel's maillog): as Exim's, and when that
// gives kUnknown, as Dovecot's.
void ParseLine(std::string_view line, LogEvent* out, const ParseOptions& options = {});

LogEvent ParseEximLine(std::string_view line, const ParseOptions& options = {});
LogEvent ParseDovecotLine(std::string_view line, const ParseOptions& options = {});
LogEvent ParseLine(std::string_view line, const ParseOptions& options = {});

// Exim's "+arguments" tail " N args: A1 A2 ...", as exim.c writes it after "cwd=PATH": N in
// decimal, then each argument after one space, string_printing()ed (no control bytes) and in
// double quotes when it holds white space or is empty (quotes inside are not escaped).
struct ArgsTail {
  size_t path_end = 0;     // text.substr(0, path_end) is what precedes " N args:" (the path)
  size_t args_begin = 0;   // text.substr(args_begin) are the arguments, as logged
  uint32_t count = 0;      // N
  bool ambiguous = false;  // more than one " N args:" in `text` fits
};
// Finds the tail that ends `text` (a trailing "\n" or "\r\n" is ignored): the LAST " N args:"
// whose remainder holds exactly N arguments (greedy: a token opening with '"' runs to the first
// later token that ends with '"'), except one that lies inside a quoted argument of an earlier
// fitting tail. False when none fits (then *out is untouched). O(length), no allocation.
bool FindArgsTail(std::string_view text, ArgsTail* out);

// Undoes Exim's escaping of a logged string (T= subjects, C= confirmations): \" \\ \n \r \b
// \v \f \t, \ooo (octal), any other \x as x.
std::string UnescapeExim(std::string_view escaped);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_LOG_LINE_H_
