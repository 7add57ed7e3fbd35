// Hostile clients against the HTTP framing berth shares between tenants: pooled connections to
// dockerd must never carry one request's answer to another's, and nothing a client sends may
// crash or wedge the proxy (issue #13, sections 1.1 and 3).

#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/tls_client.hpp"
#include "tests/hostile/hostile.hpp"

using berth::test::describe;
using berth::test::http_request;
using berth::test::ProxyOptions;
using berth::test::ProxyUnderTest;
using berth::test::TlsClient;
using berth::test::check_clean_stop;
using namespace std::chrono_literals;

namespace {

constexpr const char* cli = "/usr/bin/docker";

// A one-file tar archive ("hello.txt"), as PUT /containers/{id}/archive takes it.
std::string small_tar() {
  std::string header(512, '\0');
  const std::string name = "hello.txt";
  std::copy(name.begin(), name.end(), header.begin());
  auto put = [&](std::size_t at, const std::string& text) {
    std::copy(text.begin(), text.end(), header.begin() + static_cast<std::ptrdiff_t>(at));
  };
  put(100, "0000644");
  put(108, "0000000");
  put(116, "0000000");
  put(124, "00000000006");
  put(136, "00000000000");
  header[156] = '0';
  put(257, std::string("ustar\0" "00", 8));
  std::fill(header.begin() + 148, header.begin() + 156, ' ');
  unsigned sum = 0;
  for (char c : header) {
    sum += static_cast<unsigned char>(c);
  }
  char chk[8];
  std::snprintf(chk, sizeof chk, "%06o", sum);
  std::copy(chk, chk + 6, header.begin() + 148);
  header[154] = '\0';
  std::string data = "hello\n";
  data.resize(512, '\0');
  return header + data + std::string(1024, '\0');
}

std::string create_container(const ProxyUnderTest& p, const std::filesystem::path& bundle,
                             const std::string& name) {
  const auto r = p.docker(cli, bundle, {"create", "--name", name, berth::test::test_image, "sh"});
  INFO(describe(r));
  REQUIRE(r.ok());
  return r.out.substr(0, 64);
}

}  // namespace

TEST_CASE(
    "an Expect: 100-continue upload never leaves its answer on a pooled connection for another "
    "tenant's request",
    "[hostile][framing][expect]") {
  ProxyOptions o;
  o.proxy_args = {"--workers", "1"};  // one pool: every request shares its connections
  ProxyUnderTest p(o);
  create_container(p, p.tenant_bundle(), "mine");
  create_container(p, p.other_tenant_bundle(), "theirs");

  // The other tenant uploads with Expect: 100-continue and sends its body at once, as RFC 9110
  // allows (curl does after a second's wait).
  const std::string tar = small_tar();
  for (int round = 0; round < 5; ++round) {
    CAPTURE(round);
    TlsClient uploader("127.0.0.1", p.port(), p.other_tenant_bundle());
    REQUIRE(uploader.connect());
    REQUIRE(uploader.send(http_request("PUT", "/v1.41/containers/theirs/archive?path=/tmp", tar,
                                       {"Expect: 100-continue",
                                        "Content-Type: application/x-tar"})));
    auto first = uploader.read_response();
    REQUIRE(first);
    if (first->status == 100) {
      first = uploader.read_response();
      REQUIRE(first);
    }
    CHECK(first->status == 200);

    // Then this tenant's inspects, on the connections the upload used toward dockerd.
    TlsClient reader("127.0.0.1", p.port(), p.tenant_bundle());
    REQUIRE(reader.connect());
    for (int i = 0; i < 3; ++i) {
      REQUIRE(reader.send(http_request("GET", "/v1.41/containers/mine/json")));
      const auto answer = reader.read_response();
      REQUIRE(answer);
      INFO(answer->head << answer->body);
      REQUIRE(answer->status == 200);
      const auto doc = nlohmann::json::parse(answer->body, nullptr, false);
      REQUIRE(doc.is_object());
      CHECK(doc.value("Name", "") == "/mine");
    }
  }
  check_clean_stop(p);
}

TEST_CASE("berth answers a client's Expect: 100-continue itself, after judging the head",
          "[hostile][framing][expect]") {
  ProxyUnderTest p;
  create_container(p, p.tenant_bundle(), "box");
  TlsClient c("127.0.0.1", p.port(), p.tenant_bundle());
  REQUIRE(c.connect());
  // A refused head gets its final answer without a 100, and the connection ends there: the
  // client never sends the body.
  REQUIRE(c.send(http_request("PUT", "/v1.41/containers/nothere/archive?path=/tmp", {},
                              {"Expect: 100-continue", "Content-Length: 1536"})));
  const auto refused = c.read_response();
  REQUIRE(refused);
  CHECK(refused->status == 404);
  CHECK(c.wait_closed(5s));

  // An accepted head gets 100 Continue, then the final answer once the body has arrived.
  TlsClient d("127.0.0.1", p.port(), p.tenant_bundle());
  REQUIRE(d.connect());
  const std::string tar = small_tar();
  REQUIRE(d.send(http_request("PUT", "/v1.41/containers/box/archive?path=/tmp", {},
                              {"Expect: 100-continue",
                               "Content-Length: " + std::to_string(tar.size())})));
  const auto interim = d.read_response(10s);
  REQUIRE(interim);
  CHECK(interim->status == 100);
  REQUIRE(d.send(tar));
  const auto final_answer = d.read_response();
  REQUIRE(final_answer);
  CHECK(final_answer->status == 200);

  // An expectation berth does not know fails, as Go's server fails it.
  TlsClient e("127.0.0.1", p.port(), p.tenant_bundle());
  REQUIRE(e.connect());
  REQUIRE(e.send(http_request("GET", "/v1.41/_ping", {}, {"Expect: something-else"})));
  const auto failed = e.read_response();
  REQUIRE(failed);
  CHECK(failed->status == 417);
  check_clean_stop(p);
}

