// The ledger's arithmetic: what each reading is worth, and what is never billed twice.

#include "metering/ledger.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

namespace {

using berth::metering::Bills;
using berth::metering::byte_seconds;
using berth::metering::counter_delta;
using berth::metering::Ledger;
using berth::metering::Observation;
using berth::metering::Reading;

constexpr std::int64_t s = 1'000'000'000;  // one second in ns
constexpr std::uint64_t mib = 1024 * 1024;

Observation aggregate(const std::string& tenant, std::uint64_t cpu_ns, std::uint64_t ws,
                      std::uint64_t generation = 1) {
  Observation o;
  o.key = "t/" + tenant;
  o.generation = generation;
  o.tenant = tenant;
  o.bills = Bills{true, false};
  o.reading.cpu_ns = cpu_ns;
  o.reading.working_set_bytes = ws;
  return o;
}

Observation container(const std::string& id, const std::string& tenant, Bills bills,
                      Reading r, std::uint64_t generation = 7) {
  Observation o;
  o.key = "c/" + id;
  o.generation = generation;
  o.tenant = tenant;
  o.bills = bills;
  o.reading = r;
  return o;
}

void scan(Ledger& l, std::int64_t t, std::vector<Observation> obs) {
  l.apply_scan(t, 1'700'000'000'000 + t / 1'000'000, obs);
}

}  // namespace

TEST_CASE("a counter delta is the increase, or the whole value for a new or reset cgroup",
          "[metering][ledger]") {
  CHECK(counter_delta(100, 250, true) == 150);
  CHECK(counter_delta(100, 250, false) == 250);
  CHECK(counter_delta(300, 40, true) == 40);
  CHECK(counter_delta(0, 0, true) == 0);
}

TEST_CASE("byte-seconds follow the trapezoid between two working-set readings",
          "[metering][ledger]") {
  CHECK(byte_seconds(64 * mib, 64 * mib, 10 * s) == Approx(64.0 * mib * 10));
  CHECK(byte_seconds(0, 100, 2 * s) == Approx(100.0));
  CHECK(byte_seconds(100, 100, -s) == 0.0);
}

TEST_CASE("a tenant is billed the increase of its aggregate CPU counter between scans",
          "[metering][ledger]") {
  Ledger l;
  scan(l, 10 * s, {aggregate("acme", 5 * s, 0)});
  scan(l, 11 * s, {aggregate("acme", 7 * s, 0)});
  scan(l, 12 * s, {aggregate("acme", 7 * s + 500, 0)});
  CHECK(l.tenants().at("acme").cpu_ns == static_cast<std::uint64_t>(7 * s + 500));
}

TEST_CASE("a cgroup first seen with usage on it is billed that usage in full",
          "[metering][ledger]") {
  Ledger l;
  scan(l, 10 * s, {});
  scan(l, 11 * s, {aggregate("acme", 3 * s, 0)});
  CHECK(l.tenants().at("acme").cpu_ns == static_cast<std::uint64_t>(3 * s));
}

TEST_CASE("a recreated cgroup is billed from zero, never as a negative delta",
          "[metering][ledger]") {
  Ledger l;
  scan(l, 10 * s, {aggregate("acme", 9 * s, 0, 1)});
  // Removed and recreated between scans: new inode, counter restarted.
  scan(l, 11 * s, {aggregate("acme", 2 * s, 0, 2)});
  scan(l, 12 * s, {aggregate("acme", 3 * s, 0, 2)});
  CHECK(l.tenants().at("acme").cpu_ns == static_cast<std::uint64_t>(12 * s));
}

TEST_CASE("a counter that goes backwards in the same cgroup counts as a reset",
          "[metering][ledger]") {
  Ledger l;
  scan(l, 10 * s, {aggregate("acme", 9 * s, 0)});
  scan(l, 11 * s, {aggregate("acme", 1 * s, 0)});
  CHECK(l.tenants().at("acme").cpu_ns == static_cast<std::uint64_t>(10 * s));
}

