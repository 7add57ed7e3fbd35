// Framing dockerd's and Prometheus's answers, and reading dockerd's view of containers.

#include <catch2/catch.hpp>

#include "metering/docker.hpp"
#include "metering/http.hpp"

namespace {
namespace m = berth::metering;
}  // namespace

TEST_CASE("a chunked body is decoded however the bytes are split", "[metering][http]") {
  const std::string wire = "4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n";
  for (std::size_t step : {1u, 2u, 3u, 7u, 100u}) {
    m::ChunkedDecoder d;
    std::string out;
    for (std::size_t i = 0; i < wire.size(); i += step) {
      REQUIRE(d.feed(std::string_view(wire).substr(i, step), out));
    }
    CAPTURE(step);
    CHECK(out == "Wikipedia in\r\n\r\nchunks.");
    CHECK(d.done());
  }
}

TEST_CASE("malformed chunk framing is refused, not guessed", "[metering][http]") {
  std::string out;
  CHECK_FALSE(m::ChunkedDecoder().feed("zz\r\n", out));
  CHECK_FALSE(m::ChunkedDecoder().feed("3\r\nabcX", out));
  CHECK_FALSE(m::ChunkedDecoder().feed("\r\n", out));
  CHECK_FALSE(m::ChunkedDecoder().feed("fffffffffffffff\r\n", out));
}

TEST_CASE("responses are framed by chunking, Content-Length or the end of the stream",
          "[metering][http]") {
  auto r = m::parse_response(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nabc\r\n0\r\n\r\n");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK(r->body == "abc");
  r = m::parse_response("HTTP/1.0 404 Not Found\r\ncontent-length: 2\r\n\r\nnoEXTRA");
  REQUIRE(r);
  CHECK(r->status == 404);
  CHECK(r->body == "no");
  r = m::parse_response("HTTP/1.1 200 OK\r\n\r\nuntil close");
  REQUIRE(r);
  CHECK(r->body == "until close");
  CHECK_FALSE(m::parse_response("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"));
  CHECK_FALSE(m::parse_response("SSH-2.0-OpenSSH\r\n\r\n"));
  CHECK_FALSE(m::parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab"));
}

TEST_CASE("endpoints are a unix socket or http://host:port", "[metering][http]") {
  auto e = m::parse_endpoint("unix:///var/run/docker.sock");
  REQUIRE(e);
  CHECK(e->unix_path == "/var/run/docker.sock");
  e = m::parse_endpoint("http://127.0.0.1:9090/prom/");
  REQUIRE(e);
  CHECK(e->host == "127.0.0.1");
  CHECK(e->port == 9090);
  CHECK(e->path_prefix == "/prom");
  e = m::parse_endpoint("http://[::1]:9090");
  REQUIRE(e);
  CHECK(e->host == "::1");
  CHECK_FALSE(m::parse_endpoint("https://x:1"));
  CHECK_FALSE(m::parse_endpoint("http://x:0"));
  CHECK_FALSE(m::parse_endpoint("http://x:99999"));
  CHECK(m::url_encode("a b{\"x\"}") == "a%20b%7B%22x%22%7D");
}

TEST_CASE("a container's tenant is its label if that is a valid tenant id, else the operator",
          "[metering][docker]") {
  CHECK(m::tenant_for_label(std::string("acme")) == "acme");
  CHECK(m::tenant_for_label(std::nullopt) == "operator");
  CHECK(m::tenant_for_label(std::string("../etc")) == "operator");
  CHECK(m::tenant_for_label(std::string("ACME")) == "operator");
  CHECK(m::tenant_for_label(std::string("")) == "operator");
}

TEST_CASE("dockerd's container list, inspect and events give names and owners",
          "[metering][docker]") {
  const auto list = m::parse_container_list(
      R"([{"Id":"abc","Names":["/web"],"State":"running","Labels":{"berth.tenant":"acme",)"
      R"("berth.id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}},
          {"Id":"def","Names":["/ops"],"State":"exited","Labels":{}},
          {"Names":["/no-id"]}])");
  REQUIRE(list.size() == 2);
  CHECK(list[0].name == "web");
  CHECK(list[0].tenant == "acme");
  CHECK(list[0].running);
  CHECK(list[0].shown_id == std::string(64, 'a'));
  CHECK(list[1].shown_id.empty());
  CHECK(list[1].tenant == "operator");
  CHECK_FALSE(list[1].inspected);

  const auto info = m::parse_container_inspect(
      R"({"Id":"abc","Name":"/web","Config":{"Labels":{"berth.tenant":"acme"}},
          "HostConfig":{"CgroupParent":"/berth/acme"},
          "State":{"Running":true,"StartedAt":"2026-11-26T07:00:00Z"}})");
  REQUIRE(info);
  CHECK(info->cgroup_parent == "/berth/acme");
  CHECK(info->started_at == "2026-11-26T07:00:00Z");
  CHECK(info->inspected);
  CHECK_FALSE(m::parse_container_inspect(R"({"message":"No such container"})"));

  const auto ev = m::parse_event(
      R"({"status":"start","id":"abc","Type":"container","Action":"start",)"
      R"("Actor":{"ID":"abc","Attributes":{"berth.tenant":"acme","image":"x","name":"web",)"
      R"("berth.id":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}},)"
      R"("time":1,"timeNano":1000000001})");
  REQUIRE(ev);
  CHECK(ev->action == "start");
  CHECK(ev->name == "web");
  CHECK(ev->tenant_label == "acme");
  CHECK(ev->time_unix_ns == 1000000001);
  CHECK(ev->shown_id == std::string(64, 'b'));
  CHECK_FALSE(m::parse_event(R"({"Type":"network","Action":"connect","Actor":{"ID":"n"}})"));
  CHECK_FALSE(m::parse_event("not json"));
}

