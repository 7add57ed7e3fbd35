#pragma once
// Command-line options and the runtime snapshot built from the policy file: the parsed policy,
// the TLS contexts and the upstream address. A snapshot is immutable; reload builds a new one
// and swaps it in, and each request pins the snapshot it started with.

#include <atomic>
#include <cstdint>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.hpp"
#include "proxy/client_limits.hpp"
#include "proxy/tls_stream.hpp"

namespace berth::proxy {

struct Options {
  std::string policy_path;
  std::string listen_override;    ///< --listen; empty: the policy's listen
  std::string upstream_override;  ///< --upstream; empty: the policy's upstream
  unsigned workers = 0;           ///< 0: one per core
  unsigned shutdown_grace_seconds = 30;
  /// --handshake-timeout, --header-timeout, --idle-timeout, --max-connections-per-address,
  /// --max-handshakes-per-address, --max-connections-per-certificate.
  ClientLimits client;
  std::string audit_log;  ///< --audit-log FILE: one JSON line per request
  std::string metrics_listen_override;  ///< --metrics-listen; empty: the policy's metrics_listen
  bool check_only = false;  ///< --check FILE: validate and exit
  bool bridge_isolation = true;  ///< --no-bridge-isolation: rely on dockerd's rules alone
};

/// Parses argv. The error text is a usage message.
[[nodiscard]] std::expected<Options, std::string> parse_options(int argc, char** argv);

struct UpstreamAddress {
  enum class Kind { unix_socket, tcp, tls };
  Kind kind = Kind::unix_socket;
  std::string path;  ///< unix socket path
  std::string host;
  std::string port;
  std::string text;  ///< as configured, for logs
};

/// Parses unix:///path, tcp://host:port or tls://host:port.
[[nodiscard]] std::expected<UpstreamAddress, std::string> parse_upstream(std::string_view url);

/// One dockerd of the fleet as berth reaches it.
struct HostRuntime {
  std::string name;  ///< the policy's name; "local" when the policy lists no hosts
  UpstreamAddress address;
  SslCtxPtr ctx;            ///< only for tls:// hosts
  std::string server_name;  ///< the name dockerd's certificate must carry (tls://)
  const policy::FleetHost* spec = nullptr;  ///< in the runtime's policy
  /// Its berth-node (issue #16), reached like a tls:// dockerd; null when it has none.
  std::shared_ptr<const HostRuntime> node;
};

struct Runtime {
  std::shared_ptr<const policy::Policy> policy;
  SslCtxPtr server_ctx;
  /// The fleet, in the policy's order, never empty. The first is the primary: it holds the
  /// images, networks and volumes berth does not place (and is the Swarm manager of a fleet).
  std::vector<HostRuntime> hosts;
  std::string listen;
  std::uint64_t generation = 0;

  [[nodiscard]] const HostRuntime& primary() const noexcept { return hosts.front(); }
  [[nodiscard]] const HostRuntime* host(std::string_view name) const noexcept;
  [[nodiscard]] bool fleet() const noexcept { return hosts.size() > 1; }
};

/// Reads the policy file and every file it names, and builds a runtime snapshot. Errors carry
/// the file, line and reason; nothing is swapped in on error.
[[nodiscard]] std::expected<std::shared_ptr<const Runtime>, std::string> load_runtime(
    const Options& options, std::uint64_t generation);

/// The current snapshot, shared by every worker thread.
class RuntimeHolder {
 public:
  explicit RuntimeHolder(std::shared_ptr<const Runtime> initial) : current_(std::move(initial)) {}
  std::shared_ptr<const Runtime> get() const noexcept { return current_.load(); }
  void set(std::shared_ptr<const Runtime> next) noexcept { current_.store(std::move(next)); }

 private:
  std::atomic<std::shared_ptr<const Runtime>> current_;
};

}  // namespace berth::proxy
