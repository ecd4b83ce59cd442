// ip_match.h - IP addresses and networks as the sidecar judges them: is this text an address at
// all (inet_pton, not a character set), is it loopback, is it in a list of networks
// ("192.0.2.0/24", "2001:db8::/32", "198.51.100.7"), is it one of this host's own addresses.
// The one place for this: the detectors (relay_hosts), the follow-up (what may be firewalled),
// Dovecot's policy (exemptions) and the config (validating lists) all use it.
//
// CONTRACT
//   - Text from logs and requests is untrusted: anything inet_pton does not accept is not an
//     address. IPv4-mapped IPv6 ("::ffff:192.0.2.1") is judged as the IPv4 address.
//   - Pure functions except OwnAddresses() (getifaddrs). All reentrant.

#ifndef EXIMGUARD_SIDECAR_IP_MATCH_H_
#define EXIMGUARD_SIDECAR_IP_MATCH_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eg::sidecar {

// An IPv4 or IPv6 address; IPv4-mapped IPv6 (::ffff:1.2.3.4) is taken as the IPv4 address.
struct IpAddress {
  bool v4 = false;
  std::array<uint8_t, 16> bytes{};  // v4: the first 4 bytes
  bool operator==(const IpAddress&) const = default;
};
std::optional<IpAddress> ParseIp(std::string_view text);
std::string IpText(const IpAddress& ip);  // canonical text (inet_ntop)
bool IsLoopbackIp(const IpAddress& ip);   // 127.0.0.0/8, ::1

// "1.2.3.4", "10.0.0.0/8", "2001:db8::/32".
struct IpRange {
  IpAddress base;  // masked to prefix
  int prefix = 0;  // 0..32 (v4) or 0..128 (v6)
};
// Returns false with `why` set for text that is not an IP or CIDR.
bool ParseIpRange(std::string_view text, IpRange* out, std::string* why);
bool InRange(const IpRange& range, const IpAddress& ip);

// The same on text (false for text that is no address).
bool CanonicalIp(std::string_view text, std::string* out);
bool IsIpAddress(std::string_view text);
bool IsLoopbackIp(std::string_view text);
bool IpInRanges(std::string_view ip, const std::vector<IpRange>& ranges);

// Every address of this host's interfaces (loopback included). Empty if getifaddrs fails.
std::vector<IpAddress> OwnAddresses();
std::vector<std::string> OwnAddressTexts();  // the same, as IpText()

}  // namespace eg::sidecar

#endif  // EXIMGUARD_SIDECAR_IP_MATCH_H_
