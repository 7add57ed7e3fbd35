// berth-proxy: wires options, the first runtime snapshot and the server together.

#include <csignal>
#include <iostream>

#include "proxy/config.hpp"
#include "proxy/server.hpp"

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  auto options = berth::proxy::parse_options(argc, argv);
  if (!options) {
    std::cerr << options.error();
    return 2;
  }
  auto runtime = berth::proxy::load_runtime(*options, 1);
  if (!runtime) {
    std::cerr << "berth-proxy: " << runtime.error() << "\n";
    return 1;
  }
  if (options->check_only) {
    std::cout << options->policy_path << ": ok\n";
    return 0;
  }
  berth::proxy::Server server(std::move(*options), std::move(*runtime));
  return server.run();
}
