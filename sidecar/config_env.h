// config_env.h - environment variables that override the config file, under eximmon's names.
//
// SUMMARY
//   eximmon (github.com/u007/eximmon), the tool many cPanel admins run today, is configured by
//   environment variables (API_TOKEN, MAX_PER_MIN, ...) whose lowercase names are also the keys of
//   its JSON file (.eximmon.conf). kEximmonSettings maps each of them to our key path, and
//   ApplyEnvOverrides() writes the variables that are set into the parsed config document BEFORE
//   it is validated, so a bad value is refused like any config value, with the key path and the
//   reason; NoteEnvSources() then names the variable in those messages. The same table drives
//   `eximguard import-eximmon` (eximmon_import.h).
//
// CONTRACT
//   - Callers: config.cpp (ParseConfig/LoadConfig, between parsing and validating) and
//     eximmon_import.cpp. Pure functions; the environment is only read through `getenv`.
//   - A variable that is unset or empty is ignored (eximmon treats "" as unset too). A set
//     variable replaces the file's value (eximmon: the environment wins over the file).
//   - Values are converted, never judged: digits become integers for numeric keys, comma lists
//     become JSON lists, WHM_API_HOST becomes a URL. Anything that does not convert is passed as
//     the string it is, so the validator refuses it with its usual reason.
//   - A key path whose parent in the document is not an object (the file is wrong there) is left
//     alone, so the validator reports the file's error; the variable is then not "applied".
//   - Thread safety: none needed (no state); `getenv` is called once per known variable.
//   - SECURITY: `applied` and every message hold variable names and key paths, never values;
//     API_TOKEN, TELEGRAM_BOT_TOKEN, SLACK_BOT_TOKEN and SLACK_APP_TOKEN are secrets and land only
//     in secret keys (IsSecretKey), whose validation errors never show the value.

#ifndef EXIMGUARD_SIDECAR_CONFIG_ENV_H_
#define EXIMGUARD_SIDECAR_CONFIG_ENV_H_

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace eg::sidecar {

// How a variable's text becomes a JSON value.
enum class EnvKind : uint8_t {
  kText,       // the string as is
  kCount,      // decimal digits -> an integer
  kWhmHost,    // "host" -> "https://host:2087" (eximmon dials host:2087); a URL stays as is
  kIntList,    // "1, 2" -> [1, 2] (entries that are not integers stay strings)
  kStringList  // "a, b" -> ["a", "b"] (spaces around entries dropped, empty entries dropped)
};

struct EximmonSetting {
  const char* name;      // the environment variable; lowercased, eximmon's JSON key
  const char* key_path;  // our key, dotted
  EnvKind kind;
  const char* meaning;  // for documentation and notes
};

// Every variable eximguard honours, in the order `applied` lists them. SLACK_APP_TOKEN is not
// eximmon's (its Slack bot has no Socket Mode) but the Slack convention for the xapp- token.
extern const EximmonSetting kEximmonSettings[13];

// eximmon settings that eximguard knowingly does not take, with the reason (for notes).
struct EximmonIgnored {
  const char* name;
  const char* why;
};
extern const EximmonIgnored kEximmonIgnored[1];

// The row for a variable or eximmon JSON key (case-insensitive, as Go's encoding/json matches
// keys); nullptr if none.
const EximmonSetting* FindEximmonSetting(std::string_view name);
const EximmonIgnored* FindEximmonIgnored(std::string_view name);

// The JSON value for `text` under `kind` (see EnvKind).
nlohmann::json ConvertEnvValue(EnvKind kind, std::string_view text);

// eximmon's WHM_API_HOST ("127.0.0.1", "server.example.com") as our whm.url.
std::string WhmUrlFromHost(std::string_view host);

using EnvLookup = std::function<const char*(const char*)>;

// Sets, in `document` (a parsed config, a JSON object), the key of every variable of
// kEximmonSettings that `getenv` returns non-empty, and appends its name to `applied` (may be
// null). Both JSON flavours: config.cpp parses into ordered_json.
void ApplyEnvOverrides(nlohmann::json& document, const EnvLookup& getenv,
                       std::vector<std::string>* applied);
void ApplyEnvOverrides(nlohmann::ordered_json& document, const EnvLookup& getenv,
                       std::vector<std::string>* applied);

// Appends " (from environment variable NAME)" to each error line
// "config <file>: <key path>[...]: <reason>" whose key path a variable of `applied` set.
void NoteEnvSources(const std::vector<std::string>& applied, std::vector<std::string>* errors);

// Appends " (from <source>)" to each error line "config <file>: <key path>[...]: <reason>" about
// `key_path` (a key or an entry of its list).
void NoteKeySource(std::string_view key_path, const std::string& source,
                   std::vector<std::string>* errors);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_CONFIG_ENV_H_
