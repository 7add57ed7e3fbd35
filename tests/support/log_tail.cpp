#include "tests/support/log_tail.hpp"

#include <deque>
#include <fstream>
#include <sstream>
#include <thread>

namespace berth::test {

std::string tail_lines(const std::filesystem::path& file, std::size_t n) {
  std::ifstream in(file, std::ios::binary);
  std::deque<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(std::move(line));
    if (lines.size() > n) {
      lines.pop_front();
    }
  }
  std::string out;
  for (const auto& l : lines) {
    out += l;
    out += '\n';
  }
  return out;
}

std::optional<std::vector<std::string>> wait_for_line(const std::filesystem::path& file,
                                                      const std::regex& pattern,
                                                      std::chrono::milliseconds timeout,
                                                      const std::function<bool()>& still_alive,
                                                      std::size_t skip) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Checked before reading, so a line written just before the writer exited is still seen.
    const bool alive = still_alive();
    std::ifstream in(file, std::ios::binary);
    std::string line;
    std::size_t seen = 0;
    while (std::getline(in, line)) {
      std::smatch m;
      if (std::regex_search(line, m, pattern) && seen++ >= skip) {
        std::vector<std::string> groups;
        for (const auto& g : m) {
          groups.push_back(g.str());
        }
        return groups;
      }
    }
    if (!alive || std::chrono::steady_clock::now() >= deadline) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::size_t count_lines(const std::filesystem::path& file, const std::regex& pattern) {
  std::ifstream in(file, std::ios::binary);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    n += std::regex_search(line, pattern) ? 1U : 0U;
  }
  return n;
}

}  // namespace berth::test
