#include "proxy/audit.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace berth::proxy {

AuditLog::~AuditLog() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

std::string AuditLog::open(const std::string& path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    return path + ": " + std::strerror(errno);
  }
  return {};
}

void AuditLog::write(std::string_view line) noexcept {
  if (fd_ < 0) {
    return;
  }
  std::string buffer(line);
  buffer += '\n';
  std::size_t off = 0;
  while (off < buffer.size()) {
    const ssize_t w = ::write(fd_, buffer.data() + off, buffer.size() - off);
    if (w <= 0) {
      if (w < 0 && errno == EINTR) {
        continue;
      }
      return;
    }
    off += static_cast<std::size_t>(w);
  }
}

}  // namespace berth::proxy
