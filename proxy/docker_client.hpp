#pragma once
// berth's own small requests to dockerd (index bootstrap and refresh, a tenant's default
// network, labelled volumes), over the same pooled connections as client traffic: to the
// fleet's primary host, or to one named host.

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

/// The same to one host of the fleet (`to` points into `rt`).
net::awaitable<std::expected<DockerReply, error_code>> docker_request_to(
    UpstreamPool& pool, std::shared_ptr<const Runtime> rt, Target to, http::verb method,
    std::string target, std::string body = {}, std::string registry_auth = {});

/// A copy of the image `id` from one host of the fleet to another: the source's save streamed
/// into the target's load (proxy/image_copy.cpp). The error says what failed, for the log.
net::awaitable<std::expected<void, std::string>> copy_image(UpstreamPool& pool,
                                                            std::shared_ptr<const Runtime> rt,
                                                            Target from, Target to,
                                                            std::string id);

}  // namespace berth::proxy
