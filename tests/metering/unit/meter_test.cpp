// A whole meter over a fake cgroup v2 tree (no dockerd): what it exports, what it persists, and
// how it reconciles after a restart.

#include "metering/meter.hpp"

#include <catch2/catch.hpp>
#include <regex>

#include "tests/metering/unit/support.hpp"

namespace {

namespace m = berth::metering;
using berth::metering::test::container_id;
using berth::metering::test::fake_v2_cgroup;
using berth::metering::test::put;
using berth::metering::test::TempTree;

constexpr std::int64_t s = 1'000'000'000;

std::unique_ptr<m::Meter> meter(const TempTree& tree, std::size_t max_series = 1000) {
  m::MeterOptions o;
  o.cgroup_root = tree.path() / "cg";
  o.state_file = tree.path() / "state.json";
  o.docker_socket = "none";
  o.prices_file = BERTH_SOURCE_DIR "/deploy/prometheus/prices.yml";
  o.max_container_series = max_series;
  auto created = m::Meter::create(o);
  REQUIRE(created);
  return std::move(*created);
}

/// The value of one sample line "name{labels} value" in the exposition text.
std::optional<double> sample(const std::string& text, const std::string& series) {
  const auto pos = text.find("\n" + series + " ");
  if (pos == std::string::npos) {
    return std::nullopt;
  }
  return std::stod(text.substr(pos + series.size() + 2));
}

// Tenant acme's cgroup with one container in it, each at 2 ms of CPU and 64 MiB; the tree's
// cgroup root.
std::filesystem::path acme_with_one_container(const TempTree& tree) {
  const auto cg = tree.path() / "cg";
  put(cg / "cgroup.controllers", "cpu memory io\n");
  fake_v2_cgroup(cg, "berth/acme", 2'000'000, 64 << 20, 0);
  fake_v2_cgroup(cg, "berth/acme/" + container_id(1), 2'000'000, 64 << 20, 0);
  return cg;
}

}  // namespace

TEST_CASE("the meter bills a tenant from its aggregate cgroup and exports the headline series",
          "[metering][meter]") {
  TempTree tree;
  const auto cg = acme_with_one_container(tree);
  auto mt = meter(tree);
  mt->scan_at(100 * s, 1'700'000'000'000);
  fake_v2_cgroup(cg, "berth/acme", 5'000'000, 64 << 20, 0);
  mt->scan_at(110 * s, 1'700'000'010'000);

  const std::string first = mt->metrics_text();
  // The first scrape shows a new tenant at 0, so Prometheus sees the whole first increase.
  CHECK(sample(first, "berth_tenant_cpu_seconds_total{tenant=\"acme\"}") == 0.0);
  const std::string text = mt->metrics_text();
  CHECK(sample(text, "berth_tenant_cpu_seconds_total{tenant=\"acme\"}") == Approx(5.0));
  CHECK(sample(text, "berth_tenant_memory_byte_seconds_total{tenant=\"acme\"}") ==
        Approx(64.0 * (1 << 20) * 10));
  CHECK(sample(text, "berth_tenant_memory_working_set_bytes{tenant=\"acme\"}") == 64 << 20);
  CHECK(sample(text, "berth_tenant_running_containers{tenant=\"acme\"}") == 1.0);
  CHECK(sample(text, "berth_tenant_block_read_bytes_total{tenant=\"acme\"}") == 101.0);
  CHECK(sample(text, "berth_price_per_cpu_hour{currency=\"EUR\"}") == Approx(0.04));
  CHECK(sample(text, "berth_container_cpu_seconds_total{container=\"000000000000\",id=\"000000000000\",tenant=\"acme\"}") ==
        Approx(2.0));
  CHECK(sample(text, "berth_meter_scans_total") == 2.0);
  CHECK(text.find("# TYPE berth_tenant_cpu_seconds_total counter") != std::string::npos);
  CHECK(text.find("berth_host_cpus ") != std::string::npos);
}

TEST_CASE("a moved container's series carries the id its tenant knows, not its host's",
          "[metering][meter][migrate]") {
  TempTree tree;
  acme_with_one_container(tree);
  auto mt = meter(tree);
  m::ContainerInfo info;
  info.id = container_id(1);
  info.name = "app";
  info.tenant = "acme";
  info.shown_id = std::string(64, 'a');
  mt->learn(info);
  mt->scan_at(100 * s, 1'700'000'000'000);
  const std::string text = mt->metrics_text();
  CHECK(sample(text,
               "berth_container_cpu_seconds_total{container=\"app\",id=\"aaaaaaaaaaaa\",tenant="
               "\"acme\"}") == Approx(2.0));
}

