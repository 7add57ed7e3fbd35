// The operator's prices file and the meter's state file.

#include <catch2/catch.hpp>
#include <fstream>

#include "metering/prices.hpp"
#include "metering/state_file.hpp"
#include "tests/metering/unit/support.hpp"

namespace {
namespace m = berth::metering;
using berth::metering::test::put;
using berth::metering::test::TempTree;
}  // namespace

TEST_CASE("the shipped prices file parses", "[metering][prices]") {
  const auto p = m::load_prices(BERTH_SOURCE_DIR "/deploy/prometheus/prices.yml");
  REQUIRE(p);
  CHECK(p->currency == "EUR");
  CHECK(p->per_cpu_hour > 0);
  CHECK(p->per_gib_hour > 0);
}

TEST_CASE("prices refuse unknown keys, duplicates, negatives and missing fields with a line",
          "[metering][prices]") {
  const auto bad = [](std::string_view text) {
    auto r = m::parse_prices(text, "prices.yml");
    REQUIRE_FALSE(r);
    return r.error();
  };
  CHECK(bad("currency: EUR\ncpu_hour: 1\nmemory_gib_hour: 1\ncpu_hours: 2\n")
            .starts_with("prices.yml:4:1: unknown key 'cpu_hours'"));
  CHECK(bad("currency: EUR\ncpu_hour: 1\ncpu_hour: 2\nmemory_gib_hour: 1\n")
            .starts_with("prices.yml:3:1: duplicate key"));
  CHECK(bad("currency: EUR\ncpu_hour: -1\nmemory_gib_hour: 1\n").find("non-negative") !=
        std::string::npos);
  CHECK(bad("currency: EUR\ncpu_hour: lots\nmemory_gib_hour: 1\n").find("non-negative") !=
        std::string::npos);
  CHECK(bad("cpu_hour: 1\nmemory_gib_hour: 1\n").find("required") != std::string::npos);
  CHECK(bad("- a list\n").find("mapping") != std::string::npos);
  CHECK(bad("currency: [EUR\n").starts_with("prices.yml:"));
}

TEST_CASE("cost is CPU-hours and GiB-hours times their prices", "[metering][prices]") {
  m::Prices p{"EUR", 0.04, 0.005, 0};
  const auto c = m::price(p, 2 * 3600.0, 4.0 * 1073741824.0 * 3600.0);
  CHECK(c.cpu == Approx(0.08));
  CHECK(c.memory == Approx(0.02));
  CHECK(c.total() == Approx(0.10));
}

TEST_CASE("the state file round-trips and is replaced atomically", "[metering][state]") {
  TempTree dir;
  const auto file = dir.path() / "state.json";
  auto none = m::load_state(file);
  REQUIRE(none);
  CHECK_FALSE(*none);

  m::Ledger ledger;
  m::Observation o;
  o.key = "t/acme";
  o.generation = 3;
  o.tenant = "acme";
  o.bills = {true, false};
  o.reading.cpu_ns = 123456789012345;
  o.reading.working_set_bytes = 1 << 20;
  ledger.apply_scan(1'000'000'000, 5, std::vector{o});
  o.reading.cpu_ns += 1;
  ledger.apply_scan(2'000'000'333, 5, std::vector{o});
  REQUIRE(m::write_file_atomically(file, m::encode_state({"boot-1", 42, ledger})));
  CHECK_FALSE(std::filesystem::exists(dir.path() / "state.json.tmp"));
  auto loaded = m::load_state(file);
  REQUIRE(loaded);
  REQUIRE(*loaded);
  CHECK((*loaded)->boot_id == "boot-1");
  CHECK((*loaded)->saved_unix_ms == 42);
  const auto& t = (*loaded)->ledger.tenants().at("acme");
  CHECK(t.cpu_ns == 123456789012346);
  // Doubles survive exactly (shortest round-trip representation).
  CHECK(t.memory_byte_seconds == ledger.tenants().at("acme").memory_byte_seconds);
  CHECK((*loaded)->ledger.last_scan_ns() == 2'000'000'333);
}

TEST_CASE("a state file that cannot be read is an error, never a reset to zero",
          "[metering][state]") {
  TempTree dir;
  const auto file = dir.path() / "state.json";
  put(file, "{\"format\":\"berth-meter-state/1\",\"boot_id\":\"x\"");
  CHECK_FALSE(m::load_state(file));
  put(file, "{\"format\":\"something-else\"}");
  CHECK_FALSE(m::load_state(file));
  CHECK_FALSE(m::write_file_atomically(dir.path() / "missing-dir" / "state.json", "{}"));
}
