#include "metering/meter.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <prometheus/text_serializer.h>
#include <sstream>
#include <tuple>

#include "policy/vocabulary.hpp"

namespace berth::metering {
namespace fs = std::filesystem;
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;
using SteadyClock = std::chrono::steady_clock;

constexpr int max_net_attempts = 3;

std::int64_t boottime_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_BOOTTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void log_line(const std::string& message) {
  std::fprintf(stderr, "berth-meter: %s\n", message.c_str());
}

/// Forwards scrapes to the meter, which must outlive the exposer.
class BillingCollectable : public prometheus::Collectable {
 public:
  explicit BillingCollectable(Meter& meter) : meter_(meter) {}
  std::vector<MetricFamily> Collect() const override { return meter_.collect_billing(); }

 private:
  Meter& meter_;
};

MetricFamily family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void add_value(MetricFamily& f, std::vector<ClientMetric::Label> labels, double value) {
  ClientMetric m;
  m.label = std::move(labels);
  if (f.type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

std::expected<std::uint64_t, std::string> positive_number(std::string_view name,
                                                          std::string_view text) {
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || ptr != text.data() + text.size() || v == 0) {
    return std::unexpected(std::string(name) + " needs a positive whole number, got '" +
                           std::string(text) + "'");
  }
  return v;
}

/// MemTotal and MemAvailable from /proc/meminfo, in bytes.
std::pair<double, double> host_memory() {
  const Fd fd = open_read("/proc/meminfo");
  std::string text;
  if (!fd || reread(fd, text) != 0) {
    return {0.0, 0.0};
  }
  const auto kib = [&text](std::string_view key) {
    const auto pos = text.find(key);
    if (pos == std::string::npos) {
      return 0.0;
    }
    std::size_t i = pos + key.size();
    while (i < text.size() && text[i] == ' ') {
      ++i;
    }
    return static_cast<double>(parse_u64(std::string_view(text).substr(i)).value_or(0)) * 1024.0;
  };
  return {kib("MemTotal:"), kib("MemAvailable:")};
}

std::string relative(std::string_view parent) {
  while (parent.starts_with('/')) {
    parent.remove_prefix(1);
  }
  while (parent.ends_with('/')) {
    parent.remove_suffix(1);
  }
  return std::string(parent);
}

}  // namespace

std::expected<MeterOptions, std::string> parse_meter_options(std::span<const std::string> args) {
  MeterOptions o;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string name = args[i];
    std::string value;
    if (const auto eq = name.find('='); name.starts_with("--") && eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (name.starts_with("--") && name != "--help") {
      if (i + 1 >= args.size()) {
        return std::unexpected(name + " needs a value");
      }
      value = args[++i];
    }
    if (name == "--help") {
      return std::unexpected(std::string());
    }
    if (name == "--listen") {
      if (value.find(':') == std::string::npos) {
        return std::unexpected("--listen needs HOST:PORT, got '" + value + "'");
      }
      o.listen = value;
    } else if (name == "--state") {
      o.state_file = value;
    } else if (name == "--persist-ms" && value == "0") {
      o.persist_interval = std::chrono::milliseconds(0);
    } else if (name == "--resolution-ms" || name == "--persist-ms" ||
               name == "--max-container-series" || name == "--owner-grace-ms" ||
               name == "--detail-every") {
      auto n = positive_number(name, value);
      if (!n) {
        return std::unexpected(n.error());
      }
      if (name == "--resolution-ms") {
        if (*n < 10 || *n > 3'600'000) {
          return std::unexpected("--resolution-ms must be between 10 and 3600000");
        }
        o.resolution = std::chrono::milliseconds(*n);
      } else if (name == "--persist-ms") {
        o.persist_interval = std::chrono::milliseconds(*n);
      } else if (name == "--owner-grace-ms") {
        o.owner_grace = std::chrono::milliseconds(*n);
      } else if (name == "--detail-every") {
        o.detail_every = *n;
      } else {
        o.max_container_series = static_cast<std::size_t>(*n);
      }
    } else if (name == "--docker-socket") {
      o.docker_socket = value;
    } else if (name == "--cgroup-root") {
      o.cgroup_root = value;
    } else if (name == "--prices") {
      o.prices_file = value;
    } else {
      return std::unexpected("unknown option '" + name + "'");
    }
  }
  return o;
}

Meter::Meter(MeterOptions options) : options_(std::move(options)) {}

Meter::~Meter() {
  stop();
  if (inotify_fd_ >= 0) {
    ::close(inotify_fd_);
  }
}

std::expected<std::unique_ptr<Meter>, std::string> Meter::create(MeterOptions options) {
  std::unique_ptr<Meter> m(new Meter(std::move(options)));
  const MeterOptions& o = m->options_;
  if (auto layout = detect_layout(o.cgroup_root)) {
    m->layout_ = std::move(*layout);
  } else if (o.docker_socket == "none") {
    return std::unexpected(layout.error() + ", and no dockerd to fall back on");
  } else {
    log_line(layout.error() + ": falling back on dockerd's stats API");
  }
  if (o.docker_socket != "none") {
    auto ep = parse_endpoint(o.docker_socket);
    if (!ep) {
      return std::unexpected("--docker-socket: " + ep.error());
    }
    m->docker_.emplace(std::move(*ep));
  }
  m->host_netns_ = own_netns_inode();
  m->boot_id_ = current_boot_id();
  if (!o.state_file.empty()) {
    auto state = load_state(o.state_file);
    if (!state) {
      return std::unexpected("state: " + state.error() +
                             " (refusing to restart every counter at 0; move the file away "
                             "to start afresh)");
    }
    if (*state) {
      m->ledger_ = std::move((*state)->ledger);
      if ((*state)->boot_id != m->boot_id_) {
        // After a reboot every cgroup is new and inode numbers repeat: keep the totals and
        // bill every counter from 0.
        m->ledger_.forget_sources();
      }
    }
  }
  if (!o.prices_file.empty()) {
    auto prices = load_prices(o.prices_file);
    if (!prices) {
      return std::unexpected(prices.error());
    }
    m->prices_ = std::move(*prices);
  }
  if (m->layout_ && !m->layout_->events.empty()) {
    m->inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  }

  auto& reg = *(m->health_ = std::make_shared<prometheus::Registry>());
  m->scan_duration_ =
      &prometheus::BuildHistogram()
           .Name("berth_meter_scan_duration_seconds")
           .Help("Time one scan took to read every tenant and container cgroup.")
           .Register(reg)
           .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                            0.025, 0.05, 0.1, 0.25, 0.5, 1.0});
  m->scans_ = &prometheus::BuildCounter()
                   .Name("berth_meter_scans_total")
                   .Help("Scans taken.")
                   .Register(reg)
                   .Add({});
  m->overruns_ = &prometheus::BuildCounter()
                      .Name("berth_meter_scan_overruns_total")
                      .Help("Ticks skipped because a scan took longer than the resolution.")
                      .Register(reg)
                      .Add({});
  m->final_reads_ = &prometheus::BuildCounter()
                         .Name("berth_meter_final_reads_total")
                         .Help("Containers read one last time as their cgroup emptied.")
                         .Register(reg)
                         .Add({});
  m->extra_samples_ = &prometheus::BuildCounter()
                           .Name("berth_meter_extra_samples_total")
                           .Help("Aggregates read between scans, as containers started or exited.")
                           .Register(reg)
                           .Add({});
  m->state_writes_ = &prometheus::BuildCounter()
                          .Name("berth_meter_state_writes_total")
                          .Help("State file writes (atomic, fsync'd).")
                          .Register(reg)
                          .Add({});
  m->errors_ = &prometheus::BuildCounter()
                    .Name("berth_meter_errors_total")
                    .Help("Errors by kind: cgroup_read, docker, state_write, stats_api.")
                    .Register(reg);
  for (const char* kind : {"cgroup_read", "docker", "state_write", "stats_api"}) {
    m->errors_->Add({{"kind", kind}});
  }
  m->containers_followed_ = &prometheus::BuildGauge()
                                 .Name("berth_meter_containers_followed")
                                 .Help("Container cgroups read in the last scan.")
                                 .Register(reg)
                                 .Add({});
  m->tenants_followed_ = &prometheus::BuildGauge()
                              .Name("berth_meter_tenants_followed")
                              .Help("Tenants with billing counters.")
                              .Register(reg)
                              .Add({});
  m->series_dropped_ = &prometheus::BuildGauge()
                            .Name("berth_meter_container_series_dropped")
                            .Help("Containers without per-container series (over the bound).")
                            .Register(reg)
                            .Add({});
  m->docker_connected_ = &prometheus::BuildGauge()
                              .Name("berth_meter_docker_events_connected")
                              .Help("1 while the dockerd event stream is followed.")
                              .Register(reg)
                              .Add({});
  m->last_scan_ = &prometheus::BuildGauge()
                       .Name("berth_meter_last_scan_timestamp_seconds")
                       .Help("Unix time of the last completed scan.")
                       .Register(reg)
                       .Add({});
  m->resolution_ = &prometheus::BuildGauge()
                        .Name("berth_meter_resolution_seconds")
                        .Help("Interval between scans.")
                        .Register(reg)
                        .Add({});
  m->resolution_->Set(static_cast<double>(m->options_.resolution.count()) / 1000.0);
  prometheus::BuildGauge()
      .Name("berth_meter_info")
      .Help("The meter's data source: cgroup v1, v2, or dockerd's stats API.")
      .Register(reg)
      .Add({{"source", !m->layout_                                    ? "stats_api"
                       : m->layout_->version == CgroupVersion::v1 ? "cgroup_v1"
                                                                   : "cgroup_v2"}})
      .Set(1);
  m->billing_ = std::make_shared<BillingCollectable>(*m);
  return m;
}

