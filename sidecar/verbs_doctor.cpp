// verbs_doctor.cpp - see verbs_doctor.h.

#include "verbs_doctor.h"

#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "config.h"
#include "daemon.h"
#include "exim_query.h"
#include "host_platform.h"
#include "segment.h"
#include "state_store.h"
#include "table.h"
#include "text_escape.h"
#include "verbs.h"

namespace eg::sidecar {
namespace {

// Where packaging/install.sh puts the snippets of exim-config/.
constexpr const char* kSnippets = "/usr/share/eximguard/exim-config";

std::string_view Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string Joined(const std::vector<std::string>& items) {
  std::string s;
  for (const std::string& i : items) s += (s.empty() ? "" : " ") + i;
  return s;
}

// "3 min", "5 h", "2 days".
std::string Age(int64_t seconds) {
  if (seconds < 120) return std::to_string(seconds) + " s";
  if (seconds < 7200) return std::to_string(seconds / 60) + " min";
  if (seconds < 2 * 86400) return std::to_string(seconds / 3600) + " h";
  return std::to_string(seconds / 86400) + " days";
}

std::string Octal(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

bool DebianSplitConfig(const HostInfo& host) {
  std::ifstream in(host.root + "/etc/exim4/update-exim4.conf.conf");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("dc_use_split_config=")) return line.find("true") != std::string::npos;
  }
  return false;
}

std::string RestartCommand(const HostInfo& host, const std::string& config_path, int pid) {
  if (host.systemd && host.unit_installed) return "systemctl restart eximguard";
  if (host.init_script) return "/etc/init.d/eximguard restart";
  return "kill " + std::to_string(pid) + "; then " + StartCommand(host, SelfBinary(), config_path);
}

// The statements of one ACL section, comments dropped and continuation lines joined, by name.
struct AclSection {
  std::vector<std::pair<std::string, std::string>> acls;  // name, body
  const std::string* Find(const std::string& name) const {
    for (const auto& [n, body] : acls) {
      if (n == name) return &body;
    }
    return nullptr;
  }
};

AclSection ParseAcls(std::string_view config) {
  AclSection section;
  std::istringstream in{std::string(config)};
  std::string raw;
  std::string logical;
  bool inside = false;
  std::string* body = nullptr;
  static const std::regex kName(R"(^([A-Za-z0-9_]+):$)");
  while (std::getline(in, raw)) {
    std::string_view line = Trim(raw);
    if (!logical.empty()) {
      logical += std::string(line);
    } else {
      if (line.empty() || line[0] == '#') continue;
      logical = std::string(line);
    }
    if (!logical.empty() && logical.back() == '\\') {  // continued on the next line
      logical.pop_back();
      continue;
    }
    const std::string l = std::move(logical);
    logical.clear();
    if (l.starts_with("begin ")) {
      inside = Trim(std::string_view(l).substr(6)) == "acl";
      body = nullptr;
      continue;
    }
    if (!inside) continue;
    std::smatch m;
    if (std::regex_match(l, m, kName)) {
      section.acls.emplace_back(m[1], "");
      body = &section.acls.back().second;
      continue;
    }
    if (body != nullptr) *body += l + "\n";
  }
  return section;
}

bool FindGuard(const AclSection& acls, const std::string& name, const std::string& function,
               int depth, std::vector<std::string>* seen, std::string* so, std::string* segment) {
  if (depth > 8 || std::find(seen->begin(), seen->end(), name) != seen->end()) return false;
  seen->push_back(name);
  const std::string* body = acls.Find(name);
  if (body == nullptr) return false;
  const std::regex call(R"(\$\{dlfunc\{([^}]*)\}\{)" + function + R"(\}\{([^}]*)\})");
  std::smatch m;
  if (std::regex_search(*body, m, call)) {
    *so = m[1];
    *segment = m[2];
    return true;
  }
  static const std::regex kNested(R"((^|[\s!])acl\s*=\s*([A-Za-z0-9_]+))");
  for (auto it = std::sregex_iterator(body->begin(), body->end(), kNested);
       it != std::sregex_iterator(); ++it) {
    if (FindGuard(acls, (*it)[2], function, depth + 1, seen, so, segment)) return true;
  }
  return false;
}

// Collects the checks; Ok(), Warn() and Problem() each record one line of the report.
// A syslog prefix ahead of Dovecot's own text: " dovecot[123]: " or " dovecot: ".
bool HasSyslogPrefix(std::string_view line) {
  for (size_t p = line.find(" dovecot"); p != std::string_view::npos;
       p = line.find(" dovecot", p + 1)) {
    size_t i = p + 8;
    if (i < line.size() && line[i] == '[') {
      const size_t close = line.find(']', i);
      if (close == std::string_view::npos || close == i + 1) continue;
      const std::string_view digits = line.substr(i + 1, close - i - 1);
      if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        continue;
      }
      i = close + 1;
    }
    if (line.substr(i, 2) == ": ") return true;
  }
  return false;
}

}  // namespace

