// placement-sim: policy::place() replayed over a synthetic fleet, twice with the same requests:
//   limits    placing on limits alone: overcommit 1, no meter snapshots;
//   measured  placing on measured use: the operator's overcommit, and each host's snapshot
//             (sum of its containers' p95 use, refreshed every --snapshot-every decisions, with
//             what was placed since counted at its demand) under a headroom.
// It reports how many containers each admits, how many hosts end up with the sum of their
// containers' true peaks over real capacity (the placer never sees a peak, only p95 once a
// container has run), and the latency of every decision (steady_clock around place(); the
// thread's CPU time too, since on a shared machine a wall-clock maximum is mostly preemption).
// A program, not a CTest test: it prints a table for a person, and takes seconds.
//
// The synthetic fleet (fixed seed, reproducible with the same standard library):
//   hosts       8-32 CPUs, 16-64 GiB; 1% unhealthy, 1% cordoned;
//   containers  memory limit log-uniform 128MiB-8GiB for 70%, the others none (the operator
//               default, which berth writes into the container, so it is their real cap);
//               CPU limit log-uniform 0.1-2 CPUs for 50%, the others the default;
//               p95 use a lognormal fraction of the limit (memory median 30%, CPU 15%), the
//               true peak 1-1.3x p95, never above the limit; 5% publish a port of 8000-8099;
//               500 tenants; 200 images, a few popular.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <time.h>

#include "policy/placement.hpp"

namespace {

using berth::policy::Amount;
using berth::policy::HostPort;
using berth::policy::HostState;
using berth::policy::PlacementOptions;
using berth::policy::PlacementRequest;
using berth::policy::TenantPresence;

constexpr std::int64_t mib = 1LL << 20;
constexpr std::int64_t gib = 1LL << 30;
constexpr std::int64_t cpu = 1'000'000'000;

struct Args {
  std::size_t hosts = 1000;
  std::size_t containers = 50000;
  std::uint64_t seed = 42;
  double memory_overcommit = 2.0;
  double cpu_overcommit = 2.0;
  double headroom = 0.8;
  std::size_t snapshot_every = 100;
  std::size_t tenants = 500;
};

struct HostSpec {
  std::string name;
  Amount capacity;
  bool healthy = true;
  bool cordoned = false;
};

struct Container {
  std::size_t tenant = 0;
  Amount limits;  // 0: none
  Amount p95;     // what the meter sees once it has run
  Amount peak;    // what it truly reaches; the placer never sees it
  std::string image;
  std::vector<HostPort> ports;
};

// This thread's CPU time: what a decision costs, without the time the machine's other work
// took the core away.
double thread_cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_nsec);
}

double log_uniform(std::mt19937_64& rng, double lo, double hi) {
  std::uniform_real_distribution<double> u(std::log(lo), std::log(hi));
  return std::exp(u(rng));
}

std::vector<HostSpec> make_hosts(const Args& args, std::mt19937_64& rng) {
  // (CPUs, GiB): the shapes a fleet buys, equally many of each.
  constexpr std::pair<int, int> shapes[] = {{8, 16}, {8, 32}, {16, 32}, {16, 64}, {32, 64}};
  std::uniform_int_distribution<std::size_t> shape(0, std::size(shapes) - 1);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<HostSpec> hosts;
  for (std::size_t i = 0; i < args.hosts; ++i) {
    const auto [cpus, gibs] = shapes[shape(rng)];
    char name[32];
    std::snprintf(name, sizeof name, "host-%04zu", i);
    HostSpec h{name, Amount{cpus * cpu, gibs * gib}};
    const double r = u(rng);
    h.healthy = r >= 0.01;
    h.cordoned = r >= 0.01 && r < 0.02;
    hosts.push_back(std::move(h));
  }
  return hosts;
}

// A p95 fraction of the limit (lognormal around the median), and a peak 1-1.3x that,
// neither above the limit.
std::pair<std::int64_t, std::int64_t> usage(std::mt19937_64& rng, std::int64_t limit,
                                            double median) {
  std::lognormal_distribution<double> fraction(std::log(median), 0.6);
  std::uniform_real_distribution<double> burst(1.0, 1.3);
  const double f = std::clamp(fraction(rng), 0.02, 1.0);
  const double l = static_cast<double>(limit);
  const auto p95 = static_cast<std::int64_t>(f * l);
  const auto peak = static_cast<std::int64_t>(std::min(l, f * burst(rng) * l));
  return {p95, peak};
}

