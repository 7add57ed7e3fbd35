// Placement over a fleet (DESIGN.md "Beyond one host"): every refused host has its reason,
// fit counts what containers really use under the operator's overcommit and headroom, and a
// tenant's refusal names no host.

#include "policy/placement.hpp"

#include <algorithm>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace berth::policy;
using json = nlohmann::json;

namespace {

constexpr std::int64_t mib = 1LL << 20;
constexpr std::int64_t gib = 1LL << 30;
constexpr std::int64_t cpu = 1'000'000'000;

HostState host(std::string name, std::int64_t memory = 16 * gib, std::int64_t cpus = 8 * cpu) {
  HostState h;
  h.name = std::move(name);
  h.capacity = Amount{cpus, memory};
  return h;
}

PlacementRequest request(std::int64_t memory = 512 * mib, std::int64_t cpus = cpu) {
  PlacementRequest r;
  r.tenant = "acme";
  r.limits = Amount{cpus, memory};
  return r;
}

std::string chosen(const std::vector<HostState>& hosts, const Placement& p) {
  return p.host ? hosts[*p.host].name : std::string("(none)");
}

std::string reason_for(const std::vector<HostState>& hosts, const Placement& p,
                       const PlacementRequest& r, const std::string& name,
                       const PlacementOptions& o = {}) {
  for (const auto& rej : p.rejections) {
    if (hosts[rej.host].name == name) {
      return describe(rej, hosts, r, o);
    }
  }
  return "(not refused)";
}

Expression expr(std::string_view text, Expression::Kind kind = Expression::Kind::constraint,
                Author author = Author::tenant) {
  auto e = parse_expression(text, kind, author);
  INFO(text);
  REQUIRE(e);
  return *e;
}

Expression affinity(std::string_view text) {
  return expr(text, Expression::Kind::affinity);
}

}  // namespace

TEST_CASE("a cordoned or unhealthy host is refused with that reason and never chosen",
          "[policy][placement]") {
  std::vector<HostState> hosts{host("a", 64 * gib), host("b", 64 * gib), host("c")};
  hosts[0].cordoned = true;
  hosts[1].healthy = false;
  const auto r = request();
  const auto p = place(hosts, r, {});
  CHECK(chosen(hosts, p) == "c");
  CHECK(reason_for(hosts, p, r, "a") == "cordoned");
  CHECK(reason_for(hosts, p, r, "b") == "unhealthy");
  CHECK(p.rejections.size() == 2);
}

TEST_CASE("a published port in use refuses that host only", "[policy][placement]") {
  std::vector<HostState> hosts{host("a", 64 * gib), host("b")};
  hosts[0].ports_in_use = {{8080, false}};
  auto r = request();
  r.ports = {{8080, false}};
  const auto p = place(hosts, r, {});
  CHECK(chosen(hosts, p) == "b");
  CHECK(reason_for(hosts, p, r, "a") == "port 8080/tcp in use");
  REQUIRE(p.rejections.size() == 1);

  SECTION("the same number over udp is another port") {
    r.ports = {{8080, true}};
    CHECK(chosen(hosts, place(hosts, r, {})) == "a");
  }
}

TEST_CASE("a host without the image is refused when the create requires it, never when not",
          "[policy][placement][fleet]") {
  std::vector<HostState> hosts{host("a", 64 * gib), host("b")};
  hosts[1].image_ids = {"sha256:feed"};
  for (auto& h : hosts) {
    normalize(h);
  }
  auto r = request();
  r.image_id = "sha256:feed";
  CHECK(place(hosts, r, {}).rejections.empty());  // a score only: neither host is refused
  r.image_required = true;
  const auto p = place(hosts, r, {});
  CHECK(chosen(hosts, p) == "b");
  CHECK(reason_for(hosts, p, r, "a") == "does not hold image sha256:feed");
  hosts[1].cordoned = true;
  const auto none = place(hosts, r, {});
  CHECK_FALSE(none.host.has_value());
  const std::string refusal = tenant_refusal(none, r);
  CHECK(refusal.find("image not present") != std::string::npos);
  CHECK(refusal.find("\"a\"") == std::string::npos);
}

