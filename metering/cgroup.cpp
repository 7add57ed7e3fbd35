#include "metering/cgroup.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "policy/vocabulary.hpp"

namespace berth::metering {
namespace fs = std::filesystem;
namespace {

bool path_exists(const fs::path& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0;
}

bool is_hex_id(std::string_view s) {
  if (s.size() != 64) {
    return false;
  }
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

/// Names of the subdirectories of `dir` (none if it cannot be read).
std::vector<std::string> subdirs(const fs::path& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return out;
  }
  while (const dirent* e = ::readdir(d)) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.') {
      continue;
    }
    out.emplace_back(e->d_name);
  }
  ::closedir(d);
  return out;
}

void add_containers(const fs::path& hierarchy, const std::string& parent_rel,
                    const std::string& tenant, std::vector<ContainerCgroup>& out) {
  for (const std::string& name : subdirs(hierarchy / parent_rel)) {
    if (auto id = container_from_dir(name)) {
      out.push_back({std::move(*id), parent_rel + "/" + name, tenant});
    }
  }
}

std::uint64_t inode_of(const fs::path& p) {
  struct stat st{};
  if (::stat(p.c_str(), &st) != 0) {
    return 0;
  }
  return st.st_ino;
}

/// The integer after `key` in text "key=value"-style tokens; 0 if absent.
std::uint64_t token_value(std::string_view line, std::string_view key) {
  const auto pos = line.find(key);
  if (pos == std::string_view::npos) {
    return 0;
  }
  const char* first = line.data() + pos + key.size();
  std::uint64_t v = 0;
  std::from_chars(first, line.data() + line.size(), v);
  return v;
}

}  // namespace

Fd open_read(const fs::path& path) { return Fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)); }

int reread(const Fd& fd, std::string& out) {
  // resize_and_overwrite: no zero-filling of the buffer on every read (it showed in profiles).
  std::size_t size = out.capacity() < 4096 ? 4096 : out.capacity();
  for (;;) {
    int err = 0;
    bool complete = false;
    out.resize_and_overwrite(size, [&](char* p, std::size_t n) -> std::size_t {
      std::size_t used = 0;
      for (;;) {
        const ssize_t r = ::pread(fd.get(), p + used, n - used, static_cast<off_t>(used));
        if (r < 0) {
          if (errno == EINTR) {
            continue;
          }
          err = errno;
          return 0;
        }
        used += static_cast<std::size_t>(r);
        // seq_file fills the buffer unless the text ended, so a short read is the whole text.
        if (r == 0 || used < n) {
          complete = true;
          return used;
        }
        return used;
      }
    });
    if (err != 0) {
      out.clear();
      return err;
    }
    if (complete) {
      return 0;
    }
    size *= 2;  // the text filled the buffer: read it again, whole, into a larger one
  }
}

std::expected<CgroupLayout, std::string> detect_layout(const fs::path& root) {
  CgroupLayout layout;
  if (path_exists(root / "cgroup.controllers")) {
    layout.version = CgroupVersion::v2;
    layout.cpu = layout.memory = layout.blkio = layout.events = root;
    return layout;
  }
  layout.version = CgroupVersion::v1;
  for (const char* name : {"cpuacct", "cpu,cpuacct", "cpuacct,cpu"}) {
    if (path_exists(root / name / "cpuacct.usage")) {
      layout.cpu = root / name;
      break;
    }
  }
  if (layout.cpu.empty()) {
    return std::unexpected("no cgroup v2 mount and no cpuacct hierarchy under " + root.string());
  }
  if (!path_exists(root / "memory" / "memory.usage_in_bytes")) {
    return std::unexpected("no memory hierarchy under " + root.string());
  }
  layout.memory = root / "memory";
  if (path_exists(root / "blkio" / "blkio.throttle.io_service_bytes")) {
    layout.blkio = root / "blkio";
  }
  if (path_exists(root / "unified" / "cgroup.controllers")) {
    layout.events = root / "unified";
  }
  return layout;
}

std::optional<std::string> tenant_from_slice(std::string_view name) {
  return vocabulary::tenant_of_slice(name);
}

std::optional<std::string> container_from_dir(std::string_view name) {
  if (name.starts_with("docker-") && name.ends_with(".scope")) {
    name.remove_prefix(7);
    name.remove_suffix(6);
  }
  if (!is_hex_id(name)) {
    return std::nullopt;
  }
  return std::string(name);
}

