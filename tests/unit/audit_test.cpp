// The audit log's writer: lines queued by workers, written by one thread, nothing lost at close,
// valid JSON whatever a client sent.

#include "proxy/audit.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

std::filesystem::path temp_file(const char* name) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("berth-audit-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove(dir);
  return dir;
}

std::vector<std::string> lines_of(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    out.push_back(line);
  }
  return out;
}

}  // namespace

TEST_CASE("every line queued by concurrent workers is in the file once close returns",
          "[proxy][audit]") {
  const auto file = temp_file("close");
  berth::proxy::AuditLog log;
  REQUIRE(log.open(file.string()).empty());
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&log, w] {
      for (int i = 0; i < 2500; ++i) {
        CHECK(log.write("{\"worker\":" + std::to_string(w) + ",\"i\":" + std::to_string(i) + "}"));
      }
    });
  }
  for (auto& t : workers) {
    t.join();
  }
  log.close();
  const auto lines = lines_of(file);
  CHECK(lines.size() == 10000);
  for (const auto& line : lines) {
    CHECK(nlohmann::json::accept(line));
  }
  CHECK(log.dropped() == 0);
  std::filesystem::remove(file);
}

TEST_CASE("lines queued one at a time at a steady rate reach the file in batches, each soon",
          "[proxy][audit]") {
  const auto file = temp_file("steady");
  berth::proxy::AuditLog log;
  REQUIRE(log.open(file.string()).empty());
  // 200 lines over about 200 ms: a writer woken by each line that found the queue empty would
  // write about once per line; a gathering one at most once per gather_time.
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) {
    CHECK(log.write("{\"i\":" + std::to_string(i) + "}"));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  // Without close: the last line is in the file within a bounded time.
  std::size_t seen = 0;
  for (int i = 0; i < 100 && seen < 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    seen = lines_of(file).size();
  }
  CHECK(seen == 200);
  // However slowly this machine ran the loop: one batch per gather_time, and one to end.
  const auto most = static_cast<std::uint64_t>(elapsed / berth::proxy::AuditLog::gather_time) + 2;
  INFO("batches: " << log.batches() << ", at most " << most);
  CHECK(log.batches() <= most);
  log.close();
  std::filesystem::remove(file);
}

TEST_CASE("a full queue drops lines and counts them instead of growing", "[proxy][audit]") {
  const auto file = temp_file("full");
  berth::proxy::AuditLog log;
  REQUIRE(log.open(file.string()).empty());
  // Lines larger than the whole queue can never fit.
  const std::string huge(berth::proxy::AuditLog::max_pending, 'x');
  CHECK_FALSE(log.write(huge));
  CHECK(log.dropped() == 1);
  CHECK(log.write("{}"));
  log.close();
  CHECK(lines_of(file) == std::vector<std::string>{"{}"});
  std::filesystem::remove(file);
}

TEST_CASE("audit text is valid JSON whatever bytes a client sent", "[proxy][audit]") {
  const std::string hostile = std::string("a\"b\\c\n\x01\x7f") + "\xff\xfe" + "\xe2\x82\xac" +
                              "\xed\xa0\x80" + "\xc0\xaf";
  std::string out;
  berth::proxy::append_json_string(out, hostile);
  REQUIRE(nlohmann::json::accept(out));
  const auto back = nlohmann::json::parse(out).get<std::string>();
  CHECK(back.find("\xe2\x82\xac") != std::string::npos);  // valid UTF-8 kept
  CHECK(back.find("a\"b\\c\n\x01") == 0);
  CHECK(back.find("\xff") == std::string::npos);           // invalid bytes replaced
}