TEST_CASE("a constant working set integrates to bytes times seconds", "[metering][ledger]") {
  Ledger l;
  for (int i = 0; i <= 10; ++i) {
    scan(l, (100 + i) * s, {aggregate("acme", 0, 64 * mib)});
  }
  CHECK(l.tenants().at("acme").memory_byte_seconds == Approx(64.0 * mib * 10).epsilon(1e-12));
  CHECK(l.tenants().at("acme").working_set_bytes == 64 * mib);
}

TEST_CASE("a source that appears between scans starts from zero at the previous scan",
          "[metering][ledger]") {
  Ledger l;
  scan(l, 10 * s, {});
  scan(l, 12 * s, {aggregate("acme", 0, 100)});
  CHECK(l.tenants().at("acme").memory_byte_seconds == Approx(100.0));
}

TEST_CASE("nothing is known of the memory held before the very first scan",
          "[metering][ledger]") {
  Ledger l;
  scan(l, 10 * s, {aggregate("acme", 4 * s, 100)});
  CHECK(l.tenants().at("acme").memory_byte_seconds == 0.0);
  CHECK(l.tenants().at("acme").cpu_ns == static_cast<std::uint64_t>(4 * s));
}

TEST_CASE("a removed container's memory is integrated down to zero over its last interval",
          "[metering][ledger]") {
  Ledger l;
  const Bills all{true, true};
  Reading r;
  r.working_set_bytes = 1000;
  scan(l, 10 * s, {container("a", "operator", all, r)});
  scan(l, 12 * s, {container("a", "operator", all, r)});
  scan(l, 14 * s, {});
  CHECK(l.tenants().at("operator").memory_byte_seconds == Approx(1000.0 * 2 + 1000.0));
  CHECK(l.sources().empty());
  CHECK(l.tenants().at("operator").running_containers == 0);
}

TEST_CASE("a final read bills a container's tail once, even if a scan still sees its cgroup",
          "[metering][ledger]") {
  Ledger l;
  const Bills all{true, true};
  Reading r;
  r.cpu_ns = 1 * s;
  r.working_set_bytes = 1000;
  scan(l, 10 * s, {container("a", "operator", all, r)});
  r.cpu_ns = 3 * s;
  REQUIRE(l.apply_final(11 * s, 0, container("a", "operator", all, r)));
  CHECK_FALSE(l.apply_final(11 * s, 0, container("a", "operator", all, r)));
  // The emptied cgroup lingers a few milliseconds: the next scan must not open it again.
  scan(l, 12 * s, {container("a", "operator", all, r)});
  CHECK(l.tenants().at("operator").cpu_ns == static_cast<std::uint64_t>(3 * s));
  CHECK(l.tenants().at("operator").memory_byte_seconds == Approx(1000.0));
  // Gone: the tombstone goes too, and a new cgroup under the same id is billed again.
  scan(l, 13 * s, {});
  r.cpu_ns = 1 * s;
  scan(l, 14 * s, {container("a", "operator", all, r, 8)});
  CHECK(l.tenants().at("operator").cpu_ns == static_cast<std::uint64_t>(4 * s));
}

TEST_CASE("a container restarted under the same id is billed its old and new cgroup",
          "[metering][ledger]") {
  Ledger l;
  const Bills all{true, true};
  Reading r;
  r.cpu_ns = 5 * s;
  scan(l, 10 * s, {container("a", "operator", all, r, 1)});
  r.cpu_ns = 1 * s;
  scan(l, 11 * s, {container("a", "operator", all, r, 2)});
  CHECK(l.tenants().at("operator").cpu_ns == static_cast<std::uint64_t>(6 * s));
}

