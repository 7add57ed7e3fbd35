// The test fleet berth's multi-host work runs on (issue #15): several stock dockerds on this
// machine, each in a network namespace of its own, joined in a Swarm whose attachable overlay
// carries plain containers between hosts, and removed without a trace on the host's Docker.

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <catch2/catch.hpp>

#include "tests/support/dockerd.hpp"
#include "tests/support/fleet.hpp"
#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/text.hpp"

using berth::test::describe;
using berth::test::ProxyOptions;
using berth::test::ProxyUnderTest;
using berth::test::run;
using berth::test::RunResult;
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

namespace {

// The test fleet's hosts in the policy. Its hosts share one 2-CPU machine: each reports 2
// CPUs, and a container without limits is placed as 1 CPU, hence the overcommit.
ProxyOptions fleet_options(const TestFleet& fleet) {
  ProxyOptions o;
  o.hosts = fleet.policy_hosts();
  o.policy_extra = "placement: {cpu_overcommit: 8}\n";
  return o;
}

constexpr const char* modern_cli = "/usr/local/bin/docker";

RunResult as_tenant(const ProxyUnderTest& p, const std::vector<std::string>& args) {
  return p.docker(modern_cli, p.tenant_bundle(), args);
}

// Which fleet host holds the container the tenant calls `name` (by berth's stored name, which
// ends with it), or -1.
int host_of(const TestFleet& fleet, const ProxyUnderTest& p, const std::string& name) {
  for (int h = 0; h < fleet.size(); ++h) {
    const auto r = fleet.docker(h, {"ps", "-aq", "--filter", "label=" + p.tenant_label(),
                                    "--filter", "name=_" + name + "$"});
    if (!trim(r.out).empty()) {
      return h;
    }
  }
  return -1;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) {
      out.push_back(line);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("one berth endpoint over three hosts: a tenant's containers are spread over them, "
          "reached by name, listed, counted and pruned together, named once in the fleet, "
          "joined across hosts, kept apart by host ports, or pinned by the operator",
          "[fleet]") {
  TestFleet fleet(3);
  INFO(fleet.failure());
  REQUIRE(fleet.up());
  ProxyOptions options = fleet_options(fleet);
  options.other_tenant_rules = "    placement: [\"node==h1\"]\n";  // the operator's pin
  options.tenant_rules = "    grants:\n      host_ports: [\"18080-18089\"]\n";
  ProxyUnderTest p(options);
  const std::string cli = modern_cli;
  auto tenant = [&](const std::vector<std::string>& args) { return as_tenant(p, args); };
  std::vector<std::string> names;
  const std::string since = std::to_string(std::time(nullptr));
  REQUIRE(p.docker(cli, p.other_tenant_bundle(), {"run", "--name", "stranger", test_image, "true"})
              .ok());
  for (int i = 0; i < 6; ++i) {
    if (i >= 4) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // Created is in seconds
    }
    names.push_back("c" + std::to_string(i));
    const auto r = tenant({"run", "-d", "--name", names.back(), "-v", "vol" + std::to_string(i) + ":/d",
                           test_image, "sleep", "600"});
    INFO(describe(r));
    REQUIRE(r.ok());
  }
  // Spread: placement scores the hosts that hold fewer of the tenant's containers higher.
  RunResult r;
  std::set<int> used;
  for (const auto& n : names) {
    const int h = host_of(fleet, p, n);
    CAPTURE(n);
    CHECK(h >= 0);
    used.insert(h);
  }
  CHECK(used.size() == 3);
  // One event stream, the tenant's own events from every host, in the order they happened
  // (the containers were started one after the other, on hosts in turn).
  const std::string until = std::to_string(std::time(nullptr) + 1);
  r = tenant({"events", "--since", since, "--until", until, "--filter", "event=start", "--format",
              "{{.Actor.Attributes.name}}"});
  INFO(describe(r));
  CHECK(lines_of(r.out) == names);
  r = p.docker(cli, p.other_tenant_bundle(),
               {"events", "--since", since, "--until", until, "--format", "{{.Action}} {{.Actor.Attributes.name}}"});
  CHECK_THAT(r.out, Contains("start stranger") && !Contains(" c0"));
  // One list, the tenant's names, every host's containers.
  r = tenant({"ps", "--format", "{{.Names}}"});
  INFO(describe(r));
  auto listed = lines_of(r.out);
  std::sort(listed.begin(), listed.end());
  CHECK(listed == names);
  r = tenant({"ps", "-n", "2", "--format", "{{.Names}}"});
  CHECK(lines_of(r.out) == std::vector<std::string>{"c5", "c4"});
  // Every container is reached on its own host, by name and by id.
  for (const auto& n : names) {
    CAPTURE(n);
    r = tenant({"exec", n, "sh", "-c", "echo in-$0", n});
    CHECK(trim(r.out) == "in-" + n);
    r = tenant({"inspect", "-f", "{{.Name}}", n});
    CHECK(trim(r.out) == "/" + n);
    const std::string id = trim(tenant({"inspect", "-f", "{{.Id}}", n}).out);
    CHECK(trim(tenant({"stop", "-t", "0", id.substr(0, 12)}).out) == id.substr(0, 12));
    CHECK(trim(tenant({"start", n}).out) == n);
  }
  // The other tenant sees none of it.
  r = p.docker(cli, p.other_tenant_bundle(), {"ps", "-a", "--format", "{{.Names}}"});
  CHECK(trim(r.out) == "stranger");
  CHECK(p.docker(cli, p.other_tenant_bundle(), {"rm", "stranger"}).ok());
  // The other tenant is pinned to h1 by the operator: every container of its goes there,
  // though the spread score would have sent them to all three.
  for (const char* n : {"p0", "p1", "p2"}) {
    CHECK(p.docker(cli, p.other_tenant_bundle(), {"create", "--name", n, test_image}).ok());
  }
  for (int h = 0; h < fleet.size(); ++h) {
    CAPTURE(h);
    const auto theirs = fleet.docker(h, {"ps", "-aq", "--filter", "label=" + p.other_tenant_label()});
    CHECK(lines_of(theirs.out).size() == (h == 1 ? 3U : 0U));
  }
  CHECK(p.docker(cli, p.other_tenant_bundle(), {"rm", "p0", "p1", "p2"}).ok());
  // A tenant bridge made before its host joined the fleet is on the primary alone: containers
  // on it go there (elsewhere dockerd would answer "network not found").
  REQUIRE(fleet.docker(0, {"network", "create", "--label", p.tenant_label(),
                           p.id() + "_legacy"})
              .ok());
  bool indexed = false;
  for (int i = 0; i < 50 && !indexed; ++i) {
    indexed = tenant({"network", "inspect", "legacy"}).ok();
    std::this_thread::sleep_for(std::chrono::milliseconds(indexed ? 0 : 100));
  }
  REQUIRE(indexed);
  for (const char* n : {"b0", "b1"}) {
    r = tenant({"create", "--name", n, "--network", "legacy", test_image});
    INFO(describe(r));
    CHECK(r.ok());
    CHECK(host_of(fleet, p, n) == 0);
  }
  CHECK(tenant({"rm", "b0", "b1"}).ok());
  CHECK(tenant({"network", "rm", "legacy"}).ok());
  r = p.docker(cli, p.other_tenant_bundle(), {"inspect", "c0"});
  CHECK_FALSE(r.ok());
  CHECK_THAT(r.err, Contains("No such object: c0"));
  // A name is the tenant's once in the whole fleet, whichever host the new one would go to.
  for (int i = 0; i < 3; ++i) {
    r = tenant({"create", "--name", "c" + std::to_string(i), test_image});
    INFO(describe(r));
    CHECK_FALSE(r.ok());
    CHECK_THAT(r.err, Contains("Conflict") && Contains("\"/c" + std::to_string(i) + "\""));
  }
  // The tenant's network spans the hosts: a client kept off the server's host reaches it by
  // name.
  REQUIRE(tenant({"run", "-d", "--name", "srv", test_image, "sh", "-c",
                  "while true; do echo pong | nc -l -p 7000; done"})
              .ok());
  r = tenant({"run", "--name", "client", "-e",
              "affinity:container!=srv", test_image, "sh", "-c",
              "for i in 1 2 3 4 5 6; do nc -w2 srv 7000 </dev/null && exit 0; sleep 0.5; done; "
              "exit 1"});
  INFO(describe(r));
  CHECK(trim(r.out) == "pong");
  CHECK(host_of(fleet, p, "client") != host_of(fleet, p, "srv"));
  CHECK(tenant({"rm", "-f", "srv", "client"}).ok());
  // A fixed host port is taken on the host that publishes it: three containers on port 18080
  // go to the three hosts (two of them hold more of the tenant's containers), a fourth is
  // refused before anything is created, naming the port and no host.
  for (const char* n : {"w0", "w1", "w2"}) {
    r = tenant({"run", "-d", "--name", n, "-p", "18080:7000", test_image, "sleep", "600"});
    INFO(describe(r));
    CHECK(r.ok());
  }
  CHECK(std::set<int>{host_of(fleet, p, "w0"), host_of(fleet, p, "w1"), host_of(fleet, p, "w2")}
            .size() == 3);
  r = tenant({"run", "-d", "--name", "w3", "-p", "18080:7000", test_image, "sleep", "600"});
  INFO(describe(r));
  CHECK_FALSE(r.ok());
  CHECK_THAT(r.err, Contains("port 18080/tcp in use") && !Contains("h0") && !Contains("h1"));
  CHECK(host_of(fleet, p, "w3") == -1);
  CHECK(tenant({"rm", "-f", "w0", "w1", "w2"}).ok());
  // Volumes, disk usage and prunes are the whole fleet's too: each volume is on its
  // container's host.
  r = tenant({"volume", "ls", "--format", "{{.Name}}"});
  auto volumes = lines_of(r.out);
  std::sort(volumes.begin(), volumes.end());
  CHECK(volumes == std::vector<std::string>{"vol0", "vol1", "vol2", "vol3", "vol4", "vol5"});
  r = tenant({"system", "df", "--format", "{{.Type}}={{.TotalCount}}"});
  INFO(describe(r));
  CHECK_THAT(r.out, Contains("Containers=6") && Contains("Local Volumes=6"));
  std::vector<std::string> stop{"stop", "-t", "0"};
  stop.insert(stop.end(), names.begin(), names.end());
  CHECK(tenant(stop).ok());
  r = tenant({"container", "prune", "-f"});
  INFO(describe(r));
  const auto deleted = lines_of(r.out);
  CHECK(std::count_if(deleted.begin(), deleted.end(),
                      [](const std::string& line) { return line.size() == 64; }) == 6);
  r = tenant({"volume", "prune", "-f"});
  INFO(describe(r));
  CHECK_THAT(r.out, Contains("vol0") && Contains("vol5"));
  for (int h = 0; h < fleet.size(); ++h) {
    CHECK(trim(fleet.docker(h, {"ps", "-aq", "--filter", "label=" + p.tenant_label()}).out)
              .empty());
    CHECK(trim(fleet.docker(h, {"volume", "ls", "-q", "--filter", "label=" + p.tenant_label()})
                   .out)
              .empty());
  }
}

TEST_CASE("a tenant's image built on the fleet runs on every host, one added by a reload too: "
          "berth copies it to the host a container is placed on and tags it as named there, a "
          "moved tag is followed, a commit comes home, the copies go with the image, and /info "
          "counts every host",
          "[fleet][image]") {
  TestFleet fleet(3);
  INFO(fleet.failure());
  REQUIRE(fleet.up());
  // Two hosts at first; the third joins by a reload of the policy.
  ProxyOptions options = fleet_options(fleet);
  options.hosts = fleet.policy_host(0) + fleet.policy_host(1);
  ProxyUnderTest p(options);
  auto tenant = [&](const std::vector<std::string>& args) { return as_tenant(p, args); };
  const std::string since = std::to_string(std::time(nullptr));
  {
    std::ifstream in(p.policy_file());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string last = fleet.policy_host(1);
    REQUIRE(text.find(last) != std::string::npos);
    text.insert(text.find(last) + last.size(), fleet.policy_host(2));
    p.write_policy_text(text);
    CHECK_THAT(p.reload(), Contains("policy reloaded"));
  }
  // /info: the CPUs and memory of the three hosts, once the third is read.
  long long cpus = 0;
  long long memory = 0;
  for (int h = 0; h < 3; ++h) {
    const auto r = fleet.docker(h, {"info", "--format", "{{.NCPU}} {{.MemTotal}}"});
    REQUIRE(r.ok());
    std::istringstream in(r.out);
    long long c = 0;
    long long m = 0;
    in >> c >> m;
    cpus += c;
    memory += m;
  }
  const std::string totals = std::to_string(cpus) + " " + std::to_string(memory);
  RunResult r;
  for (int i = 0; i < 50 && trim(r.out) != totals; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(i == 0 ? 0 : 100));
    r = tenant({"info", "--format", "{{.NCPU}} {{.MemTotal}}"});
  }
  INFO(describe(r));
  CHECK(trim(r.out) == totals);
  // An image of the tenant's own, built through berth: on the primary alone.
  const auto build = [&](const std::string& version) {
    const auto ctx = p.dir() / ("ctx-" + version);
    std::filesystem::create_directories(ctx);
    berth::test::write_file(ctx / "version", version + "\n");
    berth::test::write_file(ctx / "Dockerfile",
                            std::string("FROM ") + test_image + "\nCOPY version /version\n");
    const auto built = tenant({"build", "-q", "-t", "app:v1", ctx.string()});
    INFO(describe(built));
    REQUIRE(built.ok());
  };
  build("one");
  const std::string stored = p.id() + ".berth.local/app:v1";
  CHECK_FALSE(trim(fleet.docker(0, {"images", "-q", stored}).out).empty());
  CHECK(trim(fleet.docker(1, {"images", "-q", stored}).out).empty());
  // Three containers of it, kept apart: one on each host, each running the image.
  std::set<int> hosts;
  for (const std::string name : {"a0", "a1", "a2"}) {
    std::vector<std::string> args{"run", "--name", name};
    for (const std::string other : {"a0", "a1"}) {
      if (other < name) {
        args.insert(args.end(), {"-e", "affinity:container!=" + other});
      }
    }
    args.insert(args.end(), {"app:v1", "cat", "/version"});
    r = tenant(args);
    INFO(describe(r));
    CHECK(trim(r.out) == "one");
    hosts.insert(host_of(fleet, p, name));
  }
  CHECK(hosts == std::set<int>{0, 1, 2});
  // The tag moves on the primary; a host that holds the old image runs the new one.
  build("two");
  const int a1_host = host_of(fleet, p, "a1");
  REQUIRE(a1_host != 0);
  r = tenant({"run", "--name", "b1", "-e", "affinity:container==a1", "app:v1", "cat",
              "/version"});
  INFO(describe(r));
  CHECK(trim(r.out) == "two");
  CHECK(host_of(fleet, p, "b1") == a1_host);
  // The copies are not the tenant's events: a private host loaded nothing.
  const std::string until = std::to_string(std::time(nullptr) + 1);
  r = tenant({"events", "--since", since, "--until", until, "--filter", "type=image", "--format",
              "{{.Action}}"});
  INFO(describe(r));
  CHECK(r.ok());
  CHECK_THAT(r.out, !Contains("load"));
  // A burst of creates that all need one image on one host loads it there once.
  const auto copies_to = [&](int h) {
    std::ifstream in(p.log_file());
    int n = 0;
    for (std::string line; std::getline(in, line);) {
      n += line.find("copied from h0 to h" + std::to_string(h) + " ") != std::string::npos;
    }
    return n;
  };
  const int a2_host = host_of(fleet, p, "a2");
  REQUIRE(a2_host != 0);
  REQUIRE(tenant({"tag", "app:v1", "burst:1"}).ok());
  const int copies_before = copies_to(a2_host);
  std::vector<std::future<RunResult>> burst;
  for (int i = 0; i < 6; ++i) {
    burst.push_back(std::async(std::launch::async, [&, i] {
      return tenant({"run", "--name", "burst" + std::to_string(i), "-e",
                     "affinity:container==a2", "burst:1", "cat", "/version"});
    }));
  }
  for (int i = 0; i < 6; ++i) {
    const auto done = burst[static_cast<std::size_t>(i)].get();
    CAPTURE(i);
    INFO(describe(done));
    CHECK(trim(done.out) == "two");
    CHECK(host_of(fleet, p, "burst" + std::to_string(i)) == a2_host);
  }
  CHECK(copies_to(a2_host) - copies_before == 1);
  // A commit of a container on another host is the fleet's image, as any other.
  r = tenant({"commit", "a1", "snap:1"});
  INFO(describe(r));
  REQUIRE(r.ok());
  r = tenant({"images", "--format", "{{.Repository}}:{{.Tag}}", "snap"});
  CHECK(trim(r.out) == "snap:1");
  r = tenant({"run", "--rm", "-e", "affinity:container!=a1", "snap:1", "cat", "/version"});
  INFO(describe(r));
  CHECK(trim(r.out) == "one");
  // Removed and pruned through berth: gone from every host.
  REQUIRE(tenant({"rm", "a0", "a1", "a2", "b1", "burst0", "burst1", "burst2", "burst3", "burst4",
                  "burst5"})
              .ok());
  CHECK(tenant({"rmi", "snap:1", "burst:1"}).ok());
  r = tenant({"rmi", "app:v1"});
  INFO(describe(r));
  CHECK(r.ok());
  r = tenant({"image", "prune", "-f"});
  INFO(describe(r));
  CHECK(r.ok());
  for (int h = 0; h < 3; ++h) {
    CAPTURE(h);
    CHECK(trim(fleet.docker(h, {"images", "-aq", "--filter", "label=" + p.tenant_label()}).out)
              .empty());
  }
}

