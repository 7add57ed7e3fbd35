// A fleet (issue #15): one berth endpoint over several dockerds. Which host serves a request
// (route_request), where a tenant's new container runs (place_container, on policy::place),
// and the container list merged from every host (fan_out_list). With one host every request
// goes to it and none of this costs anything.
//
// The index knows where each container, exec session and volume is (each host's watcher fills
// it): routing is a lookup, never a round trip. Networks, images and everything berth does not
// place are the primary host's (the Swarm manager: tenant networks are attachable overlays
// there). A host that is down answers its objects' requests with a 503 that names no host,
// and nothing is re-created elsewhere behind the tenant's back.

#include <algorithm>
#include <chrono>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "policy/filter.hpp"
#include "policy/migration.hpp"
#include "policy/names.hpp"
#include "policy/placement.hpp"
#include "policy/query.hpp"
#include "policy/rewrite.hpp"
#include "proxy/docker_client.hpp"
#include "proxy/log.hpp"
#include "proxy/ownership.hpp"
#include "proxy/server.hpp"
#include "proxy/session.hpp"
#include "proxy/wire.hpp"

namespace berth::proxy {

using namespace wire;

namespace {

using json = nlohmann::json;

// The host that holds what a holder route names, as the index knows it.
std::optional<std::string> holder_of(const policy::OwnershipIndex& idx, const policy::Route& route,
                                     const std::string& ref) {
  switch (policy::ref_kind(route)) {
    case policy::RefKind::container:
      return idx.host_of_container(ref);
    case policy::RefKind::exec:
      if (auto container = idx.exec_container(ref)) {
        return idx.host_of_container(*container);
      }
      return std::nullopt;
    case policy::RefKind::volume:
      if (auto v = idx.volume(ref)) {
        return v->host;
      }
      return std::nullopt;
    default:
      return std::nullopt;  // networks and images: the primary's
  }
}

// The id of the image a (rewritten) create names, when the index knows it.
std::optional<std::string> image_id_of(const policy::OwnershipIndex& idx, const std::string& image) {
  if (image.starts_with("sha256:")) {
    if (auto known = idx.image_by_id(image)) {
      return known->id;
    }
    return std::nullopt;
  }
  const auto parsed = policy::names::parse_image_ref(image);
  if (!parsed) {
    return std::nullopt;
  }
  for (const std::string& ref : {parsed->str(), "docker.io/library/" + parsed->str()}) {
    if (auto known = idx.image_by_tag(ref)) {
      return known->id;
    }
  }
  return std::nullopt;
}

// What ties a new container to one host: a volume that exists (berth makes the missing ones
// where the container goes), --volumes-from, and another container's namespaces.
std::vector<policy::Dependency> dependencies_of(const policy::OwnershipIndex& idx,
                                                const json& body, std::string_view tenant,
                                                const std::string& primary) {
  std::vector<policy::Dependency> out;
  const json hc = body.value("HostConfig", json::object());
  if (!hc.is_object()) {
    return out;
  }
  // A tenant's local network (a bridge) is on the primary only (the rewritten body names its
  // networks by their stored names).
  auto network = [&](const std::string& stored) {
    const auto view = policy::names::tenant_view(tenant, stored);
    const auto found = view ? idx.find_network(tenant, *view) : policy::Resolved<policy::NetworkInfo>{};
    if (found.result == policy::Lookup::found && found.value.local) {
      out.push_back({policy::DependencyKind::network, *view, primary});
    }
  };
  if (const json mode = hc.value("NetworkMode", json()); mode.is_string()) {
    network(mode.get<std::string>());
  }
  const json config = body.value("NetworkingConfig", json::object());
  const json endpoints =
      config.is_object() ? config.value("EndpointsConfig", json::object()) : json::object();
  if (endpoints.is_object()) {
    for (const auto& [stored, settings] : endpoints.items()) {
      network(stored);
    }
  }
  auto volume = [&](const std::string& name) {
    if (auto v = idx.volume(name)) {
      out.push_back({policy::DependencyKind::volume, name, v->host});
    }
  };
  for (const auto& bind : hc.value("Binds", json::array())) {
    if (bind.is_string()) {
      const std::string b = bind.get<std::string>();
      if (!b.starts_with('/')) {
        volume(b.substr(0, b.find(':')));
      }
    }
  }
  for (const auto& m : hc.value("Mounts", json::array())) {
    if (m.is_object() && m.value("Type", std::string()) == "volume") {
      volume(m.value("Source", std::string()));
    }
  }
  auto container = [&](policy::DependencyKind kind, const std::string& ref) {
    if (auto host = idx.host_of_container(ref)) {
      out.push_back({kind, ref, *host});
    }
  };
  for (const auto& from : hc.value("VolumesFrom", json::array())) {
    if (from.is_string()) {
      const std::string f = from.get<std::string>();
      container(policy::DependencyKind::volumes_from, f.substr(0, f.find(':')));
    }
  }
  for (const char* mode : {"NetworkMode", "IpcMode", "PidMode"}) {
    const json value = hc.value(mode, json());
    if (value.is_string() && value.get<std::string>().starts_with("container:")) {
      container(policy::DependencyKind::network_container, value.get<std::string>().substr(10));
    }
  }
  return out;
}

// One host as its policy entry and its watcher's facts describe it, before its containers
// are counted.
policy::HostState host_state(const Runtime& rt, const HostRuntime& h, const HostFacts& facts) {
  policy::HostState s;
  s.name = h.name;
  s.healthy = facts.up;
  s.cordoned = h.spec->cordoned;
  s.traits = h.spec->labels;
  s.capacity = {h.spec->nano_cpus.value_or(facts.nano_cpus),
                h.spec->memory.value_or(facts.memory)};
  s.cpu_overcommit = rt.policy->placement.cpu_overcommit;
  s.memory_overcommit = rt.policy->placement.memory_overcommit;
  s.image_ids = facts.image_ids;
  for (const auto& [container, ports] : facts.published) {
    s.ports_in_use.insert(s.ports_in_use.end(), ports.begin(), ports.end());
  }
  return s;
}

// A meter snapshot older than this is not a measurement: placement judges by reservations.
constexpr auto usage_fresh_for = std::chrono::seconds(30);

// The hosts as placement sees them, and the tenant's presence on each, from the index, the
// watchers' facts and the meters' snapshots. Reservations count the containers that run (or
// are about to), each as max(limit or default, its recent p95 use); a stopped container holds
// nothing on its host. A host's measured use is what its meter saw of its containers, plus
// the demand of those it has not seen yet (created since).
std::vector<policy::HostState> host_states(const Runtime& rt, const SharedIndex& index,
                                           const policy::OwnershipIndex& idx,
                                           policy::PlacementRequest& request,
                                           const policy::PlacementOptions& options) {
  std::vector<policy::HostState> hosts;
  std::vector<std::shared_ptr<const HostUsage>> usage;
  const auto now = std::chrono::steady_clock::now();
  for (const HostRuntime& h : rt.hosts) {
    policy::HostState s = host_state(rt, h, *index.host_facts(h.name));
    auto u = index.host_usage(h.name);
    if (u && now - u->at > usage_fresh_for) {
      u.reset();
    }
    if (u) {
      s.measured = policy::Amount{};
    }
    usage.push_back(std::move(u));
    policy::normalize(s);
    hosts.push_back(std::move(s));
    request.presence.push_back({h.name, 0, {}});
  }
  // Each container's host by one hash lookup, not a scan of the fleet per container.
  std::unordered_map<std::string_view, std::size_t> host_index;
  for (std::size_t i = 0; i < rt.hosts.size(); ++i) {
    host_index.emplace(rt.hosts[i].name, i);
  }
  for (const auto& c : idx.all_containers()) {
    const auto found = host_index.find(c.host);
    if (found == host_index.end()) {
      continue;
    }
    const std::size_t i = found->second;
    policy::HostState* const at = &hosts[i];
    if (c.tenant == request.tenant) {
      auto& presence = request.presence[i];
      ++presence.containers;
      if (auto name = policy::names::tenant_view(request.tenant, c.name)) {
        presence.container_names.push_back(*name);
      }
      presence.container_names.push_back(c.id);
    }
    if (c.state == "exited" || c.state == "dead") {
      continue;
    }
    const policy::Resources held = idx.resources_of(c.id).value_or(policy::Resources{});
    const policy::Amount limits{held.nano_cpus, held.memory};
    const policy::ContainerUsage* seen = nullptr;
    if (usage[i]) {
      if (auto u = usage[i]->containers.find(std::string_view(c.id).substr(0, 12));
          u != usage[i]->containers.end()) {
        seen = &u->second;
      }
    }
    const policy::Amount counted = policy::accounted(
        limits, seen ? std::optional(seen->p95) : std::nullopt, options);
    at->reserved.nano_cpus += counted.nano_cpus;
    at->reserved.memory += counted.memory;
    if (at->measured && seen) {
      at->measured->nano_cpus += seen->latest.nano_cpus;
      at->measured->memory += seen->latest.memory;
    } else if (at->measured) {
      const policy::Amount demand = policy::demand_of(limits, options);
      at->unmeasured.nano_cpus += demand.nano_cpus;
      at->unmeasured.memory += demand.memory;
    }
  }
  return hosts;
}

// A name the tenant's other container already has, on any host: dockerd checks only its own.
std::optional<policy::Decision> name_in_use(const policy::OwnershipIndex& idx,
                                            const std::string& stored, const std::string& tenant,
                                            std::uint64_t reservation) {
  if (stored.empty()) {
    return std::nullopt;
  }
  const bool taken = idx.host_of_container(stored).has_value();
  if (!taken && !idx.name_reserved(stored, reservation)) {
    return std::nullopt;
  }
  const std::string view = policy::names::tenant_view(tenant, stored).value_or(stored);
  const auto own = idx.find_container(tenant, view);
  return policy::Decision::deny(
      409,
      "Conflict. The container name \"/" + view + "\" is already in use" +
          (own.result == policy::Lookup::found ? " by container \"" + own.value.id + "\"" : "") +
          ". You have to remove (or rename) that container to be able to reuse that name.",
      "name.conflict");
}

// A piece of a host's event stream as a private host would have sent it
// (policy::fleet_event_view).
std::string as_private_host_events(std::string_view lines, bool from_primary) {
  std::string out;
  std::size_t start = 0;
  while (start < lines.size()) {
    const std::size_t nl = lines.find('\n', start);
    const std::size_t end = nl == std::string::npos ? lines.size() : nl + 1;
    const std::string_view line(lines.data() + start, end - start);
    start = end;
    if (auto seen = policy::fleet_event_view(line, from_primary)) {
      out += *seen;
    }
  }
  return out;
}

}  // namespace

// dockerd 20.10 refuses to disconnect a created, not yet started, container from an overlay
// named by its Swarm id ("is not connected to the network") and does it by name; compose
// disconnects and connects each container so between create and start. The tenant's network
// was resolved to its id: its stored name means the same network.
void Session::name_network_in_path(Admission& a) {
  const std::string& id = a.request->params.front();
  const auto network = worker_.index().read(
      [&](const policy::OwnershipIndex& idx) { return idx.network_by_id(id); });
  std::string& target = a.rewritten.target;
  const std::string from = "/networks/" + id + "/";
  if (const auto at = target.find(from); network && at != std::string::npos) {
    target.replace(at, from.size(), "/networks/" + policy::escape_path(network->name) + "/");
  }
}

std::optional<policy::Decision> Session::route_request(Admission& a, Answer& answer,
                                                       Exchange& ex) {
  const auto target = target_of(a);
  if (!target) {
    return target.error();
  }
  answer.target = *target;
  a.host = target->host;
  if (a.rt->fleet()) {
    ex.host = a.host->name;
  }
  return std::nullopt;
}

std::expected<Target, policy::Decision> Session::target_of(Admission& a) {
  const Runtime& rt = *a.rt;
  if (a.host != nullptr) {
    return Target{a.host};  // placed
  }
  if (!rt.fleet()) {
    return Target{&rt.primary()};
  }
  const policy::Route& route = *a.request->route;
  std::optional<std::string> holder;
  if (route.endpoint == "network.connect" || route.endpoint == "network.disconnect") {
    // The container's host attaches it (an overlay of the fleet is on every host); the
    // network's own host does not know a container elsewhere.
    const auto body = json::parse(a.rewritten.body.value_or(""), nullptr, false);
    const std::string container =
        body.is_object() ? body.value("Container", std::string()) : std::string();
    holder = worker_.index().read(
        [&](const policy::OwnershipIndex& idx) { return idx.host_of_container(container); });
    if (a.tenant()) {
      name_network_in_path(a);
    }
  } else if (route.scope == policy::Scope::holder && !a.request->params.empty()) {
    holder = worker_.index().read([&](const policy::OwnershipIndex& idx) {
      return holder_of(idx, route, a.request->params.front());
    });
  } else if (route.endpoint == "container.commit") {
    // The container is named in the query; its host commits it (bring_commit_home).
    for (const auto& [key, value] : query_params(a.rewritten.target)) {
      if (key == "container") {
        holder = worker_.index().read(
            [&](const policy::OwnershipIndex& idx) { return idx.host_of_container(value); });
      }
    }
  } else if (route.endpoint == "volume.create") {
    // dockerd answers a create of a volume it has with that volume: on the fleet, the host
    // that has it must answer, or a second volume of that name would appear elsewhere.
    const auto body = json::parse(a.rewritten.body.value_or(""), nullptr, false);
    const std::string name = body.is_object() ? body.value("Name", std::string()) : std::string();
    holder = worker_.index().read([&](const policy::OwnershipIndex& idx) {
      const auto volume = idx.volume(name);
      return volume ? std::optional<std::string>(volume->host) : std::nullopt;
    });
  }
  if (!holder || holder->empty()) {
    return Target{&rt.primary()};
  }
  const HostRuntime* host = rt.host(*holder);
  if (host == nullptr || !worker_.index().host_facts(*holder)->up) {
    return std::unexpected(policy::Decision::deny(
        503,
        "berth: the server that runs this object is unavailable; nothing was done, try again "
        "later",
        "fleet.host_down"));
  }
  return Target{host};
}

namespace {

// The image a create names: the fleet's images are the primary's, and a host that lacks one
// gets a copy before the create (provide_image), so it is no hard rule, only a score. One the
// index does not know by id or tag (dockerd resolves short ids and digests; or there is none)
// ties the container to the primary, whose answer is the fleet's: a stale copy elsewhere is
// never run.
void image_of_create(Admission& a, const policy::OwnershipIndex& idx, const std::string& image,
                     policy::PlacementRequest& request) {
  const bool by_id = image.starts_with("sha256:");
  const auto ref = by_id ? std::nullopt : policy::names::parse_image_ref(image);
  const auto id = by_id || (ref && !ref->tag.empty()) ? image_id_of(idx, image) : std::nullopt;
  if (!id) {
    const auto seen = policy::names::tenant_image_view(request.tenant, image);
    request.dependencies.push_back(
        {policy::DependencyKind::image, seen.value_or(image), a.rt->primary().name});
    return;
  }
  request.image_id = *id;
  a.image_id = *id;
  if (ref) {
    a.image_repo = ref->name;
    a.image_tag = ref->tag;
  }
}

}  // namespace

std::optional<Refusal> Session::place_container(Admission& a, Exchange& ex) {
  const Runtime& rt = *a.rt;
  if (!rt.fleet() || a.request->route->endpoint != "container.create" || !a.rewritten.body) {
    return std::nullopt;
  }
  const json body = json::parse(*a.rewritten.body, nullptr, false);
  auto rules = policy::parse_placement_rules(body, policy::Author::tenant);
  if (!rules) {
    return Refusal{policy::Decision::deny(400, "berth: " + rules.error(), "placement.rule"),
                   a.client_keep_alive()};
  }
  policy::PlacementRequest request;
  request.tenant = a.who->tenant;
  request.rules = std::move(*rules);
  if (body.contains("HostConfig") && body["HostConfig"].is_object()) {
    request.ports = policy::fixed_host_ports(body["HostConfig"].value("PortBindings", json()));
    a.published = request.ports;
  }
  if (a.rules != nullptr && a.rules->placement) {
    request.pins = *a.rules->placement;  // the operator's, hard
  }
  if (a.rewritten.claim) {
    request.limits = {a.rewritten.claim->nano_cpus, a.rewritten.claim->memory};
  }
  const policy::PlacementOptions options;
  SharedIndex& index = worker_.index();
  std::vector<policy::HostState> hosts;
  std::optional<policy::Decision> conflict;
  index.read([&](const policy::OwnershipIndex& idx) {
    conflict = name_in_use(idx, a.rewritten.created_name, request.tenant, a.reservations.quota);
    request.dependencies = dependencies_of(idx, body, request.tenant, rt.primary().name);
    if (const std::string image = body.value("Image", std::string()); !image.empty()) {
      image_of_create(a, idx, image, request);
    }
    hosts = host_states(rt, index, idx, request, options);
  });
  if (conflict) {
    return Refusal{*conflict, a.client_keep_alive()};
  }
  const policy::Placement placement = policy::place(hosts, request, options);
  std::string detail;
  for (const std::string& line : policy::audit_detail(placement, hosts, request, options)) {
    detail += (detail.empty() ? "" : "; ") + line;
  }
  ex.placement = std::move(detail);
  if (!placement.host) {
    return Refusal{policy::Decision::deny(503, policy::tenant_refusal(placement, request),
                                          "placement.none"),
                   a.client_keep_alive()};
  }
  a.host = &rt.hosts[*placement.host];
  return std::nullopt;
}

// A Swarm overlay's removal is done in the Swarm at once, and on the hosts a moment later:
// the primary, which lists the tenant's networks, still lists its copy of the overlay for up
// to seconds once containers were on it (seen with compose's down on the test fleet). One
// host would not list a network it just removed, so berth answers once the primary no longer
// has it (polled, at most 10 s), and forgets it at once.
net::awaitable<void> Session::settle_network_removal(Admission& a) {
  const std::string id = a.request->params.front();
  worker_.index().write([&](policy::OwnershipIndex& idx) { idx.erase_network(id); });
  net::steady_timer pause(client_.get_executor());
  const Target primary{&a.rt->primary()};
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    std::string path = "/networks/" + policy::escape_path(id);
    const auto reply = co_await docker_request_to(worker_.pool(), a.rt, primary,
                                                  http::verb::get, std::move(path));
    if (!reply || reply->status == 404) {
      co_return;
    }
    pause.expires_after(std::chrono::milliseconds(50));
    error_code ignored;
    co_await pause.async_wait(with_ec(ignored));
  }
}

