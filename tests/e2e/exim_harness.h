// exim_harness.h - drives a real, sandboxed Exim for the end-to-end tests of eximguard.
//
// Contract:
// - EximSandbox makes a temp dir (/tmp/eximguard-e2e-XXXXXX, mode 0755) holding everything one
//   test's Exim needs: the config rendered from exim-config/test/exim-test.conf.in, spool/ and
//   log/ owned by the sandbox's Exim user, a copy of the guard .so (so the Exim user can always
//   read it, wherever the build tree lives), the sidecar's config and state. Every Exim run uses
//   `exim -C <that config>`; nothing touches /etc/exim4 or the system Exim.
// - The destructor stops the daemon, kills any Exim process still running with this config,
//   unlinks the segment and removes the temp dir (kept, and named on stderr, when the
//   environment variable EG_E2E_KEEP is set, for debugging).
// - Nothing here decides a test's outcome: it reports reply codes, exit statuses and queue
//   contents, and the tests assert on them.
// - Requires root (it chowns, switches users and creates the test user).
//
// Privilege facts this relies on (Exim 4.96, Debian; see exim-config/test/README.md):
// - root + untrusted -C keeps root; -bh then drops to exim_user/exim_group (+ that user's groups),
//   and the daemon drops to them right after binding its socket, so reception (and the dlfunc)
//   runs as exim_user.
// - a non-root caller with -C runs entirely as itself. Exim chowns each spool file to
//   exim_user:exim_group, which only works when exim_user is that caller; so a sandbox used for
//   local submissions has exim_user = the test user, and the segment's group is that user's.

#ifndef EXIMGUARD_TESTS_E2E_EXIM_HARNESS_H_
#define EXIMGUARD_TESTS_E2E_EXIM_HARNESS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "subprocess.h"

namespace eg::e2e {

// Paths handed in by tests/e2e/CMakeLists.txt.
extern const char* const kEximBin;
extern const char* const kSwaksBin;
extern const char* const kGuardSo;
extern const char* const kSidecarBin;
extern const char* const kNoopSo;
extern const char* const kConfigTemplate;

// The one password the test config accepts for every AUTH user name.
extern const char* const kAuthPassword;

constexpr std::chrono::milliseconds kEximTimeout{10000};

// 0 means unlimited.
struct Limit {
  uint32_t per_minute = 0;
  uint32_t per_hour = 0;
};

// What the sidecar publishes (see DESIGN.md, sidecar config keys).
struct GuardPolicy {
  Limit sender;
  Limit cwd;
  Limit uid;
  std::map<std::string, Limit> overrides;
  std::vector<std::string> whitelist;
  std::vector<std::string> blocklist;
};

struct SmtpReply {
  std::string command;
  int code = 0;      // 0: Exim never answered (it hung up or was killed)
  std::string text;  // the reply's lines without their codes, joined by spaces
};

struct SmtpSession {
  int banner = 0;
  std::vector<SmtpReply> replies;  // one per command sent, in order
  ExitStatus exit;
  std::string transcript;  // what the client saw, for failure messages

  // Replies to RCPT commands with this code.
  int CountRcpt(int code) const;
  // RCPT replies whose code is `code` and whose text starts with `prefix` (e.g. "4.7.1").
  int CountRcpt(int code, const std::string& prefix) const;
  int RcptTotal() const;
};

struct QueuedMessage {
  std::string id;
  std::string sender;
  bool frozen = false;
};

struct QueueListing {
  std::vector<QueuedMessage> messages;
  int total() const { return static_cast<int>(messages.size()); }
  int frozen() const;
};

// The non-root user local submissions run as.
struct TestUser {
  std::string name;
  std::string group;
  Credentials credentials;
};

// Creates the system user `egtest` (no home, no shell, own group) if it does not exist yet.
TestUser EnsureTestUser();

// A fresh directory under /tmp (mkdtemp; throws std::runtime_error when it cannot), removed with
// everything in it by the destructor.
struct ScopedTempDir {
  std::string path;
  ScopedTempDir();
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
};

// Polls done() every 100 ms until it is true or timeout passed; its last answer.
bool WaitUntil(const std::function<bool()>& done,
               std::chrono::milliseconds timeout = std::chrono::milliseconds(20000));

// Message i of a local submission (`sendmail -t` input): To: friend<i>@remote.example.
std::string LocalMessage(int i);
// The Exim user of this system (Debian-exim, exim or mail), for SMTP sandboxes.
std::string SystemEximUser();

struct SandboxOptions {
  std::string exim_user;   // empty: SystemEximUser()
  std::string exim_group;  // empty: exim_user's primary group
  std::string config_template = kConfigTemplate;
  std::string guard_so = kGuardSo;
  std::string rcpt_fn = "eximguard_rcpt";
  std::string local_fn = "eximguard_local";
  std::string event_fn = "eximguard_event";
  int fake_mx_port = 0;  // mail to fake-mx.example goes to 127.0.0.1:this (0: nowhere)
};

// Commands of one authenticated session: EHLO, AUTH PLAIN, MAIL, one RCPT each, QUIT.
std::vector<std::string> AuthSession(const std::string& user,
                                     const std::vector<std::string>& rcpts);
// Commands of one session without AUTH: EHLO, MAIL, one RCPT each, QUIT.
std::vector<std::string> PlainSession(const std::string& from,
                                      const std::vector<std::string>& rcpts);
// n recipient addresses rcpt1@domain ... rcptN@domain.
std::vector<std::string> Recipients(int n, const std::string& domain = "remote.example");
std::string Base64(const std::string& data);

// Parses what Exim (-bh) or a server wrote back into one reply per command.
SmtpSession ParseSmtpReplies(const std::string& server_output,
                             const std::vector<std::string>& commands);

class EximSandbox {
 public:
  explicit EximSandbox(SandboxOptions options = {});
  ~EximSandbox();
  EximSandbox(const EximSandbox&) = delete;
  EximSandbox& operator=(const EximSandbox&) = delete;

