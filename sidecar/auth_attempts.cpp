// auth_attempts.cpp - see auth_attempts.h.

#include "auth_attempts.h"

#include <algorithm>
#include <vector>

namespace eg::sidecar {
namespace {

// Takes up to `want` from *pool; returns how much it took.
uint32_t Spend(uint32_t* pool, uint32_t want) {
  const uint32_t n = std::min(*pool, want);
  *pool -= n;
  return n;
}

// Two passdb lines of one attempt: the same user, logged within a second (see the header).
bool SameAttempt(const std::string& last_user, int64_t last_time, const LogEvent& e) {
  return e.auth_id == last_user && e.time >= last_time && e.time - last_time <= 1;
}

}  // namespace

template <typename Map>
void AuthAttempts::MakeRoom(Map* map, size_t max, int64_t now) {
  if (map->size() < max) return;
  std::erase_if(*map,
                [&](const auto& kv) { return now - kv.second.last > limits_.window_seconds; });
  if (map->size() < max) return;
  // Still full: drop the older half (by last use).
  std::vector<int64_t> times;
  times.reserve(map->size());
  for (const auto& kv : *map) times.push_back(kv.second.last);
  const auto mid = times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2);
  std::nth_element(times.begin(), mid, times.end());
  const int64_t cut = *mid;
  std::erase_if(*map, [&](const auto& kv) { return kv.second.last < cut; });
  if (map->size() >= max) map->clear();  // all equally old: start over
}

AuthAttempts::Session& AuthAttempts::SessionOf(const std::string& id, int64_t now) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) {
    MakeRoom(&sessions_, std::max<size_t>(1, limits_.max_sessions), now);
    it = sessions_.emplace(id, Session{}).first;
  } else if (now - it->second.last > limits_.window_seconds) {
    it->second = Session{};
  }
  it->second.last = now;
  return it->second;
}

AuthAttempts::Credits* AuthAttempts::CreditsOf(std::string_view ip, int64_t now) {
  if (ip.empty()) return nullptr;
  key_.assign(ip);
  auto it = ips_.find(key_);
  if (it == ips_.end()) {
    MakeRoom(&ips_, std::max<size_t>(1, limits_.max_ips), now);
    it = ips_.emplace(key_, Credits{}).first;
  } else if (now - it->second.last > limits_.window_seconds) {
    it->second = Credits{};
  }
  it->second.last = now;
  return &it->second;
}

uint32_t AuthAttempts::Add(const LogEvent& e) {
  if (e.kind != LineKind::kAuthFailed && e.kind != LineKind::kDovecotAuthFailed &&
      e.kind != LineKind::kDovecotPassdbFailed) {
    return 0;
  }
  if (e.kind == LineKind::kDovecotPassdbFailed && e.attempts == 0) return 0;
  now_ = std::max(now_, e.time);
  const int64_t now = now_;
  Credits* ip = CreditsOf(e.host_ip, now);
  switch (e.kind) {
    case LineKind::kAuthFailed:
      if (ip != nullptr && (Spend(&ip->sessionless, 1) > 0 || Spend(&ip->pam, 1) > 0)) return 0;
      if (ip != nullptr) ++ip->exim;
      return 1;
    case LineKind::kDovecotPassdbFailed:
      if (e.protocol == "pam") {
        if (ip != nullptr && Spend(&ip->exim, 1) > 0) return 0;
        if (ip != nullptr) ++ip->pam;
        return 1;
      }
      if (!e.session.empty()) {
        Session& s = SessionOf(std::string(e.session), now);
        if (s.summarized) return 0;
        if (s.counted > 0 && SameAttempt(s.last_user, s.last_counted, e)) return 0;
        if (s.counted == 0) s.ip.assign(e.host_ip);
        s.last_user.assign(e.auth_id);
        s.last_counted = e.time;
        ++s.counted;
        if (ip != nullptr) {
          ++ip->sessions;
          if (Spend(&ip->pam, 1) > 0) return 0;
        }
        return 1;
      }
      if (ip != nullptr) {
        if (ip->last_sessionless != 0 &&
            SameAttempt(ip->sessionless_user, ip->last_sessionless, e)) {
          return 0;
        }
        ip->sessionless_user.assign(e.auth_id);
        ip->last_sessionless = e.time;
        if (Spend(&ip->pam, 1) > 0) {
          ++ip->sessionless;  // the credit moves on: Exim's line will come for it
          return 0;
        }
        if (Spend(&ip->exim, 1) > 0) return 0;
        ++ip->sessionless;
      }
      return 1;
    default:
      break;
  }
  // A login process's summary of N attempts.
  uint32_t left = std::max<uint32_t>(1, e.attempts);
  if (!e.session.empty()) {
    Session& s = SessionOf(std::string(e.session), now);
    if (s.summarized) return 0;
    s.summarized = true;
    left -= std::min(left, s.counted);
    Credits* own = ip;
    if (s.ip != e.host_ip) {  // look only: inserting could drop the entry `ip` points at
      const auto it = ips_.find(s.ip);
      own = it == ips_.end() ? nullptr : &it->second;
    }
    if (own != nullptr) Spend(&own->sessions, s.counted);
    if (ip != nullptr) {
      left -= Spend(&ip->pam, left);
      left -= Spend(&ip->sessionless, left);
    }
    return left;
  }
  if (ip != nullptr) {
    left -= Spend(&ip->pam, left);
    left -= Spend(&ip->sessionless, left);
    left -= Spend(&ip->sessions, left);
  }
  return left;
}

}  // namespace eg::sidecar
