// action_command.cpp - runs the action program: posix_spawn into its own process group, a
// poll(2) loop that feeds its stdin and drains its output, the timeout kill, the reap.
//
// CONTRACT: see action_command.h. Linux/glibc only (pidfd_open when the kernel has it, else a
// 10 ms tick to notice the child's exit; posix_spawn_file_actions_addclosefrom_np).

#include "action_command.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace eg::sidecar {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kChunk = 64 * 1024;
// At most this much output is read in one go (then poll again), so a child that writes without
// pause cannot keep us from noticing the deadline.
constexpr size_t kMaxReadPerWake = 1 << 20;
constexpr std::chrono::milliseconds kTick{10};  // without a pidfd: how often to look at the child

std::string ErrnoText(int err) {
  return std::strerror(err);
}

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset() {
    // close() is not retried on EINTR: on Linux the fd is released whatever it returns.
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Moves fd to a number >= 3 (so the child's dup2 onto 0/1/2 never meets its own source), keeping
// O_CLOEXEC. Returns -1 with errno on failure (fd is closed either way).
int AboveStdio(int fd) {
  if (fd >= 3) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int saved = errno;
  ::close(fd);
  errno = saved;
  return moved;
}

bool MakePipe(UniqueFd* read_end, UniqueFd* write_end, std::string* error) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    *error = "pipe2: " + ErrnoText(errno);
    return false;
  }
  int r = AboveStdio(fds[0]);
  int r_err = errno;
  int w = AboveStdio(fds[1]);
  int w_err = errno;
  read_end->reset();
  write_end->reset();
  *read_end = UniqueFd(r);
  *write_end = UniqueFd(w);
  if (r < 0 || w < 0) {
    *error = "fcntl(F_DUPFD_CLOEXEC): " + ErrnoText(r < 0 ? r_err : w_err);
    return false;
  }
  return true;
}

bool SetNonBlocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  return flags >= 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

UniqueFd PidFdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  long fd = syscall(SYS_pidfd_open, pid, 0);  // always O_CLOEXEC
  if (fd >= 0) return UniqueFd(static_cast<int>(fd));
#else
  (void)pid;
#endif
  return UniqueFd();
}