std::expected<int, std::string> Meter::start() {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(options_.listen, 2);
  } catch (const std::exception& e) {
    return std::unexpected("cannot serve /metrics on " + options_.listen + ": " + e.what());
  }
  exposer_->RegisterCollectable(billing_);
  exposer_->RegisterCollectable(health_);
  const auto ports = exposer_->GetListeningPorts();
  if (ports.empty()) {
    return std::unexpected("cannot serve /metrics on " + options_.listen);
  }
  // The first scan before "ready": a scrape right after sees every tenant.
  started_ = true;
  scan_once();
  if (!options_.state_file.empty()) {
    writer_ = std::thread([this] { run_writer(); });
  }
  scanner_ = std::thread([this] { run_scanner(); });
  if (docker_) {
    docker_thread_ = std::thread([this] { run_docker(); });
    if (!layout_) {
      stats_thread_ = std::thread([this] { run_stats_api(); });
    }
  }
  if (inotify_fd_ >= 0) {
    watcher_ = std::thread([this] { run_watcher(); });
  }
  return ports.front();
}

void Meter::stop() {
  // Only a started meter has scanned since loading its state: persisting an unstarted one
  // (a failed start, a test) could only write back what was read, or less.
  if (!started_ || stopping_.exchange(true)) {
    return;
  }
  stop_cv_.notify_all();
  for (std::thread* t : {&scanner_, &docker_thread_, &watcher_, &stats_thread_}) {
    if (t->joinable()) {
      t->join();
    }
  }
  if (writer_.joinable()) {
    {
      const std::lock_guard lock(write_mu_);
      writer_stop_ = true;
    }
    write_cv_.notify_one();
    writer_.join();
  }
  scan_once();
  exposer_.reset();
  if (!options_.state_file.empty()) {
    (void)persist();
  }
}

const std::string& Meter::tenant_of_loose(const std::string& id, std::int64_t first_seen_ns,
                                          std::int64_t now_ns, bool& known) const {
  static const std::string operator_id(operator_tenant);
  known = true;
  if (const auto it = containers_.find(id); it != containers_.end()) {
    return it->second.tenant;
  }
  if (docker_ && now_ns - first_seen_ns <
                     std::chrono::duration_cast<std::chrono::nanoseconds>(options_.owner_grace)
                         .count()) {
    known = false;
  }
  return operator_id;
}

