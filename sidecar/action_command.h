// action_command.h - runs the administrator's custom action program for an incident: no shell,
// the incident on its stdin, its output captured (capped), killed with its process group when
// it overruns its time.
//
// SUMMARY
//   ActionResult r = RunActionCommand({"/usr/local/sbin/on-incident", "--block"},
//                                     incident_json, std::chrono::seconds(30));
//   if (!r.started) log("action %s not run: %s", argv[0], r.error);
//   else if (r.timed_out) log("action %s killed after %.1f s", argv[0], r.seconds);
//   else if (r.exit_status != 0) log("action %s failed: %s", argv[0], Describe(r), r.output);
//
// CONTRACT
//   - Callers: the sidecar daemon (`start`) and cron mode (`run`) when an incident calls for
//     the configured action command, possibly from a worker thread; tests.
//   - No shell. argv[0] must be an absolute path (it is executed as is, PATH is not searched);
//     an empty argv, a relative argv[0], or an argument with a NUL byte is refused with
//     started=false and a message. A program that cannot be executed (missing, not
//     executable, bad interpreter) also gives started=false with the errno text: the child is
//     created with posix_spawn(3), which (glibc >= 2.34, vfork-style) reports exec failures
//     as its return value, so a failed start is never mistaken for an exit status 127.
//   - The child: its own process group (pgid = its pid); stdin a pipe carrying exactly
//     `stdin_data` then EOF; stdout and stderr one shared pipe; every other fd closed
//     (posix_spawn_file_actions_addclosefrom_np(3), i.e. close_range, in the child); cwd "/";
//     environment exactly PATH=/usr/sbin:/usr/bin:/sbin:/bin and EXIMGUARD_ACTION=1; signal
//     mask empty and every signal at its default disposition, so a daemon that ignores SIGPIPE
//     does not pass that on (but see BUGS). Same uid/gid as the caller: dropping privileges is
//     the caller's business (or the program's).
//   - Stdin is written with the pipe non-blocking, multiplexed with poll(2) against reading the
//     output, so a child that never reads its stdin, or writes a lot before reading, cannot
//     deadlock us whatever the sizes. A child that exits (or closes stdin) before reading all
//     of it ends the writing (EPIPE), not us: SIGPIPE is blocked in the CALLING THREAD only
//     (pthread_sigmask) for the duration of the call, a SIGPIPE our own write raised is
//     consumed with sigtimedwait() before the mask is restored, and the process-wide
//     disposition is never touched. (A SIGPIPE already pending and blocked in the caller's
//     thread before the call is left pending.)
//   - Output: the first output_cap (default kActionOutputCap) bytes of stdout+stderr interleaved as
//   written are kept
//     in `output` (raw bytes: the caller escapes them for its log); the rest is read and
//     discarded so the child never blocks writing. output_truncated says bytes were dropped.
//   - Timeout (counted from the start, covering the stdin writing): SIGTERM to the whole
//     process group, up to kActionKillGrace (1 s) for the child to exit (output still drained),
//     then SIGKILL to the whole group (always: it also ends descendants that survived the
//     SIGTERM), then the child is reaped. timed_out is set and exit_status/term_signal say how
//     it actually ended (usually term_signal SIGTERM or SIGKILL). The call returns soon after
//     timeout + grace even when a descendant keeps the output pipe open: after the child is
//     reaped we read what is already buffered and close our end, never waiting for EOF.
//     The group id is only signalled while the child is not yet reaped, so it cannot have been
//     recycled for an unrelated group.
//   - Normal end: when the child (the process we started) exits, whatever it wrote is already
//     in the pipe; that is read without waiting for EOF and the child is reaped. Processes it
//     left behind in its group (`cmd &`) are NOT killed: they may be meant to outlive it (they
//     get EPIPE/SIGPIPE if they write to the closed output later). The child is always reaped
//     before the call returns: no zombie of ours is left. Descendants are reparented to init
//     (or a subreaper), not to us.
//   - Every system call is retried on EINTR; no exceptions but std::bad_alloc; no fd leaks
//     (every fd this opens is O_CLOEXEC and closed before return). Secrets: error messages name
//     argv[0] only, never the other arguments.
//
// THREAD SAFETY
//   RunActionCommand is safe to call from several threads at once (no shared state; posix_spawn
//   is thread-safe; our fds are O_CLOEXEC so a concurrent spawn elsewhere does not inherit
//   them). It blocks the calling thread for up to timeout + kActionKillGrace (+ the time the
//   kernel takes to deliver SIGKILL).
//
// BUGS
//   - The process must not reap children it did not start (no waitpid(-1) loop, no SIGCHLD
//     set to SIG_IGN, which auto-reaps): the exit status would be lost (reported as
//     exit_status -1 with an error) and the group id could be recycled before we signal it.
//   - A descendant that leaves the process group (setsid, setpgid) escapes the timeout kill;
//     only a cgroup could contain that.
//   - A child stuck in uninterruptible sleep (D state) delays the return until it dies: the
//     final reap after SIGKILL is a blocking waitpid.
//   - glibc's posix_spawn leaves its two internal signals (32 and 33, below SIGRTMIN) ignored
//     in the child; they cannot be named in a sigset_t. Every signal a program can use
//     (1-31, SIGRTMIN-SIGRTMAX) is at its default.
//   - Needs glibc >= 2.34 (posix_spawn_file_actions_addclosefrom_np) on Linux.

#ifndef EXIMGUARD_SIDECAR_ACTION_COMMAND_H_
#define EXIMGUARD_SIDECAR_ACTION_COMMAND_H_

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace eg::sidecar {

inline constexpr size_t kActionOutputCap = 4096;
inline constexpr std::chrono::milliseconds kActionKillGrace{1000};

struct ActionResult {
  bool started = false;           // the program was executed (false: see error)
  bool timed_out = false;         // killed because it ran past the timeout
  int exit_status = -1;           // WEXITSTATUS when it exited, else -1
  int term_signal = 0;            // the signal that ended it, else 0
  std::string output;             // first kActionOutputCap bytes of stdout+stderr (raw)
  bool output_truncated = false;  // more output was read and discarded
  std::string error;              // why it did not start, or what went wrong around it
  double seconds = 0;             // wall time of the whole call
  int pid = -1;                   // the child's pid (= its process group), for logs/tests
};

// Runs argv (argv[0] an absolute path) with stdin_data on its stdin; see CONTRACT.
// output_cap: how much output to keep (kActionOutputCap for an admin's program; more for a
// program whose output is read, such as `exim -bp`).
ActionResult RunActionCommand(const std::vector<std::string>& argv, std::string_view stdin_data,
                              std::chrono::milliseconds timeout,
                              size_t output_cap = kActionOutputCap);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_ACTION_COMMAND_H_
