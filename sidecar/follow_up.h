// follow_up.h - what happens to an incident after the engine recorded it (and, when it may,
// blocked its key in the shared table): the rule's further actions (actions.rules, config.h)
// through cPanel's WHM API, Exim's queue, the firewall and the admin's command, and the notice
// that tells admins. Also the same WHM steps for the admin verbs (suspend, unsuspend, hold,
// release, act).
//
// SUMMARY
//   FollowUpEnv env{&config, &store, whm.get()};          // whm null when whm.token is unset
//   FollowUp f = RunFollowUp(env, handled);               // the engine's HandledIncident
//   for (const StepResult& s : f.steps) log(s.action + ": " + s.outcome);
//   notifier.Post(FollowUpNotice(handled, f));
//
// CONTRACT
//   - Callers: the daemon's follow-up worker thread (one incident at a time, in order), `act`,
//     the CLI verbs and the bots. Blocking: WHM calls retry with backoff (whm_client.h),
//     programs run with actions.timeout_seconds.
//   - Trust: punitive steps (WHM suspensions and holds, freeze_queue, firewall, command) run only
//     for an incident with handled.punish (engine.h: trusted evidence, eximguard acting, key not
//     protected). For any other incident nothing runs; the notice says why and names the command
//     that acts on it (`eximguard act ID`), which an admin runs (env.who) and which then runs the
//     rule's steps as that admin.
//   - Who a key is in cPanel (ResolveTarget): a sender key "box@domain" is the mailbox `box@domain`
//     of the cPanel user that owns `domain` (WHM getdomainowner/domainuserdata); a sender key
//     without '@' (cPanel's own login as A= id) is that cPanel user; a uid key is the user of
//     that name; a cwd key is the account of the uid that SUBMITTED from it (the guard's table
//     records it: Incident::owner_uid), never the owner of the path (a customer can cd into
//     another's directory, or swap it for a symlink); unknown submitter: no WHM step.
//     Mailbox steps (suspend_outgoing, hold_outgoing, suspend_login) act on the mailbox, or on
//     the whole account's outgoing mail (WHM *_outgoing_email) when the key is an account;
//     suspend_login needs a mailbox. Without whm.token the WHM steps are left out quietly (a
//     host without cPanel), and `config check` says so once.
//   - State: every WHM step that succeeds is a row in the store's blocks (kind = the step's
//     name, key and class as the table block's), so a second incident, a repeated admin
//     command or a restart never asks WHM twice (an active row = "already") and `list` and
//     `unsuspend` see it. A failed step leaves no row; it is reported (StepResult, notice).
//   - Safety valve: automatic WHM steps (by "eximguard") are counted over the last hour from
//     the audit trail; at actions.max_auto_suspensions_per_hour further automatic WHM steps
//     are skipped, the notice says so loudly, and only the table block (done before) stays.
//     Admin steps (verbs, bots, act) are never held back.
//   - freeze_queue: `exim -bp` (actions.exim_command + "-bp"); only queue-entry lines are read
//     (age, size, a strictly valid message id, <sender>), never recipient lines; messages whose
//     sender is the key are frozen with `exim -Mf ID...` in batches, going on after a failed
//     batch. firewall: actions.firewall_command once per IP, "{ip}" replaced, for each IP that
//     inet_pton accepts and that is not loopback, one of this host's addresses, in
//     actions.firewall_allow, or spared (it logged in successfully within the hour). command:
//     actions.command with HandledToJson(handled) on stdin.
//   - Undo lines are pasted into a root shell: every key in them is ShellWord-quoted
//     (text_escape.h).
//   - Nothing throws but std::bad_alloc; secrets never appear in a StepResult (whm_client.h).
//
// THREAD SAFETY
//   Stateless; the store and the WHM client are safe to share (their own locks).

#ifndef EXIMGUARD_SIDECAR_FOLLOW_UP_H_
#define EXIMGUARD_SIDECAR_FOLLOW_UP_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "config.h"
#include "engine.h"
#include "notify.h"
#include "state_store.h"
#include "whm_client.h"

namespace eg::sidecar {

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
  std::string not_acted;       // why nothing punitive ran ("" when the rule's steps ran)
};

struct FollowUpEnv {
  const Config* config = nullptr;
  StateStore* store = nullptr;
  WhmClient* whm = nullptr;                // null: WHM steps are left out (no whm.token)
  std::function<int64_t()> now;            // unix time; default time(nullptr)
  std::string who = kAutomaticBy;          // who acts: eximguard itself, or the admin of `act`
  std::vector<std::string> own_addresses;  // this host's IPs (OwnAddresses()): never firewalled
};

// owner_uid: the uid that submitted the key's mail, from the guard's table (-1: unknown).
CpanelTarget ResolveTarget(WhmClient& whm, const std::string& key_class, const std::string& key,
                           int64_t owner_uid);

// The rule's steps after "block" for a recorded incident, as env.who.
FollowUp RunFollowUp(const FollowUpEnv& env, const HandledIncident& handled);

// The IPs of an incident that may be firewalled (see CONTRACT), canonical, each once; *skipped
// gets "IP: why" for the others.
std::vector<std::string> FirewallTargets(const FollowUpEnv& env, const Incident& incident,
                                         std::vector<std::string>* skipped);

// Message ids of queue entries in `exim -bp` output whose sender is `sender` (case-insensitive).
std::vector<std::string> QueuedIdsOfSender(std::string_view exim_bp, std::string_view sender);

// One WHM step (suspend_outgoing, hold_outgoing, suspend_login, suspend_account_outgoing,
// hold_account_outgoing, suspend_account) on a key for an admin (`who`), or its undo (undo
// true: unsuspend/release/unsuspendacct; the store row is deactivated). The table class and
// key are those of the table block (uid keys numeric).
StepResult RunWhmStep(const FollowUpEnv& env, const std::string& step, bool undo,
                      KeyClass key_class, const std::string& table_key,
                      const std::string& incident_key_class, const std::string& incident_key,
                      const std::string& who, const std::string& reason, int64_t owner_uid = -1);

// The notice for an incident and what was done about it.
Notice FollowUpNotice(const HandledIncident& handled, const FollowUp& f);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_FOLLOW_UP_H_
