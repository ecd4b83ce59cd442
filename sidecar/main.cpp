// main.cpp - the `eximguard` command line: parses arguments with CLI11 and calls one verb
// (verbs.h, daemon.h). Exit codes: 0 ok, 1 failure, 2 usage error (anything CLI11 refuses).
// Every verb takes --config FILE (default /etc/eximguard/eximguard.json) and --help.
//
//   eximguard start [--pidfile FILE]      follow the logs, detect, block, act (the service;
//                                         foreground, logs to stderr)
//   eximguard run                         one pass over the new log lines, then exit (cron)
//   eximguard rerun YYYY-MM-DD            a past day again, .gz rotations included
//   eximguard skip                        move the checkpoints to the ends of the logs
//   eximguard replay [--json] LOG...      what-if: the detectors over any logs, no action
//   eximguard incidents [--json] [--since S]
//   eximguard why KEY
//   eximguard suspend KEY [--reason R]    block KEY in the shared table now
//   eximguard unsuspend KEY               lift the block and what eximguard suspended in WHM
//   eximguard act ID                      act on incident ID as its rule's actions say
//   eximguard hold KEY | release KEY      WHM: hold the key's outgoing mail in the queue / let go
//   eximguard set KEY VALUE               a limit now and kept (N/min, N/hour, 0 = none, default)
//   eximguard info DOMAIN|EMAIL           cPanel owner, blocks, incidents, limits, counters
//   eximguard reset KEY | --all           counters to zero; the log rules judge afresh
//   eximguard list [--json]               blocked keys
//   eximguard whitelist add KEY [--note N] | remove KEY | list
//   eximguard top [-n N] [--json]
//   eximguard status [--json]
//   eximguard doctor [--log-minutes N]    check the installation end to end, with the fixes
//   eximguard config check | show
//   eximguard test-notify                 a test notice to every configured channel
//   eximguard import-eximmon FILE [-o F] [--force]   eximmon's config turned into ours

#include <CLI/CLI.hpp>
#include <cstddef>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "bot_verbs.h"
#include "config.h"
#include "daemon.h"
#include "eximmon_import.h"
#include "notify_verbs.h"
#include "verbs.h"
#include "verbs_doctor.h"

namespace {

CLI::Option* AddConfigOption(CLI::App* verb, std::string* path) {
  return verb->add_option("--config", *path, "configuration file")
      ->type_name("FILE")
      ->capture_default_str();
}

const char* kKeyHelp =
    "a key: an address (sender), a script directory (/home/u/public_html) or uid:N";

}  // namespace

