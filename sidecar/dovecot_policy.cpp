// dovecot_policy.cpp - see dovecot_policy.h.

#include "dovecot_policy.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <utility>

namespace eg::sidecar {

const char* PolicyRuleName(PolicyRule rule) {
  switch (rule) {
    case PolicyRule::kNone:
      return "none";
    case PolicyRule::kExempt:
      return "exempt";
    case PolicyRule::kIpBlocked:
      return "ip_blocked";
    case PolicyRule::kAccountTarpit:
      return "account_tarpit";
  }
  return "none";
}

std::string AccountKey(std::string_view login) {
  while (!login.empty() && std::isspace(static_cast<unsigned char>(login.front())))
    login.remove_prefix(1);
  while (!login.empty() && std::isspace(static_cast<unsigned char>(login.back())))
    login.remove_suffix(1);
  std::string key(login);
  for (char& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return key;
}

bool ParseLoopbackListen(std::string_view text, std::string* ip, uint16_t* port, std::string* why) {
  std::string_view host;
  std::string_view port_text;
  if (text.starts_with("[")) {
    const size_t close = text.find("]:");
    if (close == std::string_view::npos) {
      *why = "expected IP:PORT (IPv6 as [::1]:PORT)";
      return false;
    }
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon) {
      *why = "expected IP:PORT (IPv6 as [::1]:PORT)";
      return false;
    }
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  const std::optional<IpAddress> addr = ParseIp(host);
  if (!addr || (text.starts_with("[") && addr->v4)) {
    *why = "expected IP:PORT (IPv6 as [::1]:PORT)";
    return false;
  }
  if (!IsLoopbackIp(*addr)) {
    *why =
        "must be a loopback address (127.0.0.0/8 or ::1): the policy server is for the "
        "local Dovecot only";
    return false;
  }
  if (port_text.empty() || port_text.size() > 5 ||
      !std::all_of(port_text.begin(), port_text.end(),
                   [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(std::string(port_text)) > 65535) {
    *why = "expected a port from 0 to 65535 after the ':'";
    return false;
  }
  *ip = IpText(*addr);
  *port = static_cast<uint16_t>(std::stoi(std::string(port_text)));
  return true;
}

template <typename State>
State* DovecotPolicy::Lru<State>::Find(const std::string& key) {
  auto it = index.find(key);
  if (it == index.end()) return nullptr;
  order.splice(order.begin(), order, it->second);
  return &it->second->second;
}

template <typename State>
State& DovecotPolicy::Lru<State>::Get(const std::string& key, size_t cap, uint64_t* evictions) {
  if (State* s = Find(key)) return *s;
  while (!order.empty() && order.size() >= std::max<size_t>(cap, 1)) {
    index.erase(order.back().first);
    order.pop_back();
    ++*evictions;
  }
  order.emplace_front(key, State{});
  index.emplace(key, order.begin());
  return order.front().second;
}

DovecotPolicy::DovecotPolicy(DovecotPolicySettings settings) : settings_(std::move(settings)) {
  settings_.failures = std::max<uint32_t>(settings_.failures, 1);
  settings_.account_ips = std::max<uint32_t>(settings_.account_ips, 1);
}

bool DovecotPolicy::Exempt(const std::optional<IpAddress>& ip) const {
  if (!ip) return false;
  if (settings_.exempt_loopback && IsLoopbackIp(*ip)) return true;
  return std::any_of(settings_.allow.begin(), settings_.allow.end(),
                     [&](const IpRange& r) { return InRange(r, *ip); });
}

bool DovecotPolicy::IsExempt(std::string_view ip_text) const {
  return Exempt(ParseIp(ip_text));
}

bool DovecotPolicy::AccountUnderAttack(const AccountState& a, int64_t now) const {
  const int64_t since = now - settings_.failure_seconds;
  const auto recent = std::count_if(a.failed_ips.begin(), a.failed_ips.end(),
                                    [&](const AccountState::Seen& s) { return s.time > since; });
  return static_cast<uint32_t>(recent) >= settings_.account_ips;
}

PolicyVerdict DovecotPolicy::Allow(const AuthQuery& q, int64_t now) {
  PolicyVerdict v;
  const std::optional<IpAddress> ip = ParseIp(q.remote_ip);
  if (Exempt(ip)) {
    v.rule = PolicyRule::kExempt;
    ++stats_.exempt;
    return v;
  }
  const std::string ip_key = ip ? IpText(*ip) : "";
  if (ip) {
    if (const IpState* s = ips_.Find(ip_key); s != nullptr && s->blocked_until > now) {
      v.status = -1;
      v.rule = PolicyRule::kIpBlocked;
      v.message = "Too many failed logins from your address; try again later";
      ++stats_.refused;
      return v;
    }
  }
  const std::string account = AccountKey(q.login);
  if (!account.empty()) {
    if (const AccountState* a = accounts_.Find(account);
        a != nullptr && AccountUnderAttack(*a, now)) {
      const bool trusted =
          ip && std::any_of(a->trusted.begin(), a->trusted.end(), [&](const AccountState::Seen& t) {
            return t.ip == ip_key &&
                   now - t.time <= static_cast<int64_t>(settings_.trusted_seconds);
          });
      if (!trusted) {
        v.status = static_cast<int>(std::max<uint32_t>(settings_.tarpit_seconds, 1));
        v.rule = PolicyRule::kAccountTarpit;
        ++stats_.tarpitted;
        return v;
      }
    }
  }
  ++stats_.allowed;
  return v;
}

void DovecotPolicy::Report(const AuthQuery& q, bool success, bool policy_reject, int64_t now) {
  const std::optional<IpAddress> ip = ParseIp(q.remote_ip);
  if (Exempt(ip)) return;
  const std::string ip_key = ip ? IpText(*ip) : "";
  const std::string account = AccountKey(q.login);
  if (success) {
    ++stats_.successes;
    if (account.empty() || !ip) return;
    AccountState& a = accounts_.Get(account, settings_.max_accounts, &stats_.evictions);
    auto it = std::find_if(a.trusted.begin(), a.trusted.end(),
                           [&](const AccountState::Seen& t) { return t.ip == ip_key; });
    if (it == a.trusted.end()) {
      if (a.trusted.size() >= kMaxTrustedPerAccount) {
        it = std::min_element(a.trusted.begin(), a.trusted.end(),
                              [](const auto& x, const auto& y) { return x.time < y.time; });
      } else {
        it = a.trusted.insert(a.trusted.end(), {ip_key, 0});
      }
      it->ip = ip_key;
    }
    it->time = now;
    return;
  }
  if (policy_reject) return;  // our own refusal: nothing about the password
  ++stats_.failures;
  if (ip) {
    IpState& s = ips_.Get(ip_key, settings_.max_ips, &stats_.evictions);
    const size_t n = settings_.failures;
    if (s.failures.size() < n) {
      s.failures.push_back(now);
    } else {
      s.failures[s.next] = now;
      s.next = (s.next + 1) % n;
    }
    // The ring holds the last n failures; s.next is the oldest of them once it is full.
    if (s.failures.size() == n &&
        now - s.failures[s.next % n] < static_cast<int64_t>(settings_.failure_seconds)) {
      s.blocked_until = std::max(s.blocked_until, now + settings_.block_seconds);
    }
  }
  if (!account.empty() && ip) {
    AccountState& a = accounts_.Get(account, settings_.max_accounts, &stats_.evictions);
    auto it = std::find_if(a.failed_ips.begin(), a.failed_ips.end(),
                           [&](const AccountState::Seen& f) { return f.ip == ip_key; });
    if (it == a.failed_ips.end()) {
      if (a.failed_ips.size() >= settings_.account_ips) {
        it = std::min_element(a.failed_ips.begin(), a.failed_ips.end(),
                              [](const auto& x, const auto& y) { return x.time < y.time; });
      } else {
        it = a.failed_ips.insert(a.failed_ips.end(), {ip_key, 0});
      }
      it->ip = ip_key;
    }
    it->time = now;
  }
}

DovecotPolicyStats DovecotPolicy::Stats() const {
  DovecotPolicyStats s = stats_;
  s.tracked_ips = ips_.order.size();
  s.tracked_accounts = accounts_.order.size();
  return s;
}

}  // namespace eg::sidecar
