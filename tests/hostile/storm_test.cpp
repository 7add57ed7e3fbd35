// Many hostile clients at once, with reloads and revocations interleaved: berth-proxy must keep
// serving well-behaved clients correctly, never crash, never report a sanitizer finding, and stop
// on SIGTERM within its grace period (issue #13, section 3).

#include <signal.h>

#include <atomic>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/temp_dir.hpp"
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

std::string create_running(const ProxyUnderTest& p, const std::string& name) {
  const auto r = p.docker(cli, p.tenant_bundle(),
                          {"run", "-d", "--name", name, berth::test::test_image, "sleep", "600"});
  INFO(describe(r));
  REQUIRE(r.ok());
  return r.out.substr(0, 64);
}

// One well-behaved request whose answer must be exactly this tenant's container.
bool inspect_is_mine(TlsClient& c, const std::string& name) {
  if (!c.send(http_request("GET", "/v1.41/containers/" + name + "/json"))) {
    return false;
  }
  const auto r = c.read_response(20s);
  if (!r || r->status != 200) {
    return false;
  }
  const auto doc = nlohmann::json::parse(r->body, nullptr, false);
  return doc.is_object() && doc.value("Name", "") == "/" + name;
}

// One hostile move against the proxy, chosen by `kind`.
void hostile_move(const ProxyUnderTest& p, int kind, std::mt19937& random,
                  const std::string& container) {
  TlsClient c("127.0.0.1", p.port(), p.tenant_bundle());
  switch (kind) {
    case 0: {  // TLS garbage straight on the socket
      if (c.connect_tcp()) {
        std::string junk(1 + random() % 4000, '\0');
        for (auto& ch : junk) {
          ch = static_cast<char>(random());
        }
        c.send_raw(junk);
        c.read_some(200ms);
      }
      c.reset();
      break;
    }
    case 1: {  // a handshake cut short: the first bytes of a ClientHello, then a reset
      if (c.connect_tcp()) {
        c.send_raw(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
      }
      c.reset();
      break;
    }
    case 2: {  // a reset in the middle of a request head
      if (c.connect()) {
        const std::string head = http_request("GET", "/v1.41/containers/" + container + "/json");
        c.send(head.substr(0, random() % head.size()));
      }
      c.reset();
      break;
    }
    case 3: {  // a reset in the middle of a judged body
      if (c.connect()) {
        const std::string body = R"({"Image":"berth-test/busybox:latest","Cmd":["true"]})";
        c.send(http_request("POST", "/v1.41/containers/create", {},
                            {"Content-Type: application/json",
                             "Content-Length: " + std::to_string(body.size() * 4)}) +
               body);
      }
      c.reset();
      break;
    }
    case 4: {  // a reset in the middle of an answer (a list, read one piece of)
      if (c.connect()) {
        c.send(http_request("GET", "/v1.41/containers/json?all=1"));
        c.read_some(100ms);
      }
      c.reset();
      break;
    }
    case 5: {  // a reset in the middle of a log stream
      if (c.connect()) {
        c.send(http_request("GET", "/v1.41/containers/" + container +
                                       "/logs?stdout=1&stderr=1&follow=1"));
        c.read_some(200ms);
      }
      c.reset();
      break;
    }
    case 6: {  // a reset in the middle of a hijacked exec
      if (c.connect()) {
        c.send(http_request("POST", "/v1.41/containers/" + container + "/exec",
                            R"({"Cmd":["cat"],"AttachStdin":true,"AttachStdout":true})",
                            {"Content-Type: application/json"}));
        const auto created = c.read_response(10s);
        if (created && created->status == 201) {
          const auto id = nlohmann::json::parse(created->body, nullptr, false).value("Id", "");
          c.send(http_request("POST", "/v1.41/exec/" + id + "/start", R"({"Tty":false})",
                              {"Content-Type: application/json", "Connection: Upgrade",
                               "Upgrade: tcp"}));
          c.read_some(500ms);
          c.send("hello\n");
          c.read_some(100ms);
        }
      }
      c.reset();
      break;
    }
    case 7: {  // pipelining: three requests in one write, answered in order
      if (c.connect()) {
        const std::string one = http_request("GET", "/_ping");
        c.send(one + http_request("GET", "/v1.41/containers/" + container + "/json") + one);
        for (int i = 0; i < 3; ++i) {
          if (!c.read_response(10s)) {
            break;
          }
        }
      }
      c.close();
      break;
    }
    case 8: {  // a malformed chunked body
      if (c.connect()) {
        c.send(http_request("POST", "/v1.41/containers/create", {},
                            {"Content-Type: application/json", "Transfer-Encoding: chunked"}) +
               "zz\r\n{}\r\n0\r\n\r\n");
        c.read_response(5s);
      }
      c.close();
      break;
    }
    case 9: {  // a head over the size berth reads
      if (c.connect()) {
        c.send(http_request("GET", "/_ping", {}, {"X-Pad: " + std::string(300 * 1024, 'a')}));
        c.read_response(5s);
      }
      c.reset();
      break;
    }
    case 10: {  // Expect: 100-continue on an upload, the body sent at once, then a reset
      if (c.connect()) {
        c.send(http_request("PUT", "/v1.41/containers/" + container + "/archive?path=/tmp",
                            std::string(1536, '\0'), {"Expect: 100-continue"}));
        c.read_some(300ms);
      }
      c.reset();
      break;
    }
    default: {  // a client that goes quiet mid-head and is abandoned
      if (c.connect()) {
        c.send("GET /_ping HTTP/1.1\r\nHo");
      }
      c.close();
      break;
    }
  }
}

}  // namespace