void Meter::read_net(Source& src, Reading& reading) {
  if (!src.net && src.net_attempts < max_net_attempts && src.cgroup) {
    ++src.net_attempts;
    if (const auto pid = src.cgroup->first_pid()) {
      std::uint64_t netns = 0;
      auto net = NetReader::open(*pid, host_netns_, netns);
      if (netns == host_netns_ || netns == 0) {
        src.net_attempts = max_net_attempts;  // host network: nothing of its own to bill
      } else if (net) {
        // Containers sharing a namespace (--network container:x) would bill it twice: the
        // first one seen owns it.
        const auto [owner, inserted] = netns_owner_.try_emplace(netns, src.key);
        if (inserted || owner->second == src.key) {
          src.net = std::move(net);
          src.netns = netns;
        } else {
          src.net_attempts = max_net_attempts;
        }
      }
    }
  }
  if (src.net) {
    if (const auto rw = src.net->read()) {
      reading.has_net = true;
      reading.net_rx_bytes = rw->read;
      reading.net_tx_bytes = rw->write;
    }
  }
}

bool Meter::observe(Source& src, const std::string& tenant, Bills bills, Observation& o) {
  o.key.assign(src.key);
  o.tenant.assign(tenant);
  o.bills = bills;
  o.stale = false;
  o.generation = 0;
  o.reading = Reading{};
  const bool with_io = !src.container_id.empty();
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!src.cgroup) {
      auto opened = CgroupReader::open(*layout_, src.rel, with_io);
      if (!opened) {
        if (opened.error() != ENOENT) {
          errors_->Add({{"kind", "cgroup_read"}}).Increment();
          o.stale = true;
          return true;
        }
        return false;
      }
      src.cgroup = std::move(*opened);
    }
    // Aggregates and loose containers bill memory: every read is complete. A container under
    // an aggregate feeds only its series and I/O counters (cumulative, and read in full once
    // more as it exits), so its memory.stat, block I/O and network namespace are read every
    // Nth scan.
    const bool detail = !with_io || src.loose || src.scans % options_.detail_every == 0;
    auto reading = src.cgroup->read(detail);
    if (reading) {
      ++src.scans;
      o.generation = src.cgroup->generation();
      if (with_io && detail) {
        read_net(src, *reading);
      }
      o.reading = *reading;
      return true;
    }
    if (reading.error() != ENODEV && reading.error() != ENOENT) {
      errors_->Add({{"kind", "cgroup_read"}}).Increment();
      o.generation = src.cgroup->generation();
      o.stale = true;
      return true;
    }
    // The cgroup we held was removed; a new one may stand at the same path (a restart).
    src.cgroup.reset();
    src.net.reset();
    src.net_attempts = 0;
    if (src.netns != 0) {
      netns_owner_.erase(src.netns);
      src.netns = 0;
    }
  }
  return false;
}

void Meter::drop_source(const std::string& key) {
  const auto it = sources_.find(key);
  if (it == sources_.end()) {
    return;
  }
  Source& src = it->second;
  for (const int wd : {src.watch, src.dir_watch}) {
    if (wd >= 0) {
      ::inotify_rm_watch(inotify_fd_, wd);
      watches_.erase(wd);
    }
  }
  if (src.netns != 0) {
    if (const auto owner = netns_owner_.find(src.netns);
        owner != netns_owner_.end() && owner->second == key) {
      netns_owner_.erase(owner);
    }
  }
  if (!src.container_id.empty()) {
    series_.erase(src.container_id);
    series_slots_.erase(src.container_id);
  }
  sources_.erase(it);
}

void Meter::scan_once() {
  scan_at(boottime_ns(), unix_ms_now());
  if (!options_.state_file.empty() &&
      SteadyClock::now() - last_persist_ >= options_.persist_interval) {
    // The writer thread does the fsync, so a slow disk never delays the next scan.
    if (writer_.joinable()) {
      persist_async();
    } else {
      (void)persist();
    }
  }
}

void Meter::scan_at(std::int64_t now_ns, std::int64_t now_unix_ms) {
  const auto started = SteadyClock::now();
  if (!layout_) {
    scan_stats_api(now_ns, now_unix_ms);
  } else {
    std::set<std::string> parents;
    {
      const std::lock_guard lock(mu_);
      for (const auto& [id, info] : containers_) {
        if (!info.cgroup_parent.empty()) {
          parents.insert(relative(info.cgroup_parent));
        }
      }
    }
    const std::vector<std::string> extra(parents.begin(), parents.end());
    const TreeScan tree = scan_tree(*layout_, extra);

    const std::lock_guard lock(mu_);
    ensure_root_watches_locked();
    const std::uint64_t scan = ++scan_count_;
    // Reused across scans: their strings keep their capacity, so a scan allocates nothing per
    // container once every container has been seen.
    std::size_t n_obs = 0;
    const auto next_observation = [this, &n_obs]() -> Observation& {
      if (n_obs == observations_.size()) {
        observations_.emplace_back();
      }
      return observations_[n_obs++];
    };
    std::string& key = key_buf_;
    for (const TenantCgroup& t : tree.tenants) {
      key.assign("t/").append(t.tenant);
      auto it = sources_.find(key);
      if (it == sources_.end()) {
        it = sources_.emplace(key, Source{}).first;
        it->second.key = key;
        it->second.rel = t.rel;
        it->second.first_seen_ns = now_ns;
      }
      Source& src = it->second;
      watch_tenant_dir_locked(src, t.tenant);
      Observation& o = next_observation();
      if (!observe(src, t.tenant, Bills{true, false}, o)) {
        --n_obs;
        continue;
      }
      src.seen_scan = scan;
    }
    for (const ContainerCgroup& c : tree.containers) {
      key.assign("c/").append(c.id);
      auto it = sources_.find(key);
      if (it == sources_.end()) {
        it = sources_.emplace(key, Source{}).first;
        Source& src = it->second;
        src.key = key;
        src.rel = c.rel;
        src.container_id = c.id;
        src.parent_tenant = c.parent_tenant;
        src.loose = c.parent_tenant.empty();
        src.first_seen_ns = now_ns;
        watch_populated_locked(src);
      }
      Source& src = it->second;
      bool known = true;
      const std::string& tenant =
          src.loose ? tenant_of_loose(c.id, src.first_seen_ns, now_ns, known) : c.parent_tenant;
      Observation& o = next_observation();
      if (!observe(src, tenant, src.loose ? Bills{true, true} : Bills{false, true}, o)) {
        --n_obs;
        continue;
      }
      src.seen_scan = scan;
      auto [s, inserted] = series_.try_emplace(c.id);
      if (inserted || s->second.tenant != tenant) {
        s->second.tenant = tenant;
      }
      const auto info = containers_.find(c.id);
      if (s->second.name.empty() || inserted) {
        s->second.name = info != containers_.end() && !info->second.name.empty()
                             ? info->second.name
                             : c.id.substr(0, 12);
      }
      if (info != containers_.end()) {
        s->second.id = info->second.known_id();  // once its labels are read
      } else if (s->second.id.empty()) {
        s->second.id = c.id.substr(0, 12);
      }
      Reading& shown = s->second.reading;
      const Reading before = shown;
      shown = o.reading;
      // Not re-read this scan: the series keep their last values.
      if (!shown.has_net && before.has_net) {
        shown.has_net = true;
        shown.net_rx_bytes = before.net_rx_bytes;
        shown.net_tx_bytes = before.net_tx_bytes;
      }
      if (!shown.has_blk && before.has_blk) {
        shown.has_blk = true;
        shown.blk_read_bytes = before.blk_read_bytes;
        shown.blk_write_bytes = before.blk_write_bytes;
      }
      if (!known) {
        --n_obs;  // held back until dockerd names the owner
      }
    }
    ledger_.apply_scan(now_ns, now_unix_ms,
                       std::span<const Observation>(observations_.data(), n_obs));
    std::vector<std::string> vanished;
    for (const auto& [k, src] : sources_) {
      if (src.seen_scan < scan) {
        vanished.push_back(k);
      }
    }
    for (const std::string& k : vanished) {
      drop_source(k);
    }
    containers_followed_->Set(static_cast<double>(tree.containers.size()));
  }
  const std::lock_guard lock(mu_);
  // Per-container series: first come, first kept, up to the bound; the rest are counted.
  for (const auto& [id, s] : series_) {
    if (series_slots_.size() >= options_.max_container_series) {
      break;
    }
    series_slots_.insert(id);
  }
  series_dropped_->Set(static_cast<double>(series_.size() - series_slots_.size()));
  tenants_followed_->Set(static_cast<double>(ledger_.tenants().size()));
  last_scan_->Set(static_cast<double>(now_unix_ms) / 1000.0);
  scans_->Increment();
  scan_duration_->Observe(std::chrono::duration<double>(SteadyClock::now() - started).count());
}

