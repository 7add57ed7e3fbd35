#include "tests/support/proxy_under_test.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <exception>
#include <iostream>
#include <random>
#include <regex>
#include <stdexcept>

#include "tests/support/dockerd.hpp"
#include "tests/support/log_tail.hpp"
#include "tests/support/test_status.hpp"

#ifndef BERTH_PROXY_BIN
#define BERTH_PROXY_BIN "berth-proxy"
#endif
#ifndef BERTHCTL_BIN
#define BERTHCTL_BIN "berthctl"
#endif
#ifndef BERTH_SOURCE_DIR
#define BERTH_SOURCE_DIR "."
#endif

namespace berth::test {
namespace {

std::string env_or(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

/// Caller environment that would send clients elsewhere or make them trust something else: the
/// docker CLI honours HTTPS_PROXY even for tcp:// hosts, and python-requests lets
/// REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override the CA a docker-py client was given.
const std::vector<std::string> foreign_env = {
    "DOCKER_CONTEXT", "DOCKER_API_VERSION", "DOCKER_TLS",     "HTTP_PROXY",    "HTTPS_PROXY",
    "ALL_PROXY",      "NO_PROXY",           "http_proxy",     "https_proxy",   "all_proxy",
    "no_proxy",       "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"};

std::string fail_text(const std::string& what, const RunResult& r) {
  return what + ": " + describe(r);
}

}  // namespace

std::string berth_proxy_bin() {
  return env_or("BERTH_PROXY_BIN", BERTH_PROXY_BIN);
}

std::string berthctl_bin() {
  return env_or("BERTHCTL_BIN", BERTHCTL_BIN);
}

std::filesystem::path integration_source_dir() {
  return std::filesystem::path(BERTH_SOURCE_DIR) / "tests" / "integration";
}

std::string unique_test_id() {
  static std::atomic<unsigned> counter{0};
  static const unsigned salt = std::random_device{}() & 0xffffU;
  static const char hex[] = "0123456789abcdef";
  std::string random;
  for (unsigned shift = 12;; shift -= 4) {
    random += hex[(salt >> shift) & 0xfU];
    if (shift == 0) {
      break;
    }
  }
  return "t" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + "-" + random;
}

ProxyUnderTest::ProxyUnderTest(ProxyOptions options)
    : options_(options), id_(unique_test_id()), dir_("berth-it-"), other_id_(unique_test_id()) {
  // Under BERTH_TEST_FLEET a test that names no upstream of its own runs against the fleet.
  if (options_.hosts.empty() && options_.upstream == ProxyOptions{}.upstream) {
    options_.hosts = fleet_policy_hosts();
  }
  std::filesystem::create_directories(dir_ / "docker-config");
  const RunResult ca =
      berthctl({"ca", "init", ca_dir().string(), "--host", "localhost", "--host", "127.0.0.1"});
  if (!ca.ok()) {
    throw std::runtime_error(fail_text("berthctl ca init", ca));
  }
  operator_bundle_ = issue("operator", {"--operator", "--user", "ops"});
  tenant_bundle_ = issue("tenant", {"--tenant", id_, "--user", "alice"});
  other_bundle_ = issue("other-tenant", {"--tenant", other_id_, "--user", "bob"});
  write_policy();
  if (options_.start) {
    start();
  }
}

ProxyUnderTest::~ProxyUnderTest() {
  const bool failed = current_test_failed() || std::uncaught_exceptions() > 0;
  const bool graceful = stop();
  const LabelledObjects left_test = remove_labelled(test_label());
  const LabelledObjects left_tenant = remove_labelled(tenant_label());
  const LabelledObjects left_other = remove_labelled(other_tenant_label());
  // The tenants' cgroup parents (berth places their containers under /berth/<tenant>): empty
  // once the containers are gone, and every meter on the host would scan them forever.
  for (const std::string& tenant : {id_, other_tenant()}) {
    remove_tenant_cgroups(tenant);
    if (const std::size_t left = remove_tenant_image_tags(tenant); left != 0) {
      std::cerr << "ProxyUnderTest: " << left << " image tags of " << tenant << " left\n";
    }
  }
  if (failed) {
    std::cerr << "==== last 50 lines of " << log_file().string() << " ====\n"
              << log_tail(50) << "==== end of proxy log ====\n";
  }
  if (!graceful) {
    std::cerr << "ProxyUnderTest: berth-proxy did not stop within 10 s of SIGTERM (killed)\n";
  }
  if (!left_test.empty() || !left_tenant.empty() || !left_other.empty()) {
    std::cerr << "ProxyUnderTest: could not remove " << left_test.describe()
              << left_tenant.describe() << left_other.describe() << "\n";
  }
}

void remove_tenant_cgroups(const std::string& tenant) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path root = "/sys/fs/cgroup";
  std::vector<fs::path> candidates{root / "berth" / tenant};
  for (const auto& controller : fs::directory_iterator(root, ec)) {
    candidates.push_back(controller.path() / "berth" / tenant);
  }
  for (const auto& dir : candidates) {
    // rmdir only: a cgroup that still has processes (or children) stays, as it must.
    ::rmdir(dir.c_str());
  }
}

std::string ProxyUnderTest::name(std::string_view suffix) const {
  return "berth-it-" + id_ + "-" + std::string(suffix);
}

RunResult ProxyUnderTest::berthctl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{berthctl_bin()};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions o;
  o.timeout = std::chrono::seconds(60);
  return run(argv, o);
}