  const std::string& dir() const { return dir_; }
  const std::string& config_path() const { return config_path_; }
  const std::string& segment() const { return segment_; }
  // The sandbox's copy of the guard .so, the path the config names.
  const std::string& guard_so_path() const { return guard_so_copy_; }
  std::string mainlog() const;
  // Where CreateSegment() writes the sidecar's config (its state_dir is that directory).
  std::string sidecar_config_path() const { return dir_ + "/state/eximguard.json"; }

  // Writes the sidecar config (mode 0600, at sidecar_config_path()) and runs `eximguard run
  // --config`; returns its exit status and puts what it printed in *output.
  ExitStatus CreateSegment(const GuardPolicy& policy, std::string* output = nullptr);
  // /dev/shm path of the segment.
  std::string SegmentPath() const;
  // `eximguard ARGS... --config sidecar_config_path()`: what it printed on stdout; its exit
  // code in *exit_code (0 ok, 1 anything else) when given.
  std::string Sidecar(const std::vector<std::string>& args, int* exit_code = nullptr);

  // One simulated SMTP session (`exim -bh client_ip`), commands fed on stdin.
  SmtpSession RunBh(const std::string& client_ip, const std::vector<std::string>& commands);

  // A -bh session started but not waited for (for concurrent and kill tests).
  struct PendingSession {
    Child child;
    std::string output_path;
    std::vector<std::string> commands;
  };
  PendingSession StartBh(const std::string& client_ip, const std::vector<std::string>& commands);
  SmtpSession FinishBh(PendingSession& session, std::chrono::milliseconds timeout = kEximTimeout);

  // A real daemon (`exim -bdf -oX port`) on 127.0.0.1, ready when this returns.
  void StartDaemon();
  void StopDaemon();
  int port() const { return port_; }
  // swaks against the daemon: AUTH PLAIN as user, one RCPT each.
  SmtpSession RunSwaks(const std::string& user, const std::vector<std::string>& rcpts);
  PendingSession StartSwaks(const std::string& user, const std::vector<std::string>& rcpts);
  SmtpSession FinishSwaks(PendingSession& session);

  // `exim -oi -t` as user, from cwd, with message on stdin.
  ExitStatus SubmitLocal(const TestUser& user, const std::string& cwd, const std::string& message,
                         std::string* output = nullptr);
  // Makes <dir>/home/<user>/public_html owned by user, as a web script's directory.
  std::string MakeScriptDir(const TestUser& user);

  // `exim -bp`.
  QueueListing Queue();
  // `exim -qff`: one queue run in the foreground, frozen messages included (as root; each
  // delivery runs as the Exim user).
  ExitStatus RunQueue();
  // Exim processes whose command line names this sandbox's config.
  std::vector<pid_t> EximProcesses() const;

 private:
  void Populate();
  std::string NewPath(const std::string& stem);
  void RenderConfig();
  void KillLeftovers();

  SandboxOptions options_;
  std::string dir_;
  std::string config_path_;
  std::string segment_;
  std::string guard_so_copy_;
  int file_counter_ = 0;
  Child daemon_;
  int port_ = 0;
};

}  // namespace eg::e2e

#endif  // EXIMGUARD_TESTS_E2E_EXIM_HARNESS_H_