DovecotLogJudgement JudgeDovecotLog(const std::string& path) {
  DovecotLogJudgement j;
  const std::string shown = Printable(path);
  std::string tail;
  {
    std::ifstream in(path, std::ios::binary);
    if (in) {
      in.seekg(0, std::ios::end);
      const std::streamoff size = in.tellg();
      const std::streamoff from = size > 65536 ? size - 65536 : 0;
      in.seekg(from);
      tail.assign(static_cast<size_t>(size - from), '\0');
      in.read(tail.data(), static_cast<std::streamsize>(tail.size()));
      tail.resize(static_cast<size_t>(std::max<std::streamsize>(0, in.gcount())));
    }
  }
  size_t syslog_lines = 0;
  size_t dovecot_lines = 0;
  for (size_t start = 0; start < tail.size();) {
    const size_t end = std::min(tail.find('\n', start), tail.size());
    const std::string_view line = std::string_view(tail).substr(start, end - start);
    if (HasSyslogPrefix(line)) ++syslog_lines;
    if (line.find("-login: ") != std::string_view::npos ||
        line.find("auth: ") != std::string_view::npos ||
        line.find("imap(") != std::string_view::npos ||
        line.find("pop3(") != std::string_view::npos) {
      ++dovecot_lines;
    }
    start = end + 1;
  }
  const std::string base = path.substr(path.rfind('/') + 1);
  const bool syslog_name = base.starts_with("mail.") || base.starts_with("maillog") ||
                           base.starts_with("syslog") || base.starts_with("messages");
  const char* kForgeable =
      ": any local user can write such lines (logger -t dovecot), so its incidents are notices "
      "only; Dovecot's auth policy server (dovecot_policy) is the source an attacker cannot forge";
  if (syslog_lines > 0) {
    j.syslog = true;
    j.what = "dovecot_log " + shown + " is a syslog file (lines \"host dovecot[pid]: ...\")" +
             kForgeable;
  } else if (dovecot_lines > 0) {
    j.what = "dovecot_log " + shown +
             " is Dovecot's own log_path file (no syslog prefix): only Dovecot writes it";
  } else if (syslog_name) {
    j.syslog = true;
    j.what = "dovecot_log " + shown + " is named like a syslog file" + kForgeable;
  } else {
    j.what = "dovecot_log " + shown +
             " holds no Dovecot line yet: if it is Dovecot's own log_path file only Dovecot "
             "writes it; a syslog file would be forgeable by any local user";
  }
  return j;
}

namespace {

class Doctor {
 public:
  Doctor(std::string config_path, DoctorOptions options)
      : config_path_(std::move(config_path)), opt_(std::move(options)) {}

  DoctorReport Run() {
    host_ = DetectHost(opt_.root);
    report_.header = "eximguard doctor: " + config_path_ + " on " + PlatformName(host_.platform) +
                     (host_.systemd ? " (systemd)" : " (no systemd)");
    CheckConfig();
    CheckEximLog();
    CheckStateDir();
    if (CheckExim()) {
      CheckLogFilePath();
      CheckLogSelector();
      CheckAcls();
      CheckEvents();
      CheckEximGroup();
    }
    CheckTable();
    CheckDovecotLog();
    CheckDaemon();
    return std::move(report_);
  }

