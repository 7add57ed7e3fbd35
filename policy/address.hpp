#pragma once
// IP addresses and CIDR prefixes as berth judges them: a tenant's network subnets, IP ranges,
// gateways and auxiliary addresses, the operator's address pools and the host's routes.
//
// Parsing accepts only the canonical spellings Go's net.ParseIP / net.ParseCIDR (what dockerd
// and libnetwork use) read the same way: dotted decimal IPv4 without leading zeros, RFC 4291
// IPv6 text, no zones. IPv4-mapped IPv6 forms ("::ffff:10.0.0.1") are refused, because Go
// folds them into IPv4 where a byte-wise comparison would not. A prefix whose host bits are
// not zero is refused too: libnetwork keeps such a subnet unmasked, and berth judges networks,
// not addresses written as networks.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace berth::policy {

struct IpAddress {
  bool v6 = false;
  std::array<std::uint8_t, 16> bytes{};  ///< IPv4 in the first 4 bytes

  [[nodiscard]] std::size_t size() const noexcept { return v6 ? 16 : 4; }
  [[nodiscard]] std::string str() const;
  bool operator==(const IpAddress&) const = default;
};

struct Cidr {
  IpAddress base;  ///< host bits zero
  int prefix = 0;  ///< 0..32 or 0..128

  [[nodiscard]] bool contains(const IpAddress& ip) const noexcept;
  /// `other` lies wholly inside this prefix (same family).
  [[nodiscard]] bool contains(const Cidr& other) const noexcept;
  [[nodiscard]] bool overlaps(const Cidr& other) const noexcept;
  [[nodiscard]] std::string str() const;
  bool operator==(const Cidr&) const = default;
};

/// "10.0.0.1", "fd00::1". nullopt for any other spelling.
[[nodiscard]] std::optional<IpAddress> parse_ip(std::string_view text);

/// "10.64.0.0/16", "fd00:b::/48"; nullopt when malformed. `require_network`: refuse host bits.
[[nodiscard]] std::optional<Cidr> parse_cidr(std::string_view text, bool require_network = true);

/// The address with its host bits beyond `prefix` cleared.
[[nodiscard]] IpAddress mask(const IpAddress& ip, int prefix) noexcept;

/// The `index`-th subnet of length `prefix` inside `pool` (0 is the pool's first), or nullopt
/// when there is no such subnet. Used to hand out subnets from an operator's pool in order.
[[nodiscard]] std::optional<Cidr> nth_subnet(const Cidr& pool, int prefix, std::uint64_t index);

/// Loopback, link-local, private (RFC 1918, RFC 4193), CGNAT, unspecified or multicast: an
/// address berth never lets dockerd contact for a tenant unless the operator names it.
[[nodiscard]] bool is_internal_address(const IpAddress& ip) noexcept;

}  // namespace berth::policy
