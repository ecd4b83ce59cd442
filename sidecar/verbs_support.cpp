// verbs_support.cpp - see verbs_support.h.

#include "verbs_support.h"

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <filesystem>

#include "daemon.h"
#include "limit_value.h"
#include "publish.h"
#include "segment.h"
#include "text_escape.h"
#include "time_text.h"

namespace eg::sidecar {

bool LoadVerbState(const std::string& config_path, VerbState* state, std::ostream& err) {
  ConfigResult r = LoadConfig(config_path);
  for (const std::string& e : r.errors) err << e << "\n";
  if (!r.ok()) return false;
  state->config = std::move(r.config);
  std::string error;
  state->store = StateStore::Open(state->config.state_dir, &error);
  if (!state->store) {
    err << Printable(error) << "\n";
    return false;
  }
  return true;
}

bool ParseCommandKey(const std::string& written, PolicyKey* key, std::ostream& err) {
  std::string why;
  if (!ParsePolicyKey(written, key, &why)) {
    err << "key \"" << Printable(written) << "\": " << Printable(why) << "\n";
    return false;
  }
  if (key->klass == KeyClass::kSender) {
    std::transform(key->text.begin(), key->text.end(), key->text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  }
  return true;
}

bool PublishNow(const VerbState& state, std::ostream& out, std::ostream& err) {
  PublishResult r;
  std::string error;
  const auto now = static_cast<uint32_t>(std::time(nullptr));
  if (!PublishFromStore(state.config, *state.store, now, &r, &error)) {
    err << "not published to the shared table: " << Printable(error) << "\n";
    return false;
  }
  out << "published policy generation " << r.generation << " to " << state.config.shm_name << "\n";
  if (!r.dropped.empty()) err << "WARNING: " << DroppedText(state.config, r) << "\n";
  return true;
}

void TellDaemon(const Config& config, std::ostream& out) {
  const int pid = FollowerPid(config.state_dir);
  if (pid <= 0) return;
  if (!IsEximguardProcess(pid)) {  // follow.lock can name any process
    out << "not signalled: pid " << pid << " in " << Printable(config.state_dir)
        << "/follow.lock is not eximguard\n";
    return;
  }
  if (kill(pid, SIGHUP) == 0) out << "told the running eximguard (pid " << pid << ")\n";
}

std::string CountersText(const SlotView& s) {
  std::string text = std::to_string(s.minute) + " in the last minute, " + std::to_string(s.hour) +
                     " in the last hour, " + std::to_string(s.refused) + " refused; last seen " +
                     LocalTimeText(s.last_seen);
  const uint32_t* o = s.outcomes;
  if (o[0] + o[1] + o[2] > 0) {  // Exim's delivery events (event_action through the guard)
    text += "; Exim delivered " + std::to_string(o[static_cast<int>(Outcome::kDelivered)]) +
            ", failed " + std::to_string(o[static_cast<int>(Outcome::kFailed)]) + ", deferred " +
            std::to_string(o[static_cast<int>(Outcome::kDeferred)]) + " of its recipients";
  }
  return text;
}

bool LiveSlots(const Config& config, const std::function<bool(const PolicyKey&)>& match,
               std::vector<SlotView>* out, std::string* error) {
  out->clear();
  std::unique_ptr<Segment> seg = OpenSegment(config.shm_name, error);
  if (!seg) return false;
  const auto now = static_cast<uint32_t>(std::time(nullptr));
  for (SlotView& s : Snapshot(seg->table, now, 7200)) {
    PolicyKey k;
    k.klass = s.klass;
    k.text = s.key;
    if (match(k)) out->push_back(std::move(s));
  }
  return true;
}

std::string StoredLimitText(const StoredLimit& l) {
  std::string key = l.key.empty()                   ? "(class default)"
                    : l.key_class == KeyClass::kUid ? "uid:" + l.key
                                                    : l.key;
  return std::string(KeyClassName(l.key_class)) + " " + key + " " +
         LimitValueText(l.per_minute, l.per_hour) + " (by " + l.set_by + " at " +
         LocalTimeText(l.time) + ")";
}

void NoteStoredLimits(const Config& config, std::ostream& note) {
  std::error_code ec;
  if (!std::filesystem::exists(config.state_dir + "/" + kStateDbName, ec)) return;
  std::string error;
  std::unique_ptr<StateStore> store = StateStore::Open(config.state_dir, &error);
  std::vector<StoredLimit> limits;
  if (!store || !store->ListLimits(&limits, &error)) {
    note << "note: limits set with `eximguard set` not read: " << error << "\n";
    return;
  }
  if (limits.empty()) return;
  note << "note: " << limits.size() << (limits.size() == 1 ? " limit" : " limits")
       << " set with `eximguard set` apply on top of this file (`eximguard set KEY default` "
          "drops one):\n";
  for (const StoredLimit& l : limits) note << "  " << StoredLimitText(l) << "\n";
}

}  // namespace eg::sidecar
