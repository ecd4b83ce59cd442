// subprocess.cpp - fork/exec helpers for the end-to-end tests (see subprocess.h for the contract).

#include "subprocess.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace eg::e2e {
namespace {

// Opens path onto fd in the child; only async-signal-safe calls.
bool Redirect(const char* path, int flags, int fd) {
  int opened = open(path, flags, 0644);
  if (opened < 0) return false;
  if (opened != fd) {
    if (dup2(opened, fd) < 0) return false;
    close(opened);
  }
  return true;
}

[[noreturn]] void ExecChild(const SpawnOptions& options, const std::vector<char*>& argv) {
  if (!Redirect(options.stdin_path.c_str(), O_RDONLY, 0) ||
      !Redirect(options.stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 1) ||
      !Redirect(options.stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 2)) {
    _exit(126);
  }
  if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0) _exit(125);
  if (options.credentials) {
    const Credentials& c = *options.credentials;
    if (setgroups(c.groups.size(), c.groups.data()) != 0 || setgid(c.gid) != 0 ||
        setuid(c.uid) != 0) {
      _exit(124);
    }
  }
  execv(argv[0], argv.data());
  _exit(127);
}

ExitStatus FromWaitStatus(int status) {
  ExitStatus result;
  if (WIFSIGNALED(status)) {
    result.signaled = true;
    result.signal = WTERMSIG(status);
  } else if (WIFEXITED(status)) {
    result.code = WEXITSTATUS(status);
  }
  return result;
}

}  // namespace

std::string ExitStatus::Describe() const {
  std::ostringstream out;
  if (timed_out) out << "timed out, ";
  if (signaled) {
    out << "killed by signal " << signal;
  } else {
    out << "exit code " << code;
  }
  return out.str();
}

Child::Child(Child&& other) noexcept : pid_(other.pid_) {
  other.pid_ = -1;
}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    if (running()) Wait(std::chrono::milliseconds(0));
    pid_ = other.pid_;
    other.pid_ = -1;
  }
  return *this;
}

Child::~Child() {
  if (running()) Wait(std::chrono::milliseconds(0));
}

void Child::Kill(int sig) {
  if (running()) kill(pid_, sig);
}

ExitStatus Child::Wait(std::chrono::milliseconds timeout) {
  if (!running()) return ExitStatus{};
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  bool timed_out = false;
  for (;;) {
    pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) break;
    if (done < 0 && errno != EINTR) {
      pid_ = -1;
      return ExitStatus{};
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      timed_out = true;
      kill(pid_, SIGKILL);
      while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  pid_ = -1;
  ExitStatus result = FromWaitStatus(status);
  result.timed_out = timed_out;
  return result;
}

Child Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) throw std::runtime_error("Spawn: empty argv");
  std::vector<char*> argv;
  for (const std::string& arg : options.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) ExecChild(options, argv);
  return Child(pid);
}

ExitStatus Run(const SpawnOptions& options, std::chrono::milliseconds timeout) {
  return Spawn(options).Wait(timeout);
}

std::optional<Credentials> LookUpUser(const std::string& name) {
  struct passwd* pw = getpwnam(name.c_str());
  if (pw == nullptr) return std::nullopt;
  Credentials credentials{pw->pw_uid, pw->pw_gid, {}};
  int count = 64;
  std::vector<gid_t> groups(count);
  if (getgrouplist(name.c_str(), pw->pw_gid, groups.data(), &count) < 0) {
    groups.resize(count);
    getgrouplist(name.c_str(), pw->pw_gid, groups.data(), &count);
  }
  groups.resize(count);
  credentials.groups = groups;
  return credentials;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFile(const std::string& path, const std::string& content, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) throw std::runtime_error("cannot write " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      throw std::runtime_error("write " + path + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  fchmod(fd, mode);  // the umask must not weaken or widen what the caller asked for
  close(fd);
}

}  // namespace eg::e2e
