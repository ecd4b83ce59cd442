// action_command_test.cpp - tests of the action runner (sidecar/action_command.h): stdin
// delivered byte for byte (also 1 MiB), exit status and signal, no SIGPIPE for us when the child
// ignores its stdin, the timeout kill of the whole process group (also a child that ignores
// SIGTERM and one whose grandchild keeps the output pipe open), output capped at 4 KiB, refused
// and failed starts, and the child's surroundings (fds, environment, cwd, group, signals).
//
// The children are /bin/sh (dash or bash) and coreutils. The timeout tests take about 1.5 s
// each (the 1 s SIGTERM grace); the whole set runs in under 10 s.
//
// Grandchildren killed by the group SIGKILL are reparented to PID 1; if PID 1 does not reap (a
// minimal container init), they linger as zombies, so "gone" below means gone or a zombie.

#include "action_command.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "sidecar_test_util.h"

namespace eg::sidecar {
namespace {

using std::chrono::milliseconds;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

ActionResult Sh(const std::string& script, std::string_view in = {},
                milliseconds timeout = milliseconds(10000), std::vector<std::string> extra = {}) {
  std::vector<std::string> argv{"/bin/sh", "-c", script, "sh"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return RunActionCommand(argv, in, timeout);
}

// State letter and process group of `pid` from /proc/PID/stat; false when there is no such
// process.
bool ProcStat(pid_t pid, char* state, pid_t* pgrp) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return false;
  char st = 0;
  int ppid = 0, pg = 0;
  if (std::sscanf(stat.c_str() + close + 1, " %c %d %d", &st, &ppid, &pg) != 3) return false;
  *state = st;
  *pgrp = pg;
  return true;
}

// Processes of group `pgid` that are not zombies.
std::vector<pid_t> LiveMembers(pid_t pgid) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    char state = 0;
    pid_t pg = 0;
    if (ProcStat(static_cast<pid_t>(pid), &state, &pg) && pg == pgid && state != 'Z' &&
        state != 'X') {
      out.push_back(static_cast<pid_t>(pid));
    }
  }
  closedir(d);
  return out;
}

// Waits up to 2 s for group `pgid` to have no live member (a SIGKILL is delivered at once, but
// the dying process may take a moment to leave).
bool GroupGone(pid_t pgid) {
  for (int i = 0; i < 200; ++i) {
    if (LiveMembers(pgid).empty()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return false;
}

std::string Payload(size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  return s;
}

TEST(ActionCommand, StdinDeliveredExactly) {
  TempDir dir;
  for (size_t size : {size_t{0}, size_t{1}, size_t{256}, size_t{65536}, size_t{1} << 20}) {
    SCOPED_TRACE(size);
    const std::string path = dir.File("in-" + std::to_string(size));
    std::string data = Payload(size);
    ActionResult r = Sh("cat > \"$1\"", data, milliseconds(10000), {path});
    ASSERT_TRUE(r.started) << r.error;
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.exit_status, 0);
    EXPECT_EQ(r.term_signal, 0);
    EXPECT_EQ(r.error, "");
    EXPECT_TRUE(ReadFile(path) == data) << "stdin differs, size " << ReadFile(path).size();
  }
}

TEST(ActionCommand, ExitStatusAndSignal) {
  ActionResult r = Sh("exit 7");
  ASSERT_TRUE(r.started) << r.error;
  EXPECT_EQ(r.exit_status, 7);
  EXPECT_EQ(r.term_signal, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_GT(r.pid, 0);

  r = Sh("kill -USR1 $$; sleep 5");
  ASSERT_TRUE(r.started) << r.error;
  EXPECT_EQ(r.exit_status, -1);
  EXPECT_EQ(r.term_signal, SIGUSR1);
  EXPECT_FALSE(r.timed_out);
  EXPECT_LT(r.seconds, 4.0);
}

// The child exits without reading 1 MiB of stdin (far more than a pipe holds): we must neither
// die of SIGPIPE nor hang, nor keep a SIGPIPE pending, nor change the SIGPIPE disposition or
// our thread's signal mask.
TEST(ActionCommand, ChildIgnoringStdinDoesNotSigpipeUs) {
  struct sigaction before {};
  ASSERT_EQ(sigaction(SIGPIPE, nullptr, &before), 0);
  sigset_t mask_before;
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, nullptr, &mask_before), 0);

  const std::string data = Payload(size_t{1} << 20);
  ActionResult r = RunActionCommand({"/bin/true"}, data, milliseconds(10000));
  ASSERT_TRUE(r.started) << r.error;
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_EQ(r.error, "");
  // Reads a little, then exits.
  r = Sh("head -c 10 >/dev/null; exit 4", data);
  EXPECT_EQ(r.exit_status, 4);
  // Closes stdin and goes on writing and living for a while.
  r = Sh("exec 0<&-; sleep 0.2; echo done", data);
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_EQ(r.output, "done\n");

  struct sigaction after {};
  ASSERT_EQ(sigaction(SIGPIPE, nullptr, &after), 0);
  EXPECT_EQ(after.sa_handler, before.sa_handler);
  sigset_t mask_after, pending;
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, nullptr, &mask_after), 0);
  EXPECT_EQ(sigismember(&mask_after, SIGPIPE), sigismember(&mask_before, SIGPIPE));
  ASSERT_EQ(sigpending(&pending), 0);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
}

