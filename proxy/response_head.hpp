#pragma once
// The head of one of dockerd's responses, read just far enough to pass a small answer on
// unchanged: its status, how its body is framed, and where its fields end. An answer in the
// plain form Go's net/http writes (HTTP/1.1, CRLF line ends, no Connection or other hop-by-hop
// fields, one Content-Length or Transfer-Encoding: chunked) costs a scan of its bytes here
// instead of a parse into Beast's field container and a re-serialization. Anything else is
// "unsupported" and goes to Beast's parser, which handles every form.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace berth::proxy {

enum class HeadScan { complete, incomplete, unsupported };

struct ResponseHead {
  HeadScan state = HeadScan::incomplete;
  unsigned status = 0;
  std::size_t fields_end = 0;  ///< offset of the CRLF that ends the head
  std::size_t size = 0;        ///< bytes of the whole head, that CRLF included
  std::optional<std::uint64_t> content_length;
  bool chunked = false;
  bool json = false;  ///< Content-Type starts with application/json
};

/// Looks at `data`, the start of a response. complete: the head ends within it. incomplete:
/// every line so far is well formed and more bytes are needed. unsupported: another HTTP
/// version, a 1xx status, a field berth would have to rewrite or interpret (Connection,
/// Keep-Alive, Upgrade, TE, Trailer, Proxy-*), a repeated or conflicting length, a transfer
/// coding other than chunked, a folded line, a bare LF, or a byte no field may hold.
ResponseHead scan_response_head(std::string_view data) noexcept;

/// When `data` starts with a complete interim answer (a 1xx status other than 101: 100
/// Continue, 102, 103), the size of its head, which is all it has; 0 otherwise (a final
/// answer, a 101, or too few bytes to tell). An interim answer is never the answer: a
/// connection that took it for one would hand the real answer to the next request.
/// `partial` is set when `data` starts an interim answer whose head has not ended yet.
std::size_t interim_head_size(std::string_view data, bool& partial) noexcept;

/// The status line and fields of a complete `head` (scanned from `data`) without its framing
/// fields (Content-Length, Transfer-Encoding), each line with its CRLF, without the final one:
/// the start of an answer whose body berth frames anew.
std::string head_without_framing(std::string_view data, const ResponseHead& head);

}  // namespace berth::proxy