// Blocks SIGPIPE in the calling thread for the guard's lifetime; a SIGPIPE that our own write
// raised (MarkRaised) is consumed before the caller's mask is restored. See CONTRACT.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    if (sigismember(&old_, SIGPIPE) == 1) {
      sigset_t pending;
      sigemptyset(&pending);
      // Already blocked by the caller and already pending: that one is the caller's.
      caller_pending_ = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) == 1;
    }
  }
  ~SigpipeBlock() {
    if (raised_ && !caller_pending_) {
      struct timespec zero {};
      while (sigtimedwait(&set_, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlock(const SigpipeBlock&) = delete;
  SigpipeBlock& operator=(const SigpipeBlock&) = delete;
  void MarkRaised() { raised_ = true; }

 private:
  sigset_t set_;
  sigset_t old_;
  bool caller_pending_ = false;
  bool raised_ = false;
};

class Runner {
 public:
  Runner(std::string_view stdin_data, ActionResult* result, size_t output_cap)
      : in_(stdin_data), r_(result), cap_(output_cap) {}

  bool Spawn(const std::vector<std::string>& argv);
  void Run(std::chrono::milliseconds timeout, Clock::time_point start);

 private:
  enum class ChildState { kRunning, kExited, kLost };
  ChildState Look();
  void WriteSome();
  void ReadSome(size_t limit);
  void Wait(Clock::time_point until);
  void Reap();
  void NoteError(const std::string& what) {
    if (r_->error.empty()) r_->error = what;
  }

  std::string_view in_;
  size_t written_ = 0;
  ActionResult* r_;
  size_t cap_;
  SigpipeBlock sigpipe_;
  pid_t pid_ = -1;
  UniqueFd in_w_, out_r_, pidfd_;
  bool reaped_ = false;
  bool lost_ = false;
};

bool Runner::Spawn(const std::vector<std::string>& argv) {
  UniqueFd in_r, out_w;
  std::string error;
  if (!MakePipe(&in_r, &in_w_, &error) || !MakePipe(&out_r_, &out_w, &error)) {
    r_->error = "cannot run " + argv[0] + ": " + error;
    return false;
  }

  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  static const char kPath[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  static const char kMarker[] = "EXIMGUARD_ACTION=1";
  char* envp[] = {const_cast<char*>(kPath), const_cast<char*>(kMarker), nullptr};

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  int rc = posix_spawn_file_actions_init(&actions);
  if (rc != 0) {
    r_->error = "cannot run " + argv[0] + ": posix_spawn_file_actions_init: " + ErrnoText(rc);
    return false;
  }
  rc = posix_spawnattr_init(&attr);
  if (rc != 0) {
    posix_spawn_file_actions_destroy(&actions);
    r_->error = "cannot run " + argv[0] + ": posix_spawnattr_init: " + ErrnoText(rc);
    return false;
  }
  sigset_t no_signals, all_signals;
  sigemptyset(&no_signals);
  sigfillset(&all_signals);
  const char* step = "posix_spawn setup";
  if ((rc = posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0)) == 0 &&
      (rc = posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1)) == 0 &&
      (rc = posix_spawn_file_actions_adddup2(&actions, out_w.get(), 2)) == 0 &&
      (rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3)) == 0 &&
      (rc = posix_spawn_file_actions_addchdir_np(&actions, "/")) == 0 &&
      (rc = posix_spawnattr_setflags(
           &attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) == 0 &&
      (rc = posix_spawnattr_setpgroup(&attr, 0)) == 0 &&
      (rc = posix_spawnattr_setsigmask(&attr, &no_signals)) == 0 &&
      (rc = posix_spawnattr_setsigdefault(&attr, &all_signals)) == 0) {
    step = nullptr;
    pid_t pid = -1;
    do {
      rc = posix_spawn(&pid, argv[0].c_str(), &actions, &attr, args.data(), envp);
    } while (rc == EINTR);
    if (rc == 0) pid_ = pid;
  }
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    r_->error =
        "cannot run " + argv[0] + ": " + (step ? std::string(step) + ": " : "") + ErrnoText(rc);
    return false;
  }
  r_->started = true;
  r_->pid = pid_;
  // The child's ends are its own now; closing ours lets EOF / EPIPE happen.
  in_r.reset();
  out_w.reset();
  pidfd_ = PidFdOpen(pid_);  // the child is unreaped, so pid_ cannot name another process
  if (in_.empty()) in_w_.reset();
  if (in_w_ && !SetNonBlocking(in_w_.get())) {
    NoteError("stdin pipe: fcntl: " + ErrnoText(errno));
    in_w_.reset();
  }
  if (!SetNonBlocking(out_r_.get())) {
    NoteError("output pipe: fcntl: " + ErrnoText(errno));
    out_r_.reset();
  }
  return true;
}

Runner::ChildState Runner::Look() {
  if (reaped_ || lost_) return lost_ ? ChildState::kLost : ChildState::kExited;
  for (;;) {
    siginfo_t info;
    std::memset(&info, 0, sizeof info);
    if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0) {
      return info.si_pid == pid_ ? ChildState::kExited : ChildState::kRunning;
    }
    if (errno == EINTR) continue;
    lost_ = true;  // ECHILD: reaped by someone else (SIGCHLD ignored?)
    NoteError("exit status lost: the child was reaped elsewhere (" + ErrnoText(errno) + ")");
    return ChildState::kLost;
  }
}