// The same from a worker thread whose SIGPIPE is already blocked: it stays blocked and nothing
// is left pending.
TEST(ActionCommand, ChildIgnoringStdinFromWorkerThreadWithSigpipeBlocked) {
  bool ok = false;
  std::thread t([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    ActionResult r = RunActionCommand({"/bin/true"}, Payload(300000), milliseconds(10000));
    sigset_t mask, pending;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    sigpending(&pending);
    ok = r.started && r.exit_status == 0 && sigismember(&mask, SIGPIPE) == 1 &&
         sigismember(&pending, SIGPIPE) == 0;
  });
  t.join();
  EXPECT_TRUE(ok);
}

TEST(ActionCommand, TimeoutKillsTheGroup) {
  ActionResult r = Sh("exec sleep 1000", "", milliseconds(300));
  ASSERT_TRUE(r.started) << r.error;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGTERM);
  EXPECT_EQ(r.exit_status, -1);
  EXPECT_GE(r.seconds, 0.29);
  EXPECT_LT(r.seconds, 3.0);  // soon after the timeout (the SIGTERM sufficed: see term_signal)
  errno = 0;
  EXPECT_EQ(kill(r.pid, 0), -1);  // reaped: no zombie of ours
  EXPECT_EQ(errno, ESRCH);
  EXPECT_TRUE(GroupGone(r.pid));
}

TEST(ActionCommand, TimeoutKillsAChildIgnoringSigterm) {
  // The trap is inherited by the `sleep`s; only SIGKILL ends them.
  ActionResult r = Sh("trap '' TERM; while :; do sleep 1; done", "", milliseconds(300));
  ASSERT_TRUE(r.started) << r.error;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_GE(r.seconds, 1.25);  // timeout + the SIGTERM grace
  EXPECT_LT(r.seconds, 4.0);
  errno = 0;
  EXPECT_EQ(kill(r.pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_TRUE(GroupGone(r.pid));
}

TEST(ActionCommand, TimeoutWithGrandchildHoldingTheOutputPipe) {
  // The grandchild ignores SIGTERM and keeps stdout/stderr open; the child itself dies of the
  // SIGTERM. We must SIGKILL the group without waiting for EOF on the output.
  ActionResult r =
      Sh("(trap '' TERM; exec sleep 1000) & echo started; exec sleep 1000", "", milliseconds(300));
  ASSERT_TRUE(r.started) << r.error;
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGTERM);
  EXPECT_EQ(r.output, "started\n");
  EXPECT_LT(r.seconds, 1.25);  // the child's exit ends the grace at once: no wait for EOF
  EXPECT_TRUE(GroupGone(r.pid));

  // The same with a child that also ignores SIGTERM: both go at the SIGKILL.
  r = Sh("trap '' TERM; sleep 1000 & while :; do sleep 1; done", "", milliseconds(300));
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.term_signal, SIGKILL);
  EXPECT_LT(r.seconds, 4.0);
  EXPECT_TRUE(GroupGone(r.pid));
}

