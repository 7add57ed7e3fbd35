#pragma once
// Operational log: one line per event on stderr, written with a single write(2) so lines from
// worker threads never interleave.

#include <string_view>

namespace berth::proxy {

enum class LogLevel { info, warn, error };

void log_line(LogLevel level, std::string_view message) noexcept;

inline void log_info(std::string_view m) noexcept { log_line(LogLevel::info, m); }
inline void log_warn(std::string_view m) noexcept { log_line(LogLevel::warn, m); }
inline void log_error(std::string_view m) noexcept { log_line(LogLevel::error, m); }

}  // namespace berth::proxy
