// berth-meter against the real dockerd and kernel: known workloads under a test tenant's
// cgroup parent, billed counters compared with the kernel's own figures (the aggregate's CPU
// counter; its working set sampled every 10 ms by the test itself and integrated).
//
// Tolerances from issue #5: CPU-seconds within 1%, memory byte-seconds within 2% (5% for
// containers living 1 to 2 s). The meter runs at its default resolution, 1 s, unless
// BERTH_METER_TEST_RESOLUTION_MS says otherwise.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "tests/metering/integration/support.hpp"

namespace {

using namespace berth::metering::it;
using namespace std::chrono_literals;

constexpr double mib = 1024.0 * 1024.0;

/// The meter's resolution: BERTH_METER_TEST_RESOLUTION_MS, else `fallback` milliseconds.
std::string resolution_ms(const char* fallback = "1000") {
  const char* env = std::getenv("BERTH_METER_TEST_RESOLUTION_MS");
  return env != nullptr ? env : fallback;
}

std::vector<std::string> meter_args(const TempDir& dir, const char* resolution = "1000") {
  return {"--listen", "127.0.0.1:0", "--state", (dir.path() / "state.json").string(),
          "--resolution-ms", resolution_ms(resolution)};
}

struct Billed {
  double cpu = 0;
  double memory = 0;
};

/// The tenant's counters as a scrape sees them. The first scrape of a tenant shows zeros (so
/// Prometheus sees its first increase), so scrape twice.
Billed billed(const MeterProcess& meter, const std::string& tenant) {
  (void)scrape(meter.port());
  std::this_thread::sleep_for(50ms);
  const std::string text = scrape(meter.port());
  Billed b;
  b.cpu = sample(text, "berth_tenant_cpu_seconds_total{tenant=\"" + tenant + "\"}").value_or(-1);
  b.memory =
      sample(text, "berth_tenant_memory_byte_seconds_total{tenant=\"" + tenant + "\"}").value_or(-1);
  return b;
}

/// Waits until the meter has scanned a few times after the last container exited.
void settle(const char* resolution = "1000") {
  std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(resolution_ms(resolution)) * 3 + 300));
}

}  // namespace

TEST_CASE("CPU burners, an idle container and 64 MiB in /dev/shm are billed to the kernel's "
          "figures, across an rm -f and a kill -9 of the meter",
          "[metering][integration]") {
  TempDir dir;
  TestTenant tenant('a');
  const auto t = tenant.id();
  const auto log = dir.path() / "meter.log";
  KernelReference reference(t, 10ms);
  auto meter = std::make_unique<MeterProcess>(meter_args(dir), log);

  // `timeout` must not run as PID 1: init ignores the SIGTERM that ends `yes`, hence "; exit 0".
  std::vector<std::string> waited;
  waited.push_back(run_container({{"sh", "-c", "timeout 14 yes > /dev/null; exit 0"}, t, 0.5}));
  waited.push_back(run_container({{"sh", "-c", "timeout 14 yes > /dev/null; exit 0"}, t, 0.25}));
  waited.push_back(run_container({{"sleep", "14"}, t}));
  waited.push_back(run_container(
      {{"sh", "-c", "dd if=/dev/zero of=/dev/shm/hold bs=1M count=64 2>/dev/null; sleep 14"},
       t,
       0.0,
       128 << 20}));
  const std::string victim = run_container({{"sh", "-c", "yes > /dev/null"}, t, 0.5});

  std::this_thread::sleep_for(5s);
  remove_container(victim);  // docker rm -f mid-run
  std::this_thread::sleep_for(2s);
  meter->kill9();
  std::this_thread::sleep_for(1s);  // systemd's RestartSec=1
  meter = std::make_unique<MeterProcess>(meter_args(dir), log);
  for (const auto& id : waited) {
    REQUIRE(wait_container(id, 60s));
  }
  settle();
  reference.stop();
  const auto kernel_cpu = KernelReference::cpu_seconds(t);
  REQUIRE(kernel_cpu);
  const Billed b = billed(*meter, t);
  INFO("meter log:\n" << meter->log_tail());
  INFO("kernel CPU " << *kernel_cpu << " s, billed " << b.cpu << " s; reference memory "
                     << reference.memory_byte_seconds() / mib << " MiB-s, billed "
                     << b.memory / mib << " MiB-s (" << reference.samples() << " samples)");
  // Up to 0.5*14 + 0.25*14 + 0.5*7 CPU-seconds (less on a busy host) and 64 MiB for 14 s:
  // the workload ran.
  REQUIRE(*kernel_cpu > 3.0);
  REQUIRE(reference.memory_byte_seconds() > 64 * mib * 12);
  CHECK(rel_diff(b.cpu, *kernel_cpu) < 0.01);
  CHECK(rel_diff(b.memory, reference.memory_byte_seconds()) < 0.02);
  WARN("steady: CPU off by " << rel_diff(b.cpu, *kernel_cpu) * 100 << "%, memory off by "
                             << rel_diff(b.memory, reference.memory_byte_seconds()) * 100
                             << "% at " << resolution_ms() << " ms");
}

