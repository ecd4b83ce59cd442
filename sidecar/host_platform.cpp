// host_platform.cpp - see host_platform.h.

#include "host_platform.h"

#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <iostream>

#include "config.h"
#include "text_escape.h"

namespace eg::sidecar {
namespace {

bool IsDir(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool Exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

}  // namespace

HostInfo DetectHost(const std::string& root) {
  HostInfo h;
  h.root = root;
  if (IsDir(root + "/usr/local/cpanel")) {
    h.platform = Platform::kCpanel;
  } else if (Exists(root + "/etc/debian_version") && IsDir(root + "/var/log/exim4")) {
    h.platform = Platform::kDebian;
  }
  h.systemd = IsDir(root + "/run/systemd/system");
  h.unit_installed = Exists(root + "/etc/systemd/system/eximguard.service") ||
                     Exists(root + "/lib/systemd/system/eximguard.service") ||
                     Exists(root + "/usr/lib/systemd/system/eximguard.service");
  h.init_script = Exists(root + "/etc/init.d/eximguard");
  return h;
}

const char* PlatformName(Platform platform) {
  switch (platform) {
    case Platform::kCpanel:
      return "cPanel";
    case Platform::kDebian:
      return "Debian";
    case Platform::kOther:
      break;
  }
  return "this host";
}

std::string StartCommand(const HostInfo& host, const std::string& binary,
                         const std::string& config_path) {
  const bool default_config = config_path == kDefaultConfigPath;
  if (host.systemd && host.unit_installed && default_config) return "systemctl start eximguard";
  if (host.init_script && default_config) return "/etc/init.d/eximguard start";
  std::string line = "nohup " + ShellWord(binary) + " start";
  if (!default_config) line += " --config " + ShellWord(config_path);
  line += std::string(" --pidfile ") + kInitPidFile + " >>" + kInitLogFile + " 2>&1 </dev/null &";
  return line;
}

std::string EximReloadCommand(const HostInfo& host) {
  switch (host.platform) {
    case Platform::kCpanel:
      return "/scripts/restartsrv_exim";
    case Platform::kDebian:
      return host.systemd ? "update-exim4.conf && systemctl reload exim4"
                          : "update-exim4.conf && /etc/init.d/exim4 reload";
    case Platform::kOther:
      break;
  }
  return "restart Exim (e.g. systemctl restart exim)";
}

std::string LikelyEximLog(const HostInfo& host, const std::string& configured) {
  const char* debian = "/var/log/exim4/mainlog";
  const char* cpanel = "/var/log/exim_mainlog";
  const char* others = "/var/log/exim/main.log";  // Fedora/RHEL's Exim package
  const char* order[3] = {debian, cpanel, others};
  if (host.platform == Platform::kCpanel) {
    order[0] = cpanel;
    order[1] = debian;
  }
  for (const char* candidate : order) {
    if (candidate != configured && Exists(host.root + candidate)) return candidate;
  }
  return "";
}

std::string MissingLogProblem(const HostInfo& host, const std::string& key, const std::string& path,
                              const std::string& config_path) {
  if (path.empty() || Exists(path)) return "";
  std::string line = path + " DOES NOT EXIST: eximguard sees nothing from it";
  const std::string likely = key == "exim_log" ? LikelyEximLog(host, path) : "";
  if (!likely.empty()) {
    line += "; Exim on this host writes " + likely + ": set \"" + key + "\": \"" + likely +
            "\" in " + config_path;
  } else if (key == "exim_log") {
    line += "; `exim -bP log_file_path` says where Exim writes (%s is \"main\"): set \"" + key +
            "\" to it in " + config_path;
  } else {
    line += "; correct \"" + key + "\" in " + config_path + " (\"\" follows none)";
  }
  return line;
}

std::string Loud(const std::string& text, const std::ostream& out) {
  const int fd = &out == &std::cout ? STDOUT_FILENO : &out == &std::cerr ? STDERR_FILENO : -1;
  if (fd < 0 || isatty(fd) != 1) return text;
  return "\033[1m" + text + "\033[0m";
}

std::string SelfBinary() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return "/usr/sbin/eximguard";
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace eg::sidecar
