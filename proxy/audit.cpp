#include "proxy/audit.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "proxy/log.hpp"

namespace berth::proxy {

namespace {

// The length of the valid UTF-8 sequence at the start of `s`, or 0.
std::size_t utf8_length(std::string_view s) noexcept {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto cont = [&](std::size_t i) { return i < s.size() && (b(i) & 0xc0) == 0x80; };
  const unsigned char c = b(0);
  if (c < 0x80) {
    return 1;
  }
  if (c >= 0xc2 && c <= 0xdf && cont(1)) {
    return 2;
  }
  if (c >= 0xe0 && c <= 0xef && cont(1) && cont(2)) {
    const unsigned char c1 = b(1);
    if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0)) {
      return 0;  // overlong, or a UTF-16 surrogate
    }
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4 && cont(1) && cont(2) && cont(3)) {
    const unsigned char c1 = b(1);
    if ((c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 >= 0x90)) {
      return 0;
    }
    return 4;
  }
  return 0;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      std::size_t j = i + 1;
      while (j < s.size()) {
        const auto d = static_cast<unsigned char>(s[j]);
        if (d < 0x20 || d >= 0x80 || d == '"' || d == '\\') {
          break;
        }
        ++j;
      }
      out.append(s.data() + i, j - i);
      i = j;
      continue;
    }
    if (c >= 0x80) {
      const std::size_t n = utf8_length(s.substr(i));
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.data() + i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 0xf];
    }
    ++i;
  }
  out += '"';
}

AuditLog::~AuditLog() { close(); }

std::string AuditLog::open(const std::string& path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    return path + ": " + std::strerror(errno);
  }
  writer_ = std::thread([this] { run(); });
  return {};
}

bool AuditLog::write(std::string_view line) noexcept {
  if (fd_ < 0) {
    return true;
  }
  bool wake = false;
  {
    const std::lock_guard lock(mutex_);
    if (stopping_ || pending_.size() + line.size() + 1 > max_pending) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    const std::size_t before = pending_.size();
    try {
      pending_.append(line);
      pending_ += '\n';
    } catch (...) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    // Only the first line of a batch (the writer may be waiting for work) and the line that
    // fills one (the writer may be gathering) wake the writer: one wakeup per batch, not per line.
    wake = before == 0 || (before < flush_bytes && pending_.size() >= flush_bytes);
  }
  if (wake) {
    wake_.notify_one();
  }
  return true;
}

void AuditLog::run() {
  std::string batch;
  std::uint64_t reported = 0;
  auto last_report = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
    // Gather: the lines of the next gather_time (or flush_bytes of them) leave in one write.
    wake_.wait_for(lock, gather_time,
                   [this] { return stopping_ || pending_.size() >= flush_bytes; });
    batch.swap(pending_);
    const bool stop = stopping_ && batch.empty();
    lock.unlock();
    if (!batch.empty()) {
      write_all(batch);
      batches_.fetch_add(1, std::memory_order_relaxed);
    }
    batch.clear();
    const std::uint64_t dropped = dropped_.load(std::memory_order_relaxed);
    const auto now = std::chrono::steady_clock::now();
    if (dropped != reported && now - last_report >= std::chrono::seconds(1)) {
      log_error("audit log: " + std::to_string(dropped - reported) +
                " lines dropped (the queue of " + std::to_string(max_pending) +
                " bytes was full: is the disk slow?)");
      reported = dropped;
      last_report = now;
    }
    lock.lock();
    if (stop || (stopping_ && pending_.empty())) {
      return;
    }
  }
}

void AuditLog::write_all(const std::string& bytes) noexcept {
  std::size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t w = ::write(fd_, bytes.data() + off, bytes.size() - off);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) {
        continue;
      }
      return;
    }
    off += static_cast<std::size_t>(w);
  }
}

void AuditLog::close() noexcept {
  if (fd_ < 0) {
    return;
  }
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (writer_.joinable()) {
    writer_.join();
  }
  ::close(fd_);
  fd_ = -1;
}

}  // namespace berth::proxy
