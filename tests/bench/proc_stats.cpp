#include "tests/bench/proc_stats.hpp"

#include <unistd.h>
#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>

namespace berth::bench {

namespace {

// Fields of /proc/PID/stat after the command name, which may itself contain spaces and ')'.
std::vector<std::string> stat_fields(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) {
    return {};
  }
  const auto close = line.rfind(')');
  if (close == std::string::npos) {
    return {};
  }
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  std::string field;
  while (rest >> field) {
    fields.push_back(field);
  }
  return fields;  // fields[0] is field 3 (state)
}

std::uint64_t to_u64(std::string_view s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

}  // namespace

bool parse_pid_list(const std::string& text, std::vector<int>& out) {
  std::string_view rest(text);
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const auto item = rest.substr(0, comma);
    int pid = 0;
    const auto [ptr, err] = std::from_chars(item.data(), item.data() + item.size(), pid);
    if (err != std::errc{} || ptr != item.data() + item.size() || pid <= 0) {
      return false;
    }
    out.push_back(pid);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }
  return true;
}

std::vector<int> with_children(const std::vector<int>& pids) {
  std::vector<int> all = pids;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename().string();
    int pid = 0;
    const auto [ptr, err] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (err != std::errc{} || ptr != name.data() + name.size()) {
      continue;
    }
    const auto fields = stat_fields(pid);
    if (fields.size() < 2) {
      continue;
    }
    const int ppid = static_cast<int>(to_u64(fields[1]));
    if (std::find(pids.begin(), pids.end(), ppid) != pids.end() &&
        std::find(all.begin(), all.end(), pid) == all.end()) {
      all.push_back(pid);
    }
  }
  return all;
}

std::uint64_t cpu_time_us(const std::vector<int>& pids) {
  static const long ticks_per_second = sysconf(_SC_CLK_TCK);
  std::uint64_t ticks = 0;
  for (const int pid : pids) {
    const auto fields = stat_fields(pid);
    if (fields.size() > 12) {
      ticks += to_u64(fields[11]) + to_u64(fields[12]);  // utime (14), stime (15)
    }
  }
  return ticks * 1'000'000 / static_cast<std::uint64_t>(ticks_per_second);
}

namespace {

// The KiB figure of the first line of /proc/PID/<file> that starts with `key`, summed over pids.
std::uint64_t sum_kib(const std::vector<int>& pids, const char* file, std::string_view key) {
  std::uint64_t total = 0;
  for (const int pid : pids) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
    std::string line;
    while (std::getline(in, line)) {
      if (line.starts_with(key)) {
        std::istringstream fields(line.substr(key.size()));
        std::uint64_t kib = 0;
        fields >> kib;
        total += kib;
        break;
      }
    }
  }
  return total;
}

}  // namespace

std::uint64_t rss_kib(const std::vector<int>& pids) { return sum_kib(pids, "status", "VmRSS:"); }

std::uint64_t pss_kib(const std::vector<int>& pids) {
  return sum_kib(pids, "smaps_rollup", "Pss:");
}

}  // namespace berth::bench