// A child that exits normally but leaves a background process holding the output pipe: we
// return at its exit, with its output, without waiting for the pipe's EOF.
TEST(ActionCommand, NormalExitDoesNotWaitForBackgroundHolder) {
  TempDir dir;
  const std::string pid_file = dir.File("bg.pid");
  ActionResult r =
      Sh("echo hi; sleep 30 & echo $! > \"$1\"; exit 3", "", milliseconds(10000), {pid_file});
  ASSERT_TRUE(r.started) << r.error;
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_status, 3);
  EXPECT_EQ(r.output, "hi\n");
  EXPECT_LT(r.seconds, 3.0);
  pid_t bg = static_cast<pid_t>(std::atol(ReadFile(pid_file).c_str()));
  ASSERT_GT(bg, 0);
  EXPECT_EQ(kill(bg, SIGKILL), 0);  // left alone by design (see CONTRACT); clean up
}

TEST(ActionCommand, OutputCombinedAndCapped) {
  ActionResult r = Sh("echo out; echo err >&2");
  EXPECT_EQ(r.output, "out\nerr\n");
  EXPECT_FALSE(r.output_truncated);

  // 10 MB of output before reading a 1 MiB stdin: neither side may block the other.
  r = Sh("head -c 10000000 /dev/zero | tr '\\0' x; cat > /dev/null; echo tail >&2",
         Payload(size_t{1} << 20));
  ASSERT_TRUE(r.started) << r.error;
  EXPECT_EQ(r.exit_status, 0);
  EXPECT_EQ(r.output.size(), kActionOutputCap);
  EXPECT_EQ(r.output, std::string(kActionOutputCap, 'x'));
  EXPECT_TRUE(r.output_truncated);
}

TEST(ActionCommand, RefusedAndFailedStarts) {
  ActionResult r = RunActionCommand({}, "", milliseconds(1000));
  EXPECT_FALSE(r.started);
  EXPECT_NE(r.error, "");

  r = RunActionCommand({"true"}, "", milliseconds(1000));
  EXPECT_FALSE(r.started);
  EXPECT_NE(r.error.find("absolute path"), std::string::npos) << r.error;

  r = RunActionCommand({"bin/true"}, "", milliseconds(1000));
  EXPECT_FALSE(r.started);
  EXPECT_NE(r.error.find("absolute path"), std::string::npos) << r.error;

  r = RunActionCommand({"/nonexistent/eximguard-action", "--token=s3cret"}, "{}",
                       milliseconds(1000));
  EXPECT_FALSE(r.started);
  EXPECT_EQ(r.pid, -1);
  EXPECT_NE(r.error.find("/nonexistent/eximguard-action"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find(std::strerror(ENOENT)), std::string::npos) << r.error;
  EXPECT_EQ(r.error.find("s3cret"), std::string::npos) << r.error;  // argv[0] only

  TempDir dir;
  const std::string not_exec = dir.File("not-exec");
  WriteFile(not_exec, "#!/bin/sh\nexit 0\n", 0644);
  r = RunActionCommand({not_exec}, "", milliseconds(1000));
  EXPECT_FALSE(r.started);
  EXPECT_NE(r.error.find(std::strerror(EACCES)), std::string::npos) << r.error;

  r = RunActionCommand({"/bin/true", std::string("a\0b", 3)}, "", milliseconds(1000));
  EXPECT_FALSE(r.started);
  EXPECT_NE(r.error.find("NUL"), std::string::npos) << r.error;
}

TEST(ActionCommand, NoFdLeaksIntoTheChild) {
  // An fd of ours without O_CLOEXEC, which a plain fork+exec would pass on.
  int leaky = open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky, 0);
  ActionResult r = Sh("ls /proc/$$/fd");
  close(leaky);
  ASSERT_TRUE(r.started) << r.error;
  EXPECT_EQ(r.output, "0\n1\n2\n");
}

