// bot_verbs.h - the verbs the admin bots need that the CLI does not have yet: hold/release a
// key's outgoing mail and set a per-key limit. Same contract as verbs.h: they write what they
// did to `out` and every problem to `err`, return kExitOk / kExitFailure / kExitUsage, and audit
// the change under `who` ("telegram:ID", "slack:ID", CliUser()).
//
// CONTRACT
//   Callers: bot_commands.cpp, main.cpp. HoldVerb/ReleaseVerb are in verbs_state.cpp,
//   SetLimitVerb in verbs_limits.cpp (VALUE: limit_value.h).

#ifndef EXIMGUARD_SIDECAR_BOT_VERBS_H_
#define EXIMGUARD_SIDECAR_BOT_VERBS_H_

#include <ostream>
#include <string>

namespace eg::sidecar {

// `hold KEY` / `release KEY`: the key's outgoing mail is queued and held / released.
int HoldVerb(const std::string& config_path, const std::string& key, const std::string& who,
             std::ostream& out, std::ostream& err);
int ReleaseVerb(const std::string& config_path, const std::string& key, const std::string& who,
                std::ostream& out, std::ostream& err);
// `set KEY VALUE`: a per-key limit (VALUE as the admin wrote it).
int SetLimitVerb(const std::string& config_path, const std::string& key, const std::string& value,
                 const std::string& who, std::ostream& out, std::ostream& err);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_BOT_VERBS_H_
