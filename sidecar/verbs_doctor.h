// verbs_doctor.h - `eximguard doctor`: checks a running installation end to end and names each
// problem with the exact command or setting that fixes it.
//
// SUMMARY
//   In this order (what the daemon and the guard cannot work without comes first):
//     config      the config file loads (every error listed); the rest uses what could be read
//     exim_log    exists, and was written within --log-minutes (quiet servers: a warning)
//     state_dir   owned by root, not writable by group or others
//     exim        `exim -bV` runs and lists Expand_dlfunc (${dlfunc}: exim4-daemon-heavy)
//     log file    `exim -bP log_file_path` is where exim_log points
//     selector    the effective `exim -bP log_selector` has +pid +arguments +subject
//                 +received_recipients (+all counts; a later -item removes it)
//     acls        acl_smtp_rcpt reaches a ${dlfunc} of eximguard_rcpt and acl_not_smtp one of
//                 eximguard_local (the ACL named, or one it calls with `acl = NAME`), in the
//                 configuration `exim -bP config` prints (else the file `exim -bP
//                 configure_file` names); the .so they name exists; their segment is shm_name
//     group       `exim -bP exim_group` is the config's exim_group
//     table       the shared table exists, owned by root, group exim_group, mode 0660, and its
//                 verdict counters have moved (none yet: a warning with how to test)
//     dovecot_log (when set) a syslog file (any local user can forge its lines with logger: its
//                 incidents are notices only; a warning recommending dovecot_policy) or
//                 Dovecot's own log_path file (DovecotLogKind)
//     daemon      a `start` holds <state_dir>/follow.lock, its status.json is fresh, and the pid
//                 is alive and runs eximguard (/proc/PID/exe; a deleted binary is a problem)
//   Exim is asked through actions.exim_command (so tests point it at `exim -C test.conf`); the
//   fixes name this host's commands (host_platform.h).
//
// CONTRACT
//   - Callers: main.cpp (DoctorVerb), tests (RunDoctor). Needs root on a real host (the table,
//     the state, Exim's -bP config); reads only: it changes nothing anywhere.
//   - Exit code: 0 when no check found a problem (warnings allowed), 1 otherwise. Never throws
//     but std::bad_alloc; a check that cannot run is itself a problem with the reason.
//   - Every outside string shown (Exim's answers, paths from the config) is shown as text, one
//     line per item; secrets are never read.

#ifndef EXIMGUARD_SIDECAR_VERBS_DOCTOR_H_
#define EXIMGUARD_SIDECAR_VERBS_DOCTOR_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace eg::sidecar {

// What the sidecar needs in Exim's log_selector.
inline constexpr const char* kNeededLogSelector[] = {"+pid", "+arguments", "+subject",
                                                     "+received_recipients"};
inline constexpr const char* kNeededLogSelectorText =
    "+pid +arguments +subject +received_recipients";
// status.json older than this means the daemon is not following (it writes every 2 s).
inline constexpr int64_t kStatusStaleSeconds = 30;

struct DoctorOptions {
  int log_minutes = 60;  // exim_log last written longer ago: a warning
  std::string root;      // host prefix for DetectHost (tests); "" in production
  int64_t now = 0;       // unix time the ages are judged against (tests); 0: the clock
};

enum class CheckLevel : uint8_t { kOk, kWarning, kProblem };

struct DoctorCheck {
  CheckLevel level = CheckLevel::kOk;
  std::string name;  // "config", "exim_log", ... (see SUMMARY)
  std::string what;  // one line: what was found
  std::string fix;   // the exact command or setting; empty for ok
};

struct DoctorReport {
  std::string header;  // "eximguard doctor: CONFIG on Debian (no systemd)"
  std::vector<DoctorCheck> checks;
  int Count(CheckLevel level) const;
};

DoctorReport RunDoctor(const std::string& config_path, const DoctorOptions& options);

// The report as text: the header, one line per check ("ok", "warning", "PROBLEM") with its fix
// indented under it, and a last line with the totals.
std::string FormatDoctorReport(const DoctorReport& report);

// `doctor`: the report on out; exit 0 or 1 (see CONTRACT).
int DoctorVerb(const std::string& config_path, const DoctorOptions& options, std::ostream& out,
               std::ostream& err);

// What the configured dovecot_log is: a syslog file (its lines carry a syslog prefix
// "host dovecot[pid]:" / "host dovecot:", or it is named like one: mail.log, maillog, syslog,
// messages) that any local user can write to with logger(1), or Dovecot's own log_path file,
// which only Dovecot writes. Judged from the last 64 KiB of the file, else its name.
struct DovecotLogJudgement {
  bool syslog = false;  // forgeable: its incidents are notices only
  std::string what;     // one line, for config check and doctor (the path Printable)
};
DovecotLogJudgement JudgeDovecotLog(const std::string& path);

// The items of kNeededLogSelector that a log_selector value does not turn on, in that order.
// Items are applied left to right: +all turns everything on, -all off, +x / -x one item.
std::vector<std::string> MissingLogSelectorItems(std::string_view selector);

// The ACL named `acl` in `config` (Exim configuration text: -bP config or the file), or an ACL it
// calls with `acl = NAME` (up to 8 deep), contains a ${dlfunc{SO}{function}{SEGMENT}...}.
// Returns false when none does; else fills *so and *segment from the first one found.
bool AclCallsGuard(std::string_view config, const std::string& acl, const std::string& function,
                   std::string* so, std::string* segment);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_VERBS_DOCTOR_H_