void Meter::scan_stats_api(std::int64_t now_ns, std::int64_t now_unix_ms) {
  if (!docker_) {
    return;
  }
  // Only what run_stats_api() has already received: asking dockerd here would make every scan
  // wait about a second per running container (see docker.hpp), and a container that started
  // after a scan began would wait for the whole next one.
  std::vector<Observation> observations;
  std::map<std::string, ContainerSeries> series;
  std::size_t read = 0;
  const std::lock_guard lock(mu_);
  for (const auto& [id, info] : containers_) {
    if (!info.running) {
      continue;
    }
    Observation o;
    o.key = "c/" + id;
    // A restart is a new cgroup, counting from 0 again.
    o.generation = std::hash<std::string>{}(id + "@" + info.started_at);
    o.tenant = info.tenant;
    o.bills = Bills{true, true};
    const auto frame = stats_latest_.find(id);
    if (frame == stats_latest_.end() || frame->second.started_at != info.started_at) {
      // No frame of this run yet (its stream is opening or reconnecting): a source the ledger
      // already follows stays open and bills nothing, instead of being closed now and billed
      // its whole counter again at the next frame.
      o.stale = true;
      if (const auto s = series_.find(id); s != series_.end()) {
        series.insert(*s);
      }
    } else {
      o.reading = frame->second.reading;
      series[id] = ContainerSeries{info.tenant, info.name, info.known_id(), o.reading};
      ++read;
    }
    observations.push_back(std::move(o));
  }
  ledger_.apply_scan(now_ns, now_unix_ms, observations);
  series_ = std::move(series);
  std::erase_if(series_slots_, [this](const std::string& id) { return !series_.contains(id); });
  containers_followed_->Set(static_cast<double>(read));
}

void Meter::run_stats_api() {
  struct Followed {
    std::string started_at;
    HttpLineStream stream;
  };

  std::map<std::string, Followed> streams;  // by container id
  std::map<std::string, SteadyClock::time_point> retry_at;
  std::vector<pollfd> polled;
  std::vector<std::string> polled_ids;
  while (!stopping_) {
    std::map<std::string, std::string> wanted;  // id -> StartedAt of the run to follow
    {
      const std::lock_guard lock(mu_);
      for (const auto& [id, info] : containers_) {
        if (info.running && !info.started_at.empty()) {
          wanted.emplace(id, info.started_at);
        }
      }
      std::erase_if(stats_latest_, [&wanted](const auto& entry) {
        const auto w = wanted.find(entry.first);
        return w == wanted.end() || w->second != entry.second.started_at;
      });
    }
    std::erase_if(streams, [&wanted](const auto& entry) {
      const auto w = wanted.find(entry.first);
      return w == wanted.end() || w->second != entry.second.started_at;
    });
    std::erase_if(retry_at, [&wanted](const auto& entry) { return !wanted.contains(entry.first); });
    for (const auto& [id, started_at] : wanted) {
      if (const auto r = retry_at.find(id);
          streams.contains(id) || (r != retry_at.end() && SteadyClock::now() < r->second)) {
        continue;
      }
      auto stream = docker_->stats_stream(id);
      if (!stream) {
        errors_->Add({{"kind", "stats_api"}}).Increment();
        retry_at[id] = SteadyClock::now() + std::chrono::seconds(1);
        continue;
      }
      streams.emplace(id, Followed{started_at, std::move(*stream)});
    }

    polled.clear();
    polled_ids.clear();
    for (const auto& [id, followed] : streams) {
      polled.push_back(pollfd{followed.stream.fd(), POLLIN, 0});
      polled_ids.push_back(id);
    }
    if (polled.empty()) {
      std::unique_lock lk(stop_mu_);
      stop_cv_.wait_for(lk, std::chrono::milliseconds(200), [this] { return stopping_.load(); });
      continue;
    }
    // 200 ms: new containers get their stream, and stop() is answered, within that.
    if (::poll(polled.data(), polled.size(), 200) <= 0) {
      continue;
    }
    for (std::size_t i = 0; i < polled.size(); ++i) {
      if (polled[i].revents == 0) {
        continue;
      }
      Followed& followed = streams.at(polled_ids[i]);
      std::optional<Reading> newest;
      bool ended = false;
      for (;;) {
        auto line = followed.stream.next_line(std::chrono::milliseconds(0));
        if (!line) {
          ended = true;  // dockerd ends it when the container is removed
          break;
        }
        if (!*line) {
          break;
        }
        if (auto reading = reading_from_stats(**line)) {
          newest = *reading;
        }
      }
      if (newest) {
        const std::lock_guard lock(mu_);
        stats_latest_[polled_ids[i]] = StatsFrame{followed.started_at, *newest};
      }
      if (ended) {
        streams.erase(polled_ids[i]);
        retry_at[polled_ids[i]] = SteadyClock::now() + std::chrono::seconds(1);
      }
    }
  }
}

