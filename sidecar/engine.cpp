// engine.cpp - see engine.h.

#include "engine.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "protected_keys.h"
#include "time_text.h"
#include "users.h"
#include "window.h"

namespace eg::sidecar {
namespace {

using Json = nlohmann::ordered_json;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// What the guard counted for one key: admitted recipients in its minute and hour windows.
struct TableCount {
  bool found = false;
  uint32_t minute = 0, hour = 0;
};

TableCount CountOf(const Table& t, KeyClass klass, const std::string& key, uint32_t now) {
  TableCount c;
  const uint64_t hash = KeyHash(t, klass, key.data(), key.size());
  const uint32_t home = HomeSlot(t, hash);
  for (uint32_t p = 0; p < kProbeSlots; ++p) {
    const uint32_t i = (home + p) & t.slot_mask;
    if (t.hot[i].key.load(std::memory_order_acquire) != hash) continue;
    c.found = true;
    c.minute = WindowCount({&t.hot[i].minute, t.cold[i].minute_hist}, now / kMinuteBucketSeconds);
    c.hour = WindowCount({&t.hot[i].hour, t.cold[i].hour_hist}, now / kHourBucketSeconds);
    break;
  }
  return c;
}

bool TableClassOf(const std::string& incident_class, KeyClass* out) {
  if (incident_class == "sender") {
    *out = KeyClass::kSender;
  } else if (incident_class == "cwd") {
    *out = KeyClass::kCwd;
  } else if (incident_class == "uid") {
    *out = KeyClass::kUid;
  } else {
    return false;
  }
  return true;
}

constexpr const char* kForgeable =
    "log lines alone can be forged (and this mail may not have passed the guard: see eximguard "
    "doctor)";

}  // namespace

void Corroborate(const Table* table, uint32_t now_unix, Incident* i) {
  if (i->source == EvidenceSource::kTable && i->rule == "bounce_storm") {
    i->trusted = false;  // table_watch.cpp: delivery outcomes of recipients others may choose
    return;
  }
  if (i->source != EvidenceSource::kLog) {
    i->trusted = true;
    if (i->trust_note.empty())
      i->trust_note = std::string("from ") + EvidenceSourceName(i->source) + " (trusted)";
    return;
  }
  i->trusted = false;
  const bool rate = i->rule == "rate_per_minute" || i->rule == "rate_per_hour";
  if (!rate && i->rule != "repeated_subject") {
    i->trust_note = "the log only: " + std::string(kForgeable) +
                    (i->rule == "bounce_storm"
                         ? "; the trusted source is Exim's event_action through the guard"
                         : "; the trusted source is Dovecot's auth policy (dovecot_policy)");
    return;
  }
  if (table == nullptr) {
    i->trust_note = "the log only, not compared with the guard's table (replay or rerun)";
    return;
  }
  KeyClass klass{};
  if (!TableClassOf(i->key_class, &klass)) {
    i->trust_note = "the log only: no key in the guard's table";
    return;
  }
  std::string key = klass == KeyClass::kSender ? Lower(i->key) : i->key;
  if (klass == KeyClass::kUid) key = UidOfUser(i->key);
  const TableCount c = key.empty() ? TableCount{} : CountOf(*table, klass, key, now_unix);
  const bool minute = i->rule == "rate_per_minute";
  const uint32_t counted = minute ? c.minute : c.hour;
  const std::string window = minute ? "minute" : "hour";
  if (c.found && counted >= i->count) {
    i->trusted = true;
    i->trust_note = "the guard's own table counted " + std::to_string(counted) +
                    " recipients in the " + window + " (the log: " + std::to_string(i->count) + ")";
    return;
  }
  i->trust_note = "the log shows " + std::to_string(i->count) + " recipients in the " + window +
                  " but the guard counted " +
                  (c.found ? std::to_string(counted) : std::string("none")) + ": " + kForgeable;
}

PolicyKey KeyForDetectors(PolicyKey key) {
  if (key.klass != KeyClass::kUid || key.text.empty()) return key;
  std::string name = UserOfUid(static_cast<uid_t>(std::strtoul(key.text.c_str(), nullptr, 10)));
  if (!name.empty()) key.text = std::move(name);
  return key;
}

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
    s.overrides.push_back({KeyForDetectors(o.key), EffectiveLimit(config, o)});
  }
  for (const PolicyKey& k : config.whitelist) s.whitelist.push_back(KeyForDetectors(k));
  for (const PolicyKey& k : extra_whitelist) s.whitelist.push_back(KeyForDetectors(k));
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
  for (const std::string& n : config.relay_hosts) {
    IpRange r;
    std::string why;
    if (ParseIpRange(n, &r, &why)) s.relay_hosts.push_back(r);  // validated by the config
  }
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
  j["source"] = EvidenceSourceName(i.source);
  j["trusted"] = i.trusted;
  j["trust_note"] = i.trust_note;
  if (!i.spared_ips.empty()) j["spared_ips"] = i.spared_ips;
  if (i.owner_uid >= 0) j["owner_uid"] = i.owner_uid;
  return j;
}

