// subprocess.h - start, wait for and kill child processes for the end-to-end tests.
//
// Contract: Spawn() forks and execs argv[0] (an absolute path) with stdin/stdout/stderr
// redirected to files (never pipes, so a chatty child can never block on a full pipe), in an
// optional working directory and under optional credentials (uid, gid and supplementary groups,
// all prepared before fork so the child only makes async-signal-safe calls). A Child that is
// destroyed while still running is SIGKILLed and reaped, so no test leaves a process behind.
// Wait() never waits longer than its timeout: past it the child is SIGKILLed, reaped, and the
// result says timed_out.

#ifndef EXIMGUARD_TESTS_E2E_SUBPROCESS_H_
#define EXIMGUARD_TESTS_E2E_SUBPROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace eg::e2e {

// Who a child runs as.
struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
};

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is the absolute path of the program
  std::string stdin_path = "/dev/null";
  std::string stdout_path = "/dev/null";
  std::string stderr_path = "/dev/null";
  std::string cwd;                         // empty: inherit ours
  std::optional<Credentials> credentials;  // empty: stay root
};

struct ExitStatus {
  bool timed_out = false;
  bool signaled = false;
  int code = -1;   // exit code when !signaled
  int signal = 0;  // terminating signal when signaled
  bool Ok() const { return !timed_out && !signaled && code == 0; }
  std::string Describe() const;
};

class Child {
 public:
  Child() = default;
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // Sends sig if the child has not been reaped yet.
  void Kill(int sig);
  // Reaps the child, SIGKILLing it first if it outlives timeout.
  ExitStatus Wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
};

// Throws std::runtime_error if fork fails; exec failures show as exit code 127.
Child Spawn(const SpawnOptions& options);
ExitStatus Run(const SpawnOptions& options, std::chrono::milliseconds timeout);

// Credentials of a named user (primary group plus supplementary groups from /etc/group).
std::optional<Credentials> LookUpUser(const std::string& name);

std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& content, mode_t mode);

}  // namespace eg::e2e

#endif  // EXIMGUARD_TESTS_E2E_SUBPROCESS_H_
