// Who may talk to berth at all: only a client certificate from the operator's CA, unexpired and
// unrevoked, is accepted in the TLS handshake; a valid certificate whose identity the policy
// does not name gets a Docker-shaped 403. Every refusal leaves dockerd unchanged.

#include <filesystem>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/dockerd.hpp"
#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/text.hpp"

using berth::test::contains_nocase;
using berth::test::describe;
using berth::test::ProxyOptions;
using berth::test::ProxyUnderTest;
using berth::test::test_image;
using berth::test::trim;
using Catch::Matchers::Contains;

namespace {

/// Checks that berth refuses `bundle` (empty: no client certificate at all) in the TLS
/// handshake: a bare handshake ends in an alert from berth, curl and the docker CLI get no HTTP
/// answer at all, and a `docker run` attempt creates nothing.
void check_refused_in_handshake(const ProxyUnderTest& p, const std::string& cli,
                                const std::filesystem::path& bundle) {
  const auto probe = p.tls_probe(bundle);
  {
    INFO("openssl s_client: " << describe(probe));
    CHECK_FALSE(probe.ok());
    CHECK_FALSE(probe.timed_out);
    CHECK(contains_nocase(probe.out + probe.err, " alert "));
  }

  // Clients that send their request right after their half of a TLS 1.3 handshake may see a
  // reset rather than the alert: 35 handshake failed, 55 send failed, 56 receive failed.
  const auto curl = p.curl(bundle, {"-o", "/dev/null", "-w", "%{http_code}", p.url() + "/version"});
  {
    INFO("curl: " << describe(curl));
    CHECK((curl.exit_code == 35 || curl.exit_code == 55 || curl.exit_code == 56));
    CHECK(curl.out == "000");
  }

  // The docker CLI sends no certificate when the bundle has only ca.pem.
  std::filesystem::path cli_bundle = bundle;
  if (bundle.empty()) {
    cli_bundle = p.dir() / "ca-only";
    std::filesystem::create_directories(cli_bundle);
    std::filesystem::copy_file(p.ca_dir() / "ca.pem", cli_bundle / "ca.pem",
                               std::filesystem::copy_options::overwrite_existing);
  }
  const auto version = p.docker(cli, cli_bundle, {"version", "--format", "{{.Server.Version}}"});
  {
    INFO("docker version: " << describe(version));
    CHECK_FALSE(version.ok());
    CHECK(trim(version.out).empty());
    CHECK_THAT(version.err, !Contains("Error response from daemon"));
  }

  const std::string name = p.name("refused");
  const auto run =
      p.docker(cli, cli_bundle,
               {"run", "--rm", "--name", name, "--label", p.test_label(), test_image, "true"});
  INFO("docker run: " << describe(run));
  CHECK_FALSE(run.ok());
  CHECK_THAT(run.err, !Contains("Error response from daemon"));
  CHECK(berth::test::container_state(name).empty());
  CHECK(berth::test::list_labelled(p.test_label()).empty());
}

}  // namespace

TEST_CASE("a client without a certificate is refused in the TLS handshake",
          "[proxy][tls][refusal]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  check_refused_in_handshake(p, cli, {});
}

TEST_CASE("a certificate from another CA is refused in the TLS handshake",
          "[proxy][tls][refusal]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const auto other_ca = p.dir() / "other-ca";
  const auto init = p.berthctl({"ca", "init", other_ca.string(), "--host", "localhost"});
  INFO(describe(init));
  REQUIRE(init.ok());
  const auto foreign = p.issue("foreign", {"--operator", "--user", "mallory"}, other_ca);
  // The client trusts berth's real server certificate, so only berth can refuse.
  std::filesystem::copy_file(p.ca_dir() / "ca.pem", foreign / "ca.pem",
                             std::filesystem::copy_options::overwrite_existing);
  check_refused_in_handshake(p, cli, foreign);
}

TEST_CASE("an expired certificate is refused in the TLS handshake", "[proxy][tls][refusal]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const auto expired =
      p.issue("expired", {"--operator", "--user", "old", "--backdate-days", "10", "--days", "1"});
  check_refused_in_handshake(p, cli, expired);
}

