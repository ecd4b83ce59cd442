// follow_up.h - what happens to an incident after the engine recorded it (and blocked its key in
// the shared table): the rule's further actions (actions.rules, config.h) through cPanel's WHM
// API, Exim's queue, the firewall and the admin's command, and the notices that tell admins.
// Also the same WHM steps for the admin verbs (suspend, unsuspend, hold, release).
//
// SUMMARY
//   FollowUpEnv env{&config, &store, whm.get()};          // whm null when whm.token is unset
//   FollowUp f = RunFollowUp(env, incident_json);         // IncidentToJson + "id" + "action"
//   for (const StepResult& s : f.steps) log(s.action + ": " + s.outcome);
//   notifier.Post(...f.notice...);
//
// CONTRACT
//   - Callers: the daemon's action worker thread (one incident at a time, in order), the CLI
//     verbs and the bots. Blocking: WHM calls retry with backoff (whm_client.h), programs run
//     with actions.timeout_seconds.
//   - Who a key is in cPanel (ResolveTarget): a sender key "box@domain" is the mailbox `box@domain`
//     of the cPanel user that owns `domain` (WHM getdomainowner/domainuserdata); a sender key
//     without '@' (cPanel's own login as A= id) is that cPanel user; a uid key is the user of
//     that name; a cwd key is the owner of the directory (stat), else the USER of /home*/USER/.
//     Mailbox steps (suspend_outgoing, hold_outgoing, suspend_login) act on the mailbox, or on
//     the whole account's outgoing mail (WHM *_outgoing_email) when the key is an account;
//     suspend_login needs a mailbox.
//   - State: every WHM step that succeeds is a row in the store's blocks (kind = the step's
//     name, key and class as the table block's), so a second incident, a repeated admin
//     command or a restart never asks WHM twice (an active row = "already") and `list` and
//     `unsuspend` see it. A failed step leaves no row; it is reported (StepResult, notice).
//   - Safety valve: automatic WHM steps (by "eximguard") are counted over the last hour from
//     the audit trail; at actions.max_auto_suspensions_per_hour further automatic WHM steps
//     are skipped, the notice says so loudly, and only the table block (done before) stays.
//     Admin steps (verbs, bots) are never held back.
//   - freeze_queue: `exim -bp` (actions.exim_command + "-bp"), messages whose sender is the
//     key, then `exim -Mf ID...`. firewall: actions.firewall_command once per IP of the
//     incident, "{ip}" replaced. command: actions.command with the incident JSON on stdin.
//   - Nothing throws but std::bad_alloc; secrets never appear in a StepResult (whm_client.h).
//
// THREAD SAFETY
//   Stateless; the store and the WHM client are safe to share (their own locks).

#ifndef EXIMGUARD_SIDECAR_FOLLOW_UP_H_
#define EXIMGUARD_SIDECAR_FOLLOW_UP_H_

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config.h"
#include "notify.h"
#include "state_store.h"
#include "whm_client.h"

namespace eg::sidecar {

inline constexpr const char* kAutomaticBy = "eximguard";

// Block kinds of the WHM steps (the store's blocks.kind).
bool IsWhmStep(const std::string& action);
// Steps `unsuspend` undoes (besides the table block) and steps `release` undoes.
bool IsSuspension(const std::string& kind);
bool IsHold(const std::string& kind);

struct CpanelTarget {
  std::string user;     // the cPanel account; "" when unknown (error says why)
  std::string mailbox;  // the address when the key is a mailbox; "" when it is the account
  std::string error;
};

struct StepResult {
  std::string action;   // "hold_outgoing", "freeze_queue", ...
  bool ok = false;      // done, or already so
  std::string outcome;  // "done", "already", "skipped: ...", "failed: ..."
};

struct FollowUp {
  std::vector<StepResult> steps;
  bool valve_tripped = false;  // automatic WHM steps were skipped by the safety valve
  std::string undo;            // the commands that undo what was done
};

struct FollowUpEnv {
  const Config* config = nullptr;
  StateStore* store = nullptr;
  WhmClient* whm = nullptr;      // null: WHM steps are skipped ("whm.token is not set")
  std::function<int64_t()> now;  // unix time; default time(nullptr)
};

CpanelTarget ResolveTarget(WhmClient& whm, const std::string& key_class, const std::string& key);

// The rule's steps after "block" for a recorded incident (incident: IncidentToJson plus "id"
// and "action"), as the automatic actor.
FollowUp RunFollowUp(const FollowUpEnv& env, const nlohmann::ordered_json& incident);

// One WHM step (suspend_outgoing, hold_outgoing, suspend_login, suspend_account_outgoing,
// hold_account_outgoing, suspend_account) on a key for an admin (`who`), or its undo (undo
// true: unsuspend/release/unsuspendacct; the store row is deactivated). The table class and
// key are those of the table block (uid keys numeric).
StepResult RunWhmStep(const FollowUpEnv& env, const std::string& step, bool undo,
                      KeyClass key_class, const std::string& table_key,
                      const std::string& incident_key_class, const std::string& incident_key,
                      const std::string& who, const std::string& reason);

// The notice for an incident and what was done about it.
Notice FollowUpNotice(const nlohmann::ordered_json& incident, const FollowUp& f);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_FOLLOW_UP_H_
