// notify_verbs.h - `eximguard test-notify`: a test notice to every configured channel, now.
//
// CONTRACT
//   Callers: main.cpp. Loads the config (every error to `err`, exit 1), then sends one test
//   notice to each channel of ConfiguredChannels() (notify.h) synchronously, one after the
//   other, and prints one line per channel: "<channel>: ok" on `out`, or "<channel>: <reason>" on
//   `err`. Exit 0 only when every channel succeeded; no channel configured is exit 1 with "no
//   channel configured" and what to set. SECURITY: no token is ever printed (notify.h).

#ifndef EXIMGUARD_SIDECAR_NOTIFY_VERBS_H_
#define EXIMGUARD_SIDECAR_NOTIFY_VERBS_H_

#include <ostream>
#include <string>

namespace eg::sidecar {

int TestNotifyVerb(const std::string& config_path, std::ostream& out, std::ostream& err);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_NOTIFY_VERBS_H_
