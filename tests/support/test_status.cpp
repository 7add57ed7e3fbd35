#include "tests/support/test_status.hpp"

#include <atomic>

namespace berth::test {
namespace {

std::atomic<bool> failed{false};

}  // namespace

void mark_current_test_failed() noexcept {
  failed.store(true);
}

void reset_current_test_status() noexcept {
  failed.store(false);
}

bool current_test_failed() noexcept {
  return failed.load();
}

}  // namespace berth::test
