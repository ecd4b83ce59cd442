// ip_match.h - IP addresses and networks as the sidecar judges them: is this text an address at
// all (inet_pton, not a character set), is it loopback, is it in a list of networks
// ("192.0.2.0/24", "2001:db8::/32", "198.51.100.7"), is it one of this host's own addresses.
//
// CONTRACT
//   - Callers: the detectors (relay_from_hosts: which SMTP senders the guard counts), the
//     follow-up (which IPs may be firewalled), the config (validating lists). Pure functions
//     except OwnAddresses() (getifaddrs).
//   - Text from logs and requests is untrusted: anything inet_pton does not accept is not an
//     address. IPv4-mapped IPv6 ("::ffff:192.0.2.1") is judged as the IPv4 address.
//   - Thread safety: all reentrant.

#ifndef EXIMGUARD_SIDECAR_IP_MATCH_H_
#define EXIMGUARD_SIDECAR_IP_MATCH_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace eg::sidecar {

// An address or a network: family 4 or 6, the address bytes (IPv4 in the first 4), the prefix.
struct IpNet {
  int family = 0;
  uint8_t bytes[16] = {};
  int prefix = 0;
};

// "a.b.c.d", "v6", either with "/N". False (and *out untouched) for anything else.
bool ParseIpNet(std::string_view text, IpNet* out);

// An address (no prefix) in canonical text form ("::ffff:1.2.3.4" becomes "1.2.3.4"); false if
// `text` is not an address.
bool CanonicalIp(std::string_view text, std::string* out);

bool IsIpAddress(std::string_view text);
bool IsLoopbackIp(std::string_view text);  // 127.0.0.0/8, ::1 (and their mapped forms)
bool IpInNets(std::string_view ip, const std::vector<IpNet>& nets);

// This host's addresses (every interface), canonical text. Empty if getifaddrs fails.
std::vector<std::string> OwnAddresses();

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_IP_MATCH_H_
