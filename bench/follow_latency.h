// follow_latency.h - a small harness shared by the follow-mode benchmarks
// (bench/follow_latency.cpp, bench/daemon_memory.cpp): writes a sandbox config, starts the real
// `eximguard start` on it, reads its status.json and /proc/PID/status, stops it with SIGTERM.
//
// Header-only on purpose: each benchmark is one executable, and neither links eximguard_core
// (they measure the daemon from outside, as an admin would see it).

#ifndef EXIMGUARD_BENCH_FOLLOW_LATENCY_H_
#define EXIMGUARD_BENCH_FOLLOW_LATENCY_H_

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace egbench {

using Clock = std::chrono::steady_clock;

inline double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// "YYYY-MM-DD HH:MM:SS" in local time (the daemon reads the log as local time).
inline std::string Stamp(int64_t unix_time) {
  const time_t t = static_cast<time_t>(unix_time);
  tm tm{};
  localtime_r(&t, &tm);
  char s[32];
  std::strftime(s, sizeof s, "%Y-%m-%d %H:%M:%S", &tm);
  return s;
}

// An Exim message id (old 6-6-2 format) from a counter: unique per counter value.
inline std::string MessageId(uint64_t n) {
  static const char kB62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  char id[17] = "1tAAAA-000000-AB";
  for (int i = 12; i >= 7; --i, n /= 62) id[i] = kB62[n % 62];
  for (int i = 5; i >= 2; --i, n /= 62) id[i] = kB62[n % 62];
  return id;
}

inline bool WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The first number after "key": in a JSON text (status.json is flat enough for that); -1 if none.
inline int64_t JsonNumber(const std::string& text, const std::string& key) {
  const size_t at = text.find("\"" + key + "\":");
  if (at == std::string::npos) return -1;
  return std::strtoll(text.c_str() + at + key.size() + 3, nullptr, 10);
}

// A field of /proc/PID/status in kB (VmRSS, VmHWM, ...); -1 if unreadable.
inline int64_t ProcStatusKb(pid_t pid, const char* field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string want = std::string(field) + ":";
  while (std::getline(in, line)) {
    if (line.compare(0, want.size(), want) == 0) return std::atoll(line.c_str() + want.size());
  }
  return -1;
}

struct Daemon {
  pid_t pid = -1;
  std::string dir, config, mainlog, db, status, shm, log;
};

// Writes <dir>/eximguard.json (mode 0600) with the sandbox keys plus `extra` (JSON members,
// without braces, e.g. "\"notify_only\": true"), an empty mainlog, and starts `eximguard start`
// with its stderr in <dir>/daemon.log. Waits until status.json exists. False with a message.
inline bool StartDaemon(const std::string& bin, const std::string& dir, const std::string& extra,
                        Daemon* d, std::string* error) {
  d->dir = dir;
  d->config = dir + "/eximguard.json";
  d->mainlog = dir + "/mainlog";
  d->db = dir + "/eximguard.db";
  d->status = dir + "/status.json";
  d->log = dir + "/daemon.log";
  d->shm = "/eg-bench-" + std::to_string(getpid());
  const group* g = getgrgid(getgid());
  const std::string group = g ? g->gr_name : "root";
  std::string cfg = "{\"state_dir\": \"" + dir + "\", \"exim_log\": \"" + d->mainlog +
                    "\", \"shm_name\": \"" + d->shm + "\", \"exim_group\": \"" + group +
                    "\", \"local_domains_file\": \"\"";
  if (!extra.empty()) cfg += ", " + extra;
  cfg += "}\n";
  const int cfd = open(d->config.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (cfd < 0 || fchmod(cfd, 0600) != 0 || !WriteAll(cfd, cfg)) {
    *error = d->config + ": " + std::strerror(errno);
    return false;
  }
  close(cfd);
  const int lfd = open(d->mainlog.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (lfd < 0) {
    *error = d->mainlog + ": " + std::strerror(errno);
    return false;
  }
  close(lfd);
  d->pid = fork();
  if (d->pid < 0) {
    *error = std::string("fork: ") + std::strerror(errno);
    return false;
  }
  if (d->pid == 0) {
    const int efd = open(d->log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (efd >= 0) dup2(efd, 2);
    const int nfd = open("/dev/null", O_RDWR);
    if (nfd >= 0) dup2(nfd, 0), dup2(nfd, 1);
    execl(bin.c_str(), bin.c_str(), "start", "--config", d->config.c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    int st = 0;
    if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
      *error = "eximguard start exited early; " + d->log + ":\n" + ReadFile(d->log);
      d->pid = -1;
      return false;
    }
    if (access(d->status.c_str(), R_OK) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  *error = "eximguard start wrote no " + d->status + " within 20 s";
  return false;
}

// SIGTERM, then waits up to `timeout`. Returns the exit status (128+signal if killed by one, -1
// if it did not stop: it is then killed). Removes the shared-memory segment the daemon created.
inline int StopDaemon(Daemon* d, std::chrono::seconds timeout = std::chrono::seconds(30)) {
  if (d->pid <= 0) return -1;
  kill(d->pid, SIGTERM);
  const Clock::time_point deadline = Clock::now() + timeout;
  int code = -1;
  for (;;) {
    int st = 0;
    if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
      code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (Clock::now() >= deadline) {
      kill(d->pid, SIGKILL);
      waitpid(d->pid, &st, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  d->pid = -1;
  shm_unlink(d->shm.c_str());
  return code;
}

// The value at quantile q (0..1) of sorted values (nearest rank).
inline double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(q * static_cast<double>(sorted.size()) + 0.999999);
  i = std::clamp<size_t>(i, 1, sorted.size());
  return sorted[i - 1];
}

}  // namespace egbench

#endif  // EXIMGUARD_BENCH_FOLLOW_LATENCY_H_
