// main.cpp - the `eximguard` command line: parses arguments with CLI11 and calls one verb
// (verbs.h). Exit codes: 0 ok, 1 failure, 2 usage error (anything CLI11 refuses).
//
//   eximguard run          [--config FILE]
//   eximguard top          [--config FILE] [-n N] [--json]
//   eximguard config check [--config FILE]
//   eximguard config show  [--config FILE]

#include <CLI/CLI.hpp>
#include <cstddef>
#include <exception>
#include <iostream>
#include <string>

#include "config.h"
#include "verbs.h"

namespace {

CLI::Option* AddConfigOption(CLI::App* verb, std::string* path) {
  return verb->add_option("--config", *path, "configuration file")
      ->type_name("FILE")
      ->capture_default_str();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace eg::sidecar;
  CLI::App app{"eximguard: stops outgoing spam on Exim servers while it is being sent."};
  app.set_version_flag("--version", "eximguard " EG_VERSION);
  app.require_subcommand(1);

  std::string config_path = kDefaultConfigPath;
  CLI::App* run = app.add_subcommand(
      "run", "Create or reuse the shared-memory table and publish the policy from the config.");
  AddConfigOption(run, &config_path);

  size_t rows = 20;
  bool json = false;
  CLI::App* top = app.add_subcommand("top", "Show the busiest senders, scripts and uids.");
  AddConfigOption(top, &config_path);
  top->add_option("-n", rows, "number of keys to show (0: all)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber)  // CLI11 2.1 would wrap "-1" into a size_t
      ->capture_default_str();
  top->add_flag("--json", json, "print JSON instead of a table");

  CLI::App* config = app.add_subcommand("config", "Check or show the configuration.");
  config->require_subcommand(1);
  CLI::App* check = config->add_subcommand("check", "Validate the config; list every problem.");
  AddConfigOption(check, &config_path);
  CLI::App* show =
      config->add_subcommand("show", "Print the effective config (defaults filled in) as JSON.");
  AddConfigOption(show, &config_path);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kExitOk : kExitUsage;  // --help and --version exit 0
  }

  try {
    if (*run) return RunVerb(config_path, std::cout, std::cerr);
    if (*top) return TopVerb(config_path, rows, json, std::cout, std::cerr);
    if (*check) return ConfigCheckVerb(config_path, std::cout, std::cerr);
    if (*show) return ConfigShowVerb(config_path, std::cout, std::cerr);
  } catch (const std::exception& e) {
    std::cerr << "eximguard: " << e.what() << "\n";
    return kExitFailure;
  }
  return kExitUsage;
}
