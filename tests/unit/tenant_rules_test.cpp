// The operator's per-tenant rules: sizes and CPUs in human units, quotas, container defaults and
// limits, grants and allowed images, as read from the policy file (with line-precise errors)
// and as applied to container create and update and to Dockerfiles; and quota judgement with
// reservations, as the proxy runs it under the index's lock.

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "policy/build_context.hpp"
#include "policy/endpoint_table.hpp"
#include "policy/identity.hpp"
#include "policy/ownership_index.hpp"
#include "policy/policy.hpp"
#include "policy/quota.hpp"
#include "policy/rewrite.hpp"
#include "policy/units.hpp"

using namespace berth::policy;
using json = nlohmann::json;
using Catch::Matchers::Contains;

namespace {

constexpr std::int64_t MiB = 1024 * 1024;
constexpr std::int64_t GiB = 1024 * MiB;
constexpr std::int64_t cpu = 1'000'000'000;

std::string policy_with(const std::string& body) {
  return "tls:\n"
         "  cert: c.pem\n"
         "  key: k.pem\n"
         "  client_ca: ca.pem\n" +
         body;
}

std::string dump(const Diagnostics& ds) { return format(ds); }

const std::string kBusybox = "sha256:" + std::string(60, 'b') + "0001";
const std::string kTools = "sha256:" + std::string(60, 'c') + "0002";
const std::string kAcmeApp = "sha256:" + std::string(60, 'a') + "0003";
const std::string kAcmeWeb = std::string(60, 'a') + "0e1b";

OwnershipIndex sample_index() {
  OwnershipIndex idx;
  idx.put_image({kBusybox, "", {"berth-test/busybox:latest"}});
  idx.put_image({kTools, "", {"tools/debug:1"}});
  idx.put_image({kAcmeApp, "acme", {"acme.berth.local/app:v1"}});
  idx.put_container({kAcmeWeb, "acme", "acme_web", "running"});
  idx.set_resources(kAcmeWeb, {512 * MiB, cpu, 1});
  idx.put_network({std::string(64, 'f'), "acme", "acme_bridge"});
  return idx;
}

Principal acme() {
  Principal p;
  p.tenant = "acme";
  p.user = "alice";
  return p;
}

Tenant base_rules() {
  Tenant t;
  t.id = "acme";
  return t;
}

Rewritten judge(const Tenant& rules, std::string_view method, std::string_view target,
                std::string_view body, const OwnershipIndex& idx = sample_index()) {
  auto c = classify(method, target);
  REQUIRE(c.has_value());
  auto resolved = resolve(acme(), *c, idx);
  REQUIRE(resolved.has_value());
  return rewrite_for_tenant(acme(), *resolved, body, idx, DaemonFacts{}, rules);
}

Rewritten create(const Tenant& rules, const std::string& host_config,
                 const std::string& image = "berth-test/busybox") {
  return judge(rules, "POST", "/v1.41/containers/create",
               R"({"Image":")" + image + R"(","HostConfig":)" + host_config + "}");
}

json host_config_of(const Rewritten& r) {
  REQUIRE(r.body.has_value());
  return json::parse(*r.body)["HostConfig"];
}

std::string describe(const Rewritten& r) {
  return std::to_string(r.decision.http_status) + " " + r.decision.rule_id + ": " +
         r.decision.tenant_message;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Units
// ---------------------------------------------------------------------------------------------

TEST_CASE("sizes are read in binary, decimal and docker-CLI units, with fractions",
          "[policy][units]") {
  auto [text, bytes] = GENERATE(table<std::string, std::int64_t>({
      {"512MiB", 512 * MiB},
      {"2GiB", 2 * GiB},
      {"1.5GiB", GiB + GiB / 2},
      {"1KB", 1000},
      {"2GB", 2'000'000'000},
      {"512m", 512 * MiB},
      {"1g", GiB},
      {"64K", 64 * 1024},
      {"100", 100},
      {"100B", 100},
      {"1TiB", 1024 * GiB},
  }));
  CAPTURE(text);
  const auto parsed = units::parse_size(text);
  REQUIRE(parsed.has_value());
  CHECK(*parsed == bytes);
}

TEST_CASE("malformed sizes and CPU counts are refused with what was expected", "[policy][units]") {
  for (const char* bad : {"", "MiB", "12XB", "-1GiB", "1.GiB", "1,5GiB", "ten", "99999999999TiB"}) {
    CAPTURE(bad);
    const auto parsed = units::parse_size(bad);
    REQUIRE_FALSE(parsed.has_value());
  }
  CHECK_THAT(units::parse_size("12XB").error(), Contains("512MiB"));
  for (const char* bad : {"", "1.5.1", "two", "0.0000000001", "-1", "1e3"}) {
    CAPTURE(bad);
    CHECK_FALSE(units::parse_cpus(bad).has_value());
  }
}

TEST_CASE("CPU counts are exact decimals in billionths of a CPU", "[policy][units]") {
  CHECK(units::parse_cpus("2").value() == 2 * cpu);
  CHECK(units::parse_cpus("1.5").value() == cpu + cpu / 2);
  CHECK(units::parse_cpus("0.1").value() == 100'000'000);
  CHECK(units::parse_cpus("0.000000001").value() == 1);
}

TEST_CASE("sizes and CPUs are written back in the units an operator reads", "[policy][units]") {
  CHECK(units::format_size(512 * MiB) == "512MiB");
  CHECK(units::format_size(2 * GiB) == "2GiB");
  CHECK(units::format_size(GiB + GiB / 2) == "1.5GiB");
  CHECK(units::format_size(100) == "100B");
  CHECK(units::format_cpus(cpu + cpu / 4) == "1.25");
  CHECK(units::format_cpus(3 * cpu) == "3");
}

// ---------------------------------------------------------------------------------------------
// The policy file
// ---------------------------------------------------------------------------------------------

TEST_CASE("quotas, defaults, limits, images and grants are read per tenant, over tenant_defaults",
          "[policy][file][quota]") {
  const auto p = parse_policy(policy_with(R"(tenant_defaults:
  quota: {containers: 20, memory: 8GiB, cpus: 4, pids_per_container: 1024, published_ports: 4}
  defaults: {memory: 256MiB, cpus: 0.5, pids_limit: 512, log_max_size: 10MiB, log_max_file: 3}
  limits: {memory: 2GiB, cpus: 2, restart_retries: 5, restart_policies: [no, on-failure]}
  images: ["berth-test/*"]
tenants:
  acme:
    description: ACME
    quota: {containers: 50}
    limits: {clamp: true}
    grants:
      bind_mounts:
        - {path: /srv/acme/data, mode: rw}
        - {path: /srv/shared}
      capabilities: [net_admin, CAP_SYS_PTRACE]
      host_ports: ["8000-8099", 9000]
  globex:
    images: []
)"),
                              "p.yaml");
  INFO((p ? std::string() : dump(p.error())));
  REQUIRE(p.has_value());
  const Tenant* a = p->find_tenant("acme");
  REQUIRE(a != nullptr);
  CHECK(a->description == "ACME");
  CHECK(a->quota.containers == 50);
  CHECK(a->quota.memory == 8 * GiB);
  CHECK(a->quota.nano_cpus == 4 * cpu);
  CHECK(a->quota.pids_per_container == 1024);
  CHECK(a->quota.published_ports == 4);
  CHECK(a->defaults.memory == 256 * MiB);
  CHECK(a->defaults.nano_cpus == cpu / 2);
  CHECK(a->defaults.log_max_size == 10 * MiB);
  CHECK(a->limits.memory == 2 * GiB);
  CHECK(a->limits.restart_retries == 5);
  CHECK(a->clamp());
  REQUIRE(a->images.has_value());
  CHECK(*a->images == std::vector<std::string>{"berth-test/*"});
  REQUIRE(a->grants.bind_mounts.size() == 2);
  CHECK(a->grants.bind_mounts[0].path == "/srv/acme/data");
  CHECK(a->grants.bind_mounts[0].read_write);
  CHECK_FALSE(a->grants.bind_mounts[1].read_write);
  CHECK(a->grants.capabilities == std::vector<std::string>{"CAP_NET_ADMIN", "CAP_SYS_PTRACE"});
  REQUIRE(a->grants.host_ports.size() == 2);
  CHECK(a->grants.host_ports[1].first == 9000);
  CHECK(a->grants.host_ports[1].last == 9000);

  const Tenant* g = p->find_tenant("globex");
  REQUIRE(g != nullptr);
  CHECK(g->quota.containers == 20);  // inherited
  CHECK_FALSE(g->clamp());
  REQUIRE(g->images.has_value());
  CHECK(g->images->empty());  // its own list (none) wins over the default list
  CHECK(g->grants.host_ports.empty());  // grants are never inherited
}

TEST_CASE("the example policy in deploy/ is valid and means what its comments say",
          "[policy][file][example]") {
  std::ifstream in(std::string(BERTH_SOURCE_DIR) + "/deploy/policy.example.yaml");
  REQUIRE(in.good());
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto p = parse_policy(text, "policy.example.yaml");
  INFO((p ? std::string() : dump(p.error())));
  REQUIRE(p.has_value());
  CHECK(p->metrics_listen == "127.0.0.1:9470");
  const Tenant* acme = p->find_tenant("acme");
  const Tenant* globex = p->find_tenant("globex");
  REQUIRE(acme != nullptr);
  REQUIRE(globex != nullptr);
  CHECK(acme->quota.containers == 100);
  CHECK(globex->quota.containers == 50);
  CHECK(acme->defaults.memory == 512 * MiB);
  CHECK_FALSE(acme->clamp());
  CHECK(globex->clamp());
  CHECK(acme->grants.capabilities == std::vector<std::string>{"CAP_NET_ADMIN"});
  CHECK(globex->grants.capabilities.empty());
}

TEST_CASE("a broken tenant rule is refused with its line, column and what was expected",
          "[policy][file][quota]") {
  auto [yaml, line, text] = GENERATE(table<std::string, int, std::string>({
      {"tenants:\n  acme:\n    quota: {containers: 5, memroy: 1GiB}\n", 7, "unknown key 'memroy'"},
      {"tenants:\n  acme:\n    quota:\n      memory: 12 gigs\n", 8, "512MiB"},
      {"tenants:\n  acme:\n    quota:\n      cpus: two\n", 8, "number of CPUs"},
      {"tenants:\n  acme:\n    quota:\n      containers: -3\n", 8, "between 0"},
      {"tenants:\n  acme:\n    defaults:\n      memory: 0\n", 8, "more than 0"},
      {"tenants:\n  acme:\n    limits:\n      clamp: maybe\n", 8, "true or false"},
      {"tenants:\n  acme:\n    limits:\n      restart_policies: [always, sometimes]\n", 8,
       "'sometimes' is not one of"},
      {"tenants:\n  acme:\n    grants:\n      capabilities: [ALL]\n", 8, "ALL cannot be granted"},
      {"tenants:\n  acme:\n    grants:\n      capabilities: [NET_ADMINN]\n", 8,
       "not a Linux capability"},
      {"tenants:\n  acme:\n    grants:\n      host_ports: [\"9000-8000\"]\n", 8, "8000-8099"},
      {"tenants:\n  acme:\n    grants:\n      bind_mounts:\n        - {path: /var/run/docker.sock}\n",
       9, "cannot be granted"},
      {"tenants:\n  acme:\n    grants:\n      bind_mounts:\n        - {path: /srv/../etc}\n", 9,
       "clean absolute path"},
      {"tenants:\n  acme:\n    grants:\n      bind_mounts:\n        - {path: /}\n", 9,
       "root directory"},
      {"tenants:\n  acme:\n    grants:\n      bind_mounts:\n        - {path: relative/x}\n", 9,
       "absolute"},
      {"tenants:\n  acme:\n    grants:\n      bind_mounts:\n        - {path: /srv/a, mode: rwx}\n",
       9, "ro or rw"},
      {"tenants:\n  acme:\n    grants:\n      bind_mounts:\n        - {mode: ro}\n", 9,
       "needs a path"},
      {"tenant_defaults:\n  grants: {}\ntenants:\n  acme: {}\n", 6, "unknown key 'grants'"},
      {"tenants:\n  acme:\n    defaults: {memory: 4GiB}\n    limits: {memory: 1GiB}\n", 6,
       "defaults.memory 4GiB is above limits.memory 1GiB"},
      {"tenants:\n  acme:\n    defaults: {cpus: 3}\n    quota: {cpus: 2}\n", 6,
       "defaults.cpus 3 is above quota.cpus 2"},
      {"tenants:\n  acme:\n    defaults: {memory: 1MiB}\n", 6, "minimum of 6MiB"},
      {"tenants:\n  acme:\n    defaults: {log_max_file: 3}\n", 6, "needs defaults.log_max_size"},
      {"tenants:\n  acme:\n    grants: {host_ports: [8000-8100]}\n  globex:\n    grants: "
       "{host_ports: [8100]}\n",
       8, "overlaps tenant acme"},
  }));
  CAPTURE(yaml);
  const auto p = parse_policy(policy_with(yaml), "p.yaml");
  REQUIRE_FALSE(p.has_value());
  INFO(dump(p.error()));
  bool found = false;
  for (const auto& d : p.error()) {
    found = found || (d.line == line && d.message.find(text) != std::string::npos);
  }
  CHECK(found);
}

// ---------------------------------------------------------------------------------------------
// Defaults and limits on create and update
// ---------------------------------------------------------------------------------------------

TEST_CASE("a container created without limits gets the tenant's defaults", "[policy][defaults]") {
  Tenant rules = base_rules();
  rules.defaults.memory = 256 * MiB;
  rules.defaults.nano_cpus = cpu / 2;
  rules.defaults.pids_limit = 200;
  rules.defaults.log_max_size = 10 * MiB;
  rules.defaults.log_max_file = 3;
  const Rewritten r = create(rules, "{}");
  INFO(describe(r));
  REQUIRE(r.decision.allowed());
  const json hc = host_config_of(r);
  CHECK(hc["Memory"] == 256 * MiB);
  CHECK(hc["NanoCpus"] == cpu / 2);
  CHECK(hc["PidsLimit"] == 200);
  CHECK(hc["LogConfig"]["Type"] == "json-file");
  CHECK(hc["LogConfig"]["Config"]["max-size"] == std::to_string(10 * MiB));
  CHECK(hc["LogConfig"]["Config"]["max-file"] == "3");
  REQUIRE(r.claim.has_value());
  CHECK(r.claim->memory == 256 * MiB);
  CHECK(r.claim->nano_cpus == cpu / 2);
}

TEST_CASE("a PidsLimit of 0, as the docker CLI sends when none is asked for, takes the default",
          "[policy][defaults]") {
  Tenant rules = base_rules();
  rules.defaults.pids_limit = 200;
  rules.quota.pids_per_container = 500;
  CHECK(host_config_of(create(rules, R"({"PidsLimit":0})"))["PidsLimit"] == 200);
  CHECK(host_config_of(create(rules, R"({"PidsLimit":null})"))["PidsLimit"] == 200);
  CHECK(host_config_of(create(rules, R"({"PidsLimit":300})"))["PidsLimit"] == 300);
  const Rewritten unlimited = create(rules, R"({"PidsLimit":-1})");
  REQUIRE_FALSE(unlimited.decision.allowed());
  CHECK(unlimited.decision.rule_id == "quota.pids");
  // Without a maximum, asking for no limit is the tenant's choice.
  rules.quota.pids_per_container.reset();
  CHECK(host_config_of(create(rules, R"({"PidsLimit":-1})"))["PidsLimit"] == -1);
}

TEST_CASE("limits a container sets itself are kept when within the tenant's maximum",
          "[policy][defaults]") {
  Tenant rules = base_rules();
  rules.defaults.memory = 256 * MiB;
  rules.defaults.nano_cpus = cpu / 2;
  rules.limits.memory = GiB;
  rules.limits.nano_cpus = 2 * cpu;
  const Rewritten r = create(rules, R"({"Memory":536870912,"CpuQuota":150000,"CpuPeriod":100000,
                                        "LogConfig":{"Type":"json-file","Config":{"max-size":"1m"}}})");
  INFO(describe(r));
  REQUIRE(r.decision.allowed());
  const json hc = host_config_of(r);
  CHECK(hc["Memory"] == 512 * MiB);
  CHECK_FALSE(hc.contains("NanoCpus"));  // dockerd refuses NanoCpus beside CpuPeriod
  CHECK(hc["CpuQuota"] == 150000);
  CHECK(hc["LogConfig"]["Config"]["max-size"] == "1m");
  REQUIRE(r.claim.has_value());
  CHECK(r.claim->nano_cpus == cpu + cpu / 2);
}

TEST_CASE("a default CPU limit beside a CpuPeriod of the container's own becomes a CpuQuota",
          "[policy][defaults]") {
  Tenant rules = base_rules();
  rules.defaults.nano_cpus = cpu / 2;
  const Rewritten r = create(rules, R"({"CpuPeriod":50000})");
  INFO(describe(r));
  REQUIRE(r.decision.allowed());
  const json hc = host_config_of(r);
  CHECK_FALSE(hc.contains("NanoCpus"));
  CHECK(hc["CpuQuota"] == 25000);
}

TEST_CASE("a request above the tenant's per-container limit is refused, naming it, unless clamp",
          "[policy][limits]") {
  Tenant rules = base_rules();
  rules.limits.memory = GiB;
  rules.limits.nano_cpus = 2 * cpu;
  rules.quota.pids_per_container = 100;
  rules.limits.restart_retries = 3;
  rules.limits.restart_policies = std::vector<std::string>{"no", "on-failure"};
  rules.limits.log_max_size = 20 * MiB;
  rules.limits.log_max_file = 2;
  auto [host_config, rule, text, clamped_field, clamped_value] =
      GENERATE(table<std::string, std::string, std::string, std::string, json>({
          {R"({"Memory":2147483648})", "limits.memory",
           "HostConfig.Memory 2GiB is above tenant acme's per-container limit of 1GiB", "Memory",
           GiB},
          {R"({"NanoCpus":4000000000})", "limits.cpus",
           "HostConfig.NanoCpus 4 CPUs is above tenant acme's per-container limit of 2 CPUs",
           "NanoCpus", 2 * cpu},
          {R"({"CpuQuota":300000})", "limits.cpus", "3 CPUs is above", "CpuQuota", 200000},
          {R"({"PidsLimit":1000})", "quota.pids", "PidsLimit 1000 is above tenant acme's limit of 100",
           "PidsLimit", 100},
          {R"({"PidsLimit":-1})", "quota.pids", "unlimited HostConfig.PidsLimit", "PidsLimit",
           100},
          {R"({"RestartPolicy":{"Name":"on-failure","MaximumRetryCount":0}})", "limits.restart",
           "on-failure with unlimited retries is above tenant acme's limit of 3", "RestartPolicy",
           json{{"Name", "on-failure"}, {"MaximumRetryCount", 3}}},
          {R"({"LogConfig":{"Type":"json-file","Config":{"max-size":"1g"}}})", "limits.log",
           "max-size 1GiB is above tenant acme's limit of 20MiB", "LogConfig",
           json{{"Type", "json-file"},
                {"Config", {{"max-size", std::to_string(20 * MiB)}, {"max-file", "2"}}}}},
          {R"({"LogConfig":{"Type":"local","Config":{"max-size":"1g","max-file":"9"}}})",
           "limits.log", "max-size 1GiB is above", "LogConfig",
           json{{"Type", "local"},
                {"Config", {{"max-size", std::to_string(20 * MiB)}, {"max-file", "2"}}}}},
      }));
  CAPTURE(host_config);
  SECTION("refused") {
    const Rewritten r = create(rules, host_config);
    INFO(describe(r));
    REQUIRE_FALSE(r.decision.allowed());
    CHECK(r.decision.http_status == 403);
    CHECK(r.decision.rule_id == rule);
    CHECK_THAT(r.decision.tenant_message, Contains(text));
  }
  SECTION("clamped") {
    rules.limits.clamp = true;
    const Rewritten r = create(rules, host_config);
    INFO(describe(r));
    REQUIRE(r.decision.allowed());
    const json hc = host_config_of(r);
    CHECK(hc[clamped_field] == clamped_value);
  }
}

TEST_CASE("a restart policy the tenant may not use is refused with the ones it may",
          "[policy][limits]") {
  Tenant rules = base_rules();
  rules.limits.restart_policies = std::vector<std::string>{"no", "on-failure"};
  const Rewritten r = create(rules, R"({"RestartPolicy":{"Name":"always"}})");
  REQUIRE_FALSE(r.decision.allowed());
  CHECK_THAT(r.decision.tenant_message,
             Contains("RestartPolicy 'always' is not allowed for tenant acme (allowed: no, "
                      "on-failure)"));
  CHECK(create(rules, R"({"RestartPolicy":{"Name":""}})").decision.allowed());
}

TEST_CASE("with a memory or CPU quota and no default, a container must set its limit",
          "[policy][quota]") {
  Tenant rules = base_rules();
  rules.quota.memory = 4 * GiB;
  const Rewritten r = create(rules, "{}");
  REQUIRE_FALSE(r.decision.allowed());
  CHECK_THAT(r.decision.tenant_message,
             Contains("HostConfig.Memory must be set: tenant acme has a memory quota of 4GiB"));
  CHECK(create(rules, R"({"Memory":104857600})").decision.allowed());
  rules.limits.memory = GiB;  // the limit serves as the default when there is none
  const Rewritten with_limit = create(rules, "{}");
  REQUIRE(with_limit.decision.allowed());
  CHECK(host_config_of(with_limit)["Memory"] == GiB);
}

TEST_CASE("an update is judged against the limits and claims the container's new holding",
          "[policy][limits][quota]") {
  Tenant rules = base_rules();
  rules.limits.memory = GiB;
  const std::string target = "/v1.41/containers/" + kAcmeWeb + "/update";
  const Rewritten over = judge(rules, "POST", target, R"({"Memory":2147483648})");
  REQUIRE_FALSE(over.decision.allowed());
  CHECK(over.decision.rule_id == "limits.memory");
  const Rewritten ok = judge(rules, "POST", target, R"({"NanoCpus":1500000000})");
  INFO(describe(ok));
  REQUIRE(ok.decision.allowed());
  REQUIRE(ok.claim.has_value());
  CHECK(ok.claim_container == kAcmeWeb);
  CHECK(ok.claim->memory == 512 * MiB);  // unchanged
  CHECK(ok.claim->nano_cpus == cpu + cpu / 2);
  CHECK(ok.claim->ports == 1);
}

// ---------------------------------------------------------------------------------------------
// Grants
// ---------------------------------------------------------------------------------------------

TEST_CASE("a granted host path may be bind-mounted exactly as granted and nothing else",
          "[policy][grants][escape]") {
  Tenant rules = base_rules();
  rules.grants.bind_mounts = {{"/srv/acme/data", true}, {"/srv/shared", false}};
  SECTION("allowed") {
    for (const std::string hc : {
             R"({"Binds":["/srv/acme/data:/data"]})",
             R"({"Binds":["/srv/shared:/shared:ro"]})",
             R"({"Binds":["/srv/shared:/shared:ro,rprivate"]})",
             R"({"Mounts":[{"Type":"bind","Source":"/srv/shared","Target":"/s","ReadOnly":true}]})",
             R"({"Mounts":[{"Type":"bind","Source":"/srv/acme/data","Target":"/d"}]})",
         }) {
      CAPTURE(hc);
      const Rewritten r = create(rules, hc);
      INFO(describe(r));
      CHECK(r.decision.allowed());
    }
  }
  SECTION("refused") {
    auto [hc, rule, text] = GENERATE(table<std::string, std::string, std::string>({
        {R"({"Binds":["/srv/shared:/shared"]})", "grant.bind_read_only",
         "granted /srv/shared read-only (add :ro)"},
        {R"({"Mounts":[{"Type":"bind","Source":"/srv/shared","Target":"/s"}]})",
         "grant.bind_read_only", "read-only"},
        {R"({"Binds":["/srv/acme/data/sub:/data"]})", "escape.bind", "mounts a host path"},
        {R"({"Binds":["/srv/acme:/data"]})", "escape.bind", "granted paths: /srv/acme/data rw"},
        {R"({"Binds":["/srv/acme/data/../../../etc:/data"]})", "escape.bind", "host path"},
        {R"({"Binds":["/srv/acme/data:/data:rshared"]})", "escape.bind", "option 'rshared'"},
        {R"({"Binds":["/srv/acme/data:/data:Z"]})", "escape.bind", "option 'Z'"},
        {R"({"Mounts":[{"Type":"bind","Source":"/srv/acme/data","Target":"/d","BindOptions":{"Propagation":"shared"}}]})",
         "escape.bind", "option 'shared'"},
        {R"({"Mounts":[{"Type":"bind","Source":"/etc","Target":"/e","ReadOnly":true}]})",
         "escape.bind", "mounts a host path"},
    }));
    CAPTURE(hc);
    const Rewritten r = create(rules, hc);
    INFO(describe(r));
    REQUIRE_FALSE(r.decision.allowed());
    CHECK(r.decision.http_status == 403);
    CHECK(r.decision.rule_id == rule);
    CHECK_THAT(r.decision.tenant_message, Contains(text) && Contains("acme"));
  }
}

TEST_CASE("capabilities beyond Docker's defaults need a grant", "[policy][grants][escape]") {
  Tenant rules = base_rules();
  CHECK(create(rules, R"({"CapAdd":["NET_BIND_SERVICE","chown"]})").decision.allowed());
  const Rewritten refused = create(rules, R"({"CapAdd":["NET_ADMIN"]})");
  REQUIRE_FALSE(refused.decision.allowed());
  CHECK_THAT(refused.decision.tenant_message,
             Contains("HostConfig.CapAdd 'NET_ADMIN' is not allowed for tenant acme"));
  rules.grants.capabilities = {"CAP_NET_ADMIN"};
  CHECK(create(rules, R"({"CapAdd":["net_admin"]})").decision.allowed());
  CHECK(create(rules, R"({"CapAdd":["CAP_NET_ADMIN"]})").decision.allowed());
  CHECK_FALSE(create(rules, R"({"CapAdd":["SYS_ADMIN"]})").decision.allowed());
  CHECK_FALSE(create(rules, R"({"CapAdd":["ALL"]})").decision.allowed());
}

TEST_CASE("published ports must lie in the tenant's host port ranges and are counted",
          "[policy][grants][ports]") {
  Tenant rules = base_rules();
  SECTION("no range granted: no publishing") {
    const Rewritten r = create(rules, R"({"PortBindings":{"80/tcp":[{"HostPort":"8080"}]}})");
    REQUIRE_FALSE(r.decision.allowed());
    CHECK(r.decision.rule_id == "ports.range");
    CHECK_THAT(r.decision.tenant_message, Contains("(none)"));
  }
  rules.grants.host_ports = {{8000, 8099}};
  SECTION("inside") {
    const Rewritten r = create(
        rules, R"({"PortBindings":{"80/tcp":[{"HostPort":"8080"},{"HostIp":"127.0.0.1","HostPort":"8081"}],
                                   "53/udp":[{"HostPort":"8010-8012"}]}})");
    INFO(describe(r));
    REQUIRE(r.decision.allowed());
    REQUIRE(r.claim.has_value());
    CHECK(r.claim->ports == 3);  // one host port per binding, a range included
  }
  SECTION("a port published without a host port takes one of the tenant's, not the host's") {
    const Rewritten r = create(rules, R"({"PortBindings":{"80/tcp":[{"HostPort":""}]}})");
    INFO(describe(r));
    REQUIRE(r.decision.allowed());
    const auto body = nlohmann::json::parse(*r.body);
    CHECK(body["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"] == "8000-8099");
    CHECK(r.claim->ports == 1);
  }
  SECTION("-P publishes the exposed ports on the tenant's ports, the image's added by the proxy") {
    const Rewritten r = create(
        rules, R"({"PublishAllPorts":true,"PortBindings":{"53/udp":[{"HostPort":"8053"}]}})");
    INFO(describe(r));
    REQUIRE(r.decision.allowed());
    CHECK(r.publish_image_ports);
    auto body = *r.body;
    CHECK(nlohmann::json::parse(body)["HostConfig"]["PublishAllPorts"] == false);
    const auto added = add_published_ports(
        body, R"({"Config":{"ExposedPorts":{"80/tcp":{},"53/udp":{},"bogus/x":{}}}})", rules);
    REQUIRE(added.has_value());
    CHECK(*added == 1);  // 53/udp was bound already; a spec dockerd would not take is skipped
    const auto hc = nlohmann::json::parse(body)["HostConfig"];
    CHECK(hc["PortBindings"]["80/tcp"][0]["HostPort"] == "8000-8099");
    CHECK(hc["PortBindings"]["53/udp"][0]["HostPort"] == "8053");
  }
  SECTION("outside, or no range to take one from") {
    Tenant none = base_rules();
    CHECK(create(none, R"({"PublishAllPorts":true})").decision.rule_id == "ports.random");
    CHECK(create(none, R"({"PortBindings":{"80/tcp":[{"HostPort":""}]}})").decision.rule_id ==
          "ports.random");
    auto [hc, rule, text] = GENERATE(table<std::string, std::string, std::string>({
        {R"({"PortBindings":{"80/tcp":[{"HostPort":"80"}]}})", "ports.range",
         "host port 80 is outside the host ports of tenant acme (8000-8099)"},
        {R"({"PortBindings":{"80/tcp":[{"HostPort":"8090-8100"}]}})", "ports.range", "8090-8100"},
    }));
    CAPTURE(hc);
    const Rewritten r = create(rules, hc);
    REQUIRE_FALSE(r.decision.allowed());
    CHECK(r.decision.rule_id == rule);
    CHECK_THAT(r.decision.tenant_message, Contains(text));
  }
}

