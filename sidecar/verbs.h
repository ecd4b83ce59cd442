// verbs.h - one function per CLI verb of `eximguard`; main.cpp only parses the command line.
//
// CONTRACT
//   Each verb takes its parsed options and the streams to write to, and returns the process
//   exit code: kExitOk, or kExitFailure after writing every problem to `err` (one per line).
//   Usage errors (kExitUsage) are detected by the command-line parser, not here. Verbs never
//   throw for bad input or a missing segment; std::bad_alloc and the like propagate to main.

#ifndef EXIMGUARD_SIDECAR_VERBS_H_
#define EXIMGUARD_SIDECAR_VERBS_H_

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace eg::sidecar {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// `top`: the busiest keys (max_rows 0: all), as a table or as JSON.
int TopVerb(const std::string& config_path, size_t max_rows, bool json, std::ostream& out,
            std::ostream& err);

// `config check`: "config OK: <file>" and a summary, or every error.
int ConfigCheckVerb(const std::string& config_path, std::ostream& out, std::ostream& err);

// `config show`: the effective config as JSON, secrets masked; limits set with `set` (which
// apply on top of the file) are listed on err.
int ConfigShowVerb(const std::string& config_path, std::ostream& out, std::ostream& err);

// `start` and `run` are RunDaemon() (daemon.h).

// `replay LOG...`: the detectors over any log files (kind recognized by content, merged in time
// order), no action taken. The config's limits when the file exists or was named (--config),
// else the defaults. --json: one object per incident per line (IncidentToJson), summary on err.
int ReplayVerb(const std::string& config_path, bool config_named,
               const std::vector<std::string>& files, bool json, std::ostream& out,
               std::ostream& err);

// `rerun YYYY-MM-DD`: that day's lines of exim_log (and dovecot_log) and their rotations (.gz
// too) through the engine: incidents recorded (those already recorded stop at the cooldown),
// never punished and no action run: a past day's log lines are forgeable evidence and the
// table's counters are today's, so nothing can corroborate them (each is a notice-only record;
// `act ID` acts on one). Safe beside a running daemon.
int RerunVerb(const std::string& config_path, const std::string& date, std::ostream& out,
              std::ostream& err);

// `skip`: the checkpoints of the followed logs move to their ends (refused while following).
int SkipVerb(const std::string& config_path, std::ostream& out, std::ostream& err);

// `incidents [--since S]`: S is all, N[smhd] (ago), YYYY-MM-DD[ HH:MM[:SS]] or a unix time.
int IncidentsVerb(const std::string& config_path, const std::string& since, bool json,
                  std::ostream& out, std::ostream& err);
// `why KEY`: limits, blocks, whitelisting, current counters, incidents with their evidence.
int WhyVerb(const std::string& config_path, const std::string& key, std::ostream& out,
            std::ostream& err);
// `info DOMAIN|EMAIL`: the domain's cPanel owner (WHM, needs whm.token), and for the address
// (or every address of the domain, and the owner's uid): blocks, incidents of the last 7 days,
// whitelisting, limits set with `set`, live counters. Read-only.
int InfoVerb(const std::string& config_path, const std::string& what, std::ostream& out,
             std::ostream& err);
// `suspend KEY` / `unsuspend KEY`: a block in the store and, at once, in the shared table.
// `who` goes to the audit trail: CliUser() from the command line, "telegram:ID" / "slack:ID"
// from the bots.
int SuspendVerb(const std::string& config_path, const std::string& key, const std::string& reason,
                const std::string& who, std::ostream& out, std::ostream& err);
int UnsuspendVerb(const std::string& config_path, const std::string& key, const std::string& who,
                  std::ostream& out, std::ostream& err);
// `act ID`: an admin acts on incident ID as its rule's actions say (actions.rules), whether its
// evidence was trusted or not: the block (an admin's: it does not lapse), then the WHM steps,
// firewall, freeze and command, as `who`. Refused for protected keys (protected_keys.h: root,
// system uids, eximguard's own addresses); `suspend` blocks those by hand. Audited.
int ActVerb(const std::string& config_path, const std::string& id, const std::string& who,
            std::ostream& out, std::ostream& err);
// `reset KEY` / `reset --all`: the key's (every key's) counters in the shared table go to zero,
// and the daemon's log rules judge it afresh: log lines from before the reset no longer count
// toward an incident (reset_marks.h). Audited. Blocks stay: `unsuspend` lifts them.
int ResetVerb(const std::string& config_path, const std::string& key, bool all,
              const std::string& who, std::ostream& out, std::ostream& err);
// `list`: blocked keys (the store's and the config's blocklist).
int ListVerb(const std::string& config_path, bool json, std::ostream& out, std::ostream& err);
// `whitelist add|remove KEY`, `whitelist list`.
int WhitelistVerb(const std::string& config_path, const std::string& action, const std::string& key,
                  const std::string& note, const std::string& who, std::ostream& out,
                  std::ostream& err);
// `status`: is the daemon following, its last counters, the table's totals, recent incidents.
int StatusVerb(const std::string& config_path, bool json, std::ostream& out, std::ostream& err);

// Who runs the CLI, for the audit trail: "cli:root", "cli:root (sudo by alice)".
std::string CliUser();

// Parses a --since value (see IncidentsVerb) relative to `now`.
bool ParseSince(const std::string& text, int64_t now, int64_t* out);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_VERBS_H_
