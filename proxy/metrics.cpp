#include "proxy/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <exception>
#include <unordered_map>

namespace berth::proxy {

namespace {

const prometheus::Histogram::BucketBoundaries& latency_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
      0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30,    60};
  return b;
}

}  // namespace

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& reg = *registry_;
  requests_ = &prometheus::BuildCounter()
                   .Name("berth_proxy_requests_total")
                   .Help("Docker API requests by tenant, endpoint access class and decision")
                   .Register(reg);
  durations_ = &prometheus::BuildHistogram()
                    .Name("berth_proxy_request_duration_seconds")
                    .Help("Time from a request's first byte to the end of its answer, for "
                          "requests that are not streams")
                    .Register(reg);
  connections_ = &prometheus::BuildGauge()
                      .Name("berth_proxy_connections")
                      .Help("Open client connections")
                      .Register(reg)
                      .Add({});
  host_up_ = &prometheus::BuildGauge()
                  .Name("berth_proxy_fleet_host_up")
                  .Help("1 while berth follows the fleet host's dockerd, 0 while it is down")
                  .Register(reg);
  meter_age_ = &prometheus::BuildGauge()
                    .Name("berth_proxy_fleet_meter_age_seconds")
                    .Help("Seconds since the fleet host's berth-meter last answered; -1: never")
                    .Register(reg);
  streams_ = &prometheus::BuildGauge()
                  .Name("berth_proxy_streams")
                  .Help("Open hijacked (attach, exec) and endless (logs -f, events) streams")
                  .Register(reg)
                  .Add({});
  auto& reloads = prometheus::BuildCounter()
                      .Name("berth_proxy_policy_reloads_total")
                      .Help("Policy reloads by result")
                      .Register(reg);
  reloads_applied_ = &reloads.Add({{"result", "applied"}});
  reloads_refused_ = &reloads.Add({{"result", "refused"}});
  handshake_failures_ = &prometheus::BuildCounter()
                             .Name("berth_proxy_handshake_failures_total")
                             .Help("TLS handshakes that failed or were refused")
                             .Register(reg)
                             .Add({});
  auto& refused = prometheus::BuildCounter()
                      .Name("berth_proxy_connections_refused_total")
                      .Help("Connections closed at once because their source address or client "
                            "certificate already held its limit")
                      .Register(reg);
  refused_[0] = &refused.Add({{"reason", "per_address"}});
  refused_[1] = &refused.Add({{"reason", "handshakes_per_address"}});
  refused_[2] = &refused.Add({{"reason", "per_certificate"}});
  auto& timeouts = prometheus::BuildCounter()
                       .Name("berth_proxy_client_timeouts_total")
                       .Help("Client connections closed at a deadline, by the phase they were in")
                       .Register(reg);
  std::size_t i = 0;
  for (const char* phase :
       {"handshake", "header", "idle", "body", "write", "linger", "upstream"}) {
    timeouts_[i++] = &timeouts.Add({{"phase", phase}});
  }
  stalls_ = &prometheus::BuildCounter()
                 .Name("berth_proxy_worker_stalls_total")
                 .Help("Times a worker thread stopped making progress (the watchdog took its "
                       "listener out of service)")
                 .Register(reg)
                 .Add({});
  stalled_ = &prometheus::BuildGauge()
                  .Name("berth_proxy_workers_stalled")
                  .Help("Worker threads stalled now")
                  .Register(reg)
                  .Add({});
  session_failures_ = &prometheus::BuildCounter()
                           .Name("berth_proxy_session_failures_total")
                           .Help("Connections ended by an unexpected exception (a bug; see the "
                                 "log)")
                           .Register(reg)
                           .Add({});
  audit_dropped_ = &prometheus::BuildCounter()
                        .Name("berth_proxy_audit_lines_dropped_total")
                        .Help("Audit lines dropped because the writer's queue was full")
                        .Register(reg)
                        .Add({});
}

Metrics::~Metrics() = default;

std::string Metrics::listen(const std::string& address) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address, 1);
  } catch (const std::exception& e) {
    return "cannot serve metrics on " + address + ": " + e.what();
  }
  exposer_->RegisterCollectable(registry_);
  return {};
}

unsigned short Metrics::port() const {
  if (!exposer_) {
    return 0;
  }
  const auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : static_cast<unsigned short>(ports.front());
}

void Metrics::request(std::string_view tenant, std::string_view endpoint_class, bool allowed,
                      double seconds, bool stream) {
  // Family::Add takes a lock and hashes the labels; each worker thread keeps what it found.
  thread_local std::unordered_map<std::string, prometheus::Counter*> counters;
  thread_local std::unordered_map<std::string, prometheus::Histogram*> histograms;
  thread_local const Metrics* owner = nullptr;
  if (owner != this) {
    counters.clear();
    histograms.clear();
    owner = this;
  }
  thread_local std::string key;  // reused: no allocation per request
  key.assign(tenant).append(1, '\0').append(endpoint_class).append(1, allowed ? 'a' : 'r');
  auto it = counters.find(key);
  if (it == counters.end()) {
    auto* c = &requests_->Add({{"tenant", std::string(tenant)},
                               {"class", std::string(endpoint_class)},
                               {"decision", allowed ? "allowed" : "refused"}});
    it = counters.emplace(key, c).first;
  }
  it->second->Increment();
  if (!stream) {
    key.assign(endpoint_class);
    auto h = histograms.find(key);
    if (h == histograms.end()) {
      auto* added = &durations_->Add({{"class", std::string(endpoint_class)}}, latency_buckets());
      h = histograms.emplace(std::string(endpoint_class), added).first;
    }
    h->second->Observe(seconds);
  }
}

void Metrics::connection_opened() { connections_->Increment(); }
void Metrics::connection_closed() { connections_->Decrement(); }
void Metrics::stream_opened() { streams_->Increment(); }
void Metrics::stream_closed() { streams_->Decrement(); }
void Metrics::reload(bool applied) { (applied ? reloads_applied_ : reloads_refused_)->Increment(); }
void Metrics::handshake_failed() { handshake_failures_->Increment(); }
void Metrics::connection_refused(Refusal why) {
  refused_[static_cast<std::size_t>(why)]->Increment();
}
void Metrics::client_timed_out(Phase phase) {
  timeouts_[static_cast<std::size_t>(phase)]->Increment();
}
void Metrics::worker_stalled(bool now_stalled) {
  if (now_stalled) {
    stalls_->Increment();
    stalled_->Increment();
  } else {
    stalled_->Decrement();
  }
}
void Metrics::session_failed() { session_failures_->Increment(); }
void Metrics::audit_dropped() { audit_dropped_->Increment(); }

void Metrics::fleet_host(const std::string& host, bool up, double meter_age_seconds) {
  host_up_->Add({{"host", host}}).Set(up ? 1 : 0);
  meter_age_->Add({{"host", host}}).Set(meter_age_seconds);
}

}  // namespace berth::proxy
