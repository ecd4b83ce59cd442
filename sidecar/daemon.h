// daemon.h - `eximguard start` (follow the logs until SIGTERM) and `eximguard run` (cron mode:
// one pass over the lines appended since the last pass, then exit).
//
// SUMMARY
//   Both:
//     1. load the config (refuse it with every error), open the state store;
//     2. take <state_dir>/follow.lock (flock; holds the pid): one follower of the logs at a
//        time, so a cron `run` beside a running daemon says so instead of double-processing;
//     3. publish the policy (config + the store's blocks and whitelist) into the shared table,
//        creating it if needed;
//     4. follow exim_log (and dovecot_log when set) from the checkpoints in the store. Before
//        that, the detectors are warmed up: the up to kWarmUpBytes of log before each checkpoint
//        are fed through the engine again, so windows that were open when the last process
//        stopped are whole again (a burst that straddles a restart is still seen). Incidents
//        that warm-up finds again were recorded already and stop at the cooldown. Warm-up never
//        reads before the point `skip` moved the checkpoint to (what was skipped stays so);
//     5. per batch of lines: engine -> incidents -> store/block/action (engine.h), then the
//        checkpoints are saved in the store (after processing: a kill -9 can repeat at most one
//        batch, never lose one, and a repeated batch cannot record an incident twice);
//     6. every few seconds: <state_dir>/status.json (for `status`); every minute (start only):
//        reconcile the table's hour counters with the log (reconcile.h: recipients counted at
//        RCPT time that never became a message are credited back; only keys the log showed
//        authenticated or local arrivals for); every hour: prune rows older than retention_days.
//   start: SIGHUP reloads the config and the store's whitelist (a bad config is refused and the
//   old one kept), rebuilds the engine and warms it up again; SIGTERM/SIGINT stop after the
//   current batch, checkpoints saved.
//
// CONTRACT
//   - Callers: main.cpp. Runs as root in production (the table, the logs, state_dir). Messages
//     go to `log` (stderr: the journal under systemd), one line each, never a secret.
//   - Returns the exit code: 0 ok, 1 failure (each problem written to `err`).
//   - Thread safety: one thread follows, records and blocks. Each recorded incident's follow-up
//     (WHM steps, freeze, firewall, actions.command, then the notice: follow_up.h) runs in one
//     worker thread fed by a bounded queue (kMaxQueuedActions; beyond it a follow-up is dropped
//     and logged; the block and the record are already done). Notices are sent by the
//     notifier's own thread (notify.h). `start` also runs the Telegram and Slack admin bots, each
//     on its own thread, when their tokens are set, and Dovecot's auth policy server on its own
//     thread when dovecot_policy.enabled (dovecot_policy_server.h; restarted by a reload that
//     changed its section; its counters in status.json "dovecot_policy"). At exit the queue is
//     finished and the notifier gets up to kNotifyDrain to send what it holds.

#ifndef EXIMGUARD_SIDECAR_DAEMON_H_
#define EXIMGUARD_SIDECAR_DAEMON_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

namespace eg::sidecar {

inline constexpr uint64_t kWarmUpBytes = uint64_t{16} << 20;
inline constexpr size_t kMaxQueuedActions = 256;
inline constexpr std::chrono::seconds kNotifyDrain{10};
// How often `start` reads the guard's table for its own refusals (table_watch.h).
inline constexpr std::chrono::milliseconds kTableLookEvery{1000};
// Reconcile credits a bucket only this long after the log is complete past its end: longer
// than a DATA phase takes, so a message still being received is never taken for a phantom.
inline constexpr uint32_t kReconcileLagSeconds = 300;
inline constexpr const char* kFollowLockName = "follow.lock";
inline constexpr const char* kStatusFileName = "status.json";
// `skip` saves, beside each log's checkpoint, "<name>.skip": warm-up never reads before it.
inline constexpr const char* kSkipFloorSuffix = ".skip";

struct DaemonOptions {
  bool once = false;  // `run`: one pass, then exit
  // `start --pidfile FILE`: the daemon's pid is written there (0644) once it holds the follow
  // lock, and the file is removed when it stops (hosts without systemd: the init script's
  // start-stop-daemon, uninstall.sh). Empty: none.
  std::string pidfile;
  std::chrono::milliseconds poll{200};
  int reconcile_seconds = 60;
};

int RunDaemon(const std::string& config_path, const DaemonOptions& options, std::ostream& out,
              std::ostream& err);

// The pid holding <state_dir>/follow.lock, or 0 when no start/run holds it.
int FollowerPid(const std::string& state_dir);

// Whether process `pid` runs eximguard: its /proc/PID/exe is our own /proc/self/exe, or its
// basename is "eximguard". A pid read from a file is checked with it before it is signalled
// (the file could name any process, a root shell's included).
bool IsEximguardProcess(int pid);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_DAEMON_H_