void Runner::WriteSome() {
  while (in_w_ && written_ < in_.size()) {
    size_t n = std::min(in_.size() - written_, kChunk);
    ssize_t w = ::write(in_w_.get(), in_.data() + written_, n);
    if (w > 0) {
      written_ += static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (w < 0 && errno == EPIPE)
      sigpipe_.MarkRaised();  // the child stopped reading: fine
    else
      NoteError("writing stdin: " + ErrnoText(errno));
    in_w_.reset();
    return;
  }
  in_w_.reset();  // all written: EOF for the child
}

void Runner::ReadSome(size_t limit) {
  char buf[16 * 1024];
  size_t total = 0;
  while (out_r_ && total < limit) {
    ssize_t n = ::read(out_r_.get(), buf, sizeof buf);
    if (n > 0) {
      total += static_cast<size_t>(n);
      size_t room = cap_ - std::min(cap_, r_->output.size());
      size_t keep = std::min(room, static_cast<size_t>(n));
      r_->output.append(buf, keep);
      if (keep < static_cast<size_t>(n)) r_->output_truncated = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0) NoteError("reading output: " + ErrnoText(errno));
    out_r_.reset();  // EOF (every writer gone) or an error
  }
}

// Feeds stdin and drains output until the child exits or `until` passes.
void Runner::Wait(Clock::time_point until) {
  while (Look() == ChildState::kRunning) {
    Clock::time_point now = Clock::now();
    if (now >= until) return;
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(until - now) +
                std::chrono::milliseconds(1);
    if (!pidfd_) wait = std::min(wait, kTick);
    pollfd fds[3];
    nfds_t n = 0;
    int in_at = -1, out_at = -1;
    if (in_w_) {
      in_at = static_cast<int>(n);
      fds[n++] = {in_w_.get(), POLLOUT, 0};
    }
    if (out_r_) {
      out_at = static_cast<int>(n);
      fds[n++] = {out_r_.get(), POLLIN, 0};
    }
    if (pidfd_) fds[n++] = {pidfd_.get(), POLLIN, 0};
    int rc = ::poll(fds, n, static_cast<int>(std::min<long long>(wait.count(), 1 << 30)));
    if (rc < 0) {
      if (errno == EINTR) continue;
      NoteError("poll: " + ErrnoText(errno));
      // Do not spin on a persistent error: fall back to sleeping a tick.
      struct timespec tick {
        0, 10 * 1000 * 1000
      };
      nanosleep(&tick, nullptr);
      continue;
    }
    if (in_at >= 0 && fds[in_at].revents != 0) WriteSome();
    if (out_at >= 0 && fds[out_at].revents != 0) ReadSome(kMaxReadPerWake);
  }
}

void Runner::Reap() {
  if (reaped_ || lost_) return;
  int status = 0;
  for (;;) {
    pid_t got = ::waitpid(pid_, &status, 0);
    if (got == pid_) break;
    if (got < 0 && errno == EINTR) continue;
    lost_ = true;
    NoteError("exit status lost: the child was reaped elsewhere (" + ErrnoText(errno) + ")");
    return;
  }
  reaped_ = true;
  if (WIFEXITED(status)) r_->exit_status = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r_->term_signal = WTERMSIG(status);
}

void Runner::Run(std::chrono::milliseconds timeout, Clock::time_point start) {
  Wait(start + timeout);
  if (Look() == ChildState::kRunning) {
    r_->timed_out = true;
    in_w_.reset();
    // The child is not reaped yet, so its pid is still its group's id and nobody else's.
    ::kill(-pid_, SIGTERM);
    Wait(Clock::now() + kActionKillGrace);
    if (Look() != ChildState::kLost) ::kill(-pid_, SIGKILL);  // also the descendants
  }
  in_w_.reset();
  Reap();
  // What the child wrote is in the pipe now; a descendant may hold it open: no wait for EOF.
  ReadSome(kMaxReadPerWake);
  out_r_.reset();
}

}  // namespace

ActionResult RunActionCommand(const std::vector<std::string>& argv, std::string_view stdin_data,
                              std::chrono::milliseconds timeout, size_t output_cap) {
  Clock::time_point start = Clock::now();
  ActionResult result;
  auto done = [&] {
    result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    return result;
  };
  if (argv.empty() || argv[0].empty()) {
    result.error = "no action program given";
    return done();
  }
  if (argv[0].find('\0') != std::string::npos) {
    result.error = "action program path contains a NUL byte";
    return done();
  }
  if (argv[0][0] != '/') {
    result.error = "action program must be an absolute path: " + argv[0];
    return done();
  }
  for (size_t i = 1; i < argv.size(); ++i) {
    if (argv[i].find('\0') != std::string::npos) {
      result.error = "argument " + std::to_string(i) + " of " + argv[0] + " contains a NUL byte";
      return done();
    }
  }
  {
    Runner runner(stdin_data, &result, output_cap);
    if (runner.Spawn(argv)) runner.Run(timeout, start);
  }  // the SIGPIPE mask is restored here
  return done();
}

}  // namespace eg::sidecar
