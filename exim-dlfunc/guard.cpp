// guard.cpp - eximguard.so, the inline guard Exim loads with ${dlfunc}.
//
// NAME
//   eximguard.so - per-recipient rate limits inside Exim's ACLs
//
// SUMMARY
//   ${dlfunc{/usr/lib/eximguard/eximguard.so}{eximguard_rcpt}
//           {SEGMENT}{$authenticated_id}{$sender_address}{$sender_host_address}{$local_part@$domain}}
//   ${dlfunc{/usr/lib/eximguard/eximguard.so}{eximguard_local}
//           {SEGMENT}{$originator_uid}{$initial_cwd}{$sender_address}{$recipients_count}}
//   ${dlfunc{/usr/lib/eximguard/eximguard.so}{eximguard_event}
//           {SEGMENT}{$event_name}{$authenticated_id}{$originator_uid}{$received_protocol}
//           {$domain}}
//
// DESCRIPTION
//   eximguard_rcpt runs once per RCPT in acl_smtp_rcpt and counts one recipient for the sending
//   account ($authenticated_id, else the envelope sender). eximguard_local runs once per message
//   in acl_not_smtp and counts $recipients_count recipients for the script directory, the uid and
//   the envelope sender together. Both answer Exim with OK and a verdict string:
//     ok                                         count taken, let it through
//     defer CLASS KEY LIMIT/minute|hour          SMTP over a limit (ACL: defer, 451 4.7.1)
//     hold CLASS KEY LIMIT/minute|hour           local over a limit (ACL: control = freeze)
//     deny CLASS KEY blocked                     blocked by the sidecar (ACL: deny, 550 5.7.1)
//     defer|hold new-keys SOURCE LIMIT/minute    a new key, the table is full where it lands,
//                                                and SOURCE (client IP, local uid) made more new
//                                                keys this minute than its budget (table.h)
//     ok dry-run VERDICT CLASS KEY ...           what would have happened, policy is dry-run
//     ok fail-open REASON                        the guard could not judge, so it let mail pass
//   eximguard_event runs in Exim's event_action (a transport's, for msg:delivery,
//   msg:fail:delivery and msg:rcpt:defer; the main one, for msg:fail:internal) once per
//   recipient, and counts that recipient's outcome (delivered, failed, deferred) on the key the
//   message was counted under: the authenticated id for SMTP, else the uid of a local submission
//   ($received_protocol "local..."), else nothing (mail from the internet or a relay host is
//   not the guard's), and for a failure the recipient's domain (a bitmap: table.h, Tally). It
//   only counts on a key that already has a slot (Tally in table.h), never
//   refuses anything and always answers OK with an empty string, as event_action wants. These
//   are Exim's own variables for the message being delivered: the trusted evidence of a bounce
//   storm (the sidecar's table_watch.h), with no log line involved.
//
//   KEY is printable ASCII without spaces (other bytes shown as '?', cut at 200 characters).
//   Nothing in the verdict is meant to be expanded again by Exim.
//
//   The first call in a process attaches the shared-memory segment named by the first argument
//   (created by `eximguard run`/`start`); later calls use that mapping with no system call and no
//   allocation. If the sidecar replaces the segment, the next call re-attaches.
//
// SECURITY
//   Runs inside every Exim process, as the Exim user, on strings a remote client chose. Keys are
//   bounded (the first 4096 bytes count), never copied anywhere but the fixed label of their slot
//   and the fixed verdict buffer, and never interpreted. No exception or signal leaves this file.
//   Only the three entry points are exported (see exports.map).
//
// FAILURE
//   Fail open, always: no segment, a segment not owned by root (or open to others), an unknown
//   layout, a full or contended table or any internal error answer "ok fail-open REASON" (or,
//   with fail_mode "defer" and a readable policy, "defer fail-closed REASON"), with at most one
//   syslog line (LOG_MAIL) per process per minute. After a failed attach the process tries again at
//   most every 10 seconds.
//
// BUGS
//   A process of the Exim group that shrinks the segment (ftruncate) makes the guard die of
//   SIGBUS at its next check; POSIX shared memory cannot be sealed against its own group.
//   One segment per process: calling with two different segment names in one process re-attaches
//   at every switch. The verdict buffer is static, which is fine because Exim copies the result
//   at once and a reception process is single-threaded.

