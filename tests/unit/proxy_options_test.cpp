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
  CHECK(defaults->idle_timeout_seconds == 120);
  const auto set = parse({"--policy", "p.yaml", "--idle-timeout", "15"});
  REQUIRE(set);
  CHECK(set->idle_timeout_seconds == 15);
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
