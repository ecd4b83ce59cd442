// shipped_configs.cpp - test config templates from the shipped snippets (see shipped_configs.h).

#include "shipped_configs.h"

#include <filesystem>
#include <regex>
#include <sstream>
#include <stdexcept>

#include "exim_harness.h"
#include "subprocess.h"

namespace eg::e2e {

const char* const kDebianConfigDir = EG_DEBIAN_CONFIG_DIR;
const char* const kExampleConfig = EG_EXAMPLE_CONFIG;
const char* const kCpanelDir = EG_CPANEL_DIR;

namespace fs = std::filesystem;

namespace {

// The debian/ macros file with the installed paths replaced by the sandbox's placeholders.
std::string SandboxedDebianMacros() {
  std::string macros = ReadFile(std::string(kDebianConfigDir) + "/main/00_eximguard_macros");
  if (macros.empty()) throw std::runtime_error("cannot read debian/main/00_eximguard_macros");
  macros = std::regex_replace(macros, std::regex("(^|\\n)EXIMGUARD_SO = [^\\n]*"),
                              "$1EXIMGUARD_SO = @GUARD_SO@");
  return std::regex_replace(macros, std::regex("(^|\\n)EXIMGUARD_SEGMENT = [^\\n]*"),
                            "$1EXIMGUARD_SEGMENT = @SEGMENT@");
}

// A fixed update-exim4.conf.conf, so the result does not depend on this machine's settings.
constexpr const char* kUpdateEximConf =
    "dc_eximconfig_configtype='local'\n"
    "dc_other_hostnames='eximguard-test.example'\n"
    "dc_local_interfaces='127.0.0.1'\n"
    "dc_readhost=''\n"
    "dc_relay_domains=''\n"
    "dc_minimaldns='true'\n"
    "dc_relay_nets='127.0.0.2'\n"
    "dc_smarthost=''\n"
    "CFILEMODE='644'\n"
    "dc_use_split_config='true'\n"
    "dc_hide_mailname=''\n"
    "dc_mailname_in_oh='true'\n"
    "dc_localdelivery='mail_spool'\n";

constexpr const char* kTestAuthenticator =
    "test_plain:\n"
    "  driver = plaintext\n"
    "  public_name = PLAIN\n"
    "  server_prompts = :\n"
    "  server_condition = ${if eq{$auth3}{@AUTH_PASSWORD@}}\n"
    "  server_set_id = $auth2\n"
    "  server_advertise_condition = true\n";

// Debian's generated config sets none of these (Exim refuses a main option set twice).
constexpr const char* kSandboxLines =
    "SPOOLDIR = @WORKDIR@/spool\n"
    "log_file_path = @WORKDIR@/log/%slog\n"
    "pid_file_path = @WORKDIR@/exim.pid\n"
    "exim_user = @EXIM_USER@\n"
    "exim_group = @EXIM_GROUP@\n"
    "queue_only = true\n"
    "deliver_drop_privilege = true\n";

}  // namespace

std::vector<std::string> EximguardBlocks(const std::string& text) {
  std::vector<std::string> blocks;
  std::istringstream in(text);
  std::string line;
  std::string block;
  bool inside = false;
  while (std::getline(in, line)) {
    if (!inside && line.find("# --- eximguard") != std::string::npos) inside = true;
    if (inside) block += line + "\n";
    if (inside && line.find("# --- end eximguard ---") != std::string::npos) {
      blocks.push_back(block);
      block.clear();
      inside = false;
    }
  }
  return blocks;
}

std::string SpliceTemplate(const std::string& work_dir, const std::string& rcpt_block,
                           const std::string& local_block, const std::string& main_lines) {
  std::string text = ReadFile(kConfigTemplate);
  std::vector<std::string> ours = EximguardBlocks(text);
  if (ours.size() != 2) throw std::runtime_error("the test template must have 2 eximguard blocks");
  text.replace(text.find(ours[0]), ours[0].size(), rcpt_block);
  text.replace(text.find(ours[1]), ours[1].size(), local_block);
  const std::string path = work_dir + "/spliced.conf.in";
  WriteFile(path, main_lines + text, 0644);
  return path;
}

std::string BuildDebianTemplate(const std::string& work_dir) {
  const std::string confdir = work_dir + "/exim4";
  fs::create_directories(confdir);
  fs::copy("/etc/exim4/conf.d", confdir + "/conf.d",
           fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  WriteFile(confdir + "/update-exim4.conf.conf", kUpdateEximConf, 0644);
  WriteFile(confdir + "/conf.d/main/00_eximguard_macros", SandboxedDebianMacros(), 0644);
  fs::copy_file(std::string(kDebianConfigDir) + "/main/89_eximguard_log_selector",
                confdir + "/conf.d/main/89_eximguard_log_selector");
  fs::copy_file(std::string(kDebianConfigDir) + "/acl/25_eximguard_acl",
                confdir + "/conf.d/acl/25_eximguard_acl");
  WriteFile(confdir + "/conf.d/auth/10_eximguard_test_plain", kTestAuthenticator, 0644);
  // The lines exim-config/debian/README.md has the admin add to each smtp transport.
  for (const char* t : {"30_exim4-config_remote_smtp", "30_exim4-config_remote_smtp_smarthost"}) {
    const std::string path = confdir + "/conf.d/transport/" + t;
    std::string text = ReadFile(path);
    const size_t driver = text.find("  driver = smtp\n");
    if (driver == std::string::npos) throw std::runtime_error("no driver = smtp in " + path);
    text.insert(driver + std::string("  driver = smtp\n").size(),
                ".ifdef EXIMGUARD_EVENT\n  event_action = EXIMGUARD_EVENT\n.endif\n");
    WriteFile(path, text, 0644);
  }

  const std::string generated = work_dir + "/generated.conf";
  SpawnOptions update;
  update.argv = {"/usr/sbin/update-exim4.conf", "--confdir", confdir, "--output", generated};
  update.stdout_path = update.stderr_path = work_dir + "/update-exim4.conf.out";
  ExitStatus status = Run(update, std::chrono::seconds(30));
  if (!status.Ok()) {
    throw std::runtime_error("update-exim4.conf failed: " + ReadFile(update.stdout_path));
  }
  const std::string template_path = work_dir + "/debian.conf.in";
  WriteFile(template_path, kSandboxLines + ReadFile(generated), 0644);
  return template_path;
}

}  // namespace eg::e2e
