#pragma once
// The audit log: one JSON line per request (allowed or refused) with who, what, the endpoint
// class, the decision and the rule that made it, the status, bytes each way and the duration.
// Never a request body, an environment value or a registry credential. Lines are appended
// with one write(2) each (O_APPEND), so workers never interleave.

#include <string>
#include <string_view>

namespace berth::proxy {

class AuditLog {
 public:
  AuditLog() = default;
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  /// Opens (creating, mode 0600) the file to append to; returns an error text on failure.
  [[nodiscard]] std::string open(const std::string& path);
  [[nodiscard]] bool enabled() const noexcept { return fd_ >= 0; }
  void write(std::string_view line) noexcept;

 private:
  int fd_ = -1;
};

}  // namespace berth::proxy
