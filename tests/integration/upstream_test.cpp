// A dockerd that only speaks TLS and wants a client certificate (dockerd --tlsverify): berth
// reaches it with a tls:// upstream and upstream_tls. The TLS-only daemon here is a second
// berth-proxy in front of the real dockerd, which asks exactly that of its clients (a verified
// certificate, TLS 1.2+), with berth's operator certificate as the client identity.

#include <chrono>
#include <csignal>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/support/dockerd.hpp"
#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/text.hpp"

using berth::test::BackgroundProcess;
using berth::test::describe;
using berth::test::ProxyOptions;
using berth::test::ProxyUnderTest;
using berth::test::test_image;
using berth::test::trim;
using Catch::Matchers::Contains;

namespace {

ProxyOptions over_tls(const ProxyUnderTest& daemon, bool with_client_certificate) {
  ProxyOptions o;
  o.upstream = "tls://127.0.0.1:" + std::to_string(daemon.port());
  const auto bundle = daemon.operator_bundle();
  o.policy_extra = "upstream_tls:\n"
                   "  ca: \"" + (daemon.ca_dir() / "ca.pem").string() + "\"\n";
  if (with_client_certificate) {
    o.policy_extra += "  cert: \"" + (bundle / "cert.pem").string() + "\"\n"
                      "  key: \"" + (bundle / "key.pem").string() + "\"\n";
  }
  o.policy_extra += "  server_name: localhost\n";
  return o;
}

}  // namespace

TEST_CASE("berth serves tenants and operators through a tls:// upstream that requires a client "
          "certificate",
          "[proxy][upstream][tls]") {
  ProxyUnderTest daemon;  // the TLS-only "dockerd"
  ProxyUnderTest p(over_tls(daemon, true));
  const std::string cli = "/usr/local/bin/docker";

  const auto version = p.docker(cli, p.operator_bundle(),
                                {"version", "--format", "{{.Server.APIVersion}}"});
  INFO(describe(version));
  CHECK(version.ok());
  CHECK(trim(version.out) == berth::test::dockerd_field("/version", "ApiVersion"));

  // A tenant's whole run (create, attach, start, wait, remove) and a piped exec, both through
  // two TLS hops; the front berth judges, the back one passes through.
  const auto run = p.docker(cli, p.tenant_bundle(),
                            {"run", "--rm", "--name", "over-tls", test_image, "echo",
                             "hello over tls"});
  INFO(describe(run));
  CHECK(run.ok());
  CHECK(trim(run.out) == "hello over tls");
  const auto id = p.docker(cli, p.tenant_bundle(),
                           {"run", "-d", "--name", "sleeper", test_image, "sleep", "300"});
  REQUIRE(id.ok());
  berth::test::RunOptions piped;
  piped.input = "line one\nline two\n";
  const auto exec = p.docker(cli, p.tenant_bundle(), {"exec", "-i", "sleeper", "wc", "-l"}, piped);
  INFO(describe(exec));
  CHECK(exec.ok());
  CHECK(trim(exec.out) == "2");
  // The tenant's view is the front berth's: its own container, under its own name.
  const auto ps = p.docker(cli, p.tenant_bundle(), {"ps", "--format", "{{.Names}}"});
  CHECK(trim(ps.out) == "sleeper");
}

TEST_CASE("without the client certificate the TLS upstream asks for, berth answers with a "
          "Docker-shaped error that the daemon cannot be reached",
          "[proxy][upstream][tls][refusal]") {
  ProxyUnderTest daemon;
  ProxyUnderTest p(over_tls(daemon, false));
  const auto curl = p.curl(p.operator_bundle(), {"-i", p.url() + "/v1.41/version"});
  INFO(describe(curl));
  REQUIRE(curl.ok());
  const auto reply = berth::test::parse_http_response(curl.out);
  CHECK(reply.status == 502);
  // TLS 1.3: the refusal may come in the handshake (cannot reach) or right after it, as an
  // alert instead of an answer (did not answer).
  CHECK_THAT(reply.body, Contains("{\"message\":\"berth: ") &&
                             (Contains("cannot reach the Docker daemon") ||
                              Contains("the Docker daemon did not answer")));
  CHECK_THAT(daemon.log_tail(50), Contains("refused"));
}

