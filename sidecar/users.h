// users.h - local user names <-> numeric uids, from the passwd database.
//
// Exim's log shows a local submitter by NAME (U=), while the shared table keys uids by number
// (the guard gets $originator_uid) and the config writes them "uid:N". These two functions
// translate between the two.
//
// CONTRACT
//   Callers: the engine (blocks of uid incidents, config keys for the detectors), the daemon
//   (reconcile ledger), the CLI verbs (audit names, `why`). Reentrant (getpwnam_r/getpwuid_r);
//   each call may read /etc/passwd or ask NSS, so callers on a hot path cache the answer.

#ifndef EXIMGUARD_SIDECAR_USERS_H_
#define EXIMGUARD_SIDECAR_USERS_H_

#include <sys/types.h>

#include <string>

namespace eg::sidecar {

// The numeric uid (decimal text) of a user name, or "" when this host has no such user. A name
// that is all digits is taken as a uid already.
std::string UidOfUser(const std::string& name);

// The name of a uid, or "" when this host has no such user.
std::string UserOfUid(uid_t uid);

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_USERS_H_
