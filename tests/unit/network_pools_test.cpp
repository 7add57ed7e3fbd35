// A tenant's networks live in its address pools and never claim what the host or another
// network uses (issue #13, "a tenant changes the host"); a create judges the configuration
// dockerd will apply whatever the API version.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "policy/endpoint_table.hpp"
#include "policy/network_pools.hpp"
#include "policy/rewrite.hpp"

using namespace berth::policy;
using json = nlohmann::json;

namespace {

Tenant pooled(std::vector<std::string> pools) {
  Tenant t;
  t.id = "acme";
  std::vector<Cidr> parsed;
  for (const auto& p : pools) {
    parsed.push_back(*parse_cidr(p));
  }
  t.networks.pools = std::move(parsed);
  return t;
}

OwnershipIndex index_with_networks() {
  OwnershipIndex idx;
  idx.put_network({"n1", "", "bridge", {*parse_cidr("172.17.0.0/16")}});
  idx.put_network({"n2", "globex", "globex_back", {*parse_cidr("10.64.0.0/24")}});
  return idx;
}

Principal acme() {
  Principal p;
  p.role = Role::tenant;
  p.tenant = "acme";
  return p;
}

Rewritten create_network(const Tenant& rules, const std::string& body,
                         const OwnershipIndex& idx = index_with_networks(),
                         const DaemonFacts& facts = {}) {
  auto c = classify("POST", "/v1.41/networks/create");
  REQUIRE(c);
  return rewrite_for_tenant(acme(), *c, body, idx, facts, rules);
}

std::string describe(const Rewritten& r) {
  return std::to_string(r.decision.http_status) + " " + r.decision.rule_id + ": " +
         r.decision.tenant_message;
}

json ipam_of(const Rewritten& r) {
  INFO(describe(r));
  REQUIRE(r.decision.allowed());
  return json::parse(*r.body)["IPAM"];
}

}  // namespace

TEST_CASE("a tenant without address pools cannot name a subnet, as the review's routed /24 did",
          "[policy][network][pools]") {
  Tenant none;
  none.id = "acme";
  const auto body = GENERATE(as<std::string>{},
                             R"({"Name":"n","IPAM":{"Config":[{"Subnet":"8.8.8.0/24"}]}})",
                             R"({"Name":"n","IPAM":{"Config":[{"Gateway":"10.1.1.1"}]}})",
                             R"({"Name":"n","ipam":{"config":[{"subnet":"10.9.0.0/16"}]}})");
  CAPTURE(body);
  const Rewritten r = create_network(none, body);
  REQUIRE_FALSE(r.decision.allowed());
  CHECK(r.decision.rule_id == "network.address");
  // Without addresses, dockerd's own pools give the network its subnet.
  CHECK(create_network(none, R"({"Name":"n"})").decision.allowed());
}

TEST_CASE("a subnet must lie inside one of the tenant's pools", "[policy][network][pools]") {
  const Tenant t = pooled({"10.80.0.0/12", "fd00:b::/48"});
  const json ipam = ipam_of(create_network(
      t, R"({"Name":"n","IPAM":{"Config":[{"Subnet":"10.81.2.0/24","IPRange":"10.81.2.128/25",)"
         R"("Gateway":"10.81.2.1","AuxiliaryAddresses":{"r":"10.81.2.2"}}]}})"));
  CHECK(ipam["Config"].size() == 1);
  CHECK(ipam["Config"][0]["Subnet"] == "10.81.2.0/24");
  CHECK(ipam["Config"][0]["Gateway"] == "10.81.2.1");
  CHECK(ipam["Driver"] == "default");
  auto [body, status] = GENERATE(table<std::string, unsigned>({
      {R"({"Name":"n","IPAM":{"Config":[{"Subnet":"8.8.8.0/24"}]}})", 403u},
      {R"({"Name":"n","IPAM":{"Config":[{"Subnet":"10.0.0.0/8"}]}})", 403u},  // contains the pool
      {R"({"Name":"n","IPAM":{"Config":[{"Subnet":"10.81.2.1/24"}]}})", 400u},  // host bits
      {R"({"Name":"n","IPAM":{"Config":[{"Subnet":"10.81.2.0/24","Gateway":"10.81.3.1"}]}})", 400u},
      {R"({"Name":"n","IPAM":{"Config":[{"Subnet":"10.81.2.0/24","IPRange":"10.81.0.0/16"}]}})", 400u},
      {R"({"Name":"n","IPAM":{"Config":[{"Subnet":"10.81.2.0/24","AuxiliaryAddresses":{"a":"1.1.1.1"}}]}})", 400u},
      {R"({"Name":"n","IPAM":{"Config":[{"IPRange":"10.81.2.0/25"}]}})", 400u},
      {R"({"Name":"n","IPAM":{"Config":[{"Subnet":"fd00:b:0:1::/64"}]}})", 400u},  // no EnableIPv6
  }));
  CAPTURE(body);
  const Rewritten r = create_network(t, body);
  REQUIRE_FALSE(r.decision.allowed());
  CHECK(r.decision.http_status == status);
  CHECK(r.decision.rule_id == "network.address");
}

