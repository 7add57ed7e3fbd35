// berth's own bridge isolation chain: the iptables-restore text that keeps tenant bridges apart
// independently of dockerd's re-inserted DOCKER-ISOLATION jumps.

#include <catch2/catch.hpp>

#include <string>

#include "policy/isolation.hpp"

using namespace berth::policy;
using Catch::Matchers::Contains;

TEST_CASE("a network's Linux bridge is br- and the first 12 characters of its id",
          "[policy][isolation]") {
  CHECK(isolation::bridge_of(std::string(64, 'a')) == "br-aaaaaaaaaaaa");
  CHECK(isolation::bridge_of("0123456789abcdef") == "br-0123456789ab");
  CHECK(isolation::bridge_of("bridge").empty());
  CHECK(isolation::bridge_of("0123456789aZ").empty());
  CHECK(isolation::bridge_of("; rm -rf /").empty());
}

TEST_CASE("the chain keeps each tenant bridge's traffic on it and drops forwarding to and from "
          "any other Docker bridge",
          "[policy][isolation]") {
  const std::string script =
      isolation::restore_script({"br-bbbbbbbbbbbb", "br-aaaaaaaaaaaa", "br-aaaaaaaaaaaa"});
  CHECK(script ==
        "*mangle\n"
        ":BERTH-ISOLATION - [0:0]\n"
        "-F BERTH-ISOLATION\n"
        "-A BERTH-ISOLATION -i br-aaaaaaaaaaaa -o br-aaaaaaaaaaaa -j RETURN\n"
        "-A BERTH-ISOLATION -i br-aaaaaaaaaaaa -o br-+ -j DROP\n"
        "-A BERTH-ISOLATION -i br-aaaaaaaaaaaa -o docker0 -j DROP\n"
        "-A BERTH-ISOLATION -i br-+ -o br-aaaaaaaaaaaa -j DROP\n"
        "-A BERTH-ISOLATION -i docker0 -o br-aaaaaaaaaaaa -j DROP\n"
        "-A BERTH-ISOLATION -i br-bbbbbbbbbbbb -o br-bbbbbbbbbbbb -j RETURN\n"
        "-A BERTH-ISOLATION -i br-bbbbbbbbbbbb -o br-+ -j DROP\n"
        "-A BERTH-ISOLATION -i br-bbbbbbbbbbbb -o docker0 -j DROP\n"
        "-A BERTH-ISOLATION -i br-+ -o br-bbbbbbbbbbbb -j DROP\n"
        "-A BERTH-ISOLATION -i docker0 -o br-bbbbbbbbbbbb -j DROP\n"
        "COMMIT\n");
}

TEST_CASE("names that are not dockerd bridges never reach the iptables script",
          "[policy][isolation]") {
  const std::string script =
      isolation::restore_script({"eth0", "br-aaaa -j ACCEPT", "docker0", "br-+"});
  CHECK(script == "*mangle\n:BERTH-ISOLATION - [0:0]\n-F BERTH-ISOLATION\nCOMMIT\n");
}
