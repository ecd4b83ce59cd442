// follow_up.cpp - see follow_up.h.

#include "follow_up.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <set>
#include <sstream>

#include "action_command.h"
#include "users.h"

namespace eg::sidecar {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kEximListCap = 64u << 20;  // `exim -bp` output read for freeze_queue
constexpr size_t kFreezeBatch = 200;        // message ids per `exim -Mf`

int64_t Now(const FollowUpEnv& env) {
  return env.now ? env.now() : static_cast<int64_t>(std::time(nullptr));
}

std::string Str(const Json& j, const char* k) {
  auto it = j.find(k);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
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
  // `exim -bp`: "  25m  2.9K 1tABCD-000001-AB <sender@x>" then indented recipients.
  std::vector<std::string> ids;
  const std::string want = "<" + Lower(key) + ">";
  std::istringstream in(list.output);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string age, size, id, sender;
    if (!(f >> age >> size >> id >> sender)) continue;
    if (id.find('-') == std::string::npos || Lower(sender) != want) continue;
    ids.push_back(id);
  }
  if (ids.empty()) return Step("freeze_queue", true, "done: no queued message from " + key);
  for (size_t i = 0; i < ids.size(); i += kFreezeBatch) {
    std::vector<std::string> freeze = c.actions.exim_command;
    freeze.push_back("-Mf");
    for (size_t j = i; j < std::min(ids.size(), i + kFreezeBatch); ++j) freeze.push_back(ids[j]);
    const std::string r = Describe(RunActionCommand(freeze, "", timeout), freeze[0]);
    if (r != "done") return Step("freeze_queue", false, r);
  }
  return Step(
      "freeze_queue", true,
      "done: froze " + std::to_string(ids.size()) + " queued message(s); undo: exim -Mt ID");
}

std::vector<StepResult> Firewall(const FollowUpEnv& env, const Json& incident) {
  const Config& c = *env.config;
  std::vector<StepResult> out;
  if (c.actions.firewall_command.empty()) {
    out.push_back(Step("firewall", false, "skipped: actions.firewall_command is not set"));
    return out;
  }
  std::vector<std::string> ips;
  if (Str(incident, "class") == "ip") ips.push_back(Str(incident, "key"));
  if (auto it = incident.find("ips"); it != incident.end() && it->is_array()) {
    for (const auto& ip : *it) {
      if (ip.is_string() && std::find(ips.begin(), ips.end(), ip.get<std::string>()) == ips.end())
        ips.push_back(ip.get<std::string>());
    }
  }
  if (ips.empty()) out.push_back(Step("firewall", false, "skipped: the incident names no IP"));
  for (const std::string& ip : ips) {
    if (ip.find_first_not_of("0123456789abcdefABCDEF.:") != std::string::npos) {
      out.push_back(Step("firewall", false, "skipped: not an IP address: " + ip));
      continue;
    }
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

CpanelTarget ResolveTarget(WhmClient& whm, const std::string& key_class, const std::string& key) {
  CpanelTarget t;
  if (key_class == "uid") {
    t.user = key;
  } else if (key_class == "cwd") {
    struct stat st {};
    if (stat(key.c_str(), &st) == 0) t.user = UserOfUid(st.st_uid);
    if (t.user.empty() || t.user == "root") {
      t.user.clear();
      // /home/USER/..., /home2/USER/...
      if (key.rfind("/home", 0) == 0) {
        const size_t a = key.find('/', 1);
        const size_t b = a == std::string::npos ? a : key.find('/', a + 1);
        if (a != std::string::npos)
          t.user = key.substr(a + 1, b == std::string::npos ? b : b - a - 1);
      }
    }
    if (t.user.empty()) t.error = "no cPanel user owns " + key;
  } else if (key_class == "sender") {
    const size_t at = key.rfind('@');
    if (at == std::string::npos) {
      t.user = key;  // cPanel's own login
    } else {
      const WhmResult r = whm.DomainOwner(key.substr(at + 1), &t.user);
      if (!r.ok || t.user.empty()) {
        t.user.clear();
        t.error = "no owner of " + key.substr(at + 1) + " in WHM: " + r.reason;
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
                      const std::string& who, const std::string& reason) {
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
  const CpanelTarget target = ResolveTarget(*env.whm, incident_key_class, incident_key);
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

FollowUp RunFollowUp(const FollowUpEnv& env, const Json& incident) {
  FollowUp f;
  const Config& c = *env.config;
  const std::string rule = Str(incident, "rule");
  const std::string key = Str(incident, "key");
  const std::string klass = Str(incident, "class");
  const bool acting = !c.notify_only;
  std::vector<std::string> steps;
  for (const RuleActions& r : c.actions.rules) {
    if (r.rule == rule) steps = r.actions;
  }
  // The table key of the incident's key (as the engine's block: uid keys numeric).
  const KeyClass table_class = TableClass(klass);
  std::string table_key = key;
  if (klass == "uid") table_key = UidOfUser(key);
  const std::string reason = "eximguard " + rule + ": " +
                             std::to_string(incident.value("count", 0)) + " > " +
                             std::to_string(incident.value("threshold", 0));
  int64_t auto_steps = -1;  // counted on the first WHM step
  for (const std::string& s : steps) {
    if (s == "block") continue;    // the engine did it
    if (s == "command") continue;  // the daemon's action runner does it
    if (!acting) {
      f.steps.push_back(Step(s, false, "skipped: notify_only"));
      continue;
    }
    if (IsWhmStep(s)) {
      if (klass == "ip" || table_key.empty()) {
        f.steps.push_back(Step(s, false, "skipped: no cPanel account for " + klass + " " + key));
        continue;
      }
      std::string error;
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
      StepResult r =
          RunWhmStep(env, s, false, table_class, table_key, klass, key, kAutomaticBy, reason);
      if (r.ok && r.outcome.rfind("done", 0) == 0) ++auto_steps;
      f.steps.push_back(std::move(r));
    } else if (s == "freeze_queue") {
      f.steps.push_back(FreezeQueue(env, klass, key));
    } else if (s == "firewall") {
      for (StepResult& r : Firewall(env, incident)) f.steps.push_back(std::move(r));
    }
  }
  // Undo: unsuspend lifts blocks and suspensions, release lifts holds.
  std::string written = klass == "uid" ? (table_key.empty() ? "" : "uid:" + table_key) : key;
  bool any_suspension = Str(incident, "action") == "block";
  bool any_hold = false;
  for (const StepResult& s : f.steps) {
    if (!s.ok) continue;
    any_suspension |= IsSuspension(s.action);
    any_hold |= IsHold(s.action);
  }
  if (!written.empty() && klass != "ip") {
    if (any_suspension) f.undo = "eximguard unsuspend " + written;
    if (any_hold)
      f.undo += std::string(f.undo.empty() ? "" : "; ") + "eximguard release " + written;
  }
  return f;
}

Notice FollowUpNotice(const Json& incident, const FollowUp& f) {
  Notice n = NoticeFromIncident(incident);
  if (!f.undo.empty()) n.undo = f.undo;
  std::vector<std::string> done;
  for (const StepResult& s : f.steps) done.push_back(s.action + ": " + s.outcome);
  if (f.valve_tripped) {
    n.title = "SAFETY VALVE: automatic suspensions paused - " + n.title;
  }
  if (!done.empty()) {
    std::string joined = n.action;
    for (const std::string& d : done) joined += (joined.empty() ? "" : "; ") + d;
    n.action = joined;
  }
  return n;
}

}  // namespace eg::sidecar
