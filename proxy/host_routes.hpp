#pragma once
// The host's routes, read from the kernel (/proc/net/route and /proc/net/ipv6_route, the main
// table of the network namespace berth-proxy runs in): a tenant network must not claim a range
// the host reaches elsewhere (policy/network_pools.hpp). Default routes are left out: every
// range overlaps them.

#include <string_view>
#include <vector>

#include "policy/address.hpp"

namespace berth::proxy {

/// The routes of this host's main table other than default routes; empty when the files
/// cannot be read.
[[nodiscard]] std::vector<policy::Cidr> read_host_routes();

/// Parses the text of /proc/net/route and /proc/net/ipv6_route (exposed for tests).
[[nodiscard]] std::vector<policy::Cidr> parse_ipv4_routes(std::string_view text);
[[nodiscard]] std::vector<policy::Cidr> parse_ipv6_routes(std::string_view text);

}  // namespace berth::proxy
