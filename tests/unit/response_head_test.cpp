// The response-head scanner lets berth pass a small answer from dockerd on without Beast's
// parser: it must accept only heads whose meaning it gets exactly right, and hand every other
// one to Beast.

#include "proxy/response_head.hpp"

#include <catch2/catch.hpp>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <string>

using berth::proxy::HeadScan;
using berth::proxy::scan_response_head;

namespace {

namespace http = boost::beast::http;

// dockerd's answer to GET /_ping, byte for byte (Go's net/http).
const std::string ping_head =
    "HTTP/1.1 200 OK\r\n"
    "Api-Version: 1.41\r\n"
    "Builder-Version: 2\r\n"
    "Cache-Control: no-cache, no-store, must-revalidate\r\n"
    "Content-Length: 2\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Docker-Experimental: false\r\n"
    "Ostype: linux\r\n"
    "Pragma: no-cache\r\n"
    "Server: Docker/20.10.24+dfsg1 (linux)\r\n"
    "Date: Thu, 26 Nov 2026 18:00:00 GMT\r\n"
    "\r\n";

}  // namespace

TEST_CASE("dockerd's answer to /_ping is complete, with its status, length and head size",
          "[proxy][response_head]") {
  const auto head = scan_response_head(ping_head + "OK");
  REQUIRE(head.state == HeadScan::complete);
  CHECK(head.status == 200);
  CHECK(head.size == ping_head.size());
  CHECK(head.fields_end == ping_head.size() - 2);
  REQUIRE(head.content_length);
  CHECK(*head.content_length == 2);
  CHECK_FALSE(head.chunked);
  CHECK_FALSE(head.json);
}

TEST_CASE("a chunked JSON answer is complete, chunked and JSON", "[proxy][response_head]") {
  const auto head = scan_response_head(
      "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n");
  REQUIRE(head.state == HeadScan::complete);
  CHECK(head.chunked);
  CHECK_FALSE(head.content_length);
  CHECK(head.json);
}

TEST_CASE("a head cut anywhere is incomplete, never complete or refused",
          "[proxy][response_head]") {
  for (std::size_t cut = 0; cut < ping_head.size(); ++cut) {
    CAPTURE(cut);
    CHECK(scan_response_head(ping_head.substr(0, cut)).state == HeadScan::incomplete);
  }
}

TEST_CASE("heads berth would have to interpret or rewrite are left to Beast's parser",
          "[proxy][response_head]") {
  const std::string status = "HTTP/1.1 200 OK\r\n";
  const char* const fields[] = {
      "Connection: close\r\n",
      "Keep-Alive: timeout=5\r\n",
      "Upgrade: tcp\r\n",
      "TE: trailers\r\n",
      "Trailer: X-Checksum\r\n",
      "Proxy-Connection: keep-alive\r\n",
      "Transfer-Encoding: gzip, chunked\r\n",
      "Content-Length: 2\r\nContent-Length: 2\r\n",
      "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
      "Content-Length: -2\r\n",
      "Content-Length: 2, 2\r\n",
      "Content-Length: \r\n",
      "X-Folded: one\r\n two\r\n",
      "Bad Name: x\r\n",
      ": no name\r\n",
      "X-Control: a\x01z\r\n",
      "X-Delete: a\x7fz\r\n",
      "X-Bare-LF: x\n",
      "X-Bare-CR: a\rb\r\n",
  };
  for (const char* field : fields) {
    CAPTURE(field);
    CHECK(scan_response_head(status + field + "\r\n").state == HeadScan::unsupported);
  }
  CHECK(scan_response_head("HTTP/1.0 200 OK\r\n\r\n").state == HeadScan::unsupported);
  CHECK(scan_response_head("HTTP/1.1 101 Switching Protocols\r\n\r\n").state ==
        HeadScan::unsupported);
  CHECK(scan_response_head("HTTP/1.1 100 Continue\r\n\r\n").state == HeadScan::unsupported);
  CHECK(scan_response_head("HTTP/1.1 2000 OK\r\n\r\n").state == HeadScan::unsupported);
  CHECK(scan_response_head("HTTP/1.1 200\r\n\r\n").state == HeadScan::unsupported);
  CHECK(scan_response_head("HTTP/1.1 20x OK\r\n\r\n").state == HeadScan::unsupported);
  CHECK(scan_response_head("http/1.1 200 OK\r\n\r\n").state == HeadScan::unsupported);
  CHECK(scan_response_head("HTTP/1.1 200 OK\n\r\n").state == HeadScan::unsupported);
}

