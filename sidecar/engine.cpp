// engine.cpp - see engine.h.

#include "engine.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "time_text.h"
#include "users.h"

namespace eg::sidecar {
namespace {

using Json = nlohmann::ordered_json;

// A config key as the detectors see it: class uid keys by user name (see engine.h).
PolicyKey ForDetectors(PolicyKey key) {
  if (key.klass != KeyClass::kUid) return key;
  std::string name = UserOfUid(static_cast<uid_t>(std::strtoul(key.text.c_str(), nullptr, 10)));
  if (!name.empty()) key.text = std::move(name);
  return key;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

bool ReadDomainsFile(const std::string& path, std::vector<std::string>* out, std::string* error) {
  out->clear();
  if (path.empty()) return true;
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return true;
    *error = "local_domains_file " + path + ": " + std::strerror(errno);
    return false;
  }
  std::string line;
  while (std::getline(in, line)) {
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.erase(hash);
    const size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos) continue;
    const size_t e = line.find_last_not_of(" \t\r");
    out->push_back(Lower(line.substr(b, e - b + 1)));
  }
  return true;
}

DetectorSettings DetectorSettingsFromConfig(const Config& config,
                                            const std::vector<PolicyKey>& extra_whitelist,
                                            const std::vector<std::string>& file_domains) {
  DetectorSettings s;
  for (int c = 0; c < kKeyClasses; ++c) s.limits[c] = config.limits[c];
  for (const Override& o : config.overrides) {
    s.overrides.push_back({ForDetectors(o.key), EffectiveLimit(config, o)});
  }
  for (const PolicyKey& k : config.whitelist) s.whitelist.push_back(ForDetectors(k));
  for (const PolicyKey& k : extra_whitelist) s.whitelist.push_back(ForDetectors(k));
  const RuleSettings& r = config.detectors;
  s.max_ips_per_hour = r.max_ips_per_hour;
  s.ignore_loopback_ips = r.ignore_loopback_ips;
  s.max_logins_per_hour = r.max_logins_per_hour;
  s.auth_failures = r.auth_failures;
  s.auth_failure_seconds = r.auth_failure_seconds;
  s.bounce_min_recipients = r.bounce_min_recipients;
  s.bounce_percent = r.bounce_percent;
  s.repeated_subject_recipients = r.repeated_subject_recipients;
  s.repeated_subject_min_messages = r.repeated_subject_min_messages;
  s.cooldown_seconds = r.cooldown_seconds;
  s.count_internal = config.count_internal;
  s.local_domains = config.local_domains;
  s.local_domains.insert(s.local_domains.end(), file_domains.begin(), file_domains.end());
  return s;
}

Json IncidentToJson(const Incident& i) {
  Json j;
  j["key"] = i.key;
  j["class"] = i.key_class;
  j["rule"] = i.rule;
  j["time"] = i.time;
  j["time_text"] = UtcTimeText(i.time);
  j["count"] = i.count;
  j["threshold"] = i.threshold;
  j["window_start"] = i.window_start;
  j["window_end"] = i.window_end;
  j["ips"] = i.ips;
  j["scripts"] = i.scripts;
  j["subjects"] = i.subjects;
  j["lines"] = i.lines;
  return j;
}

Engine::Engine(Config config, DetectorSettings settings, EngineHooks hooks,
               ParseOptions parse_options)
    : config_(std::move(config)),
      detectors_(std::move(settings)),
      hooks_(std::move(hooks)),
      parse_options_(parse_options) {}

void ParseLogLine(std::string_view line, LogSource source, const ParseOptions& options,
                  LogEvent* out) {
  switch (source) {
    case LogSource::kExim:
      ParseEximLine(line, out, options);
      break;
    case LogSource::kDovecot:
      ParseDovecotLine(line, out, options);
      break;
    case LogSource::kMixed:
      ParseLine(line, out, options);
      break;
  }
}

void Engine::Feed(std::string_view line, LogSource source) {
  ParseLogLine(line, source, parse_options_, &event_);
  FeedParsed(event_, line);
}

void Engine::FeedParsed(const LogEvent& event, std::string_view line) {
  ++stats_.lines;
  if (event.counted_as_unknown) ++stats_.unparsed;
  if (event.kind == LineKind::kUnknown) return;
  if (event.time > stats_.last_time) stats_.last_time = event.time;
  if (!resets_.empty() && ResetHides(resets_, event)) {
    ++stats_.hidden_by_reset;
    return;
  }
  detectors_.Feed(event, line);
}

std::vector<HandledIncident> Engine::Handle() {
  std::vector<HandledIncident> out;
  for (Incident& i : detectors_.TakeIncidents()) {
    ++stats_.incidents;
    out.push_back(Act(std::move(i)));
  }
  // One publish for all the blocks of the batch (a flood of incidents is one policy update).
  if (blocks_pending_ && hooks_.republish) {
    blocks_pending_ = false;
    std::string error;
    if (!hooks_.republish(&error)) {
      ++stats_.errors;
      if (hooks_.log) hooks_.log("blocks recorded but NOT published to the shared table: " + error);
    }
  }
  return out;
}

HandledIncident Engine::Act(Incident incident) {
  HandledIncident h;
  h.incident = std::move(incident);
  const Incident& i = h.incident;
  if (hooks_.store == nullptr) {
    h.outcome = "detected";
    h.action = "none (replay)";
    return h;
  }
  // What to do: block in the table, or only tell.
  const bool block_rule = RuleHasAction(config_.actions, i.rule, "block");
  StoredBlock block;
  bool want_block = false;
  if (config_.notify_only) {
    h.action = "notify_only";
  } else if (!block_rule) {
    h.action = "none (actions.rules." + i.rule + " has no block)";
  } else if (i.key_class == "ip") {
    h.action = "none (an IP address has no key in the shared table)";
  } else {
    block.key = i.key;
    block.key_class = i.key_class == "cwd"   ? KeyClass::kCwd
                      : i.key_class == "uid" ? KeyClass::kUid
                                             : KeyClass::kSender;
    if (block.key_class == KeyClass::kUid) block.key = UidOfUser(i.key);
    if (block.key.empty()) {
      h.action = "none (no user " + i.key + " on this host)";
    } else {
      want_block = true;
      h.action = "block";
      block.kind = kBlockKindBlock;
      block.since = i.time;
      block.by = "eximguard";
      block.reason = i.rule + ": " + std::to_string(i.count) + " > " + std::to_string(i.threshold);
    }
  }

  StoredIncident s;
  s.key = i.key;
  s.key_class = i.key_class;
  s.rule = i.rule;
  s.window_start = i.window_start;
  s.window_end = i.window_end;
  s.time = i.time;
  s.count = static_cast<int64_t>(i.count);
  s.evidence_json = IncidentToJson(i).dump(-1, ' ', false, Json::error_handler_t::replace);
  s.action = h.action;
  std::string error;
  bool added = false;
  // A `reset` of the key since its last incident ends that incident's cooldown: only incidents
  // after the reset count.
  int64_t cooldown = config_.detectors.cooldown_seconds;
  if (!resets_.empty()) {
    int64_t mark = resets_.all;
    if (auto it = resets_.keys.find(ResetMarkKey(i.key_class, i.key)); it != resets_.keys.end())
      mark = std::max(mark, it->second);
    if (mark > 0 && i.time >= mark) cooldown = std::min(cooldown, i.time - mark);
  }
  const RecordOutcome rec =
      hooks_.store->RecordIncident(&s, cooldown, &error, want_block ? &block : nullptr, &added);
  auto log = [&](const std::string& line) {
    if (hooks_.log) hooks_.log(line);
  };
  if (rec == RecordOutcome::kCooldown) {
    ++stats_.cooldown;
    h.outcome = "cooldown";
    return h;
  }
  if (rec == RecordOutcome::kError) {
    ++stats_.errors;
    h.outcome = "error";
    log("incident " + i.rule + " " + i.key + " NOT recorded: " + error);
    return h;
  }
  ++stats_.recorded;
  h.outcome = "recorded";
  h.id = s.id;
  log("incident #" + std::to_string(s.id) + " " + i.rule + " " + i.key_class + " " + i.key + ": " +
      std::to_string(i.count) + " (threshold " + std::to_string(i.threshold) + "); action " +
      h.action);
  if (added) {
    ++stats_.blocks;
    blocks_pending_ = true;
  }
  if (hooks_.run_action) {
    Json j = IncidentToJson(i);
    j["id"] = s.id;
    j["action"] = h.action;
    hooks_.run_action(j.dump(-1, ' ', false, Json::error_handler_t::replace));
  }
  return h;
}

}  // namespace eg::sidecar
