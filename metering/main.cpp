// berth-meter: everything lives in the berth_metering library (metering/meter.hpp), so the
// tests link what runs here.

#include "metering/meter.hpp"

int main(int argc, char** argv) { return berth::metering::meter_main(argc, argv); }
