#include <catch2/catch.hpp>

#include "policy/identity.hpp"
#include "policy/policy.hpp"
#include "policy/policy_edit.hpp"

using berth::policy::Diagnostics;
using berth::policy::parse_policy;
using berth::policy::Role;

namespace {

constexpr const char* kValid = R"(listen: "127.0.0.1:2376"
upstream: "unix:///var/run/docker.sock"
tls:
  cert: server-cert.pem
  key: server-key.pem
  client_ca: ca.pem
tenants:
  acme: {}
  globex:
    description: "Globex Corp"
identities:
  - organization: berth-operators
    role: operator
  - common_name: alice
    organization: acme
    tenant: acme
  - serial: "0A:FF"
    tenant: globex
)";

bool mentions(const Diagnostics& ds, int line, const std::string& text) {
  for (const auto& d : ds) {
    if (d.line == line && d.message.find(text) != std::string::npos) {
      return true;
    }
  }
  return false;
}

std::string dump(const Diagnostics& ds) { return berth::policy::format(ds); }

}  // namespace

TEST_CASE("a valid policy file is read with its tenants and identity rules in order",
          "[policy][file]") {
  auto p = parse_policy(kValid, "policy.yaml");
  REQUIRE(p.has_value());
  CHECK(p->listen == "127.0.0.1:2376");
  CHECK(p->tls.client_ca == "ca.pem");
  REQUIRE(p->tenants.size() == 2);
  CHECK(p->find_tenant("globex") != nullptr);
  CHECK(p->find_tenant("initech") == nullptr);
  REQUIRE(p->identities.size() == 3);
  CHECK(p->identities[0].role == Role::operator_);
  CHECK(p->identities[1].tenant == "acme");
  CHECK(p->identities[2].serial == "aff");
  CHECK(p->identities[1].line == 14);
}

TEST_CASE("a policy with an unknown key is refused with its line and column",
          "[policy][file]") {
  std::string text = kValid;
  text.replace(text.find("tenants:"), 8, "tenant:");
  auto p = parse_policy(text, "policy.yaml");
  REQUIRE_FALSE(p.has_value());
  INFO(dump(p.error()));
  CHECK(mentions(p.error(), 7, "unknown key 'tenant'"));
  CHECK(p.error().front().source == "policy.yaml");
  CHECK(p.error().front().column == 1);
}

TEST_CASE("a policy with a duplicate key is refused instead of keeping the first",
          "[policy][file]") {
  auto text = std::string(kValid) + "listen: \"0.0.0.0:2376\"\n";
  auto p = parse_policy(text, "policy.yaml");
  REQUIRE_FALSE(p.has_value());
  INFO(dump(p.error()));
  CHECK(mentions(p.error(), 19, "duplicate key 'listen'"));
}

TEST_CASE("a policy that is not valid YAML is refused with the parser's position",
          "[policy][file]") {
  auto p = parse_policy("tls: [unclosed\n", "p.yaml");
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().front().line >= 1);
}

TEST_CASE("identity rules must name declared tenants and match on something",
          "[policy][file]") {
  const std::string head =
      "tls: {cert: a, key: b, client_ca: c}\ntenants:\n  acme: {}\nidentities:\n";
  SECTION("an undeclared tenant") {
    auto p = parse_policy(head + "  - organization: x\n    tenant: initech\n", "p");
    REQUIRE_FALSE(p.has_value());
    CHECK(mentions(p.error(), 6, "not declared"));
  }
  SECTION("a rule that matches every certificate") {
    auto p = parse_policy(head + "  - tenant: acme\n", "p");
    REQUIRE_FALSE(p.has_value());
    CHECK(mentions(p.error(), 5, "at least one of"));
  }
  SECTION("an operator rule that also names a tenant") {
    auto p = parse_policy(head + "  - organization: ops\n    role: operator\n    tenant: acme\n",
                          "p");
    REQUIRE_FALSE(p.has_value());
    CHECK(mentions(p.error(), 5, "must not name a tenant"));
  }
  SECTION("an unknown role") {
    auto p = parse_policy(head + "  - organization: ops\n    role: admin\n", "p");
    REQUIRE_FALSE(p.has_value());
    CHECK(mentions(p.error(), 6, "role must be"));
  }
  SECTION("a serial that is not hexadecimal") {
    auto p = parse_policy(head + "  - serial: xyz\n    tenant: acme\n", "p");
    REQUIRE_FALSE(p.has_value());
    CHECK(mentions(p.error(), 5, "not a hexadecimal"));
  }
}