 private:
  void Ok(const char* name, std::string what) {
    report_.checks.push_back({CheckLevel::kOk, name, std::move(what), ""});
  }
  void Warn(const char* name, std::string what, std::string fix) {
    report_.checks.push_back({CheckLevel::kWarning, name, std::move(what), std::move(fix)});
  }
  void Problem(const char* name, std::string what, std::string fix) {
    report_.checks.push_back({CheckLevel::kProblem, name, std::move(what), std::move(fix)});
  }
  int64_t Now() const {
    return opt_.now != 0 ? opt_.now : static_cast<int64_t>(std::time(nullptr));
  }
  std::string InConfig(const std::string& setting) const {
    return "set " + setting + " in " + config_path_;
  }
  // What publishes the config into the table again: a restart of the running daemon (a
  // one-pass `run` is refused while it follows the logs), else `eximguard run`.
  std::string Republish() const {
    const int pid = FollowerPid(config_.state_dir);
    if (pid > 0) return RestartCommand(host_, config_path_, pid);
    return "eximguard run" +
           (config_path_ == kDefaultConfigPath ? std::string() : " --config " + config_path_);
  }

  void CheckConfig() {
    ConfigResult r = LoadConfig(config_path_);
    config_ = std::move(r.config);  // partly filled when broken: the rest goes on with it
    if (r.ok()) {
      Ok("config", "the config is valid");
      return;
    }
    for (const std::string& e : r.errors) {
      Problem("config", e, "edit " + config_path_ + " (then eximguard config check)");
    }
  }

  void CheckEximLog() {
    const std::string missing =
        MissingLogProblem(host_, "exim_log", config_.exim_log, config_path_);
    if (!missing.empty()) {
      const std::string likely = LikelyEximLog(host_, config_.exim_log);
      Problem("exim_log",
              "exim_log " + config_.exim_log + " DOES NOT EXIST: eximguard sees no mail" +
                  (likely.empty() ? "" : "; Exim on this host writes " + likely),
              likely.empty() ? missing.substr(missing.find("; ") + 2)
                             : InConfig("\"exim_log\": \"" + likely + "\""));
      return;
    }
    struct stat st {};
    stat(config_.exim_log.c_str(), &st);
    const int64_t age = Now() - st.st_mtime;
    if (age > int64_t{opt_.log_minutes} * 60) {
      Warn("exim_log",
           "exim_log " + config_.exim_log + " was last written " + Age(age) +
               " ago: no mail since, or Exim writes another file",
           "compare with `exim -bP log_file_path` (%s is \"main\"); send a test mail and look "
           "again");
      return;
    }
    Ok("exim_log", "exim_log " + config_.exim_log + " exists, last written " + Age(age) + " ago");
  }

  void CheckStateDir() {
    const std::string& dir = config_.state_dir;
    struct stat st {};
    if (stat(dir.c_str(), &st) != 0) {
      Warn("state_dir", "state_dir " + dir + " does not exist yet",
           "the daemon creates it: " + StartCommand(host_, SelfBinary(), config_path_));
      return;
    }
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
      Problem("state_dir", "state_dir " + dir + " is owned by uid " + std::to_string(st.st_uid),
              "chown root:root " + dir);
      return;
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
      Problem("state_dir",
              "state_dir " + dir + " has mode " + Octal(st.st_mode) +
                  ": others can change eximguard's state (blocks, whitelist)",
              "chmod 0700 " + dir);
      return;
    }
    // Its parents too (the store refuses to open otherwise: state_store.h).
    const std::string unsafe = UnsafeStateDir(dir);
    if (!unsafe.empty()) {
      Problem("state_dir", "state_dir " + dir + ": " + unsafe,
              "use a state_dir whose every parent is root's and writable only by root, e.g. "
              "/var/lib/eximguard");
      return;
    }
    Ok("state_dir", "state_dir " + dir + " is root's, mode " + Octal(st.st_mode));
  }