TEST_CASE("a subnet may not overlap another network, another tenant's included, or a host route",
          "[policy][network][pools]") {
  const Tenant t = pooled({"10.64.0.0/12"});
  // globex holds 10.64.0.0/24
  const Rewritten theirs = create_network(
      t, R"({"Name":"n","IPAM":{"Config":[{"Subnet":"10.64.0.0/23"}]}})");
  REQUIRE_FALSE(theirs.decision.allowed());
  CHECK(theirs.decision.tenant_message.find("overlaps the network 10.64.0.0/24") !=
        std::string::npos);
  DaemonFacts facts;
  facts.host_routes = {*parse_cidr("10.70.0.0/16")};
  const Rewritten routed = create_network(
      t, R"({"Name":"n","IPAM":{"Config":[{"Subnet":"10.70.5.0/24"}]}})", index_with_networks(),
      facts);
  REQUIRE_FALSE(routed.decision.allowed());
  CHECK(routed.decision.tenant_message.find("host's route to 10.70.0.0/16") != std::string::npos);
  // A create in flight holds its range too.
  OwnershipIndex idx = index_with_networks();
  REQUIRE(idx.reserve_subnets({*parse_cidr("10.65.0.0/24")}) != 0);
  CHECK_FALSE(create_network(t, R"({"Name":"n","IPAM":{"Config":[{"Subnet":"10.65.0.0/24"}]}})",
                             idx)
                  .decision.allowed());
  CHECK(idx.reserve_subnets({*parse_cidr("10.65.0.128/25")}) == 0);
}

TEST_CASE("a network created without a subnet gets the first free one of the tenant's pools",
          "[policy][network][pools]") {
  const Tenant t = pooled({"10.64.0.0/22", "fd00:b::/48"});
  const Rewritten r = create_network(t, R"({"Name":"n"})");
  const json ipam = ipam_of(r);
  REQUIRE(ipam["Config"].size() == 1);
  CHECK(ipam["Config"][0]["Subnet"] == "10.64.1.0/24");  // 10.64.0.0/24 is globex's
  CHECK(r.claimed_subnets == std::vector<Cidr>{*parse_cidr("10.64.1.0/24")});
  const Rewritten v6 = create_network(t, R"({"Name":"n","EnableIPv6":true})");
  const json both = ipam_of(v6);
  REQUIRE(both["Config"].size() == 2);
  CHECK(both["Config"][1]["Subnet"] == "fd00:b::/64");
  // A full pool says so.
  OwnershipIndex full = index_with_networks();
  for (const char* used : {"10.64.1.0/24", "10.64.2.0/24", "10.64.3.0/24"}) {
    REQUIRE(full.reserve_subnets({*parse_cidr(used)}) != 0);
  }
  const Rewritten none_left = create_network(t, R"({"Name":"n"})", full);
  REQUIRE_FALSE(none_left.decision.allowed());
  CHECK(none_left.decision.tenant_message.find("no free /24") != std::string::npos);
}

TEST_CASE("the tenant's default network takes its subnet from the pools too",
          "[policy][network][pools]") {
  const Tenant t = pooled({"10.96.0.0/16"});
  const auto planned = default_network_create(t, index_with_networks(), {});
  REQUIRE(planned);
  CHECK(planned->first["IPAM"]["Config"][0]["Subnet"] == "10.96.0.0/24");
  CHECK(planned->first["Labels"]["berth.tenant"] == "acme");
  Tenant none;
  none.id = "acme";
  const auto plain = default_network_create(none, index_with_networks(), {});
  REQUIRE(plain);
  CHECK_FALSE(plain->first.contains("IPAM"));
  CHECK(plain->second.empty());
}

TEST_CASE("a create gets a private cgroup and IPC namespace whatever its API version",
          "[policy][rewrite][version defaults]") {
  // dockerd fills an empty CgroupnsMode with "host" below 1.41 on cgroup v1 hosts, and an
  // empty IpcMode with "shareable" below 1.40: berth writes the safe values out.
  const auto version = GENERATE(as<std::string>{}, "/v1.24", "/v1.40", "/v1.41", "");
  CAPTURE(version);
  Tenant t;
  t.id = "acme";
  auto c = classify("POST", version + "/containers/create");
  REQUIRE(c);
  const Rewritten r = rewrite_for_tenant(acme(), *c, R"({"Image":"x"})", OwnershipIndex{},
                                         DaemonFacts{}, t);
  INFO(describe(r));
  REQUIRE(r.decision.allowed());
  const json hc = json::parse(*r.body)["HostConfig"];
  CHECK(hc["CgroupnsMode"] == "private");
  CHECK(hc["IpcMode"] == "private");
  // What the tenant sets itself within its rights stays.
  const Rewritten none = rewrite_for_tenant(
      acme(), *c, R"({"Image":"x","HostConfig":{"IpcMode":"none"}})", OwnershipIndex{},
      DaemonFacts{}, t);
  REQUIRE(none.decision.allowed());
  CHECK(json::parse(*none.body)["HostConfig"]["IpcMode"] == "none");
}
