// berth-proxy's command line: the timeouts and limits an operator sets at start.

#include "proxy/config.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

std::expected<berth::proxy::Options, std::string> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "berth-proxy");
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  return berth::proxy::parse_options(static_cast<int>(argv.size()), argv.data());
}

}  // namespace

TEST_CASE("the idle timeout of keep-alive connections is 120 s unless --idle-timeout says",
          "[proxy][options]") {
  const auto defaults = parse({"--policy", "p.yaml"});
  REQUIRE(defaults);
  CHECK(defaults->client.idle == std::chrono::seconds(120));
  const auto set = parse({"--policy", "p.yaml", "--idle-timeout", "15"});
  REQUIRE(set);
  CHECK(set->client.idle == std::chrono::seconds(15));
}

TEST_CASE("a request head must arrive within 15 s unless --header-timeout says",
          "[proxy][options]") {
  const auto defaults = parse({"--policy", "p.yaml"});
  REQUIRE(defaults);
  CHECK(defaults->client.header == std::chrono::seconds(15));
  CHECK(defaults->client.handshake == std::chrono::seconds(10));
  const auto set = parse({"--policy", "p.yaml", "--header-timeout", "3", "--handshake-timeout",
                          "4"});
  REQUIRE(set);
  CHECK(set->client.header == std::chrono::seconds(3));
  CHECK(set->client.handshake == std::chrono::seconds(4));
  CHECK_FALSE(parse({"--policy", "p.yaml", "--header-timeout", "0"}));
}

TEST_CASE("connections per source address and per client certificate are capped by default",
          "[proxy][options]") {
  const auto defaults = parse({"--policy", "p.yaml"});
  REQUIRE(defaults);
  CHECK(defaults->client.per_address == 512);
  CHECK(defaults->client.handshakes_per_address == 64);
  CHECK(defaults->client.per_certificate == 256);
  const auto set = parse({"--policy", "p.yaml", "--max-connections-per-address", "8",
                          "--max-handshakes-per-address", "2",
                          "--max-connections-per-certificate", "4"});
  REQUIRE(set);
  CHECK(set->client.per_address == 8);
  CHECK(set->client.handshakes_per_address == 2);
  CHECK(set->client.per_certificate == 4);
  CHECK_FALSE(parse({"--policy", "p.yaml", "--max-connections-per-address", "0"}));
}

TEST_CASE("an idle timeout of 0 or one that is not a number is refused with the usage",
          "[proxy][options]") {
  for (const char* bad : {"0", "-5", "ten", "", "12s"}) {
    INFO("--idle-timeout '" << bad << "'");
    const auto parsed = parse({"--policy", "p.yaml", "--idle-timeout", bad});
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().find("bad argument '--idle-timeout'") != std::string::npos);
    CHECK(parsed.error().find("usage: berth-proxy") != std::string::npos);
  }
}
