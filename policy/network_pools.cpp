#include "policy/network_pools.hpp"

#include <algorithm>

#include "policy/names.hpp"
#include "policy/vocabulary.hpp"

namespace berth::policy {

namespace {

using json = nlohmann::json;

constexpr std::int64_t default_ipv4_size = 24;
constexpr std::int64_t default_ipv6_size = 64;
// How many candidate subnets of one pool berth tries before saying the pool is full.
constexpr std::uint64_t max_candidates = 1 << 16;

Decision address_refusal(std::string message) {
  return Decision::deny(403, "berth: " + std::move(message), "network.address");
}

Decision bad_address(std::string message) {
  return Decision::deny(400, std::move(message), "network.address");
}

// What a new subnet must not overlap: networks (in use or being created) and host routes.
std::optional<std::string> conflict(const Cidr& wanted, const std::vector<Cidr>& in_use,
                                    const DaemonFacts& facts, const std::vector<Cidr>& chosen) {
  for (const auto& used : in_use) {
    if (wanted.overlaps(used)) {
      return "overlaps the network " + used.str() + " on this host";
    }
  }
  for (const auto& route : facts.host_routes) {
    if (wanted.overlaps(route)) {
      return "overlaps the host's route to " + route.str();
    }
  }
  for (const auto& other : chosen) {
    if (wanted.overlaps(other)) {
      return "overlaps " + other.str() + " of the same network";
    }
  }
  return std::nullopt;
}

const Cidr* pool_of(const Tenant& rules, const Cidr& subnet) {
  for (const auto& pool : *rules.networks.pools) {
    if (pool.contains(subnet)) {
      return &pool;
    }
  }
  return nullptr;
}

std::string describe_pools(const Tenant& rules) {
  std::string out;
  for (const auto& pool : *rules.networks.pools) {
    out += out.empty() ? "" : ", ";
    out += pool.str();
  }
  return out;
}

// The first free subnet of `size` in the tenant's pools of one family.
std::expected<Cidr, Decision> allocate(const Tenant& rules, bool v6, std::int64_t size,
                                       const std::vector<Cidr>& in_use, const DaemonFacts& facts,
                                       const std::vector<Cidr>& chosen) {
  bool any_pool = false;
  for (const auto& pool : *rules.networks.pools) {
    if (pool.base.v6 != v6 || pool.prefix > size) {
      continue;
    }
    any_pool = true;
    for (std::uint64_t i = 0; i < max_candidates; ++i) {
      const auto candidate = nth_subnet(pool, static_cast<int>(size), i);
      if (!candidate) {
        break;
      }
      if (!conflict(*candidate, in_use, facts, chosen)) {
        return *candidate;
      }
    }
  }
  const std::string family = v6 ? "IPv6" : "IPv4";
  if (!any_pool) {
    return std::unexpected(address_refusal("tenant " + rules.id + " has no " + family +
                                           " address pool for a /" + std::to_string(size) +
                                           " network (its pools: " + describe_pools(rules) +
                                           ")"));
  }
  return std::unexpected(address_refusal("tenant " + rules.id + "'s " + family +
                                         " address pools (" + describe_pools(rules) +
                                         ") have no free /" + std::to_string(size) +
                                         "; remove a network first"));
}

}  // namespace

std::expected<std::vector<Cidr>, Decision> plan_network_addresses(const Tenant& rules,
                                                                  json& doc,
                                                                  const OwnershipIndex& index,
                                                                  const DaemonFacts& facts) {
  const bool ipv6 = doc.value("EnableIPv6", false);
  json configs = json::array();
  if (doc.contains("IPAM") && doc["IPAM"].is_object() && doc["IPAM"].contains("Config") &&
      doc["IPAM"]["Config"].is_array()) {
    configs = doc["IPAM"]["Config"];
  }
  const bool has_pools = rules.networks.pools && !rules.networks.pools->empty();
  if (!has_pools) {
    if (!configs.empty()) {
      return std::unexpected(address_refusal(
          "tenant " + rules.id + " has no address pool, so its networks take the addresses "
          "the daemon chooses; remove the subnet, IP range, gateway and auxiliary addresses "
          "(or ask the operator for a pool)"));
    }
    return std::vector<Cidr>{};
  }
  const std::vector<Cidr> in_use = index.subnets_in_use();
  std::vector<Cidr> chosen;
  json out = json::array();
  bool have_v4 = false;
  bool have_v6 = false;
  for (const auto& config : configs) {
    const std::string subnet_text = config.value("Subnet", std::string());
    const std::string range_text = config.value("IPRange", std::string());
    const std::string gateway_text = config.value("Gateway", std::string());
    const json aux = config.value("AuxiliaryAddresses", json::object());
    if (subnet_text.empty()) {
      if (!range_text.empty() || !gateway_text.empty() || !aux.empty()) {
        return std::unexpected(
            bad_address("berth: an IP range, gateway or auxiliary address needs its subnet"));
      }
      continue;
    }
    const auto subnet = parse_cidr(subnet_text);
    if (!subnet) {
      return std::unexpected(bad_address("invalid subnet " + subnet_text +
                                         ": write it as a network prefix with its host bits "
                                         "zero, such as 10.64.3.0/24"));
    }
    if (pool_of(rules, *subnet) == nullptr) {
      return std::unexpected(address_refusal("subnet " + subnet->str() +
                                             " is outside tenant " + rules.id +
                                             "'s address pools (" + describe_pools(rules) + ")"));
    }
    if (auto why = conflict(*subnet, in_use, facts, chosen)) {
      return std::unexpected(address_refusal("subnet " + subnet->str() + " " + *why));
    }
    json canonical = {{"Subnet", subnet->str()}};
    if (!range_text.empty()) {
      const auto range = parse_cidr(range_text);
      if (!range || !subnet->contains(*range)) {
        return std::unexpected(bad_address("IP range " + range_text + " must be a prefix inside " +
                                           subnet->str()));
      }
      canonical["IPRange"] = range->str();
    }
    if (!gateway_text.empty()) {
      const auto gateway = parse_ip(gateway_text);
      if (!gateway || !subnet->contains(*gateway)) {
        return std::unexpected(bad_address("gateway " + gateway_text + " must be an address in " +
                                           subnet->str()));
      }
      canonical["Gateway"] = gateway->str();
    }
    if (!aux.empty()) {
      json addresses = json::object();
      for (const auto& [name, value] : aux.items()) {
        const auto ip = value.is_string() ? parse_ip(value.get<std::string>()) : std::nullopt;
        if (!ip || !subnet->contains(*ip)) {
          return std::unexpected(bad_address("auxiliary address " + name +
                                             " must be an address in " + subnet->str()));
        }
        addresses[name] = ip->str();
      }
      canonical["AuxiliaryAddresses"] = std::move(addresses);
    }
    (subnet->base.v6 ? have_v6 : have_v4) = true;
    chosen.push_back(*subnet);
    out.push_back(std::move(canonical));
  }
  // Every family the network has comes from the pools, written out: dockerd would otherwise
  // take an IPv4 subnet from its own default pools, and an IPv6 one from wherever it is set.
  if (!have_v4) {
    auto v4 = allocate(rules, false, rules.networks.ipv4_size.value_or(default_ipv4_size), in_use,
                       facts, chosen);
    if (!v4) {
      return std::unexpected(v4.error());
    }
    chosen.push_back(*v4);
    out.push_back({{"Subnet", v4->str()}});
  }
  if (ipv6 && !have_v6) {
    auto v6 = allocate(rules, true, rules.networks.ipv6_size.value_or(default_ipv6_size), in_use,
                       facts, chosen);
    if (!v6) {
      return std::unexpected(v6.error());
    }
    chosen.push_back(*v6);
    out.push_back({{"Subnet", v6->str()}});
  }
  if (!ipv6 && have_v6) {
    return std::unexpected(bad_address("berth: an IPv6 subnet needs EnableIPv6"));
  }
  doc["IPAM"] = {{"Driver", "default"}, {"Config", std::move(out)}};
  return chosen;
}

std::expected<std::pair<json, std::vector<Cidr>>, Decision> default_network_create(
    const Tenant& rules, const OwnershipIndex& index, const DaemonFacts& facts) {
  json create = {{"Name", names::default_network(rules.id)},
                 {"Driver", facts.fleet ? "overlay" : "bridge"},
                 {"CheckDuplicate", true},
                 {"Labels", {{std::string(vocabulary::tenant_label), rules.id}}}};
  if (facts.fleet) {
    create["Attachable"] = true;
  }
  auto subnets = plan_network_addresses(rules, create, index, facts);
  if (!subnets) {
    return std::unexpected(subnets.error());
  }
  if (subnets->empty()) {
    create.erase("IPAM");
  }
  return std::pair{std::move(create), std::move(*subnets)};
}

}  // namespace berth::policy