TEST_CASE("a tenant uses only the shared images its patterns allow, and always its own",
          "[policy][grants][images]") {
  Tenant rules = base_rules();
  rules.images = std::vector<std::string>{"berth-test/*"};
  CHECK(create(rules, "{}", "berth-test/busybox").decision.allowed());
  CHECK(create(rules, "{}", "app:v1").decision.allowed());  // its own
  const Rewritten by_tag = create(rules, "{}", "tools/debug:1");
  REQUIRE_FALSE(by_tag.decision.allowed());
  CHECK(by_tag.decision.rule_id == "image.not_allowed");
  CHECK_THAT(by_tag.decision.tenant_message,
             Contains("image 'tools/debug:1' is not among the shared images tenant acme may use"));
  CHECK_FALSE(create(rules, "{}", kTools).decision.allowed());  // by id, too
  CHECK_FALSE(create(rules, "{}", kTools.substr(7, 12)).decision.allowed());

  const auto dockerfile = rewrite_dockerfile(rules, "FROM tools/debug:1\n", sample_index());
  REQUIRE_FALSE(dockerfile.has_value());
  CHECK(dockerfile.error().rule_id == "image.not_allowed");
  CHECK(rewrite_dockerfile(rules, "FROM berth-test/busybox\n", sample_index()).has_value());
  const auto copy = rewrite_dockerfile(rules, "FROM app:v1\nCOPY --from=tools/debug:1 /x /x\n",
                                       sample_index());
  CHECK_FALSE(copy.has_value());
}