std::vector<Container> make_containers(const Args& args, const PlacementOptions& opts,
                                       std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0, 1);
  std::uniform_int_distribution<std::size_t> tenant(0, args.tenants - 1);
  std::uniform_int_distribution<int> port(8000, 8099);
  std::vector<Container> out;
  out.reserve(args.containers);
  for (std::size_t i = 0; i < args.containers; ++i) {
    Container c;
    c.tenant = tenant(rng);
    if (u(rng) < 0.7) {
      c.limits.memory = static_cast<std::int64_t>(log_uniform(rng, 128.0 * mib, 8.0 * gib));
    }
    if (u(rng) < 0.5) {
      c.limits.nano_cpus = static_cast<std::int64_t>(log_uniform(rng, 0.1 * cpu, 2.0 * cpu));
    }
    const Amount cap = berth::policy::demand_of(c.limits, opts);
    const auto [mem_p95, mem_peak] = usage(rng, cap.memory, 0.30);
    const auto [cpu_p95, cpu_peak] = usage(rng, cap.nano_cpus, 0.15);
    c.p95 = Amount{cpu_p95, mem_p95};
    c.peak = Amount{cpu_peak, mem_peak};
    // A few popular images, many rare ones (Zipf-like by squaring a uniform).
    const double z = u(rng);
    c.image = "sha256:img" + std::to_string(static_cast<int>(z * z * 200));
    if (u(rng) < 0.05) {
      c.ports.push_back(HostPort{static_cast<std::uint16_t>(port(rng)), false});
    }
    out.push_back(std::move(c));
  }
  return out;
}

struct Outcome {
  std::size_t admitted = 0;
  std::size_t refused = 0;
  std::size_t hosts_over_memory = 0;
  std::size_t hosts_over_cpu = 0;
  double worst_memory = 0;  // highest sum of peaks / capacity
  double worst_cpu = 0;
  std::vector<double> latency_ns;
  double max_cpu_ns = 0;  // the most CPU time one decision took (wall time includes preemption)
  std::string first_refusal;
  std::vector<std::string> first_audit;
};

// The fleet as the placer's caller keeps it: the snapshot, plus the truth the sim knows.
class Fleet {
 public:
  Fleet(const std::vector<HostSpec>& specs, bool measured, const Args& args, std::size_t tenants)
      : measured_(measured), presence_(tenants), peaks_(specs.size()), p95s_(specs.size()) {
    for (const auto& s : specs) {
      HostState h;
      h.name = s.name;
      h.healthy = s.healthy;
      h.cordoned = s.cordoned;
      h.capacity = s.capacity;
      h.memory_overcommit = measured ? args.memory_overcommit : 1.0;
      h.cpu_overcommit = measured ? args.cpu_overcommit : 1.0;
      if (measured) {
        h.measured = Amount{};
      }
      berth::policy::normalize(h);
      hosts_.push_back(std::move(h));
    }
  }

  const std::vector<HostState>& hosts() const { return hosts_; }

  const std::vector<TenantPresence>& presence(std::size_t tenant) const {
    return presence_[tenant];
  }

  void admit(std::uint32_t host, const Container& c, const PlacementOptions& opts) {
    HostState& h = hosts_[host];
    const Amount demand = berth::policy::demand_of(c.limits, opts);
    // Until the meter has seen it run, it counts at its demand: accounted() with no p95.
    h.reserved.memory += demand.memory;
    h.reserved.nano_cpus += demand.nano_cpus;
    if (measured_) {
      h.unmeasured.memory += demand.memory;
      h.unmeasured.nano_cpus += demand.nano_cpus;
      pending_.push_back({host, &c});
    }
    for (const auto& p : c.ports) {
      h.ports_in_use.insert(std::lower_bound(h.ports_in_use.begin(), h.ports_in_use.end(), p), p);
    }
    const auto img = std::lower_bound(h.image_ids.begin(), h.image_ids.end(), c.image);
    if (img == h.image_ids.end() || *img != c.image) {
      h.image_ids.insert(img, c.image);
    }
    auto& mine = presence_[c.tenant];
    const auto it = std::find_if(mine.begin(), mine.end(),
                                 [&](const TenantPresence& p) { return p.host == h.name; });
    if (it != mine.end()) {
      ++it->containers;
    } else {
      mine.push_back(TenantPresence{h.name, 1, {}});
    }
    peaks_[host].memory += c.peak.memory;
    peaks_[host].nano_cpus += c.peak.nano_cpus;
  }