#include <syslog.h>
#include <time.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "segment.h"
#include "table.h"

#define EXIMGUARD_EXPORT extern "C" __attribute__((visibility("default")))

EXIMGUARD_EXPORT int eximguard_rcpt(unsigned char** yield, int argc, unsigned char* argv[]);
EXIMGUARD_EXPORT int eximguard_local(unsigned char** yield, int argc, unsigned char* argv[]);
EXIMGUARD_EXPORT int eximguard_event(unsigned char** yield, int argc, unsigned char* argv[]);

namespace {

constexpr int kEximOk = 0;              // OK in Exim's local_scan.h
constexpr size_t kMaxKeyBytes = 4096;   // bytes of a key that count
constexpr size_t kShownKeyBytes = 200;  // bytes of a key shown in a verdict (paths are long)
constexpr uint32_t kMaxRecipients = 100000;
constexpr uint32_t kAttachRetrySeconds = 10;
constexpr uint32_t kLogEverySeconds = 60;

struct Attachment {
  std::unique_ptr<eg::Segment> segment;
  char name[256] = {};
  uint32_t retry_at = 0;
  const char* error = nullptr;
};

Attachment g_attached;
char g_verdict[512];
uint32_t g_last_log = 0;
bool g_logged = false;

uint32_t NowUnix() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);  // vDSO: no system call
  return static_cast<uint32_t>(ts.tv_sec);
}

const char* Arg(unsigned char* argv[], int i) {
  return argv[i] != nullptr ? reinterpret_cast<const char*>(argv[i]) : "";
}

// Appends to g_verdict, always NUL-terminated, silently cut at the end of the buffer.
struct Writer {
  size_t len = 0;
  void Put(const char* s) {
    while (*s != '\0' && len + 1 < sizeof g_verdict) g_verdict[len++] = *s++;
    g_verdict[len] = '\0';
  }
  void PutKey(const char* s, size_t n) {
    size_t shown = n < kShownKeyBytes ? n : kShownKeyBytes;
    for (size_t i = 0; i < shown && len + 1 < sizeof g_verdict; ++i) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      g_verdict[len++] = (c > 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
    }
    g_verdict[len] = '\0';
    if (n > kShownKeyBytes) Put("...");
    if (n == 0) Put("-");
  }
  void PutNumber(uint32_t v) {
    char digits[11];
    int n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    char out[12];
    for (int i = 0; i < n; ++i) out[i] = digits[n - 1 - i];
    out[n] = '\0';
    Put(out);
  }
};

void LogOnce(const char* why, uint32_t now) {
  if (g_logged && now - g_last_log < kLogEverySeconds) return;
  g_logged = true;
  g_last_log = now;
  syslog(LOG_MAIL | LOG_WARNING, "eximguard: %s; letting mail through (fail open)", why);
}

int Answer(unsigned char** yield) {
  *yield = reinterpret_cast<unsigned char*>(g_verdict);
  return kEximOk;
}

int FailOpen(unsigned char** yield, const char* why, uint32_t now) {
  LogOnce(why, now);
  Writer w;
  w.Put("ok fail-open ");
  w.Put(why);
  return Answer(yield);
}