  void CheckDovecotLog() {
    if (config_.dovecot_log.empty()) return;
    struct stat st {};
    if (stat(config_.dovecot_log.c_str(), &st) != 0) return;  // config check names a missing one
    const DovecotLogJudgement j = JudgeDovecotLog(config_.dovecot_log);
    if (!j.syslog) {
      Ok("dovecot_log", j.what);
    } else if (config_.dovecot_policy.enabled) {
      Ok("dovecot_log", j.what + "; dovecot_policy is enabled");
    } else {
      Warn("dovecot_log", j.what,
           "enable Dovecot's auth policy server: \"dovecot_policy\": {\"enabled\": true, "
           "\"api_secret\": ...} (README, Dovecot)");
    }
  }

  // `-bV`: runs, and has ${dlfunc}. False when Exim cannot be asked at all.
  bool CheckExim() {
    const std::vector<std::string>& exim = config_.actions.exim_command;
    const EximAnswer v = RunExim(exim, {"-bV"});
    const std::string binary = exim.empty() ? "" : exim[0];
    if (!v.ok) {
      Problem("exim", "cannot ask Exim: " + v.error,
              InConfig("\"actions\": {\"exim_command\": [\"/usr/sbin/exim4\"]}") +
                  " (Exim's path here; `-C FILE` may follow it)");
      return false;
    }
    // "Exim version 4.96 #2 built ..." (log lines may come first: Exim logs to stderr under -C).
    const size_t at = v.output.find("Exim version");
    const std::string_view from = std::string_view(v.output).substr(at == v.output.npos ? 0 : at);
    const std::string version(Trim(from.substr(0, from.find('\n'))));
    if (v.output.find("Expand_dlfunc") == std::string::npos) {
      std::string fix = "an Exim built with EXPAND_DLFUNC=yes";
      if (host_.platform == Platform::kDebian) {
        fix =
            "apt-get install exim4-daemon-heavy (exim4-daemon-light has no ${dlfunc}; Exim's "
            "configuration is kept)";
      }
      Problem("exim", binary + " (" + version + ") has no ${dlfunc} (no Expand_dlfunc in -bV)",
              fix);
      return true;
    }
    Ok("exim", binary + ": " + version + ", with ${dlfunc}");
    return true;
  }

  std::string Option(const std::string& name, bool* ok) {
    const EximAnswer a = RunExim(config_.actions.exim_command, {"-bP", name});
    *ok = a.ok;
    if (!a.ok) {
      Problem("exim", "exim -bP " + name + ": " + a.error, "");
      return "";
    }
    return EximOptionValue(a.output, name);
  }

  void CheckLogFilePath() {
    bool ok = false;
    const std::string value = Option("log_file_path", &ok);
    if (!ok) return;
    std::string path;
    for (std::string_view rest = value; !rest.empty();) {  // "path : syslog"
      const size_t colon = rest.find(':');
      const std::string_view item = Trim(rest.substr(0, colon));
      rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
      if (!item.empty() && item[0] == '/') {
        path = std::string(item);
        break;
      }
    }
    if (path.empty()) {
      if (value.find("syslog") != std::string::npos) {
        Warn("log file", "Exim logs to syslog only (log_file_path = " + value + ")",
             "exim_log must then be the syslog file with Exim's lines (e.g. /var/log/mail.log)");
      } else {
        Ok("log file",
           "Exim's log_file_path is its compiled-in default; exim_log is " + config_.exim_log);
      }
      return;
    }
    if (const size_t s = path.find("%s"); s != std::string::npos) path.replace(s, 2, "main");
    if (path.find('%') != std::string::npos) {
      Warn("log file", "Exim writes datestamped logs (" + value + ")",
           "eximguard follows one file: remove %D/%M from log_file_path, or point exim_log at "
           "today's file");
      return;
    }
    struct stat a {
    }, b{};
    const bool same = path == config_.exim_log ||
                      (stat(path.c_str(), &a) == 0 && stat(config_.exim_log.c_str(), &b) == 0 &&
                       a.st_dev == b.st_dev && a.st_ino == b.st_ino);
    if (!same) {
      Problem("log file",
              "Exim writes its mainlog to " + path + " (exim -bP log_file_path), exim_log is " +
                  config_.exim_log,
              InConfig("\"exim_log\": \"" + path + "\""));
      return;
    }
    Ok("log file", "Exim writes " + path + ", the file eximguard follows");
  }