TEST_CASE("image patterns match repositories with any tag, or exact tags, with '*' wildcards",
          "[policy][images]") {
  CHECK(image_pattern_matches("busybox", "busybox:latest"));
  CHECK(image_pattern_matches("busybox:1.*", "busybox:1.36"));
  CHECK_FALSE(image_pattern_matches("busybox:1.*", "busybox:latest"));
  CHECK(image_pattern_matches("registry.example.com/*", "registry.example.com/team/app:v1"));
  CHECK_FALSE(image_pattern_matches("registry.example.com/*", "evil.com/registry.example.com"));
  CHECK_FALSE(image_pattern_matches("busybox", "busybox-evil:latest"));
  CHECK(image_pattern_matches("*", "anything/at:all"));
}

// ---------------------------------------------------------------------------------------------
// Quotas and reservations
// ---------------------------------------------------------------------------------------------

TEST_CASE("quota refusals say what is in use and what the limit is", "[policy][quota]") {
  Tenant rules = base_rules();
  rules.quota.containers = 3;
  rules.quota.memory = 2 * GiB;
  rules.quota.nano_cpus = 2 * cpu;
  rules.quota.published_ports = 2;
  const Usage in_use{3, GiB + GiB / 2, cpu + cpu / 2, 2};
  auto d = judge_quota(rules, in_use, {}, true);
  REQUIRE(d.has_value());
  CHECK(d->rule_id == "quota.containers");
  CHECK(d->http_status == 403);
  CHECK_THAT(d->tenant_message, Contains("tenant acme already holds 3 containers; its quota is 3"));
  d = judge_quota(rules, {1, GiB + GiB / 2, 0, 0}, {GiB, 0, 0}, true);
  REQUIRE(d.has_value());
  CHECK(d->rule_id == "quota.memory");
  CHECK_THAT(d->tenant_message, Contains("1GiB does not fit tenant acme's memory quota: 1.5GiB "
                                         "of 2GiB is held"));
  d = judge_quota(rules, {1, 0, cpu + cpu / 2, 0}, {0, cpu, 0}, true);
  REQUIRE(d.has_value());
  CHECK(d->rule_id == "quota.cpus");
  CHECK_THAT(d->tenant_message, Contains("1.5 of 2 CPUs"));
  d = judge_quota(rules, {1, 0, 0, 2}, {0, 0, 1}, true);
  REQUIRE(d.has_value());
  CHECK(d->rule_id == "quota.published_ports");
  CHECK_FALSE(judge_quota(rules, {2, GiB, cpu, 1}, {GiB, cpu, 1}, true).has_value());
  // an update does not count one more container
  CHECK_FALSE(judge_quota(rules, {3, 0, 0, 0}, {}, false).has_value());
}