void Meter::watch_populated_locked(Source& src) {
  if (inotify_fd_ < 0 || src.watch >= 0 || layout_->events.empty()) {
    return;
  }
  const fs::path events = layout_->events / src.rel / "cgroup.events";
  src.watch = ::inotify_add_watch(inotify_fd_, events.c_str(), IN_MODIFY);
  if (src.watch >= 0) {
    watches_[src.watch] = Watch{Watch::Kind::populated, src.key};
  }
}

void Meter::watch_tenant_dir_locked(Source& src, const std::string& tenant) {
  if (inotify_fd_ < 0 || src.dir_watch >= 0) {
    return;
  }
  const fs::path dir = layout_->memory / src.rel;
  src.dir_watch = ::inotify_add_watch(inotify_fd_, dir.c_str(), IN_CREATE | IN_ONLYDIR);
  if (src.dir_watch >= 0) {
    watches_[src.dir_watch] = Watch{Watch::Kind::tenant_dir, tenant};
  }
}

void Meter::ensure_root_watches_locked() {
  if (inotify_fd_ < 0) {
    return;
  }
  for (auto [wd, kind, name] : {std::tuple{&tenants_root_watch_, Watch::Kind::tenants_root, "berth"},
                                std::tuple{&loose_root_watch_, Watch::Kind::loose_root, "docker"}}) {
    if (*wd >= 0) {
      continue;
    }
    const fs::path dir = layout_->memory / name;
    *wd = ::inotify_add_watch(inotify_fd_, dir.c_str(), IN_CREATE | IN_ONLYDIR);
    if (*wd >= 0) {
      watches_[*wd] = Watch{kind, name};
    }
  }
}

Meter::Source& Meter::follow_container_locked(const std::string& id, const std::string& rel,
                                              const std::string& parent_tenant) {
  const std::string key = "c/" + id;
  auto [it, inserted] = sources_.try_emplace(key);
  Source& src = it->second;
  if (inserted) {
    src.key = key;
    src.rel = rel;
    src.container_id = id;
    src.parent_tenant = parent_tenant;
    src.loose = parent_tenant.empty();
    src.first_seen_ns = boottime_ns();
    // Kept through the next scan even if that scan listed the tree before this container.
    src.seen_scan = scan_count_ + 1;
    if (auto opened = CgroupReader::open(*layout_, rel, true)) {
      src.cgroup = std::move(*opened);
    }
  }
  watch_populated_locked(src);
  return src;
}

void Meter::sample_tenant_locked(const std::string& tenant, Ledger::Between between) {
  const auto it = sources_.find("t/" + tenant);
  if (it == sources_.end()) {
    return;
  }
  Source& src = it->second;
  Observation o;
  if (!observe(src, tenant, Bills{true, false}, o) || o.stale) {
    return;
  }
  if (ledger_.apply_sample(boottime_ns(), unix_ms_now(), o, between)) {
    extra_samples_->Increment();
  }
}

void Meter::schedule_samples_locked(const std::string& tenant,
                                    std::initializer_list<int> after_ms) {
  const auto now = SteadyClock::now();
  for (const int ms : after_ms) {
    const auto at = now + std::chrono::milliseconds(ms);
    // Many containers starting together need one sample, not one each.
    bool near = false;
    for (auto it = pending_samples_.lower_bound(at - std::chrono::milliseconds(10));
         it != pending_samples_.end() && it->first <= at + std::chrono::milliseconds(10); ++it) {
      near = near || it->second == tenant;
    }
    if (!near) {
      pending_samples_.emplace(at, tenant);
    }
  }
}

void Meter::on_populated_change(const std::string& key) {
  const std::lock_guard lock(mu_);
  const auto it = sources_.find(key);
  if (it == sources_.end() || !layout_) {
    return;
  }
  Source& src = it->second;
  if (!src.cgroup) {
    auto opened = CgroupReader::open(*layout_, src.rel, true);
    if (!opened) {
      return;
    }
    src.cgroup = std::move(*opened);
  }
  const Fd fd = open_read(layout_->events / src.rel / "cgroup.events");
  std::string text;
  if (!fd || reread(fd, text) != 0 || parse_populated(text) != false) {
    return;
  }
  auto reading = src.cgroup->read();
  if (!reading) {
    return;  // already removed: the aggregate still has it, a loose container loses its tail
  }
  read_net(src, *reading);
  const std::int64_t now_ns = boottime_ns();
  bool known = true;
  const std::string tenant = src.loose
                                 ? tenant_of_loose(src.container_id, src.first_seen_ns, now_ns, known)
                                 : src.parent_tenant;
  Observation o;
  o.key = src.key;
  o.generation = src.cgroup->generation();
  o.tenant = tenant;
  o.bills = src.loose ? Bills{true, true} : Bills{false, true};
  o.reading = *reading;
  if (ledger_.apply_final(now_ns, unix_ms_now(), o)) {
    final_reads_->Increment();
  }
  if (auto s = series_.find(src.container_id); s != series_.end()) {
    s->second.reading = *reading;
  }
  if (!src.loose) {
    // The container's memory left the aggregate just now: integrate the step here, and follow
    // memory the kernel releases a little later.
    sample_tenant_locked(src.parent_tenant, Ledger::Between::hold);
    schedule_samples_locked(src.parent_tenant, {25, 100, 250});
  }
}