TEST_CASE("bursts of containers living 1 to 2 s are billed in full, across an rm -f and a "
          "kill -9 of the meter",
          "[metering][integration]") {
  TempDir dir;
  TestTenant tenant('b');
  const auto t = tenant.id();
  const auto log = dir.path() / "meter.log";
  KernelReference reference(t, 10ms);
  // Scans alone would put each container's arrival and departure up to half a scan interval
  // away from where they happened (~6% spread for 20 containers of 1.5 s at 1 s); the meter
  // also samples the aggregate as each container's cgroup appears and empties.
  auto meter = std::make_unique<MeterProcess>(meter_args(dir), log);
  const std::string victim = run_container(
      {{"sh", "-c", "dd if=/dev/zero of=/dev/shm/f bs=1M count=16 2>/dev/null; yes > /dev/null"},
       t,
       0.3});

  // 36 starts, at most three a second (fewer when the machine is slow: the count, not the
  // clock, decides); each container writes 16 MiB to /dev/shm, burns a little CPU and lives 1
  // to 2 s in all. The victim goes after the 15th start, the meter is killed after the 18th and
  // restarted at the next start (deploy/berth-meter.service: RestartSec=100ms).
  const char* sleeps[] = {"0.8", "1.3", "1.8"};
  std::vector<std::string> started;
  const auto begin = std::chrono::steady_clock::now();
  bool killed = false;
  bool restarted = false;
  bool removed = false;
  for (int i = 0; i < 36; ++i) {
    std::this_thread::sleep_until(begin + i * 333ms);
    const std::string cmd =
        std::string("dd if=/dev/zero of=/dev/shm/f bs=1M count=16 2>/dev/null; i=0; "
                    "while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep ") +
        sleeps[i % 3];
    started.push_back(run_container({{"sh", "-c", cmd}, t, 0.0, 0, true}));
    if (!removed && i >= 15) {
      remove_container(victim);
      removed = true;
    }
    if (killed && !restarted) {
      meter = std::make_unique<MeterProcess>(meter_args(dir), log);
      restarted = true;
    }
    if (!killed && i >= 18) {
      meter->kill9();
      killed = true;
    }
  }
  REQUIRE(restarted);
  for (const auto& id : started) {
    REQUIRE(wait_container(id, 60s));
  }
  settle();
  reference.stop();
  const auto kernel_cpu = KernelReference::cpu_seconds(t);
  REQUIRE(kernel_cpu);
  const Billed b = billed(*meter, t);
  INFO("meter log:\n" << meter->log_tail());
  INFO(started.size() << " containers; kernel CPU " << *kernel_cpu << " s, billed " << b.cpu
                      << " s; reference memory " << reference.memory_byte_seconds() / mib
                      << " MiB-s, billed " << b.memory / mib << " MiB-s");
  REQUIRE(reference.memory_byte_seconds() > 16 * mib * static_cast<double>(started.size()) * 0.5);
  CHECK(rel_diff(b.cpu, *kernel_cpu) < 0.01);
  CHECK(rel_diff(b.memory, reference.memory_byte_seconds()) < 0.05);
  WARN("bursts: " << started.size() << " containers, CPU off by "
                  << rel_diff(b.cpu, *kernel_cpu) * 100 << "%, memory off by "
                  << rel_diff(b.memory, reference.memory_byte_seconds()) * 100 << "% at "
                  << resolution_ms() << " ms");
}

