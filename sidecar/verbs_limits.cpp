// verbs_limits.cpp - `eximguard set KEY VALUE`: a limit for one key, or a class's default, that
// takes effect in the shared table at once and is persisted in the state store (see
// bot_verbs.h, limit_value.h for VALUE).
//
// CONTRACT
//   KEY is a policy key (policy_key.h: an address, a script directory, uid:N) or a class name
//   (sender, cwd, uid) for that class's default. The limit is stored (audited under `who`), the
//   table is published from the config with the stored limits laid over it
//   (WithStoredLimits), and the running daemon gets SIGHUP so its detectors use it too. A bad
//   KEY or VALUE is kExitUsage and changes nothing. `set KEY default` drops what `set` stored
//   for KEY; the config's limit applies again. After publishing it says how many live keys the
//   change covers are already at or over the new limit (their next recipients are deferred;
//   nothing they sent before the change becomes an incident).

#include <algorithm>
#include <ctime>

#include "bot_verbs.h"
#include "limit_value.h"
#include "policy_from_state.h"
#include "text_escape.h"
#include "verbs.h"
#include "verbs_support.h"

namespace eg::sidecar {
namespace {

// "sender", "cwd", "uid": that class's default. False for anything else.
bool ClassOfName(const std::string& written, KeyClass* klass) {
  for (const KeyClass k : {KeyClass::kSender, KeyClass::kCwd, KeyClass::kUid}) {
    if (written == KeyClassName(k)) {
      *klass = k;
      return true;
    }
  }
  return false;
}

const StoredLimit* Find(const std::vector<StoredLimit>& limits, const PolicyKey& key) {
  for (const StoredLimit& l : limits) {
    if (l.key_class == key.klass && l.key == key.text) return &l;
  }
  return nullptr;
}

// The limit `key` gets from the config with `stored` laid over it; for a class default
// (key.text empty) the class's.
Limit Effective(const Config& config, const std::vector<StoredLimit>& stored,
                const PolicyKey& key) {
  return LimitFor(WithStoredLimits(config, stored), key);
}

// The whitelist of the config and of the store, as identities.
std::vector<std::string> WhitelistIds(VerbState& s) {
  std::vector<WhitelistEntry> wl;
  std::string error;
  std::vector<PolicyKey> keys = s.config.whitelist;
  if (s.store->ListWhitelist(&wl, &error)) {
    const std::vector<PolicyKey> more = WhitelistKeys(wl, nullptr);
    keys.insert(keys.end(), more.begin(), more.end());
  }
  std::vector<std::string> ids;
  for (const PolicyKey& k : keys) ids.push_back(Identity(k));
  return ids;
}

bool Listed(const std::vector<std::string>& ids, const PolicyKey& key) {
  return std::find(ids.begin(), ids.end(), Identity(key)) != ids.end();
}

// Says how many keys the change touched (key, or every key of its class for a class default)
// have already sent more than their new limit in the table's windows: the guard defers their
// next recipients until the windows fall under it. The sidecar records nothing for what they
// sent before the change (the detectors' rate floors, detectors.h).
void SayWhoIsOverAlready(VerbState& s, const std::vector<StoredLimit>& limits, const PolicyKey& key,
                         bool class_default, std::ostream& out) {
  const Config effective = WithStoredLimits(s.config, limits);
  const std::vector<std::string> white = WhitelistIds(s);
  const std::string id = Identity(key);
  std::vector<SlotView> slots;
  std::string error;
  const bool read = LiveSlots(
      s.config,
      [&](const PolicyKey& k) {
        return k.klass == key.klass && (class_default || Identity(k) == id) && !Listed(white, k);
      },
      &slots, &error);
  if (!read) return;  // no table: PublishNow has said so
  size_t over = 0;
  std::vector<std::string> names;
  for (const SlotView& slot : slots) {
    PolicyKey k;
    k.klass = slot.klass;
    k.text = slot.key;
    const Limit l = LimitFor(effective, k);
    const bool minute = l.per_minute != 0 && slot.minute >= l.per_minute;
    const bool hour = l.per_hour != 0 && slot.hour >= l.per_hour;
    if (!minute && !hour) continue;
    ++over;
    if (names.size() < 5) {
      names.push_back(Printable(slot.key) + " (" + std::to_string(slot.minute) + "/minute, " +
                      std::to_string(slot.hour) + "/hour)");
    }
  }
  out << "already at or over the new limit: " << over << (over == 1 ? " key" : " keys");
  for (size_t i = 0; i < names.size(); ++i) out << (i == 0 ? ": " : ", ") << names[i];
  if (over > names.size()) out << ", ...";
  out << "\n";
  if (over > 0) {
    out << "  their next recipients are deferred until their windows fall under it; what they "
           "sent before this change is never an incident\n";
  }
}

}  // namespace

int SetLimitVerb(const std::string& config_path, const std::string& written,
                 const std::string& value, const std::string& who, std::ostream& out,
                 std::ostream& err) {
  LimitChange change;
  std::string why;
  if (!ParseLimitValue(value, &change, &why)) {
    err << "set: VALUE " << why << "\n";
    return kExitUsage;
  }
  PolicyKey key;
  const bool class_default = ClassOfName(written, &key.klass);
  if (class_default) {
    key.written = written;
  } else if (!ParseCommandKey(written, &key, err)) {
    return kExitUsage;
  }
  const std::string label =
      std::string(KeyClassName(key.klass)) + " " + (class_default ? "(class default)" : key.text);
  VerbState s;
  if (!LoadVerbState(config_path, &s, err)) return kExitFailure;
  std::vector<StoredLimit> before;
  std::string error;
  if (!s.store->ListLimits(&before, &error)) {
    err << error << "\n";
    return kExitFailure;
  }
  const StoredLimit* old = Find(before, key);
  const std::string old_text = old ? LimitValueText(old->per_minute, old->per_hour) : "";
  const auto now = static_cast<int64_t>(std::time(nullptr));
  if (change.to_default) {
    bool removed = false;
    if (!s.store->RemoveLimit(key.klass, key.text, now, who, &removed, &error)) {
      err << error << "\n";
      return kExitFailure;
    }
    if (removed) {
      out << label << ": removed the limit set with `eximguard set` (" << old_text
          << "); the config's applies again\n";
    } else {
      out << label << ": no limit was set with `eximguard set`; nothing changed\n";
    }
  } else {
    StoredLimit l;
    l.key_class = key.klass;
    l.key = key.text;
    l.per_minute = change.per_minute;
    l.per_hour = change.per_hour;
    l.set_by = who;
    l.time = now;
    if (!s.store->SetLimit(l, &error)) {
      err << error << "\n";
      return kExitFailure;
    }
    out << label << ": set " << LimitValueText(change.per_minute, change.per_hour)
        << (old ? " (stored before: " + old_text + ")" : "") << "\n";
  }
  std::vector<StoredLimit> after;
  if (!s.store->ListLimits(&after, &error)) {
    err << error << "\n";
    return kExitFailure;
  }
  out << "effective limit: " << LimitText(Effective(s.config, after, key)) << " (was "
      << LimitText(Effective(s.config, before, key)) << ")\n";
  if (!class_default && Listed(WhitelistIds(s), key)) {
    out << "note: " << written << " is whitelisted: no limit applies to it while it is\n";
  }
  const bool published = PublishNow(s, out, err);
  if (published) {
    TellDaemon(s.config, out);
    if (!change.to_default || old) SayWhoIsOverAlready(s, after, key, class_default, out);
  }
  if (change.to_default) {
    if (old) out << "undo: eximguard set " << written << " " << old_text << "\n";
  } else {
    out << "undo: eximguard set " << written << " default\n";
  }
  return published ? kExitOk : kExitFailure;
}

}  // namespace eg::sidecar