TEST_CASE("a fleet host that is down answers for its containers with a Docker-shaped 503 that "
          "names no host, lists show the rest, nothing is re-created elsewhere, and its "
          "containers are reached again once it is back",
          "[fleet]") {
  TestFleet fleet(2);
  INFO(fleet.failure());
  REQUIRE(fleet.up());
  ProxyOptions o = fleet_options(fleet);
  o.policy_extra += "metrics_listen: \"127.0.0.1:0\"\n";
  ProxyUnderTest p(o);
  REQUIRE(p.metrics_port() > 0);
  // The operator sees each host's state on berth's metrics listener.
  auto host_up = [&](int h) {
    const std::string series = "berth_proxy_fleet_host_up{host=\"h" + std::to_string(h) + "\"} ";
    for (int i = 0; i < 50; ++i) {
      const auto m = run({"curl", "-sS", "http://127.0.0.1:" + std::to_string(p.metrics_port()) +
                                             "/metrics"});
      if (const auto at = m.out.find(series); at != std::string::npos) {
        return m.out.substr(at + series.size(), 1);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return std::string("?");
  };
  const std::string cli = modern_cli;
  auto tenant = [&](const std::vector<std::string>& args) { return as_tenant(p, args); };
  REQUIRE(tenant({"run", "-d", "--name", "ka", test_image, "sleep",
                  "600"})
              .ok());
  REQUIRE(tenant({"run", "-d", "--name", "kb", "-e",
                  "affinity:container!=ka", test_image, "sleep", "600"})
              .ok());
  const int down = host_of(fleet, p, "kb");
  const int up = host_of(fleet, p, "ka");
  REQUIRE(down >= 0);
  REQUIRE(up >= 0);
  REQUIRE(up != down);
  REQUIRE(fleet.stop(down).ok());
  berth::test::HttpReply reply;
  for (int i = 0; i < 100; ++i) {
    const auto curl = p.curl(p.tenant_bundle(), {"-i", p.url() + "/v1.41/containers/kb/json"});
    reply = berth::test::parse_http_response(curl.out);
    if (reply.status == 503) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(reply.status == 503);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // the watchdog's next round
  CHECK(host_up(down) == "0");
  CHECK(host_up(up) == "1");
  const auto body = nlohmann::json::parse(reply.body, nullptr, false);
  REQUIRE(body.is_object());
  const std::string message = body.value("message", std::string());
  CHECK_THAT(message, Contains("unavailable"));
  for (const std::string& secret : {std::string("h0"), std::string("h1"), fleet.id(),
                                    std::string("192.168.250")}) {
    CHECK_THAT(message, !Contains(secret));
  }
  auto r = tenant({"stop", "kb"});
  CHECK_FALSE(r.ok());
  CHECK_THAT(r.err, Contains("unavailable"));
  r = tenant({"ps", "-a", "--format", "{{.Names}}"});
  INFO(describe(r));
  CHECK(trim(r.out) == "ka");
  // A new container goes to the host that is up; kb is not re-created anywhere.
  r = tenant({"run", "-d", "--name", "kc", test_image, "sleep", "600"});
  INFO(describe(r));
  CHECK(r.ok());
  CHECK(host_of(fleet, p, "kc") == up);
  CHECK(host_of(fleet, p, "kb") == -1);  // its host is down: nowhere else either
  const auto restarted = fleet.start(down);
  INFO(describe(restarted));
  REQUIRE(restarted.ok());
  bool back = false;
  for (int i = 0; i < 100 && !back; ++i) {
    back = tenant({"inspect", "-f", "{{.Name}}", "kb"}).ok();
    if (!back) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  CHECK(back);
  CHECK(host_of(fleet, p, "kb") == down);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  CHECK(host_up(down) == "1");
  r = tenant({"ps", "-a", "--format", "{{.Names}}"});
  auto listed = lines_of(r.out);
  std::sort(listed.begin(), listed.end());
  CHECK(listed == std::vector<std::string>{"ka", "kb", "kc"});
  // Cordoned by a reload, the host that came back takes no new container, though it holds
  // fewer of the tenant's (kb) than the other (ka, kc). A host added by a reload that does not
  // answer is down from the start; one removed by a reload is refused (its containers would
  // vanish from view).
  // The operator's tool edits the policy file; the proxy reloads it.
  const std::string host_name = "h" + std::to_string(down);
  r = run({berth::test::berthctl_bin(), "host", "cordon", host_name, p.policy_file().string()});
  INFO(describe(r));
  REQUIRE(r.ok());
  CHECK_THAT(p.reload(), Contains("policy reloaded"));
  r = run({berth::test::berthctl_bin(), "host", "list", p.policy_file().string()});
  CHECK_THAT(r.out, Contains(host_name + "\tcordoned\t"));
  std::string cordoned;
  {
    std::ifstream in(p.policy_file());
    cordoned.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  r = tenant({"run", "-d", "--name", "kd", test_image, "sleep", "600"});
  INFO(describe(r));
  CHECK(r.ok());
  CHECK(host_of(fleet, p, "kd") == up);
  std::string grown = cordoned;
  grown.insert(grown.find("tls:"), "  - name: h9\n    url: \"unix:///run/nowhere.sock\"\n");
  p.write_policy_text(grown);
  CHECK_THAT(p.reload(), Contains("policy reloaded"));
  CHECK(host_up(9) == "0");
  r = tenant({"run", "-d", "--name", "ke", test_image, "sleep", "600"});
  INFO(describe(r));
  CHECK(r.ok());
  CHECK(host_of(fleet, p, "ke") == up);
  p.write_policy_text(cordoned);
  CHECK_THAT(p.reload(), Contains("refused") && Contains("may only be added to"));
  CHECK(tenant({"ps", "-q"}).ok());
  CHECK(tenant({"rm", "-f", "ka", "kb", "kc", "kd", "ke"}).ok());
}

TEST_CASE("a compose project whose services land on different hosts of the fleet reaches each "
          "service by name, and comes down without a trace on any host",
          "[fleet][compose]") {
  TestFleet fleet(2);
  INFO(fleet.failure());
  REQUIRE(fleet.up());
  ProxyUnderTest p(fleet_options(fleet));
  const auto dir = p.dir() / "shop";
  std::filesystem::create_directories(dir);
  // web keeps off db's host (a classic Swarm affinity, as compose passes it through env).
  berth::test::write_file(dir / "docker-compose.yml", std::string(R"(version: "3.7"
services:
  db:
    image: )") + test_image + R"(
    command: sh -c "while true; do echo db-here | nc -l -p 5432; done"
  web:
    image: )" + test_image + R"(
    command: sleep 600
    depends_on: [db]
    environment:
      - "affinity:container!=~*db*"
)");
  berth::test::RunOptions slow;
  slow.timeout = std::chrono::seconds(120);
  auto compose = [&](const std::vector<std::string>& args) {
    std::vector<std::string> all{"-p", "shop", "--no-ansi"};
    all.insert(all.end(), args.begin(), args.end());
    return p.compose(p.tenant_bundle(), dir, all, slow);
  };
  auto r = compose({"up", "-d"});
  INFO(describe(r));
  REQUIRE(r.ok());
  const int db = host_of(fleet, p, "shop_db_1");
  const int web = host_of(fleet, p, "shop_web_1");
  CHECK(db >= 0);
  CHECK(web >= 0);
  CHECK(db != web);
  r = compose({"exec", "-T", "web", "sh", "-c",
               "for i in 1 2 3 4 5 6; do nc -w2 db 5432 </dev/null && exit 0; sleep 0.5; done; "
               "exit 1"});
  INFO(describe(r));
  CHECK(trim(r.out) == "db-here");
  r = compose({"ps", "--services"});
  CHECK_THAT(r.out, Contains("db") && Contains("web"));
  r = compose({"down"});
  INFO(describe(r));
  CHECK(r.ok());
  for (int h = 0; h < fleet.size(); ++h) {
    CHECK(trim(fleet.docker(h, {"ps", "-aq", "--filter", "label=" + p.tenant_label()}).out)
              .empty());
  }
  // Its network was one overlay, made once and removed with the project (the manager drops
  // it once every host has let go of its attachments: give it a few seconds).
  std::string left = "?";
  for (int i = 0; i < 50 && !left.empty(); ++i) {
    left = trim(fleet.docker(0, {"network", "ls", "-q", "--filter", "label=" + p.tenant_label(),
                                 "--filter", "name=shop"})
                    .out);
    if (!left.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  CHECK(left.empty());
}

namespace {

// berth-meter for one fleet host, on a port of its own; port() once it said it is ready.
class HostMeter {
 public:
  HostMeter(const TestFleet& fleet, int host, const std::filesystem::path& dir)
      : log_(dir / ("meter-h" + std::to_string(host) + ".log")),
        process_({BERTH_METER_BIN, "--listen", "127.0.0.1:0", "--docker-socket",
                  fleet.url(host).substr(7), "--state",
                  (dir / ("meter-h" + std::to_string(host) + ".state")).string()},
                 log_) {
    for (int i = 0; i < 100 && port_ == 0; ++i) {
      std::ifstream in(log_);
      for (std::string line; std::getline(in, line);) {
        if (const auto at = line.find("ready on port "); at != std::string::npos) {
          port_ = std::stoi(line.substr(at + 14));
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  [[nodiscard]] int port() const noexcept { return port_; }

 private:
  std::filesystem::path log_;
  berth::test::BackgroundProcess process_;
  int port_ = 0;
};

}  // namespace

TEST_CASE("placement counts what each host's meter measures: a host whose container uses more "
          "than its reservation says is not given more than it can hold",
          "[fleet][placement][metering]") {
  TestFleet fleet(2);
  INFO(fleet.failure());
  REQUIRE(fleet.up());
  berth::test::TempDir dir;
  HostMeter meters[2] = {HostMeter(fleet, 0, dir.path()), HostMeter(fleet, 1, dir.path())};
  REQUIRE(meters[0].port() != 0);
  REQUIRE(meters[1].port() != 0);
  ProxyOptions o;
  for (int h = 0; h < 2; ++h) {
    o.hosts += fleet.policy_host(h) + "    meter: \"http://127.0.0.1:" +
               std::to_string(meters[h].port()) +
               "/metrics\"\n    capacity: {cpus: 8, memory: 1536MiB}\n";
  }
  // Reservations may reach 4x a host's memory: by them alone, everything below fits anywhere.
  o.policy_extra = "placement: {memory_overcommit: 4}\n";
  o.proxy_args = {"--audit-log", (dir.path() / "audit.log").string()};
  ProxyUnderTest p(o);
  const std::string cli = "/usr/local/bin/docker";
  auto tenant = [&](const std::vector<std::string>& args) {
    return p.docker(cli, p.tenant_bundle(), args);
  };
  // hog has no limit (placed as the default 512 MiB) and holds 1000 MiB: dd's buffer, filled
  // from /dev/zero and stuck writing to a pipe nobody reads.
  auto r = tenant({"run", "-d", "--name", "hog", test_image, "sh", "-c",
                   "dd if=/dev/zero bs=1000M count=1 | sleep 600"});
  INFO(describe(r));
  REQUIRE(r.ok());
  REQUIRE(host_of(fleet, p, "hog") == 0);  // the first of two equal hosts
  for (const char* idle : {"idle1", "idle2"}) {
    r = tenant({"run", "-d", "--name", idle, "-e", "affinity:container!=hog", test_image, "sleep",
                "600"});
    REQUIRE(r.ok());
    REQUIRE(host_of(fleet, p, idle) == 1);
  }
  // By reservations h0 holds 1000 MiB (hog's p95) and h1 1 GiB (two defaults), and spreading
  // prefers h0; as measured, h0 holds 1000 MiB of its 1.5 GiB and 512 MiB more would pass the
  // 0.9 headroom.
  std::this_thread::sleep_for(std::chrono::seconds(12));  // a few scrapes of both meters
  r = tenant({"run", "-d", "--name", "next", test_image, "sleep", "600"});
  INFO(describe(r));
  REQUIRE(r.ok());
  CHECK(host_of(fleet, p, "next") == 1);
  std::ifstream audit(dir.path() / "audit.log");
  std::string line;
  std::string placed;
  while (std::getline(audit, line)) {
    if (line.find("create?name=next") != std::string::npos) {
      placed = line;
    }
  }
  INFO(placed);
  CHECK_THAT(placed, Contains("h0: measured free memory"));
  CHECK(tenant({"rm", "-f", "hog", "idle1", "idle2", "next"}).ok());
}