TEST_CASE("reservations in flight count against the quota until committed or released",
          "[policy][quota]") {
  OwnershipIndex idx = sample_index();  // acme_web holds 512MiB, 1 CPU, 1 port
  Tenant rules = base_rules();
  rules.quota.containers = 10;
  rules.quota.memory = 4 * GiB;
  // 50 creates judged and reserved one after another, as the proxy does under its lock.
  int granted = 0;
  std::vector<std::uint64_t> held;
  for (int i = 0; i < 50; ++i) {
    const Resources claim{256 * MiB, 0, 0};
    if (!judge_quota(rules, idx.usage_of("acme"), claim, true)) {
      held.push_back(idx.reserve("acme", claim, ""));
      ++granted;
    }
  }
  CHECK(granted == 9);  // 1 held + 9 reserved = the quota of 10
  CHECK(idx.usage_of("acme").containers == 10);
  CHECK(idx.usage_of("acme").memory == 512 * MiB + 9 * 256 * MiB);
  CHECK(idx.usage_of("globex").containers == 0);

  // dockerd refused one: its reservation goes, and one more fits.
  idx.release(held.back());
  held.pop_back();
  CHECK(idx.usage_of("acme").containers == 9);
  // One succeeded: it enters the index with its holding; the count does not change.
  const std::string id = std::string(60, 'a') + "beef";
  idx.commit(held.front(), id, "acme_new");
  CHECK(idx.usage_of("acme").containers == 9);
  REQUIRE(idx.resources_of(id).has_value());
  CHECK(idx.resources_of(id)->memory == 256 * MiB);
  CHECK(idx.find_container("acme", "new").result == Lookup::found);
  // Removing it frees what it held.
  idx.erase_container(id);
  CHECK(idx.usage_of("acme").containers == 8);
}

