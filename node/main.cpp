// berth-node: wires the command line to node/ (the agent on every host of a fleet).

#include <csignal>
#include <iostream>
#include <string>
#include <string_view>

#include "node/agent.hpp"
#include "node/server.hpp"

namespace {

constexpr std::string_view usage =
    "usage: berth-node --listen ADDR:PORT --cert FILE --key FILE --client-ca FILE\n"
    "                  [--client-cn NAME] [--docker /var/run/docker.sock]\n"
    "                  [--data-root /var/lib/docker] [--state /var/lib/berth-node]\n"
    "                  [--exec-root /var/run/docker] [--runc runc] [--criu criu]\n"
    "                  [--containerd-tmp /tmp]\n"
    "                  [--criu-config /etc/criu/runc.conf]\n";

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // a tar that died answers a write with EPIPE, not a signal
  berth::node::Settings settings;
  berth::node::ServerSettings server;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) {
      std::cerr << usage;
      return 2;
    }
    const std::string value = argv[++i];
    if (flag == "--listen") {
      server.listen = value;
    } else if (flag == "--cert") {
      server.cert = value;
    } else if (flag == "--key") {
      server.key = value;
    } else if (flag == "--client-ca") {
      server.client_ca = value;
    } else if (flag == "--client-cn") {
      server.client_cn = value;
    } else if (flag == "--docker") {
      settings.docker_socket = value.starts_with("unix://") ? value.substr(7) : value;
    } else if (flag == "--data-root") {
      settings.data_root = value;
    } else if (flag == "--state") {
      settings.state_dir = value;
    } else if (flag == "--exec-root") {
      settings.runc_root = value + "/runtime-runc/moby";  // dockerd's --exec-root
    } else if (flag == "--runc") {
      settings.runc = value;
    } else if (flag == "--criu") {
      settings.criu = value;
    } else if (flag == "--criu-config") {
      settings.criu_config = value;
    } else if (flag == "--containerd-tmp") {
      settings.containerd_tmp = value;
    } else {
      std::cerr << "berth-node: unknown option " << flag << "\n" << usage;
      return 2;
    }
  }
  if (server.cert.empty() || server.key.empty() || server.client_ca.empty()) {
    std::cerr << usage;
    return 2;
  }
  if (const std::string problem = berth::node::ensure_criu_config(settings); !problem.empty()) {
    std::cerr << "berth-node: warning: " << problem << "\n";
  }
  berth::node::Agent agent(settings);
  return berth::node::serve(agent, server);
}
