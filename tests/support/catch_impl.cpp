// Catch2's implementation, compiled once into berth_catch for every test program: each program's
// main.cpp only defines main() and calls run_catch. Compiling it into each of the five mains
// cost about 25 s of a core each in CI's build.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "tests/support/catch_run.hpp"

namespace berth::test {

int run_catch(int argc, char* argv[]) {
  return Catch::Session().run(argc, argv);
}

}  // namespace berth::test