  // The meter's background snapshot: containers placed since the last one have run, so their
  // p95 is known; reservations become max(demand, p95) and measured use the sum of p95s.
  void snapshot(const PlacementOptions& opts) {
    for (const auto& [host, c] : pending_) {
      HostState& h = hosts_[host];
      const Amount demand = berth::policy::demand_of(c->limits, opts);
      const Amount counted = berth::policy::accounted(c->limits, c->p95, opts);
      h.reserved.memory += counted.memory - demand.memory;
      h.reserved.nano_cpus += counted.nano_cpus - demand.nano_cpus;
      h.unmeasured = Amount{};
      p95s_[host].memory += c->p95.memory;
      p95s_[host].nano_cpus += c->p95.nano_cpus;
      h.measured = p95s_[host];
    }
    pending_.clear();
  }

  void judge(Outcome& out) const {
    for (std::size_t i = 0; i < hosts_.size(); ++i) {
      const double mem =
          static_cast<double>(peaks_[i].memory) / static_cast<double>(hosts_[i].capacity.memory);
      const double cpus = static_cast<double>(peaks_[i].nano_cpus) /
                          static_cast<double>(hosts_[i].capacity.nano_cpus);
      out.hosts_over_memory += mem > 1.0 ? 1 : 0;
      out.hosts_over_cpu += cpus > 1.0 ? 1 : 0;
      out.worst_memory = std::max(out.worst_memory, mem);
      out.worst_cpu = std::max(out.worst_cpu, cpus);
    }
  }

 private:
  bool measured_;
  std::vector<HostState> hosts_;
  std::vector<std::vector<TenantPresence>> presence_;
  std::vector<Amount> peaks_;
  std::vector<Amount> p95s_;
  std::vector<std::pair<std::uint32_t, const Container*>> pending_;
};

PlacementRequest request_for(const Container& c, const Fleet& fleet) {
  PlacementRequest r;
  r.tenant = "tenant-" + std::to_string(c.tenant);
  r.limits = c.limits;
  r.image_id = c.image;
  r.ports = c.ports;
  r.presence = fleet.presence(c.tenant);
  return r;
}

Outcome run(const std::vector<HostSpec>& specs, const std::vector<Container>& containers,
            bool measured, const Args& args, const PlacementOptions& opts) {
  Fleet fleet(specs, measured, args, args.tenants);
  Outcome out;
  out.latency_ns.reserve(containers.size());
  for (std::size_t i = 0; i < containers.size(); ++i) {
    const Container& c = containers[i];
    const PlacementRequest req = request_for(c, fleet);
    const double cpu_start = thread_cpu_ns();
    const auto start = std::chrono::steady_clock::now();
    const auto placed = berth::policy::place(fleet.hosts(), req, opts);
    const auto end = std::chrono::steady_clock::now();
    out.max_cpu_ns = std::max(out.max_cpu_ns, thread_cpu_ns() - cpu_start);
    out.latency_ns.push_back(static_cast<double>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count()));
    if (placed.host) {
      ++out.admitted;
      fleet.admit(*placed.host, c, opts);
    } else {
      ++out.refused;
      if (out.first_refusal.empty()) {
        out.first_refusal = berth::policy::tenant_refusal(placed, req);
        out.first_audit = berth::policy::audit_detail(placed, fleet.hosts(), req, opts);
      }
    }
    if (measured && (i + 1) % args.snapshot_every == 0) {
      fleet.snapshot(opts);
    }
  }
  fleet.judge(out);
  return out;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) {
    return 0;
  }
  const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

void print_row(const char* what, const std::string& a, const std::string& b) {
  std::printf("  %-38s %14s %14s\n", what, a.c_str(), b.c_str());
}

std::string fmt(double v, const char* format) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

void print_latency(const Outcome& a, const Outcome& b) {
  auto mean = [](const std::vector<double>& v) {
    double s = 0;
    for (double x : v) {
      s += x;
    }
    return v.empty() ? 0 : s / static_cast<double>(v.size());
  };
  print_row("latency per decision, mean (us)", fmt(mean(a.latency_ns) / 1000, "%.1f"),
            fmt(mean(b.latency_ns) / 1000, "%.1f"));
  for (const auto& [label, p] : {std::pair{"latency p50 (us)", 0.5},
                                 {"latency p99 (us)", 0.99},
                                 {"latency max (us)", 1.0}}) {
    print_row(label, fmt(percentile(a.latency_ns, p) / 1000, "%.1f"),
              fmt(percentile(b.latency_ns, p) / 1000, "%.1f"));
  }
  auto over_1ms = [](const std::vector<double>& v) {
    return std::to_string(std::count_if(v.begin(), v.end(), [](double ns) { return ns > 1e6; }));
  };
  print_row("decisions over 1 ms", over_1ms(a.latency_ns), over_1ms(b.latency_ns));
  print_row("max CPU time of a decision (us)", fmt(a.max_cpu_ns / 1000, "%.1f"),
            fmt(b.max_cpu_ns / 1000, "%.1f"));
}

