#pragma once

// Whether the running test case has failed so far. The integration main's Catch listener sets
// it on every failed assertion; fixtures read it in their destructors to decide whether to
// print the proxy log (a failing REQUIRE is reported before the stack unwinds).

namespace berth::test {

void mark_current_test_failed() noexcept;
void reset_current_test_status() noexcept;
[[nodiscard]] bool current_test_failed() noexcept;

}  // namespace berth::test