// A network delete on a fleet. A container just removed from an overlay on another host leaves
// the Swarm an attachment task for a moment, and the manager refuses the delete meanwhile
// ("network ... is in use by task ..."): seen with compose's down on the test fleet under load.
// One host would have deleted it, so the delete is asked again for up to 5 s while that is
// the answer. Then the network is settled (settle_network_removal) and the answer written.
net::awaitable<bool> Session::delete_fleet_network(Admission& a, Exchange& ex) {
  const Target primary{&a.rt->primary()};
  ex.host = primary.host->name;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  net::steady_timer pause(client_.get_executor());
  std::expected<DockerReply, error_code> reply;
  for (;;) {
    reply = co_await docker_request_to(worker_.pool(), a.rt, primary, http::verb::delete_,
                                       a.rewritten.target);
    if (!reply || reply->status < 400 || Clock::now() >= deadline ||
        reply->body.find("is in use by task") == std::string::npos) {
      break;
    }
    pause.expires_after(std::chrono::milliseconds(250));
    error_code ignored;
    co_await pause.async_wait(with_ec(ignored));
  }
  if (!reply) {
    const auto down = policy::Decision::deny(502, "berth: the Docker daemon did not answer",
                                             "upstream.failed");
    co_return co_await refuse(down, a.client_keep_alive(), ex);
  }
  if (reply->status == 204) {
    co_await settle_network_removal(a);
  }
  http::response<http::string_body> res{static_cast<http::status>(reply->status), 11};
  res.set(http::field::server, "berth");
  if (reply->status != 204) {
    res.set(http::field::content_type, "application/json");
    res.body() = filter_answer(a, reply->status, reply->body).value_or(reply->body);
  }
  res.keep_alive(a.client_keep_alive() && !worker_.draining());
  res.prepare_payload();
  ex.status = reply->status;
  ex.bytes_out += res.body().size();
  const bool written = co_await write_response(res);
  co_return written && res.keep_alive();
}

