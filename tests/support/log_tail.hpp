#pragma once
// Reading a child's log file: the last lines for a failure report (moby's TailLogsT), and a
// bounded poll for a line such as "berth-proxy: ready on port N" (never a fixed sleep).

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace berth::test {

/// The last `n` lines of `file` (fewer if it is shorter; empty if it cannot be read).
[[nodiscard]] std::string tail_lines(const std::filesystem::path& file, std::size_t n);

/// Polls `file` until one of its lines matches `pattern` and returns the match's groups
/// ([0] is the whole match), or
/// nullopt after `timeout`, or as soon as `still_alive` returns false (the writer died).
/// As wait_for_line, but ignores the first `skip` matching lines (those already there before
/// the event awaited).
[[nodiscard]] std::optional<std::vector<std::string>> wait_for_line(
    const std::filesystem::path& file, const std::regex& pattern, std::chrono::milliseconds timeout,
    const std::function<bool()>& still_alive, std::size_t skip = 0);

/// How many lines of `file` match `pattern` now.
[[nodiscard]] std::size_t count_lines(const std::filesystem::path& file, const std::regex& pattern);

}  // namespace berth::test