TreeScan scan_tree(const CgroupLayout& layout, std::span<const std::string> extra_parents) {
  TreeScan scan;
  const fs::path& h = layout.cpu;
  for (const std::string& name : subdirs(h / std::string(vocabulary::cgroupfs_root))) {
    if (!vocabulary::is_valid_tenant_id(name)) {
      continue;
    }
    const std::string rel = std::string(vocabulary::cgroupfs_root) + "/" + name;
    scan.tenants.push_back({name, rel});
    add_containers(h, rel, name, scan.containers);
  }
  for (const std::string& name : subdirs(h / std::string(vocabulary::slice_root))) {
    if (auto tenant = tenant_from_slice(name)) {
      const std::string rel = std::string(vocabulary::slice_root) + "/" + name;
      scan.tenants.push_back({*tenant, rel});
      add_containers(h, rel, *tenant, scan.containers);
    }
  }
  add_containers(h, "docker", "", scan.containers);
  add_containers(h, "system.slice", "", scan.containers);
  for (const std::string& parent : extra_parents) {
    if (parent.empty() || parent == "docker" || parent == "system.slice" ||
        parent.starts_with(std::string(vocabulary::cgroupfs_root) + "/") ||
        parent.starts_with(std::string(vocabulary::slice_root) + "/")) {
      continue;
    }
    add_containers(h, parent, "", scan.containers);
  }
  return scan;
}

std::optional<std::uint64_t> parse_u64(std::string_view text) {
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || ptr == text.data()) {
    return std::nullopt;
  }
  return v;
}

std::optional<std::uint64_t> parse_keyed(std::string_view text, std::string_view key) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto eol = text.find('\n', pos);
    const std::string_view line =
        text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    if (line.size() > key.size() && line.starts_with(key) && line[key.size()] == ' ') {
      return parse_u64(line.substr(key.size() + 1));
    }
    if (eol == std::string_view::npos) {
      break;
    }
    pos = eol + 1;
  }
  return std::nullopt;
}

ReadWrite parse_blkio_v1(std::string_view text) {
  ReadWrite rw;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto eol = text.find('\n', pos);
    if (eol == std::string_view::npos) {
      eol = text.size();
    }
    const std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    // "8:0 Read 4096"; the final "Total N" line has no device.
    const auto sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || line.substr(0, sp1).find(':') == std::string_view::npos) {
      continue;
    }
    const auto sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) {
      continue;
    }
    const std::string_view op = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const auto v = parse_u64(line.substr(sp2 + 1)).value_or(0);
    if (op == "Read") {
      rw.read += v;
    } else if (op == "Write") {
      rw.write += v;
    }
  }
  return rw;
}

ReadWrite parse_io_stat_v2(std::string_view text) {
  ReadWrite rw;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto eol = text.find('\n', pos);
    if (eol == std::string_view::npos) {
      eol = text.size();
    }
    const std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    rw.read += token_value(line, " rbytes=");
    rw.write += token_value(line, " wbytes=");
  }
  return rw;
}

ReadWrite parse_net_dev(std::string_view text) {
  ReadWrite rw;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto eol = text.find('\n', pos);
    if (eol == std::string_view::npos) {
      eol = text.size();
    }
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) {
      continue;  // the two header lines
    }
    std::string_view iface = line.substr(0, colon);
    while (!iface.empty() && iface.front() == ' ') {
      iface.remove_prefix(1);
    }
    if (iface == "lo") {
      continue;
    }
    line.remove_prefix(colon + 1);
    // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes ...
    std::uint64_t fields[9] = {};
    std::size_t n = 0;
    const char* p = line.data();
    const char* end = line.data() + line.size();
    while (n < 9 && p < end) {
      while (p < end && *p == ' ') {
        ++p;
      }
      const auto [next, ec] = std::from_chars(p, end, fields[n]);
      if (ec != std::errc{}) {
        break;
      }
      p = next;
      ++n;
    }
    if (n == 9) {
      rw.read += fields[0];
      rw.write += fields[8];
    }
  }
  return rw;
}

std::optional<bool> parse_populated(std::string_view text) {
  if (const auto v = parse_keyed(text, "populated")) {
    return *v != 0;
  }
  return std::nullopt;
}

