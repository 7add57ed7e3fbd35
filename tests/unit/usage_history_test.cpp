// What a fleet host's containers really use, read from its berth-meter's /metrics text and
// kept over a window for placement (policy/usage_history.hpp).

#include <catch2/catch.hpp>

#include <string>

#include "policy/usage_history.hpp"

using namespace berth::policy;

namespace {

std::string metrics(double cpu_a, double mem_a, double cpu_b, double mem_b) {
  return "# HELP berth_container_cpu_seconds_total CPU\n"
         "# TYPE berth_container_cpu_seconds_total counter\n"
         "berth_container_cpu_seconds_total{container=\"web\",id=\"aaaaaaaaaaaa\",tenant=\"acme\"} " +
         std::to_string(cpu_a) +
         "\n"
         "berth_container_cpu_seconds_total{container=\"db\",id=\"bbbbbbbbbbbb\",tenant=\"acme\"} " +
         std::to_string(cpu_b) +
         "\n"
         "berth_container_memory_working_set_bytes{container=\"web\",id=\"aaaaaaaaaaaa\",tenant=\"acme\"} " +
         std::to_string(mem_a) +
         "\n"
         "berth_container_memory_working_set_bytes{container=\"db\",id=\"bbbbbbbbbbbb\",tenant=\"acme\"} " +
         std::to_string(mem_b) + "\n" +
         "berth_tenant_cpu_seconds_total{tenant=\"acme\"} 99\n";
}

}  // namespace

TEST_CASE("the meter's per-container samples are read by their 12-digit id, anything else "
          "skipped",
          "[policy][placement][fleet]") {
  const auto samples = parse_container_samples(
      metrics(1.5, 1000, 2, 2000) +
      "berth_container_cpu_seconds_total{xid=\"cccccccccccc\"} 5\n"
      "berth_container_cpu_seconds_total{id=\"CCCCCCCCCCCC\"} 5\n"
      "berth_container_cpu_seconds_total{id=\"dddddddddddd\"} -1\n"
      "berth_container_cpu_seconds_total{id=\"eeeeeeeeeeee\"} NaN\n"
      "berth_container_memory_working_set_bytes{id=\"ffffffffffff\"} 7 1700000000000\n");
  REQUIRE(samples.size() == 3);
  CHECK(samples[0].id12 == "aaaaaaaaaaaa");
  CHECK(samples[0].cpu_seconds == 1.5);
  CHECK(samples[0].memory == 1000);
  CHECK(samples[1].id12 == "bbbbbbbbbbbb");
  CHECK(samples[2].id12 == "ffffffffffff");  // with the optional timestamp
  CHECK(samples[2].memory == 7);
  CHECK(samples[2].cpu_seconds == 0);
}

TEST_CASE("a container's CPU rate comes from two samples, its p95 from the window, and a "
          "container gone from the meter is forgotten",
          "[policy][placement][fleet]") {
  UsageHistory h;
  h.add(1'000, parse_container_samples(metrics(10, 100 << 20, 0, 50 << 20)));
  auto first = h.snapshot();
  REQUIRE(first.size() == 2);
  CHECK(first["aaaaaaaaaaaa"].latest.nano_cpus == 0);  // one sample: no rate yet
  // 5 s later web used 2.5 CPU seconds more: half a CPU.
  h.add(6'000, parse_container_samples(metrics(12.5, 300 << 20, 0, 50 << 20)));
  auto second = h.snapshot();
  CHECK(second["aaaaaaaaaaaa"].latest.nano_cpus == 500'000'000);
  CHECK(second["aaaaaaaaaaaa"].latest.memory == 300 << 20);
  CHECK(second["aaaaaaaaaaaa"].p95.memory == 300 << 20);
  // A hundred quiet samples later the one peak has left the window, and the p95 with it.
  for (int i = 0; i < 100; ++i) {
    h.add(11'000 + i * 5'000, parse_container_samples(metrics(12.5, 10 << 20, 0, 50 << 20)));
  }
  auto later = h.snapshot();
  CHECK(later["aaaaaaaaaaaa"].p95.memory == 10 << 20);
  CHECK(later["aaaaaaaaaaaa"].p95.nano_cpus == 0);
  h.add(1'000'000, {ContainerSample{"bbbbbbbbbbbb", 0, 1}});
  CHECK(h.snapshot().size() == 1);
}

TEST_CASE("a p95 keeps a peak seen in more than one scrape in twenty, and drops a rarer one",
          "[policy][placement][fleet]") {
  UsageHistory h;
  for (int i = 0; i < 40; ++i) {
    const double memory = (i % 13 == 0) ? 900 : 100;  // four peaks in forty
    h.add(1'000 + i * 5'000, {ContainerSample{"aaaaaaaaaaaa", 0, memory}});
  }
  CHECK(h.snapshot()["aaaaaaaaaaaa"].p95.memory == 900);
  for (int i = 40; i < 100; ++i) {
    h.add(1'000 + i * 5'000, {ContainerSample{"aaaaaaaaaaaa", 0, i == 90 ? 900.0 : 100.0}});
  }
  CHECK(h.snapshot()["aaaaaaaaaaaa"].p95.memory == 100);  // one peak in sixty is above p95
}