TEST_CASE("an unlabelled container is billed to the operator in full, though it lives less "
          "than one scan interval",
          "[metering][integration]") {
  TempDir dir;
  // Scans 5 s apart: the container below lives ~2 s, so only its final read (taken as its cgroup
  // empties, before dockerd deletes it) can bill all of it. It gets a private cgroup parent
  // (not a tenant's) so that the kernel keeps its total after it is gone: the reference.
  const std::string parent = "berthtest-" + std::to_string(::getpid());
  MeterProcess meter({"--listen", "127.0.0.1:0", "--resolution-ms", "5000"},
                     dir.path() / "meter.log");
  const auto operator_cpu = [&meter] {
    return sample(scrape(meter.port()), "berth_tenant_cpu_seconds_total{tenant=\"operator\"}")
        .value_or(0.0);
  };
  (void)operator_cpu();  // a tenant new to the meter shows 0 on its first scrape
  const double before = operator_cpu();
  ContainerSpec spec{{"sh", "-c", "timeout 2 yes > /dev/null; exit 0"}, "", 0.5};
  spec.cgroup_parent = "/" + parent;
  const std::string id = run_container(spec);
  REQUIRE(wait_container(id, 30s));
  std::this_thread::sleep_for(500ms);
  (void)operator_cpu();
  const double billed = operator_cpu() - before;
  const std::string text = scrape(meter.port());
  remove_container(id);
  std::this_thread::sleep_for(500ms);
  const std::string ns = [&parent] {
    std::ifstream in("/sys/fs/cgroup/cpuacct/" + parent + "/cpuacct.usage");
    std::string v;
    std::getline(in, v);
    return v;
  }();
  std::error_code ec;
  for (const auto& controller : std::filesystem::directory_iterator("/sys/fs/cgroup", ec)) {
    ::rmdir((controller.path() / parent).c_str());
  }
  INFO(meter.log_tail());
  CHECK(sample(text, "berth_meter_final_reads_total").value_or(0) >= 1);
  if (ns.empty()) {
    CHECK(billed > 0.5);  // cgroup v2 host: no v1 cpuacct reference
  } else {
    const double kernel = std::stod(ns) / 1e9;
    INFO("kernel " << kernel << " s, billed to the operator " << billed << " s");
    REQUIRE(kernel > 0.3);
    // Other unlabelled containers on this dockerd may add to the operator's bill meanwhile.
    CHECK(billed >= kernel * 0.99);
    CHECK(billed < kernel + 5.0);
  }
}

TEST_CASE("where no cgroup can be read, the meter falls back on dockerd's stats API",
          "[metering][integration]") {
  TempDir dir;
  TestTenant tenant('s');
  // A host seldom runs one container alone (in CI, other tests' containers run beside this
  // one). dockerd answers a stats request at its collector's next tick, once a second: a meter
  // that asked container after container took seconds per scan, and billed nothing here
  // within the 4 s below.
  TestTenant neighbours('o');
  for (int i = 0; i < 4; ++i) {
    (void)run_container({{"sleep", "60"}, neighbours.id()});
  }
  const auto empty_root = dir.path() / "no-cgroups";
  std::filesystem::create_directories(empty_root);
  MeterProcess meter({"--listen", "127.0.0.1:0", "--resolution-ms", "500", "--cgroup-root",
                      empty_root.string()},
                     dir.path() / "meter.log");
  const std::string id = run_container({{"sh", "-c", "yes > /dev/null"}, tenant.id(), 0.3});
  std::this_thread::sleep_for(4s);
  (void)scrape(meter.port());
  const std::string text = scrape(meter.port());
  const auto kernel_cpu = KernelReference::cpu_seconds(tenant.id());
  remove_container(id);
  const double followed = sample(text, "berth_meter_containers_followed").value_or(0);
  INFO(meter.log_tail() << text.substr(0, 2000) << "\ncontainers followed: " << followed);
  CHECK(sample(text, "berth_meter_info{source=\"stats_api\"}") == 1.0);
  CHECK(followed >= 5);  // its own and the four neighbours, at least
  const double billed =
      sample(text, "berth_tenant_cpu_seconds_total{tenant=\"" + tenant.id() + "\"}").value_or(0);
  REQUIRE(kernel_cpu);
  // Polling: up to one interval behind the kernel, never ahead of it.
  CHECK(billed > 0.2);
  CHECK(billed <= *kernel_cpu * 1.001);
}
