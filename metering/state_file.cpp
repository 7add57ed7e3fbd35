#include "metering/state_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "metering/fd.hpp"

namespace berth::metering {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view format_tag = "berth-meter-state/1";

std::string errno_text(const std::string& what) { return what + ": " + std::generic_category().message(errno); }

}  // namespace

std::string encode_state(const MeterState& state) {
  nlohmann::json doc = {{"format", format_tag},
                        {"boot_id", state.boot_id},
                        {"saved_unix_ms", state.saved_unix_ms},
                        {"ledger", state.ledger.to_json()}};
  return doc.dump() + "\n";
}

std::expected<MeterState, std::string> decode_state(std::string_view text) {
  const auto doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return std::unexpected("not a JSON object");
  }
  if (doc.value("format", std::string()) != format_tag) {
    return std::unexpected("unknown format (expected " + std::string(format_tag) + ")");
  }
  MeterState state;
  const auto boot = doc.find("boot_id");
  const auto saved = doc.find("saved_unix_ms");
  const auto ledger = doc.find("ledger");
  if (boot == doc.end() || !boot->is_string() || saved == doc.end() ||
      !saved->is_number_integer() || ledger == doc.end()) {
    return std::unexpected("boot_id, saved_unix_ms and ledger are required");
  }
  state.boot_id = boot->get<std::string>();
  state.saved_unix_ms = saved->get<std::int64_t>();
  auto l = Ledger::from_json(*ledger);
  if (!l) {
    return std::unexpected(l.error());
  }
  state.ledger = std::move(*l);
  return state;
}

std::expected<void, std::string> write_file_atomically(const fs::path& path,
                                                       std::string_view content) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const fs::path tmp = path.string() + ".tmp";
  {
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!fd) {
      return std::unexpected(errno_text("open " + tmp.string()));
    }
    while (!content.empty()) {
      const ssize_t n = ::write(fd.get(), content.data(), content.size());
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return std::unexpected(errno_text("write " + tmp.string()));
      }
      content.remove_prefix(static_cast<std::size_t>(n));
    }
    // The data must be on disk before the rename makes it the state, or a crash could leave
    // a renamed but empty file.
    if (::fsync(fd.get()) != 0) {
      return std::unexpected(errno_text("fsync " + tmp.string()));
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return std::unexpected(errno_text("rename to " + path.string()));
  }
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd || ::fsync(dfd.get()) != 0) {
    return std::unexpected(errno_text("fsync " + dir.string()));
  }
  return {};
}

std::expected<std::optional<MeterState>, std::string> load_state(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    if (ec) {
      return std::unexpected(path.string() + ": " + ec.message());
    }
    return std::optional<MeterState>{};
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::unexpected(errno_text("open " + path.string()));
  }
  std::ostringstream text;
  text << in.rdbuf();
  auto state = decode_state(text.str());
  if (!state) {
    return std::unexpected(path.string() + ": " + state.error());
  }
  return std::optional<MeterState>(std::move(*state));
}

std::string current_boot_id() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

}  // namespace berth::metering