TEST_CASE("an update in flight counts with the larger of the old and new holding",
          "[policy][quota]") {
  OwnershipIndex idx = sample_index();
  const auto r = idx.reserve("acme", {2 * GiB, cpu / 2, 1}, kAcmeWeb);
  const Usage during = idx.usage_of("acme");
  CHECK(during.containers == 1);
  CHECK(during.memory == 2 * GiB);
  CHECK(during.nano_cpus == cpu);
  // judging another update of the same container leaves it out
  CHECK(idx.usage_of("acme", kAcmeWeb).memory == 0);
  idx.commit(r, kAcmeWeb);
  CHECK(idx.usage_of("acme").memory == 2 * GiB);
  CHECK(idx.usage_of("acme").nano_cpus == cpu / 2);
  CHECK(idx.reservation_count() == 0);
}

TEST_CASE("a full resynchronisation keeps reservations in flight and known holdings",
          "[policy][quota]") {
  OwnershipIndex idx = sample_index();
  const auto r = idx.reserve("acme", {GiB, 0, 0}, "");
  OwnershipIndex fresh;
  fresh.put_container({kAcmeWeb, "acme", "acme_web", "running"});
  idx.replace_all(std::move(fresh));
  CHECK(idx.usage_of("acme").containers == 2);
  CHECK(idx.usage_of("acme").memory == GiB + 512 * MiB);
  idx.release(r);
  CHECK(idx.usage_of("acme").containers == 1);
}

