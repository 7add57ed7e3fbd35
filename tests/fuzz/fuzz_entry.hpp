// The one entry point every fuzz target defines: libFuzzer calls it, and so does replay_main.cpp
// when a corpus is replayed as a unit test.
#pragma once

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);