// The hosts' answers to one fanned-out request, asked all at once: a list takes as long as
// the slowest host, not the sum of them.
struct Session::Gather {
  explicit Gather(net::any_io_executor executor, std::size_t hosts)
      : replies(hosts), done(std::move(executor)) {}
  std::vector<std::optional<std::string>> replies;  // a 200's body, by host
  std::size_t open = 0;
  net::steady_timer done;
};

net::awaitable<void> Session::gather_one(std::shared_ptr<Session> self,
                                         std::shared_ptr<Gather> gather, std::size_t i,
                                         std::shared_ptr<const Runtime> rt, http::verb method,
                                         std::string target) {
  const Target to{&rt->hosts[i]};
  auto reply =
      co_await docker_request_to(self->worker_.pool(), rt, to, method, std::move(target));
  if (reply && reply->status == 200) {
    gather->replies[i] = std::move(reply->body);
  }
  if (--gather->open == 0) {
    gather->done.cancel();
  }
}

// The parameters of a request target's query string: none without one (or with one
// the judge would have refused).
std::vector<std::pair<std::string, std::string>> query_params(std::string_view target) {
  const std::size_t query = target.find('?');
  if (query == std::string_view::npos) {
    return {};
  }
  auto params = policy::parse_query(target.substr(query + 1));
  return params ? std::move(*params) : std::vector<std::pair<std::string, std::string>>{};
}

