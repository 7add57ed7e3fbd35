#pragma once

// Catch2's implementation is compiled once (tests/support/catch_impl.cpp, library berth_catch)
// for every test program; Catch::Session is declared only there, so each program's main()
// runs its tests through this.

namespace berth::test {

/// Catch::Session().run(argc, argv): runs the selected tests, returns the exit status.
int run_catch(int argc, char* argv[]);

}  // namespace berth::test
