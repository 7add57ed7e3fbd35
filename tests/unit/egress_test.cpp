#include <catch2/catch.hpp>

#include "policy/address.hpp"
#include "policy/egress.hpp"
#include "policy/policy.hpp"

using namespace berth::policy;

namespace {

Tenant tenant_with(std::vector<std::string> urls, std::vector<std::string> registries) {
  Tenant t;
  t.id = "acme";
  t.egress.urls = std::move(urls);
  t.egress.registries = std::move(registries);
  return t;
}

}  // namespace

TEST_CASE("IP addresses and prefixes are read only in the spellings Go reads the same way",
          "[policy][address]") {
  CHECK(parse_ip("10.0.0.1").has_value());
  CHECK(parse_ip("255.255.255.255").has_value());
  CHECK(parse_ip("fd00::1").has_value());
  CHECK(parse_ip("2001:db8:0:0:1:0:0:1").has_value());
  CHECK(parse_ip("::1").has_value());
  CHECK(parse_ip("64:ff9b::10.0.0.1").has_value());
  const auto hostile = GENERATE(as<std::string>{}, "010.0.0.1", "10.0.0", "10.0.0.1.2",
                                "256.0.0.1", "10.0.0.01", "0x7f.0.0.1", "::ffff:127.0.0.1",
                                "::ffff:7f00:1", "fe80::1%eth0", "1:2:3:4:5:6:7:8:9", "1::2::3",
                                "", " 10.0.0.1", "10.0.0.1 ", "[::1]", "12345::");
  CAPTURE(hostile);
  CHECK_FALSE(parse_ip(hostile).has_value());
}

TEST_CASE("a prefix with host bits set is not a network", "[policy][address]") {
  CHECK(parse_cidr("10.64.0.0/12").has_value());
  CHECK_FALSE(parse_cidr("10.64.0.1/12").has_value());
  CHECK(parse_cidr("10.64.0.1/12", false)->str() == "10.64.0.0/12");
  CHECK_FALSE(parse_cidr("10.0.0.0/33").has_value());
  CHECK_FALSE(parse_cidr("10.0.0.0/024").has_value());
  CHECK(parse_cidr("fd00:b::/48")->str() == "fd00:b::/48");
  CHECK_FALSE(parse_cidr("fd00:b::1/48").has_value());
}

TEST_CASE("prefixes contain and overlap as networks do", "[policy][address]") {
  const auto pool = *parse_cidr("10.64.0.0/12");
  CHECK(pool.contains(*parse_cidr("10.64.3.0/24")));
  CHECK(pool.contains(*parse_cidr("10.79.255.0/24")));
  CHECK_FALSE(pool.contains(*parse_cidr("10.80.0.0/24")));
  CHECK_FALSE(pool.contains(*parse_cidr("10.0.0.0/8")));
  CHECK(pool.overlaps(*parse_cidr("10.0.0.0/8")));
  CHECK_FALSE(pool.overlaps(*parse_cidr("fd00::/8")));
  CHECK(pool.contains(*parse_ip("10.70.1.2")));
  CHECK_FALSE(pool.contains(*parse_ip("10.80.1.2")));
}

TEST_CASE("subnets are handed out of a pool in order and never outside it", "[policy][address]") {
  const auto pool = *parse_cidr("10.64.0.0/22");
  CHECK(nth_subnet(pool, 24, 0)->str() == "10.64.0.0/24");
  CHECK(nth_subnet(pool, 24, 3)->str() == "10.64.3.0/24");
  CHECK_FALSE(nth_subnet(pool, 24, 4).has_value());
  CHECK_FALSE(nth_subnet(pool, 20, 0).has_value());
  const auto v6 = *parse_cidr("fd00:b::/48");
  CHECK(nth_subnet(v6, 64, 0)->str() == "fd00:b::/64");
  CHECK(nth_subnet(v6, 64, 0x1234)->str() == "fd00:b:0:1234::/64");
  CHECK_FALSE(nth_subnet(v6, 64, 0x10000).has_value());
}

TEST_CASE("loopback, link-local and private addresses are internal", "[policy][address]") {
  for (auto text : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                    "100.64.0.1", "0.0.0.0", "::1", "::", "fd00::1", "fe80::1", "::10.0.0.1"}) {
    CAPTURE(text);
    CHECK(is_internal_address(*parse_ip(text)));
  }
  for (auto text : {"8.8.8.8", "172.32.0.1", "2a00:1450::1"}) {
    CAPTURE(text);
    CHECK_FALSE(is_internal_address(*parse_ip(text)));
  }
}