// Our own fds: every call, whatever its end, closes what it opened.
TEST(ActionCommand, NoFdLeaksInTheCaller) {
  auto count = [] {
    int n = 0;
    DIR* d = opendir("/proc/self/fd");
    if (d == nullptr) return -1;
    while (readdir(d) != nullptr) ++n;
    closedir(d);
    return n;
  };
  const int before = count();
  RunActionCommand({"/bin/true"}, "x", milliseconds(5000));
  RunActionCommand({"/nonexistent"}, "x", milliseconds(5000));
  Sh("exec sleep 100", "", milliseconds(50));
  Sh("exit 0", std::string(200000, 'y'));
  EXPECT_EQ(count(), before);
}

TEST(ActionCommand, ChildSurroundings) {
  ActionResult r = RunActionCommand({"/usr/bin/env"}, "", milliseconds(5000));
  ASSERT_TRUE(r.started) << r.error;
  EXPECT_EQ(r.output, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nEXIMGUARD_ACTION=1\n");

  r = RunActionCommand({"/bin/pwd"}, "", milliseconds(5000));
  EXPECT_EQ(r.output, "/\n");

  // Its own process group, no blocked or ignored signal even when ours has some.
  struct sigaction ignore {
  }, old{};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGUSR2, &ignore, &old), 0);
  sigset_t usr1, old_mask;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &usr1, &old_mask);
  r = RunActionCommand({"/bin/cat", "/proc/self/stat", "/proc/self/status"}, "",
                       milliseconds(5000));
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGUSR2, &old, nullptr);
  ASSERT_TRUE(r.started) << r.error;
  ASSERT_EQ(r.exit_status, 0);
  int pid = 0, ppid = 0, pgrp = 0;
  char state = 0;
  size_t close_paren = r.output.find(')');
  ASSERT_NE(close_paren, std::string::npos);
  ASSERT_EQ(std::sscanf(r.output.c_str(), "%d", &pid), 1);
  ASSERT_EQ(std::sscanf(r.output.c_str() + close_paren + 1, " %c %d %d", &state, &ppid, &pgrp), 3);
  EXPECT_EQ(pid, r.pid);
  EXPECT_EQ(pgrp, r.pid);
  EXPECT_EQ(ppid, getpid());
  EXPECT_NE(r.output.find("SigBlk:\t0000000000000000\n"), std::string::npos) << r.output;
  // glibc's posix_spawn leaves its two internal signals (32 and 33, below SIGRTMIN) ignored
  // (they cannot be named in a sigset_t); every signal a program can use is at its default.
  size_t ign = r.output.find("SigIgn:\t");
  ASSERT_NE(ign, std::string::npos) << r.output;
  unsigned long long ignored = std::strtoull(r.output.c_str() + ign + 8, nullptr, 16);
  EXPECT_EQ(ignored & ~((1ULL << (32 - 1)) | (1ULL << (33 - 1))), 0ULL) << r.output;
}

TEST(ActionCommand, ConcurrentCallsFromThreads) {
  TempDir dir;
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  std::vector<int> ok(kThreads, 0);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      const std::string path = dir.File("t" + std::to_string(i));
      const std::string data = Payload(200000 + static_cast<size_t>(i) * 1000);
      ActionResult r =
          Sh("cat > \"$1\"; echo $2", data, milliseconds(10000), {path, std::to_string(i)});
      ok[static_cast<size_t>(i)] = r.started && r.exit_status == 0 &&
                                   r.output == std::to_string(i) + "\n" && ReadFile(path) == data;
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_TRUE(ok[static_cast<size_t>(i)]) << i;
}

}  // namespace
}  // namespace eg::sidecar
