// The chunked-body scanner decides whether a small chunked answer from dockerd is whole, so it
// can be passed on in one write; anything it does not fully understand goes to Beast's parser.

#include "proxy/chunked.hpp"

#include <catch2/catch.hpp>

#include <string>

using berth::proxy::ChunkedScan;
using berth::proxy::scan_chunked;

TEST_CASE("a whole chunked body is found complete with its exact length", "[proxy][chunked]") {
  const std::string body = "5\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
  const auto scan = scan_chunked(body);
  CHECK(scan.state == ChunkedScan::complete);
  CHECK(scan.length == body.size());
}

TEST_CASE("bytes after the last chunk (a pipelined answer) are not counted as the body",
          "[proxy][chunked]") {
  const std::string body = "3\r\nabc\r\n0\r\n\r\n";
  const auto scan = scan_chunked(body + "HTTP/1.1 200 OK\r\n");
  CHECK(scan.state == ChunkedScan::complete);
  CHECK(scan.length == body.size());
}

TEST_CASE("a chunked body cut anywhere is incomplete", "[proxy][chunked]") {
  const std::string body = "5\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\n";
  for (std::size_t cut = 0; cut < body.size(); ++cut) {
    CAPTURE(cut);
    CHECK(scan_chunked(body.substr(0, cut)).state == ChunkedScan::incomplete);
  }
}

TEST_CASE("chunk extensions, trailers, bad sizes and missing CRLFs are left to the full parser",
          "[proxy][chunked]") {
  CHECK(scan_chunked("5;ext=1\r\nhello\r\n0\r\n\r\n").state == ChunkedScan::unsupported);
  CHECK(scan_chunked("3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n").state == ChunkedScan::unsupported);
  CHECK(scan_chunked("zz\r\nabc\r\n0\r\n\r\n").state == ChunkedScan::unsupported);
  CHECK(scan_chunked("\r\nabc\r\n0\r\n\r\n").state == ChunkedScan::unsupported);
  CHECK(scan_chunked("3\r\nabcX\r\n0\r\n\r\n").state == ChunkedScan::unsupported);
  CHECK(scan_chunked("123456789\r\n").state == ChunkedScan::unsupported);  // over 8 digits
  CHECK(scan_chunked("123456789").state == ChunkedScan::unsupported);      // no CRLF in sight
}

TEST_CASE("a whole chunked body decodes to its chunks' data, joined", "[proxy][chunked]") {
  CHECK(berth::proxy::dechunk("5\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\n\r\n") ==
        "hello 0123456789");
  CHECK(berth::proxy::dechunk("0\r\n\r\n").empty());
  // Sizes are hex in either case; a chunk may hold CRLFs of its own.
  const std::string one = "{\"a\":\r\n12}";    // 10 bytes
  const std::string two = ",\"b\":\"\r\n\"}";  // 10 bytes
  const std::string coded = "a\r\n" + one + "\r\nA\r\n" + two + "\r\n0\r\n\r\n";
  REQUIRE(scan_chunked(coded).state == ChunkedScan::complete);
  CHECK(berth::proxy::dechunk(coded) == one + two);
}