std::string fleet_info(const Runtime& rt, const SharedIndex& index, std::string_view info) {
  std::int64_t nano_cpus = 0;
  std::int64_t memory = 0;
  for (const HostRuntime& h : rt.hosts) {
    if (const auto facts = index.host_facts(h.name); facts->up) {
      nano_cpus += facts->nano_cpus;
      memory += facts->memory;
    }
  }
  return policy::with_fleet_totals(info, nano_cpus / 1'000'000'000, memory);
}

std::optional<FanOut> fan_out_of(std::string_view endpoint) {
  if (endpoint == "container.list") {
    return FanOut::containers;
  }
  if (endpoint == "volume.list") {
    return FanOut::volumes;
  }
  if (endpoint == "system.df") {
    return FanOut::disk_usage;
  }
  if (endpoint == "container.prune" || endpoint == "volume.prune") {
    return FanOut::prune;
  }
  return std::nullopt;
}

namespace {

// Every host's answer in one document, before the tenant's filter sees it (so a shared image's
// count of the tenant's containers counts them on every host): the first answer (the
// primary's, when it answered: images, networks and build cache are its) with the arrays
// `each` of the others appended and their SpaceReclaimed added.
std::optional<json> merged_documents(const std::vector<std::optional<std::string>>& replies,
                                     std::initializer_list<const char*> each) {
  std::optional<json> merged;
  for (const auto& reply : replies) {
    auto doc = reply ? json::parse(*reply, nullptr, false) : json();
    if (!doc.is_object()) {
      continue;
    }
    if (!merged) {
      merged = std::move(doc);
      continue;
    }
    for (const char* key : each) {
      if (doc.contains(key) && doc[key].is_array()) {
        json& into = (*merged)[key];
        if (!into.is_array()) {
          into = json::array();
        }
        for (auto& item : doc[key]) {
          into.push_back(std::move(item));
        }
      }
    }
    if (doc.contains("SpaceReclaimed") && doc["SpaceReclaimed"].is_number_unsigned()) {
      (*merged)["SpaceReclaimed"] = merged->value("SpaceReclaimed", std::uint64_t{0}) +
                                    doc["SpaceReclaimed"].get<std::uint64_t>();
    }
  }
  return merged;
}

// dockerd lists containers newest first; the merged list too, cut to the client's `limit`.
json merged_containers(std::vector<std::string> filtered, std::string_view target) {
  json merged = json::array();
  for (const auto& body : filtered) {
    auto list = json::parse(body, nullptr, false);
    for (auto& c : list.is_array() ? list : json::array()) {
      merged.push_back(std::move(c));
    }
  }
  std::stable_sort(merged.begin(), merged.end(), [](const json& x, const json& y) {
    return x.value("Created", std::int64_t{0}) > y.value("Created", std::int64_t{0});
  });
  for (const auto& [key, value] : query_params(target)) {
    const long n = key == "limit" ? std::strtol(value.c_str(), nullptr, 10) : 0;
    if (n > 0 && static_cast<std::size_t>(n) < merged.size()) {
      merged.erase(merged.begin() + n, merged.end());
    }
  }
  return merged;
}

}  // namespace

// The fleet's answer made of every host's that is up (a host that is down: the rest).
net::awaitable<bool> Session::fan_out(Admission& a, Exchange& ex, FanOut kind) {
  auto gather = std::make_shared<Gather>(client_.get_executor(), a.rt->hosts.size());
  const http::verb method = kind == FanOut::prune ? http::verb::post : http::verb::get;
  for (std::size_t i = 0; i < a.rt->hosts.size(); ++i) {
    if (worker_.index().host_facts(a.rt->hosts[i].name)->up) {
      ++gather->open;
      net::co_spawn(client_.get_executor(),
                    gather_one(shared_from_this(), gather, i, a.rt, method, a.rewritten.target),
                    net::detached);
    }
  }
  while (gather->open > 0) {
    gather->done.expires_at(Clock::time_point::max());
    error_code ignored;
    co_await gather->done.async_wait(with_ec(ignored));
  }
  std::optional<std::string> body;
  if (kind == FanOut::containers) {
    std::vector<std::string> filtered;
    for (const auto& reply : gather->replies) {
      if (auto seen = reply ? filter_answer(a, 200, *reply) : std::nullopt) {
        filtered.push_back(std::move(*seen));
      }
    }
    if (!filtered.empty()) {
      body = merged_containers(std::move(filtered), a.rewritten.target).dump() + "\n";
    }
  } else {
    const auto merged =
        kind == FanOut::volumes      ? merged_documents(gather->replies, {"Volumes"})
        : kind == FanOut::disk_usage ? merged_documents(gather->replies, {"Containers", "Volumes"})
                                     : merged_documents(gather->replies,
                                                        {"ContainersDeleted", "VolumesDeleted"});
    body = merged ? filter_answer(a, 200, merged->dump()) : std::nullopt;
  }
  if (!body) {
    const auto none = policy::Decision::deny(503, "berth: no server answered; try again later",
                                             "fleet.hosts_down");
    co_return co_await refuse(none, a.client_keep_alive(), ex);
  }
  http::response<http::string_body> res{http::status::ok, 11};
  res.set(http::field::content_type, "application/json");
  res.set(http::field::server, "berth");
  res.body() = std::move(*body);
  res.keep_alive(a.client_keep_alive() && !worker_.draining());
  res.prepare_payload();
  ex.status = 200;
  ex.bytes_out += res.body().size();
  const bool written = co_await write_response(res);
  co_return written && res.keep_alive();
}

// One merged event stream: each host's reader appends the lines the requester may see, the
// writer sends them on. All of it runs on the session's executor (one thread): no lock.
struct Session::EventMerge {
  explicit EventMerge(net::any_io_executor executor) : wake(std::move(executor)) {}
  std::optional<policy::Principal> who;  // a tenant's; none for an operator (unfiltered)
  std::string pending;                   // lines for the client
  std::size_t open = 0;                  // readers still reading
  bool client_gone = false;
  net::steady_timer wake;  // cancelled to wake the writer (Boost 1.74 has no channels)
  std::vector<std::shared_ptr<TlsStream>> streams;
  // since=: each host first replays its past events (dockerd keeps the last 256), all at
  // once, host by host. They are held, and sent in time order once every host has answered
  // and none has sent a line for a moment; then the stream is live.
  bool holding = false;
  std::size_t answering = 0;  // readers whose host has not answered yet
  Clock::time_point last_line = Clock::now();
  std::vector<std::pair<std::int64_t, std::string>> held;  // timeNano, line

  void hold(std::string_view lines) {
    std::size_t start = 0;
    while (start < lines.size()) {
      const std::size_t nl = lines.find('\n', start);
      const std::size_t end = nl == std::string_view::npos ? lines.size() : nl + 1;
      const std::string_view line = lines.substr(start, end - start);
      start = end;
      // The event's own timeNano is its last key (dockerd's order, and nlohmann's sorted
      // one); a label of that name sits earlier, in Actor.Attributes.
      static constexpr std::string_view key = "\"timeNano\":";
      const std::size_t at = line.rfind(key);
      const std::int64_t time =
          at == std::string_view::npos
              ? 0
              : std::strtoll(std::string(line.substr(at + key.size(), 20)).c_str(), nullptr, 10);
      held.emplace_back(time, std::string(line));
    }
    last_line = Clock::now();
  }

  void release() {
    std::stable_sort(held.begin(), held.end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    for (auto& [time, line] : held) {
      pending += line;
    }
    held.clear();
    holding = false;
  }

  void close_all() {
    for (auto& s : streams) {
      s->close();
    }
  }
};

void Session::add_events(EventMerge& merge, std::string_view lines) {
  const std::string seen =
      merge.who ? transform_lines(LineMode::events, lines, *merge.who) : std::string(lines);
  if (merge.holding) {
    merge.hold(seen);
  } else {
    merge.pending += seen;
  }
  merge.wake.cancel();
}

namespace {

// A subscription to berth's own events, for the life of one merged stream.
struct EventSink {
  SharedIndex& index;
  std::uint64_t token;
  EventSink(SharedIndex& i, std::uint64_t t) : index(i), token(t) {}
  EventSink(const EventSink&) = delete;
  EventSink& operator=(const EventSink&) = delete;
  ~EventSink() {
    if (token != 0) {
      index.unsubscribe_events(token);
    }
  }
};

}  // namespace

net::awaitable<void> Session::read_events(std::shared_ptr<Session> self,
                                          std::shared_ptr<EventMerge> merge,
                                          std::shared_ptr<const Runtime> rt, Target from,
                                          std::string target) {
  auto acquired = co_await self->worker_.pool().acquire(rt, from);
  if (acquired && !merge->client_gone) {
    std::shared_ptr<TlsStream> stream = *acquired;
    merge->streams.push_back(stream);
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "docker");
    error_code ec;
    co_await http::async_write(*stream, req, with_ec(ec));
    beast::flat_buffer buffer;
    http::response_parser<http::buffer_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    if (!ec) {
      co_await http::async_read_header(*stream, buffer, parser, with_ec(ec));
    }
    --merge->answering;
    std::string partial;
    std::vector<char> window(16 * 1024);
    while (!ec && parser.get().result() == http::status::ok && !parser.is_done()) {
      parser.get().body().data = window.data();
      parser.get().body().size = window.size();
      co_await http::async_read_some(*stream, buffer, parser, with_ec(ec));
      if (ec == http::error::need_buffer) {
        ec = {};
      }
      partial.append(window.data(), window.size() - parser.get().body().size);
      const std::size_t end = partial.rfind('\n');
      if (end == std::string::npos) {
        continue;
      }
      const std::string whole =
          as_private_host_events(std::string_view(partial).substr(0, end + 1),
                                 from.host == &rt->primary());
      self->add_events(*merge, whole);
      partial.erase(0, end + 1);
    }
    stream->close();
  } else {
    --merge->answering;
  }
  --merge->open;
  merge->wake.cancel();
}

net::awaitable<void> Session::watch_merge_client(std::shared_ptr<Session> self,
                                                 std::shared_ptr<EventMerge> merge) {
  char byte = 0;
  error_code ec;
  (void)co_await self->client_.async_read_some(net::buffer(&byte, 1), with_ec(ec));
  // Anything but the writer's own cancellation: the client hung up (or sent what a client
  // waiting on an event stream never sends). Either way the stream ends.
  if (ec != net::error::operation_aborted) {
    merge->client_gone = true;
    merge->close_all();
    merge->wake.cancel();
  }
}

// berth's own events (SharedIndex::publish_event) into the merged stream, as the hosts' are:
// those the request's filters admit, in the tenant's view. None with until= (the hosts end
// that stream, and berth keeps no past of its own). The token to unsubscribe, or 0.
std::uint64_t Session::subscribe_berth_events(Admission& a,
                                              const std::shared_ptr<EventMerge>& merge) {
  std::map<std::string, std::vector<std::string>> filters;
  for (const auto& [key, value] : query_params(a.rewritten.target)) {
    if (key == "until" && !value.empty()) {
      return 0;
    }
    if (key == "filters" && filters.empty()) {
      filters = policy::parse_filters(value.empty() ? "{}" : value).value_or(filters);
    }
  }
  const std::weak_ptr<Session> weak_self = shared_from_this();
  const std::weak_ptr<EventMerge> weak_merge = merge;
  auto executor = client_.get_executor();
  return worker_.index().subscribe_events(
      [weak_self, weak_merge, executor, filters](const std::string& line) {
        if (!policy::event_admitted(filters, json::parse(line, nullptr, false))) {
          return;
        }
        net::post(executor, [weak_self, weak_merge, line] {
          const auto session = weak_self.lock();
          const auto stream = weak_merge.lock();
          if (!session || !stream || stream->client_gone) {
            return;
          }
          session->add_events(*stream, line);
        });
      });
}

// A reader per host that is up, on the requester's query; since= holds the replayed events.
void Session::start_event_readers(Admission& a, const std::shared_ptr<EventMerge>& merge) {
  for (const auto& [key, value] : query_params(a.rewritten.target)) {
    merge->holding = merge->holding || (key == "since" && !value.empty());
  }
  for (const HostRuntime& host : a.rt->hosts) {
    if (worker_.index().host_facts(host.name)->up) {
      ++merge->open;
      ++merge->answering;
      net::co_spawn(client_.get_executor(),
                    read_events(shared_from_this(), merge, a.rt, Target{&host}, a.rewritten.target),
                    net::detached);
    }
  }
}

// `docker events` over a fleet: every host's stream, filtered for the requester as one host's
// is, merged as the lines come. With until=, each host ends its own stream and the merged one
// ends after the last. Events replayed by since= are sent in time order (EventMerge::hold).
net::awaitable<bool> Session::fan_out_events(Admission& a, Exchange& ex) {
  auto merge = std::make_shared<EventMerge>(client_.get_executor());
  if (a.tenant()) {
    merge->who = *a.who;
  }
  ex.status = 200;
  ex.stream = true;
  static constexpr std::string_view head =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nServer: berth\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  error_code ec;
  arm(client_write_timeout, Phase::write);
  co_await net::async_write(client_, net::buffer(head), with_ec(ec));
  disarm();
  if (ec) {
    co_return false;
  }
  start_event_readers(a, merge);
  const EventSink sink(worker_.index(), subscribe_berth_events(a, merge));
  bool watch_done = false;
  start_watch(watch_merge_client(shared_from_this(), merge), watch_done);
  const auto held_since = Clock::now();
  while (!merge->client_gone && !closed_) {
    if (merge->holding) {
      // Every host's past is in once all have answered and none sent a line for a moment;
      // a host that never stops replaying (an endless burst) is not waited for past 5 s.
      static constexpr auto quiet = std::chrono::milliseconds(150);
      const auto now = Clock::now();
      if (merge->open > 0 && (merge->answering > 0 || now - merge->last_line < quiet) &&
          now - held_since < std::chrono::seconds(5)) {
        merge->wake.expires_after(quiet);
        error_code ignored;
        co_await merge->wake.async_wait(with_ec(ignored));
        continue;
      }
      merge->release();
    }
    if (!merge->pending.empty()) {
      std::string chunk = std::move(merge->pending);
      merge->pending.clear();
      char size[20];
      const int n = std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
      chunk += "\r\n";
      const std::array<net::const_buffer, 2> pieces{net::buffer(size, static_cast<std::size_t>(n)),
                                                    net::buffer(chunk)};
      ex.bytes_out += chunk.size() - 2;
      arm(client_write_timeout, Phase::write);
      co_await net::async_write(client_, pieces, with_ec(ec));
      disarm();
      if (ec) {
        break;
      }
      continue;
    }
    if (merge->open == 0) {
      arm(client_write_timeout, Phase::write);
      static constexpr std::string_view last_chunk = "0\r\n\r\n";
      co_await net::async_write(client_, net::buffer(last_chunk), with_ec(ec));
      disarm();
      break;
    }
    merge->wake.expires_at(Clock::time_point::max());
    error_code ignored;
    co_await merge->wake.async_wait(with_ec(ignored));
  }
  merge->close_all();
  co_await end_watch(watch_done);
  co_return false;  // the connection ends with its stream, as dockerd's does
}

}  // namespace berth::proxy
