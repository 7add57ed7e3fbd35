#include "node/restore_mark.hpp"

#include <cerrno>
#include <fstream>
#include <sstream>

#include <signal.h>
#include <unistd.h>

namespace berth::node {

namespace fs = std::filesystem;

namespace {

// Whether `mark` names a process that no longer exists.
bool marked_by_dead_process(const std::string& mark) {
  std::istringstream words(mark);
  std::string set;
  pid_t pid = 0;
  if (!(words >> set >> pid) || pid <= 0) {
    return false;
  }
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

}  // namespace

std::string restore_mark(const std::string& set) {
  return set + " " + std::to_string(::getpid()) + " " +
         std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
}

std::vector<fs::path> containerd_dirs_to_clean(const fs::path& tmp, const std::string& mark,
                                               std::chrono::seconds stale) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(tmp, ec)) {
    if (!e.path().filename().string().starts_with("ctrd-checkpoint")) {
      continue;
    }
    std::ifstream in(e.path() / restore_mark_file);
    std::string line;
    if (!std::getline(in, line)) {
      continue;  // not a restore berth-node marked
    }
    if (line.starts_with(mark + " ")) {
      out.push_back(e.path());
      continue;
    }
    std::error_code when;
    const auto written = fs::last_write_time(e.path(), when);
    if (!when && marked_by_dead_process(line) &&
        fs::file_time_type::clock::now() - written >= stale) {
      out.push_back(e.path());
    }
  }
  return out;
}

}  // namespace berth::node