TEST_CASE("containers under a tenant's aggregate bill only I/O, so CPU is never counted twice",
          "[metering][ledger]") {
  Ledger l;
  Reading r;
  r.cpu_ns = 2 * s;
  r.working_set_bytes = 500;
  r.has_blk = true;
  r.blk_read_bytes = 4096;
  r.has_net = true;
  r.net_rx_bytes = 100;
  r.net_tx_bytes = 50;
  scan(l, 10 * s, {aggregate("acme", 2 * s, 500), container("a", "acme", Bills{false, true}, r)});
  const auto& t = l.tenants().at("acme");
  CHECK(t.cpu_ns == static_cast<std::uint64_t>(2 * s));
  CHECK(t.blk_read_bytes == 4096);
  CHECK(t.net_rx_bytes == 100);
  CHECK(t.net_tx_bytes == 50);
  CHECK(t.working_set_bytes == 500);
  CHECK(t.running_containers == 1);
}

TEST_CASE("network counters missing from one read are not billed again when they come back",
          "[metering][ledger]") {
  Ledger l;
  const Bills io{false, true};
  Reading r;
  r.has_net = true;
  r.net_rx_bytes = 1000;
  scan(l, 10 * s, {container("a", "acme", io, r)});
  Reading missed;
  scan(l, 11 * s, {container("a", "acme", io, missed)});
  r.net_rx_bytes = 1500;
  scan(l, 12 * s, {container("a", "acme", io, r)});
  CHECK(l.tenants().at("acme").net_rx_bytes == 1500);
}

TEST_CASE("an unreadable cgroup bills nothing and is not closed", "[metering][ledger]") {
  Ledger l;
  scan(l, 10 * s, {aggregate("acme", 1 * s, 100)});
  auto stale = aggregate("acme", 0, 0);
  stale.stale = true;
  scan(l, 11 * s, {stale});
  scan(l, 12 * s, {aggregate("acme", 4 * s, 100)});
  CHECK(l.tenants().at("acme").cpu_ns == static_cast<std::uint64_t>(4 * s));
  CHECK(l.tenants().at("acme").memory_byte_seconds == Approx(200.0));
}

TEST_CASE("scan times that go backwards are clamped, never billed negative memory",
          "[metering][ledger]") {
  Ledger l;
  scan(l, 10 * s, {aggregate("acme", 0, 100)});
  scan(l, 9 * s, {aggregate("acme", 0, 100)});
  CHECK(l.tenants().at("acme").memory_byte_seconds == 0.0);
}

TEST_CASE("a restored ledger bills the usage that accrued while the meter was down",
          "[metering][ledger]") {
  Ledger before;
  scan(before, 10 * s, {aggregate("acme", 1 * s, 64 * mib)});
  scan(before, 11 * s, {aggregate("acme", 2 * s, 64 * mib)});
  const std::string saved = before.to_json().dump();
  auto after = Ledger::from_json(nlohmann::json::parse(saved));
  REQUIRE(after);
  CHECK(after->tenants().at("acme").cpu_ns == before.tenants().at("acme").cpu_ns);
  CHECK(after->tenants().at("acme").memory_byte_seconds ==
        before.tenants().at("acme").memory_byte_seconds);
  // Killed at 11 s, back at 16 s: the kernel counted 5 s of CPU meanwhile.
  scan(*after, 16 * s, {aggregate("acme", 7 * s, 64 * mib)});
  CHECK(after->tenants().at("acme").cpu_ns == static_cast<std::uint64_t>(7 * s));
  CHECK(after->tenants().at("acme").memory_byte_seconds == Approx(64.0 * mib * 6));
}

TEST_CASE("after a reboot the totals stay and every cgroup is billed from zero",
          "[metering][ledger]") {
  Ledger l;
  scan(l, 10 * s, {aggregate("acme", 9 * s, 0)});
  l.forget_sources();
  // Same inode number by chance, counter restarted at boot.
  scan(l, 1 * s, {aggregate("acme", 1 * s, 0)});
  CHECK(l.tenants().at("acme").cpu_ns == static_cast<std::uint64_t>(10 * s));
}

TEST_CASE("a new tenant's counters are exported as zero until scraped once",
          "[metering][ledger]") {
  Ledger l;
  scan(l, 10 * s, {});
  scan(l, 11 * s, {aggregate("acme", 3 * s, 100)});
  const auto& stored = l.tenants().at("acme");
  CHECK(l.exported_usage(stored).cpu_ns == 0);
  CHECK(l.exported_usage(stored).working_set_bytes == 100);
  l.mark_exported();
  CHECK(l.exported_usage(l.tenants().at("acme")).cpu_ns == static_cast<std::uint64_t>(3 * s));
}

