#pragma once
// The audit log: one JSON line per request (allowed or refused) with who, what, the endpoint
// class, the decision and the rule that made it, the status, bytes each way and the duration.
// Never a request body, an environment value or a registry credential.
//
// Workers never write: a request's line is queued (a short lock, an append) and one writer
// thread appends whatever is queued with one write(2) (O_APPEND), so the cost per request is a
// string append, not a system call (a write per request cost 10% of /_ping throughput). The
// writer gathers for gather_time after a batch's first line (or until flush_bytes are queued)
// and only that first line, or the one that fills a batch, wakes it: waking it for every line
// that found the queue empty cost a futex wake, a context switch and a write per request at
// full load, 12% of /_ping throughput in the bench, as much as writing in the worker. The
// queue is bounded: past max_pending bytes a line is dropped and counted (the writer logs how
// many, at most once a second), so a slow disk cannot grow the proxy's memory. close() writes
// everything queued before it returns: nothing is lost on SIGTERM.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace berth::proxy {

class AuditLog {
 public:
  AuditLog() = default;
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  /// Opens (creating, mode 0600) the file to append to and starts the writer; returns an error
  /// text on failure.
  [[nodiscard]] std::string open(const std::string& path);
  [[nodiscard]] bool enabled() const noexcept { return fd_ >= 0; }
  /// Queues one line (without its newline). False when the queue was full and the line was
  /// dropped.
  bool write(std::string_view line) noexcept;
  /// Writes what is queued and stops the writer.
  void close() noexcept;
  [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_.load(); }
  /// How many batches (writes of what was queued) the writer has made.
  [[nodiscard]] std::uint64_t batches() const noexcept { return batches_.load(); }

  static constexpr std::size_t max_pending = 8 * 1024 * 1024;
  static constexpr std::size_t flush_bytes = 256 * 1024;
  static constexpr std::chrono::milliseconds gather_time{20};

 private:
  void run();
  void write_all(const std::string& bytes) noexcept;

  int fd_ = -1;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::string pending_;  // guarded by mutex_
  bool stopping_ = false;  // guarded by mutex_
  std::thread writer_;
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> batches_{0};
};

/// Appends `s` to `out` as a JSON string token; bytes that are not valid UTF-8 become U+FFFD
/// (an audit line stays valid JSON whatever a client sent).
void append_json_string(std::string& out, std::string_view s);

}  // namespace berth::proxy