TEST_CASE("a loose container without a label is billed to the operator", "[metering][meter]") {
  TempTree tree;
  const auto cg = tree.path() / "cg";
  put(cg / "cgroup.controllers", "\n");
  fake_v2_cgroup(cg, "docker/" + container_id(9), 3'000'000, 1000, 0);
  auto mt = meter(tree);
  mt->scan_at(100 * s, 0);
  const auto ledger = mt->ledger_snapshot();
  REQUIRE(ledger.tenants().contains("operator"));
  CHECK(ledger.tenants().at("operator").cpu_ns == 3'000'000'000u);
}

TEST_CASE("after a restart the meter bills what accrued while it was down", "[metering][meter]") {
  TempTree tree;
  const auto cg = tree.path() / "cg";
  put(cg / "cgroup.controllers", "\n");
  fake_v2_cgroup(cg, "berth/acme", 1'000'000, 1000, 0);
  {
    auto mt = meter(tree);
    mt->scan_at(100 * s, 0);
    mt->scan_at(101 * s, 0);
    REQUIRE(mt->persist());
  }  // "kill -9": nothing more is written
  fake_v2_cgroup(cg, "berth/acme", 9'000'000, 1000, 0);
  auto again = meter(tree);
  CHECK(again->ledger_snapshot().tenants().at("acme").cpu_ns == 1'000'000'000u);
  again->scan_at(111 * s, 0);
  const auto ledger = again->ledger_snapshot();
  const auto& acme = ledger.tenants().at("acme");
  CHECK(acme.cpu_ns == 9'000'000'000u);
  CHECK(acme.memory_byte_seconds == Approx(1000.0 * 11));
}

TEST_CASE("a corrupt state file stops the meter instead of restarting counters at zero",
          "[metering][meter]") {
  TempTree tree;
  put(tree.path() / "cg" / "cgroup.controllers", "\n");
  put(tree.path() / "state.json", "{ torn");
  m::MeterOptions o;
  o.cgroup_root = tree.path() / "cg";
  o.state_file = tree.path() / "state.json";
  o.docker_socket = "none";
  auto created = m::Meter::create(o);
  REQUIRE_FALSE(created);
  CHECK(created.error().find("refusing") != std::string::npos);
}

TEST_CASE("per-container series stop at the bound and the rest are counted as dropped",
          "[metering][meter]") {
  TempTree tree;
  const auto cg = tree.path() / "cg";
  put(cg / "cgroup.controllers", "\n");
  fake_v2_cgroup(cg, "berth/acme", 1, 1, 0);
  for (int i = 1; i <= 5; ++i) {
    fake_v2_cgroup(cg, "berth/acme/" + container_id(i), 1, 1, 0);
  }
  auto mt = meter(tree, 3);
  mt->scan_at(100 * s, 0);
  const std::string text = mt->metrics_text();
  const std::regex series("\nberth_container_cpu_seconds_total\\{");
  const auto n = std::distance(std::sregex_iterator(text.begin(), text.end(), series),
                               std::sregex_iterator());
  CHECK(n == 3);
  CHECK(sample(text, "berth_meter_container_series_dropped") == 2.0);
  // Billing is not bounded: every container still counts.
  CHECK(sample(text, "berth_tenant_running_containers{tenant=\"acme\"}") == 5.0);
}

TEST_CASE("the meter's options are checked before it starts", "[metering][meter]") {
  const auto parse = [](std::vector<std::string> args) { return m::parse_meter_options(args); };
  auto o = parse({"--listen", "127.0.0.1:0", "--resolution-ms=250", "--state", "/x",
                  "--docker-socket", "none"});
  REQUIRE(o);
  CHECK(o->listen == "127.0.0.1:0");
  CHECK(o->resolution == std::chrono::milliseconds(250));
  CHECK(o->state_file == "/x");
  CHECK_FALSE(parse({"--listen", "9471"}));
  CHECK_FALSE(parse({"--resolution-ms", "0"}));
  CHECK_FALSE(parse({"--resolution-ms", "5"}));
  CHECK_FALSE(parse({"--resolution-ms"}));
  CHECK_FALSE(parse({"--bogus", "1"}));
}
