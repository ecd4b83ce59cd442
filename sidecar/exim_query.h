// exim_query.h - asks the installed Exim about itself (`exim -bV`, `exim -bP ...`) and reads its
// list of local domains, for hosts without cPanel's /etc/localdomains (Debian: the domains are
// Exim's own `domainlist local_domains`).
//
// SUMMARY
//   EximAnswer a = RunExim(config.actions.exim_command, {"-bP", "log_selector"});
//   std::string v = EximOptionValue(a.output, "log_selector");  // "+pid +arguments ..."
//   EximDomainList d;
//   ReadEximLocalDomains(config.actions.exim_command, &d, &error);  // d.domains, d.notes
//
// CONTRACT
//   - Callers: `doctor` (every Exim check), and whoever loads local domains when the config
//     says "local_domains_from_exim": true (LoadLocalDomains: the daemon, rerun, replay).
//   - `exim_command` is the argv prefix of Exim (actions.exim_command: "/usr/sbin/exim", or
//     ["/usr/sbin/exim4", "-C", "/path/test.conf"] in tests); arguments are appended. It runs
//     with RunActionCommand (action_command.h): no shell, killed after kEximTimeout, output
//     capped. Nothing here throws but std::bad_alloc; failures come back as text.
//   - The domain list is expanded the way Exim reads it: the `<X` separator prefix, `::` for a
//     literal colon, `@` = primary_hostname, literal domains (lowercased), `+name` (another
//     domainlist, asked from Exim; at most 8 deep), `lsearch;FILE` (and its `*`, `*@`,
//     `partial-` forms: the file's keys), `dsearch;DIR` (the directory's entry names). What
//     cannot be listed (wildcards `*.x`, regular expressions, `!negation`, `@[]`, `@mx_*`,
//     other lookups) is left out and named in `notes`, so the caller can say so.
//   - Thread safety: no shared state; each call starts Exim processes.

#ifndef EXIMGUARD_SIDECAR_EXIM_QUERY_H_
#define EXIMGUARD_SIDECAR_EXIM_QUERY_H_

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"

namespace eg::sidecar {

inline constexpr std::chrono::seconds kEximTimeout{15};

struct EximAnswer {
  bool ok = false;     // started and exited 0
  std::string output;  // stdout and stderr
  std::string error;   // why not ok: not started, timed out, exit status (with the output)
};

EximAnswer RunExim(const std::vector<std::string>& exim_command,
                   const std::vector<std::string>& args);

// The value of `name` in `exim -bP` output: the text after "name = " (or after
// "domainlist name = " for a named list) on its line, trimmed; "" when absent.
std::string EximOptionValue(std::string_view output, std::string_view name);

struct EximDomainList {
  std::vector<std::string> domains;  // lowercased, each once, in list order
  std::vector<std::string> notes;    // items left out, each with the reason
};

// What a list expansion needs from Exim: primary_hostname, and the value of another named
// domain list ("" + false when it does not exist).
struct EximLists {
  std::string primary_hostname;
  std::function<bool(const std::string& name, std::string* value)> named_list;
};

// Expands a domain list's value (what follows "domainlist local_domains = ") into `out`.
void ExpandEximDomainList(std::string_view value, const EximLists& lists, EximDomainList* out);

// `exim -bP +local_domains` (and primary_hostname, and any +name it uses) expanded; false when
// Exim could not be asked or has no local_domains list (*error says why).
bool ReadEximLocalDomains(const std::vector<std::string>& exim_command, EximDomainList* out,
                          std::string* error);

// The local domains the detectors use: local_domains_file's (ReadDomainsFile, engine.h) and,
// when local_domains_from_exim is set, Exim's own list. False only when the file is unreadable
// (*error); Exim that cannot be asked is a *note ("" when none): the file's domains still apply.
bool LoadLocalDomains(const Config& config, std::vector<std::string>* out, std::string* note,
                      std::string* error);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_EXIM_QUERY_H_