TEST_CASE("a volume, --volumes-from or --network container: ties the container to its host",
          "[policy][placement]") {
  std::vector<HostState> hosts{host("a", 64 * gib), host("b"), host("c")};
  auto r = request();
  SECTION("a volume whose data is on one host") {
    r.dependencies = {{DependencyKind::volume, "db-data", "b"}};
    const auto p = place(hosts, r, {});
    CHECK(chosen(hosts, p) == "b");
    CHECK(reason_for(hosts, p, r, "a") == "does not hold volume db-data");
    CHECK(reason_for(hosts, p, r, "c") == "does not hold volume db-data");
  }
  SECTION("--network container:web") {
    r.dependencies = {{DependencyKind::network_container, "web", "c"}};
    const auto p = place(hosts, r, {});
    CHECK(chosen(hosts, p) == "c");
    CHECK(reason_for(hosts, p, r, "a") == "does not hold container web (--network container:web)");
  }
  SECTION("two dependencies on two hosts leave nothing") {
    r.dependencies = {{DependencyKind::volume, "db-data", "b"},
                      {DependencyKind::volumes_from, "web", "c"}};
    const auto p = place(hosts, r, {});
    CHECK_FALSE(p.host);
    CHECK(reason_for(hosts, p, r, "b") == "does not hold container web (--volumes-from)");
  }
  SECTION("the dependency's host is refused for its own reason when it is full") {
    r.dependencies = {{DependencyKind::volume, "db-data", "c"}};
    hosts[2].reserved.memory = 16 * gib;
    const auto p = place(hosts, r, {});
    CHECK_FALSE(p.host);
    CHECK(reason_for(hosts, p, r, "c") == "memory: needs 512MiB, 0B left under the 1x overcommit");
  }
}

TEST_CASE("hard constraints keep only the hosts whose traits match, negation and patterns too",
          "[policy][placement]") {
  std::vector<HostState> hosts{host("eu-1"), host("eu-2"), host("us-1", 64 * gib),
                               host("bare", 64 * gib)};
  hosts[0].traits = {{"region", "eu-west"}, {"disk", "ssd"}};
  hosts[1].traits = {{"region", "eu-central"}, {"disk", "hdd"}};
  hosts[2].traits = {{"region", "us-east"}, {"disk", "ssd"}};
  for (auto& h : hosts) {
    normalize(h);
  }
  auto r = request();
  auto placed_on = [&](std::vector<std::string_view> texts) {
    r.rules.constraints.clear();
    for (auto t : texts) {
      r.rules.constraints.push_back(expr(t));
    }
    return chosen(hosts, place(hosts, r, {}));
  };
  CHECK(placed_on({"region==eu-west"}) == "eu-1");
  CHECK(placed_on({"region==eu-*", "disk==hdd"}) == "eu-2");
  CHECK(placed_on({"region==/^us-/"}) == "us-1");
  CHECK(placed_on({"region!=us-*", "disk!=ssd"}) == "bare");  // no trait: != holds
  CHECK(placed_on({"region==ap-*"}) == "(none)");

  SECTION("the refused hosts say which constraint") {
    r.rules.constraints = {expr("region==eu-west")};
    const auto p = place(hosts, r, {});
    CHECK(reason_for(hosts, p, r, "us-1") == "constraint region==eu-west not met");
    CHECK(reason_for(hosts, p, r, "bare") == "constraint region==eu-west not met");
  }
  SECTION("a glob's dot is a dot, not Swarm's regex wildcard") {
    hosts[0].traits = {{"zone", "a.1"}};
    hosts[1].traits = {{"zone", "ab1"}};
    r.rules.constraints = {expr("zone==a.*")};
    const auto p = place(hosts, r, {});
    CHECK(chosen(hosts, p) == "eu-1");
    CHECK(reason_for(hosts, p, r, "eu-2") == "constraint zone==a.* not met");
  }
  SECTION("an operator pins a tenant to hosts by trait") {
    r.rules.constraints.clear();
    r.pins = {expr("disk==ssd", Expression::Kind::constraint, Author::operator_)};
    const auto p = place(hosts, r, {});
    CHECK(chosen(hosts, p) == "us-1");
    CHECK(reason_for(hosts, p, r, "eu-2") == "outside the tenant's placement pins (disk==ssd)");
  }
  SECTION("an operator may name a host; node matches the host's name") {
    r.rules.constraints = {expr("node==eu-2", Expression::Kind::constraint, Author::operator_)};
    CHECK(chosen(hosts, place(hosts, r, {})) == "eu-2");
  }
}