TEST_CASE("a malformed ledger document is refused, not half-loaded", "[metering][ledger]") {
  CHECK_FALSE(Ledger::from_json(nlohmann::json::array()));
  CHECK_FALSE(Ledger::from_json(nlohmann::json{{"tenants", 1}}));
  auto doc = Ledger().to_json();
  doc["tenants"]["acme"] = {{"cpu_ns", -1}};
  CHECK_FALSE(Ledger::from_json(doc));
  auto orphan = Ledger().to_json();
  Ledger l;
  scan(l, 1 * s, {aggregate("acme", 1, 1)});
  orphan = l.to_json();
  orphan["tenants"].erase("acme");
  CHECK_FALSE(Ledger::from_json(orphan));
}

TEST_CASE("an extra sample as a container exits integrates the drop where it happened",
          "[metering][ledger]") {
  Ledger l;
  scan(l, 10 * s, {aggregate("acme", 0, 64 * mib)});
  // The container held 64 MiB until 10.2 s, then exited: the aggregate reads 0 from then on.
  REQUIRE(l.apply_sample(10 * s + s / 5, 0, aggregate("acme", 0, 0), Ledger::Between::hold));
  scan(l, 11 * s, {aggregate("acme", 0, 0)});
  CHECK(l.tenants().at("acme").memory_byte_seconds == Approx(64.0 * mib * 0.2));
}

TEST_CASE("extra samples as a container starts follow its memory as it arrives",
          "[metering][ledger]") {
  Ledger l;
  scan(l, 10 * s, {aggregate("acme", 0, 0)});
  // Created at 10.70 s, 64 MiB written by 10.75 s; scans alone would put half a second of it
  // on the wrong side.
  REQUIRE(l.apply_sample(10 * s + 700'000'000, 0, aggregate("acme", 0, 0),
                         Ledger::Between::interpolate));
  REQUIRE(l.apply_sample(10 * s + 750'000'000, 0, aggregate("acme", 0, 64 * mib),
                         Ledger::Between::interpolate));
  scan(l, 11 * s, {aggregate("acme", 0, 64 * mib)});
  CHECK(l.tenants().at("acme").memory_byte_seconds ==
        Approx(64.0 * mib * (0.025 + 0.25)).epsilon(1e-9));
}

TEST_CASE("an extra sample of a cgroup just created starts it at that instant and a scan that "
          "listed the tree before it does not close it",
          "[metering][ledger]") {
  Ledger l;
  scan(l, 10 * s, {});
  REQUIRE(l.apply_sample(10 * s + s / 2, 0, aggregate("newco", 1000, 100),
                         Ledger::Between::interpolate));
  scan(l, 11 * s, {});  // listed before the cgroup appeared
  REQUIRE(l.sources().contains("t/newco"));
  scan(l, 12 * s, {aggregate("newco", 5000, 100)});
  CHECK(l.tenants().at("newco").cpu_ns == 5000);
  CHECK(l.tenants().at("newco").memory_byte_seconds == Approx(150.0));
}

TEST_CASE("an extra sample of a recreated or closed cgroup bills nothing", "[metering][ledger]") {
  Ledger l;
  scan(l, 10 * s, {aggregate("acme", 5, 0, 1)});
  CHECK_FALSE(l.apply_sample(11 * s, 0, aggregate("acme", 9, 0, 2), Ledger::Between::hold));
  CHECK(l.tenants().at("acme").cpu_ns == 5);
  const Bills all{true, true};
  Reading r;
  REQUIRE(l.apply_final(12 * s, 0, container("a", "operator", all, r)));
  CHECK_FALSE(l.apply_sample(13 * s, 0, container("a", "operator", all, r),
                             Ledger::Between::interpolate));
}