Incident IncidentFromJson(const Json& j) {
  Incident i;
  if (!j.is_object()) return i;
  auto text = [&](const char* k) {
    return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
  };
  auto number = [&](const char* k) -> int64_t {
    return j.contains(k) && j[k].is_number_integer() ? j[k].get<int64_t>() : 0;
  };
  auto texts = [&](const char* k) {
    std::vector<std::string> v;
    if (!j.contains(k) || !j[k].is_array()) return v;
    for (const Json& e : j[k]) {
      if (e.is_string()) v.push_back(e.get<std::string>());
    }
    return v;
  };
  i.key = text("key");
  i.key_class = text("class");
  i.rule = text("rule");
  i.time = number("time");
  i.count = static_cast<uint64_t>(std::max<int64_t>(0, number("count")));
  i.threshold = static_cast<uint64_t>(std::max<int64_t>(0, number("threshold")));
  i.window_start = number("window_start");
  i.window_end = number("window_end");
  for (std::string& ip : texts("ips")) i.ips.insert(std::move(ip));
  for (std::string& ip : texts("spared_ips")) i.spared_ips.insert(std::move(ip));
  i.scripts = texts("scripts");
  i.subjects = texts("subjects");
  i.lines = texts("lines");
  i.trusted = j.contains("trusted") && j["trusted"].is_boolean() && j["trusted"].get<bool>();
  i.trust_note = text("trust_note");
  i.owner_uid = j.contains("owner_uid") && j["owner_uid"].is_number_integer()
                    ? j["owner_uid"].get<int64_t>()
                    : -1;
  return i;
}

Json HandledToJson(const HandledIncident& h) {
  Json j = IncidentToJson(h.incident);
  j["id"] = h.id;
  j["action"] = h.action;
  j["punish"] = h.punish;
  if (!h.protected_note.empty()) j["protected"] = h.protected_note;
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
  FeedParsed(event_, line, source);
}

void Engine::FeedParsed(const LogEvent& event, std::string_view line, LogSource source) {
  ++stats_.lines;
  // A directory name's newlines split a cwd= record: none of its lines is an event.
  std::optional<ForgeryAlert> alert;
  const bool forged = cwd_records_[static_cast<size_t>(source) % 3].Swallow(event, line, &alert);
  if (alert) {
    if (forgery_alerts_.size() == kMaxForgeryAlerts) forgery_alerts_.erase(forgery_alerts_.begin());
    forgery_alerts_.push_back(std::move(*alert));
  }
  if (forged) {
    ++stats_.forged_lines;
    return;
  }
  if (event.counted_as_unknown) {
    ++stats_.unparsed;
    if (unparsed_samples_.size() == kMaxSamples) unparsed_samples_.pop_front();
    unparsed_samples_.push_back(EscapeForDisplay(line, kSampleBytes));
  }
  if (event.kind == LineKind::kUnknown) return;
  if (event.time > stats_.last_time) stats_.last_time = event.time;
  if (!resets_.empty() && ResetHides(resets_, event)) {
    ++stats_.hidden_by_reset;
    return;
  }
  detectors_.Feed(event, line);
}

int64_t Engine::Now() const {
  return hooks_.now ? hooks_.now() : static_cast<int64_t>(std::time(nullptr));
}

void Engine::Add(Incident incident) {
  added_.push_back(std::move(incident));
}

void Engine::Discard() {
  detectors_.TakeIncidents();
}

std::vector<HandledIncident> Engine::Handle() {
  std::vector<HandledIncident> out;
  for (Incident& i : detectors_.TakeIncidents()) {
    ++stats_.incidents;
    out.push_back(Act(std::move(i)));
  }
  std::vector<Incident> added;
  added.swap(added_);
  for (Incident& i : added) {
    ++stats_.incidents;
    detectors_.Enrich(i.key_class, i.key, &i);  // the log's samples, as enrichment only
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
  Incident& i = h.incident;
  const int64_t now = Now();
  Corroborate(hooks_.table ? hooks_.table() : nullptr, static_cast<uint32_t>(now), &i);
  if (hooks_.store == nullptr) {
    h.outcome = "detected";
    h.action = "none (replay)";
    return h;
  }
  std::string why_protected;
  if (IsProtectedKey(config_, i.key_class, i.key, i.owner_uid, &why_protected)) {
    h.protected_note = why_protected;
  }
  // What to do: block in the table, or only tell (and why).
  const bool block_rule = RuleHasAction(config_.actions, i.rule, "block");
  StoredBlock block;
  bool want_block = false;
  if (config_.notify_only) {
    h.action = "notify_only";
  } else if (config_.dry_run) {
    h.action = "dry_run (nothing is enforced)";
  } else if (!i.trusted) {
    h.action = "none (not corroborated: to act on it, eximguard act ID)";
  } else if (!h.protected_note.empty()) {
    h.action = "none (never automatically: " + h.protected_note + ")";
  } else {
    h.punish = true;
    if (!block_rule) {
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
        block.since = now;
        block.by = kAutomaticBy;
        block.reason =
            i.rule + ": " + std::to_string(i.count) + " > " + std::to_string(i.threshold);
        const uint32_t minutes = BlockMinutes(config_.actions, i.rule);
        if (minutes > 0) block.expires = now + int64_t{minutes} * 60;
      }
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
  s.trusted = i.trusted;
  s.recorded_at = now;
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
      std::to_string(i.count) + " (threshold " + std::to_string(i.threshold) + "); " +
      (i.trusted ? "trusted" : "untrusted") + "; action " + h.action);
  if (added) {
    ++stats_.blocks;
    blocks_pending_ = true;
  }
  if (hooks_.follow_up) hooks_.follow_up(h);
  return h;
}

}  // namespace eg::sidecar