TEST_CASE("a hard affinity follows or avoids the tenant's own containers and visible images",
          "[policy][placement]") {
  std::vector<HostState> hosts{host("a", 64 * gib), host("b"), host("c")};
  hosts[2].images = {{"sha256:1", {"redis:7", "redis"}, ""}, {"sha256:2", {"secret"}, "globex"}};
  auto r = request();
  r.presence = {{"b", 1, {"db"}}};
  SECTION("container== lands beside it") {
    r.rules.affinities = {affinity("container==db")};
    const auto p = place(hosts, r, {});
    CHECK(chosen(hosts, p) == "b");
    CHECK(reason_for(hosts, p, r, "a") == "affinity container==db not met");
  }
  SECTION("container!= stays away from it") {
    r.rules.affinities = {affinity("container!=d*")};
    hosts[0].cordoned = true;
    const auto p = place(hosts, r, {});
    CHECK(chosen(hosts, p) == "c");
    CHECK(reason_for(hosts, p, r, "b") == "affinity container!=d* not met");
  }
  SECTION("image== matches a shared image's reference") {
    r.rules.affinities = {affinity("image==redis")};
    CHECK(chosen(hosts, place(hosts, r, {})) == "c");
  }
  SECTION("another tenant's image is not there as far as this tenant can tell") {
    r.rules.affinities = {affinity("image==/secret/")};
    CHECK_FALSE(place(hosts, r, {}).host);
    r.tenant = "globex";
    CHECK(chosen(hosts, place(hosts, r, {})) == "c");
  }
}

TEST_CASE("a soft constraint or affinity changes the choice, never what is admitted",
          "[policy][placement]") {
  std::vector<HostState> hosts{host("a", 64 * gib), host("b"), host("c")};
  hosts[2].traits = {{"disk", "ssd"}};
  auto r = request();
  const auto without = place(hosts, r, {});
  REQUIRE(chosen(hosts, without) == "a");  // the emptiest

  r.rules.constraints = {expr("disk==~ssd")};
  const auto with = place(hosts, r, {});
  CHECK(chosen(hosts, with) == "c");
  CHECK(with.rejections.empty());

  r.rules.constraints = {expr("disk==~nvme")};
  const auto unmet = place(hosts, r, {});
  CHECK(chosen(hosts, unmet) == "a");
  CHECK(unmet.rejections.empty());
}

TEST_CASE("a container counts for the larger of its limit and its p95 use", "[policy][placement]") {
  PlacementOptions o;
  o.default_demand = Amount{cpu / 2, 256 * mib};
  CHECK(accounted({cpu, 1 * gib}, Amount{cpu / 10, 300 * mib}, o) == Amount{cpu, 1 * gib});
  CHECK(accounted({0, 0}, Amount{cpu / 10, 300 * mib}, o) == Amount{cpu / 2, 300 * mib});
  CHECK(accounted({0, 0}, std::nullopt, o) == Amount{cpu / 2, 256 * mib});
  CHECK(demand_of({0, 2 * gib}, o) == Amount{cpu / 2, 2 * gib});
}

TEST_CASE("reservations fit under capacity times the operator's overcommit",
          "[policy][placement]") {
  std::vector<HostState> hosts{host("a", 8 * gib)};
  hosts[0].reserved.memory = 10 * gib;
  const auto r = request(2 * gib);
  SECTION("without overcommit the host is full") {
    const auto p = place(hosts, r, {});
    CHECK_FALSE(p.host);
    CHECK(reason_for(hosts, p, r, "a") == "memory: needs 2GiB, 0B left under the 1x overcommit");
  }
  SECTION("1.5x leaves 2GiB") {
    hosts[0].memory_overcommit = 1.5;
    CHECK(chosen(hosts, place(hosts, r, {})) == "a");
  }
  SECTION("1.5x does not leave 3GiB") {
    hosts[0].memory_overcommit = 1.5;
    const auto big = request(3 * gib);
    const auto p = place(hosts, big, {});
    CHECK(reason_for(hosts, p, big, "a") ==
          "memory: needs 3GiB, 2GiB left under the 1.5x overcommit");
  }
  SECTION("CPU is judged the same way") {
    hosts[0].memory_overcommit = 2;
    hosts[0].reserved.nano_cpus = 7 * cpu;
    const auto two = request(1 * gib, 2 * cpu);
    const auto p = place(hosts, two, {});
    CHECK(reason_for(hosts, p, two, "a") == "CPU: needs 2, 1 left under the 1x overcommit");
  }
  SECTION("a container without limits is placed as the operator's default") {
    hosts[0].memory_overcommit = 1.5;
    PlacementOptions o;
    o.default_demand = Amount{cpu, 3 * gib};
    const auto none = request(0, 0);
    const auto p = place(hosts, none, o);
    CHECK(reason_for(hosts, p, none, "a", o) ==
          "memory: needs 3GiB, 2GiB left under the 1.5x overcommit");
  }
}

