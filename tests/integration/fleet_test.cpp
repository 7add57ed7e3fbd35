// The test fleet berth's multi-host work runs on (issue #15): several stock dockerds on this
// machine, each in a network namespace of its own, joined in a Swarm whose attachable overlay
// carries plain containers between hosts, and removed without a trace on the host's Docker.

#include <filesystem>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/fleet.hpp"
#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/text.hpp"

using berth::test::describe;
using berth::test::run;
using berth::test::TestFleet;
using berth::test::test_image;
using berth::test::trim;
using Catch::Matchers::Contains;

TEST_CASE("three dockerds in network namespaces of their own form a Swarm whose attachable "
          "overlay joins containers on different hosts by name, and leave the host's Docker as "
          "it was",
          "[fleet]") {
  const auto docker0_before = run({"ip", "-o", "link", "show", "docker0"});
  REQUIRE(docker0_before.ok());
  std::string id;
  {
    TestFleet fleet(3);
    INFO(fleet.failure());
    REQUIRE(fleet.up());
    id = fleet.id();
    auto r = fleet.docker(0, {"node", "ls", "--format", "{{.Hostname}} {{.Status}}"});
    INFO(describe(r));
    for (int h = 0; h < 3; ++h) {
      CHECK_THAT(r.out, Contains("bf-" + id + "-h" + std::to_string(h) + " Ready"));
    }
    r = fleet.docker(0, {"network", "create", "-d", "overlay", "--attachable", "--subnet",
                         "10.252.0.0/24", "fleetnet"});
    INFO(describe(r));
    REQUIRE(r.ok());
    r = fleet.docker(0, {"run", "-d", "--name", "srv", "--network", "fleetnet", test_image, "sh",
                         "-c", "while true; do echo pong-from-h0 | nc -l -p 7000; done"});
    INFO(describe(r));
    REQUIRE(r.ok());
    // From the other hosts: the name resolves across hosts and a TCP exchange goes through.
    for (int h : {1, 2}) {
      CAPTURE(h);
      r = fleet.docker(h, {"run", "--rm", "--network", "fleetnet", test_image, "sh", "-c",
                           "for i in 1 2 3 4 5; do echo hi | nc -w2 srv 7000 && exit 0; "
                           "sleep 0.5; done; exit 1"});
      INFO(describe(r));
      CHECK(trim(r.out) == "pong-from-h0");
    }
    // Each host is its own Docker: nothing of the fleet shows on the host's own dockerd.
    const auto mine = run({"docker", "ps", "-a", "--filter", "name=^srv$", "--format", "{{.ID}}"});
    CHECK(trim(mine.out).empty());
  }
  // Torn down: no namespace, no state, and the host's docker0 and dockerd untouched.
  const auto netns = run({"ip", "netns", "list"});
  CHECK_THAT(netns.out, !Contains("bf-" + id + "-"));
  CHECK_FALSE(std::filesystem::exists("/run/bf-" + id));
  CHECK_FALSE(std::filesystem::exists("/var/lib/bf-" + id));
  const auto docker0_after = run({"ip", "-o", "link", "show", "docker0"});
  CHECK(docker0_after.ok());
  CHECK(run({"docker", "info", "--format", "{{.ServerVersion}}"}).ok());
}

namespace {

// What a container on `host` (on `network`, or the default bridge) reaches of each address:port.
std::string probe(const TestFleet& fleet, int host, const std::string& network,
                  const std::vector<std::string>& targets) {
  std::string script;
  for (const auto& t : targets) {
    const auto colon = t.find(':');
    script += "if echo | nc -w2 " + t.substr(0, colon) + " " + t.substr(colon + 1) +
              " >/dev/null 2>&1; then echo open " + t + "; else echo closed " + t + "; fi; ";
  }
  std::vector<std::string> args{"run", "--rm"};
  if (!network.empty()) {
    args.insert(args.end(), {"--network", network});
  }
  args.insert(args.end(), {test_image, "sh", "-c", script});
  const auto r = fleet.docker(host, args);
  INFO(describe(r));
  return r.out;
}

}  // namespace

TEST_CASE("containers on a fleet host cannot reach the Swarm's control ports once the host runs "
          "deploy/fleet/protect-control-ports.sh, and the overlay still carries their traffic",
          "[fleet][security]") {
  TestFleet fleet(2);
  INFO(fleet.failure());
  REQUIRE(fleet.up());
  const std::vector<std::string> ports = {fleet.address(0) + ":2377", fleet.address(0) + ":7946",
                                          fleet.address(1) + ":7946"};
  // The threat (Docker advisory GHSA-vwm3-crmr-xfxw): from a plain container on the worker,
  // the manager's cluster port and every host's gossip port answer.
  const std::string before = probe(fleet, 1, "", ports);
  CHECK_THAT(before, Contains("open " + ports[0]) && Contains("open " + ports[1]));
  const auto guard =
      berth::test::integration_source_dir().parent_path().parent_path() / "deploy" / "fleet" /
      "protect-control-ports.sh";
  for (int h = 0; h < fleet.size(); ++h) {
    const auto r = fleet.in_namespace(h, {"bash", guard.string()});
    INFO(describe(r));
    REQUIRE(r.ok());
    REQUIRE(fleet.in_namespace(h, {"bash", guard.string()}).ok());  // idempotent
  }
  REQUIRE(fleet.docker(0, {"network", "create", "-d", "overlay", "--attachable", "--subnet",
                           "10.252.0.0/24", "fleetnet"})
              .ok());
  REQUIRE(fleet.docker(0, {"run", "-d", "--name", "srv", "--network", "fleetnet", test_image,
                           "sh", "-c", "while true; do echo pong | nc -l -p 7000; done"})
              .ok());
  for (const std::string network : {"", "fleetnet"}) {
    CAPTURE(network);
    const std::string after = probe(fleet, 1, network, ports);
    for (const auto& p : ports) {
      CHECK_THAT(after, Contains("closed " + p));
    }
  }
  // The hosts' own Swarm traffic and the overlay are untouched.
  const auto nodes = fleet.docker(0, {"node", "ls", "--format", "{{.Status}}"});
  CHECK(nodes.out == "Ready\nReady\n");
  const auto r = fleet.docker(1, {"run", "--rm", "--network", "fleetnet", test_image, "sh", "-c",
                                  "for i in 1 2 3 4 5; do echo hi | nc -w2 srv 7000 && exit 0; "
                                  "sleep 0.5; done; exit 1"});
  INFO(describe(r));
  CHECK(trim(r.out) == "pong");
}