void report(const Args& args, const Outcome& a, const Outcome& b) {
  std::printf("placement-sim: %zu hosts, %zu container requests, %zu tenants, seed %llu\n",
              args.hosts, args.containers, args.tenants,
              static_cast<unsigned long long>(args.seed));
  std::printf(
      "measured run: overcommit memory %.2fx, CPU %.2fx; headroom %.2f; snapshot every "
      "%zu decisions\n\n",
      args.memory_overcommit, args.cpu_overcommit, args.headroom, args.snapshot_every);
  print_row("", "limits", "measured");
  print_row("containers admitted", std::to_string(a.admitted), std::to_string(b.admitted));
  print_row("containers refused", std::to_string(a.refused), std::to_string(b.refused));
  print_row("hosts over real memory (sum of peaks)", std::to_string(a.hosts_over_memory),
            std::to_string(b.hosts_over_memory));
  print_row("hosts over real CPU (sum of peaks)", std::to_string(a.hosts_over_cpu),
            std::to_string(b.hosts_over_cpu));
  print_row("fullest host, peak memory / capacity", fmt(a.worst_memory, "%.3f"),
            fmt(b.worst_memory, "%.3f"));
  print_row("fullest host, peak CPU / capacity", fmt(a.worst_cpu, "%.3f"),
            fmt(b.worst_cpu, "%.3f"));
  print_latency(a, b);
  const double ratio =
      a.admitted == 0 ? 0 : static_cast<double>(b.admitted) / static_cast<double>(a.admitted);
  std::printf("\nadmitted on measured use / on limits: %.2fx (target >= 1.30)\n", ratio);
  if (!b.first_refusal.empty()) {
    std::printf("first refusal (measured run), as the tenant reads it:\n  %s\n",
                b.first_refusal.c_str());
    std::printf("and in the audit log (first 3 of %zu lines):\n", b.first_audit.size());
    for (std::size_t i = 0; i < std::min<std::size_t>(3, b.first_audit.size()); ++i) {
      std::printf("  %s\n", b.first_audit[i].c_str());
    }
  }
}

bool parse_args(int argc, char** argv, Args& args) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const char* value = argv[i + 1];
    if (flag == "--hosts") {
      args.hosts = std::strtoull(value, nullptr, 10);
    } else if (flag == "--containers") {
      args.containers = std::strtoull(value, nullptr, 10);
    } else if (flag == "--seed") {
      args.seed = std::strtoull(value, nullptr, 10);
    } else if (flag == "--memory-overcommit") {
      args.memory_overcommit = std::strtod(value, nullptr);
    } else if (flag == "--cpu-overcommit") {
      args.cpu_overcommit = std::strtod(value, nullptr);
    } else if (flag == "--headroom") {
      args.headroom = std::strtod(value, nullptr);
    } else if (flag == "--snapshot-every") {
      args.snapshot_every = std::max<std::size_t>(1, std::strtoull(value, nullptr, 10));
    } else {
      return false;
    }
  }
  return argc % 2 == 1 && args.hosts > 0 && args.tenants > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!parse_args(argc, argv, args)) {
    std::fprintf(stderr,
                 "usage: placement-sim [--hosts N] [--containers M] [--seed S] "
                 "[--memory-overcommit X] [--cpu-overcommit X] [--headroom F] "
                 "[--snapshot-every K]\n");
    return 2;
  }
  PlacementOptions opts;
  opts.default_demand = Amount{cpu / 2, 1 * gib};
  opts.memory_headroom = args.headroom;
  opts.cpu_headroom = args.headroom;
  std::mt19937_64 rng(args.seed);
  const auto hosts = make_hosts(args, rng);
  const auto containers = make_containers(args, opts, rng);
  const Outcome limits = run(hosts, containers, false, args, opts);
  const Outcome measured = run(hosts, containers, true, args, opts);
  report(args, limits, measured);
  return 0;
}