TEST_CASE("tenant ids outside the safe alphabet are refused", "[policy][file]") {
  auto bad = GENERATE(as<std::string>{}, "Acme", "-acme", "acme-", "ac_me", "ac.me", "a/b",
                      "acme corp");
  CAPTURE(bad);
  auto p = parse_policy("tls: {cert: a, key: b, client_ca: c}\ntenants:\n  \"" + bad + "\": {}\n",
                        "p");
  REQUIRE_FALSE(p.has_value());
  CHECK(mentions(p.error(), 3, "tenant id"));
}

TEST_CASE("a policy without TLS files is refused", "[policy][file]") {
  SECTION("no tls at all") {
    auto p = parse_policy("tenants: {}\n", "p");
    REQUIRE_FALSE(p.has_value());
    CHECK(mentions(p.error(), 1, "tls is required"));
  }
  SECTION("tls without the client CA") {
    auto p = parse_policy("tls: {cert: a, key: b}\n", "p");
    REQUIRE_FALSE(p.has_value());
    CHECK(mentions(p.error(), 1, "tls.client_ca is required"));
  }
}

TEST_CASE("an upstream that is not unix, tcp or tls is refused", "[policy][file]") {
  auto p = parse_policy("tls: {cert: a, key: b, client_ca: c}\nupstream: \"http://x\"\n", "p");
  REQUIRE_FALSE(p.has_value());
  CHECK(mentions(p.error(), 2, "upstream must be"));
}

TEST_CASE("a certificate is mapped by the first identity rule that matches it",
          "[policy][identity]") {
  auto p = parse_policy(kValid, "policy.yaml");
  REQUIRE(p.has_value());
  using berth::policy::identify;
  using berth::policy::Identity;

  SECTION("an operator by organization") {
    auto who = identify(*p, Identity{"root", "berth-operators", "1"});
    REQUIRE(who.has_value());
    CHECK(who->is_operator());
    CHECK(who->tenant.empty());
  }
  SECTION("a tenant by common name and organization") {
    auto who = identify(*p, Identity{"alice", "acme", "2"});
    REQUIRE(who.has_value());
    CHECK_FALSE(who->is_operator());
    CHECK(who->tenant == "acme");
    CHECK(who->user == "alice");
  }
  SECTION("a tenant by serial") {
    auto who = identify(*p, Identity{"anyone", "anywhere", "aff"});
    REQUIRE(who.has_value());
    CHECK(who->tenant == "globex");
  }
  SECTION("a known organization with an unknown user is refused") {
    auto who = identify(*p, Identity{"mallory", "acme", "3"});
    REQUIRE_FALSE(who.has_value());
    CHECK(who.error().http_status == 403);
    CHECK(who.error().rule_id == "identity.unknown");
    CHECK(who.error().tenant_message.find("CN=mallory, O=acme") != std::string::npos);
  }
  SECTION("an empty identity (a certificate with two CNs) is refused") {
    auto who = identify(*p, Identity{"", "", ""});
    CHECK_FALSE(who.has_value());
  }
}

TEST_CASE("certificate serials are compared in one normal form", "[policy][identity]") {
  using berth::policy::normalize_serial;
  CHECK(normalize_serial("0A:FF") == "aff");
  CHECK(normalize_serial("0x00aff") == "aff");
  CHECK(normalize_serial("AFF") == "aff");
  CHECK(normalize_serial("00") == "0");
  CHECK(normalize_serial("xyz").empty());
  CHECK(normalize_serial("12-34").empty());
}

namespace {

// kValid with its upstream line replaced by `hosts` (and anything else top-level).
std::string with_hosts(const std::string& hosts) {
  std::string text = kValid;
  const std::string upstream = "upstream: \"unix:///var/run/docker.sock\"\n";
  text.replace(text.find(upstream), upstream.size(), hosts);
  return text;
}

}  // namespace

TEST_CASE("without a hosts list the fleet is one host, local, at the upstream", "[policy][file]") {
  auto p = parse_policy(kValid, "policy.yaml");
  REQUIRE(p.has_value());
  REQUIRE(p->hosts.size() == 1);
  CHECK(p->hosts[0].name == "local");
  CHECK(p->hosts[0].url == "unix:///var/run/docker.sock");
  CHECK_FALSE(p->hosts[0].cordoned);
  CHECK(p->placement.cpu_overcommit == 1.0);
}