TEST_CASE("a 12 MiB body and a 200,000-deep JSON body are refused and the proxy keeps serving",
          "[hostile][framing][recursion]") {
  ProxyUnderTest p;
  TlsClient big("127.0.0.1", p.port(), p.tenant_bundle());
  REQUIRE(big.connect());
  std::string body = "{\"Image\":\"" + std::string(12 * 1024 * 1024, 'a') + "\"}";
  // Sent whole, faster than berth consumes it: what made every read complete at once. berth
  // may answer and close before all of it is sent.
  (void)big.send(http_request("POST", "/v1.41/containers/create", body,
                              {"Content-Type: application/json"}),
                 60s);
  const auto too_large = big.read_response();
  REQUIRE(too_large);
  CHECK(too_large->status == 413);

  // Chunked, it has no length to check up front: the limit stops it as it comes, read by
  // Beast in pieces that are all already there.
  TlsClient chunked("127.0.0.1", p.port(), p.tenant_bundle());
  REQUIRE(chunked.connect());
  std::string coded;
  for (std::size_t at = 0; at < body.size(); at += 8192) {
    const std::string piece = body.substr(at, 8192);
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", piece.size());
    coded += size + piece + "\r\n";
  }
  coded += "0\r\n\r\n";
  (void)chunked.send(http_request("POST", "/v1.41/containers/create", coded,
                                  {"Content-Type: application/json",
                                   "Transfer-Encoding: chunked"}),
                     60s);
  const auto chunked_too_large = chunked.read_response();
  REQUIRE(chunked_too_large);
  CHECK(chunked_too_large->status == 413);

  TlsClient deep("127.0.0.1", p.port(), p.tenant_bundle());
  REQUIRE(deep.connect());
  const std::string nested = std::string(200000, '[') + std::string(200000, ']');
  REQUIRE(deep.send(http_request("POST", "/v1.41/containers/create", nested,
                                 {"Content-Type: application/json"}),
                    60s));
  const auto refused = deep.read_response();
  REQUIRE(refused);
  CHECK(refused->status == 400);

  REQUIRE(p.running());
  TlsClient after("127.0.0.1", p.port(), p.tenant_bundle());
  REQUIRE(after.connect());
  REQUIRE(after.send(http_request("GET", "/_ping")));
  const auto pong = after.read_response();
  REQUIRE(pong);
  CHECK(pong->status == 200);
  check_clean_stop(p);
}

TEST_CASE("a large answer written to a client that reads it whole does not exhaust the stack",
          "[hostile][framing][recursion]") {
  ProxyUnderTest p;
  // dockerd's answer to a create with a 3 MiB environment comes back through berth as one
  // large rewritten write: every TLS record of it completes at once.
  std::string env = "[";
  for (int i = 0; i < 3000; ++i) {
    env += (i ? ",\"V" : "\"V") + std::to_string(i) + "=" + std::string(1000, 'x') + "\"";
  }
  env += "]";
  const std::string body = R"({"Image":")" + std::string(berth::test::test_image) +
                           R"(","Env":)" + env + "}";
  TlsClient c("127.0.0.1", p.port(), p.tenant_bundle());
  REQUIRE(c.connect());
  REQUIRE(c.send(http_request("POST", "/v1.41/containers/create?name=bigenv", body,
                              {"Content-Type: application/json"}),
                 60s));
  const auto created = c.read_response(60s);
  REQUIRE(created);
  CHECK(created->status == 201);
  REQUIRE(c.send(http_request("GET", "/v1.41/containers/bigenv/json")));
  const auto inspect = c.read_response(60s);
  REQUIRE(inspect);
  CHECK(inspect->status == 200);
  CHECK(inspect->body.size() > 3'000'000);
  check_clean_stop(p);
}

TEST_CASE("fifty clients sending a request head at one byte a second are all cut off in time",
          "[hostile][slow]") {
  ProxyOptions o;
  o.proxy_args = {"--header-timeout", "3"};
  ProxyUnderTest p(o);
  std::vector<std::unique_ptr<TlsClient>> slow;
  for (int i = 0; i < 50; ++i) {
    slow.push_back(std::make_unique<TlsClient>("127.0.0.1", p.port(), p.tenant_bundle()));
    REQUIRE(slow.back()->connect());
  }
  const std::string head = http_request("GET", "/_ping");
  const auto start = std::chrono::steady_clock::now();
  std::size_t sent = 0;
  // One byte a second from every client, until berth has closed them all or 10 s have passed.
  while (std::chrono::steady_clock::now() - start < 10s) {
    bool any_open = false;
    for (auto& c : slow) {
      if (!c->peer_closed() && c->send(head.substr(sent % head.size(), 1), 100ms)) {
        any_open = true;
      }
    }
    if (!any_open) {
      break;
    }
    ++sent;
    for (auto& c : slow) {
      if (!c->peer_closed()) {
        c->wait_closed(1000ms / 50);
      }
    }
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  std::size_t still_open = 0;
  for (auto& c : slow) {
    if (!c->wait_closed(100ms)) {
      ++still_open;
    }
  }
  CHECK(still_open == 0);
  // The header deadline (3 s) plus the sweep's second, with room for a loaded machine.
  CHECK(elapsed < 8s);
  // Meanwhile a well-behaved client is served.
  TlsClient good("127.0.0.1", p.port(), p.tenant_bundle());
  REQUIRE(good.connect());
  REQUIRE(good.send(head));
  const auto pong = good.read_response();
  REQUIRE(pong);
  CHECK(pong->status == 200);
  check_clean_stop(p);
}
