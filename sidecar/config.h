// config.h - the sidecar's configuration: loading, validating and showing the JSON file.
//
// SUMMARY
//   LoadConfig() reads the file (default /etc/eximguard/eximguard.json), checks that it is a
//   regular file of at most 1 MiB that neither group nor others may access (mode & 077 == 0)
//   and that root (or the user running eximguard) owns, parses it (strict JSON, duplicate keys
//   refused) and validates every key against the table of known keys in config.cpp. Every key is
//   optional; missing ones take the defaults below. ConfigToJson() gives the effective config back
//   (defaults filled in), and MaskSecrets() hides secret values in it before it is shown.
//
// CONTRACT
//   - Callers: every CLI verb, first thing. LoadConfig()/ParseConfig() never throw for bad
//     input; they collect ALL problems, each as one line
//       config <file>: <key path>: <reason>
//     e.g. `config /etc/x.json: limits.sender.per_minute: expected a non-negative integer, got
//     "ten"`. Key paths are dotted; map keys that are not plain words are JSON-quoted
//     (overrides."a@example.com".per_hour) and list entries are indexed (whitelist[2]).
//   - The Config returned alongside errors is partly filled and must not be used.
//   - Adding a key: a field in Config, a row in kFields (config.cpp), a test. Rows give the
//     key's path, how to read and check it, and how to show it.
//   - Reads /etc/group (getgrnam) for exim_group; otherwise no global state.

#ifndef EXIMGUARD_SIDECAR_CONFIG_H_
#define EXIMGUARD_SIDECAR_CONFIG_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config_env.h"
#include "layout.h"
#include "policy_key.h"
#include "table.h"

namespace eg::sidecar {

inline constexpr const char* kDefaultConfigPath = "/etc/eximguard/eximguard.json";

enum class FailMode : uint8_t { kOpen, kDefer };

// Per-key limits from `overrides`. A missing field inherits the limit of the key's class.
struct Override {
  PolicyKey key;
  std::optional<uint32_t> per_minute;
  std::optional<uint32_t> per_hour;
};

// Thresholds of the sidecar's log rules (the key "detectors"; detectors.h says what each does).
struct RuleSettings {
  uint32_t max_ips_per_hour = 3;
  bool ignore_loopback_ips = true;
  uint32_t max_logins_per_hour = 100;
  uint32_t auth_failures = 5;
  uint32_t auth_failure_seconds = 300;
  uint32_t bounce_min_recipients = 20;
  uint32_t bounce_percent = 50;
  // ... and (from Exim's events) failures at this many recipient domains or more within the
  // hour: one MX refusing a customer's mail is not a storm. 0 = any.
  uint32_t bounce_min_domains = 5;
  uint32_t repeated_subject_recipients = 50;
  uint32_t repeated_subject_min_messages = 2;
  uint32_t cooldown_seconds = 3600;
  // throttled (the guard's own refusals, table_watch.h): a key refused this many recipients or
  // more within throttled_seconds. A password hammering the limit is what an admin wants to
  // hear about first. 0 = off.
  uint32_t throttled_refused = 20;
  uint32_t throttled_seconds = 600;
};

// Rule names, as incidents carry them.
inline constexpr const char* kRuleNames[] = {"rate_per_minute",  "rate_per_hour", "many_ips",
                                             "many_logins",      "auth_failures", "bounce_storm",
                                             "repeated_subject", "throttled"};
bool IsRuleName(std::string_view name);

// What the sidecar does on an incident (the key "actions").
//
// Each rule has a list of actions, run in this order whatever order they are written in:
//   block                     the key is refused in the shared table (sender, cwd, uid keys)
//   suspend_outgoing          cPanel: the mailbox may not send (UAPI Email::suspend_outgoing);
//                             for a uid/cwd key or a cPanel account's own address, the account's
//                             outgoing mail (WHM suspend_outgoing_email)
//   hold_outgoing             likewise, but mail is queued and held (hold_outgoing[_email])
//   suspend_login             cPanel: the mailbox may not log in (UAPI Email::suspend_login)
//   suspend_account_outgoing  WHM: the owning cPanel account's outgoing mail is suspended
//   hold_account_outgoing     WHM: the owning cPanel account's outgoing mail is held
//   suspend_account           WHM suspendacct: the whole cPanel account
//   freeze_queue              exim -Mf on the key's queued messages (sender keys)
//   firewall                  actions.firewall_command once per source IP of the incident
//   command                   actions.command with the incident as JSON on stdin
// Actions that need something not configured (whm.token, firewall_command, command) are
// skipped and the incident says so. WHM actions (suspend_*, hold_*) that run automatically count
// toward max_auto_suspensions_per_hour; past it eximguard only blocks and notifies.
inline constexpr const char* kActionNames[] = {"block",
                                               "suspend_outgoing",
                                               "hold_outgoing",
                                               "suspend_login",
                                               "suspend_account_outgoing",
                                               "hold_account_outgoing",
                                               "suspend_account",
                                               "freeze_queue",
                                               "firewall",
                                               "command"};
bool IsActionName(std::string_view name);

struct RuleActions {
  std::string rule;
  std::vector<std::string> actions;  // names from kActionNames, in kActionNames order
};

struct Actions {
  // Per rule (every rule of kRuleNames has a row). Defaults: rate_per_minute, rate_per_hour,
  // many_ips, many_logins, bounce_storm, repeated_subject: block, hold_outgoing, command.
  // auth_failures: firewall, command — failed logins say someone is guessing a password, not
  // that the account sends spam, so its mail is not stopped.
  std::vector<RuleActions> rules = DefaultRuleActions();
  std::vector<std::string> command;           // argv of the custom action; empty: none
  std::vector<std::string> firewall_command;  // argv; "{ip}" is replaced; empty: none
  // argv prefix of Exim for freeze_queue ("-bp", "-Mf ID..." are appended).
  std::vector<std::string> exim_command = {"/usr/sbin/exim"};
  uint32_t timeout_seconds = 10;
  uint32_t max_auto_suspensions_per_hour = 10;
  // Keys never punished automatically (besides root and the system accounts, protected_keys.h).
  std::vector<PolicyKey> protect;
  // Networks never firewalled (besides loopback, this host's own addresses and any IP that
  // logged in successfully within the hour).
  std::vector<std::string> firewall_allow;
  // How long an automatic block lasts, per rule, in minutes (0: until `unsuspend`). When it
  // lapses it is judged again: a key the guard still refuses for it is blocked once more.
  std::vector<std::pair<std::string, uint32_t>> block_minutes = DefaultBlockMinutes();

