// verbs.h - one function per CLI verb of `eximguard`; main.cpp only parses the command line.
//
// CONTRACT
//   Each verb takes its parsed options and the streams to write to, and returns the process
//   exit code: kExitOk, or kExitFailure after writing every problem to `err` (one per line).
//   Usage errors (kExitUsage) are detected by the command-line parser, not here. Verbs never
//   throw for bad input or a missing segment; std::bad_alloc and the like propagate to main.

#ifndef EXIMGUARD_SIDECAR_VERBS_H_
#define EXIMGUARD_SIDECAR_VERBS_H_

#include <cstddef>
#include <ostream>
#include <string>

namespace eg::sidecar {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

// `run`: validate the config, create or reuse the segment, publish the policy, repair.
int RunVerb(const std::string& config_path, std::ostream& out, std::ostream& err);

// `top`: the busiest keys (max_rows 0: all), as a table or as JSON.
int TopVerb(const std::string& config_path, size_t max_rows, bool json, std::ostream& out,
            std::ostream& err);

// `config check`: "config OK: <file>" and a summary, or every error.
int ConfigCheckVerb(const std::string& config_path, std::ostream& out, std::ostream& err);

// `config show`: the effective config as JSON, secrets masked.
int ConfigShowVerb(const std::string& config_path, std::ostream& out, std::ostream& err);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_VERBS_H_