std::expected<CgroupReader, int> CgroupReader::open(const CgroupLayout& layout,
                                                    const std::string& rel, bool with_io) {
  CgroupReader r;
  r.version_ = layout.version;
  const fs::path cpu_dir = layout.cpu / rel;
  const fs::path mem_dir = layout.memory / rel;
  r.generation_ = inode_of(cpu_dir);
  if (r.generation_ == 0) {
    return std::unexpected(ENOENT);
  }
  r.procs_ = cpu_dir / "cgroup.procs";
  if (layout.version == CgroupVersion::v1) {
    r.cpu_ = open_read(cpu_dir / "cpuacct.usage");
    r.mem_usage_ = open_read(mem_dir / "memory.usage_in_bytes");
    r.mem_stat_ = open_read(mem_dir / "memory.stat");
  } else {
    r.cpu_ = open_read(cpu_dir / "cpu.stat");
    r.mem_usage_ = open_read(mem_dir / "memory.current");
    r.mem_stat_ = open_read(mem_dir / "memory.stat");
  }
  if (!r.cpu_ || !r.mem_usage_ || !r.mem_stat_) {
    return std::unexpected(errno == 0 ? ENOENT : errno);
  }
  if (with_io && !layout.blkio.empty()) {
    const fs::path blk_dir = layout.blkio / rel;
    if (layout.version == CgroupVersion::v1) {
      r.blk_ = open_read(blk_dir / "blkio.throttle.io_service_bytes_recursive");
      if (!r.blk_) {
        r.blk_ = open_read(blk_dir / "blkio.throttle.io_service_bytes");
      }
    } else {
      r.blk_ = open_read(blk_dir / "io.stat");
    }
  }
  r.buf_.reserve(8192);
  return r;
}

std::expected<Reading, int> CgroupReader::read(bool detail) {
  Reading reading;
  if (const int err = reread(cpu_, buf_)) {
    return std::unexpected(err);
  }
  const auto cpu = version_ == CgroupVersion::v1 ? parse_u64(buf_) : parse_keyed(buf_, "usage_usec");
  if (!cpu) {
    return std::unexpected(EINVAL);
  }
  reading.cpu_ns = version_ == CgroupVersion::v1 ? *cpu : *cpu * 1000;
  if (const int err = reread(mem_usage_, buf_)) {
    return std::unexpected(err);
  }
  const auto usage = parse_u64(buf_);
  if (detail || !inactive_file_) {
    if (const int err = reread(mem_stat_, buf_)) {
      return std::unexpected(err);
    }
    inactive_file_ = parse_keyed(
        buf_, version_ == CgroupVersion::v1 ? "total_inactive_file" : "inactive_file");
  }
  if (!usage || !inactive_file_) {
    return std::unexpected(EINVAL);
  }
  reading.working_set_bytes = working_set(*usage, *inactive_file_);
  if (blk_ && detail) {
    if (reread(blk_, buf_) == 0) {
      const ReadWrite rw =
          version_ == CgroupVersion::v1 ? parse_blkio_v1(buf_) : parse_io_stat_v2(buf_);
      reading.has_blk = true;
      reading.blk_read_bytes = rw.read;
      reading.blk_write_bytes = rw.write;
    }
  }
  return reading;
}

std::optional<pid_t> CgroupReader::first_pid() const {
  const Fd fd = open_read(procs_);
  if (!fd) {
    return std::nullopt;
  }
  std::string text;
  if (reread(fd, text) != 0) {
    return std::nullopt;
  }
  const auto pid = parse_u64(text);
  if (!pid || *pid == 0) {
    return std::nullopt;
  }
  return static_cast<pid_t>(*pid);
}

std::optional<NetReader> NetReader::open(pid_t pid, std::uint64_t host_netns,
                                         std::uint64_t& netns) {
  const fs::path proc = fs::path("/proc") / std::to_string(pid);
  NetReader r;
  r.dev_ = open_read(proc / "net" / "dev");
  if (!r.dev_) {
    return std::nullopt;
  }
  // Checked after opening: the open file pins the namespace it shows, and a pid reused in
  // between would show up as the host's namespace or a different one.
  netns = inode_of(proc / "ns" / "net");
  if (netns == 0 || netns == host_netns) {
    return std::nullopt;
  }
  r.buf_.reserve(4096);
  return r;
}

std::optional<ReadWrite> NetReader::read() {
  if (reread(dev_, buf_) != 0) {
    return std::nullopt;
  }
  return parse_net_dev(buf_);
}

std::uint64_t own_netns_inode() { return inode_of("/proc/self/ns/net"); }

}  // namespace berth::metering
