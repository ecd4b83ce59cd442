// protected_keys.h - keys eximguard never punishes on its own: root and the system accounts
// (uids below UID_MIN of /etc/login.defs), their mail addresses on this host, eximguard's own
// notice sender, and the keys an admin listed in actions.protect.
//
// Why: an attacker who can make the sidecar blame a key would love to make it blame root - cron
// output and eximguard's own email notices go out as root, so a block of uid 0 silences the very
// alarms. The inline guard still limits these keys (a limit defers, it punishes nobody); only the
// automatic block, WHM steps, firewall and freeze are left out, and the notice says why. An admin
// may still act on them (`eximguard suspend`, `eximguard act`).
//
// CONTRACT
//   - Callers: the engine, before it blocks or hands an incident to the follow-up.
//   - Reads /etc/login.defs once per process (UID_MIN, default 1000) and the passwd database
//     (getpwnam_r/getpwuid_r) per call; callers on a hot path cache. Reentrant.

#ifndef EXIMGUARD_SIDECAR_PROTECTED_KEYS_H_
#define EXIMGUARD_SIDECAR_PROTECTED_KEYS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "config.h"

namespace eg::sidecar {

// UID_MIN of /etc/login.defs (the first uid of a person's account), 1000 when unset.
uint32_t UidMin();

// Parses login.defs text; `fallback` when it has no valid UID_MIN.
uint32_t UidMinFromLoginDefs(std::string_view text, uint32_t fallback);

// True, with *why ("uid 0 (root) is a system account", ...), when eximguard must not punish
// (key_class, key) automatically. key: the incident's key (a uid class key is a user name or a
// number); owner_uid: the uid a trusted source says submitted the key's mail (-1: unknown).
bool IsProtectedKey(const Config& config, std::string_view key_class, std::string_view key,
                    int64_t owner_uid, std::string* why);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_PROTECTED_KEYS_H_
