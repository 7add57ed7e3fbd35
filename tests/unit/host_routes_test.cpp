// The host's routes as the proxy reads them for network judging.

#include "proxy/host_routes.hpp"

#include <catch2/catch.hpp>

using berth::policy::parse_cidr;

TEST_CASE("the host's IPv4 and IPv6 routes are read from the kernel's tables, default routes left out",
          "[proxy][routes]") {
  const auto v4 = berth::proxy::parse_ipv4_routes(
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
      "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
      "docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n"
      "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n");
  REQUIRE(v4.size() == 2);
  CHECK(v4[0] == *parse_cidr("172.17.0.0/16"));
  CHECK(v4[1] == *parse_cidr("192.0.2.0/24"));
  const auto v6 = berth::proxy::parse_ipv6_routes(
      "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 "
      "00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n"
      "fe800000000000000000000000000000 40 00000000000000000000000000000000 00 "
      "00000000000000000000000000000000 00000100 00000002 00000000 00000001     eth0\n"
      "00000000000000000000000000000000 00 00000000000000000000000000000000 00 "
      "00000000000000000000000000000000 00000400 00000001 00000000 00000003     eth0\n");
  REQUIRE(v6.size() == 1);
  CHECK(v6[0] == *parse_cidr("fd00::/64"));
  CHECK_FALSE(berth::proxy::read_host_routes().empty());
}