TEST_CASE(
    "under resets garbage pipelining reloads and revocations from many clients, the proxy keeps "
    "answering each tenant its own data and stops cleanly",
    "[hostile][storm]") {
  ProxyOptions o;
  o.crl = true;
  // The audit writer's thread runs through the storm too (under TSan in the sanitizer runs).
  berth::test::TempDir audit_dir("berth-storm-audit-");
  const auto audit = audit_dir.path() / "audit.log";
  o.proxy_args = {"--shutdown-grace", "5", "--audit-log", audit.string()};
  ProxyUnderTest p(o);
  const std::string container = "storm";
  create_running(p, container);
  // A certificate the storm revokes halfway (its connections must then end), while the
  // tenant's own keeps working.
  const auto doomed = p.issue("doomed", {"--tenant", p.id(), "--user", "doomed"});

  std::atomic<bool> stop{false};
  std::atomic<int> wrong_answers{0};
  std::atomic<int> good_answers{0};
  std::atomic<int> moves{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 random(static_cast<unsigned>(1000 + t));
      while (!stop) {
        hostile_move(p, static_cast<int>(random() % 12), random, container);
        ++moves;
      }
    });
  }
  // Two well-behaved clients, each on one keep-alive connection, checking every answer.
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      while (!stop) {
        TlsClient good("127.0.0.1", p.port(), p.tenant_bundle());
        if (!good.connect()) {
          continue;
        }
        for (int i = 0; i < 50 && !stop; ++i) {
          if (inspect_is_mine(good, container)) {
            ++good_answers;
          } else if (!good.peer_closed()) {
            ++wrong_answers;
            break;
          } else {
            break;  // closed by berth (a reload, a drain): reconnect
          }
        }
      }
    });
  }
  threads.emplace_back([&] {
    TlsClient held("127.0.0.1", p.port(), doomed);
    bool connected = held.connect();
    for (int round = 0; round < 6 && !stop; ++round) {
      std::this_thread::sleep_for(1s);
      p.process().signal(SIGHUP);
      if (round == 2 && connected) {
        const auto r = p.berthctl({"cert", "revoke", "--ca", p.ca_dir().string(),
                                   (doomed / "cert.pem").string()});
        CHECK(r.ok());
        p.process().signal(SIGHUP);
        CHECK(held.wait_closed(10s));
        connected = false;
      }
    }
  });
  std::this_thread::sleep_for(12s);
  stop = true;
  for (auto& t : threads) {
    t.join();
  }
  INFO("moves: " << moves << ", good answers: " << good_answers);
  CHECK(moves > 100);
  CHECK(good_answers > 50);
  CHECK(wrong_answers == 0);
  // Still serving, with its own data.
  TlsClient after("127.0.0.1", p.port(), p.tenant_bundle());
  REQUIRE(after.connect());
  CHECK(inspect_is_mine(after, container));
  check_clean_stop(p);
  // Every request the good clients got an answer to is in the audit log, written whole, even
  // those still queued when SIGTERM came.
  std::ifstream in(audit);
  int lines = 0;
  int broken = 0;
  for (std::string line; std::getline(in, line);) {
    ++lines;
    broken += nlohmann::json::accept(line) ? 0 : 1;
  }
  INFO("audit lines: " << lines);
  CHECK(lines >= good_answers.load());
  CHECK(broken == 0);
}

