// Plain HTTP behaviour of berth seen with curl: the ping endpoints that every Docker client
// calls first to negotiate the API version, and a graceful stop.

#include <signal.h>

#include <string>

#include <catch2/catch.hpp>

#include "tests/support/dockerd.hpp"
#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/text.hpp"

using berth::test::contains_nocase;
using berth::test::describe;
using berth::test::ProxyUnderTest;

namespace {

/// The headers dockerd itself puts on /_ping, which clients read to negotiate.
void check_ping_headers(const berth::test::HttpReply& reply) {
  const auto api_version = berth::test::dockerd_field("/version", "ApiVersion");
  CHECK(contains_nocase(reply.headers, "\r\nApi-Version: " + api_version + "\r\n"));
  CHECK(contains_nocase(reply.headers, "\r\nDocker-Experimental: "));
  CHECK(contains_nocase(reply.headers, "\r\nOSType: linux\r\n"));
}

}  // namespace

TEST_CASE(
    "GET /_ping through berth answers OK with the API-Version Docker-Experimental and OSType "
    "headers",
    "[proxy][http][ping]") {
  ProxyUnderTest p;
  const auto r = p.curl(p.operator_bundle(), {"-i", p.url() + "/_ping"});
  INFO(describe(r));
  REQUIRE(r.ok());
  const auto reply = berth::test::parse_http_response(r.out);
  CHECK(reply.status == 200);
  CHECK(reply.body == "OK");
  check_ping_headers(reply);
}

TEST_CASE(
    "HEAD /_ping through berth answers with the API-Version Docker-Experimental and OSType headers",
    "[proxy][http][ping]") {
  ProxyUnderTest p;
  const auto r = p.curl(p.operator_bundle(), {"-I", p.url() + "/_ping"});
  INFO(describe(r));
  REQUIRE(r.ok());
  const auto reply = berth::test::parse_http_response(r.out);
  CHECK(reply.status == 200);
  CHECK(reply.body.empty());
  check_ping_headers(reply);
}

TEST_CASE("a tenant can ping berth to negotiate the API version", "[proxy][http][ping][tenant]") {
  ProxyUnderTest p;
  const auto r = p.curl(p.tenant_bundle(), {"-i", p.url() + "/_ping"});
  INFO(describe(r));
  REQUIRE(r.ok());
  const auto reply = berth::test::parse_http_response(r.out);
  CHECK(reply.status == 200);
  check_ping_headers(reply);
}

TEST_CASE("berth-proxy stops with status 0 on SIGTERM", "[proxy][lifecycle]") {
  ProxyUnderTest p;
  const auto ping = p.curl(p.operator_bundle(),
                           {"-s", "-o", "/dev/null", "-w", "%{http_code}", p.url() + "/_ping"});
  REQUIRE(ping.out == "200");
  CHECK(p.stop());
  CHECK(p.process().term_signal() == 0);
  CHECK(p.process().exit_code() == 0);
}

TEST_CASE("berth closes a keep-alive connection that stays idle past --idle-timeout",
          "[proxy][lifecycle][timeout]") {
  // A parked connection holds no timer of its own: its worker's sweep must close it.
  berth::test::ProxyOptions options;
  options.proxy_args = {"--idle-timeout", "2"};
  ProxyUnderTest p(options);
  const auto argv = p.s_client_argv(p.operator_bundle(), {"-quiet", "-ign_eof"});
  berth::test::RunOptions o;
  // Keep-alive: after the answer the connection waits for a next request that never comes;
  // s_client ends only when berth closes it.
  o.input = "GET /_ping HTTP/1.1\r\nHost: berth\r\n\r\n";
  o.timeout = std::chrono::seconds(20);
  const auto started = std::chrono::steady_clock::now();
  const auto idle = berth::test::run(argv, o);
  const auto waited = std::chrono::steady_clock::now() - started;
  INFO("openssl s_client: " << describe(idle) << "\nproxy log:\n" << p.log_tail(20));
  CHECK_FALSE(idle.timed_out);
  CHECK(contains_nocase(idle.out, "HTTP/1.1 200 OK"));
  CHECK(waited >= std::chrono::milliseconds(1500));
  CHECK(waited < std::chrono::seconds(10));
  CHECK(contains_nocase(p.log_tail(20), "timed out (idle); closing"));
}
