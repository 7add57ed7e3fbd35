// berth_meter_bench: what reading the kernel costs the meter. Not a test: run it by hand on an
// otherwise quiet host (it needs root, cgroup v1 or v2 mounted at --cgroup-root).
//
//   berth_meter_bench [--containers N] [--seconds S] [--resolution-ms R] [--real N]
//
// 1. Lays out N container cgroups under a bench tenant's aggregate (mkdir in the kernel's
//    hierarchies: real cgroup files, no processes), plus --real N sleeping busybox containers
//    started on dockerd (those add a network namespace read each), and measures the CPU time
//    of Meter::scan_at in this thread: microseconds per container sample.
// 2. Starts the real berth-meter at --resolution-ms over the same tree for --seconds and reads
//    its utime+stime from /proc: percent of one core.
// Everything it created is removed at the end, also on SIGINT.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "metering/cgroup.hpp"
#include "metering/docker.hpp"
#include "metering/http.hpp"
#include "metering/meter.hpp"

namespace {

namespace fs = std::filesystem;
namespace m = berth::metering;

volatile sig_atomic_t interrupted = 0;

void on_signal(int) { interrupted = 1; }

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

std::int64_t boottime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

/// utime + stime of a process, in seconds.
double process_cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(in, text);
  const auto close = text.rfind(')');
  std::istringstream fields(text.substr(close + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14 || i == 15) {
      ticks += std::stod(f);
    }
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

/// A container id as dockerd makes them: 64 hex digits that differ from the first one on.
std::string hex_id(int n) {
  std::string id;
  std::uint64_t x = std::uint64_t{0x9e3779b97f4a7c15} * static_cast<std::uint64_t>(n + 1);
  for (int i = 0; i < 64; ++i) {
    x ^= x >> 29;
    x *= std::uint64_t{0xbf58476d1ce4e5b9};
    id += "0123456789abcdef"[x >> 60];
  }
  return id;
}

/// CPU seconds one in-process scan takes over the whole tree, averaged over `scans` scans.
double scan_cpu(const fs::path& cgroup_root, std::uint64_t detail_every, int scans) {
  m::MeterOptions mo;
  mo.cgroup_root = cgroup_root;
  mo.docker_socket = "none";
  mo.detail_every = detail_every;
  auto meter = m::Meter::create(mo);
  if (!meter) {
    std::cerr << meter.error() << "\n";
    return -1;
  }
  (*meter)->scan_at(boottime_ns(), 0);  // opens every file once
  const double c0 = thread_cpu_seconds();
  for (int i = 0; i < scans && !interrupted; ++i) {
    (*meter)->scan_at(boottime_ns(), 0);
  }
  return (thread_cpu_seconds() - c0) / scans;
}

/// The berth-meter process's CPU seconds per wall second over `seconds`, after a 2 s warm-up.
double process_cpu(const fs::path& cgroup_root, int resolution_ms, int seconds) {
  const char* env = std::getenv("BERTH_METER_BIN");
  const std::string bin = env != nullptr ? env : BERTH_METER_BIN;
  const std::string res = std::to_string(resolution_ms);
  const std::string root = cgroup_root.string();
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    ::dup2(devnull, 1);
    ::execl(bin.c_str(), bin.c_str(), "--listen", "127.0.0.1:0", "--resolution-ms", res.c_str(),
            "--cgroup-root", root.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const double c0 = process_cpu_seconds(pid);
  const auto w0 = std::chrono::steady_clock::now();
  for (int i = 0; i < seconds * 10 && !interrupted; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double cpu = process_cpu_seconds(pid) - c0;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
  ::kill(pid, SIGTERM);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return cpu / wall;
}

struct Options {
  int containers = 500;
  int seconds = 20;
  int resolution_ms = 1000;
  int real = 0;
  int scans = 50;  ///< in-process scans measured; --scans N with a large N for a profiler
  fs::path cgroup_root = "/sys/fs/cgroup";
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const std::string v = argv[i + 1];
    if (a == "--containers") {
      o.containers = std::stoi(v);
    } else if (a == "--seconds") {
      o.seconds = std::stoi(v);
    } else if (a == "--resolution-ms") {
      o.resolution_ms = std::stoi(v);
    } else if (a == "--scans") {
      o.scans = std::stoi(v);
    } else if (a == "--real") {
      o.real = std::stoi(v);
    } else if (a == "--cgroup-root") {
      o.cgroup_root = v;
    } else {
      std::cerr << "usage: berth_meter_bench [--containers N] [--seconds S] [--resolution-ms R] "
                   "[--real N] [--cgroup-root DIR]\n";
      return 2;
    }
  }
  ::signal(SIGINT, on_signal);
  ::signal(SIGTERM, on_signal);
  const auto layout = m::detect_layout(o.cgroup_root);
  if (!layout) {
    std::cerr << "berth_meter_bench: " << layout.error() << "\n";
    return 1;
  }
  const std::string tenant = "bench" + std::to_string(::getpid());
  const std::string parent = "berth/" + tenant;
  std::vector<fs::path> hierarchies{layout->cpu, layout->memory};
  if (!layout->blkio.empty() && layout->blkio != layout->cpu) {
    hierarchies.push_back(layout->blkio);
  }
  if (!layout->events.empty() && layout->events != layout->cpu) {
    hierarchies.push_back(layout->events);
  }
  // The host's other tenants and containers are scanned too: measure them alone first, so the
  // figures below are what N more containers cost.
  const std::uint64_t default_detail = m::MeterOptions{}.detail_every;
  std::printf("baseline (this host's own cgroups only): measuring...\n");
  const double base_full = scan_cpu(o.cgroup_root, 1, o.scans);
  const double base_detail = scan_cpu(o.cgroup_root, default_detail, o.scans);
  const double base_proc = o.seconds > 0 ? process_cpu(o.cgroup_root, o.resolution_ms, o.seconds) : 0;
  std::printf("baseline: %.2f ms CPU per scan (--detail-every 1), %.2f ms (--detail-every %llu)"
              "; process %.2f%% of one core\n",
              base_full * 1e3, base_detail * 1e3, static_cast<unsigned long long>(default_detail),
              base_proc * 100);
  std::vector<fs::path> made;  // removed in reverse order
  const auto make_dir = [&made](const fs::path& p) {
    if (::mkdir(p.c_str(), 0755) == 0) {
      made.push_back(p);
      return true;
    }
    return errno == EEXIST;
  };
  bool ok = true;
  for (const auto& h : hierarchies) {
    ok = ok && make_dir(h / "berth") && make_dir(h / parent);
    for (int i = 0; ok && i < o.containers; ++i) {
      ok = make_dir(h / parent / hex_id(i));
    }
  }
  m::DockerClient docker(m::parse_endpoint("/var/run/docker.sock").value());
  std::vector<std::string> real_ids;
  for (int i = 0; ok && i < o.real && !interrupted; ++i) {
    const nlohmann::json body = {
        {"Image", "berth-test/busybox:latest"},
        {"Cmd", {"sleep", "3600"}},
        {"Labels", {{"berth.tenant", tenant}}},
        {"HostConfig", {{"CgroupParent", "/" + parent}, {"AutoRemove", true}}}};
    auto r = m::http_request(docker.endpoint(), "POST", "/containers/create", body.dump());
    if (!r || r->status != 201) {
      std::cerr << "create failed: " << (r ? r->body : r.error()) << "\n";
      break;
    }
    const std::string id = nlohmann::json::parse(r->body).value("Id", "");
    real_ids.push_back(id);
    (void)m::http_request(docker.endpoint(), "POST", "/containers/" + id + "/start", "");
  }
  int status = 0;
  if (!ok) {
    std::cerr << "berth_meter_bench: cannot create cgroups under " << o.cgroup_root
              << " (root needed)\n";
    status = 1;
  } else {
    const int n = o.containers + static_cast<int>(real_ids.size());
    std::cout << "containers: " << o.containers << " empty cgroups + " << real_ids.size()
              << " running containers, cgroup "
              << (layout->version == m::CgroupVersion::v1 ? "v1" : "v2") << "\n";

    // 0. What each file costs to re-read (kernel text generation plus the syscall).
    if (o.seconds > 0) {
      // A running container's files when there is one (its memory.stat has content, its
      // network namespace only lo and eth0), else an empty cgroup's and the host's net/dev.
      const fs::path one = parent + "/" + (real_ids.empty() ? hex_id(0) : real_ids.front());
      std::string net_dev = "/proc/self/net/dev";
      {
        std::ifstream procs(layout->cpu / one / "cgroup.procs");
        std::string pid;
        if (std::getline(procs, pid) && !pid.empty()) {
          net_dev = "/proc/" + pid + "/net/dev";
        }
      }
      const bool v1 = layout->version == m::CgroupVersion::v1;
      const std::vector<std::pair<std::string, fs::path>> files{
          {"cpu", layout->cpu / one / (v1 ? "cpuacct.usage" : "cpu.stat")},
          {"memory usage", layout->memory / one / (v1 ? "memory.usage_in_bytes" : "memory.current")},
          {"memory.stat", layout->memory / one / "memory.stat"},
          {"block I/O", layout->blkio / one /
                            (v1 ? "blkio.throttle.io_service_bytes_recursive" : "io.stat")},
          {"net/dev", net_dev}};
      std::string buf;
      std::printf("per-file re-read cost (CPU):");
      for (const auto& [name, path] : files) {
        const m::Fd fd = m::open_read(path);
        if (!fd) {
          continue;
        }
        const int reps = 20000;
        const double c0 = thread_cpu_seconds();
        for (int i = 0; i < reps; ++i) {
          (void)m::reread(fd, buf);
        }
        std::printf(" %s %.2f us;", name.c_str(), (thread_cpu_seconds() - c0) / reps * 1e6);
      }
      std::printf("\n");
    }

    // 1. In-process: the scans' own CPU time, minus the baseline.
    const double full = scan_cpu(o.cgroup_root, 1, o.scans);
    const double detail = scan_cpu(o.cgroup_root, default_detail, o.scans);
    std::printf("per container sample, in-process: %.1f us CPU read in full (--detail-every 1), "
                "%.1f us with --detail-every %llu\n",
                (full - base_full) / n * 1e6, (detail - base_detail) / n * 1e6,
                static_cast<unsigned long long>(default_detail));
    std::printf("  => %d containers at %d ms resolution: %.2f%% of one core (%.2f%% in full)\n", n,
                o.resolution_ms, (detail - base_detail) / (o.resolution_ms / 1000.0) * 100.0,
                (full - base_full) / (o.resolution_ms / 1000.0) * 100.0);

    // 2. The real berth-meter process, everything included (threads, inotify, exposer).
    if (o.seconds > 0 && !interrupted) {
      const double proc = process_cpu(o.cgroup_root, o.resolution_ms, o.seconds);
      std::printf("berth-meter process at %d ms resolution: %.2f%% of one core in all, %.2f%% "
                  "more than the baseline = %.1f us CPU per container sample\n",
                  o.resolution_ms, proc * 100, (proc - base_proc) * 100,
                  (proc - base_proc) * (o.resolution_ms / 1000.0) / n * 1e6);
    }
  }
  for (const auto& id : real_ids) {
    (void)m::http_request(docker.endpoint(), "DELETE", "/containers/" + id + "?force=1", "");
  }
  // The aggregate cgroup disappears only once dockerd has removed every container.
  for (int i = 0; i < 100 && !real_ids.empty(); ++i) {
    if (::rmdir((layout->cpu / parent).c_str()) == 0 || errno == ENOENT) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  for (auto it = made.rbegin(); it != made.rend(); ++it) {
    if (it->filename() != "berth") {
      ::rmdir(it->c_str());
    }
  }
  // dockerd made the parent in every controller (cpu, pids, devices, ...), not only ours.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(o.cgroup_root, ec)) {
    ::rmdir((entry.path() / parent).c_str());
  }
  ::rmdir((o.cgroup_root / parent).c_str());
  return status;
}