  void CheckLogSelector() {
    bool ok = false;
    const std::string value = Option("log_selector", &ok);
    if (!ok) return;
    const std::vector<std::string> missing = MissingLogSelectorItems(value);
    if (missing.empty()) {
      Ok("log_selector", std::string("Exim's log_selector has ") + kNeededLogSelectorText);
      return;
    }
    const std::string items = Joined(missing);
    std::string fix;
    if (host_.platform == Platform::kDebian) {
      fix = DebianSplitConfig(host_)
                ? std::string("cp ") + kSnippets +
                      "/debian/main/89_eximguard_log_selector /etc/exim4/conf.d/main/ && " +
                      EximReloadCommand(host_)
                : std::string("paste the .ifdef block of ") + kSnippets +
                      "/debian/main/89_eximguard_log_selector into "
                      "/etc/exim4/exim4.conf.template just above the line `.ifdef "
                      "MAIN_LOG_SELECTOR` before `log_selector = MAIN_LOG_SELECTOR`, then " +
                      EximReloadCommand(host_);
    } else if (host_.platform == Platform::kCpanel) {
      fix = "WHM > Service Configuration > Exim Configuration Manager > Advanced Editor: add " +
            items + " to the value of log_selector (first section), keeping what is there; Save";
    } else {
      fix = "add " + items +
            " to log_selector in Exim's configuration (exim -bP configure_file), "
            "then " +
            EximReloadCommand(host_);
    }
    Problem("log_selector",
            "Exim's log_selector lacks " + items +
                " (it is: " + (value.empty() ? std::string("Exim's defaults") : value) +
                "): eximguard misses script directories, pids, subjects or recipients",
            fix);
  }

  void CheckAcls() {
    const EximAnswer dump = RunExim(config_.actions.exim_command, {"-bP", "config"});
    std::string text = dump.ok ? dump.output : "";
    if (text.find("begin acl") == std::string::npos) {  // older Exim: read the file itself
      bool ok = false;
      const std::string file = Option("configure_file", &ok);
      std::ifstream in(file);
      std::stringstream ss;
      ss << in.rdbuf();
      text = ss.str();
      if (text.empty()) {
        Problem("acls", "cannot read Exim's configuration (" + file + ")", "run doctor as root");
        return;
      }
    }
    const AclSection acls = ParseAcls(text);
    CheckOneAcl(acls, "acl_smtp_rcpt", "eximguard_rcpt");
    CheckOneAcl(acls, "acl_not_smtp", "eximguard_local");
  }

  // Exim's delivery events through the guard (eximguard_event): optional, so a warning. Without
  // them bounce_storm is a notice from the log only.
  void CheckEvents() {
    bool ok = false;
    const std::string main_action = Option("event_action", &ok);
    if (!ok) return;
    const EximAnswer list = RunExim(config_.actions.exim_command, {"-bP", "transport_list"});
    std::vector<std::string> without;  // smtp transports whose event_action does not call it
    std::istringstream names(list.ok ? list.output : "");
    for (std::string name; std::getline(names, name);) {
      if (name.empty() || name.find_first_of(" =") != std::string::npos) continue;
      const EximAnswer t = RunExim(config_.actions.exim_command, {"-bP", "transport", name});
      if (!t.ok || EximOptionValue(t.output, "driver") != "smtp") continue;
      if (EximOptionValue(t.output, "event_action").find("eximguard_event") == std::string::npos)
        without.push_back(name);
    }
    const bool main_ok = main_action.find("eximguard_event") != std::string::npos;
    if (main_ok && without.empty()) {
      Ok("events", "Exim reports each recipient's outcome to the guard (event_action)");
      return;
    }
    std::string fix = "exim-config/exim.conf.example: the event_action lines";
    if (host_.platform == Platform::kDebian)
      fix = std::string(kSnippets) + "/debian/README.md, Delivery events";
    if (host_.platform == Platform::kCpanel)
      fix = std::string(kSnippets) + "/cpanel/README.md, Delivery events";
    Warn("events",
         std::string(main_ok ? "" : "the main event_action does not call eximguard_event") +
             (main_ok || without.empty() ? "" : "; ") +
             (without.empty() ? "" : "smtp transports without it: " + Joined(without)) +
             ": bounce_storm is then only a notice from the log",
         fix);
  }

