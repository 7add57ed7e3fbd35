// 5. prepare: what a tenant's judged request needs before dockerd sees it. Its quota claim is
//    reserved (with the judgement, under the index's write lock, so concurrent creates of one
//    tenant count each other), the tenant's default network and named volumes are made (so
//    they carry the ownership label), and a container without a name gets one in the
//    tenant's namespace. Everything made here for a request dockerd then refuses is removed.

#include <string>

#include <nlohmann/json.hpp>

#include "policy/build_context.hpp"
#include "policy/image_archive.hpp"
#include "policy/names.hpp"
#include "policy/network_pools.hpp"
#include "policy/quota.hpp"
#include "policy/vocabulary.hpp"
#include "proxy/docker_client.hpp"
#include "proxy/log.hpp"
#include "proxy/ownership.hpp"
#include "proxy/server.hpp"
#include "proxy/session.hpp"
#include "proxy/wire.hpp"

namespace berth::proxy {

using namespace wire;

Reservations::~Reservations() {
  if (quota != 0 || subnets != 0) {
    index_.write([this](policy::OwnershipIndex& idx) {
      if (quota != 0) {
        idx.release(quota);
      }
      if (subnets != 0) {
        idx.release_subnets(subnets);
      }
    });
  }
}

net::awaitable<std::optional<Refusal>> Session::prepare(Admission& a, Exchange& ex) {
  if (a.rewritten.publish_image_ports) {
    if (auto refusal = co_await publish_image_ports(a)) {
      co_return refusal;
    }
  }
  if (auto refusal = reserve_quota(a)) {
    co_return refusal;
  }
  if (a.rewritten.generate_name) {
    generate_name(a);
  }
  if (a.reservations.quota != 0 && !a.rewritten.created_name.empty()) {
    worker_.index().write([&](policy::OwnershipIndex& idx) {
      idx.name_reservation(a.reservations.quota, a.rewritten.created_name);
    });
  }
  // A fleet: the host is chosen before the volumes are made there.
  if (auto refusal = place_container(a, ex)) {
    co_return refusal;
  }
  if (const ImageNeed need = image_need(a); need.copy || need.retag) {
    if (auto refusal = co_await provide_image(a, need)) {
      co_return refusal;
    }
  }
  if (!co_await ensure_default_network(a) || !co_await ensure_volumes(a, ex)) {
    co_await drop_ensured_volumes(a, ex);
    co_return Refusal{policy::Decision::deny(
                          500, "berth: could not prepare the tenant's network or volumes",
                          "ensure.failed"),
                      false};
  }
  if (a.rewritten.filter_build_context) {
    a.body_filter = std::make_unique<policy::BuildContextFilter>(*a.rules, a.rewritten.dockerfile);
  } else if (a.rewritten.filter_load_archive) {
    a.body_filter = std::make_unique<policy::LoadArchiveFilter>(a.rules->id);
  }
  if (a.rewritten.transfer) {
    co_return co_await begin_transfer(a);
  }
  co_return std::nullopt;
}

// -P: the image's exposed ports, which only dockerd knows, published on the tenant's ports too
// (policy::add_published_ports), and counted in the claim before it is reserved.
net::awaitable<std::optional<Refusal>> Session::publish_image_ports(Admission& a) {
  const auto doc = nlohmann::json::parse(a.rewritten.body.value_or("{}"), nullptr, false);
  const std::string image = doc.is_object() ? doc.value("Image", std::string()) : std::string();
  if (image.empty()) {
    co_return std::nullopt;
  }
  std::string target = "/images/" + policy::escape_path(image) + "/json";
  auto reply = co_await docker_request(worker_.pool(), a.rt, http::verb::get, std::move(target));
  if (!reply) {
    co_return Refusal{policy::Decision::deny(502, "berth: the Docker daemon did not answer",
                                             "upstream.failed"),
                      false};
  }
  if (reply->status != 200) {
    co_return std::nullopt;  // dockerd answers the create itself (no such image)
  }
  auto added = policy::add_published_ports(*a.rewritten.body, reply->body, *a.rules);
  if (!added) {
    co_return Refusal{added.error(), a.client_keep_alive()};
  }
  if (a.rewritten.claim) {
    a.rewritten.claim->ports += *added;
  }
  co_return std::nullopt;
}

// The claim is judged against what the tenant holds and has reserved, and reserved, in one
// step under the index's write lock; it becomes the container's holding when dockerd answers
// (learn_from_answer) and is released on any other way out (Reservations).
std::optional<Refusal> Session::reserve_quota(Admission& a) {
  const policy::Rewritten& rw = a.rewritten;
  if (!rw.claim) {
    return std::nullopt;
  }
  auto reserved = worker_.index().write(
      [&](policy::OwnershipIndex& idx) -> std::expected<std::uint64_t, policy::Decision> {
        const policy::Usage in_use = idx.usage_of(a.who->tenant, rw.claim_container);
        if (auto over =
                policy::judge_quota(*a.rules, in_use, *rw.claim, rw.claim_container.empty())) {
          return std::unexpected(*over);
        }
        return idx.reserve(a.who->tenant, *rw.claim, rw.claim_container);
      });
  if (!reserved) {
    return Refusal{reserved.error(), a.client_keep_alive()};
  }
  a.reservations.quota = *reserved;
  return std::nullopt;
}

// The tenant's own default network, made on first use, with its subnet from the tenant's
// pools like any network it creates.
net::awaitable<bool> Session::ensure_default_network(Admission& a) {
  if (!a.rewritten.ensure_default_network) {
    co_return true;
  }
  SharedIndex& index = worker_.index();
  const std::string& tenant = a.who->tenant;
  const std::string name = policy::names::default_network(tenant);
  const bool known = index.read([&](const policy::OwnershipIndex& idx) {
    return idx.find_network(tenant, policy::names::default_network_view).result ==
           policy::Lookup::found;
  });
  if (known) {
    co_return true;
  }
  const auto facts = index.facts();
  std::uint64_t reserved = 0;
  std::string create;
  for (int attempt = 0; attempt < 3 && create.empty(); ++attempt) {
    auto planned = index.read([&](const policy::OwnershipIndex& idx) {
      return policy::default_network_create(*a.rules, idx, *facts);
    });
    if (!planned) {
      log_error("cannot create default network " + name + ": " +
                planned.error().tenant_message);
      co_return false;
    }
    reserved = planned->second.empty() ? 0 : index.write([&](policy::OwnershipIndex& idx) {
      return idx.reserve_subnets(planned->second);
    });
    if (planned->second.empty() || reserved != 0) {
      create = planned->first.dump();
    }
  }
  if (create.empty()) {
    co_return false;
  }
  auto reply =
      co_await docker_request(worker_.pool(), a.rt, http::verb::post, "/networks/create", create);
  if (reply && (reply->status == 201 || reply->status == 409)) {
    co_await refresh_reference(index, worker_.pool(), a.rt, policy::RefKind::network, "", name);
  }
  if (reserved != 0) {
    index.write([&](policy::OwnershipIndex& idx) { idx.release_subnets(reserved); });
  }
  if (!reply || (reply->status != 201 && reply->status != 409)) {
    log_error("cannot create default network " + name + ": " +
              (reply ? reply->body : reply.error().message()));
    co_return false;
  }
  co_return true;
}

// Named volumes a container mounts are made by berth first, with the ownership label.
net::awaitable<bool> Session::ensure_volumes(Admission& a, Exchange& ex) {
  SharedIndex& index = worker_.index();
  for (const auto& volume : a.rewritten.ensure_volumes) {
    const bool known = index.read(
        [&](const policy::OwnershipIndex& idx) { return idx.volume(volume).has_value(); });
    if (known) {
      continue;
    }
    const nlohmann::json create = {
        {"Name", volume}, {"Labels", {{std::string(vocabulary::tenant_label), a.who->tenant}}}};
    const std::string body = create.dump();
    const Target where{a.host != nullptr ? a.host : &a.rt->primary()};
    auto reply = co_await docker_request_to(worker_.pool(), a.rt, where, http::verb::post,
                                            "/volumes/create", body);
    if (!reply || reply->status != 201) {
      co_return false;
    }
    index_volume(index, reply->body, where.host->name);
    ex.ensured_volumes.push_back(volume);
  }
  co_return true;
}

// A free "adjective_surname" in the tenant's namespace, as dockerd would have picked (its
// own generated names are global and unprefixed, so one could equal another tenant's name).
void Session::generate_name(Admission& a) {
  std::string stored;
  for (int attempt = 0; attempt < 16; ++attempt) {
    std::string candidate =
        policy::names::stored(a.who->tenant, policy::names::generated_name(name_random()()));
    if (attempt >= 8) {
      candidate += std::to_string(name_random()() % 10000);
    }
    const bool taken = worker_.index().read([&](const policy::OwnershipIndex& idx) {
      return idx.find_container("", candidate).result == policy::Lookup::found;
    });
    if (!taken) {
      stored = std::move(candidate);
      break;
    }
  }
  policy::Rewritten& rw = a.rewritten;
  rw.created_name = stored;
  rw.target += (rw.target.find('?') == std::string::npos ? "?" : "&");
  rw.target += "name=" + policy::query_escape(stored);
}

net::awaitable<void> Session::drop_ensured_volumes(Admission& a, Exchange& ex) {
  std::vector<std::string> made = std::move(ex.ensured_volumes);
  ex.ensured_volumes.clear();
  for (const auto& volume : made) {
    const std::string target = "/volumes/" + policy::escape_path(volume);
    const Target where{a.host != nullptr ? a.host : &a.rt->primary()};
    auto removed =
        co_await docker_request_to(worker_.pool(), a.rt, where, http::verb::delete_, target);
    if (removed && removed->status == 204) {
      worker_.index().write([&](policy::OwnershipIndex& idx) { idx.erase_volume(volume); });
    }
  }
}

}  // namespace berth::proxy