std::filesystem::path ProxyUnderTest::issue(const std::string& out,
                                            const std::vector<std::string>& args,
                                            const std::filesystem::path& ca) const {
  const std::filesystem::path bundle = dir_ / out;
  std::vector<std::string> a{"cert",  "issue",        "--ca", (ca.empty() ? ca_dir() : ca).string(),
                             "--out", bundle.string()};
  a.insert(a.end(), args.begin(), args.end());
  const RunResult r = berthctl(a);
  if (!r.ok()) {
    throw std::runtime_error(fail_text("berthctl cert issue", r));
  }
  return bundle;
}

void ProxyUnderTest::write_policy() const {
  std::string yaml =
      "listen: \"127.0.0.1:0\"\n" +
      (options_.hosts.empty() ? "upstream: \"" + options_.upstream + "\"\n"
                              : "hosts:\n" + options_.hosts) +
      "tls:\n"
      "  cert: ca/server-cert.pem\n"
      "  key: ca/server-key.pem\n"
      "  client_ca: ca/ca.pem\n";
  if (options_.crl) {
    yaml += "  crl: ca/crl.pem\n";
  }
  yaml += options_.policy_extra;
  yaml += "tenants:\n";
  yaml += "  " + id_ + ":" + (options_.tenant_rules.empty() ? " {}\n" : "\n" + options_.tenant_rules);
  yaml += "  " + other_id_ + ":" +
          (options_.other_tenant_rules.empty() ? " {}\n" : "\n" + options_.other_tenant_rules);
  yaml +=
      "identities:\n"
      "  - organization: berth-operators\n"
      "    role: operator\n";
  for (const auto& tenant : {id_, other_id_}) {
    yaml += "  - organization: " + tenant + "\n    tenant: " + tenant + "\n";
  }
  write_file(policy_file(), yaml);
}

void ProxyUnderTest::set_rules(std::string tenant_rules, std::string policy_extra) {
  options_.tenant_rules = std::move(tenant_rules);
  options_.policy_extra = std::move(policy_extra);
  write_policy();
}

void ProxyUnderTest::set_other_rules(std::string rules) {
  options_.other_tenant_rules = std::move(rules);
  write_policy();
}

void ProxyUnderTest::write_policy_text(const std::string& text) const {
  write_file(policy_file(), text);
}

std::string ProxyUnderTest::reload() {
  static const std::regex verdict(R"(policy reloaded \(generation|policy reload refused)");
  const std::size_t before = count_lines(log_file(), verdict);
  proc_.signal(SIGHUP);
  static const std::regex line(R"(.*(policy reloaded \(generation|policy reload refused).*)");
  const auto m = wait_for_line(log_file(), line, std::chrono::seconds(10),
                               [this] { return proc_.running(); }, before);
  if (!m) {
    throw std::runtime_error("berth-proxy gave no verdict on a reload within 10 s; log:\n" +
                             log_tail(30));
  }
  return (*m)[0];
}

void ProxyUnderTest::start() {
  std::vector<std::string> argv{berth_proxy_bin(), "--policy", policy_file().string(), "--listen",
                                "127.0.0.1:" + std::to_string(port_)};
  argv.insert(argv.end(), options_.proxy_args.begin(), options_.proxy_args.end());
  const std::regex metrics(R"(berth-proxy: metrics on port ([0-9]+))");
  const std::size_t metrics_before = count_lines(log_file(), metrics);
  static const std::regex ready_line(R"(berth-proxy: ready on port)");
  const std::size_t ready_before = count_lines(log_file(), ready_line);
  proc_ = BackgroundProcess(argv, log_file());
  static const std::regex ready(R"(berth-proxy: ready on port ([0-9]+))");
  const auto m = wait_for_line(log_file(), ready, std::chrono::seconds(30),
                               [this] { return proc_.running(); }, ready_before);
  if (!m) {
    const bool alive = proc_.running();
    throw std::runtime_error(std::string("berth-proxy did not report ready ") +
                             (alive
                                  ? "within 30 s"
                                  : "(it exited with status " + std::to_string(proc_.exit_code()) +
                                        ", signal " + std::to_string(proc_.term_signal()) + ")") +
                             "; log:\n" + log_tail(50));
  }
  port_ = std::stoi((*m)[1]);
  // Printed before the ready line, when the policy or --metrics-listen asks for it.
  if (const auto mp = wait_for_line(log_file(), metrics, std::chrono::milliseconds(0),
                                    [] { return true; }, metrics_before)) {
    metrics_port_ = std::stoi((*mp)[1]);
  }
}