  void CheckOneAcl(const AclSection& acls, const std::string& option, const std::string& fn) {
    bool ok = false;
    const std::string acl = Option(option, &ok);
    if (!ok) return;
    const bool rcpt = fn == "eximguard_rcpt";
    std::string fix;
    if (host_.platform == Platform::kDebian) {
      const std::string copy =
          std::string("cp ") + kSnippets +
          "/debian/main/00_eximguard_macros /etc/exim4/conf.d/main/ && cp " + kSnippets +
          "/debian/acl/25_eximguard_acl /etc/exim4/conf.d/acl/ && " + EximReloadCommand(host_);
      fix = DebianSplitConfig(host_)
                ? copy
                : "set dc_use_split_config='true' in /etc/exim4/update-exim4.conf.conf, then " +
                      copy + " (to keep the single-file config instead: " + kSnippets +
                      "/debian/README.md, Notes)";
    } else if (host_.platform == Platform::kCpanel) {
      fix = std::string(
                "WHM > Service Configuration > Exim Configuration Manager > Advanced "
                "Editor: switch on ") +
            (rcpt ? "custom_begin_recipient" : "custom_begin_not_smtp") + " and paste " +
            kSnippets + "/cpanel/" + (rcpt ? "custom_begin_recipient" : "custom_begin_not_smtp") +
            " into it; Save";
    } else {
      fix = std::string("put the ") + (rcpt ? "RCPT" : "not-SMTP") + " block of " + kSnippets +
            "/exim.conf.example at the top of " +
            (acl.empty() ? std::string("a new ACL named in ") + option : "ACL " + acl) + ", then " +
            EximReloadCommand(host_);
    }
    const std::string what = rcpt ? "SMTP recipients" : "local submissions (PHP mail(), cron)";
    if (acl.empty()) {
      Problem("acls", option + " is not set: " + what + " are not counted", fix);
      return;
    }
    std::string so, segment;
    std::vector<std::string> seen;
    if (!FindGuard(acls, acl, fn, 0, &seen, &so, &segment)) {
      Problem("acls",
              option + " = " + acl + " does not call " + fn + " (${dlfunc}): " + what +
                  " are not counted",
              fix);
      return;
    }
    if (!so.empty() && so[0] == '/' && access(so.c_str(), R_OK) != 0) {
      Problem("acls",
              option + " calls " + so + ", which cannot be read (" + std::strerror(errno) +
                  "): the guard is skipped and mail is not counted",
              "packaging/install.sh installs it; or correct the path in Exim's ACL");
      return;
    }
    if (!segment.empty() && segment[0] == '/' && segment != config_.shm_name) {
      Problem("acls",
              option + " asks the guard about table " + segment + ", eximguard publishes " +
                  config_.shm_name,
              InConfig("\"shm_name\": \"" + segment + "\"") + ", or change the ACL's segment");
      return;
    }
    Ok("acls", option + " = " + acl + " calls " + fn + " (" + so + ", table " + segment + ")");
  }

  void CheckEximGroup() {
    bool ok = false;
    const std::string group = Option("exim_group", &ok);
    if (!ok || group.empty()) return;
    if (group != config_.exim_group) {
      Problem("group",
              "Exim runs as group " + group + " but the table is given to group " +
                  config_.exim_group + ": the guard cannot open it and lets all mail through",
              InConfig("\"exim_group\": \"" + group + "\"") + ", then " + Republish());
      return;
    }
    Ok("group", "Exim runs as group " + group + ", the table's group");
  }