TEST_CASE("dockerd may fetch for a tenant only URLs under a prefix the operator listed",
          "[policy][egress]") {
  const Tenant t = tenant_with({"https://downloads.example.com/pub/", "http://10.9.8.7:8080/x"},
                               {});
  CHECK_FALSE(judge_fetch_url(t, "https://downloads.example.com/pub/tool.tgz").has_value());
  CHECK_FALSE(judge_fetch_url(t, "https://DOWNLOADS.example.com/pub/a?b=c").has_value());
  CHECK_FALSE(judge_fetch_url(t, "https://downloads.example.com:443/pub/a").has_value());
  CHECK_FALSE(judge_fetch_url(t, "http://10.9.8.7:8080/x/y").has_value());
  CHECK_FALSE(judge_fetch_url(t, "http://10.9.8.7:8080/x").has_value());
  const auto refused = GENERATE(as<std::string>{},
                                "http://127.0.0.1:9470/metrics",            // the review's case
                                "https://downloads.example.com/private/a",  // outside the prefix
                                "http://downloads.example.com/pub/a",       // another scheme
                                "https://downloads.example.com:8443/pub/a",  // another port
                                "https://downloads.example.com@127.0.0.1/pub/a",  // user info
                                "https://downloads.example.com.evil.net/pub/a",
                                "https://127.0.0.1#@downloads.example.com/pub/",
                                "https://downloads%2eexample.com/pub/a",
                                "https://downloads.example.com\\@127.0.0.1/pub/",
                                "http://10.9.8.7:8080/xy",  // not on a segment boundary
                                "http://[::1]/", "http://localhost/");
  CAPTURE(refused);
  const auto d = judge_fetch_url(t, refused);
  REQUIRE(d.has_value());
  CHECK(d->http_status == 403);
  CHECK(d->rule_id == "egress.url");
  CHECK(d->tenant_message.find("berth: ") == 0);
}

TEST_CASE("a tenant with no egress section may make dockerd contact nothing", "[policy][egress]") {
  Tenant t;
  t.id = "acme";
  CHECK(judge_fetch_url(t, "https://example.com/").has_value());
  CHECK(judge_registry(t, "").has_value());  // Docker Hub
  CHECK(judge_registry(t, "registry.example.com").has_value());
}

TEST_CASE("registry addresses are compared in one normal form", "[policy][egress]") {
  CHECK(registry_host("") == "docker.io");
  CHECK(registry_host("https://index.docker.io/v1/") == "docker.io");
  CHECK(registry_host("registry-1.docker.io") == "docker.io");
  CHECK(registry_host("Registry.Example.com:5000") == "registry.example.com:5000");
  CHECK(registry_host("http://registry.example.com/v2/") == "registry.example.com");
  CHECK(registry_host("[fd00::1]:5000") == "[fd00::1]:5000");
  CHECK(registry_host("user@host").empty());
  CHECK(registry_host("host:port").empty());
  const Tenant t = tenant_with({}, {"registry.example.com:5000", "docker.io"});
  CHECK_FALSE(judge_registry(t, "https://registry.example.com:5000").has_value());
  CHECK_FALSE(judge_registry(t, "").has_value());
  CHECK(judge_registry(t, "registry.example.com").has_value());  // another port
  CHECK(judge_registry(t, "127.0.0.1:5000")->rule_id == "egress.registry");
}

TEST_CASE("the policy file lists egress and network pools per tenant, inherited from defaults",
          "[policy][file][egress]") {
  constexpr const char* text = R"(tls: {cert: c, key: k, client_ca: ca}
tenant_defaults:
  egress:
    registries: [registry.example.com]
  networks:
    pools: ["10.64.0.0/12", "fd00:b::/48"]
tenants:
  acme:
    egress:
      urls: ["https://downloads.example.com/pub/"]
  globex:
    networks:
      pools: ["10.128.0.0/16"]
      ipv4_size: 26
)";
  auto p = parse_policy(text, "p.yaml");
  REQUIRE(p.has_value());
  const Tenant* acme = p->find_tenant("acme");
  REQUIRE(acme != nullptr);
  REQUIRE(acme->egress.registries);
  CHECK(acme->egress.registries->front() == "registry.example.com");
  REQUIRE(acme->egress.urls);
  REQUIRE(acme->networks.pools);
  CHECK(acme->networks.pools->size() == 2);
  const Tenant* globex = p->find_tenant("globex");
  REQUIRE(globex->networks.pools);
  CHECK(globex->networks.pools->front().str() == "10.128.0.0/16");
  CHECK(globex->networks.ipv4_size == 26);
  CHECK_FALSE(globex->egress.urls.has_value());
}

TEST_CASE("a malformed egress entry or pool is refused with its line", "[policy][file][egress]") {
  constexpr const char* text = R"(tls: {cert: c, key: k, client_ca: ca}
tenants:
  acme:
    egress:
      urls: ["https://user@example.com/"]
      registries: ["example.com/path"]
    networks:
      pools: ["10.64.0.1/12"]
)";
  auto p = parse_policy(text, "p.yaml");
  REQUIRE_FALSE(p.has_value());
  std::string all = format(p.error());
  CHECK(all.find("p.yaml:5") != std::string::npos);
  CHECK(all.find("p.yaml:6") != std::string::npos);
  CHECK(all.find("p.yaml:8") != std::string::npos);
}
