// shipped_configs.h - turns the ACL snippets eximguard ships (exim-config/) into test configs.
//
// Contract: each builder returns the path of a config template with the same @PLACEHOLDERS@ as
// exim-config/test/exim-test.conf.in, for SandboxOptions::config_template, so the snippets
// users install run in a real Exim as shipped (only the installed .so path and segment name
// are pointed at the sandbox's). Files are written under the caller's work_dir; failures throw
// std::runtime_error. Nothing here writes outside work_dir.

#ifndef EXIMGUARD_TESTS_E2E_SHIPPED_CONFIGS_H_
#define EXIMGUARD_TESTS_E2E_SHIPPED_CONFIGS_H_

#include <string>
#include <vector>

namespace eg::e2e {

extern const char* const kDebianConfigDir;  // exim-config/debian
extern const char* const kExampleConfig;    // exim-config/exim.conf.example
extern const char* const kCpanelDir;        // exim-config/cpanel

// The eximguard blocks of a config text: each from a line containing "# --- eximguard" to
// the next line containing "# --- end eximguard ---", both included, in order.
std::vector<std::string> EximguardBlocks(const std::string& text);

// Writes work_dir/spliced.conf.in: the test template with its two eximguard blocks (RCPT,
// then not-SMTP) replaced by the given ones and main_lines put first. Returns its path.
std::string SpliceTemplate(const std::string& work_dir, const std::string& rcpt_block,
                           const std::string& local_block, const std::string& main_lines);

// Builds, in work_dir, a config template from Debian's split configuration: a copy of
// /etc/exim4/conf.d with exim-config/debian/'s three files dropped in, the event_action line
// added to its two smtp transports (as README says), a test PLAIN authenticator, relay
// host 127.0.0.2, no DNS, run through update-exim4.conf (which only reads the copy), plus the
// sandbox's spool/log/user lines. Returns the template's path.
std::string BuildDebianTemplate(const std::string& work_dir);

}  // namespace eg::e2e

#endif  // EXIMGUARD_TESTS_E2E_SHIPPED_CONFIGS_H_
