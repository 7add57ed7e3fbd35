#pragma once
// berthctl's requests to berth-proxy's operator routes (berthctl migrate), over TLS with an
// operator's certificate, found as the docker CLI finds its own: DOCKER_HOST (tcp://H:P) and
// DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem), or the command line's --url and --cert-path.

#include <chrono>
#include <expected>
#include <string>

namespace berth::ctl {

struct ProxyEndpoint {
  std::string url;        ///< tcp://host:port or host:port
  std::string cert_path;  ///< the directory with ca.pem, cert.pem and key.pem
};

struct ProxyAnswer {
  unsigned status = 0;
  std::string body;
};

/// One POST with an empty body; the answer, or why there was none.
[[nodiscard]] std::expected<ProxyAnswer, std::string> operator_post(
    const ProxyEndpoint& endpoint, const std::string& target, std::chrono::seconds timeout);

}  // namespace berth::ctl
