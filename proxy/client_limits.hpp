#pragma once
// What one client may take of the proxy every tenant shares: how long each phase of a request
// may last, and how many connections one source address and one client certificate may hold.
// Without these, 50 clients trickling a request head at a byte a second held their
// connections indefinitely, and one tenant could exhaust the descriptors of all.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace berth::proxy {

struct ClientLimits {
  std::chrono::seconds handshake{10};  ///< TLS handshake, from accept
  std::chrono::seconds header{15};     ///< a whole request head, from its first byte
  std::chrono::seconds idle{120};      ///< a keep-alive connection between requests
  unsigned per_address = 512;          ///< connections from one source address
  unsigned handshakes_per_address = 64;  ///< of those, still before the end of the handshake
  unsigned per_certificate = 256;      ///< connections of one client certificate
};

/// Counts holders per key (an address, a certificate serial) under one lock shared by every
/// worker; taken on accept and after a handshake, never per request.
class ConnectionCounter {
 public:
  using Entry = std::pair<const std::string, unsigned>;

  /// One counted connection; releases itself.
  class Slot {
   public:
    Slot() = default;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    Slot(Slot&& other) noexcept : counter_(other.counter_), entry_(other.entry_) {
      other.counter_ = nullptr;
    }
    Slot& operator=(Slot&& other) noexcept;
    ~Slot() { release(); }
    void release() noexcept;
    [[nodiscard]] bool held() const noexcept { return counter_ != nullptr; }

   private:
    friend class ConnectionCounter;
    Slot(ConnectionCounter* counter, Entry* entry) : counter_(counter), entry_(entry) {}
    ConnectionCounter* counter_ = nullptr;
    Entry* entry_ = nullptr;  // nodes of an unordered_map stay where they are
  };

  /// A slot for `key`, or an empty one when `key` already holds `limit`.
  [[nodiscard]] Slot acquire(const std::string& key, unsigned limit);
  [[nodiscard]] unsigned count(const std::string& key) const;

 private:
  void release(Entry* entry) noexcept;

  mutable std::mutex mutex_;
  std::unordered_map<std::string, unsigned> counts_;
};

}  // namespace berth::proxy
