// berth-node's cleaning of containerd's temporary directory after a restore
// (node/restore_mark.hpp): every dockerd on a machine unpacks checkpoints into the same one,
// and a restore still running must keep its files.

#include "node/restore_mark.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace {

// The pid of a process that has ended.
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) {
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

fs::path unpacked(const fs::path& tmp, const std::string& name, const std::string& mark) {
  const fs::path dir = tmp / name;
  fs::create_directories(dir);
  std::ofstream(dir / "core-1.img") << "pages";
  if (!mark.empty()) {
    std::ofstream(dir / berth::node::restore_mark_file) << mark << "\n";
  }
  return dir;
}

}  // namespace

TEST_CASE(
    "after a restore berth-node removes the directories containerd unpacked for it and "
    "those a node that is gone left a while ago, and never another restore's",
    "[node]") {
  std::string pattern = (fs::temp_directory_path() / "berth-mark-XXXXXX").string();
  REQUIRE(::mkdtemp(pattern.data()) != nullptr);
  const fs::path tmp = pattern;
  const std::string mark = berth::node::restore_mark("berth-17");
  const std::string gone = "berth-9 " + std::to_string(dead_pid()) + " 1";
  const std::string running = "berth-8 " + std::to_string(::getppid()) + " 1";

  const fs::path ours = unpacked(tmp, "ctrd-checkpoint1", mark + " 1");
  const fs::path ours_again = unpacked(tmp, "ctrd-checkpoint2", mark + " 2");  // a second try
  const fs::path other_node = unpacked(tmp, "ctrd-checkpoint3", running + " 1");
  const fs::path old_left = unpacked(tmp, "ctrd-checkpoint4", gone + " 1");
  fs::last_write_time(old_left, fs::file_time_type::clock::now() - std::chrono::minutes(5));
  const fs::path new_left = unpacked(tmp, "ctrd-checkpoint5", gone + " 1");
  const fs::path unmarked = unpacked(tmp, "ctrd-checkpoint6", "");  // not berth-node's restore
  const fs::path other_name = unpacked(tmp, "elsewhere", mark + " 1");
  // Another restore of the same set by this process is another mark.
  const fs::path same_set = unpacked(tmp, "ctrd-checkpoint7", mark + "9 1");

  auto found = berth::node::containerd_dirs_to_clean(tmp, mark, std::chrono::minutes(1));
  std::sort(found.begin(), found.end());
  CHECK(found == std::vector<fs::path>{ours, ours_again, old_left});
  CHECK(berth::node::restore_mark("berth-17") != mark);  // each restore its own
  CHECK(mark.starts_with("berth-17 " + std::to_string(::getpid()) + " "));
  fs::remove_all(tmp);
}
