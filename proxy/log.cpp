#include "proxy/log.hpp"

#include <unistd.h>

#include <chrono>
#include <ctime>
#include <string>

namespace berth::proxy {

void log_line(LogLevel level, std::string_view message) noexcept {
  try {
    const auto now = std::chrono::system_clock::now();
    const auto t = std::chrono::system_clock::to_time_t(now);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[64];
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    std::string line = stamp;
    line += level == LogLevel::info ? " info " : level == LogLevel::warn ? " warn " : " error ";
    line += message;
    line += '\n';
    std::size_t off = 0;
    while (off < line.size()) {
      const ssize_t w = ::write(STDERR_FILENO, line.data() + off, line.size() - off);
      if (w <= 0) {
        break;
      }
      off += static_cast<std::size_t>(w);
    }
  } catch (...) {
    // Logging must never take a session down.
  }
}

}  // namespace berth::proxy
