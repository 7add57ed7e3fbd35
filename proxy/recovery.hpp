#pragma once
// Migrations no berth-proxy drives any more, finished or undone (proxy/recovery.cpp).

#include <memory>

#include "proxy/config.hpp"
#include "proxy/net.hpp"
#include "proxy/upstream.hpp"

namespace berth::proxy {

class SharedIndex;

/// One reading of the fleet's migration journal (twins on every host with a berth-node, the
/// checkpoints the nodes keep), and the steps that leave one copy of each container whose
/// migration neither this proxy nor anyone drives. Nothing is done unless every host with a
/// node answered.
net::awaitable<void> recover_migrations(SharedIndex& index, UpstreamPool& pool,
                                        std::shared_ptr<const Runtime> rt);

}  // namespace berth::proxy
