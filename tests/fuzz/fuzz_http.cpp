// Fuzz entry point for what berth reads of dockerd's answers without Beast: the response head
// scanner (proxy/response_head) and the chunked-body scanner (proxy/chunked). Besides the
// sanitizers it checks the promises the fast paths rest on, aborting when one breaks:
//  - a complete head lies within the bytes, its fields end before its end, its status is final;
//  - every strict prefix of a complete head scans as incomplete (never as another head);
//  - an interim head is never taken for a final one;
//  - a complete chunked body lies within the bytes, and its payload is no longer than it.
//
// Input: the first byte picks what follows it: a response head (even) or a chunked body (odd).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proxy/chunked.hpp"
#include "proxy/response_head.hpp"
#include "tests/fuzz/fuzz_entry.hpp"

namespace {

using namespace berth::proxy;

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

void head(std::string_view data) {
  const ResponseHead h = scan_response_head(data);
  bool partial = false;
  const std::size_t interim = interim_head_size(data, partial);
  if (h.state == HeadScan::complete) {
    check(h.size <= data.size());
    check(h.fields_end + 2 == h.size);
    check(h.status >= 200 && h.status <= 599);
    check(interim == 0);
    check(!(h.chunked && h.content_length));
    const std::string fields = head_without_framing(data, h);
    check(fields.size() <= h.fields_end);
    // Cut anywhere before its end, the same head is not yet a head.
    for (std::size_t cut : {std::size_t{0}, h.size / 3, h.size / 2, h.size - 1}) {
      check(scan_response_head(data.substr(0, cut)).state != HeadScan::complete);
    }
  }
  if (interim != 0) {
    check(interim <= data.size());
    check(!partial);
  }
}

void chunked(std::string_view data) {
  const ChunkedBody b = scan_chunked(data);
  if (b.state == ChunkedScan::complete) {
    check(b.length <= data.size());
    const std::string payload = dechunk(data.substr(0, b.length));
    check(payload.size() <= b.length);
    check(scan_chunked(data.substr(0, b.length)).state == ChunkedScan::complete);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] % 2 == 0) {
    head(rest);
  } else {
    chunked(rest);
  }
  return 0;
}