  static std::vector<RuleActions> DefaultRuleActions();
  static std::vector<std::pair<std::string, uint32_t>> DefaultBlockMinutes();
};

// actions.block_minutes of `rule` (0: never lapses).
uint32_t BlockMinutes(const Actions& actions, std::string_view rule);

// True when `rule`'s list has `action`.
bool RuleHasAction(const Actions& actions, std::string_view rule, std::string_view action);

// cPanel's WHM API (the key "whm").
struct WhmSettings {
  std::string url = "https://127.0.0.1:2087";
  std::string token;  // secret; "" = no WHM actions
  std::string user = "root";
  std::string ca_file;     // PEM to trust (cPanel's self-signed certificate)
  bool verify_tls = true;  // false only by an explicit opt-out
  uint32_t timeout_seconds = 10;
  uint32_t retries = 3;  // further attempts after a transient failure (timeout, 5xx)
  std::string proxy;     // Config::http_proxy (copied by the loader); "" = direct
};

// Where incidents and actions are told (the key "notify").
struct NotifySettings {
  std::vector<std::string> email;  // recipients; empty = no email
  std::string sendmail = "/usr/sbin/sendmail";
  std::string from;         // "" = eximguard@<hostname>
  std::string webhook_url;  // "" = none; receives one JSON object per message
  std::string webhook_ca_file;
  // More than digest_after messages within digest_seconds become one digest per
  // digest_seconds until the flood ends.
  uint32_t digest_after = 5;
  uint32_t digest_seconds = 60;
  std::string proxy;  // Config::http_proxy (copied by the loader); "" = direct
};

struct TelegramSettings {
  std::string api_url = "https://api.telegram.org";
  std::string token;               // secret; "" = no Telegram
  std::vector<int64_t> admin_ids;  // user ids that may change state
  std::string notify_chat_id;      // "" = no notifications to Telegram
  std::string ca_file;
  uint32_t poll_seconds = 30;  // getUpdates timeout (long polling)
  std::string proxy;           // Config::http_proxy (copied by the loader); "" = direct
};

struct SlackSettings {
  std::string api_url = "https://slack.com/api";
  std::string bot_token;               // secret, xoxb-...; "" = no Slack
  std::string app_token;               // secret, xapp-... (Socket Mode); "" = notifications only
  std::vector<std::string> admin_ids;  // Slack user ids that may change state
  std::string notify_channel;          // "" = no notifications to Slack
  std::string ca_file;
  std::string proxy;  // Config::http_proxy (copied by the loader); "" = direct (HTTP calls only)
};

// Dovecot's auth policy server inside `start` (the key "dovecot_policy"; dovecot_policy.h says
// what each threshold does, dovecot_policy_server.h the HTTP side).
struct DovecotPolicyConfig {
  bool enabled = false;
  std::string listen = "127.0.0.1:8744";  // loopback only
  std::string api_header = "X-API-Key";  // the header Dovecot sends (auth_policy_server_api_header)
  std::string api_secret;                // secret: its value; required when enabled
  // Failed logins of one IP within failure_seconds that get it refused; unset: the detectors'
  // auth_failures and auth_failure_seconds (DovecotFailures/DovecotFailureSeconds resolve them).
  std::optional<uint32_t> failures;
  std::optional<uint32_t> failure_seconds;
  uint32_t block_seconds = 900;
  uint32_t account_ips = 5;
  uint32_t tarpit_seconds = 3;
  uint32_t trusted_seconds = 3600;
  bool exempt_loopback = true;         // false only for tests
  std::vector<std::string> allow_ips;  // IPs and CIDRs, as written
};

struct Config {
  std::string path;  // the file it was read from
  std::string shm_name = "/eximguard";
  std::string state_dir = "/var/lib/eximguard";
  std::string exim_log = "/var/log/exim_mainlog";
  std::string exim_group;  // default: DefaultEximGroup()
  uint32_t capacity = 65536;
  uint32_t policy_capacity = 16384;
  // New keys one client IP / local uid may make per minute once the table is full where they
  // land (exim-dlfunc/layout.h, NEW-KEY BUDGET); 0: no budget.
  uint32_t new_key_budget = eg::kDefaultNewKeyBudget;
  bool dry_run = false;
  FailMode fail_mode = FailMode::kOpen;
  // Indexed by KeyClass; 0 means unlimited.
  Limit limits[kKeyClasses] = {{8, 100}, {5, 60}, {20, 300}};
  std::vector<Override> overrides;
  std::vector<PolicyKey> whitelist;
  std::vector<PolicyKey> blocklist;
  // Exim's relay_from_hosts: hosts whose SMTP mail the guard counts by envelope sender without
  // authentication (the ACL snippets test +relay_from_hosts). IPs or networks.
  std::vector<std::string> relay_hosts = {"127.0.0.1", "::1"};

