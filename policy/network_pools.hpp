#pragma once
// Where a tenant's networks live. dockerd accepts any subnet, gateway, IP range and auxiliary
// address in a network create, and programs the host's routes and NAT for it: a tenant claimed
// a globally routed /24, and the host's own traffic to it was then answered by the tenant's
// container. So every address of a tenant network is judged against the tenant's address
// pools (policy: networks.pools): it must lie inside one, and must not overlap another network
// (any tenant's, the operator's, the shared bridge) or a route the host has. A network created
// without a subnet gets a free one from the pools, written explicitly, so every tenant network
// is in them. A tenant without pools may not name addresses; dockerd's default pools (the
// operator's daemon configuration) give its networks their subnets.

#include <expected>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/address.hpp"
#include "policy/decision.hpp"
#include "policy/ownership_index.hpp"
#include "policy/policy.hpp"
#include "policy/rewrite.hpp"

namespace berth::policy {

/// Judges and completes the IPAM section of a tenant's network create `doc` (Go-decoded,
/// EnableIPv6 and IPAM as dockerd reads them), writing the canonical configuration back into
/// it. Returns the subnets the network takes, for the proxy to reserve, or the refusal.
[[nodiscard]] std::expected<std::vector<Cidr>, Decision> plan_network_addresses(
    const Tenant& rules, nlohmann::json& doc, const OwnershipIndex& index,
    const DaemonFacts& facts);

/// The body of the create for the tenant's own default network (Name, bridge driver,
/// ownership label, and its subnet from the pools when the tenant has pools), and the subnets
/// it takes.
[[nodiscard]] std::expected<std::pair<nlohmann::json, std::vector<Cidr>>, Decision>
default_network_create(const Tenant& rules, const OwnershipIndex& index,
                       const DaemonFacts& facts);

}  // namespace berth::policy