  void CheckTable() {
    const std::string& name = config_.shm_name;
    const std::string path = "/dev/shm" + name;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
      Problem("table",
              "the shared table " + name + " does not exist: the guard lets all mail through",
              "start the daemon: " + StartCommand(host_, SelfBinary(), config_path_));
      return;
    }
    const struct group* g = getgrnam(config_.exim_group.c_str());
    if (st.st_uid != 0 && st.st_uid != geteuid()) {
      Problem("table", path + " is owned by uid " + std::to_string(st.st_uid) + ", not root",
              "rm " + path + ", then " + Republish());
      return;
    }
    if (g == nullptr || st.st_gid != g->gr_gid || (st.st_mode & 07777) != 0660) {
      const struct group* has = getgrgid(st.st_gid);
      Problem("table",
              path + " has group " + (has ? has->gr_name : std::to_string(st.st_gid)) +
                  " and mode " + Octal(st.st_mode) + ", not " + config_.exim_group + " and 0660",
              Republish() + " (publishing sets both)");
      return;
    }
    std::string error;
    std::unique_ptr<Segment> seg = OpenSegment(name, &error);
    if (!seg) {
      Problem("table", error, Republish() + " (it repairs or re-creates the table)");
      return;
    }
    const StatTotals t = Totals(seg->table);
    const uint64_t verdicts = t.verdicts[0] + t.verdicts[1] + t.verdicts[2] + t.verdicts[3];
    const auto now = static_cast<uint32_t>(Now());
    const size_t keys = Snapshot(seg->table, now, 3600).size();
    if (verdicts == 0) {
      Warn("table",
           "the table " + name +
               " has answered no check yet: Exim has not asked the guard "
               "since the table was made",
           "send one test message (see README.md, \"Check it\"), then run doctor again");
      return;
    }
    Ok("table", "the table " + name + " answered " + std::to_string(verdicts) + " checks (" +
                    std::to_string(t.verdicts[0]) + " ok, " + std::to_string(t.verdicts[1]) +
                    " deferred, " + std::to_string(t.verdicts[2]) + " held, " +
                    std::to_string(t.verdicts[3]) + " denied); " + std::to_string(keys) +
                    " keys counted in the last hour");
  }

  void CheckDaemon() {
    const int pid = FollowerPid(config_.state_dir);
    const std::string start = StartCommand(host_, SelfBinary(), config_path_);
    if (pid == 0) {
      Problem("daemon", "the daemon is NOT running: nothing follows the log, detects or blocks",
              start);
      return;
    }
    if (pid < 0) {
      Warn("daemon", "the follow lock is held but names no pid yet", "run doctor again");
      return;
    }
    char exe[PATH_MAX] = {};
    const std::string link = "/proc/" + std::to_string(pid) + "/exe";
    const ssize_t n = readlink(link.c_str(), exe, sizeof exe - 1);
    const std::string binary = n > 0 ? std::string(exe, static_cast<size_t>(n)) : "";
    if (binary.empty()) {
      Problem("daemon", "pid " + std::to_string(pid) + " holds the follow lock but is gone", start);
      return;
    }
    if (binary.ends_with(" (deleted)")) {
      Problem("daemon",
              "the daemon (pid " + std::to_string(pid) + ") runs a deleted binary: " + binary,
              RestartCommand(host_, config_path_, pid));
      return;
    }
    const std::string base = binary.substr(binary.rfind('/') + 1);
    if (!base.starts_with("eximguard")) {
      Problem("daemon", "pid " + std::to_string(pid) + " holds the follow lock but runs " + binary,
              "kill " + std::to_string(pid) + "; then " + start);
      return;
    }
    std::ifstream in(config_.state_dir + "/" + kStatusFileName);
    std::stringstream ss;
    ss << in.rdbuf();
    const nlohmann::json status = nlohmann::json::parse(ss.str(), nullptr, false);
    const int64_t updated = status.is_object() ? status.value("updated", int64_t{0}) : 0;
    const int64_t age = Now() - updated;
    const std::string mode = status.is_object() ? status.value("mode", "") : "";
    const int status_pid = status.is_object() ? status.value("pid", 0) : 0;
    if (status_pid != pid) {  // the file is an earlier process's: this one is still warming up
      Warn("daemon",
           "the daemon (pid " + std::to_string(pid) + ") has not written its " + kStatusFileName +
               " yet: it is starting",
           "run doctor again in a few seconds; if this stays, " +
               RestartCommand(host_, config_path_, pid));
      return;
    }
    if (mode == "run") {
      Warn("daemon", "a one-pass `eximguard run` (pid " + std::to_string(pid) + ") is running",
           "run doctor again when it is done");
      return;
    }
    if (updated == 0 || age > kStatusStaleSeconds) {
      Problem("daemon",
              "the daemon (pid " + std::to_string(pid) + ") has not written " + kStatusFileName +
                  (updated == 0 ? "" : " for " + Age(age)) + ": it is stuck",
              RestartCommand(host_, config_path_, pid));
      return;
    }
    Ok("daemon", "the daemon follows the logs (pid " + std::to_string(pid) + ", " + binary +
                     "; status " + Age(age) + " old)");
  }

  std::string config_path_;
  DoctorOptions opt_;
  HostInfo host_;
  Config config_;
  DoctorReport report_;
};

}  // namespace