TEST_CASE("measured use refuses a host whose reservations would fit", "[policy][placement]") {
  std::vector<HostState> hosts{host("a", 16 * gib), host("b", 16 * gib)};
  for (auto& h : hosts) {
    h.memory_overcommit = 2;
    h.reserved.memory = 20 * gib;  // 12GiB left to reserve on each
  }
  hosts[0].measured = Amount{cpu, 13 * gib};  // 16GiB x 0.9 = 14.4GiB: 1.4GiB free
  hosts[1].measured = Amount{cpu, 8 * gib};
  const auto r = request(2 * gib);
  const auto p = place(hosts, r, {});
  CHECK(chosen(hosts, p) == "b");
  CHECK(p.measured);
  CHECK(reason_for(hosts, p, r, "a") == "measured free memory 1.4GiB < 2GiB (headroom 0.9)");

  SECTION("what was placed since the snapshot counts as used") {
    hosts[1].unmeasured.memory = 6 * gib + 500 * mib;
    CHECK_FALSE(place(hosts, r, {}).host);
  }
  SECTION("without a snapshot only reservations decide, and the placement says so") {
    hosts[0].measured.reset();
    hosts[1].measured.reset();
    const auto unmeasured = place(hosts, r, {});
    REQUIRE(unmeasured.host);
    CHECK_FALSE(unmeasured.measured);
    CHECK(audit_detail(unmeasured, hosts, r, {}).front().find("no meter snapshot") !=
          std::string::npos);
  }
}

TEST_CASE("a tenant's containers spread over hosts", "[policy][placement]") {
  std::vector<HostState> hosts{host("a"), host("b")};
  auto r = request();
  r.presence = {{"a", 2, {}}};
  CHECK(chosen(hosts, place(hosts, r, {})) == "b");
  r.presence = {{"a", 1, {}}, {"b", 3, {}}};
  CHECK(chosen(hosts, place(hosts, r, {})) == "a");
}

TEST_CASE("the image already present breaks a tie", "[policy][placement]") {
  std::vector<HostState> hosts{host("a"), host("b")};
  hosts[1].image_ids = {"sha256:aaa", "sha256:bbb"};
  auto r = request();
  CHECK(chosen(hosts, place(hosts, r, {})) == "a");  // by name when all else is equal
  r.image_id = "sha256:bbb";
  CHECK(chosen(hosts, place(hosts, r, {})) == "b");
}

TEST_CASE("the tenant's refusal aggregates reasons and names and counts no host, the audit names each",
          "[policy][placement]") {
  std::vector<HostState> hosts{host("rack7-node-a", 4 * gib), host("rack7-node-b", 4 * gib),
                               host("rack9-node-c", 4 * gib), host("rack9-node-d")};
  hosts[2].cordoned = true;
  hosts[3].ports_in_use = {{443, false}};
  auto r = request(6 * gib);
  r.ports = {{443, false}};
  const auto p = place(hosts, r, {});
  REQUIRE_FALSE(p.host);
  const auto message = tenant_refusal(p, r);
  CHECK(message ==
        "berth: no host can run this container: not 6GiB of memory left to reserve; "
        "host unavailable; port 443/tcp in use");
  // Nor how many hosts there are.
  CHECK(message.find("host)") == std::string::npos);
  CHECK(message.find("hosts)") == std::string::npos);
  for (const auto& h : hosts) {
    CHECK(message.find(h.name) == std::string::npos);
    CHECK(message.find("rack") == std::string::npos);
  }
  const auto audit = audit_detail(p, hosts, r, {});
  REQUIRE(audit.size() == 5);
  CHECK(audit[0] == "no host fits");
  CHECK(audit[1] == "rack7-node-a: memory: needs 6GiB, 4GiB left under the 1x overcommit");
  CHECK(audit[3] == "rack9-node-c: cordoned");
  CHECK(audit[4] == "rack9-node-d: port 443/tcp in use");
}