TEST_CASE("field names are matched without regard to case, values as Beast reads them",
          "[proxy][response_head]") {
  const auto head = scan_response_head(
      "HTTP/1.1 201 Created\r\ncontent-LENGTH:  17 \r\nCONTENT-TYPE:application/json\r\n\r\n");
  REQUIRE(head.state == HeadScan::complete);
  CHECK(head.status == 201);
  REQUIRE(head.content_length);
  CHECK(*head.content_length == 17);
  CHECK(head.json);
  CHECK(scan_response_head("HTTP/1.1 200 OK\r\nConnection-Id: 7\r\n\r\n").state ==
        HeadScan::complete);  // a name that only starts like a hop-by-hop one
}

TEST_CASE("every head the scanner accepts, Beast parses to the same status and framing",
          "[proxy][response_head]") {
  const std::string heads[] = {
      ping_head,
      "HTTP/1.1 204 No Content\r\nApi-Version: 1.41\r\n\r\n",
      "HTTP/1.1 304 Not Modified\r\n\r\n",
      "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
      "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 500 Internal Server Error\r\nX-Empty:\r\nContent-Length: 3\r\n\r\n",
  };
  for (const std::string& text : heads) {
    CAPTURE(text);
    const auto head = scan_response_head(text);
    REQUIRE(head.state == HeadScan::complete);
    http::response_parser<http::empty_body> parser;
    boost::system::error_code ec;
    const std::size_t used = parser.put(boost::asio::buffer(text), ec);
    REQUIRE_FALSE(ec);
    REQUIRE(parser.is_header_done());
    CHECK(used == head.size);
    CHECK(parser.get().result_int() == head.status);
    CHECK(parser.get().chunked() == head.chunked);
    CHECK(parser.get().has_content_length() == head.content_length.has_value());
    if (head.content_length) {
      REQUIRE(parser.content_length().has_value());
      CHECK(*parser.content_length() == *head.content_length);
    }
    CHECK(parser.get().keep_alive());
  }
}

TEST_CASE("a control byte anywhere in a long field value is refused, a tab is not",
          "[proxy][response_head]") {
  const std::string value(40, 'v');
  for (std::size_t at = 0; at < value.size(); ++at) {
    CAPTURE(at);
    for (const char bad : {'\x00', '\x01', '\x1f', '\x7f'}) {
      std::string v = value;
      v[at] = bad;
      CHECK(scan_response_head("HTTP/1.1 200 OK\r\nX-Long: " + v + "\r\n\r\n").state ==
            HeadScan::unsupported);
    }
    std::string tabbed = value;
    tabbed[at] = '\t';
    CHECK(scan_response_head("HTTP/1.1 200 OK\r\nX-Long: " + tabbed + "\r\n\r\n").state ==
          HeadScan::complete);
    std::string high = value;
    high[at] = '\xe9';  // obs-text
    CHECK(scan_response_head("HTTP/1.1 200 OK\r\nX-Long: " + high + "\r\n\r\n").state ==
          HeadScan::complete);
  }
}

TEST_CASE("a head without its framing fields keeps every other line, in order",
          "[proxy][response_head]") {
  const std::string text =
      "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\ntransfer-encoding: chunked\r\n"
      "Content-Type: application/json\r\nX-Content-Length: 5\r\nDate: today\r\n\r\n";
  const auto head = scan_response_head(text);
  REQUIRE(head.state == HeadScan::complete);
  CHECK(berth::proxy::head_without_framing(text, head) ==
        "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
        "X-Content-Length: 5\r\nDate: today\r\n");
  const std::string sized = "HTTP/1.1 404 Not Found\r\nContent-Length: 29\r\n\r\n";
  CHECK(berth::proxy::head_without_framing(sized, scan_response_head(sized)) ==
        "HTTP/1.1 404 Not Found\r\n");
}
