#pragma once
// berth's own small requests to dockerd (index bootstrap and refresh, a tenant's default
// network, labelled volumes), over the same pooled connections as client traffic.

#include <expected>
#include <memory>
#include <string>

#include "proxy/config.hpp"
#include "proxy/net.hpp"
#include "proxy/upstream.hpp"

namespace berth::proxy {

struct DockerReply {
  unsigned status = 0;
  std::string body;
};

/// One request/response exchange with dockerd. `body` is sent as application/json when set;
/// `registry_auth`, when set, as X-Registry-Auth (a tenant's credentials for its own pull).
net::awaitable<std::expected<DockerReply, error_code>> docker_request(
    UpstreamPool& pool, std::shared_ptr<const Runtime> rt, http::verb method, std::string target,
    std::string body = {}, std::string registry_auth = {});

}  // namespace berth::proxy
