#pragma once
// ProxyUnderTest: one berth-proxy per test, with everything it needs private to the test.
//
//  - a temp dir holding a fresh CA (`berthctl ca init DIR/ca --host localhost --host 127.0.0.1`),
//    an operator bundle and two tenant bundles (`berthctl cert issue`), the policy file, the
//    proxy log and a private DOCKER_CONFIG, so no test touches ~/.docker or another test's files;
//  - a unique id ("t<pid>-<n>-<random>") used both as the first tenant's id and as the value of
//    the `berth.test` label that operator-side tests put on what they create, and a second
//    unique id for the other tenant (isolation tests need two strangers on one dockerd), so
//    `ctest -j2` and several engineers can share one dockerd;
//  - `berth-proxy --policy DIR/policy.yaml --listen 127.0.0.1:0`, ready once it prints
//    "berth-proxy: ready on port N" (bounded poll, never a sleep);
//  - on destruction: SIGTERM, bounded wait, then removal of every container, image, network
//    and volume labelled berth.test=<id>, berth.tenant=<id> or berth.tenant=<other id>, straight
//    on dockerd's socket;
//    on failure the last 50 lines of the proxy log go to stderr.

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/process.hpp"
#include "tests/support/temp_dir.hpp"

namespace berth::test {

/// Paths of the programs under test: the environment (BERTH_PROXY_BIN, BERTHCTL_BIN) wins over
/// the paths compiled in by CMake.
[[nodiscard]] std::string berth_proxy_bin();
[[nodiscard]] std::string berthctl_bin();
/// tests/integration in the source tree (python helpers live there).
[[nodiscard]] std::filesystem::path integration_source_dir();

/// Removes the (empty) cgroup parents berth made for `tenant` in every controller.
void remove_tenant_cgroups(const std::string& tenant);

/// A unique id for one fixture: a valid tenant id and label value.
[[nodiscard]] std::string unique_test_id();

inline constexpr const char* test_image = "berth-test/busybox:latest";

/// Debian's docker-compose 1.29 (python-requests, docker-py underneath).
inline constexpr const char* compose_bin = "/usr/bin/docker-compose";

struct ProxyOptions {
  bool start = true;  ///< false: the test prepares more (revocations...) and calls start()
  bool crl = false;   ///< set tls.crl: ca/crl.pem in the policy
  /// YAML of the first tenant's section (quota, defaults, limits, images, grants), each line
  /// indented by four spaces; empty: `{}`.
  std::string tenant_rules;
  /// The same for the second tenant (other_tenant()); empty: `{}`.
  std::string other_tenant_rules;
  /// Top-level YAML added to the policy (tenant_defaults, metrics_listen...).
  std::string policy_extra;
  /// The policy's upstream (give upstream_tls in policy_extra for a tls:// one).
  std::string upstream = "unix:///var/run/docker.sock";
  /// YAML of a `hosts:` list (each line indented by two spaces): the fleet in place of the
  /// upstream; empty: none.
  std::string hosts;
  /// More berth-proxy arguments (--audit-log FILE...).
  std::vector<std::string> proxy_args;
};

class ProxyUnderTest {
 public:
  explicit ProxyUnderTest(ProxyOptions options = {});
  ProxyUnderTest(const ProxyUnderTest&) = delete;
  ProxyUnderTest& operator=(const ProxyUnderTest&) = delete;
  ~ProxyUnderTest();

  /// The tenant id of this test's tenant, and the value of its berth.test label.
  [[nodiscard]] const std::string& id() const noexcept { return id_; }

  [[nodiscard]] std::string test_label() const { return "berth.test=" + id_; }

  [[nodiscard]] std::string tenant_label() const { return "berth.tenant=" + id_; }

  /// The second tenant's id: a stranger to the first, known to the same policy.
  [[nodiscard]] const std::string& other_tenant() const noexcept { return other_id_; }

  [[nodiscard]] std::string other_tenant_label() const { return "berth.tenant=" + other_id_; }

  /// A container/image name unique to this test: "berth-it-<id>-<suffix>".
  [[nodiscard]] std::string name(std::string_view suffix) const;

  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_.path(); }

  [[nodiscard]] std::filesystem::path ca_dir() const { return dir_ / "ca"; }

  [[nodiscard]] std::filesystem::path policy_file() const { return dir_ / "policy.yaml"; }

  [[nodiscard]] std::filesystem::path log_file() const { return dir_ / "proxy.log"; }

  [[nodiscard]] const std::filesystem::path& operator_bundle() const noexcept {
    return operator_bundle_;
  }

  [[nodiscard]] const std::filesystem::path& tenant_bundle() const noexcept {
    return tenant_bundle_;
  }

  /// The bundle of the second tenant (other_tenant()).
  [[nodiscard]] const std::filesystem::path& other_tenant_bundle() const noexcept {
    return other_bundle_;
  }