// The table of segment `name`, attaching on first use. nullptr with *why set on failure.
const eg::Table* Attach(const char* name, uint32_t now, const char** why) {
  const size_t len = strnlen(name, sizeof g_attached.name);
  if (len == sizeof g_attached.name) {
    *why = "segment name too long";
    return nullptr;
  }
  const bool same = std::strcmp(name, g_attached.name) == 0;
  if (same && g_attached.segment &&
      g_attached.segment->table.header->retired.load(std::memory_order_acquire) == 0) {
    return &g_attached.segment->table;
  }
  if (same && !g_attached.segment && now < g_attached.retry_at) {
    *why = g_attached.error;
    return nullptr;
  }
  g_attached.segment.reset();
  std::memcpy(g_attached.name, name, len + 1);
  std::string error;
  g_attached.segment = eg::OpenSegment(name, &error);
  if (!g_attached.segment) {
    g_attached.retry_at = now + kAttachRetrySeconds;
    g_attached.error = eg::ValidSegmentName(name) ? "cannot attach the shared-memory segment"
                                                  : "invalid segment name";
    if (error.find("not trusted") != std::string::npos) {
      g_attached.error = "segment has an unsafe owner or mode";
    } else if (error.find("layout") != std::string::npos) {
      g_attached.error = "segment has an unknown layout version";
    } else if (error.find("magic") != std::string::npos ||
               error.find("size") != std::string::npos) {
      g_attached.error = "segment is not a valid eximguard table";
    }
    *why = g_attached.error;
    return nullptr;
  }
  return &g_attached.segment->table;
}

int Judge(unsigned char** yield, const eg::Table& t, const eg::KeyRef* keys, int nkeys,
          uint32_t count, uint32_t now, eg::Verdict over_limit, const eg::KeyRef& source) {
  const eg::Decision d = eg::Check(t, keys, nkeys, count, now, over_limit, &source);
  Writer w;
  if (d.failed != nullptr) {
    LogOnce(d.failed, now);
    w.Put(eg::VerdictName(d.verdict));
    w.Put(d.verdict == eg::Verdict::kOk ? " fail-open " : " fail-closed ");
    w.Put(d.failed);
    return Answer(yield);
  }
  w.Put(eg::VerdictName(d.verdict));
  if (d.key < 0) return Answer(yield);
  if (d.dry_run) {
    w.Put(" dry-run ");
    w.Put(eg::VerdictName(d.would));
  }
  if (d.new_keys) {
    w.Put(" new-keys ");
    w.PutKey(source.text, source.len);
    w.Put(" ");
    w.PutNumber(d.limit);
    w.Put("/minute");
    return Answer(yield);
  }
  w.Put(" ");
  w.Put(eg::KeyClassName(keys[d.key].klass));
  w.Put(" ");
  w.PutKey(keys[d.key].text, keys[d.key].len);
  if (d.would == eg::Verdict::kDeny) {
    w.Put(" blocked");
  } else {
    w.Put(" ");
    w.PutNumber(d.limit);
    w.Put(d.hour ? "/hour" : "/minute");
  }
  return Answer(yield);
}

bool AllDigits(const char* s, size_t n) {
  if (n == 0 || n > 10) return false;
  for (size_t i = 0; i < n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
  }
  return true;
}

uint32_t ParseCount(const char* s) {
  uint64_t v = 0;
  for (size_t i = 0; s[i] >= '0' && s[i] <= '9' && i < 12; ++i) v = v * 10 + (s[i] - '0');
  if (v == 0) return 1;
  return v > kMaxRecipients ? kMaxRecipients : static_cast<uint32_t>(v);
}

int Rcpt(unsigned char** yield, int argc, unsigned char* argv[]) {
  const uint32_t now = NowUnix();
  if (argc != 5 || argv == nullptr) return FailOpen(yield, "eximguard_rcpt needs 5 arguments", now);
  const char* why = nullptr;
  const eg::Table* t = Attach(Arg(argv, 0), now, &why);
  if (t == nullptr) return FailOpen(yield, why, now);
  const char* auth = Arg(argv, 1);
  const char* account = *auth != '\0' ? auth : Arg(argv, 2);
  const eg::KeyRef key{eg::KeyClass::kSender, account, strnlen(account, kMaxKeyBytes)};
  const char* host = Arg(argv, 3);  // the client's IP: its new keys are budgeted
  const eg::KeyRef source{eg::KeyClass::kSender, host, strnlen(host, 64)};
  return Judge(yield, *t, &key, 1, 1, now, eg::Verdict::kDefer, source);
}