int main(int argc, char** argv) {
  using namespace eg::sidecar;
  CLI::App app{"eximguard: stops outgoing spam on Exim servers while it is being sent."};
  app.set_version_flag("--version", "eximguard " EG_VERSION);
  app.require_subcommand(1);

  std::string config_path = kDefaultConfigPath;
  auto verb = [&](const char* name, const char* help) {
    CLI::App* v = app.add_subcommand(name, help);
    AddConfigOption(v, &config_path);
    return v;
  };

  DaemonOptions start_options;
  CLI::App* start = verb("start",
                         "Follow the Exim (and Dovecot) logs, detect abuse, block and act; stops "
                         "on SIGTERM, reloads on SIGHUP. Stays in the foreground (it does not "
                         "fork) and logs to stderr: systemd (packaging/eximguard.service), the "
                         "init script (packaging/eximguard.init) or `nohup eximguard start "
                         "--pidfile /run/eximguard.pid >>/var/log/eximguard.log 2>&1 &` run it "
                         "in the background.");
  start
      ->add_option("--pidfile", start_options.pidfile,
                   "write the daemon's pid to FILE while it runs (removed when it stops)")
      ->type_name("FILE");
  CLI::App* run = verb("run",
                       "Publish the policy, process the log lines appended since the last pass, "
                       "then exit (cron mode).");

  std::string date;
  CLI::App* rerun = verb("rerun",
                       "Process one past day of the logs again (rotated .gz too): incidents are "
                       "recorded, nothing is punished (eximguard act ID acts on one).");
  rerun->add_option("DATE", date, "the day, YYYY-MM-DD")->required();

  CLI::App* skip = verb("skip", "Move the checkpoints to the ends of the logs.");

  std::vector<std::string> files;
  bool json = false;
  CLI::App* replay = verb("replay",
                          "Run the detectors over log files (any kind, .gz too) and print the "
                          "incidents; no action is taken.");
  replay->add_option("LOG", files, "log files")->required()->check(CLI::ExistingFile);
  replay->add_flag("--json", json, "one JSON object per incident");

  std::string since = "24h";
  CLI::App* incidents = verb("incidents", "List recorded incidents.");
  incidents->add_option("--since", since, "all, N[smhd], YYYY-MM-DD[ HH:MM] or a unix time")
      ->capture_default_str();
  incidents->add_flag("--json", json, "print JSON");

  std::string key;
  CLI::App* why = verb("why", "Show what eximguard knows about a key, with the evidence.");
  why->add_option("KEY", key, kKeyHelp)->required();

  std::string reason;
  CLI::App* suspend = verb("suspend",
                           "Block a key in the shared table now (and, with whm.token, suspend its "
                           "outgoing mail in cPanel).");
  suspend->add_option("KEY", key, kKeyHelp)->required();
  suspend->add_option("--reason", reason, "why (kept in the audit trail)");
  CLI::App* unsuspend = verb("unsuspend", "Lift a block.");
  unsuspend->add_option("KEY", key, kKeyHelp)->required();
  std::string incident_id;
  CLI::App* act = verb("act",
                       "Act on a recorded incident as its rule's actions say (block, WHM, "
                       "firewall, command), also one whose evidence was not trusted.");
  act->add_option("ID", incident_id, "the incident's number (eximguard incidents)")->required();

  CLI::App* hold = verb("hold", "cPanel (WHM): hold the key's outgoing mail in Exim's queue.");
  hold->add_option("KEY", key, kKeyHelp)->required();
  CLI::App* release = verb("release", "cPanel (WHM): release a hold on the key's outgoing mail.");
  release->add_option("KEY", key, kKeyHelp)->required();

  std::string limit_value;
  CLI::App* set_limit = verb("set",
                             "Set a limit now (shared table and detectors) and keep it across "
                             "restarts; `set KEY default` goes back to the config's.");
  set_limit
      ->add_option("KEY", key,
                   "an address, a script directory, uid:N, or a class (sender, cwd, uid) for "
                   "its default")
      ->required();
  set_limit
      ->add_option("VALUE", limit_value,
                   "N/min, N/hour or both (2/min,100/hour); 0 = unlimited; default")
      ->required();

  std::string what;
  CLI::App* info = verb("info",
                        "Who owns a domain in cPanel (WHM), and what eximguard knows about it "
                        "or one address: blocks, incidents, whitelist, limits, counters.");
  info->add_option("DOMAIN|EMAIL", what, "example.com or user@example.com")->required();

  bool reset_all = false;
  CLI::App* reset = verb("reset",
                         "Set a key's counters to zero (or every key's with --all); the log "
                         "rules judge it afresh from now. Blocks stay (see unsuspend).");
  CLI::Option* reset_key = reset->add_option("KEY", key, kKeyHelp);
  CLI::Option* reset_all_flag = reset->add_flag("--all", reset_all, "every key");
  reset_key->excludes(reset_all_flag);
  reset_all_flag->excludes(reset_key);
  reset->callback([&] {
    if (!reset_all && key.empty()) throw CLI::ValidationError("reset", "give a KEY or --all");
  });

  CLI::App* list = verb("list", "List blocked keys.");
  list->add_flag("--json", json, "print JSON");

  CLI::App* whitelist = app.add_subcommand("whitelist", "Add, remove or list whitelisted keys.");
  whitelist->require_subcommand(1);
  std::string note;
  CLI::App* wl_add = whitelist->add_subcommand("add", "Never limit a key.");
  AddConfigOption(wl_add, &config_path);
  wl_add->add_option("KEY", key, kKeyHelp)->required();
  wl_add->add_option("--note", note, "why (kept with the entry)");
  CLI::App* wl_remove = whitelist->add_subcommand("remove", "Remove a key from the whitelist.");
  AddConfigOption(wl_remove, &config_path);
  wl_remove->add_option("KEY", key, kKeyHelp)->required();
  CLI::App* wl_list = whitelist->add_subcommand("list", "List the whitelist.");
  AddConfigOption(wl_list, &config_path);

  size_t rows = 20;
  CLI::App* top = verb("top", "Show the busiest senders, scripts and uids.");
  top->add_option("-n", rows, "number of keys to show (0: all)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber)  // CLI11 2.1 would wrap "-1" into a size_t
      ->capture_default_str();
  top->add_flag("--json", json, "print JSON instead of a table");

  CLI::App* status = verb("status", "Is eximguard following the logs; counters and totals.");
  status->add_flag("--json", json, "print JSON");

  DoctorOptions doctor_options;
  CLI::App* doctor = verb("doctor",
                          "Check the installation end to end (Exim's ${dlfunc}, ACLs and "
                          "log_selector, the log, the table, the daemon, the config, the state "
                          "directory) and print the fix of each problem; exit 1 if any.");
  doctor
      ->add_option("--log-minutes", doctor_options.log_minutes,
                   "warn when exim_log was last written longer ago than this")
      ->type_name("N")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();

  CLI::App* config = app.add_subcommand("config", "Check or show the configuration.");
  config->require_subcommand(1);
  CLI::App* check = config->add_subcommand("check", "Validate the config; list every problem.");
  AddConfigOption(check, &config_path);
  CLI::App* show =
      config->add_subcommand("show", "Print the effective config (defaults filled in) as JSON.");
  AddConfigOption(show, &config_path);

  CLI::App* test_notify = verb("test-notify",
                               "Send a test notice to every configured channel (email, Telegram, "
                               "Slack, webhook) and say how each went.");

  std::string eximmon_file, import_output;
  bool import_force = false;
  CLI::App* import_eximmon = app.add_subcommand(
      "import-eximmon",
      "Turn an eximmon config (.eximmon.conf) into an eximguard config: on stdout, or in "
      "--output FILE (mode 0600).");
  import_eximmon
      ->add_option("FILE", eximmon_file, "eximmon's config, e.g. /opt/eximmon/.eximmon.conf")
      ->required();
  CLI::Option* import_out =
      import_eximmon
          ->add_option("--output,-o", import_output, "write it here (mode 0600), not to stdout")
          ->type_name("FILE");
  import_eximmon->add_flag("--force", import_force, "replace --output if it exists")
      ->needs(import_out);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;  // --help and --version exit 0
  }

  try {
    std::ostream& out = std::cout;
    std::ostream& err = std::cerr;
    if (*start) return RunDaemon(config_path, start_options, out, err);
    if (*run) {
      DaemonOptions once;
      once.once = true;
      return RunDaemon(config_path, once, out, err);
    }
    if (*rerun) return RerunVerb(config_path, date, out, err);
    if (*skip) return SkipVerb(config_path, out, err);
    if (*replay) {
      const bool named = replay->get_option("--config")->count() > 0;
      return ReplayVerb(config_path, named, files, json, out, err);
    }
    if (*incidents) return IncidentsVerb(config_path, since, json, out, err);
    if (*why) return WhyVerb(config_path, key, out, err);
    if (*suspend) return SuspendVerb(config_path, key, reason, CliUser(), out, err);
    if (*unsuspend) return UnsuspendVerb(config_path, key, CliUser(), out, err);
    if (*act) return ActVerb(config_path, incident_id, CliUser(), out, err);
    if (*hold) return HoldVerb(config_path, key, CliUser(), out, err);
    if (*release) return ReleaseVerb(config_path, key, CliUser(), out, err);
    if (*set_limit) return SetLimitVerb(config_path, key, limit_value, CliUser(), out, err);
    if (*info) return InfoVerb(config_path, what, out, err);
    if (*reset) return ResetVerb(config_path, key, reset_all, CliUser(), out, err);
    if (*list) return ListVerb(config_path, json, out, err);
    if (*wl_add) return WhitelistVerb(config_path, "add", key, note, CliUser(), out, err);
    if (*wl_remove) return WhitelistVerb(config_path, "remove", key, note, CliUser(), out, err);
    if (*wl_list) return WhitelistVerb(config_path, "list", key, note, CliUser(), out, err);
    if (*top) return TopVerb(config_path, rows, json, out, err);
    if (*status) return StatusVerb(config_path, json, out, err);
    if (*doctor) return DoctorVerb(config_path, doctor_options, out, err);
    if (*test_notify) return TestNotifyVerb(config_path, out, err);
    if (*import_eximmon) {
      return ImportEximmonVerb(eximmon_file, import_output, import_force, out, err);
    }
    if (*check) return ConfigCheckVerb(config_path, out, err);
    if (*show) return ConfigShowVerb(config_path, out, err);
  } catch (const std::exception& e) {
    std::cerr << "eximguard: " << e.what() << "\n";
    return kExitFailure;
  }
  return kExitUsage;
}