void Meter::on_created(const Watch& watch, std::string_view name) {
  const std::lock_guard lock(mu_);
  switch (watch.kind) {
    case Watch::Kind::tenants_root: {
      // A tenant's first container: its aggregate is created just before the container's own
      // cgroup. Start the aggregate now, from zero, and sample it through the container's start.
      const std::string tenant(name);
      if (!vocabulary::is_valid_tenant_id(tenant) || sources_.contains("t/" + tenant)) {
        return;
      }
      Source& src = sources_["t/" + tenant];
      src.key = "t/" + tenant;
      src.rel = "berth/" + tenant;
      src.first_seen_ns = boottime_ns();
      src.seen_scan = scan_count_ + 1;
      watch_tenant_dir_locked(src, tenant);
      sample_tenant_locked(tenant, Ledger::Between::interpolate);
      schedule_samples_locked(tenant, {25, 50, 100, 150, 200, 300, 400, 500, 750, 1000});
      return;
    }
    case Watch::Kind::tenant_dir: {
      const auto id = container_from_dir(name);
      const auto tenant_src = sources_.find("t/" + watch.name);
      if (!id || tenant_src == sources_.end()) {
        return;
      }
      const std::string rel = tenant_src->second.rel + "/" + std::string(name);
      (void)follow_container_locked(*id, rel, watch.name);
      // Its process has not run yet: this sample is the level before it; the next ones follow
      // its memory as it starts (a write to /dev/shm takes a few tens of milliseconds).
      sample_tenant_locked(watch.name, Ledger::Between::interpolate);
      schedule_samples_locked(watch.name, {25, 50, 100, 150, 200, 300, 400, 500, 750, 1000});
      return;
    }
    case Watch::Kind::loose_root:
      if (const auto id = container_from_dir(name)) {
        (void)follow_container_locked(*id, "docker/" + std::string(name), "");
      }
      return;
    case Watch::Kind::populated:
      return;
  }
}

void Meter::run_watcher() {
  alignas(inotify_event) char buf[16384];
  while (!stopping_) {
    int timeout_ms = 200;
    {
      const std::lock_guard lock(mu_);
      if (!pending_samples_.empty()) {
        const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
            pending_samples_.begin()->first - SteadyClock::now());
        timeout_ms = static_cast<int>(std::clamp<std::int64_t>(wait.count(), 0, 200));
      }
    }
    pollfd p{inotify_fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) > 0) {
      const ssize_t n = ::read(inotify_fd_, buf, sizeof buf);
      for (ssize_t off = 0; n > 0 && off < n;) {
        inotify_event ev{};
        std::memcpy(&ev, buf + off, sizeof ev);
        const std::string_view name =
            ev.len > 0 ? std::string_view(buf + off + sizeof(inotify_event)).substr(0, ev.len)
                       : std::string_view();
        off += static_cast<ssize_t>(sizeof(inotify_event) + ev.len);
        std::optional<Watch> watch;
        {
          const std::lock_guard lock(mu_);
          const auto w = watches_.find(ev.wd);
          if (w == watches_.end()) {
            continue;
          }
          if ((ev.mask & IN_IGNORED) != 0) {
            forget_watch_locked(ev.wd);
            continue;
          }
          watch = w->second;
        }
        if (watch->kind == Watch::Kind::populated && (ev.mask & IN_MODIFY) != 0) {
          on_populated_change(watch->name);
        } else if ((ev.mask & IN_CREATE) != 0 && !name.empty()) {
          on_created(*watch, std::string(name.data()));
        }
      }
    }
    const std::lock_guard lock(mu_);
    const auto now = SteadyClock::now();
    while (!pending_samples_.empty() && pending_samples_.begin()->first <= now) {
      const std::string tenant = pending_samples_.begin()->second;
      pending_samples_.erase(pending_samples_.begin());
      sample_tenant_locked(tenant, Ledger::Between::interpolate);
    }
  }
}

void Meter::forget_watch_locked(int wd) {
  const auto w = watches_.find(wd);
  if (w == watches_.end()) {
    return;
  }
  switch (w->second.kind) {
    case Watch::Kind::populated:
      if (auto s = sources_.find(w->second.name); s != sources_.end() && s->second.watch == wd) {
        s->second.watch = -1;
      }
      break;
    case Watch::Kind::tenant_dir:
      if (auto s = sources_.find("t/" + w->second.name);
          s != sources_.end() && s->second.dir_watch == wd) {
        s->second.dir_watch = -1;
      }
      break;
    case Watch::Kind::tenants_root:
      tenants_root_watch_ = -1;
      break;
    case Watch::Kind::loose_root:
      loose_root_watch_ = -1;
      break;
  }
  watches_.erase(w);
}

void Meter::learn(const ContainerInfo& info) {
  const std::lock_guard lock(mu_);
  ContainerInfo& cur = containers_[info.id];
  const bool keep_inspected = cur.inspected && !info.inspected;
  const std::string parent = cur.cgroup_parent;
  const std::string started = cur.started_at;
  cur = info;
  if (keep_inspected) {
    cur.cgroup_parent = parent;
    cur.started_at = started;
    cur.inspected = true;
  }
}

void Meter::follow_new_container(const ContainerInfo& info) {
  if (!layout_ || inotify_fd_ < 0 || info.id.size() != 64) {
    return;
  }
  // Where dockerd put it (cgroupfs driver): under its parent, or dockerd's default "docker".
  const std::string parent = info.cgroup_parent.empty() ? "docker" : relative(info.cgroup_parent);
  const std::string rel = parent + "/" + info.id;
  std::error_code ec;
  if (!fs::is_directory(layout_->cpu / rel, ec)) {
    return;  // gone already, or the systemd driver: the next scan finds it
  }
  std::string tenant;
  if (parent.starts_with("berth/") && parent.find('/', 6) == std::string::npos) {
    tenant = parent.substr(6);
  }
  const std::lock_guard lock(mu_);
  (void)follow_container_locked(info.id, rel, tenant);
}