TEST_CASE("a placement is the same whatever the hosts' order, ties to the smaller name",
          "[policy][placement]") {
  std::vector<HostState> hosts{host("c"), host("a"), host("b"), host("d", 8 * gib)};
  const auto r = request();
  const auto first = chosen(hosts, place(hosts, r, {}));
  CHECK(first == "a");
  std::reverse(hosts.begin(), hosts.end());
  CHECK(chosen(hosts, place(hosts, r, {})) == first);
  std::rotate(hosts.begin(), hosts.begin() + 1, hosts.end());
  CHECK(chosen(hosts, place(hosts, r, {})) == first);
}

TEST_CASE("constraints and affinities are read from Env and Swarm's labels",
          "[policy][placement][parse]") {
  const json body = {
      {"Env", {"PATH=/usr/bin:/bin", "constraint:region==eu-*", "affinity:container!=~db"}},
      {"Labels",
       {{"com.docker.swarm.constraints", R"(["disk==ssd"])"},
        {"com.docker.swarm.affinities", R"(["image==/^redis/"])"}}}};
  const auto rules = parse_placement_rules(body, Author::tenant);
  REQUIRE(rules);
  REQUIRE(rules->constraints.size() == 2);
  CHECK(rules->constraints[0].str() == "region==eu-*");
  CHECK(rules->constraints[0].match == Expression::Match::glob);
  CHECK(rules->constraints[1].str() == "disk==ssd");
  REQUIRE(rules->affinities.size() == 2);
  CHECK(rules->affinities[0].key == "container");
  CHECK_FALSE(rules->affinities[0].equal);
  CHECK(rules->affinities[0].soft);
  CHECK(rules->affinities[1].match == Expression::Match::regex);
  CHECK(rules->affinities[1].matches("redis:7"));
  CHECK_FALSE(rules->affinities[1].matches("myredis"));
}

TEST_CASE("a malformed constraint or affinity is an error that says what is wrong",
          "[policy][placement][parse]") {
  using K = Expression::Kind;
  const auto [text, kind, says] = GENERATE(table<std::string, K, std::string>({
      {"region=eu", K::constraint, "expected KEY==VALUE or KEY!=VALUE"},
      {"==eu", K::constraint, "the key must be"},
      {"9region==eu", K::constraint, "the key must be"},
      {"region==", K::constraint, "the value must be non-empty"},
      {"region==~", K::constraint, "the value must be non-empty"},
      {"region==e;u", K::constraint, "the value must be"},
      {"region==/[a-/", K::constraint, "invalid regular expression"},
      {"role==web", K::affinity, "an affinity names a container or an image"},
      {"node==host-1", K::constraint, "tenants cannot choose hosts by name"},
  }));
  CAPTURE(text);
  const auto e = parse_expression(text, kind, Author::tenant);
  REQUIRE_FALSE(e);
  CHECK_THAT(e.error(), Catch::Contains(says) && Catch::Contains("'" + text + "'"));
}

TEST_CASE("a malformed Swarm label is an error, never ignored as Swarm ignored it",
          "[policy][placement][parse]") {
  const auto label =
      GENERATE(as<std::string>{}, "region==eu", R"({"a":1})", R"([1])", R"(["region=eu"])");
  CAPTURE(label);
  const json body = {{"Labels", {{"com.docker.swarm.constraints", label}}}};
  const auto rules = parse_placement_rules(body, Author::tenant);
  REQUIRE_FALSE(rules);
  CHECK_THAT(rules.error(), Catch::Contains("com.docker.swarm.constraints"));
}

TEST_CASE("the fixed host ports of a port map are read as dockerd binds them, ranges and "
          "ephemeral ports left out",
          "[policy][placement]") {
  const auto bindings = nlohmann::json::parse(R"({
    "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "127.0.0.1", "HostPort": "8080"}],
    "53/udp": [{"HostIp": "", "HostPort": "5353"}],
    "443": [{"HostPort": "8443"}],
    "81/tcp": [{"HostIp": "", "HostPort": ""}],
    "82/tcp": [{"HostPort": "0"}],
    "83/tcp": [{"HostPort": "9000-9010"}],
    "84/tcp": [{"HostPort": "70000"}],
    "85/tcp": [{"HostPort": 8085}],
    "86/tcp": null
  })");
  const std::vector<HostPort> expected{{5353, true}, {8080, false}, {8443, false}};
  CHECK(fixed_host_ports(bindings) == expected);
  CHECK(fixed_host_ports(nlohmann::json()).empty());
  CHECK(fixed_host_ports(nlohmann::json::array()).empty());
}
