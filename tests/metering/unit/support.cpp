#include "tests/metering/unit/support.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace berth::metering::test {

TempTree::TempTree() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/berth-meter-ut-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed");
  }
  path_ = pattern;
}

TempTree::~TempTree() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void put(const std::filesystem::path& file, std::string_view content) {
  std::filesystem::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) {
    throw std::runtime_error("cannot write " + file.string());
  }
}

std::string container_id(int n) {
  char buf[65];
  std::snprintf(buf, sizeof buf, "%064x", n);
  return buf;
}

void fake_v2_cgroup(const std::filesystem::path& root, const std::string& rel,
                    std::uint64_t usage_usec, std::uint64_t memory_current,
                    std::uint64_t inactive_file) {
  const auto dir = root / rel;
  put(dir / "cpu.stat", "usage_usec " + std::to_string(usage_usec) +
                            "\nuser_usec 1\nsystem_usec 2\nnr_periods 0\n");
  put(dir / "memory.current", std::to_string(memory_current) + "\n");
  put(dir / "memory.stat", "anon 4096\nfile 8192\nactive_anon 0\ninactive_anon 0\n"
                           "active_file 10\ninactive_file " +
                               std::to_string(inactive_file) + "\nshmem 0\n");
  put(dir / "io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n"
                       "8:16 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n");
  put(dir / "cgroup.procs", "");
  put(dir / "cgroup.events", "populated 1\nfrozen 0\n");
}

}  // namespace berth::metering::test
