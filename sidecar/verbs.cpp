// verbs.cpp - see verbs.h.

#include "verbs.h"

#include <ctime>
#include <memory>
#include <utility>

#include "config.h"
#include "host_platform.h"
#include "segment.h"
#include "top.h"
#include "verbs_doctor.h"
#include "verbs_support.h"

namespace eg::sidecar {
namespace {

uint32_t NowUnix() {
  return static_cast<uint32_t>(std::time(nullptr));
}

// Loads the config; on errors writes them all to err and returns false.
bool Load(const std::string& path, ConfigResult* result, std::ostream& err) {
  *result = LoadConfig(path);
  for (const std::string& e : result->errors) err << e << "\n";
  return result->ok();
}

std::string Limits(const Limit& l) {
  return std::to_string(l.per_minute) + "/" + std::to_string(l.per_hour);
}

}  // namespace

int TopVerb(const std::string& config_path, size_t max_rows, bool json, std::ostream& out,
            std::ostream& err) {
  ConfigResult loaded;
  if (!Load(config_path, &loaded, err)) return kExitFailure;
  const std::string& name = loaded.config.shm_name;
  std::string error;
  std::unique_ptr<Segment> segment = OpenSegment(name, &error);
  if (!segment) {
    err << error << " (`eximguard run` creates it)\n";
    return kExitFailure;
  }
  const TopReport report = BuildTop(segment->table, name, NowUnix(), max_rows);
  if (json) {
    out << TopToJson(report).dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
        << "\n";
  } else {
    out << FormatTopText(report);
  }
  return kExitOk;
}

int ConfigCheckVerb(const std::string& config_path, std::ostream& out, std::ostream& err) {
  ConfigResult loaded;
  if (!Load(config_path, &loaded, err)) return kExitFailure;
  const Config& c = loaded.config;
  // A log that is not there is as bad as a wrong key: the daemon would wait for it forever.
  const HostInfo host = DetectHost();
  bool missing = false;
  for (const auto& [key, path] : {std::pair<std::string, std::string>{"exim_log", c.exim_log},
                                  {"dovecot_log", c.dovecot_log}}) {
    const std::string problem = MissingLogProblem(host, key, path, c.path);
    if (problem.empty()) continue;
    err << Loud("config " + c.path + ": " + key + ": " + problem, err) << "\n";
    missing = true;
  }
  if (missing) return kExitFailure;
  out << "config OK: " << c.path << "\n"
      << "  shared memory " << c.shm_name << ": " << c.capacity << " keys, " << c.policy_capacity
      << " policy entries, group " << c.exim_group << "\n"
      << "  limits per minute/hour (0 = unlimited): sender " << Limits(c.limits[0]) << ", cwd "
      << Limits(c.limits[1]) << ", uid " << Limits(c.limits[2]) << "\n"
      << "  " << c.overrides.size() << (c.overrides.size() == 1 ? " override, " : " overrides, ")
      << c.whitelist.size() << " whitelisted, " << c.blocklist.size() << " blocked; fail mode "
      << FailModeName(c.fail_mode) << "; dry run " << (c.dry_run ? "on" : "off") << "\n";
  if (!c.dovecot_log.empty()) {
    const DovecotLogJudgement j = JudgeDovecotLog(c.dovecot_log);
    out << "  " << j.what << "\n";
    if (j.syslog && !c.dovecot_policy.enabled) {
      out << "  recommended: Dovecot's auth policy server (\"dovecot_policy\": {\"enabled\": "
             "true, ...}), the trusted source of failed logins\n";
    }
  }
  return kExitOk;
}

int ConfigShowVerb(const std::string& config_path, std::ostream& out, std::ostream& err) {
  ConfigResult loaded;
  if (!Load(config_path, &loaded, err)) return kExitFailure;
  nlohmann::ordered_json json = ConfigToJson(loaded.config);
  MaskSecrets(json);
  out << json.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
  NoteStoredLimits(loaded.config, err);  // on err: out stays the file's JSON
  return kExitOk;
}

}  // namespace eg::sidecar
