#pragma once
// berth-node's requests to the dockerd of its own host, over its unix socket, one connection
// each (a migration makes a handful).

#include <string>

#include <boost/beast/http/verb.hpp>

namespace berth::node {

struct Reply {
  unsigned status = 0;  ///< 0: dockerd did not answer
  std::string body;     ///< its answer, or why there was none
};

class Dockerd {
 public:
  /// `socket`: the path of dockerd's unix socket.
  explicit Dockerd(std::string socket) : socket_(std::move(socket)) {}
  [[nodiscard]] Reply call(boost::beast::http::verb method, const std::string& target,
                           const std::string& body = {}) const;

 private:
  std::string socket_;
};

/// dockerd's message in an error answer ({"message": ...}), else the body as it is.
[[nodiscard]] std::string docker_message(const Reply& reply);

}  // namespace berth::node
