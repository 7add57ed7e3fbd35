// berthctl: wires the command line to ctl/commands.

#include <string>
#include <vector>

#include "ctl/commands.hpp"

int main(int argc, char** argv) {
  return berth::ctl::run(std::vector<std::string>(argv + (argc > 0 ? 1 : 0), argv + argc));
}