TEST_CASE("a stats API answer gives CPU, working set, network and block I/O",
          "[metering][docker]") {
  const auto r = m::reading_from_stats(
      R"({"cpu_stats":{"cpu_usage":{"total_usage":123456789}},
          "memory_stats":{"usage":10000,"stats":{"total_inactive_file":1000}},
          "networks":{"eth0":{"rx_bytes":10,"tx_bytes":20},"eth1":{"rx_bytes":1,"tx_bytes":2}},
          "blkio_stats":{"io_service_bytes_recursive":[{"major":8,"minor":0,"op":"Read","value":7},
                                                        {"major":8,"minor":0,"op":"Write","value":9}]}})");
  REQUIRE(r);
  CHECK(r->cpu_ns == 123456789);
  CHECK(r->working_set_bytes == 9000);
  CHECK(r->net_rx_bytes == 11);
  CHECK(r->net_tx_bytes == 22);
  CHECK(r->blk_read_bytes == 7);
  CHECK(r->blk_write_bytes == 9);
  CHECK_FALSE(m::reading_from_stats(R"({"read":"0001-01-01T00:00:00Z"})"));
}

TEST_CASE("dockerd's empty stats frame for a container that is not running is no reading",
          "[metering][docker]") {
  // As dockerd 20.10 sends it: every counter present and 0. Taken as a reading, it would be a
  // counter reset, and the container's next frame would bill its whole CPU time again.
  CHECK_FALSE(m::reading_from_stats(
      R"({"read":"0001-01-01T00:00:00Z","preread":"0001-01-01T00:00:00Z","pids_stats":{},
          "cpu_stats":{"cpu_usage":{"total_usage":0,"usage_in_kernelmode":0,
                                    "usage_in_usermode":0}},
          "memory_stats":{},"name":"/web","id":"0123"})"));
  const auto r = m::reading_from_stats(
      R"({"read":"2026-12-05T21:19:40.346496928Z","cpu_stats":{"cpu_usage":{"total_usage":5}}})");
  REQUIRE(r);
  CHECK(r->cpu_ns == 5);
}
