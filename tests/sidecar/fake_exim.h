// fake_exim.h - a stand-in for Exim in the sidecar tests: a /bin/sh script that answers the
// questions eximguard asks (`-bV`, `-bP NAME`) with fixed text, as a Debian or cPanel Exim
// prints it, and anything else with exit 2 and a message. The e2e tests use the real Exim.
//
// Contract: WriteFakeExim() writes the script (mode 0755) and returns its path, for
// actions.exim_command. Answers are keyed by the arguments joined with one space. Throws
// std::runtime_error if the file cannot be written.

#ifndef EXIMGUARD_TESTS_SIDECAR_FAKE_EXIM_H_
#define EXIMGUARD_TESTS_SIDECAR_FAKE_EXIM_H_

#include <map>
#include <string>

#include "sidecar_test_util.h"

namespace eg::sidecar::testing {

struct FakeAnswer {
  std::string output;
  int code = 0;
};

inline std::string WriteFakeExim(const std::string& path,
                                 const std::map<std::string, FakeAnswer>& answers) {
  std::string script = "#!/bin/sh\ncase \"$*\" in\n";
  for (const auto& [args, answer] : answers) {
    script += "'" + args + "')\ncat <<'EG_FAKE_EXIM_EOF'\n" + answer.output +
              (answer.output.empty() || answer.output.back() == '\n' ? "" : "\n") +
              "EG_FAKE_EXIM_EOF\nexit " + std::to_string(answer.code) + ";;\n";
  }
  script += "*) echo \"fake exim: unexpected arguments: $*\" >&2; exit 2;;\nesac\n";
  WriteFile(path, script, 0755);
  return path;
}

// What Debian 12's exim4-daemon-heavy prints for -bV (abridged).
inline const char* kDebianBv =
    "Exim version 4.96 #2 built 26-Nov-2026 14:26:47\n"
    "Copyright (c) University of Cambridge, 1995 - 2018\n"
    "Support for: crypteq iconv() IPv6 PAM Perl Expand_dlfunc GnuTLS TLS_resume "
    "move_frozen_messages Content_Scanning DANE DKIM DNSSEC Event I18N OCSP PIPECONNECT PRDR "
    "PROXY Queue_Ramp SOCKS SPF SRS TCP_Fast_Open\n"
    "Configure owner: 0:0\n";

// exim4-daemon-light: no Expand_dlfunc.
inline const char* kLightBv =
    "Exim version 4.96 #2 built 26-Nov-2026 14:26:47\n"
    "Support for: crypteq iconv() IPv6 GnuTLS TLS_resume move_frozen_messages DANE DKIM DNSSEC "
    "Event I18N OCSP PIPECONNECT PRDR PROXY Queue_Ramp SOCKS SRS TCP_Fast_Open\n";

}  // namespace eg::sidecar::testing

#endif  // EXIMGUARD_TESTS_SIDECAR_FAKE_EXIM_H_