  // The sidecar engine.
  std::string dovecot_log;  // "" = not followed
  bool log_utc = false;     // the logs' timestamps are UTC (Exim's timezone = UTC), not local
  bool count_internal = false;
  std::vector<std::string> local_domains;                // lowercased
  std::string local_domains_file = "/etc/localdomains";  // cPanel's list; a missing file is fine
  // Also Exim's own `domainlist local_domains` (exim -bP, exim_query.h): Debian has no
  // /etc/localdomains. Exim is asked through actions.exim_command.
  bool local_domains_from_exim = false;
  bool notify_only = false;  // record and notify, never block
  uint32_t retention_days = 30;
  RuleSettings detectors;
  Actions actions;

  // Acting and talking.
  // The proxy for every HTTP(S) call (WHM, Telegram, Slack, the webhook): "" = none, and then
  // the environment's http_proxy/https_proxy are ignored too (a token must not go to a proxy
  // nobody configured). http://, https:// or socks5h:// host[:port].
  std::string http_proxy;
  WhmSettings whm;
  NotifySettings notify;
  TelegramSettings telegram;
  SlackSettings slack;

  DovecotPolicyConfig dovecot_policy;
};

struct ConfigResult {
  Config config;
  std::vector<std::string> errors;       // empty: config is valid
  std::vector<std::string> env_applied;  // environment variables that overrode the file (names)
  bool ok() const { return errors.empty(); }
};

// Reads and validates the file at `path`.
ConfigResult LoadConfig(const std::string& path);

// Validates JSON text; `path` is only used in error messages and Config::path. Does not look
// at any file (so no mode check). With `getenv`, eximmon's environment variables override the
// text (config_env.h); LoadConfig passes the real environment, tests and imports do not.
ConfigResult ParseConfig(std::string_view text, const std::string& path,
                         const EnvLookup& getenv = nullptr);

// "Debian-exim" if that group exists, else "exim", else "mail" (cPanel's Exim group).
std::string DefaultEximGroup();

// The effective config, keys in table order, defaults filled in, override limits resolved.
// Feeding its dump() back to ParseConfig() gives the same Config.
nlohmann::ordered_json ConfigToJson(const Config& config);

// True for key names whose values are secrets: token, *_token, password, secret.
bool IsSecretKey(std::string_view name);

// Replaces, at any depth, the value of every secret key by "********" (empty strings stay
// empty, so `config show` still tells "unset" from "set").
void MaskSecrets(nlohmann::ordered_json& json);

// The limits that apply to an override (its own fields, else its class's).
Limit EffectiveLimit(const Config& config, const Override& o);

const char* FailModeName(FailMode mode);

// dovecot_policy.failures / failure_seconds, or the detectors' values they default to (the
// failures brought into 1..100, what the policy's memory bound assumes).
uint32_t DovecotFailures(const Config& config);
uint32_t DovecotFailureSeconds(const Config& config);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_CONFIG_H_
