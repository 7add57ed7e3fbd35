// Server-side cost as the kernel accounts it: CPU time (utime+stime from /proc/PID/stat,
// which includes threads that already exited) and resident memory (VmRSS from
// /proc/PID/status, Pss from /proc/PID/smaps_rollup), summed over a set of processes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace berth::bench {

/// Parses "1,2,3" into pids; returns false on anything that is not a positive number.
bool parse_pid_list(const std::string& text, std::vector<int>& out);

/// `pids` plus their direct children (nginx: master plus workers).
std::vector<int> with_children(const std::vector<int>& pids);

/// Sum of utime+stime over `pids`, in microseconds; a vanished pid counts as 0.
std::uint64_t cpu_time_us(const std::vector<int>& pids);

/// Sum of VmRSS over `pids`, in KiB.
std::uint64_t rss_kib(const std::vector<int>& pids);

/// Sum of the proportional set size (Pss in /proc/PID/smaps_rollup) over `pids`, in KiB: pages
/// shared between the processes (nginx's master and workers) count once in the sum.
std::uint64_t pss_kib(const std::vector<int>& pids);

}  // namespace berth::bench
