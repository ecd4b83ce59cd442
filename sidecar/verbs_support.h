// verbs_support.h - small pieces the verbs of verbs_limits.cpp and verbs_info.cpp share: load the
// config and open the state store, read a key from the command line, put a change into force
// (publish to the shared table, SIGHUP the daemon), show a key's live counters.
//
// CONTRACT
//   Callers: the CLI verbs (verbs.h, bot_verbs.h). Each function writes what it did to `out`
//   and every problem to `err`, one line each, and never throws but std::bad_alloc. No global
//   state; the daemon is found through its pid file (FollowerPid, daemon.h).

#ifndef EXIMGUARD_SIDECAR_VERBS_SUPPORT_H_
#define EXIMGUARD_SIDECAR_VERBS_SUPPORT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "config.h"
#include "policy_key.h"
#include "state_store.h"
#include "table.h"

namespace eg::sidecar {

// The config and its state store.
struct VerbState {
  Config config;
  std::unique_ptr<StateStore> store;
};

// LoadConfig() and StateStore::Open(); false after writing every error to err.
bool LoadVerbState(const std::string& config_path, VerbState* state, std::ostream& err);

// A key as written on the command line (policy_key.h); sender keys are lowercased, as the table
// and the detectors treat them. False after saying why on err.
bool ParseCommandKey(const std::string& written, PolicyKey* key, std::ostream& err);

// Publishes the config and the store into the shared table at once; says so on out. False
// (and why on err) when the table could not be published.
bool PublishNow(const VerbState& state, std::ostream& out, std::ostream& err);

// Signals the running daemon (SIGHUP) so its detectors reload; says so on out when there is one.
void TellDaemon(const Config& config, std::ostream& out);

// "3 in the last minute, 40 in the last hour, 0 refused; last seen 2026-11-01 10:00:00".
std::string CountersText(const SlotView& slot);

// The shared table's slots seen within the last two hours whose key (class and label, as a
// PolicyKey) `match` accepts; false when there is no table (*error says why).
bool LiveSlots(const Config& config, const std::function<bool(const PolicyKey&)>& match,
               std::vector<SlotView>* out, std::string* error);

// One line per limit set with `eximguard set`: "sender a@example.com 2/min (by cli:root at
// 2026-11-01 10:00:00)"; a class default reads "sender (class default) ...".
std::string StoredLimitText(const StoredLimit& limit);

// When the state store exists (it is not created), writes a note to `note` listing the limits
// set with `eximguard set` that apply on top of the config file; nothing when there are none.
void NoteStoredLimits(const Config& config, std::ostream& note);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_VERBS_SUPPORT_H_
