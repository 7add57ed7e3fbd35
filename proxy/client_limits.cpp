#include "proxy/client_limits.hpp"

namespace berth::proxy {

ConnectionCounter::Slot& ConnectionCounter::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    release();
    counter_ = other.counter_;
    entry_ = other.entry_;
    other.counter_ = nullptr;
  }
  return *this;
}

void ConnectionCounter::Slot::release() noexcept {
  if (counter_ != nullptr) {
    counter_->release(entry_);
    counter_ = nullptr;
  }
}

ConnectionCounter::Slot ConnectionCounter::acquire(const std::string& key, unsigned limit) {
  const std::lock_guard lock(mutex_);
  auto [it, inserted] = counts_.try_emplace(key, 0u);
  if (it->second >= limit) {
    return {};
  }
  ++it->second;
  return Slot(this, &*it);
}

unsigned ConnectionCounter::count(const std::string& key) const {
  const std::lock_guard lock(mutex_);
  const auto it = counts_.find(key);
  return it == counts_.end() ? 0 : it->second;
}

void ConnectionCounter::release(Entry* entry) noexcept {
  const std::lock_guard lock(mutex_);
  if (--entry->second == 0) {
    counts_.erase(entry->first);
  }
}

}  // namespace berth::proxy
