// Entry point of berth_unit_tests; Catch2's implementation is tests/support/catch_impl.cpp.
#include "tests/support/catch_run.hpp"

int main(int argc, char* argv[]) {
  return berth::test::run_catch(argc, argv);
}
