#pragma once
// berth-node's HTTPS endpoint: mutual TLS, a client certificate from the operator's CA (and,
// when set, with the one common name berth-proxy's carries), one thread per connection, at
// most max_connections at once, every socket read and write bounded by io_timeout.
//
//   GET  /v1/preflight                              what the host can do (Agent::preflight)
//   GET  /metrics                                   per-phase figures, Prometheus text
//   POST /v1/containers/ID/checkpoint?checkpoint=N&drain_ms=MS&twin=ID
//                                                   200: the archive, chunked, as it is read
//   POST /v1/containers/ID/restore?checkpoint=N     the archive as the body; 200: started
//   POST /v1/containers/ID/commit                   the stopped source removed
//   POST /v1/containers/ID/rollback[?checkpoint=N]  the source started again
//   POST /v1/containers/ID/release                  a kept checkpoint dropped, the source
//                                                   let be (Agent::release)
//   POST /v1/containers/ID/discard                  a twin that never started removed
//   GET  /v1/kept                                   the checkpoints kept here
// Errors are {"message": ...} with a status; anything else is 404.

#include <chrono>
#include <string>

#include "node/agent.hpp"

namespace berth::node {

struct ServerSettings {
  std::string listen = "0.0.0.0:2378";  ///< address:port
  std::string cert;
  std::string key;
  std::string client_ca;  ///< the CA whose certificates may call
  std::string client_cn;  ///< when set, the only common name accepted
  int max_connections = 16;
  std::chrono::seconds io_timeout{60};
};

/// Serves until the process ends; returns (with the reason on stderr) only when it cannot
/// start.
int serve(Agent& agent, const ServerSettings& settings);

}  // namespace berth::node
