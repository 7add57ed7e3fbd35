// Hostile clients against berth in front of a fleet (issue #15): the paths only a fleet takes
// (event streams merged from every host, lists merged from every host, a host going down under
// load) must neither crash, leak nor wedge the proxy every tenant shares.

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/hostile/hostile.hpp"
#include "tests/support/fleet.hpp"
#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/tls_client.hpp"

using berth::test::check_clean_stop;
using berth::test::describe;
using berth::test::http_request;
using berth::test::ProxyOptions;
using berth::test::ProxyUnderTest;
using berth::test::TestFleet;
using berth::test::TlsClient;
using namespace std::chrono_literals;

TEST_CASE("merged event streams dropped by many clients at once, a merged event stream nobody "
          "reads, and merged lists while a host goes down leave the proxy serving",
          "[hostile][fleet]") {
  TestFleet fleet(2);
  INFO(fleet.failure());
  REQUIRE(fleet.up());
  ProxyOptions o;
  o.hosts = fleet.policy_hosts();
  o.policy_extra = "placement: {cpu_overcommit: 8}\n";
  ProxyUnderTest p(o);
  const std::string cli = "/usr/local/bin/docker";
  for (const char* name : {"w1", "w2"}) {
    const auto r = p.docker(cli, p.tenant_bundle(),
                            {"run", "-d", "--name", name, berth::test::test_image, "sleep", "600"});
    INFO(describe(r));
    REQUIRE(r.ok());
  }
  // One client asks for every host's events and never reads them, while events keep coming.
  TlsClient silent("127.0.0.1", p.port(), p.tenant_bundle());
  REQUIRE(silent.connect());
  REQUIRE(silent.send(http_request("GET", "/v1.41/events")));

  std::atomic<int> lists_ok{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        TlsClient c("127.0.0.1", p.port(), p.tenant_bundle());
        if (!c.connect()) {
          continue;
        }
        if ((t + i) % 2 == 0) {
          // An event stream, its head read or not, then a reset.
          c.send(http_request("GET", "/v1.41/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D"));
          c.read_some(std::chrono::milliseconds(i % 3 * 50));
          c.reset();
        } else {
          c.send(http_request("GET", "/v1.41/containers/json?all=1"));
          if (auto r = c.read_response(5s); r && r->status == 200) {
            ++lists_ok;
          }
          if (i % 3 == 0) {
            c.reset();  // half the time gone before the merged answer is read
          }
        }
      }
    });
  }
  for (int i = 0; i < 6; ++i) {
    (void)p.docker(cli, p.tenant_bundle(), {"exec", i % 2 ? "w1" : "w2", "true"});
  }
  const auto stopped = fleet.stop(1);
  INFO(describe(stopped));
  CHECK(stopped.ok());
  std::this_thread::sleep_for(2s);
  stop = true;
  for (auto& c : clients) {
    c.join();
  }
  CHECK(lists_ok > 0);
  silent.reset();
  // Still serving: the list shows what the host that is up holds.
  const auto r = p.docker(cli, p.tenant_bundle(), {"ps", "--format", "{{.Names}}"});
  INFO(describe(r));
  CHECK(r.ok());
  CHECK_FALSE(r.out.empty());
  check_clean_stop(p);
}