TEST_CASE("connections beyond the cap for one source address are refused while others are served",
          "[hostile][limits]") {
  ProxyOptions o;
  o.proxy_args = {"--max-connections-per-address", "20", "--max-handshakes-per-address", "10"};
  ProxyUnderTest p(o);
  // Ten raw connections that never handshake hold every handshake slot of 127.0.0.1.
  std::vector<std::unique_ptr<TlsClient>> held;
  for (int i = 0; i < 10; ++i) {
    held.push_back(std::make_unique<TlsClient>("127.0.0.1", p.port(), p.tenant_bundle()));
    REQUIRE(held.back()->connect_tcp());
  }
  std::this_thread::sleep_for(300ms);
  TlsClient refused("127.0.0.1", p.port(), p.tenant_bundle());
  CHECK_FALSE(refused.connect(3s));
  // Once they go, connections are served again, up to the per-address cap.
  held.clear();
  std::this_thread::sleep_for(300ms);
  std::vector<std::unique_ptr<TlsClient>> served;
  for (int i = 0; i < 20; ++i) {
    served.push_back(std::make_unique<TlsClient>("127.0.0.1", p.port(), p.tenant_bundle()));
    REQUIRE(served.back()->connect());
  }
  TlsClient over("127.0.0.1", p.port(), p.tenant_bundle());
  CHECK_FALSE(over.connect(3s));
  REQUIRE(served.front()->send(http_request("GET", "/_ping")));
  const auto pong = served.front()->read_response();
  REQUIRE(pong);
  CHECK(pong->status == 200);
  check_clean_stop(p);
}

TEST_CASE("a client certificate over its connection cap is answered 429 on its next request",
          "[hostile][limits]") {
  ProxyOptions o;
  o.proxy_args = {"--max-connections-per-certificate", "3"};
  ProxyUnderTest p(o);
  std::vector<std::unique_ptr<TlsClient>> conns;
  for (int i = 0; i < 4; ++i) {
    conns.push_back(std::make_unique<TlsClient>("127.0.0.1", p.port(), p.tenant_bundle()));
    REQUIRE(conns.back()->connect());
  }
  REQUIRE(conns.back()->send(http_request("GET", "/_ping")));
  const auto limited = conns.back()->read_response();
  REQUIRE(limited);
  CHECK(limited->status == 429);
  CHECK(limited->body.find("berth: this client certificate already holds 3") !=
        std::string::npos);
  // The others, and another tenant's certificate, are served.
  REQUIRE(conns.front()->send(http_request("GET", "/_ping")));
  const auto pong = conns.front()->read_response();
  REQUIRE(pong);
  CHECK(pong->status == 200);
  TlsClient other("127.0.0.1", p.port(), p.other_tenant_bundle());
  REQUIRE(other.connect());
  REQUIRE(other.send(http_request("GET", "/_ping")));
  CHECK(other.read_response()->status == 200);
  check_clean_stop(p);
}

TEST_CASE("SIGTERM ends the proxy within the grace period even with streams that never end",
          "[hostile][lifecycle]") {
  ProxyOptions o;
  o.proxy_args = {"--shutdown-grace", "2"};
  ProxyUnderTest p(o);
  const std::string container = "forever";
  create_running(p, container);
  TlsClient logs("127.0.0.1", p.port(), p.tenant_bundle());
  REQUIRE(logs.connect());
  REQUIRE(logs.send(http_request("GET", "/v1.41/containers/" + container +
                                            "/logs?stdout=1&stderr=1&follow=1")));
  REQUIRE(logs.read_some(5s).find("200") != std::string::npos);
  TlsClient events("127.0.0.1", p.port(), p.tenant_bundle());
  REQUIRE(events.connect());
  REQUIRE(events.send(http_request("GET", "/v1.41/events")));
  // A client trickling a head, and one that never handshakes.
  TlsClient slow("127.0.0.1", p.port(), p.tenant_bundle());
  REQUIRE(slow.connect());
  REQUIRE(slow.send("GET /_ping HTTP/1.1\r\n"));
  TlsClient raw("127.0.0.1", p.port(), p.tenant_bundle());
  REQUIRE(raw.connect_tcp());
  const auto start = std::chrono::steady_clock::now();
  p.process().signal(SIGTERM);
  CHECK(logs.wait_closed(10s));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed < 6s);  // 2 s of grace, the sweep's second, and room for a loaded machine
  check_clean_stop(p);
}
