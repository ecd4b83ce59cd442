// ip_match.cpp - see ip_match.h.

#include "ip_match.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace eg::sidecar {
namespace {

constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

// The address of `text` (no prefix), IPv4-mapped IPv6 turned into IPv4.
bool ParseAddress(std::string_view text, IpNet* out) {
  if (text.empty() || text.size() > 45) return false;
  char buf[46];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpNet n;
  if (inet_pton(AF_INET, buf, n.bytes) == 1) {
    n.family = 4;
    n.prefix = 32;
  } else if (inet_pton(AF_INET6, buf, n.bytes) == 1) {
    n.family = 6;
    n.prefix = 128;
    if (std::memcmp(n.bytes, kMappedPrefix, 12) == 0) {
      std::memmove(n.bytes, n.bytes + 12, 4);
      std::memset(n.bytes + 4, 0, 12);
      n.family = 4;
      n.prefix = 32;
    }
  } else {
    return false;
  }
  *out = n;
  return true;
}

bool Contains(const IpNet& net, const IpNet& addr) {
  if (net.family != addr.family) return false;
  int bits = net.prefix;
  for (int i = 0; bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((net.bytes[i] & mask) != (addr.bytes[i] & mask)) return false;
  }
  return true;
}

}  // namespace

bool ParseIpNet(std::string_view text, IpNet* out) {
  const size_t slash = text.find('/');
  IpNet n;
  if (!ParseAddress(text.substr(0, slash), &n)) return false;
  if (slash != std::string_view::npos) {
    const std::string_view p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 ||
        !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
    int prefix = 0;
    for (char c : p) prefix = prefix * 10 + (c - '0');
    // A mapped IPv6 network ("::ffff:10.0.0.0/104") keeps its meaning as IPv4.
    const bool mapped = text.substr(0, slash).find(':') != std::string_view::npos && n.family == 4;
    if (mapped) prefix -= 96;
    if (prefix < 0 || prefix > (n.family == 4 ? 32 : 128)) return false;
    n.prefix = prefix;
  }
  *out = n;
  return true;
}

bool CanonicalIp(std::string_view text, std::string* out) {
  IpNet n;
  if (!ParseAddress(text, &n)) return false;
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(n.family == 4 ? AF_INET : AF_INET6, n.bytes, buf, sizeof buf) == nullptr) {
    return false;
  }
  *out = buf;
  return true;
}

bool IsIpAddress(std::string_view text) {
  IpNet n;
  return ParseAddress(text, &n);
}

bool IsLoopbackIp(std::string_view text) {
  IpNet n;
  if (!ParseAddress(text, &n)) return false;
  if (n.family == 4) return n.bytes[0] == 127;
  static const uint8_t kOne[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::memcmp(n.bytes, kOne, 16) == 0;
}

bool IpInNets(std::string_view ip, const std::vector<IpNet>& nets) {
  IpNet a;
  if (!ParseAddress(ip, &a)) return false;
  return std::any_of(nets.begin(), nets.end(), [&](const IpNet& n) { return Contains(n, a); });
}

std::vector<std::string> OwnAddresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    char buf[INET6_ADDRSTRLEN];
    const void* src = nullptr;
    if (i->ifa_addr->sa_family == AF_INET) {
      src = &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr;
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      src = &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr;
    }
    if (src != nullptr && inet_ntop(i->ifa_addr->sa_family, src, buf, sizeof buf) != nullptr) {
      std::string canon;
      if (CanonicalIp(buf, &canon) && std::find(out.begin(), out.end(), canon) == out.end()) {
        out.push_back(canon);
      }
    }
  }
  freeifaddrs(list);
  return out;
}

}  // namespace eg::sidecar
