// host_platform.h - what kind of host eximguard runs on, and the commands that follow from it:
// how the daemon is started here, how Exim is reloaded, which mainlog Exim most likely writes.
//
// SUMMARY
//   A cPanel server (/usr/local/cpanel), a Debian/Ubuntu Exim (/etc/debian_version and
//   /var/log/exim4) or anything else; booted with systemd or not (sd_booted(3): the directory
//   /run/systemd/system exists); eximguard's systemd unit or SysV init script installed or not.
//   packaging/install.sh makes the same decisions in shell; the two must agree (the install
//   test checks the shell side, host_platform_test the C++ side).
//
// CONTRACT
//   - Callers: `status`, `config check`, `doctor` (the fix they print must be the command that
//     works on this host). DetectHost() only stat()s a few paths; nothing here runs a program.
//   - `root` prefixes the host's own paths looked at (the markers above, the usual mainlogs;
//     "" in production), so tests can fake a host in a temporary directory. Paths from the
//     config are real paths, never prefixed; the commands returned name the real paths.
//   - No global state; safe from any thread.

#ifndef EXIMGUARD_SIDECAR_HOST_PLATFORM_H_
#define EXIMGUARD_SIDECAR_HOST_PLATFORM_H_

#include <cstdint>
#include <ostream>
#include <string>

namespace eg::sidecar {

enum class Platform : uint8_t { kCpanel, kDebian, kOther };

// Where the init script writes the daemon's pid and stderr (packaging/eximguard.init).
inline constexpr const char* kInitPidFile = "/run/eximguard.pid";
inline constexpr const char* kInitLogFile = "/var/log/eximguard.log";

struct HostInfo {
  Platform platform = Platform::kOther;
  bool systemd = false;         // <root>/run/systemd/system is a directory
  bool unit_installed = false;  // eximguard.service in <root>/etc/systemd/system or /lib/...
  bool init_script = false;     // <root>/etc/init.d/eximguard
  std::string root;             // the prefix DetectHost was given
};

HostInfo DetectHost(const std::string& root = "");

// "cPanel", "Debian", "this host".
const char* PlatformName(Platform platform);

// The command that starts the daemon on this host: `systemctl start eximguard` where systemd
// runs and the unit is installed, else `/etc/init.d/eximguard start` where the init script is,
// else a `nohup ... &` line (foreground daemon, pid file, stderr to kInitLogFile). `binary` is
// the eximguard to run; `config_path` is added as --config unless it is the default.
std::string StartCommand(const HostInfo& host, const std::string& binary,
                         const std::string& config_path);

// How to make Exim take a changed configuration: `/scripts/restartsrv_exim` (cPanel),
// `update-exim4.conf && systemctl reload exim4` or `... && /etc/init.d/exim4 reload` (Debian),
// else a generic line.
std::string EximReloadCommand(const HostInfo& host);

// The mainlog Exim usually writes on this kind of host when it exists (under root) and is not
// `configured`: /var/log/exim4/mainlog, /var/log/exim_mainlog, /var/log/exim/main.log.
// "" when none does.
std::string LikelyEximLog(const HostInfo& host, const std::string& configured);

// "" when `path` exists; else one line, to follow "<key> " or "<key>: ", saying that the file
// `key` (exim_log, dovecot_log) names DOES NOT EXIST, that eximguard then sees nothing from it,
// and what to set instead (LikelyEximLog, or how to find out).
std::string MissingLogProblem(const HostInfo& host, const std::string& key, const std::string& path,
                              const std::string& config_path);

// `text` in bold (ANSI) when `out` is std::cout or std::cerr on a terminal, else as it is: for the
// lines a reader must not miss (a missing log, a broken config), always printed first.
std::string Loud(const std::string& text, const std::ostream& out);

// The running program's own path (/proc/self/exe), or /usr/sbin/eximguard if unreadable.
std::string SelfBinary();

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_HOST_PLATFORM_H_