bool ProxyUnderTest::stop() {
  return proc_.stop(SIGTERM, std::chrono::seconds(10));
}

void ProxyUnderTest::kill_and_restart() {
  (void)proc_.stop(SIGKILL, std::chrono::seconds(10));
  start();
}

RunOptions ProxyUnderTest::docker_options(const std::filesystem::path& bundle,
                                          RunOptions base) const {
  base.unset.insert(base.unset.end(), foreign_env.begin(), foreign_env.end());
  base.env.emplace_back("DOCKER_HOST", "tcp://" + address());
  base.env.emplace_back("DOCKER_TLS_VERIFY", "1");
  base.env.emplace_back("DOCKER_CERT_PATH", bundle.string());
  // One client configuration per bundle: a tenant's `docker login` is its own, as on its own
  // machine.
  base.env.emplace_back("DOCKER_CONFIG",
                        (dir_ / ("docker-config-" + bundle.filename().string())).string());
  base.env.emplace_back("DOCKER_BUILDKIT", "0");
  base.env.emplace_back("DOCKER_CLI_HINTS", "false");
  return base;
}

RunResult ProxyUnderTest::docker(const std::string& cli, const std::filesystem::path& bundle,
                                 const std::vector<std::string>& args, RunOptions options) const {
  std::vector<std::string> argv{cli};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, docker_options(bundle, std::move(options)));
}

RunResult ProxyUnderTest::docker_pty(const std::string& cli, const std::filesystem::path& bundle,
                                     const std::vector<std::string>& args,
                                     const std::vector<PtyStep>& steps, RunOptions options) const {
  std::vector<std::string> argv{cli};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions o = docker_options(bundle, std::move(options));
  o.env.emplace_back("TERM", "xterm");
  return run_in_pty(argv, steps, o);
}

RunResult ProxyUnderTest::compose(const std::filesystem::path& bundle,
                                  const std::filesystem::path& project_dir,
                                  const std::vector<std::string>& args, RunOptions options) const {
  std::vector<std::string> argv{compose_bin};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions o = docker_options(bundle, std::move(options));
  o.unset.insert(o.unset.end(), {"COMPOSE_PROJECT_NAME", "COMPOSE_FILE", "COMPOSE_PATH_SEPARATOR",
                                 "COMPOSE_DOCKER_CLI_BUILD", "COMPOSE_PROFILES"});
  o.cwd = project_dir;
  return run(argv, o);
}

RunResult ProxyUnderTest::curl(const std::filesystem::path& bundle,
                               const std::vector<std::string>& args) const {
  std::vector<std::string> argv{
      "/usr/bin/curl", "-sS", "--max-time", "30",
      "--noproxy",     "*",   "--cacert",   (ca_dir() / "ca.pem").string()};
  if (!bundle.empty()) {
    argv.insert(argv.end(),
                {"--cert", (bundle / "cert.pem").string(), "--key", (bundle / "key.pem").string()});
  }
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions o;
  o.unset = foreign_env;
  return run(argv, o);
}

std::vector<std::string> ProxyUnderTest::s_client_argv(
    const std::filesystem::path& bundle, const std::vector<std::string>& options) const {
  std::vector<std::string> argv{"/usr/bin/openssl", "s_client"};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.insert(argv.end(), {"-connect", address(), "-CAfile", (ca_dir() / "ca.pem").string()});
  if (!bundle.empty()) {
    argv.insert(argv.end(),
                {"-cert", (bundle / "cert.pem").string(), "-key", (bundle / "key.pem").string()});
  }
  return argv;
}

RunResult ProxyUnderTest::tls_probe(const std::filesystem::path& bundle) const {
  RunOptions o;
  o.unset = foreign_env;
  o.timeout = std::chrono::seconds(15);
  return run(s_client_argv(bundle, {"-quiet", "-verify_return_error"}), o);
}

RunResult ProxyUnderTest::python_client(const std::string& mode,
                                        const std::filesystem::path& bundle,
                                        const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"/usr/bin/python3",
                                (integration_source_dir() / "docker_client.py").string(),
                                mode,
                                "--url",
                                url(),
                                "--bundle",
                                bundle.string(),
                                "--ca",
                                (ca_dir() / "ca.pem").string(),
                                "--image",
                                test_image,
                                "--label",
                                test_label()};
  argv.insert(argv.end(), args.begin(), args.end());
  RunOptions o;
  o.unset = foreign_env;
  o.unset.emplace_back("PYTHONPATH");
  o.timeout = std::chrono::seconds(120);
  return run(argv, o);
}

std::string ProxyUnderTest::log_tail(std::size_t n) const {
  return tail_lines(log_file(), n);
}

}  // namespace berth::test