TEST_CASE("what a container holds is read from dockerd's HostConfig", "[policy][quota]") {
  const json hc = json::parse(R"({"Memory":268435456,"NanoCpus":0,"CpuQuota":50000,
      "CpuPeriod":100000,"PortBindings":{"80/tcp":[{"HostIp":"","HostPort":"8080"}],
      "81/tcp":[{"HostPort":"8081-8083"}]}})");
  const Resources r = held_resources(hc);
  CHECK(r.memory == 256 * MiB);
  CHECK(r.nano_cpus == cpu / 2);
  CHECK(r.ports == 2);
  CHECK(held_resources(json::parse(R"({"NanoCpus":2000000000})")).nano_cpus == 2 * cpu);
}

// ---------------------------------------------------------------------------------------------
// Fields that mean the same thing to dockerd in other words
// ---------------------------------------------------------------------------------------------

TEST_CASE("a negative CpuQuota, which lifts the CPU limit whatever NanoCpus says, is refused "
          "where CPUs are ruled",
          "[policy][limits][escape]") {
  Tenant rules = base_rules();
  rules.defaults.nano_cpus = cpu / 2;
  CHECK(create(rules, R"({"CpuQuota":-1})").decision.allowed());  // no CPU rule: its choice
  rules.limits.nano_cpus = 2 * cpu;
  const Rewritten at_create = create(rules, R"({"CpuQuota":-1})");
  REQUIRE_FALSE(at_create.decision.allowed());
  CHECK(at_create.decision.rule_id == "limits.cpus");
  CHECK_THAT(at_create.decision.tenant_message, Contains("unlimited HostConfig.CpuQuota"));
  const Rewritten at_update = judge(rules, "POST", "/v1.41/containers/" + kAcmeWeb + "/update",
                                    R"({"CpuQuota":-1,"CpuPeriod":100000})");
  CHECK_FALSE(at_update.decision.allowed());
  CHECK_FALSE(create(rules, R"({"CpuPeriod":-5})").decision.allowed());
}