void Meter::on_event(const ContainerEvent& ev) {
  const std::lock_guard lock(mu_);
  if (ev.action == "destroy") {
    containers_.erase(ev.id);
    return;
  }
  ContainerInfo& info = containers_[ev.id];
  info.id = ev.id;
  if (!ev.name.empty()) {
    info.name = ev.name;
  }
  info.tenant = tenant_for_label(ev.tenant_label);
  if (!ev.shown_id.empty()) {
    info.shown_id = ev.shown_id;
  }
  if (ev.action == "start") {
    // A new run, with counters from 0: until the inspect that follows tells its StartedAt, the
    // stats fallback must not take frames of this run for the previous one's.
    info.started_at.clear();
  }
  if (ev.action == "start" || ev.action == "restart") {
    info.running = true;
  } else if (ev.action == "die") {
    info.running = false;
  }
  if (auto s = series_.find(ev.id); s != series_.end() && !ev.name.empty()) {
    s->second.name = ev.name;
  }
}

void Meter::run_docker() {
  bool was_connected = true;
  while (!stopping_) {
    const std::int64_t listed_at = unix_ms_now() / 1000;
    auto list = docker_->list();
    auto stream = list ? docker_->events(listed_at - 1)
                       : std::expected<HttpLineStream, std::string>(std::unexpect, list.error());
    if (!stream) {
      errors_->Add({{"kind", "docker"}}).Increment();
      docker_connected_->Set(0);
      if (was_connected) {
        log_line("dockerd: " + stream.error() + " (retrying every second)");
        was_connected = false;
      }
      std::unique_lock lk(stop_mu_);
      stop_cv_.wait_for(lk, std::chrono::seconds(1), [this] { return stopping_.load(); });
      continue;
    }
    for (const ContainerInfo& info : *list) {
      learn(info);
      if (info.running) {
        if (auto full = docker_->inspect(info.id)) {
          learn(*full);
        }
      }
    }
    docker_connected_->Set(1);
    was_connected = true;
    while (!stopping_) {
      auto line = stream->next_line(std::chrono::milliseconds(200));
      if (!line) {
        errors_->Add({{"kind", "docker"}}).Increment();
        log_line("dockerd event stream: " + line.error() + " (reconnecting)");
        break;
      }
      if (!*line) {
        continue;
      }
      const auto ev = parse_event(**line);
      if (!ev) {
        continue;
      }
      on_event(*ev);
      if (ev->action == "start") {
        if (auto full = docker_->inspect(ev->id)) {
          learn(*full);
          follow_new_container(*full);
        }
      }
    }
    docker_connected_->Set(0);
  }
}

void Meter::run_scanner() {
  auto next = SteadyClock::now();
  while (!stopping_) {
    next += options_.resolution;
    {
      std::unique_lock lk(stop_mu_);
      if (stop_cv_.wait_until(lk, next, [this] { return stopping_.load(); })) {
        break;
      }
    }
    scan_once();
    if (const auto now = SteadyClock::now(); now > next + options_.resolution) {
      overruns_->Increment();
      next = now;
    }
  }
}

void Meter::persist_async() {
  std::string text;
  {
    const std::lock_guard lock(mu_);
    text = encode_state(MeterState{boot_id_, unix_ms_now(), ledger_});
  }
  last_persist_ = SteadyClock::now();
  {
    const std::lock_guard lock(write_mu_);
    pending_write_ = std::move(text);  // a newer state supersedes one not yet written
  }
  write_cv_.notify_one();
}

void Meter::run_writer() {
  for (;;) {
    std::string text;
    {
      std::unique_lock lk(write_mu_);
      write_cv_.wait(lk, [this] { return pending_write_.has_value() || writer_stop_; });
      if (!pending_write_) {
        return;  // stopping, and everything asked for is written
      }
      text = std::move(*pending_write_);
      pending_write_.reset();
    }
    (void)write_state(text);
  }
}

bool Meter::persist() {
  std::string text;
  {
    const std::lock_guard lock(mu_);
    text = encode_state(MeterState{boot_id_, unix_ms_now(), ledger_});
  }
  last_persist_ = SteadyClock::now();
  return write_state(text);
}

bool Meter::write_state(const std::string& text) {
  if (auto written = write_file_atomically(options_.state_file, text); !written) {
    errors_->Add({{"kind", "state_write"}}).Increment();
    if (!persist_failing_) {
      log_line("state: " + written.error() + " (retrying every write; counted in "
               "berth_meter_errors_total{kind=\"state_write\"})");
      persist_failing_ = true;
    }
    return false;
  }
  if (persist_failing_) {
    log_line("state: written again");
    persist_failing_ = false;
  }
  state_writes_->Increment();
  return true;
}

std::expected<void, std::string> Meter::reload_prices() {
  if (options_.prices_file.empty()) {
    return {};
  }
  auto prices = load_prices(options_.prices_file);
  if (!prices) {
    return std::unexpected(prices.error());
  }
  const std::lock_guard lock(mu_);
  prices_ = std::move(*prices);
  return {};
}

Ledger Meter::ledger_snapshot() const {
  const std::lock_guard lock(mu_);
  return ledger_;
}