  /// Runs berthctl with `args`.
  [[nodiscard]] RunResult berthctl(const std::vector<std::string>& args) const;
  /// `berthctl cert issue --ca <ca> --out DIR/<out> <args>`; throws (with berthctl's output)
  /// if it fails. Returns the bundle directory.
  std::filesystem::path issue(const std::string& out, const std::vector<std::string>& args,
                              const std::filesystem::path& ca = {}) const;

  /// Writes the default policy: this test's two tenants, operators by organization
  /// berth-operators.
  void write_policy() const;
  /// Replaces the first tenant's section and the top-level extra of the policy file (see
  /// ProxyOptions) and writes it; a running proxy sees it on reload().
  void set_rules(std::string tenant_rules, std::string policy_extra = {});
  /// Replaces the second tenant's section (ProxyOptions::other_tenant_rules) and writes it.
  void set_other_rules(std::string rules);
  /// Writes `text` as the policy file, whatever it says.
  void write_policy_text(const std::string& text) const;
  /// SIGHUP, then waits (bounded) for the proxy's verdict on the file and returns that log
  /// line: "policy reloaded (generation N)" or "policy reload refused, ...: <reason>".
  std::string reload();
  /// Starts the proxy and waits (bounded) for its ready line; throws with the log if it fails.
  /// The first start listens on a free port; later ones on the same port.
  void start();
  /// SIGKILL, then start() on the same port: a daemon that crashed and came back, as its
  /// clients see it (every connection they held is closed, none drained).
  void kill_and_restart();
  /// SIGTERM and a bounded wait; returns true if it exited by itself within the grace period.
  bool stop();

  [[nodiscard]] bool running() { return proc_.running(); }

  [[nodiscard]] const BackgroundProcess& process() const noexcept { return proc_; }

  [[nodiscard]] int port() const noexcept { return port_; }

  /// The metrics listener's port ("berth-proxy: metrics on port N"); 0 when there is none.
  [[nodiscard]] int metrics_port() const noexcept { return metrics_port_; }

  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  [[nodiscard]] std::string url() const { return "https://" + address(); }

  /// Environment for a docker CLI talking to berth with `bundle`:
  /// DOCKER_HOST, DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH, a private DOCKER_CONFIG per bundle,
  /// DOCKER_BUILDKIT=0 (the classic builder; there is no buildx here).
  [[nodiscard]] RunOptions docker_options(const std::filesystem::path& bundle,
                                          RunOptions base = {}) const;
  /// Runs `cli args...` against berth with `bundle`.
  [[nodiscard]] RunResult docker(const std::string& cli, const std::filesystem::path& bundle,
                                 const std::vector<std::string>& args,
                                 RunOptions options = {}) const;
  /// The same under a pseudo-terminal.
  [[nodiscard]] RunResult docker_pty(const std::string& cli, const std::filesystem::path& bundle,
                                     const std::vector<std::string>& args,
                                     const std::vector<PtyStep>& steps,
                                     RunOptions options = {}) const;
  /// Runs docker-compose (compose_bin) against berth with `bundle`, in `project_dir`: the
  /// docker_options() environment without COMPOSE_* variables of the caller, so only `args`
  /// (-p, -f) choose the project.
  [[nodiscard]] RunResult compose(const std::filesystem::path& bundle,
                                  const std::filesystem::path& project_dir,
                                  const std::vector<std::string>& args,
                                  RunOptions options = {}) const;
  /// curl against berth: `curl -sS --max-time 30 --cacert <ca> [--cert/--key of bundle] args`.
  /// An empty `bundle` sends no client certificate.
  [[nodiscard]] RunResult curl(const std::filesystem::path& bundle,
                               const std::vector<std::string>& args) const;

  /// A bare TLS handshake with `openssl s_client` (nothing sent after it), to see how berth ends
  /// it: a refused client certificate shows as an "alert" from the server. An empty `bundle`
  /// offers no client certificate.
  [[nodiscard]] RunResult tls_probe(const std::filesystem::path& bundle) const;
  /// `openssl s_client <options> -connect <berth> -CAfile <ca>`, plus `-cert`/`-key` of
  /// `bundle` unless it is empty.
  [[nodiscard]] std::vector<std::string> s_client_argv(
      const std::filesystem::path& bundle, const std::vector<std::string>& options) const;

  /// Runs tests/integration/docker_client.py (under /usr/bin/python3, which has python3-docker)
  /// with `mode`, then --url, --bundle, --ca, --image, --label, then `args`.
  [[nodiscard]] RunResult python_client(const std::string& mode,
                                        const std::filesystem::path& bundle,
                                        const std::vector<std::string>& args = {}) const;

  /// The last `n` lines of the proxy log.
  [[nodiscard]] std::string log_tail(std::size_t n = 50) const;

 private:
  ProxyOptions options_;
  std::string id_;
  TempDir dir_;
  std::filesystem::path operator_bundle_;
  std::filesystem::path tenant_bundle_;
  std::string other_id_;
  std::filesystem::path other_bundle_;
  BackgroundProcess proc_;
  int port_ = 0;
  int metrics_port_ = 0;
};

}  // namespace berth::test