TEST_CASE("an update changes CPUs by quota only together with the period, so berth counts them "
          "right",
          "[policy][limits][quota]") {
  Tenant rules = base_rules();
  rules.quota.nano_cpus = 4 * cpu;
  const std::string target = "/v1.41/containers/" + kAcmeWeb + "/update";
  for (const char* body : {R"({"CpuQuota":100000})", R"({"CpuPeriod":1000})"}) {
    CAPTURE(body);
    const Rewritten r = judge(rules, "POST", target, body);
    REQUIRE_FALSE(r.decision.allowed());
    CHECK(r.decision.http_status == 400);
    CHECK_THAT(r.decision.tenant_message, Contains("together"));
  }
  const Rewritten both = judge(rules, "POST", target, R"({"CpuQuota":3000,"CpuPeriod":1000})");
  INFO(describe(both));
  REQUIRE(both.decision.allowed());
  CHECK(both.claim->nano_cpus == 3 * cpu);
  CHECK(judge(rules, "POST", target, R"({"NanoCpus":1500000000})").decision.allowed());
}

TEST_CASE("swap is at most as much as memory where memory is ruled; unlimited swap is refused",
          "[policy][limits][escape]") {
  Tenant rules = base_rules();
  rules.limits.memory = GiB;
  CHECK(create(rules, R"({"Memory":268435456,"MemorySwap":536870912})").decision.allowed());
  for (const char* hc : {R"({"Memory":268435456,"MemorySwap":-1})",
                         R"({"Memory":268435456,"MemorySwap":1073741824})"}) {
    CAPTURE(hc);
    const Rewritten r = create(rules, hc);
    REQUIRE_FALSE(r.decision.allowed());
    CHECK(r.decision.rule_id == "limits.swap");
  }
  rules.limits.clamp = true;
  // Clamped memory takes its swap down with it.
  const Rewritten clamped = create(rules, R"({"Memory":4294967296,"MemorySwap":8589934592})");
  REQUIRE(clamped.decision.allowed());
  CHECK(host_config_of(clamped)["Memory"] == GiB);
  CHECK(host_config_of(clamped)["MemorySwap"] == 2 * GiB);
}

