// What a tenant gets from berth: docker version, and a docker info that reveals nothing of
// anyone else; daemon-wide administration and escape vectors are refused with a Docker-shaped
// 403 that says why, and a refused request changes nothing in dockerd.
// Isolation between two tenants is in isolation_test.cpp.

#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/dockerd.hpp"
#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/text.hpp"

using berth::test::contains_nocase;
using berth::test::describe;
using berth::test::ProxyUnderTest;
using berth::test::test_image;
using berth::test::trim;
using Catch::Matchers::Contains;

namespace {

inline constexpr const char* not_available = "not available to tenants";

struct DockerdSnapshot {
  berth::test::LabelledObjects by_tenant;
  berth::test::LabelledObjects by_test;
};

DockerdSnapshot snapshot(const ProxyUnderTest& p) {
  return {berth::test::list_labelled(p.tenant_label()), berth::test::list_labelled(p.test_label())};
}

/// The tenant's CLI command fails with a daemon error containing `message`, the same request
/// sent with curl gets 403 and a Docker-shaped JSON {"message"} containing it, and dockerd is
/// unchanged (everything by the tenant's and the test's labels, before and after).
void check_refused_to_tenant(const ProxyUnderTest& p, const std::string& cli,
                             const std::vector<std::string>& args,
                             const std::vector<std::string>& curl_args,
                             const std::string& message = not_available) {
  const auto before = snapshot(p);
  const auto r = p.docker(cli, p.tenant_bundle(), args);
  {
    INFO("docker: " << describe(r));
    CHECK_FALSE(r.ok());
    CHECK_THAT(r.err, Contains("Error response from daemon") && Contains(message));
  }

  std::vector<std::string> a{"-i"};
  a.insert(a.end(), curl_args.begin(), curl_args.end());
  const auto curl = p.curl(p.tenant_bundle(), a);
  {
    INFO("curl: " << describe(curl));
    REQUIRE(curl.ok());
    const auto reply = berth::test::parse_http_response(curl.out);
    CHECK(reply.status == 403);
    CHECK(contains_nocase(reply.headers, "\r\nContent-Type: application/json"));
    const auto body = nlohmann::json::parse(reply.body, nullptr, false);
    REQUIRE(body.is_object());
    REQUIRE(body.contains("message"));
    REQUIRE(body["message"].is_string());
    CHECK_THAT(body["message"].get<std::string>(), Contains(message));
  }

  const auto after = snapshot(p);
  INFO("before: " << before.by_tenant.describe() << before.by_test.describe());
  INFO("after: " << after.by_tenant.describe() << after.by_test.describe());
  CHECK(after.by_tenant == before.by_tenant);
  CHECK(after.by_test == before.by_test);
}

/// A POST /containers/create body for curl.
std::string create_body(const std::string& host_config) {
  return R"({"Image":")" + std::string(test_image) + R"(","Cmd":["true"],"HostConfig":)" +
         host_config + "}";
}

}  // namespace

TEST_CASE("a tenant sees dockerd's version with docker version", "[proxy][tenant][version]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const auto r = p.docker(cli, p.tenant_bundle(), {"version", "--format", "{{.Server.Version}}"});
  INFO(describe(r));
  CHECK(r.ok());
  CHECK(trim(r.out) == berth::test::dockerd_field("/version", "Version"));
}

TEST_CASE("a tenant's docker info counts none of the containers it does not own",
          "[proxy][tenant][info]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const std::string theirs = p.name("operator-owned");
  const auto op = p.docker(
      cli, p.operator_bundle(),
      {"run", "-d", "--name", theirs, "--label", p.test_label(), test_image, "sleep", "300"});
  INFO("operator run: " << describe(op));
  REQUIRE(op.ok());

  const auto counts = p.docker(
      cli, p.tenant_bundle(),
      {"info", "--format",
       "{{.Containers}}|{{.ContainersRunning}}|{{.ContainersPaused}}|{{.ContainersStopped}}"});
  INFO("tenant info: " << describe(counts));
  REQUIRE(counts.ok());
  CHECK(trim(counts.out) == "0|0|0|0");

  const auto plain = p.docker(cli, p.tenant_bundle(), {"info"});
  INFO("tenant info: " << describe(plain));
  CHECK(plain.ok());
  CHECK_THAT(plain.out, Contains("Containers: 0"));
  CHECK_THAT(plain.out, !Contains(theirs));
  CHECK_THAT(plain.out, !Contains(op.out.substr(0, 12)));
}

TEST_CASE("a tenant's docker node ls is refused as not available to tenants",
          "[proxy][tenant][refusal]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  check_refused_to_tenant(p, cli, {"node", "ls"}, {p.url() + "/nodes"});
}

TEST_CASE("a tenant's docker swarm unlock-key is refused as not available to tenants",
          "[proxy][tenant][refusal]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  check_refused_to_tenant(p, cli, {"swarm", "unlock-key"}, {p.url() + "/swarm/unlockkey"});
}

TEST_CASE("a tenant's privileged docker run is refused and creates nothing",
          "[proxy][tenant][refusal][escape]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const std::string name = p.name("privileged");
  check_refused_to_tenant(
      p, cli, {"run", "--rm", "--privileged", "--name", name, test_image, "true"},
      {"-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
       create_body(R"({"Privileged":true})"), p.url() + "/containers/create?name=" + name},
      "Privileged");
  CHECK(berth::test::container_state(name).empty());
  berth::test::remove_container(name);
}

TEST_CASE("a tenant's docker run with a host path mount is refused and creates nothing",
          "[proxy][tenant][refusal][escape]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const std::string name = p.name("hostpath");
  check_refused_to_tenant(
      p, cli, {"run", "--rm", "-v", "/:/host", "--name", name, test_image, "true"},
      {"-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
       create_body(R"({"Binds":["/:/host"]})"), p.url() + "/containers/create?name=" + name},
      "host path");
  CHECK(berth::test::container_state(name).empty());
  berth::test::remove_container(name);
}
