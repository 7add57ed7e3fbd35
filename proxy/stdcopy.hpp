#pragma once
// Docker's multiplexed stream (stdcopy) as berth relays it: the frames of a non-TTY attach or
// exec, each an 8-byte head (the stream: 1 stdout, 2 stderr; three zero bytes; the payload's
// length, big-endian) and its payload. berth relays them untouched; it only follows where one
// ends, so that a word of its own (a session cut by a migration) goes between two frames.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace berth::proxy {

class StdcopyFrames {
 public:
  /// Follows `n` more bytes of the stream.
  void feed(const char* bytes, std::size_t n) noexcept {
    const auto* data = reinterpret_cast<const unsigned char*>(bytes);
    while (n > 0) {
      if (payload_left_ > 0) {
        const std::size_t take = n < payload_left_ ? n : static_cast<std::size_t>(payload_left_);
        payload_left_ -= take;
        data += take;
        n -= take;
        continue;
      }
      head_[head_seen_++] = *data++;
      --n;
      if (head_seen_ == sizeof head_) {
        payload_left_ = (std::uint64_t{head_[4]} << 24) | (std::uint64_t{head_[5]} << 16) |
                        (std::uint64_t{head_[6]} << 8) | std::uint64_t{head_[7]};
        head_seen_ = 0;
      }
    }
  }

  /// True between two frames: a frame of berth's own may go here.
  [[nodiscard]] bool at_boundary() const noexcept { return head_seen_ == 0 && payload_left_ == 0; }

 private:
  unsigned char head_[8] = {};
  std::size_t head_seen_ = 0;
  std::uint64_t payload_left_ = 0;
};

/// One stderr frame carrying `text`.
inline std::string stderr_frame(std::string_view text) {
  const auto n = static_cast<std::uint32_t>(text.size());
  std::string out{'\x02',
                  '\0',
                  '\0',
                  '\0',
                  static_cast<char>((n >> 24) & 0xff),
                  static_cast<char>((n >> 16) & 0xff),
                  static_cast<char>((n >> 8) & 0xff),
                  static_cast<char>(n & 0xff)};
  out += text;
  return out;
}

}  // namespace berth::proxy