TEST_CASE("the fleet's hosts are read in order with their TLS files, labels, capacity and cordon",
          "[policy][file][fleet]") {
  auto p = parse_policy(with_hosts(R"(hosts:
  - name: h1
    url: "unix:///run/h1.sock"
  - name: eu-2
    url: "tls://10.0.0.2:2376"
    tls: {ca: ca.pem, cert: c.pem, key: k.pem}
    labels: {Region: eu, disk: ssd}
    capacity: {cpus: 16, memory: 64GiB}
    cordoned: true
placement:
  cpu_overcommit: 2
  memory_overcommit: 1.25
)"),
                        "policy.yaml");
  INFO((p ? std::string() : dump(p.error())));
  REQUIRE(p.has_value());
  REQUIRE(p->hosts.size() == 2);
  CHECK(p->hosts[0].name == "h1");
  CHECK_FALSE(p->hosts[0].nano_cpus.has_value());
  const auto& h = p->hosts[1];
  CHECK(h.url == "tls://10.0.0.2:2376");
  CHECK(h.tls.ca == "ca.pem");
  CHECK(h.labels == std::vector<std::pair<std::string, std::string>>{{"region", "eu"},
                                                                     {"disk", "ssd"}});
  CHECK(h.nano_cpus == 16'000'000'000);
  CHECK(h.memory == 64LL << 30);
  CHECK(h.cordoned);
  CHECK(p->placement.cpu_overcommit == 2.0);
  CHECK(p->placement.memory_overcommit == 1.25);
}

TEST_CASE("a broken hosts list is refused with the line and reason of each fault",
          "[policy][file][fleet]") {
  auto p = parse_policy(with_hosts(R"(hosts:
  - name: h1
    url: "unix:///run/h1.sock"
  - name: h1
    url: "unix:///run/h2.sock"
  - name: "bad name"
    url: "http://x"
  - name: t
    url: "tls://10.0.0.2:2376"
  - url: "unix:///run/h3.sock"
  - name: h4
    url: "unix:///run/h4.sock"
    capacity: {cpus: 0}
    cordoned: maybe
placement:
  cpu_overcommit: 0.5
)"),
                        "policy.yaml");
  REQUIRE_FALSE(p.has_value());
  INFO(dump(p.error()));
  CHECK(mentions(p.error(), 5, "listed twice"));
  CHECK(mentions(p.error(), 7, "hosts.name 'bad name'"));
  CHECK(mentions(p.error(), 8, "hosts.url must be"));
  CHECK(mentions(p.error(), 9, "needs tls.ca"));
  CHECK(mentions(p.error(), 11, "needs a name and a url"));
  CHECK(mentions(p.error(), 14, "hosts.capacity.cpus must be more than 0"));
  CHECK(mentions(p.error(), 15, "hosts.cordoned: expected true or false"));
  CHECK(mentions(p.error(), 17, "placement.cpu_overcommit: expected a number from 1 to 20"));
}

TEST_CASE("a policy with both an upstream and a hosts list is refused: the upstream is a host",
          "[policy][file][fleet]") {
  std::string text = kValid;
  text += "hosts:\n  - name: h1\n    url: \"unix:///run/h1.sock\"\n";
  auto p = parse_policy(text, "policy.yaml");
  REQUIRE_FALSE(p.has_value());
  CHECK(dump(p.error()).find("hosts and upstream exclude each other") != std::string::npos);
}

TEST_CASE("a tenant's placement pins are Swarm constraints the operator writes, inherited from "
          "tenant_defaults, and a broken one is refused with its line",
          "[policy][file][fleet]") {
  std::string text = kValid;
  text.replace(text.find("  acme: {}\n"), 11,
               "  acme:\n    placement: [\"node==h1\", \"zone!=/^us-/\"]\n");
  text += "tenant_defaults:\n  placement: [\"tier==shared\"]\n";
  auto p = parse_policy(text, "policy.yaml");
  INFO((p ? std::string() : dump(p.error())));
  REQUIRE(p.has_value());
  const auto* acme = p->find_tenant("acme");
  REQUIRE(acme->placement.has_value());
  REQUIRE(acme->placement->size() == 2);
  CHECK((*acme->placement)[0].str() == "node==h1");
  CHECK((*acme->placement)[1].key == "zone");
  CHECK_FALSE((*acme->placement)[1].equal);
  const auto* globex = p->find_tenant("globex");
  REQUIRE(globex->placement.has_value());
  CHECK(globex->placement->front().str() == "tier==shared");

  text = kValid;
  text.replace(text.find("  acme: {}\n"), 11,
               "  acme:\n    placement:\n      - \"node==h1\"\n      - \"zone=eu\"\n");
  p = parse_policy(text, "policy.yaml");
  REQUIRE_FALSE(p.has_value());
  INFO(dump(p.error()));
  CHECK(mentions(p.error(), 11, "tenants.acme.placement"));
  CHECK(mentions(p.error(), 11, "zone=eu"));
}

TEST_CASE("berthctl's cordon edit changes one value of the policy file and keeps the rest as the "
          "operator wrote it",
          "[policy][file][fleet]") {
  const std::string text = with_hosts(R"(hosts:
  # the primary, Swarm manager
  - name: h1
    url: "unix:///run/h1.sock"

  - name: h2
    url: "unix:///run/h2.sock"   # rack 4
    cordoned: false
  - {name: h3, url: "unix:///run/h3.sock"}
)");
  REQUIRE(parse_policy(text, "policy.yaml").has_value());
  SECTION("a host without the key gets a line of its own under its name") {
    auto out = berth::policy::set_host_cordoned(text, "h1", true);
    REQUIRE(out.has_value());
    std::string expected = text;
    const std::string name = "  - name: h1\n";
    expected.insert(expected.find(name) + name.size(), "    cordoned: true\n");
    CHECK(*out == expected);
    auto p = parse_policy(*out, "policy.yaml");
    REQUIRE(p.has_value());
    CHECK(p->hosts[0].cordoned);
    CHECK_FALSE(p->hosts[1].cordoned);
  }
  SECTION("a host with the key has its value replaced where it is written, comments kept") {
    auto out = berth::policy::set_host_cordoned(text, "h2", true);
    REQUIRE(out.has_value());
    std::string expected = text;
    expected.replace(expected.find("cordoned: false"), 15, "cordoned: true");
    CHECK(*out == expected);
    auto back = berth::policy::set_host_cordoned(*out, "h2", false);
    REQUIRE(back.has_value());
    CHECK(*back == text);
  }
  SECTION("an unknown host, a flow-style entry or a policy without hosts is an error") {
    auto out = berth::policy::set_host_cordoned(text, "h9", true);
    REQUIRE_FALSE(out.has_value());
    CHECK_THAT(out.error(), Catch::Contains("no fleet host named h9"));
    out = berth::policy::set_host_cordoned(text, "h3", true);
    REQUIRE_FALSE(out.has_value());
    CHECK_THAT(out.error(), Catch::Contains("flow style"));
    out = berth::policy::set_host_cordoned(kValid, "h1", true);
    REQUIRE_FALSE(out.has_value());
    CHECK_THAT(out.error(), Catch::Contains("no fleet hosts"));
  }
}

TEST_CASE("a host's berth-node is read with the files berth reaches it with, and one without "
          "them or with another scheme is refused with its line",
          "[policy][file][fleet][migrate]") {
  auto p = parse_policy(with_hosts(R"(hosts:
  - name: h1
    url: "unix:///run/h1.sock"
    node: {url: "tls://10.0.0.1:2378", ca: ca.pem, cert: berth.pem, key: berth-key.pem}
  - name: h2
    url: "unix:///run/h2.sock"
)"),
                        "policy.yaml");
  INFO((p ? std::string() : dump(p.error())));
  REQUIRE(p.has_value());
  CHECK(p->hosts[0].node == "tls://10.0.0.1:2378");
  CHECK(p->hosts[0].node_tls.cert == "berth.pem");
  CHECK(p->hosts[0].node_tls.key == "berth-key.pem");
  CHECK(p->hosts[1].node.empty());

  auto bad = parse_policy(with_hosts(R"(hosts:
  - name: h1
    url: "unix:///run/h1.sock"
    node: {url: "tcp://10.0.0.1:2378", ca: ca.pem, cert: c.pem, key: k.pem}
  - name: h2
    url: "unix:///run/h2.sock"
    node: {url: "tls://10.0.0.2:2378"}
  - name: h3
    url: "unix:///run/h3.sock"
    node: {url: "tls://10.0.0.3:2378", ca: ca.pem, cert: c.pem, key: k.pem, port: 1}
)"),
                          "policy.yaml");
  REQUIRE_FALSE(bad.has_value());
  INFO(dump(bad.error()));
  CHECK(mentions(bad.error(), 5, "hosts.node.url must be tls://host:port"));
  CHECK(mentions(bad.error(), 8, "hosts.node needs a url, and the ca, cert and key"));
  CHECK(mentions(bad.error(), 11, "unknown key 'port'"));
}
