#pragma once
// Fixtures for the metering integration tests: containers made directly on dockerd's socket
// under a test tenant's cgroup parent (the proxy does not place them yet), berth-meter as a
// child process, scrapes of its /metrics, and an independent reference: the test's own
// fine-grained reading of the kernel's counters for the tenant's aggregate cgroup.
//
// Every test uses its own tenant id ("mt" + pid + a letter), so tests running in parallel on
// the shared dockerd never meet, and removes its containers and cgroups when it ends.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace berth::metering::it {

inline constexpr std::string_view image = "berth-test/busybox:latest";

/// A private temporary directory, removed at the end (kept with BERTH_KEEP_TEMP=1).
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

/// A test tenant: a unique id; on destruction its containers are removed (by label) and its
/// /berth/<id> cgroups deleted in every hierarchy.
class TestTenant {
 public:
  explicit TestTenant(char suffix);
  TestTenant(const TestTenant&) = delete;
  TestTenant& operator=(const TestTenant&) = delete;
  ~TestTenant();
  [[nodiscard]] const std::string& id() const noexcept { return id_; }
  [[nodiscard]] std::string cgroup_parent() const { return "/berth/" + id_; }

 private:
  std::string id_;
};

struct ContainerSpec {
  std::vector<std::string> cmd;
  std::string tenant;           ///< empty: no label, no cgroup parent (an operator container)
  double cpus = 0.0;            ///< NanoCpus limit; 0: none
  std::int64_t shm_bytes = 0;   ///< 0: dockerd's default
  bool auto_remove = false;     ///< `docker run --rm`
  std::string cgroup_parent = {};  ///< for an unlabelled container: its own absolute parent
};

/// Creates and starts a container; returns its id. Throws on failure.
std::string run_container(const ContainerSpec& spec);
/// `docker rm -f`.
void remove_container(const std::string& id);
/// Blocks until the container exits (bounded). False on timeout.
bool wait_container(const std::string& id, std::chrono::seconds timeout);
/// Removes every container labelled berth.tenant=<tenant>.
void remove_tenant_containers(const std::string& tenant);

/// berth-meter as a child process with its output in a log file.
class MeterProcess {
 public:
  MeterProcess(std::vector<std::string> args, std::filesystem::path log);
  MeterProcess(const MeterProcess&) = delete;
  MeterProcess& operator=(const MeterProcess&) = delete;
  ~MeterProcess();

  /// Port from "berth-meter: ready on port N", polled for up to 10 s; throws if it never came.
  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }
  /// kill -9, then reap.
  void kill9();
  /// SIGTERM, then reap (SIGKILL after 10 s). Returns the exit status.
  int terminate();
  [[nodiscard]] std::string log_tail() const;

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  std::filesystem::path log_;
};

/// GET /metrics.
[[nodiscard]] std::string scrape(int port);
/// The value of the sample `series` (e.g. `berth_tenant_cpu_seconds_total{tenant="x"}`).
[[nodiscard]] std::optional<double> sample(const std::string& metrics, const std::string& series);

/// Samples the kernel's figures for /berth/<tenant> every `period` on its own thread: the
/// working set (memory.usage_in_bytes minus total_inactive_file on v1; memory.current minus
/// inactive_file on v2), integrated with the trapezoid rule, and the CPU counter. Reads the
/// files with plain iostreams, independently of the meter's code.
class KernelReference {
 public:
  KernelReference(std::string tenant, std::chrono::milliseconds period);
  KernelReference(const KernelReference&) = delete;
  KernelReference& operator=(const KernelReference&) = delete;
  ~KernelReference();
  void stop();
  [[nodiscard]] double memory_byte_seconds() const;
  [[nodiscard]] std::uint64_t samples() const { return samples_; }
  /// The aggregate's CPU counter now, in seconds (the kernel's own figure).
  [[nodiscard]] static std::optional<double> cpu_seconds(const std::string& tenant);
  /// The aggregate's working set now, or nullopt if the cgroup does not exist.
  [[nodiscard]] static std::optional<double> working_set(const std::string& tenant);

 private:
  void run();
  std::string tenant_;
  std::chrono::milliseconds period_;
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  double byte_seconds_ = 0.0;
  std::atomic<std::uint64_t> samples_{0};
  std::thread thread_;
};

struct RunResult {
  int exit_code = -1;  ///< -1: killed or timed out
  std::string out;     ///< stdout and stderr together
};
/// Runs argv (argv[0] an absolute path) with `input` on stdin, bounded by `timeout`.
[[nodiscard]] RunResult run_process(const std::vector<std::string>& argv,
                                    const std::string& input = {},
                                    std::chrono::seconds timeout = std::chrono::seconds(60));

/// A background child (Prometheus) with output to a log file; SIGTERM then SIGKILL at the end.
class Child {
 public:
  Child(std::vector<std::string> argv, const std::filesystem::path& log);
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();
  [[nodiscard]] bool running();

 private:
  pid_t pid_ = -1;
};

/// Exits the test process with 77 (skip) when `what` is missing, or fails the test when
/// BERTH_REQUIRE_DOCKER=1 (CI).
void skip_or_fail(const std::string& what);

/// The free TCP port the kernel hands out for 127.0.0.1:0 (closed again: a small race).
[[nodiscard]] int free_port();

/// Relative difference |a - b| / |b|.
[[nodiscard]] inline double rel_diff(double a, double b) {
  return b == 0.0 ? (a == 0.0 ? 0.0 : 1.0) : (a > b ? a - b : b - a) / (b > 0 ? b : -b);
}

}  // namespace berth::metering::it