std::vector<MetricFamily> Meter::collect_billing() {
  const std::lock_guard lock(mu_);
  auto cpu = family("berth_tenant_cpu_seconds_total",
                    "CPU time used by the tenant's containers, from the kernel's accounting.",
                    MetricType::Counter);
  auto mem = family("berth_tenant_memory_byte_seconds_total",
                    "Working-set memory (usage minus inactive file pages) integrated over time.",
                    MetricType::Counter);
  auto rx = family("berth_tenant_network_receive_bytes_total",
                   "Bytes received by the tenant's containers.", MetricType::Counter);
  auto tx = family("berth_tenant_network_transmit_bytes_total",
                   "Bytes sent by the tenant's containers.", MetricType::Counter);
  auto br = family("berth_tenant_block_read_bytes_total",
                   "Bytes read from block devices by the tenant's containers.",
                   MetricType::Counter);
  auto bw = family("berth_tenant_block_write_bytes_total",
                   "Bytes written to block devices by the tenant's containers.",
                   MetricType::Counter);
  auto ws = family("berth_tenant_memory_working_set_bytes",
                   "The tenant's working-set memory at the last scan.", MetricType::Gauge);
  auto running = family("berth_tenant_running_containers",
                        "The tenant's containers with a live cgroup at the last scan.",
                        MetricType::Gauge);
  auto first = family("berth_tenant_first_seen_timestamp_seconds",
                      "When the tenant's counters started at 0.", MetricType::Gauge);
  for (const auto& [id, stored] : ledger_.tenants()) {
    const TenantUsage u = ledger_.exported_usage(stored);
    const std::vector<ClientMetric::Label> l{{"tenant", id}};
    add_value(cpu, l, static_cast<double>(u.cpu_ns) / 1e9);
    add_value(mem, l, u.memory_byte_seconds);
    add_value(rx, l, static_cast<double>(u.net_rx_bytes));
    add_value(tx, l, static_cast<double>(u.net_tx_bytes));
    add_value(br, l, static_cast<double>(u.blk_read_bytes));
    add_value(bw, l, static_cast<double>(u.blk_write_bytes));
    add_value(ws, l, static_cast<double>(u.working_set_bytes));
    add_value(running, l, static_cast<double>(u.running_containers));
    add_value(first, l, static_cast<double>(u.first_seen_unix_ms) / 1000.0);
  }
  ledger_.mark_exported();

  auto c_cpu = family("berth_container_cpu_seconds_total",
                      "CPU time of one container since its cgroup was created.",
                      MetricType::Counter);
  auto c_ws = family("berth_container_memory_working_set_bytes",
                     "One container's working-set memory at the last scan.", MetricType::Gauge);
  auto c_rx = family("berth_container_network_receive_bytes_total",
                     "Bytes received in one container's network namespace.", MetricType::Counter);
  auto c_tx = family("berth_container_network_transmit_bytes_total",
                     "Bytes sent from one container's network namespace.", MetricType::Counter);
  auto c_br = family("berth_container_block_read_bytes_total",
                     "Bytes one container read from block devices.", MetricType::Counter);
  auto c_bw = family("berth_container_block_write_bytes_total",
                     "Bytes one container wrote to block devices.", MetricType::Counter);
  for (const std::string& id : series_slots_) {
    const auto s = series_.find(id);
    if (s == series_.end()) {
      continue;
    }
    const std::vector<ClientMetric::Label> l{
        {"container", s->second.name}, {"id", s->second.id}, {"tenant", s->second.tenant}};
    const Reading& r = s->second.reading;
    add_value(c_cpu, l, static_cast<double>(r.cpu_ns) / 1e9);
    add_value(c_ws, l, static_cast<double>(r.working_set_bytes));
    if (r.has_net) {
      add_value(c_rx, l, static_cast<double>(r.net_rx_bytes));
      add_value(c_tx, l, static_cast<double>(r.net_tx_bytes));
    }
    if (r.has_blk) {
      add_value(c_br, l, static_cast<double>(r.blk_read_bytes));
      add_value(c_bw, l, static_cast<double>(r.blk_write_bytes));
    }
  }
  std::vector<MetricFamily> out;
  for (MetricFamily* f : {&cpu, &mem, &rx, &tx, &br, &bw, &ws, &running, &first, &c_cpu, &c_ws,
                          &c_rx, &c_tx, &c_br, &c_bw}) {
    out.push_back(std::move(*f));
  }
  // Host capacity, for the capacity dashboard: what the tenants' usage is measured against.
  auto cpus = family("berth_host_cpus", "CPUs online on this host.", MetricType::Gauge);
  auto mem_total = family("berth_host_memory_bytes", "Memory installed on this host (MemTotal).",
                          MetricType::Gauge);
  auto mem_avail = family("berth_host_memory_available_bytes",
                          "Memory available for new work on this host (MemAvailable).",
                          MetricType::Gauge);
  const auto [total_bytes, available_bytes] = host_memory();
  add_value(cpus, {}, static_cast<double>(::sysconf(_SC_NPROCESSORS_ONLN)));
  add_value(mem_total, {}, total_bytes);
  add_value(mem_avail, {}, available_bytes);
  out.push_back(std::move(cpus));
  out.push_back(std::move(mem_total));
  out.push_back(std::move(mem_avail));
  if (prices_) {
    const std::vector<ClientMetric::Label> l{{"currency", prices_->currency}};
    auto p_cpu = family("berth_price_per_cpu_hour", "Price of one CPU-hour (prices file).",
                        MetricType::Gauge);
    auto p_mem = family("berth_price_per_gib_hour",
                        "Price of one GiB-hour of working-set memory (prices file).",
                        MetricType::Gauge);
    auto p_alert = family("berth_price_daily_spend_alert",
                          "Daily spend per tenant above which BerthTenantSpendHigh fires.",
                          MetricType::Gauge);
    add_value(p_cpu, l, prices_->per_cpu_hour);
    add_value(p_mem, l, prices_->per_gib_hour);
    add_value(p_alert, l, prices_->daily_spend_alert);
    out.push_back(std::move(p_cpu));
    out.push_back(std::move(p_mem));
    out.push_back(std::move(p_alert));
  }
  return out;
}

std::string Meter::metrics_text() {
  auto families = collect_billing();
  auto health = health_->Collect();
  families.insert(families.end(), std::make_move_iterator(health.begin()),
                  std::make_move_iterator(health.end()));
  return prometheus::TextSerializer().Serialize(families);
}

int meter_main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  // Every followed container keeps four or five kernel files open (re-read with pread): 500
  // containers need more than the usual soft limit of 1024 descriptors.
  if (rlimit limit{}; ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &limit);
  }
  // Every thread inherits this mask, so only sigwait below sees these signals.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const std::vector<std::string> args(argv + 1, argv + argc);
  auto options = parse_meter_options(args);
  if (!options) {
    if (!options.error().empty()) {
      std::cerr << "berth-meter: " << options.error() << "\n";
    }
    std::cerr << meter_usage_text;
    return options.error().empty() ? 0 : 2;
  }
  auto meter = Meter::create(std::move(*options));
  if (!meter) {
    std::cerr << "berth-meter: " << meter.error() << "\n";
    return 1;
  }
  const auto port = (*meter)->start();
  if (!port) {
    std::cerr << "berth-meter: " << port.error() << "\n";
    return 1;
  }
  std::printf("berth-meter: ready on port %d\n", *port);
  std::fflush(stdout);
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) {
      continue;
    }
    if (sig == SIGHUP) {
      if (auto reloaded = (*meter)->reload_prices(); !reloaded) {
        log_line("prices not reloaded: " + reloaded.error());
      } else {
        log_line("prices reloaded");
      }
      continue;
    }
    break;
  }
  (*meter)->stop();
  return 0;
}

}  // namespace berth::metering