int DoctorReport::Count(CheckLevel level) const {
  return static_cast<int>(std::count_if(checks.begin(), checks.end(),
                                        [&](const DoctorCheck& c) { return c.level == level; }));
}

std::vector<std::string> MissingLogSelectorItems(std::string_view selector) {
  constexpr size_t kN = std::size(kNeededLogSelector);
  bool on[kN] = {};
  std::istringstream in{std::string(selector)};
  for (std::string word; in >> word;) {
    if (word.size() < 2 || (word[0] != '+' && word[0] != '-')) continue;
    const bool add = word[0] == '+';
    const std::string item = word.substr(1);
    for (size_t i = 0; i < kN; ++i) {
      if (item == "all" || item == kNeededLogSelector[i] + 1) on[i] = add;
    }
  }
  std::vector<std::string> missing;
  for (size_t i = 0; i < kN; ++i) {
    if (!on[i]) missing.emplace_back(kNeededLogSelector[i]);
  }
  return missing;
}

bool AclCallsGuard(std::string_view config, const std::string& acl, const std::string& function,
                   std::string* so, std::string* segment) {
  const AclSection acls = ParseAcls(config);
  std::vector<std::string> seen;
  return FindGuard(acls, acl, function, 0, &seen, so, segment);
}

DoctorReport RunDoctor(const std::string& config_path, const DoctorOptions& options) {
  return Doctor(config_path, options).Run();
}

std::string FormatDoctorReport(const DoctorReport& report) {
  // Exim's answers and the config's paths are outside text: a line that holds a control
  // character or invalid UTF-8 is shown Printable() whole (a fix with one names nothing anyway).
  const auto shown = [](const std::string& s) { return ShowsAsIs(s) ? s : Printable(s); };
  std::string text = shown(report.header) + "\n";
  for (const DoctorCheck& c : report.checks) {
    const char* tag = c.level == CheckLevel::kOk        ? "  ok       "
                      : c.level == CheckLevel::kWarning ? "  warning  "
                                                        : "  PROBLEM  ";
    text += tag + shown(c.what) + "\n";
    if (!c.fix.empty()) text += "           fix: " + shown(c.fix) + "\n";
  }
  const int problems = report.Count(CheckLevel::kProblem);
  const int warnings = report.Count(CheckLevel::kWarning);
  if (problems == 0) {
    text += "all " + std::to_string(report.checks.size()) + " checks passed" +
            (warnings > 0 ? " (" + std::to_string(warnings) + " warnings)" : std::string()) + "\n";
  } else {
    text += std::to_string(problems) + (problems == 1 ? " PROBLEM" : " PROBLEMS") + ", " +
            std::to_string(warnings) + (warnings == 1 ? " warning" : " warnings") + "\n";
  }
  return text;
}

int DoctorVerb(const std::string& config_path, const DoctorOptions& options, std::ostream& out,
               std::ostream& err) {
  if (options.log_minutes <= 0) {
    err << "doctor: --log-minutes: expected a positive number of minutes\n";
    return kExitUsage;
  }
  const DoctorReport report = RunDoctor(config_path, options);
  out << FormatDoctorReport(report);
  return report.Count(CheckLevel::kProblem) == 0 ? kExitOk : kExitFailure;
}

}  // namespace eg::sidecar
