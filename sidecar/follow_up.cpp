// follow_up.cpp - see follow_up.h.

#include "follow_up.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <set>
#include <sstream>

#include "action_command.h"
#include "ip_match.h"
#include "text_escape.h"
#include "users.h"

namespace eg::sidecar {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kEximListCap = 64u << 20;  // `exim -bp` output read for freeze_queue
constexpr size_t kFreezeBatch = 200;        // message ids per `exim -Mf`

int64_t Now(const FollowUpEnv& env) {
  return env.now ? env.now() : static_cast<int64_t>(std::time(nullptr));
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

StepResult Step(std::string action, bool ok, std::string outcome) {
  return {std::move(action), ok, std::move(outcome)};
}

// How a step maps onto WHM for a target: a mailbox function, or an account function.
struct WhmCall {
  bool mailbox = false;
  MailboxAction mailbox_action{};
  AccountAction account_action{};
};

bool PlanCall(const std::string& step, bool undo, const CpanelTarget& t, WhmCall* c,
              std::string* why) {
  const bool box = !t.mailbox.empty();
  if (step == "suspend_outgoing" || step == "hold_outgoing") {
    const bool hold = step == "hold_outgoing";
    c->mailbox = box;
    c->mailbox_action =
        hold ? (undo ? MailboxAction::kReleaseOutgoing : MailboxAction::kHoldOutgoing)
             : (undo ? MailboxAction::kUnsuspendOutgoing : MailboxAction::kSuspendOutgoing);
    c->account_action =
        hold ? (undo ? AccountAction::kReleaseOutgoing : AccountAction::kHoldOutgoing)
             : (undo ? AccountAction::kUnsuspendOutgoing : AccountAction::kSuspendOutgoing);
    return true;
  }
  if (step == "suspend_login") {
    if (!box) {
      *why = "suspend_login needs a mailbox, and the key is the account " + t.user;
      return false;
    }
    c->mailbox = true;
    c->mailbox_action = undo ? MailboxAction::kUnsuspendLogin : MailboxAction::kSuspendLogin;
    return true;
  }
  c->mailbox = false;
  if (step == "suspend_account_outgoing") {
    c->account_action = undo ? AccountAction::kUnsuspendOutgoing : AccountAction::kSuspendOutgoing;
  } else if (step == "hold_account_outgoing") {
    c->account_action = undo ? AccountAction::kReleaseOutgoing : AccountAction::kHoldOutgoing;
  } else if (step == "suspend_account") {
    c->account_action = undo ? AccountAction::kUnsuspend : AccountAction::kSuspend;
  } else {
    *why = "not a WHM step: " + step;
    return false;
  }
  return true;
}

// Automatic WHM steps in the hour before now (audit rows of blocks added by eximguard).
int64_t AutomaticStepsLastHour(StateStore& store, int64_t now, std::string* error) {
  std::vector<AuditEntry> audit;
  if (!store.ListAudit(now - 3600, 0, &audit, error)) return -1;
  int64_t n = 0;
  for (const AuditEntry& a : audit) {
    if (a.who != kAutomaticBy || a.action != "block_add") continue;
    const std::string kind = a.detail.substr(0, a.detail.find(':'));
    if (IsWhmStep(kind)) ++n;
  }
  return n;
}

bool ActiveRow(StateStore& store, KeyClass klass, const std::string& key, const std::string& kind,
               bool* found, std::string* error) {
  std::vector<StoredBlock> blocks;
  if (!store.ActiveBlocks(&blocks, error)) return false;
  *found = std::any_of(blocks.begin(), blocks.end(), [&](const StoredBlock& b) {
    return b.key_class == klass && b.key == key && b.kind == kind;
  });
  return true;
}

KeyClass TableClass(const std::string& incident_class) {
  return incident_class == "cwd"   ? KeyClass::kCwd
         : incident_class == "uid" ? KeyClass::kUid
                                   : KeyClass::kSender;
}

std::string Describe(const ActionResult& r, const std::string& program) {
  if (!r.started) return "failed: " + r.error;
  if (r.timed_out) return "failed: " + program + " timed out";
  if (r.exit_status != 0) {
    std::string out = r.output.substr(0, 200);
    std::replace(out.begin(), out.end(), '\n', ' ');
    return "failed: " + program + " exited " + std::to_string(r.exit_status) +
           (out.empty() ? "" : ": " + out);
  }
  return "done";
}

StepResult FreezeQueue(const FollowUpEnv& env, const std::string& key_class,
                       const std::string& key) {
  const Config& c = *env.config;
  if (key_class != "sender") return Step("freeze_queue", false, "skipped: only for sender keys");
  const auto timeout = std::chrono::seconds(c.actions.timeout_seconds);
  std::vector<std::string> argv = c.actions.exim_command;
  argv.push_back("-bp");
  const ActionResult list = RunActionCommand(argv, "", timeout, kEximListCap);
  const std::string listed = Describe(list, argv[0]);
  if (listed != "done") return Step("freeze_queue", false, listed + " (listing the queue)");
  const std::vector<std::string> ids = QueuedIdsOfSender(list.output, key);
  if (ids.empty()) {
    return Step("freeze_queue", true, "done: no queued message from " + Printable(key));
  }
  size_t frozen = 0;
  std::string failures;
  for (size_t i = 0; i < ids.size(); i += kFreezeBatch) {
    std::vector<std::string> freeze = c.actions.exim_command;
    freeze.push_back("-Mf");
    const size_t end = std::min(ids.size(), i + kFreezeBatch);
    for (size_t j = i; j < end; ++j) freeze.push_back(ids[j]);
    const std::string r = Describe(RunActionCommand(freeze, "", timeout), freeze[0]);
    if (r == "done") {
      frozen += end - i;
    } else if (failures.empty()) {
      failures = r;  // the next batches are still tried
    }
  }
  if (!failures.empty()) {
    return Step("freeze_queue", false,
                "froze " + std::to_string(frozen) + " of " + std::to_string(ids.size()) +
                    " queued message(s); " + failures);
  }
  return Step("freeze_queue", true,
              "done: froze " + std::to_string(frozen) + " queued message(s); undo: exim -Mt ID");
}

std::vector<StepResult> Firewall(const FollowUpEnv& env, const Incident& incident) {
  const Config& c = *env.config;
  std::vector<StepResult> out;
  if (c.actions.firewall_command.empty()) {
    out.push_back(Step("firewall", false, "skipped: actions.firewall_command is not set"));
    return out;
  }
  std::vector<std::string> skipped;
  const std::vector<std::string> ips = FirewallTargets(env, incident, &skipped);
  for (const std::string& why : skipped) out.push_back(Step("firewall", false, "skipped: " + why));
  if (ips.empty() && skipped.empty()) {
    out.push_back(Step("firewall", false, "skipped: the incident names no IP"));
  }
  for (const std::string& ip : ips) {
    std::vector<std::string> argv = c.actions.firewall_command;
    for (std::string& a : argv) {
      for (size_t p = a.find("{ip}"); p != std::string::npos; p = a.find("{ip}", p + ip.size()))
        a.replace(p, 4, ip);
    }
    const std::string r = Describe(
        RunActionCommand(argv, "", std::chrono::seconds(c.actions.timeout_seconds)), argv[0]);
    out.push_back(Step("firewall", r == "done", r == "done" ? "done: " + ip : r + " (" + ip + ")"));
  }
  return out;
}

StepResult Command(const FollowUpEnv& env, const HandledIncident& h) {
  const Config& c = *env.config;
  if (c.actions.command.empty()) return Step("command", false, "");
  const std::vector<std::string>& argv = c.actions.command;
  const auto timeout = std::chrono::seconds(c.actions.timeout_seconds);
  const std::string json =
      HandledToJson(h).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  const ActionResult r = RunActionCommand(argv, json, timeout);
  if (!r.started) return Step("command", false, "could not start " + argv[0] + ": " + r.error);
  if (r.timed_out) {
    return Step("command", false,
                argv[0] + " timed out after " + std::to_string(timeout.count()) + " s (killed)");
  }
  if (r.term_signal != 0) {
    return Step("command", false, argv[0] + " killed by signal " + std::to_string(r.term_signal));
  }
  if (r.exit_status != 0) {
    return Step("command", false,
                argv[0] + " exit status " + std::to_string(r.exit_status) +
                    (r.output.empty() ? "" : "; output: " + Printable(r.output.substr(0, 300))));
  }
  return Step("command", true, "done");
}

// A message id as `exim -bp` prints it: 6-6-2 (before 4.97) or 6-11-4 base-62 characters.
bool IsMessageId(std::string_view id) {
  auto base62 = [](std::string_view part) {
    return std::all_of(part.begin(), part.end(), [](char c) {
      return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    });
  };
  if (id.size() == 16) {
    return id[6] == '-' && id[13] == '-' && base62(id.substr(0, 6)) && base62(id.substr(7, 6)) &&
           base62(id.substr(14, 2));
  }
  if (id.size() == 23) {
    return id[6] == '-' && id[18] == '-' && base62(id.substr(0, 6)) && base62(id.substr(7, 11)) &&
           base62(id.substr(19, 4));
  }
  return false;
}

// "25m", "3h", "2d", "45s", "1w" (a queue entry's age).
bool IsQueueAge(std::string_view w) {
  if (w.size() < 2) return false;
  const char unit = w.back();
  if (std::string_view("smhdw").find(unit) == std::string_view::npos) return false;
  w.remove_suffix(1);
  return std::all_of(w.begin(), w.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

bool IsWhmStep(const std::string& action) {
  return action == "suspend_outgoing" || action == "hold_outgoing" || action == "suspend_login" ||
         action == "suspend_account_outgoing" || action == "hold_account_outgoing" ||
         action == "suspend_account";
}

bool IsSuspension(const std::string& kind) {
  return kind == kBlockKindBlock || kind == "suspend_outgoing" || kind == "suspend_login" ||
         kind == "suspend_account_outgoing" || kind == "suspend_account";
}

bool IsHold(const std::string& kind) {
  return kind == "hold_outgoing" || kind == "hold_account_outgoing";
}

CpanelTarget ResolveTarget(WhmClient& whm, const std::string& key_class, const std::string& key,
                           int64_t owner_uid) {
  CpanelTarget t;
  if (key_class == "uid") {
    t.user = std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
                     !key.empty() && key.size() <= 10
                 ? UserOfUid(static_cast<uid_t>(std::stoul(key)))
                 : key;
    if (t.user.empty()) t.error = "no user with uid " + key;
  } else if (key_class == "cwd") {
    // The account that really submitted from the directory (the guard's table knows its uid),
    // never whoever owns the path: a customer can cd into another's home, swap the directory
    // for a symlink, or name a directory after another's.
    if (owner_uid >= 0) t.user = UserOfUid(static_cast<uid_t>(owner_uid));
    if (t.user.empty()) {
      t.error = "the uid that submitted from " + Printable(key) +
                " is unknown (it is never guessed from the path); act on uid:N instead";
    }
  } else if (key_class == "sender") {
    const size_t at = key.rfind('@');
    if (at == std::string::npos) {
      t.user = key;  // cPanel's own login
    } else {
      const WhmResult r = whm.DomainOwner(key.substr(at + 1), &t.user);
      if (!r.ok || t.user.empty()) {
        t.user.clear();
        t.error = "no owner of " + Printable(key.substr(at + 1)) + " in WHM: " + r.reason;
      } else {
        t.mailbox = key;
      }
    }
  } else {
    t.error = "a " + key_class + " key has no cPanel account";
  }
  return t;
}

StepResult RunWhmStep(const FollowUpEnv& env, const std::string& step, bool undo,
                      KeyClass key_class, const std::string& table_key,
                      const std::string& incident_key_class, const std::string& incident_key,
                      const std::string& who, const std::string& reason, int64_t owner_uid) {
  const std::string name = undo ? "un" + step : step;
  if (env.whm == nullptr || env.config->whm.token.empty()) {
    return Step(name, false, "skipped: whm.token is not set");
  }
  std::string error;
  bool active = false;
  if (!ActiveRow(*env.store, key_class, table_key, step, &active, &error)) {
    return Step(name, false, "failed: " + error);
  }
  if (!undo && active) return Step(name, true, "already");
  if (undo && !active) {
    // Not ours to undo by record, but the admin asked: still tell WHM (idempotent there).
  }
  const CpanelTarget target = ResolveTarget(*env.whm, incident_key_class, incident_key, owner_uid);
  if (!target.error.empty()) return Step(name, false, "skipped: " + target.error);
  WhmCall call;
  std::string why;
  if (!PlanCall(step, undo, target, &call, &why)) return Step(name, false, "skipped: " + why);
  const WhmResult r = call.mailbox
                          ? env.whm->Mailbox(call.mailbox_action, target.user, target.mailbox)
                          : env.whm->Account(call.account_action, target.user, reason);
  const std::string what = call.mailbox ? target.mailbox : "account " + target.user;
  if (!r.ok) {
    return Step(name, false,
                "failed: " + what + ": " + r.reason + (r.transient ? " (WHM unreachable)" : ""));
  }
  const int64_t now = Now(env);
  if (undo) {
    int removed = 0;
    env.store->RemoveBlock(key_class, table_key, step, now, who, &removed, &error);
  } else {
    StoredBlock b;
    b.key = table_key;
    b.key_class = key_class;
    b.kind = step;
    b.since = now;
    b.by = who;
    b.reason = reason;
    bool added = false;
    if (!env.store->AddBlock(b, &added, &error)) {
      return Step(name, true, "done: " + what + " (but not recorded: " + error + ")");
    }
  }
  return Step(name, true, std::string(r.already ? "already: " : "done: ") + what);
}

std::vector<std::string> FirewallTargets(const FollowUpEnv& env, const Incident& incident,
                                         std::vector<std::string>* skipped) {
  std::vector<IpRange> allow;
  for (const std::string& n : env.config->actions.firewall_allow) {
    IpRange r;
    std::string why;
    if (ParseIpRange(n, &r, &why)) allow.push_back(r);  // validated by the config
  }
  std::vector<std::string> candidates;
  if (incident.key_class == "ip") candidates.push_back(incident.key);
  candidates.insert(candidates.end(), incident.ips.begin(), incident.ips.end());
  std::vector<std::string> out;
  for (const std::string& raw : candidates) {
    std::string ip;
    if (!CanonicalIp(raw, &ip)) {
      skipped->push_back("not an IP address: " + Printable(raw));
      continue;
    }
    if (std::find(out.begin(), out.end(), ip) != out.end()) continue;  // once per IP
    std::string why;
    if (IsLoopbackIp(ip)) {
      why = "loopback";
    } else if (std::find(env.own_addresses.begin(), env.own_addresses.end(), ip) !=
               env.own_addresses.end()) {
      why = "one of this server's own addresses";
    } else if (IpInRanges(ip, allow)) {
      why = "in actions.firewall_allow";
    } else if (incident.spared_ips.count(raw) || incident.spared_ips.count(ip)) {
      why = "it also logged in successfully within the hour";
    }
    if (!why.empty()) {
      if (std::none_of(skipped->begin(), skipped->end(),
                       [&](const std::string& s) { return s.rfind(ip + ":", 0) == 0; })) {
        skipped->push_back(ip + ": " + why);
      }
      continue;
    }
    out.push_back(ip);
  }
  return out;
}

std::vector<std::string> QueuedIdsOfSender(std::string_view exim_bp, std::string_view sender) {
  // `exim -bp`: a queue entry is "AGE SIZE ID <SENDER>" (maybe " *** frozen ***"), from the
  // first column, age like 25m; recipients follow on indented lines, which are never read: a
  // recipient address is the attacker's choice.
  std::vector<std::string> ids;
  const std::string want = "<" + Lower(std::string(sender)) + ">";
  size_t pos = 0;
  while (pos < exim_bp.size()) {
    size_t eol = exim_bp.find('\n', pos);
    if (eol == std::string_view::npos) eol = exim_bp.size();
    const std::string_view line = exim_bp.substr(pos, eol - pos);
    pos = eol + 1;
    // A queue entry starts within the first columns ("%3d%c" age); recipients are indented.
    if (line.find_first_not_of(' ') > 3) continue;
    std::vector<std::string_view> words;
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && line[i] == ' ') ++i;
      const size_t start = i;
      while (i < line.size() && line[i] != ' ') ++i;
      if (i > start) words.push_back(line.substr(start, i - start));
    }
    if (words.size() < 4 || !IsQueueAge(words[0]) || !IsMessageId(words[2])) continue;
    if (Lower(std::string(words[3])) != want) continue;
    if (words.size() > 4 &&
        !(words.size() == 7 && words[4] == "***" && words[5] == "frozen" && words[6] == "***")) {
      continue;  // not the shape of a queue entry
    }
    if (std::find(ids.begin(), ids.end(), words[2]) == ids.end()) ids.emplace_back(words[2]);
  }
  return ids;
}

FollowUp RunFollowUp(const FollowUpEnv& env, const HandledIncident& h) {
  FollowUp f;
  const Config& c = *env.config;
  const Incident& i = h.incident;
  const bool admin = env.who != kAutomaticBy;
  if (!admin && !h.punish) {
    f.not_acted = !h.protected_note.empty() ? "never automatically: " + h.protected_note
                  : c.notify_only           ? "notify_only is set"
                  : c.dry_run               ? "dry_run is set"
                                            : i.trust_note;
    return f;
  }
  std::vector<std::string> steps;
  for (const RuleActions& r : c.actions.rules) {
    if (r.rule == i.rule) steps = r.actions;
  }
  // The table key of the incident's key (as the engine's block: uid keys numeric).
  const KeyClass table_class = TableClass(i.key_class);
  std::string table_key = i.key;
  if (i.key_class == "uid") table_key = UidOfUser(i.key);
  const std::string reason =
      "eximguard " + i.rule + ": " + std::to_string(i.count) + " > " + std::to_string(i.threshold);
  int64_t auto_steps = -1;  // counted on the first WHM step
  for (const std::string& s : steps) {
    if (s == "block") continue;  // the engine (or `act`) did it
    if (IsWhmStep(s)) {
      if (env.whm == nullptr || c.whm.token.empty()) continue;  // not a cPanel host: quietly
      if (i.key_class == "ip" || table_key.empty()) {
        f.steps.push_back(Step(
            s, false, "skipped: no cPanel account for " + i.key_class + " " + Printable(i.key)));
        continue;
      }
      std::string error;
      if (!admin) {
        if (auto_steps < 0) auto_steps = AutomaticStepsLastHour(*env.store, Now(env), &error);
        if (auto_steps >= int64_t{c.actions.max_auto_suspensions_per_hour}) {
          f.valve_tripped = true;
          f.steps.push_back(Step(s, false,
                                 "skipped: SAFETY VALVE: " + std::to_string(auto_steps) +
                                     " automatic suspensions in the last hour (max " +
                                     std::to_string(c.actions.max_auto_suspensions_per_hour) +
                                     "); only blocking and notifying"));
          continue;
        }
      }
      StepResult r = RunWhmStep(env, s, false, table_class, table_key, i.key_class, i.key, env.who,
                                reason, i.owner_uid);
      if (!admin && r.ok && r.outcome.rfind("done", 0) == 0) ++auto_steps;
      f.steps.push_back(std::move(r));
    } else if (s == "freeze_queue") {
      f.steps.push_back(FreezeQueue(env, i.key_class, i.key));
    } else if (s == "firewall") {
      for (StepResult& r : Firewall(env, i)) f.steps.push_back(std::move(r));
    } else if (s == "command") {
      StepResult r = Command(env, h);
      if (!r.outcome.empty()) f.steps.push_back(std::move(r));
    }
  }
  // Undo: unsuspend lifts blocks and suspensions, release lifts holds.
  std::string written =
      i.key_class == "uid" ? (table_key.empty() ? "" : "uid:" + table_key) : i.key;
  bool any_suspension = h.action == "block";
  bool any_hold = false;
  for (const StepResult& s : f.steps) {
    if (!s.ok) continue;
    any_suspension |= IsSuspension(s.action);
    any_hold |= IsHold(s.action);
  }
  if (!written.empty() && i.key_class != "ip") {
    if (any_suspension) f.undo = EximguardCommand("unsuspend", written);
    if (any_hold)
      f.undo += std::string(f.undo.empty() ? "" : "; ") + EximguardCommand("release", written);
  }
  return f;
}

Notice FollowUpNotice(const HandledIncident& h, const FollowUp& f) {
  Notice n = NoticeFromHandled(h);
  if (!f.undo.empty()) n.undo = f.undo;
  std::vector<std::string> done;
  for (const StepResult& s : f.steps) done.push_back(s.action + ": " + s.outcome);
  if (f.valve_tripped) {
    n.title = "SAFETY VALVE: automatic suspensions paused - " + n.title;
  }
  if (!f.not_acted.empty()) {
    n.action = "NOT ACTED ON: " + f.not_acted;
    if (h.id > 0) n.undo = "to act on it: eximguard act " + std::to_string(h.id);
  }
  if (!done.empty()) {
    std::string joined = n.action;
    for (const std::string& d : done) joined += (joined.empty() ? "" : "; ") + d;
    n.action = joined;
  }
  return n;
}

}  // namespace eg::sidecar
