// eximmon_import.h - `eximguard import-eximmon FILE [--output F] [--force]`: an eximmon config
// (.eximmon.conf, JSON) turned into an eximguard config.
//
// SUMMARY
//   eximmon's keys are the lowercase names of its environment variables (api_token,
//   whm_api_host, max_per_min, telegram_bot_token, ...); config_env.h's kEximmonSettings maps
//   each to our key and says how its value converts. EximmonToConfig() does the mapping (only
//   the keys that were set), and ImportEximmonVerb() reads the file, maps it, validates the
//   result with ParseConfig() and writes it.
//
// CONTRACT
//   - Callers: main.cpp (the verb); tests. EximmonToConfig() is pure.
//   - EximmonToConfig() fails (false, `error`) only when the input is not a JSON object or names
//     one setting twice in different case (Go's encoding/json, which eximmon uses, matches keys
//     case-insensitively, so "API_TOKEN" is api_token). Everything else becomes a key of `ours`
//     or a line of `notes`: "not carried over: KEY (why)" for keys it does not take (unknown,
//     prefer_modern_uapi, a limit of 0), "note: ..." for what the admin should know (TLS
//     verification, Slack's Socket Mode token). Empty strings and nulls are unset in eximmon and
//     are skipped. Values of the wrong type are carried as they are, for ParseConfig to refuse.
//   - ImportEximmonVerb(): exit 0 ok; 1 when FILE cannot be read, is not JSON, the result is not
//     a valid config (each problem: our key path, the reason, and the eximmon key it came from),
//     or the output cannot be written; 2 (usage) when FILE is "". The config goes to `out` (with
//     its secrets: it is the admin's own config), or to `output`, created with mode 0600; an
//     existing `output` is refused unless `force` (then replaced atomically by rename, mode 0600
//     whatever the old file's). Notes go to `err`.
//   - SECURITY: `err` never holds a value of the eximmon file (only key names): not even a JSON
//     syntax error's context, which may quote a token. The file may be up to 1 MiB.
//   - Thread safety: none needed; the verb touches only FILE, `output` and a temporary file next
//     to it.

#ifndef EXIMGUARD_SIDECAR_EXIMMON_IMPORT_H_
#define EXIMGUARD_SIDECAR_EXIMMON_IMPORT_H_

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

namespace eg::sidecar {

bool EximmonToConfig(const nlohmann::json& eximmon, nlohmann::ordered_json* ours,
                     std::vector<std::string>* notes, std::string* error);

int ImportEximmonVerb(const std::string& file, const std::string& output, bool force,
                      std::ostream& out, std::ostream& err);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_EXIMMON_IMPORT_H_
