#pragma once
// The proxy's own metrics, served by prometheus-cpp on a listener of their own (policy
// `metrics_listen` or --metrics-listen), never on the tenants' port:
//   berth_proxy_requests_total{tenant, class, decision}   class: the endpoint table's access
//                                                          class (tenant, operator_only,
//                                                          refused, unclassified)
//   berth_proxy_request_duration_seconds{class}           requests that are not streams
//   berth_proxy_connections                                open client connections
//   berth_proxy_streams                                    open hijacked and endless streams
//   berth_proxy_policy_reloads_total{result}               applied / refused
//   berth_proxy_handshake_failures_total
//   berth_proxy_connections_refused_total{reason}        per_address, handshakes_per_address,
//                                                          per_certificate
//   berth_proxy_client_timeouts_total{phase}              handshake, header, idle, body, write,
//                                                          linger, upstream (dockerd's answer)
//   berth_proxy_worker_stalls_total                        a worker that stopped making progress
//   berth_proxy_workers_stalled                            workers stalled now
//   berth_proxy_session_failures_total                     a session ended by an exception (a bug)
//   berth_proxy_audit_lines_dropped_total                  audit lines dropped (queue full)
//   berth_proxy_fleet_host_up{host}                        1 while the host's dockerd is
//                                                          followed (a fleet: issue #15)
//   berth_proxy_fleet_meter_age_seconds{host}              since its berth-meter last answered
//                                                          (-1: never, or no meter)
// Counters are found once per label set and cached per thread, so a request costs a few
// atomic increments and one histogram observation.

#include <memory>
#include <string>
#include <string_view>

namespace prometheus {
class Counter;
class Exposer;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace berth::proxy {

class Metrics {
 public:
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  /// Serves /metrics on `address` ("host:port"); returns an error text, empty on success.
  std::string listen(const std::string& address);
  /// The port actually bound (after "host:0"); 0 when not listening.
  [[nodiscard]] unsigned short port() const;

  void request(std::string_view tenant, std::string_view endpoint_class, bool allowed,
               double seconds, bool stream);
  void connection_opened();
  void connection_closed();
  void stream_opened();
  void stream_closed();
  void reload(bool applied);
  void handshake_failed();
  enum class Refusal { per_address, handshakes_per_address, per_certificate };
  void connection_refused(Refusal why);
  enum class Phase { handshake, header, idle, body, write, linger, upstream };
  void client_timed_out(Phase phase);
  void worker_stalled(bool now_stalled);
  void session_failed();
  void audit_dropped();
  /// A fleet host's state, once a second from the server's watchdog.
  void fleet_host(const std::string& host, bool up, double meter_age_seconds);

  /// The registry, for tests that read the values back.
  [[nodiscard]] const std::shared_ptr<prometheus::Registry>& registry() const noexcept {
    return registry_;
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* durations_;
  prometheus::Gauge* connections_;
  prometheus::Gauge* streams_;
  prometheus::Counter* reloads_applied_;
  prometheus::Counter* reloads_refused_;
  prometheus::Counter* handshake_failures_;
  prometheus::Counter* refused_[3];
  prometheus::Counter* timeouts_[7];
  prometheus::Counter* stalls_;
  prometheus::Gauge* stalled_;
  prometheus::Counter* session_failures_;
  prometheus::Counter* audit_dropped_;
  prometheus::Family<prometheus::Gauge>* host_up_;
  prometheus::Family<prometheus::Gauge>* meter_age_;
};

/// Scoped connection/stream gauges.
class GaugeHold {
 public:
  GaugeHold(Metrics& m, bool stream) : metrics_(&m), stream_(stream) {
    stream ? m.stream_opened() : m.connection_opened();
  }
  ~GaugeHold() { stream_ ? metrics_->stream_closed() : metrics_->connection_closed(); }
  GaugeHold(const GaugeHold&) = delete;
  GaugeHold& operator=(const GaugeHold&) = delete;

 private:
  Metrics* metrics_;
  bool stream_;
};

}  // namespace berth::proxy
