#pragma once
// Reading usage straight from the kernel's cgroup files: where the hierarchies are (cgroup v1,
// hybrid or v2), where tenants and containers live in them, and what their counters say.
// Only the layout agreed with the proxy is followed: a tenant's containers under the absolute
// parent /berth/<tenant> (cgroupfs driver) or berth.slice/berth-<tenant>.slice (systemd
// driver); containers elsewhere are "loose" and billed one by one. Directory names that are not
// valid tenant ids or container ids are ignored, so nothing in the tree can invent a tenant
// ("../x", uppercase, dots).
//
// Files are opened once and re-read with pread(2) (kernfs regenerates the text on every read
// at offset 0): opening is most of the cost of a read on cgroupfs.

#include <sys/types.h>

#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metering/fd.hpp"
#include "metering/ledger.hpp"

namespace berth::metering {

enum class CgroupVersion { v1, v2 };

struct CgroupLayout {
  CgroupVersion version = CgroupVersion::v2;
  std::filesystem::path cpu;     ///< v1: the cpuacct hierarchy; v2: the unified root
  std::filesystem::path memory;  ///< v1: the memory hierarchy; v2: the unified root
  std::filesystem::path blkio;   ///< v1: the blkio hierarchy; v2: the unified root; empty: none
  std::filesystem::path events;  ///< where cgroup.events files are (v2 root, or v1's hybrid
                                 ///< "unified" mount); empty: no populated notifications
};

/// Finds the hierarchies under `root` (normally /sys/fs/cgroup). v2 when `root` itself is a
/// cgroup2 mount (it has cgroup.controllers); otherwise v1 with cpuacct and memory required.
[[nodiscard]] std::expected<CgroupLayout, std::string> detect_layout(
    const std::filesystem::path& root);

/// A tenant's aggregate cgroup, relative to each hierarchy's root.
struct TenantCgroup {
  std::string tenant;
  std::string rel;
};

/// A container's cgroup. `parent_tenant` is set when it sits under a tenant's aggregate.
struct ContainerCgroup {
  std::string id;  ///< 64 lowercase hex digits
  std::string rel;
  std::string parent_tenant;
};

struct TreeScan {
  std::vector<TenantCgroup> tenants;
  std::vector<ContainerCgroup> containers;
};

/// Lists tenants and containers in the cpu hierarchy: berth/<tenant>/<id>,
/// berth.slice/berth-<tenant>.slice/docker-<id>.scope, and loose containers in docker/<id>,
/// system.slice/docker-<id>.scope and each of `extra_parents` (relative paths of custom
/// cgroup parents that dockerd reported).
[[nodiscard]] TreeScan scan_tree(const CgroupLayout& layout,
                                 std::span<const std::string> extra_parents = {});

/// The tenant id for a systemd slice name "berth-<escaped>.slice" ("\x2d" is '-'), or nullopt.
[[nodiscard]] std::optional<std::string> tenant_from_slice(std::string_view name);
/// The container id in "<id>" or "docker-<id>.scope", or nullopt.
[[nodiscard]] std::optional<std::string> container_from_dir(std::string_view name);

// Parsers for the kernel's text formats (pure, exposed for tests).

/// A decimal number alone on the first line ("123\n").
[[nodiscard]] std::optional<std::uint64_t> parse_u64(std::string_view text);
/// The value of "<key> <value>" in a flat keyed file (memory.stat, cpu.stat).
[[nodiscard]] std::optional<std::uint64_t> parse_keyed(std::string_view text, std::string_view key);
struct ReadWrite {
  std::uint64_t read = 0;
  std::uint64_t write = 0;
};
/// blkio.throttle.io_service_bytes[_recursive] (v1): "8:0 Read N" lines, summed over devices.
[[nodiscard]] ReadWrite parse_blkio_v1(std::string_view text);
/// io.stat (v2): "8:0 rbytes=N wbytes=N ..." lines, summed over devices.
[[nodiscard]] ReadWrite parse_io_stat_v2(std::string_view text);
/// /proc/<pid>/net/dev: received and transmitted bytes of every interface but lo.
[[nodiscard]] ReadWrite parse_net_dev(std::string_view text);
/// "populated 0|1" in cgroup.events; nullopt if absent.
[[nodiscard]] std::optional<bool> parse_populated(std::string_view text);

/// Working set = usage minus inactive file pages (what the kernel would reclaim first). Not
/// "usage minus cache": that would not bill memory held in tmpfs or /dev/shm.
[[nodiscard]] constexpr std::uint64_t working_set(std::uint64_t usage,
                                                  std::uint64_t inactive_file) noexcept {
  return usage > inactive_file ? usage - inactive_file : 0;
}

/// Opens `path` read-only; an invalid Fd and errno on failure.
[[nodiscard]] Fd open_read(const std::filesystem::path& path);
/// Re-reads an open kernel file from offset 0 into `out`. Returns 0 or an errno value.
[[nodiscard]] int reread(const Fd& fd, std::string& out);

/// Open files of one cgroup, re-read at every scan.
class CgroupReader {
 public:
  /// Opens the counter files of `rel` in every hierarchy. Fails with an errno value: ENOENT
  /// when the cgroup does not exist (any more).
  [[nodiscard]] static std::expected<CgroupReader, int> open(const CgroupLayout& layout,
                                                            const std::string& rel, bool with_io);

  /// CPU, working set and (if opened with_io) block I/O. ENODEV or ENOENT: the cgroup is gone.
  /// With `detail` false only the CPU and memory usage counters are read: the inactive-file
  /// figure of the previous detailed read is reused (memory.stat costs ~6 us of the kernel's
  /// printf per read on cgroup v1, three quarters of a container's cost, and inactive file
  /// pages change slowly), and block I/O is left out (has_blk false).
  [[nodiscard]] std::expected<Reading, int> read(bool detail = true);

  /// The cpu hierarchy directory's inode number: a recreated cgroup has a new one.
  [[nodiscard]] std::uint64_t generation() const noexcept { return generation_; }
  /// The first process in the cgroup, or nullopt when it has none (yet, or any more).
  [[nodiscard]] std::optional<pid_t> first_pid() const;

 private:
  CgroupVersion version_ = CgroupVersion::v2;
  std::uint64_t generation_ = 0;
  std::filesystem::path procs_;
  Fd cpu_;
  Fd mem_usage_;
  Fd mem_stat_;
  Fd blk_;
  std::optional<std::uint64_t> inactive_file_;
  std::string buf_;
};

/// A container's network counters, read from its init process's /proc/<pid>/net/dev. The open
/// file holds the namespace, so the final counters stay readable after the process exits.
class NetReader {
 public:
  /// nullopt when the process is gone or shares the host's network namespace (`host_netns`
  /// is the inode of /proc/self/ns/net). `netns` receives the namespace's inode.
  [[nodiscard]] static std::optional<NetReader> open(pid_t pid, std::uint64_t host_netns,
                                                     std::uint64_t& netns);
  [[nodiscard]] std::optional<ReadWrite> read();

 private:
  Fd dev_;
  std::string buf_;
};

/// The inode of this process's network namespace.
[[nodiscard]] std::uint64_t own_netns_inode();

}  // namespace berth::metering