TEST_CASE("after the daemon behind berth crashes and comes back, the next requests are "
          "answered on new connections, not refused",
          "[proxy][upstream][tls]") {
  ProxyUnderTest daemon;  // stands in for dockerd behind a tls:// upstream, so it can crash
  ProxyOptions front = over_tls(daemon, true);
  front.proxy_args = {"--workers", "1"};  // one pool: every request below meets it
  ProxyUnderTest p(front);
  const std::string cli = "/usr/local/bin/docker";
  const std::vector<std::string> version{"version", "--format", "{{.Server.APIVersion}}"};

  const auto before = p.docker(cli, p.operator_bundle(), version);
  INFO(describe(before));
  REQUIRE(before.ok());  // berth now holds a pooled connection to the daemon
  const auto released = std::chrono::steady_clock::now();
  daemon.kill_and_restart();  // the pooled connection is now closed at the daemon's end
  // The docker CLI shrugs off a failed /_ping; curl's one GET shows the answer as it is.
  const auto curl = p.curl(p.operator_bundle(), {"-i", p.url() + "/v1.41/version"});
  const auto waited = std::chrono::steady_clock::now() - released;
  INFO(describe(curl));
  REQUIRE(curl.ok());
  const auto reply = berth::test::parse_http_response(curl.out);
  CHECK(reply.status == 200);
  CHECK_THAT(reply.body, Contains("\"ApiVersion\":\"" + trim(before.out) + "\""));
  const auto after = p.docker(cli, p.operator_bundle(), version);
  INFO(describe(after));
  CHECK(after.ok());
  CHECK(trim(after.out) == trim(before.out));
  // Back within the pool's probe interval (2 s), berth had not looked at the connection
  // before reusing it: the GET went out again on a new one, and the log says so.
  if (waited < std::chrono::milliseconds(1500)) {
    CHECK_THAT(p.log_tail(100), Contains("a pooled connection to dockerd was closed"));
  }
}

namespace {

// A restartable stand-in for dockerd's socket: tests/integration/unix_relay.py relays it to the
// real one. Killing it closes every connection berth holds, as a dockerd restart does.
class UnixRelay {
 public:
  explicit UnixRelay(std::filesystem::path socket) : socket_(std::move(socket)) { start(); }

  void restart() {
    (void)relay_.stop(SIGKILL, std::chrono::seconds(5));
    std::filesystem::remove(socket_);
    start();
  }
  [[nodiscard]] std::string upstream() const { return "unix://" + socket_.string(); }

 private:
  void start() {
    relay_ = BackgroundProcess(
        {"python3", (berth::test::integration_source_dir() / "unix_relay.py").string(),
         socket_.string(), "/var/run/docker.sock"},
        socket_.parent_path() / "relay.log");
    for (int i = 0; i < 200 && !std::filesystem::exists(socket_); ++i) {  // bounded: 10 s
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE(std::filesystem::exists(socket_));
  }

  std::filesystem::path socket_;
  BackgroundProcess relay_;
};

}  // namespace

TEST_CASE("when dockerd's socket restarts under berth, a request dockerd never saw is sent "
          "again on a new connection",
          "[proxy][upstream]") {
  berth::test::TempDir dir;
  UnixRelay relay(dir / "docker.sock");
  ProxyOptions options;
  options.upstream = relay.upstream();
  options.proxy_args = {"--workers", "1"};  // one pool: every request below meets it
  ProxyUnderTest p(options);
  const std::string cli = "/usr/local/bin/docker";
  const auto version = p.docker(cli, p.operator_bundle(), {"version"});
  INFO(describe(version));
  REQUIRE(version.ok());  // berth now holds a pooled connection through the relay

  // The first thing a tenant's first create does upstream is berth's own request for the
  // tenant's default network: on the dead pooled connection, its write fails, and it goes
  // again on a new one.
  relay.restart();
  const auto create = p.curl(
      p.tenant_bundle(),
      {"-i", "-X", "POST", "-H", "Content-Type: application/json", "--data",
       "{\"Image\":\"" + std::string(test_image) + "\",\"Cmd\":[\"true\"]}",
       p.url() + "/v1.41/containers/create?name=after-restart"});
  INFO(describe(create));
  REQUIRE(create.ok());
  CHECK(berth::test::parse_http_response(create.out).status == 201);

  // A bodiless POST on a dead pooled connection: dockerd answers it on a new one.
  relay.restart();
  const auto start = p.curl(p.operator_bundle(),
                            {"-i", "-X", "POST", p.url() + "/v1.41/containers/" + p.id() +
                                                     "-no-such-container/start"});
  INFO(describe(start));
  REQUIRE(start.ok());
  const auto reply = berth::test::parse_http_response(start.out);
  CHECK(reply.status == 404);
  CHECK_THAT(reply.body, Contains("No such container"));
  CHECK_THAT(p.log_tail(200), Contains("a pooled connection to dockerd was closed"));
}