TEST_CASE("a revoked certificate is refused in the TLS handshake while others still work",
          "[proxy][tls][refusal][crl]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyOptions options;
  options.start = false;
  options.crl = true;
  ProxyUnderTest p(options);
  const auto revoked = p.issue("revoked", {"--operator", "--user", "gone"});
  const auto revoke =
      p.berthctl({"cert", "revoke", "--ca", p.ca_dir().string(), (revoked / "cert.pem").string()});
  INFO(describe(revoke));
  REQUIRE(revoke.ok());
  p.start();

  check_refused_in_handshake(p, cli, revoked);

  const auto still =
      p.docker(cli, p.operator_bundle(), {"version", "--format", "{{.Server.Version}}"});
  INFO("unrevoked operator: " << describe(still));
  CHECK(still.ok());
}

TEST_CASE("no TLS session is ever resumed: every connection's certificate is verified in full",
          "[proxy][tls]") {
  // A resumed session would skip the certificate's verification (its expiry, the CRL).
  const auto version = GENERATE(as<std::string>{}, "-tls1_2", "-tls1_3");
  CAPTURE(version);
  ProxyUnderTest p;
  const auto session = p.dir() / ("session" + version + ".pem");
  auto connect = [&](bool resume) {
    const auto argv = p.s_client_argv(
        p.operator_bundle(),
        {version, "-ign_eof", resume ? "-sess_in" : "-sess_out", session.string()});
    berth::test::RunOptions o;
    // A whole request and its answer: TLS 1.3 tickets would arrive before the response.
    o.input = "GET /_ping HTTP/1.1\r\nHost: berth\r\nConnection: close\r\n\r\n";
    o.timeout = std::chrono::seconds(15);
    return berth::test::run(argv, o);
  };
  const auto first = connect(false);
  INFO("first connection: " << describe(first));
  REQUIRE(first.ok());
  CHECK_THAT(first.out, Contains("HTTP/1.1 200 OK"));
  CHECK_THAT(first.out, !Contains("New Session Ticket"));
  if (!std::filesystem::exists(session)) {
    SUCCEED("no session to resume was handed out");  // TLS 1.3 without tickets
    return;
  }
  const auto second = connect(true);
  INFO("second connection, offering the first one's session: " << describe(second));
  REQUIRE(second.ok());
  CHECK_THAT(second.out, Contains("HTTP/1.1 200 OK"));
  CHECK_THAT(second.out, Contains("New, TLSv1."));
  CHECK_THAT(second.out, !Contains("Reused, TLSv1."));
}

TEST_CASE("a valid certificate whose identity the policy does not know gets a Docker-shaped 403",
          "[proxy][identity][refusal]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const auto stranger = p.issue("stranger", {"--tenant", "stranger-" + p.id(), "--user", "eve"});

  const auto curl = p.curl(stranger, {"-i", p.url() + "/version"});
  INFO("curl: " << describe(curl));
  REQUIRE(curl.ok());
  const auto reply = berth::test::parse_http_response(curl.out);
  CHECK(reply.status == 403);
  CHECK(contains_nocase(reply.headers, "\r\nContent-Type: application/json"));
  const auto body = nlohmann::json::parse(reply.body, nullptr, false);
  REQUIRE(body.is_object());
  REQUIRE(body.contains("message"));
  REQUIRE(body["message"].is_string());
  CHECK_THAT(body["message"].get<std::string>(), Contains("not known"));

  const auto ps = p.docker(cli, stranger, {"ps"});
  INFO("docker ps: " << describe(ps));
  CHECK_FALSE(ps.ok());
  CHECK_THAT(ps.err, Contains("not known"));

  const std::string name = p.name("stranger");
  const auto run =
      p.docker(cli, stranger,
               {"run", "--rm", "--name", name, "--label", p.test_label(), test_image, "true"});
  INFO("docker run: " << describe(run));
  CHECK_FALSE(run.ok());
  CHECK_THAT(run.err, Contains("not known"));
  CHECK(berth::test::container_state(name).empty());
  CHECK(berth::test::list_labelled(p.test_label()).empty());
}
