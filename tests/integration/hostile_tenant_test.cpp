// What an outside review did as one tenant against another, through the real docker CLIs and a
// real dockerd (issue #13): each refusal is Docker-shaped, names the rule, and leaves dockerd
// unchanged.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/dockerd.hpp"
#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/text.hpp"

using berth::test::describe;
using berth::test::ProxyOptions;
using berth::test::ProxyUnderTest;
using berth::test::test_image;
using berth::test::trim;
using Catch::Matchers::Contains;
using json = nlohmann::json;

namespace {

json inspect_network(const std::string& id) {
  const auto reply = berth::test::dockerd_request("GET", "/networks/" + id);
  REQUIRE(reply.status == 200);
  return json::parse(reply.body);
}

std::size_t labelled_networks(const std::string& label) {
  return berth::test::list_labelled(label).networks.size();
}

}  // namespace

TEST_CASE("docker top takes the usual ps options and refuses those that read other processes",
          "[proxy][tenant][top]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const auto run =
      p.docker(cli, p.tenant_bundle(), {"run", "-d", "--name", "top", test_image, "sleep", "60"});
  INFO(describe(run));
  REQUIRE(run.ok());
  const auto plain = p.docker(cli, p.tenant_bundle(), {"top", "top"});
  INFO(describe(plain));
  CHECK(plain.ok());
  CHECK_THAT(plain.out, Contains("sleep 60"));
  const auto aux = p.docker(cli, p.tenant_bundle(), {"top", "top", "aux"});
  CHECK(aux.ok());
  // The review's leak: the PID column renamed, then every host process selected.
  const auto leak = p.docker(cli, p.tenant_bundle(), {"top", "top", "-ocomm=PID", "-p", "1"});
  INFO(describe(leak));
  CHECK_FALSE(leak.ok());
  CHECK_THAT(leak.err, Contains("ps_args"));
  CHECK_THAT(leak.err, !Contains("Unexpected pid"));
}

TEST_CASE("a tenant's network takes its subnet from the tenant's pool and cannot claim a routed "
          "range",
          "[proxy][tenant][network][pools]") {
  ProxyOptions o;
  o.tenant_rules = "    networks:\n      pools: [\"10.213.0.0/20\"]\n";
  ProxyUnderTest p(o);
  const auto cli = std::string("/usr/bin/docker");
  const auto made = p.docker(cli, p.tenant_bundle(), {"network", "create", "app"});
  INFO(describe(made));
  REQUIRE(made.ok());
  const json net = inspect_network(trim(made.out));
  const std::string subnet = net["IPAM"]["Config"][0]["Subnet"];
  CHECK(subnet.starts_with("10.213."));
  CHECK(subnet.ends_with("/24"));

  // The review's case: a globally routed /24 (tests send no traffic there; they check what
  // dockerd stored and the host's routes).
  const std::size_t before = labelled_networks(p.tenant_label());
  const auto routed =
      p.docker(cli, p.tenant_bundle(), {"network", "create", "--subnet", "8.8.8.0/24", "evil"});
  INFO(describe(routed));
  CHECK_FALSE(routed.ok());
  CHECK_THAT(routed.err, Contains("outside tenant " + p.id() + "'s address pools"));
  CHECK(labelled_networks(p.tenant_label()) == before);
  const auto route = berth::test::run({"ip", "route", "get", "8.8.8.8"});
  CHECK_THAT(route.out, !Contains("br-"));

  // Inside the pool but on the network just made: refused too.
  const auto overlap =
      p.docker(cli, p.tenant_bundle(), {"network", "create", "--subnet", subnet, "twin"});
  CHECK_FALSE(overlap.ok());
  CHECK_THAT(overlap.err, Contains("overlaps"));
  CHECK(labelled_networks(p.tenant_label()) == before);
}

TEST_CASE("a tenant without a pool may not choose its network's addresses",
          "[proxy][tenant][network][pools]") {
  ProxyUnderTest p;
  const std::size_t before = labelled_networks(p.tenant_label());
  const auto r = p.docker("/usr/local/bin/docker", p.tenant_bundle(),
                          {"network", "create", "--subnet", "10.214.0.0/24", "mine"});
  INFO(describe(r));
  CHECK_FALSE(r.ok());
  CHECK_THAT(r.err, Contains("has no address pool"));
  CHECK(labelled_networks(p.tenant_label()) == before);
}

TEST_CASE("a container created through API 1.40 gets a private cgroup namespace",
          "[proxy][tenant][version defaults]") {
  ProxyUnderTest p;
  const auto r = p.curl(p.tenant_bundle(),
                        {"-sS", "-X", "POST", "-H", "Content-Type: application/json", "--data",
                         R"({"Image":")" + std::string(test_image) + R"(","Cmd":["true"]})",
                         p.url() + "/v1.40/containers/create?name=old"});
  INFO(describe(r));
  REQUIRE(r.ok());
  const auto id = json::parse(r.out).value("Id", "");
  REQUIRE_FALSE(id.empty());
  const auto inspect = berth::test::dockerd_request("GET", "/containers/" + id + "/json");
  REQUIRE(inspect.status == 200);
  const json hc = json::parse(inspect.body)["HostConfig"];
  CHECK(hc["CgroupnsMode"] == "private");
  CHECK(hc["IpcMode"] == "private");
}

TEST_CASE("a refusal made while forwarding is accounted once, in the audit log and the metrics",
          "[proxy][audit]") {
  berth::test::TempDir audit_dir("berth-audit");
  const auto audit = audit_dir.path() / "audit.log";
  ProxyOptions o;
  o.proxy_args = {"--audit-log", audit.string(), "--metrics-listen", "127.0.0.1:0"};
  ProxyUnderTest p(o);
  // A build context without a Dockerfile is refused while it streams, from inside forward,
  // which used to account it a second time.
  std::filesystem::create_directories(audit_dir.path() / "ctx");
  std::ofstream(audit_dir.path() / "ctx" / "hello.txt") << "hello\n";
  const auto tar = audit_dir.path() / "ctx.tar";
  REQUIRE(berth::test::run({"tar", "-cf", tar.string(), "-C", (audit_dir.path() / "ctx").string(),
                            "hello.txt"})
              .ok());
  const auto r = p.curl(p.tenant_bundle(),
                        {"-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H",
                         "Content-Type: application/x-tar", "--data-binary", "@" + tar.string(),
                         p.url() + "/v1.41/build?t=never"});
  CHECK(r.out == "403");
  // Accounted after the answer is written: poll (bounded), then look once more.
  const auto refused_count = [&] {
    const auto metrics = berth::test::run(
        {"curl", "-sS", "http://127.0.0.1:" + std::to_string(p.metrics_port()) + "/metrics"});
    std::size_t counted = 0;
    std::istringstream text(metrics.out);
    for (std::string line; std::getline(text, line);) {
      if (line.starts_with("berth_proxy_requests_total{") &&
          line.find(p.id()) != std::string::npos &&
          line.find("decision=\"refused\"") != std::string::npos) {
        counted += static_cast<std::size_t>(std::stod(line.substr(line.rfind(' ') + 1)));
      }
    }
    return counted;
  };
  for (int i = 0; i < 50 && refused_count() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(refused_count() == 1);
  std::size_t lines = 0;
  std::ifstream in(audit);
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"endpoint\":\"build.run\"") != std::string::npos) {
      ++lines;
    }
  }
  CHECK(lines == 1);
}
