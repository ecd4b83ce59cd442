// ip_match.cpp - see ip_match.h.

#include "ip_match.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace eg::sidecar {

std::optional<IpAddress> ParseIp(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  const std::string s(text);
  IpAddress ip;
  if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) {
    ip.v4 = true;
    return ip;
  }
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) != 1) return std::nullopt;
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(std::begin(kMapped), std::end(kMapped), ip.bytes.begin())) {
    IpAddress v4;
    v4.v4 = true;
    std::copy(ip.bytes.begin() + 12, ip.bytes.end(), v4.bytes.begin());
    return v4;
  }
  return ip;
}

std::string IpText(const IpAddress& ip) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(ip.v4 ? AF_INET : AF_INET6, ip.bytes.data(), buf, sizeof buf);
  return buf;
}

bool IsLoopbackIp(const IpAddress& ip) {
  if (ip.v4) return ip.bytes[0] == 127;
  for (size_t i = 0; i < 15; ++i) {
    if (ip.bytes[i] != 0) return false;
  }
  return ip.bytes[15] == 1;
}

namespace {

// `ip` with the bits past `prefix` cleared.
IpAddress Masked(IpAddress ip, int prefix) {
  const int bits = ip.v4 ? 32 : 128;
  for (int i = 0; i < bits / 8; ++i) {
    const int keep = std::clamp(prefix - i * 8, 0, 8);
    ip.bytes[static_cast<size_t>(i)] &= static_cast<uint8_t>(0xff00 >> keep);
  }
  return ip;
}

}  // namespace

bool ParseIpRange(std::string_view text, IpRange* out, std::string* why) {
  const size_t slash = text.find('/');
  const std::optional<IpAddress> ip = ParseIp(text.substr(0, slash));
  if (!ip) {
    *why = "expected an IP address or CIDR (such as 192.0.2.0/24)";
    return false;
  }
  const int bits = ip->v4 ? 32 : 128;
  int prefix = bits;
  if (slash != std::string_view::npos) {
    const std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 ||
        !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      *why = "expected a prefix length after '/'";
      return false;
    }
    prefix = std::stoi(std::string(p));
    if (prefix > bits) {
      *why = "prefix length " + std::to_string(prefix) + " is longer than " + std::to_string(bits) +
             " bits";
      return false;
    }
  }
  out->base = Masked(*ip, prefix);
  out->prefix = prefix;
  return true;
}

bool InRange(const IpRange& range, const IpAddress& ip) {
  return range.base.v4 == ip.v4 && Masked(ip, range.prefix) == range.base;
}

bool CanonicalIp(std::string_view text, std::string* out) {
  const std::optional<IpAddress> ip = ParseIp(text);
  if (!ip) return false;
  *out = IpText(*ip);
  return true;
}

bool IsIpAddress(std::string_view text) {
  return ParseIp(text).has_value();
}

bool IsLoopbackIp(std::string_view text) {
  const std::optional<IpAddress> ip = ParseIp(text);
  return ip && IsLoopbackIp(*ip);
}

bool IpInRanges(std::string_view text, const std::vector<IpRange>& ranges) {
  const std::optional<IpAddress> ip = ParseIp(text);
  return ip && std::any_of(ranges.begin(), ranges.end(),
                           [&](const IpRange& r) { return InRange(r, *ip); });
}

std::vector<IpAddress> OwnAddresses() {
  std::vector<IpAddress> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    IpAddress a;
    if (i->ifa_addr->sa_family == AF_INET) {
      a.v4 = true;
      std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr, 4);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      std::memcpy(a.bytes.data(), &reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr,
                  16);
    } else {
      continue;
    }
    if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
  }
  freeifaddrs(list);
  return out;
}

std::vector<std::string> OwnAddressTexts() {
  std::vector<std::string> out;
  for (const IpAddress& a : OwnAddresses()) out.push_back(IpText(a));
  return out;
}

}  // namespace eg::sidecar
