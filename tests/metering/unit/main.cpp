// Entry point of berth_metering_unit_tests: no dockerd, no network, no real cgroups.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
