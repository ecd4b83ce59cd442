// verbs_state.cpp - the verbs that read or change the sidecar's remembered state: `incidents`,
// `why`, `suspend`, `unsuspend`, `reset`, `list`, `whitelist add|remove|list`, `status`. See
// verbs.h.
//
// Changes (suspend, unsuspend, whitelist) are written to the state store with the admin's name
// (CliUser) in the audit trail, then published into the shared table at once, so the next RCPT
// already sees them; a whitelist change also signals the running daemon (SIGHUP) so its
// detectors see it.

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "bot_verbs.h"
#include "config.h"
#include "daemon.h"
#include "follow_up.h"
#include "host_platform.h"
#include "ip_match.h"
#include "limit_value.h"
#include "policy_from_state.h"
#include "protected_keys.h"
#include "reset_marks.h"
#include "segment.h"
#include "state_store.h"
#include "text_escape.h"
#include "time_text.h"
#include "users.h"
#include "verbs.h"
#include "verbs_support.h"
#include "whm_client.h"

namespace eg::sidecar {
namespace {

using Json = nlohmann::ordered_json;

int64_t Now() {
  return static_cast<int64_t>(std::time(nullptr));
}

// The name incidents use for a key: uid-class incidents are keyed by user name.
std::vector<std::string> IncidentKeys(const PolicyKey& key) {
  std::vector<std::string> keys = {key.text};  // sender keys: lowercased by ParseCommandKey already
  if (key.klass == KeyClass::kUid) {
    std::string name = UserOfUid(static_cast<uid_t>(std::strtoul(key.text.c_str(), nullptr, 10)));
    if (!name.empty()) keys.push_back(std::move(name));
  }
  return keys;
}

Json IncidentJson(const StoredIncident& i) {
  Json j;
  j["id"] = i.id;
  j["key"] = i.key;
  j["class"] = i.key_class;
  j["rule"] = i.rule;
  j["time"] = i.time;
  j["count"] = i.count;
  j["action"] = i.action;
  j["window_start"] = i.window_start;
  j["window_end"] = i.window_end;
  j["evidence"] = Json::parse(i.evidence_json, nullptr, false);
  return j;
}

// A column: s padded to width, and always at least one space after it (a longer value pushes
// the rest of its row, never runs into the next column).
std::string Pad(std::string s, size_t width) {
  s.resize(std::max(width, s.size() + 1), ' ');
  return s;
}

// The width of a key column: the longest of `keys` (escaped), at most 48, plus two spaces.
size_t KeyWidth(const std::vector<std::string>& keys) {
  size_t w = 3;
  for (const std::string& k : keys) w = std::max(w, std::min<size_t>(Printable(k).size(), 48));
  return w + 2;
}

// The store row of a WHM step names the key as the table block does (uid numeric); WHM needs
// it as incidents name it (uid: the user name).
struct WhmKey {
  KeyClass table_class;
  std::string table_key;
  std::string incident_class;
  std::string incident_key;
};

WhmKey WhmKeyOf(const PolicyKey& key) {
  const std::vector<std::string> names = IncidentKeys(key);
  return {key.klass, key.text, KeyClassName(key.klass), names.back()};
}

FollowUpEnv EnvOf(const VerbState& l, std::unique_ptr<WhmClient>* whm) {
  if (!l.config.whm.token.empty()) *whm = std::make_unique<WhmClient>(l.config.whm);
  FollowUpEnv env;
  env.config = &l.config;
  env.store = l.store.get();
  env.whm = whm->get();
  return env;
}

// Runs one WHM step (or its undo) for an admin and says what happened; false if it failed.
bool AdminWhmStep(const FollowUpEnv& env, const std::string& step, bool undo, const WhmKey& k,
                  const std::string& who, const std::string& reason, std::ostream& out,
                  std::ostream& err) {
  const StepResult r = RunWhmStep(env, step, undo, k.table_class, k.table_key, k.incident_class,
                                  k.incident_key, who, reason);
  (r.ok ? out : err) << "WHM " << r.action << ": " << Printable(r.outcome) << "\n";
  return r.ok;
}

// The key's active WHM rows of the kinds `wanted` accepts.
std::vector<std::string> ActiveKinds(StateStore& store, const WhmKey& k,
                                     bool (*wanted)(const std::string&)) {
  std::vector<StoredBlock> blocks;
  std::string error;
  std::vector<std::string> kinds;
  if (!store.ActiveBlocks(&blocks, &error)) return kinds;
  for (const StoredBlock& b : blocks) {
    if (b.key_class == k.table_class && b.key == k.table_key && IsWhmStep(b.kind) &&
        wanted(b.kind)) {
      kinds.push_back(b.kind);
    }
  }
  return kinds;
}

}  // namespace

std::string CliUser() {
  const std::string name = UserOfUid(getuid());
  std::string who = "cli:" + (name.empty() ? std::to_string(getuid()) : name);
  const char* sudo = std::getenv("SUDO_USER");
  if (sudo != nullptr && *sudo != '\0') who += std::string(" (sudo by ") + sudo + ")";
  return who;
}

bool ParseSince(const std::string& text, int64_t now, int64_t* out) {
  if (text == "all") {
    *out = 0;
    return true;
  }
  char* end = nullptr;
  const long long n = std::strtoll(text.c_str(), &end, 10);
  if (end != text.c_str() && n >= 0) {
    const std::string unit(end);
    const int64_t mult = unit == "s"   ? 1
                         : unit == "m" ? 60
                         : unit == "h" ? 3600
                         : unit == "d" ? 86400
                                       : 0;
    if (mult != 0) {
      *out = now - n * mult;
      return true;
    }
    if (unit.empty() && n > 100000000) {  // unix time
      *out = n;
      return true;
    }
  }
  for (const char* fmt : {"%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"}) {
    struct tm tm {};
    const char* e = strptime(text.c_str(), fmt, &tm);
    if (e != nullptr && *e == '\0') {
      tm.tm_isdst = -1;
      *out = static_cast<int64_t>(mktime(&tm));
      return true;
    }
  }
  return false;
}

int IncidentsVerb(const std::string& config_path, const std::string& since, bool json,
                  std::ostream& out, std::ostream& err) {
  int64_t from = 0;
  if (!ParseSince(since, Now(), &from)) {
    err << "incidents: --since: expected all, N[smhd], YYYY-MM-DD[ HH:MM[:SS]] or a unix time, "
           "got \""
        << Printable(since) << "\"\n";
    return kExitUsage;
  }
  VerbState l;
  if (!LoadVerbState(config_path, &l, err)) return kExitFailure;
  std::vector<StoredIncident> list;
  std::string error;
  if (!l.store->ListIncidents(from, 0, &list, &error)) {
    err << Printable(error) << "\n";
    return kExitFailure;
  }
  if (json) {
    Json a = Json::array();
    for (const StoredIncident& i : list) a.push_back(IncidentJson(i));
    out << a.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
    return kExitOk;
  }
  if (list.empty()) {
    out << "no incidents since " << LocalTimeText(from) << "\n";
    return kExitOk;
  }
  std::vector<std::string> keys;
  for (const StoredIncident& i : list) keys.push_back(i.key);
  const size_t kw = KeyWidth(keys);
  out << Pad("ID", 7) << Pad("TIME", 21) << Pad("RULE", 18) << Pad("CLASS", 7) << Pad("COUNT", 7)
      << Pad("KEY", kw) << "ACTION\n";
  for (const StoredIncident& i : list) {
    out << Pad(std::to_string(i.id), 7) << Pad(LocalTimeText(i.time), 21) << Pad(i.rule, 18)
        << Pad(i.key_class, 7) << Pad(std::to_string(i.count), 7) << Pad(Printable(i.key), kw)
        << Printable(i.action) << "\n";
  }
  return kExitOk;
}

int WhyVerb(const std::string& config_path, const std::string& written, std::ostream& out,
            std::ostream& err) {
  PolicyKey key;
  if (!ParseCommandKey(written, &key, err)) return kExitUsage;
  VerbState l;
  if (!LoadVerbState(config_path, &l, err)) return kExitFailure;
  const Config& c = l.config;
  const std::string id = Identity(key);
  out << KeyClassName(key.klass) << " " << Printable(key.text) << "\n";

  // The config's word on it.
  auto listed = [&](const std::vector<PolicyKey>& list) {
    return std::any_of(list.begin(), list.end(),
                       [&](const PolicyKey& k) { return Identity(k) == id; });
  };
  // The limit the guard applies: the config's with `eximguard set`'s laid over it.
  std::string error;
  std::vector<StoredLimit> stored;
  if (!l.store->ListLimits(&stored, &error)) {
    err << error << "\n";
    return kExitFailure;
  }
  const Limit limit = LimitFor(WithStoredLimits(c, stored), key);
  out << "  limits: " << LimitText(limit) << "\n";
  for (const StoredLimit& s : stored) {
    if (s.key_class != key.klass || (s.key != key.text && !s.key.empty())) continue;
    out << "    set with eximguard set: " << Printable(StoredLimitText(s)) << "\n";
  }
  if (listed(c.whitelist)) out << "  whitelisted in the config\n";
  if (listed(c.blocklist)) out << "  blocked by the config's blocklist\n";

  // The store's.
  std::vector<StoredBlock> blocks;
  std::vector<WhitelistEntry> wl;
  if (!l.store->ActiveBlocks(&blocks, &error) || !l.store->ListWhitelist(&wl, &error)) {
    err << Printable(error) << "\n";
    return kExitFailure;
  }
  for (const StoredBlock& b : blocks) {
    if (b.key_class == key.klass && b.key == key.text) {
      out << "  BLOCKED (" << b.kind << ") since " << LocalTimeText(b.since) << " by "
          << Printable(b.by) << (b.reason.empty() ? "" : ": " + Printable(b.reason))
          << "\n    undo: " << EximguardCommand("unsuspend", written) << "\n";
    }
  }
  for (const WhitelistEntry& w : wl) {
    PolicyKey k;
    std::string why;
    if (ParsePolicyKey(w.key, &k, &why) && Identity(k) == id) {
      out << "  whitelisted by " << Printable(w.added_by) << " at " << LocalTimeText(w.time)
          << (w.note.empty() ? "" : ": " + Printable(w.note)) << "\n";
    }
  }

  // The shared table's counters.
  std::vector<SlotView> slots;
  if (!LiveSlots(
          c, [&](const PolicyKey& k) { return k.klass == key.klass && Identity(k) == id; }, &slots,
          &error)) {
    out << "  shared table: " << Printable(error) << "\n";
  } else {
    for (const SlotView& s : slots) out << "  now: " << CountersText(s) << "\n";
    if (slots.empty()) out << "  now: not counted in the last two hours\n";
  }

  // Its incidents, with the evidence.
  std::vector<StoredIncident> incidents;
  for (const std::string& k : IncidentKeys(key)) {
    std::vector<StoredIncident> part;
    if (!l.store->IncidentsForKey(k, &part, &error)) {
      err << Printable(error) << "\n";
      return kExitFailure;
    }
    incidents.insert(incidents.end(), part.begin(), part.end());
  }
  if (incidents.empty()) {
    out << "  no incidents\n";
    return kExitOk;
  }
  for (const StoredIncident& i : incidents) {
    out << "  incident #" << i.id << " " << LocalTimeText(i.time) << " " << Printable(i.rule)
        << ": " << i.count;
    const Json ev = Json::parse(i.evidence_json, nullptr, false);
    if (ev.is_object() && ev.contains("threshold")) out << " (threshold " << ev["threshold"] << ")";
    out << "; action " << Printable(i.action) << "\n";
    if (!ev.is_object()) continue;
    const std::string note = ev.value("trust_note", "");
    out << "    evidence: " << (i.trusted ? "trusted" : "NOT trusted")
        << (note.empty() ? "" : " (" + Printable(note) + ")") << "\n";
    if (!i.trusted) out << "    to act on it: eximguard act " << i.id << "\n";
    for (const char* field : {"ips", "scripts", "subjects"}) {
      if (!ev.contains(field) || !ev[field].is_array() || ev[field].empty()) continue;
      out << "    " << field << ":";
      for (const auto& v : ev[field])
        out << " "
            << Printable(v.is_string() ? v.get<std::string>()
                                       : v.dump(-1, ' ', false, Json::error_handler_t::replace));
      out << "\n";
    }
    if (ev.contains("lines") && ev["lines"].is_array()) {
      for (const auto& v : ev["lines"]) {
        if (v.is_string()) out << "    | " << Printable(v.get<std::string>()) << "\n";
      }
    }
  }
  return kExitOk;
}

int SuspendVerb(const std::string& config_path, const std::string& written,
                const std::string& reason, const std::string& who, std::ostream& out,
                std::ostream& err) {
  PolicyKey key;
  if (!ParseCommandKey(written, &key, err)) return kExitUsage;
  VerbState l;
  if (!LoadVerbState(config_path, &l, err)) return kExitFailure;
  StoredBlock b;
  b.key = key.text;
  b.key_class = key.klass;
  b.kind = kBlockKindBlock;
  b.since = Now();
  b.by = who;
  b.reason = reason.empty() ? "suspended by an admin" : reason;
  bool added = false;
  std::string error;
  if (!l.store->AddBlock(b, &added, &error)) {
    err << Printable(error) << "\n";
    return kExitFailure;
  }
  out << (added ? "blocked " : "already blocked: ") << KeyClassName(key.klass) << " "
      << Printable(key.text) << "\n";
  if (!PublishNow(l, out, err)) return kExitFailure;
  bool whm_ok = true;
  if (!l.config.whm.token.empty()) {  // and in cPanel: the mailbox's (account's) outgoing mail
    std::unique_ptr<WhmClient> whm;
    whm_ok = AdminWhmStep(EnvOf(l, &whm), "suspend_outgoing", false, WhmKeyOf(key), who, b.reason,
                          out, err);
  }
  out << "undo: " << EximguardCommand("unsuspend", written) << "\n";
  return whm_ok ? kExitOk : kExitFailure;
}

int ActVerb(const std::string& config_path, const std::string& id_text, const std::string& who,
            std::ostream& out, std::ostream& err) {
  int64_t id = 0;
  if (id_text.empty() || id_text.size() > 18 ||
      !std::all_of(id_text.begin(), id_text.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      (id = std::stoll(id_text)) <= 0) {
    err << "act: ID " << Printable(id_text) << ": expected an incident number (eximguard incidents)"
        << "\n";
    return kExitUsage;
  }
  VerbState l;
  if (!LoadVerbState(config_path, &l, err)) return kExitFailure;
  StoredIncident stored;
  bool found = false;
  std::string error;
  if (!l.store->IncidentById(id, &stored, &found, &error)) {
    err << error << "\n";
    return kExitFailure;
  }
  if (!found) {
    err << "act: no incident #" << id << " (eximguard incidents lists them)\n";
    return kExitFailure;
  }
  HandledIncident h;
  h.id = id;
  h.incident = IncidentFromJson(Json::parse(stored.evidence_json, nullptr, false));
  Incident& i = h.incident;
  i.key = stored.key;  // the row's own columns win over the evidence's copy
  i.key_class = stored.key_class;
  i.rule = stored.rule;
  const std::string what = "incident #" + std::to_string(id) + " (" + Printable(i.rule) + " " +
                           Printable(i.key_class) + " " + Printable(i.key) + ")";
  std::string why_protected;
  if (IsProtectedKey(l.config, i.key_class, i.key, i.owner_uid, &why_protected)) {
    err << "act: refused for " << what << ": " << why_protected
        << ". If you are sure, block it by hand: eximguard suspend KEY\n";
    return kExitFailure;
  }
  out << "acting on " << what << " as " << Printable(who) << "; evidence "
      << (stored.trusted ? "trusted" : "NOT trusted (your decision)") << "\n";
  h.punish = true;
  h.action = "none";
  if (RuleHasAction(l.config.actions, i.rule, "block") && i.key_class != "ip") {
    StoredBlock b;
    b.key_class = i.key_class == "cwd"   ? KeyClass::kCwd
                  : i.key_class == "uid" ? KeyClass::kUid
                                         : KeyClass::kSender;
    b.key = b.key_class == KeyClass::kUid ? UidOfUser(i.key) : i.key;
    if (b.key.empty()) {
      err << "act: no user " << Printable(i.key) << " on this host: not blocked\n";
    } else {
      b.kind = kBlockKindBlock;
      b.since = Now();
      b.by = who;  // an admin's decision: it does not lapse
      b.reason = "act on incident #" + std::to_string(id) + ": " + i.rule + " " +
                 std::to_string(i.count) + " > " + std::to_string(i.threshold);
      bool added = false;
      if (!l.store->AddBlock(b, &added, &error)) {
        err << error << "\n";
        return kExitFailure;
      }
      out << (added ? "blocked " : "already blocked: ") << KeyClassName(b.key_class) << " "
          << Printable(b.key) << "\n";
      if (!PublishNow(l, out, err)) return kExitFailure;
      TellDaemon(l.config, out);
      h.action = "block";
    }
  }
  std::unique_ptr<WhmClient> whm;
  FollowUpEnv env = EnvOf(l, &whm);
  env.who = who;
  env.own_addresses = OwnAddressTexts();
  const FollowUp f = RunFollowUp(env, h);
  bool ok = true;
  for (const StepResult& r : f.steps) {
    (r.ok ? out : err) << r.action << ": " << Printable(r.outcome) << "\n";
    ok &= r.ok;
  }
  if (h.action != "block" && f.steps.empty()) {
    out << "nothing to do: actions.rules." << Printable(i.rule) << " has no step for it\n";
  }
  AuditEntry a;
  a.time = Now();
  a.who = who;
  a.action = "act";
  a.key = i.key;
  a.detail = "incident #" + std::to_string(id) + " " + i.rule;
  if (!l.store->Audit(a, &error)) err << "not audited: " << error << "\n";
  if (!f.undo.empty()) out << "undo: " << f.undo << "\n";
  return ok ? kExitOk : kExitFailure;
}

int UnsuspendVerb(const std::string& config_path, const std::string& written,
                  const std::string& who, std::ostream& out, std::ostream& err) {
  PolicyKey key;
  if (!ParseCommandKey(written, &key, err)) return kExitUsage;
  VerbState l;
  if (!LoadVerbState(config_path, &l, err)) return kExitFailure;
  int removed = 0;
  std::string error;
  if (!l.store->RemoveBlock(key.klass, key.text, kBlockKindBlock, Now(), who, &removed, &error)) {
    err << Printable(error) << "\n";
    return kExitFailure;
  }
  out << (removed > 0 ? "unblocked " : "was not blocked: ") << KeyClassName(key.klass) << " "
      << Printable(key.text) << "\n";
  if (!PublishNow(l, out, err)) return kExitFailure;
  // What eximguard suspended in cPanel for the key, undone too.
  bool whm_ok = true;
  const WhmKey k = WhmKeyOf(key);
  const std::vector<std::string> kinds = ActiveKinds(*l.store, k, IsSuspension);
  if (!kinds.empty()) {
    std::unique_ptr<WhmClient> whm;
    const FollowUpEnv env = EnvOf(l, &whm);
    for (const std::string& kind : kinds) {
      whm_ok &= AdminWhmStep(env, kind, true, k, who, "", out, err);
    }
  }
  const std::string id = Identity(key);
  for (const PolicyKey& k : l.config.blocklist) {
    if (Identity(k) == id) {
      out << "note: the config's blocklist still blocks it (" << l.config.path << ")\n";
    }
  }
  if (removed == 0 && kinds.empty()) {  // nothing to lift: a typo must not look like success
    err << "unsuspend: " << KeyClassName(key.klass) << " " << Printable(key.text)
        << " was not blocked (eximguard list shows what is)\n";
    return kExitFailure;
  }
  return whm_ok ? kExitOk : kExitFailure;
}

int HoldVerb(const std::string& config_path, const std::string& written, const std::string& who,
             std::ostream& out, std::ostream& err) {
  PolicyKey key;
  if (!ParseCommandKey(written, &key, err)) return kExitUsage;
  VerbState l;
  if (!LoadVerbState(config_path, &l, err)) return kExitFailure;
  if (l.config.whm.token.empty()) {
    err << "hold needs cPanel's WHM API: whm.token is not set in " << l.config.path << "\n";
    return kExitFailure;
  }
  std::unique_ptr<WhmClient> whm;
  if (!AdminWhmStep(EnvOf(l, &whm), "hold_outgoing", false, WhmKeyOf(key), who, "held by an admin",
                    out, err)) {
    return kExitFailure;
  }
  out << "undo: " << EximguardCommand("release", written) << "\n";
  return kExitOk;
}

int ReleaseVerb(const std::string& config_path, const std::string& written, const std::string& who,
                std::ostream& out, std::ostream& err) {
  PolicyKey key;
  if (!ParseCommandKey(written, &key, err)) return kExitUsage;
  VerbState l;
  if (!LoadVerbState(config_path, &l, err)) return kExitFailure;
  if (l.config.whm.token.empty()) {
    err << "release needs cPanel's WHM API: whm.token is not set in " << l.config.path << "\n";
    return kExitFailure;
  }
  const WhmKey k = WhmKeyOf(key);
  std::vector<std::string> kinds = ActiveKinds(*l.store, k, IsHold);
  if (kinds.empty()) kinds.push_back("hold_outgoing");  // asked: tell WHM even without a record
  std::unique_ptr<WhmClient> whm;
  const FollowUpEnv env = EnvOf(l, &whm);
  bool ok = true;
  for (const std::string& kind : kinds) ok &= AdminWhmStep(env, kind, true, k, who, "", out, err);
  return ok ? kExitOk : kExitFailure;
}

int ResetVerb(const std::string& config_path, const std::string& written, bool all,
              const std::string& who, std::ostream& out, std::ostream& err) {
  PolicyKey key;
  if (!all && !ParseCommandKey(written, &key, err)) return kExitUsage;
  VerbState l;
  if (!LoadVerbState(config_path, &l, err)) return kExitFailure;
  // The name incidents and the detectors use: a uid key is the user's name (IncidentKeys).
  std::string mark = "*";
  if (!all) {
    const std::vector<std::string> names = IncidentKeys(key);
    if (key.klass == KeyClass::kUid && names.size() < 2) {
      err << "no user with uid " << key.text << " on this host\n";
      return kExitFailure;
    }
    mark = ResetMarkKey(KeyClassName(key.klass), names.back());
  }
  const int64_t now = Now();
  std::string error;
  uint64_t cleared = 0;
  std::unique_ptr<Segment> seg = OpenSegment(l.config.shm_name, &error);
  if (seg) {
    const Table& t = seg->table;
    cleared = ClearCounts(t, all ? 0 : KeyHash(t, key.klass, key.text.data(), key.text.size()),
                          static_cast<uint32_t>(now));
  } else {
    out << "no shared table to clear (" << Printable(error) << ")\n";
  }
  AuditEntry a;
  a.time = now;
  a.who = who;
  a.action = kAuditReset;
  a.key = mark;
  a.detail = std::to_string(cleared) + " recipients of the last hour cleared";
  if (!l.store->Audit(a, &error)) {
    err << Printable(error) << "\n";
    return kExitFailure;
  }
  out << "reset "
      << (all ? std::string("every key") : KeyClassName(key.klass) + std::string(" ") + key.text)
      << ": " << cleared << " recipients of the last hour cleared in the shared table; the log "
      << "rules judge " << (all ? "every key" : "it") << " afresh from now\n";
  TellDaemon(l.config, out);
  return kExitOk;
}

int ListVerb(const std::string& config_path, bool json, std::ostream& out, std::ostream& err) {
  VerbState l;
  if (!LoadVerbState(config_path, &l, err)) return kExitFailure;
  std::vector<StoredBlock> blocks;
  std::string error;
  if (!l.store->ActiveBlocks(&blocks, &error)) {
    err << Printable(error) << "\n";
    return kExitFailure;
  }
  if (json) {
    Json a = Json::array();
    for (const StoredBlock& b : blocks) {
      a.push_back({{"key", b.key},
                   {"class", KeyClassName(b.key_class)},
                   {"kind", b.kind},
                   {"since", b.since},
                   {"by", b.by},
                   {"reason", b.reason},
                   {"source", "state"}});
    }
    for (const PolicyKey& k : l.config.blocklist) {
      a.push_back({{"key", k.text},
                   {"class", KeyClassName(k.klass)},
                   {"kind", "block"},
                   {"source", "config"}});
    }
    out << a.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
    return kExitOk;
  }
  if (blocks.empty() && l.config.blocklist.empty()) {
    out << "nothing is blocked\n";
    return kExitOk;
  }
  std::vector<std::string> keys;
  for (const StoredBlock& b : blocks) keys.push_back(b.key);
  for (const PolicyKey& k : l.config.blocklist) keys.push_back(k.text);
  const size_t kw = KeyWidth(keys);
  out << Pad("CLASS", 7) << Pad("KIND", 17) << Pad("SINCE", 21) << Pad("BY", 16) << Pad("KEY", kw)
      << "REASON\n";
  for (const StoredBlock& b : blocks) {
    out << Pad(KeyClassName(b.key_class), 7) << Pad(b.kind, 17) << Pad(LocalTimeText(b.since), 21)
        << Pad(Printable(b.by), 16) << Pad(Printable(b.key), kw) << Printable(b.reason) << "\n";
  }
  for (const PolicyKey& k : l.config.blocklist) {
    out << Pad(KeyClassName(k.klass), 7) << Pad("block", 17) << Pad("-", 21) << Pad("config", 16)
        << Pad(Printable(k.text), kw) << "blocklist in " << Printable(l.config.path) << "\n";
  }
  return kExitOk;
}

int WhitelistVerb(const std::string& config_path, const std::string& action,
                  const std::string& written, const std::string& note, const std::string& who,
                  std::ostream& out, std::ostream& err) {
  VerbState l;
  std::string error;
  if (action == "list") {
    if (!LoadVerbState(config_path, &l, err)) return kExitFailure;
    std::vector<WhitelistEntry> wl;
    if (!l.store->ListWhitelist(&wl, &error)) {
      err << Printable(error) << "\n";
      return kExitFailure;
    }
    for (const PolicyKey& k : l.config.whitelist) out << Printable(k.written) << "  (config)\n";
    for (const WhitelistEntry& w : wl) {
      out << Printable(w.key) << "  (added by " << Printable(w.added_by) << " at "
          << LocalTimeText(w.time) << (w.note.empty() ? "" : ": " + Printable(w.note)) << ")\n";
    }
    if (wl.empty() && l.config.whitelist.empty()) out << "the whitelist is empty\n";
    return kExitOk;
  }
  PolicyKey key;
  if (!ParseCommandKey(written, &key, err)) return kExitUsage;
  if (!LoadVerbState(config_path, &l, err)) return kExitFailure;
  if (action == "add") {
    WhitelistEntry e;
    e.key = written;
    e.added_by = who;
    e.time = Now();
    e.note = note;
    bool added = false;
    if (!l.store->AddWhitelist(e, &added, &error)) {
      err << Printable(error) << "\n";
      return kExitFailure;
    }
    out << (added ? "whitelisted " : "already whitelisted: ") << Printable(written) << "\n";
  } else {
    bool removed = false;
    if (!l.store->RemoveWhitelist(written, Now(), who, &removed, &error)) {
      err << Printable(error) << "\n";
      return kExitFailure;
    }
    out << (removed ? "removed from the whitelist: " : "was not whitelisted: ")
        << Printable(written) << "\n";
    for (const PolicyKey& k : l.config.whitelist) {
      if (Identity(k) == Identity(key)) {
        out << "note: the config's whitelist still lists it (" << l.config.path << ")\n";
      }
    }
  }
  if (!PublishNow(l, out, err)) return kExitFailure;
  TellDaemon(l.config, out);
  return kExitOk;
}

int StatusVerb(const std::string& config_path, bool json, std::ostream& out, std::ostream& err) {
  // A broken config is when status is needed most: its errors come first, then what can still
  // be shown with the config as far as it could be read (the daemon, the table, the state).
  ConfigResult loaded = LoadConfig(config_path);
  const Config& c = loaded.config;
  const HostInfo host = DetectHost();
  std::vector<std::string> problems = loaded.errors;
  for (const auto& [key, path] : {std::pair<std::string, std::string>{"exim_log", c.exim_log},
                                  {"dovecot_log", c.dovecot_log}}) {
    const std::string missing = MissingLogProblem(host, key, path, config_path);
    if (!missing.empty()) problems.push_back(key + " " + missing);
  }
  Json j;
  j["problems"] = problems;
  const int pid = FollowerPid(c.state_dir);
  j["following"] = pid != 0;
  j["pid"] = pid > 0 ? pid : 0;
  std::ifstream status_file(c.state_dir + "/" + kStatusFileName);
  std::stringstream ss;
  ss << status_file.rdbuf();
  j["daemon"] = Json::parse(ss.str(), nullptr, false);
  if (j["daemon"].is_discarded()) j["daemon"] = nullptr;

  std::string error;
  std::unique_ptr<Segment> seg = OpenSegment(c.shm_name, &error);
  if (seg) {
    const StatTotals t = Totals(seg->table);
    const Policy head = LivePolicyHead(seg->table);
    j["table"] = {{"name", c.shm_name},       {"generation", seg->table.header->generation.load()},
                  {"ok", t.verdicts[0]},      {"defer", t.verdicts[1]},
                  {"hold", t.verdicts[2]},    {"deny", t.verdicts[3]},
                  {"fail_open", t.fail_open}, {"dry_run", head.dry_run}};
  } else {
    j["table"] = {{"name", c.shm_name}, {"error", error}};
  }
  // The store only when it is there: a status must not create state_dir from a broken config.
  std::vector<StoredIncident> recent;
  std::vector<StoredBlock> blocks;
  std::string store_error;
  struct stat st {};
  std::unique_ptr<StateStore> store;
  if (loaded.ok() || stat(c.state_dir.c_str(), &st) == 0) {
    store = StateStore::Open(c.state_dir, &store_error);
  } else {
    store_error = "state_dir " + c.state_dir + " does not exist";
  }
  if (store && (!store->ListIncidents(Now() - 86400, 0, &recent, &store_error) ||
                !store->ActiveBlocks(&blocks, &store_error))) {
    store.reset();
  }
  if (store) {
    j["incidents_24h"] = recent.size();
    j["active_blocks"] = blocks.size();
  } else {
    j["state_error"] = store_error;
  }
  const int code = problems.empty() && store ? kExitOk : kExitFailure;
  if (json) {
    out << j.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
    return code;
  }
  for (const std::string& p : problems) out << Loud("PROBLEM: " + Printable(p), out) << "\n";
  if (pid > 0) {
    out << "eximguard is following the logs (pid " << pid << ")\n";
  } else {
    out << Loud("eximguard is NOT following the logs (start it: " +
                    StartCommand(host, SelfBinary(), config_path) + ")",
                out)
        << "\n";
  }
  const Json& d = j["daemon"];
  if (d.is_object()) {
    out << "  last status " << LocalTimeText(d.value("updated", int64_t{0})) << " ("
        << Printable(d.value("mode", "")) << "): " << d.value("lines", uint64_t{0}) << " lines, "
        << d.value("unparsed", uint64_t{0}) << " not understood, "
        << d.value("recorded", uint64_t{0}) << " incidents recorded, "
        << d.value("errors", uint64_t{0}) << " errors; last log line of "
        << LocalTimeText(d.value("last_log_time", int64_t{0})) << "\n";
    if (d.contains("unparsed_samples") && d["unparsed_samples"].is_array() &&
        !d["unparsed_samples"].empty()) {
      out << "  lines not understood, the last " << d["unparsed_samples"].size() << ":\n";
      for (const auto& line : d["unparsed_samples"]) {
        if (!line.is_string()) continue;
        // Escaped by the engine already (EscapeForDisplay); anything else is escaped here.
        const std::string v = line.get<std::string>();
        const bool plain =
            std::all_of(v.begin(), v.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
        out << "    | " << (plain ? v : Printable(v)) << "\n";
      }
    }
    if (d.value("forged_lines", uint64_t{0}) > 0) {
      out << Loud("  FORGERY: " + std::to_string(d.value("forged_lines", uint64_t{0})) +
                      " log lines were inside a cwd= record (a directory name with newlines): "
                      "skipped, see the daemon's log",
                  out)
          << "\n";
    }
    if (d.contains("logs") && d["logs"].is_array()) {
      for (const auto& lg : d["logs"]) {
        out << "  " << Printable(lg.value("name", "")) << " " << Printable(lg.value("path", ""))
            << " at offset " << lg.value("offset", uint64_t{0}) << ", "
            << lg.value("rotations", uint64_t{0}) << " rotations\n";
      }
    }
  }
  const Json& t = j["table"];
  if (t.contains("error")) {
    out << "shared table: " << Printable(t["error"].get<std::string>()) << "\n";
  } else {
    out << "shared table " << Printable(c.shm_name) << ": policy generation " << t["generation"]
        << "; " << t["ok"] << " ok, " << t["defer"] << " deferred, " << t["hold"] << " held, "
        << t["deny"] << " denied, " << t["fail_open"] << " failed open"
        << (t["dry_run"].get<bool>() ? "; DRY RUN" : "") << "\n";
  }
  if (store) {
    out << recent.size() << " incidents in the last 24 hours; " << blocks.size()
        << " keys blocked (eximguard list)\n";
  } else {
    err << "state: " << Printable(store_error) << "\n";
  }
  if (!problems.empty()) out << "(`eximguard doctor` checks the whole installation, with fixes)\n";
  return code;
}

}  // namespace eg::sidecar
