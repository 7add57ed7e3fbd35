#pragma once
// The chunked transfer coding (RFC 9112 7.1), read just far enough to know whether a whole
// chunked body is already at hand, so a small answer can be passed on in one write.

#include <cstddef>
#include <string>
#include <string_view>

namespace berth::proxy {

enum class ChunkedScan { complete, incomplete, unsupported };

struct ChunkedBody {
  ChunkedScan state = ChunkedScan::incomplete;
  std::size_t length = 0;  ///< bytes of the whole coded body (with the last chunk), if complete
};

/// Looks at `data`, the bytes that follow a response header with Transfer-Encoding: chunked.
/// complete: the coded body ends within it, after `length` bytes. incomplete: more bytes are
/// needed. unsupported: chunk extensions, trailers or anything malformed; the caller then
/// leaves the body to a full HTTP parser.
ChunkedBody scan_chunked(std::string_view data) noexcept;

/// The payload of `coded`, a whole chunked body that scan_chunked found complete with exactly
/// its length: the chunks' data, joined.
std::string dechunk(std::string_view coded);

}  // namespace berth::proxy