TEST_CASE("an update that leaves the restart policy alone is not judged as 'no'",
          "[policy][limits]") {
  Tenant rules = base_rules();
  rules.limits.restart_policies = std::vector<std::string>{"always"};
  const std::string target = "/v1.41/containers/" + kAcmeWeb + "/update";
  CHECK(judge(rules, "POST", target, R"({"NanoCpus":1000000000,"RestartPolicy":{"Name":""}})")
            .decision.allowed());
  CHECK_FALSE(judge(rules, "POST", target, R"({"RestartPolicy":{"Name":"on-failure"}})")
                  .decision.allowed());
}

TEST_CASE("an update of a container whose holding berth does not know is judged on what it "
          "changes",
          "[policy][quota]") {
  OwnershipIndex idx = sample_index();
  const std::string old = std::string(60, 'a') + "01d0";
  idx.put_container({old, "acme", "acme_old", "running"});  // no known resources
  Tenant rules = base_rules();
  rules.quota.memory = 4 * GiB;
  const Rewritten r =
      judge(rules, "POST", "/v1.41/containers/" + old + "/update", R"({"CpuShares":512})", idx);
  INFO(describe(r));
  CHECK(r.decision.allowed());
}

TEST_CASE("a build's RUN steps get the tenant's defaults and limits", "[policy][limits][build]") {
  Tenant rules = base_rules();
  rules.defaults.memory = 256 * MiB;
  rules.defaults.nano_cpus = cpu / 2;
  rules.limits.memory = GiB;
  const Rewritten r = judge(rules, "POST", "/v1.41/build?t=app", "");
  INFO(describe(r));
  REQUIRE(r.decision.allowed());
  CHECK_THAT(r.target, Contains("memory=268435456"));
  CHECK_THAT(r.target, Contains("cpuquota=50000") && Contains("cpuperiod=100000"));
  CHECK_FALSE(r.claim.has_value());  // a build holds no quota
  const Rewritten over = judge(rules, "POST", "/v1.41/build?t=app&memory=4294967296", "");
  REQUIRE_FALSE(over.decision.allowed());
  CHECK(over.decision.rule_id == "limits.memory");
  const Rewritten twice =
      judge(rules, "POST", "/v1.41/build?t=app&memory=104857600&memory=9999999999", "");
  REQUIRE_FALSE(twice.decision.allowed());  // dockerd reads the first: two readers must agree
  CHECK(twice.decision.rule_id == "query.not_allowed");
}

TEST_CASE("a create whose container the event stream brought in before dockerd's answer is "
          "counted once",
          "[policy][quota]") {
  OwnershipIndex idx = sample_index();
  const auto r = idx.reserve("acme", {GiB, 0, 0}, "");
  idx.name_reservation(r, "acme_fresh");
  CHECK(idx.usage_of("acme").containers == 2);
  const std::string id = std::string(60, 'a') + "f00d";
  idx.put_container({id, "acme", "acme_fresh", "created"});  // the create event
  CHECK(idx.usage_of("acme").containers == 2);
  CHECK(idx.usage_of("acme").memory == 512 * MiB + GiB);
  idx.commit(r, id);
  CHECK(idx.usage_of("acme").containers == 2);
  CHECK(idx.usage_of("acme").memory == 512 * MiB + GiB);
}

TEST_CASE("a create committed after its container was removed does not bring it back",
          "[policy][quota]") {
  OwnershipIndex idx = sample_index();
  const auto r = idx.reserve("acme", {GiB, 0, 0}, "");
  const std::string id = std::string(60, 'a') + "dead";
  idx.put_container({id, "acme", "acme_gone", "created"});
  idx.erase_container(id);  // removed by another request before this one's answer was read
  idx.commit(r, id, "acme_gone");
  CHECK_FALSE(idx.container_by_id(id).has_value());
  CHECK(idx.usage_of("acme").containers == 1);
}