int Local(unsigned char** yield, int argc, unsigned char* argv[]) {
  const uint32_t now = NowUnix();
  if (argc != 5 || argv == nullptr)
    return FailOpen(yield, "eximguard_local needs 5 arguments", now);
  const char* why = nullptr;
  const eg::Table* t = Attach(Arg(argv, 0), now, &why);
  if (t == nullptr) return FailOpen(yield, why, now);
  const char* uid = Arg(argv, 1);
  const char* cwd = Arg(argv, 2);
  const char* sender = Arg(argv, 3);
  const size_t uid_len = strnlen(uid, 11);
  const eg::KeyRef keys[3] = {
      {eg::KeyClass::kCwd, cwd, strnlen(cwd, kMaxKeyBytes)},
      {eg::KeyClass::kUid, uid, AllDigits(uid, uid_len) ? uid_len : 0},
      {eg::KeyClass::kSender, sender, strnlen(sender, kMaxKeyBytes)},
  };
  const eg::KeyRef source{eg::KeyClass::kUid, uid, keys[1].len};  // the uid's new keys: budgeted
  return Judge(yield, *t, keys, 3, ParseCount(Arg(argv, 4)), now, eg::Verdict::kHold, source);
}

// The outcome an event name reports for one recipient, or false for an event not counted.
bool OutcomeOf(const char* event, eg::Outcome* out) {
  if (std::strcmp(event, "msg:delivery") == 0) {
    *out = eg::Outcome::kDelivered;
  } else if (std::strcmp(event, "msg:fail:delivery") == 0 ||
             std::strcmp(event, "msg:fail:internal") == 0) {
    *out = eg::Outcome::kFailed;
  } else if (std::strcmp(event, "msg:rcpt:defer") == 0) {
    *out = eg::Outcome::kDeferred;
  } else {
    return false;
  }
  return true;
}

int Event(unsigned char** yield, int argc, unsigned char* argv[]) {
  const uint32_t now = NowUnix();
  g_verdict[0] = '\0';  // event_action wants an empty string, whatever happens
  if (argc != 6 || argv == nullptr) {
    LogOnce("eximguard_event needs 6 arguments", now);
    return Answer(yield);
  }
  eg::Outcome outcome{};
  if (!OutcomeOf(Arg(argv, 1), &outcome)) return Answer(yield);  // before attaching: cheap
  const char* auth = Arg(argv, 2);
  const char* uid = Arg(argv, 3);
  const char* protocol = Arg(argv, 4);
  eg::KeyRef key{eg::KeyClass::kSender, auth, strnlen(auth, kMaxKeyBytes)};
  if (key.len == 0) {
    if (std::strncmp(protocol, "local", 5) != 0) return Answer(yield);  // not the guard's mail
    const size_t uid_len = strnlen(uid, 11);
    if (!AllDigits(uid, uid_len)) return Answer(yield);
    key = {eg::KeyClass::kUid, uid, uid_len};
  }
  const char* why = nullptr;
  const eg::Table* t = Attach(Arg(argv, 0), now, &why);
  if (t == nullptr) {
    LogOnce(why, now);
    return Answer(yield);
  }
  const char* domain = Arg(argv, 5);
  eg::Tally(*t, key, outcome, domain, strnlen(domain, kMaxKeyBytes));
  return Answer(yield);
}

}  // namespace

int eximguard_rcpt(unsigned char** yield, int argc, unsigned char* argv[]) {
  if (yield == nullptr) return kEximOk;
  try {
    return Rcpt(yield, argc, argv);
  } catch (...) {
    return FailOpen(yield, "internal error", NowUnix());
  }
}

int eximguard_local(unsigned char** yield, int argc, unsigned char* argv[]) {
  if (yield == nullptr) return kEximOk;
  try {
    return Local(yield, argc, argv);
  } catch (...) {
    return FailOpen(yield, "internal error", NowUnix());
  }
}

int eximguard_event(unsigned char** yield, int argc, unsigned char* argv[]) {
  if (yield == nullptr) return kEximOk;
  try {
    return Event(yield, argc, argv);
  } catch (...) {
    g_verdict[0] = '\0';
    return Answer(yield);
  }
}
