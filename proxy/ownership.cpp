#include "proxy/ownership.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>

#include "policy/endpoint_table.hpp"
#include "policy/filter.hpp"
#include "policy/isolation.hpp"
#include "policy/migration.hpp"
#include "policy/names.hpp"
#include "policy/quota.hpp"
#include "policy/vocabulary.hpp"
#include "proxy/docker_client.hpp"
#include "proxy/host_routes.hpp"
#include "proxy/log.hpp"
#include "proxy/recovery.hpp"

namespace berth::proxy {

namespace {

using json = nlohmann::json;

// A label's value; "" when it is absent or not a string.
std::string label_value(const json& labels, std::string_view key) {
  if (labels.is_object()) {
    const auto it = labels.find(std::string(key));
    if (it != labels.end() && it->is_string()) {
      return it->get<std::string>();
    }
  }
  return {};
}

std::string label_tenant(const json& labels) {
  return label_value(labels, vocabulary::tenant_label);
}

// What a container's labels say of a migration: the id its tenant knows, the container it
// replaced.
void note_moved(policy::ContainerInfo& c, const json& labels) {
  c.shown = policy::shown_id(labels);
  c.twin_of = label_value(labels, policy::twin_label);
}

// dockerd names an anonymous volume as it makes a container id: 64 lowercase hex digits.
bool is_anonymous_volume(std::string_view name) {
  return vocabulary::is_full_container_id(name);
}


policy::ImageInfo image_from(const json& img) {
  policy::ImageInfo info;
  info.id = img.value("Id", std::string());
  if (img.contains("Labels")) {
    info.tenant = label_tenant(img["Labels"]);
  } else if (img.contains("Config") && img["Config"].is_object()) {
    info.tenant = label_tenant(img["Config"].value("Labels", json()));
  }
  if (img.contains("RepoTags") && img["RepoTags"].is_array()) {
    for (const auto& t : img["RepoTags"]) {
      if (t.is_string() && t.get<std::string>() != "<none>:<none>") {
        info.tags.push_back(t.get<std::string>());
      }
    }
  }
  return info;
}

// A network as dockerd's list and inspect show it, with the subnets of its IPAM.
policy::NetworkInfo network_from(const json& n) {
  policy::NetworkInfo info{n.value("Id", std::string()), label_tenant(n.value("Labels", json())),
                           n.value("Name", std::string()), {},
                           n.value("Scope", std::string("local")) == "local"};
  if (n.contains("IPAM") && n["IPAM"].is_object() && n["IPAM"].contains("Config") &&
      n["IPAM"]["Config"].is_array()) {
    for (const auto& config : n["IPAM"]["Config"]) {
      if (!config.is_object()) {
        continue;
      }
      if (const auto subnet = policy::parse_cidr(config.value("Subnet", std::string()), false)) {
        info.subnets.push_back(*subnet);
      }
    }
  }
  return info;
}

// A fresh index from dockerd's lists (containers, networks, volumes, images). Anonymous
// volumes have no label: their owner is the tenant whose container mounts them.
void fill_from_lists(policy::OwnershipIndex& fresh, const std::string& containers,
                     const std::string& networks, const std::string& volumes,
                     const std::string& images) {
  std::map<std::string, std::string> anonymous_owner;
  if (const auto list = json::parse(containers, nullptr, false); list.is_array()) {
    for (const auto& c : list) {
      policy::ContainerInfo info_c;
      info_c.id = c.value("Id", std::string());
      if (c.contains("Names") && c["Names"].is_array() && !c["Names"].empty()) {
        // The first name is the container's own; the others are link aliases.
        for (const auto& n : c["Names"]) {
          const std::string s = n.get<std::string>();
          if (s.find('/', 1) == std::string::npos) {
            info_c.name = s;
            break;
          }
        }
      }
      info_c.tenant = label_tenant(c.value("Labels", json()));
      note_moved(info_c, c.value("Labels", json()));
      info_c.state = c.value("State", std::string());
      if (!info_c.tenant.empty() && c.contains("Mounts") && c["Mounts"].is_array()) {
        for (const auto& m : c["Mounts"]) {
          const auto name = m.value("Name", std::string());
          if (m.value("Type", std::string()) == "volume" && is_anonymous_volume(name)) {
            anonymous_owner[name] = info_c.tenant;
          }
        }
      }
      fresh.put_container(std::move(info_c));
    }
  }
  if (const auto list = json::parse(networks, nullptr, false); list.is_array()) {
    for (const auto& n : list) {
      if (n.is_object()) {
        fresh.put_network(network_from(n));
      }
    }
  }
  if (const auto doc = json::parse(volumes, nullptr, false);
      doc.is_object() && doc.contains("Volumes") && doc["Volumes"].is_array()) {
    for (const auto& v : doc["Volumes"]) {
      policy::VolumeInfo info_v{v.value("Name", std::string()),
                                label_tenant(v.value("Labels", json()))};
      if (info_v.tenant.empty()) {
        if (auto it = anonymous_owner.find(info_v.name); it != anonymous_owner.end()) {
          info_v.tenant = it->second;
        }
      }
      fresh.put_volume(std::move(info_v));
    }
  }
  if (const auto list = json::parse(images, nullptr, false); list.is_array()) {
    for (const auto& img : list) {
      fresh.put_image(image_from(img));
    }
  }
}

// The images a host holds (GET /images/json?all=1), for placement and for the copies berth
// makes there (HostFacts::image_ids, image_tags).
void read_images(HostFacts& facts, const std::string& images) {
  facts.image_ids.clear();
  facts.image_tags.clear();
  if (const auto list = json::parse(images, nullptr, false); list.is_array()) {
    for (const auto& img : list) {
      if (!img.is_object() || !img.contains("Id") || !img["Id"].is_string()) {
        continue;
      }
      const std::string id = img["Id"].get<std::string>();
      for (const auto& tag : img.value("RepoTags", json::array())) {
        if (tag.is_string() && tag.get<std::string>() != "<none>:<none>") {
          facts.image_tags[tag.get<std::string>()] = id;
        }
      }
      facts.image_ids.push_back(id);
    }
  }
  std::sort(facts.image_ids.begin(), facts.image_ids.end());
}

// The host ports of the running containers of a container list ("Ports": PublicPort is
// there only while a container runs and publishes it).
std::map<std::string, std::vector<policy::HostPort>, std::less<>> published_ports_of(
    const std::string& containers) {
  std::map<std::string, std::vector<policy::HostPort>, std::less<>> out;
  const auto list = json::parse(containers, nullptr, false);
  for (const auto& c : list.is_array() ? list : json::array()) {
    const auto ports = c.is_object() ? c.value("Ports", json::array()) : json::array();
    std::vector<policy::HostPort> held;
    for (const auto& p : ports.is_array() ? ports : json::array()) {
      const auto port = p.is_object() ? p.value("PublicPort", std::int64_t{0}) : 0;
      if (port > 0 && port < 65536) {
        held.push_back({static_cast<std::uint16_t>(port), p.value("Type", "") == "udp"});
      }
    }
    if (!held.empty() && c.contains("Id") && c["Id"].is_string()) {
      std::sort(held.begin(), held.end());
      held.erase(std::unique(held.begin(), held.end()), held.end());
      out[c["Id"].get<std::string>()] = std::move(held);
    }
  }
  return out;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void index_container(SharedIndex& index, std::string_view inspect_json, std::string_view host) {
  const auto c = json::parse(inspect_json, nullptr, false);
  if (c.is_discarded() || !c.is_object()) {
    return;
  }
  policy::ContainerInfo info;
  info.id = c.value("Id", std::string());
  info.name = c.value("Name", std::string());
  info.host = std::string(host);
  if (c.contains("Config") && c["Config"].is_object()) {
    info.tenant = label_tenant(c["Config"].value("Labels", json()));
    note_moved(info, c["Config"].value("Labels", json()));
  }
  if (c.contains("State") && c["State"].is_object()) {
    info.state = c["State"].value("Status", std::string());
  }
  if (info.id.empty()) {
    return;
  }
  index.write([&](policy::OwnershipIndex& idx) {
    idx.put_container(info);
    if (c.contains("HostConfig") && c["HostConfig"].is_object()) {
      idx.set_resources(info.id, policy::held_resources(c["HostConfig"]));
    }
  });
}

void index_network(SharedIndex& index, std::string_view inspect_json) {
  const auto n = json::parse(inspect_json, nullptr, false);
  if (n.is_discarded() || !n.is_object() || !n.contains("Id")) {
    return;
  }
  policy::NetworkInfo info = network_from(n);
  index.write([&](policy::OwnershipIndex& idx) { idx.put_network(info); });
}

void index_volume(SharedIndex& index, std::string_view inspect_json, std::string_view host) {
  const auto v = json::parse(inspect_json, nullptr, false);
  if (v.is_discarded() || !v.is_object() || !v.contains("Name")) {
    return;
  }
  policy::VolumeInfo info{v.value("Name", std::string()), label_tenant(v.value("Labels", json())),
                          std::string(host)};
  index.write([&](policy::OwnershipIndex& idx) {
    // An anonymous volume learned from a tenant's mount keeps that owner.
    if (info.tenant.empty()) {
      if (auto known = idx.volume(info.name)) {
        info.tenant = known->tenant;
      }
    }
    idx.put_volume(info);
  });
}

void index_image(SharedIndex& index, std::string_view inspect_json) {
  const auto img = json::parse(inspect_json, nullptr, false);
  if (img.is_discarded() || !img.is_object() || !img.contains("Id")) {
    return;
  }
  auto info = image_from(img);
  index.write([&](policy::OwnershipIndex& idx) { idx.put_image(info); });
}

namespace {

// An exec session berth has not seen created: the host that knows it, and its container.
net::awaitable<void> refresh_exec(SharedIndex& index, UpstreamPool& pool,
                                  std::shared_ptr<const Runtime> rt, std::string ref) {
  for (const HostRuntime& host : rt->hosts) {
    const Target to{&host};
    auto reply = co_await docker_request_to(pool, rt, to, http::verb::get,
                                            "/exec/" + policy::escape_path(ref) + "/json");
    if (!reply || reply->status != 200) {
      continue;
    }
    const auto doc = json::parse(reply->body, nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
      co_return;
    }
    const std::string container = doc.value("ContainerID", std::string());
    auto c = co_await docker_request_to(pool, rt, to, http::verb::get,
                                        "/containers/" + policy::escape_path(container) + "/json");
    if (c && c->status == 200) {
      index_container(index, c->body, host.name);
      index.write([&](policy::OwnershipIndex& idx) { idx.put_exec(ref, container); });
    }
    co_return;
  }
}

}  // namespace

net::awaitable<void> refresh_reference(SharedIndex& index, UpstreamPool& pool,
                                       std::shared_ptr<const Runtime> rt, policy::RefKind kind,
                                       std::string tenant, std::string ref) {
  using policy::RefKind;
  std::vector<std::string> candidates;
  switch (kind) {
    case RefKind::container:
    case RefKind::network:
    case RefKind::volume:
      candidates = {policy::names::stored(tenant, ref), ref};
      break;
    case RefKind::image:
      if (auto parsed = policy::names::parse_image_ref(ref)) {
        candidates.push_back(policy::names::stored_image(tenant, *parsed));
      }
      candidates.push_back(ref);
      break;
    case RefKind::exec:
      co_await refresh_exec(index, pool, rt, ref);
      co_return;
    case RefKind::none:
      co_return;
  }
  for (const auto& candidate : candidates) {
    std::string target;
    switch (kind) {
      case RefKind::container:
        target = "/containers/" + policy::escape_path(candidate) + "/json";
        break;
      case RefKind::network:
        target = "/networks/" + policy::escape_path(candidate);
        break;
      case RefKind::volume:
        target = "/volumes/" + policy::escape_path(candidate);
        break;
      default:
        target = "/images/" + policy::escape_path(candidate) + "/json";
        break;
    }
    // A container or volume may be on any host; networks and images are on the primary.
    const bool any_host = kind == RefKind::container || kind == RefKind::volume;
    for (const HostRuntime& host : rt->hosts) {
      if (!any_host && &host != &rt->primary()) {
        break;
      }
      const Target to{&host};
      auto reply = co_await docker_request_to(pool, rt, to, http::verb::get, target);
      if (!reply || reply->status != 200) {
        continue;
      }
      switch (kind) {
        case RefKind::container:
          index_container(index, reply->body, host.name);
          break;
        case RefKind::network:
          index_network(index, reply->body);
          break;
        case RefKind::volume:
          index_volume(index, reply->body, host.name);
          break;
        default:
          index_image(index, reply->body);
          break;
      }
      break;
    }
  }
}

IndexWatcher::IndexWatcher(SharedIndex& index, RuntimeHolder& runtime, bool isolate_bridges,
                           std::string host)
    : index_(index),
      host_(std::move(host)),
      runtime_(runtime),
      isolation_(isolate_bridges),
      pool_(context_.get_executor()) {}

const HostRuntime* IndexWatcher::host_in(const Runtime& rt) const {
  return host_.empty() ? &rt.primary() : rt.host(host_);
}

net::awaitable<std::expected<DockerReply, error_code>> IndexWatcher::ask(
    std::shared_ptr<const Runtime> rt, std::string target) {
  const HostRuntime* host = host_in(*rt);
  if (host == nullptr) {
    co_return std::unexpected(make_error_code(net::error::not_found));
  }
  const Target to{host};
  co_return co_await docker_request_to(pool_, rt, to, http::verb::get, std::move(target));
}

// A container started, stopped or removed on a fleet host: the host ports it holds (none once
// it stopped), for placement.
net::awaitable<void> IndexWatcher::note_published_ports(std::string action, std::string id) {
  const auto rt = runtime_.get();
  const HostRuntime* host = host_in(*rt);
  if (host == nullptr || !rt->fleet()) {
    co_return;
  }
  std::vector<policy::HostPort> ports;
  if (action == "start" || action == "unpause" || action == "restart") {
    auto reply = co_await ask(rt, "/containers/" + id + "/json");
    const auto doc = reply && reply->status == 200 ? json::parse(reply->body, nullptr, false)
                                                   : json();
    if (doc.is_object() && doc.contains("NetworkSettings") && doc["NetworkSettings"].is_object()) {
      ports = policy::fixed_host_ports(doc["NetworkSettings"].value("Ports", json()));
    }
  }
  index_.update_host_facts(host->name, [&](HostFacts& facts) {
    if (ports.empty()) {
      facts.published.erase(id);
    } else {
      facts.published[id] = std::move(ports);
    }
  });
}

// The ids of every image the host holds, for placement (policy::HostState::image_ids).
net::awaitable<void> IndexWatcher::refresh_image_ids() {
  const auto rt = runtime_.get();
  auto images = co_await ask(rt, "/images/json?all=1");
  const HostRuntime* host = host_in(*rt);
  if (!images || images->status != 200 || host == nullptr) {
    co_return;
  }
  index_.update_host_facts(host->name,
                           [&](HostFacts& facts) { read_images(facts, images->body); });
}

void IndexWatcher::sync_isolation() {
  if (!isolation_.enabled()) {
    return;
  }
  const auto networks = index_.read(
      [](const policy::OwnershipIndex& idx) { return idx.networks_of_tenants(); });
  std::vector<std::string> bridges;
  for (const auto& n : networks) {
    if (auto bridge = policy::isolation::bridge_of(n.id); !bridge.empty()) {
      bridges.push_back(std::move(bridge));
    }
  }
  isolation_.update(bridges);
}

IndexWatcher::~IndexWatcher() { stop(); }

void IndexWatcher::start() {
  net::co_spawn(context_, follow_meter(this), net::detached);
  net::co_spawn(context_, follow_migrations(this), net::detached);
  net::co_spawn(context_, run(this), [](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        log_error(std::string("index watcher failed: ") + ex.what());
      }
    }
  });
  thread_ = std::thread([this] { context_.run(); });
}

void IndexWatcher::stop() {
  if (stopping_.exchange(true)) {
    return;
  }
  net::post(context_, [this] {
    if (events_stream_) {
      events_stream_->close();
    }
    pool_.clear();
    context_.stop();
  });
  if (thread_.joinable()) {
    thread_.join();
  }
}

bool IndexWatcher::wait_ready(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!synced_.load()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

net::awaitable<void> IndexWatcher::run(IndexWatcher* self) {
  bool logged_down = false;
  while (!self->stopping_) {
    const std::int64_t since = unix_now();
    if (co_await self->resync()) {
      if (logged_down) {
        log_info("ownership index: dockerd is back; index resynchronised");
        logged_down = false;
      }
      self->synced_.store(true);
      if (self->primary(*self->runtime_.get())) {
        self->index_.mark_ready();
      }
      co_await self->follow_events(since - 1);
    } else if (!logged_down) {
      log_warn("ownership index: cannot list dockerd's objects; retrying every second");
      logged_down = true;
    }
    if (self->stopping_) {
      break;
    }
    net::steady_timer pause(self->context_, std::chrono::seconds(1));
    error_code ec;
    co_await pause.async_wait(with_ec(ec));
  }
}

// GET of a plain http://host:port/path (a berth-meter on the host's network), bounded in time.
net::awaitable<std::optional<std::string>> IndexWatcher::scrape(const std::string& url) {
  const std::string_view rest = std::string_view(url).substr(7);  // after "http://"
  const std::string authority(rest.substr(0, rest.find('/')));
  const std::string path =
      rest.find('/') == std::string_view::npos ? "/metrics" : std::string(rest.substr(rest.find('/')));
  const auto colon = authority.rfind(':');
  const std::string host = authority.substr(0, colon);
  const std::string port = colon == std::string::npos ? "80" : authority.substr(colon + 1);
  beast::tcp_stream stream(context_);
  stream.expires_after(std::chrono::seconds(3));
  net::ip::tcp::resolver resolver(context_);
  error_code ec;
  const auto found = co_await resolver.async_resolve(host, port, with_ec(ec));
  if (!ec) {
    co_await stream.async_connect(found, with_ec(ec));
  }
  http::request<http::empty_body> req{http::verb::get, path, 11};
  req.set(http::field::host, authority);
  if (!ec) {
    co_await http::async_write(stream, req, with_ec(ec));
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  if (!ec) {
    co_await http::async_read(stream, buffer, parser, with_ec(ec));
  }
  if (ec || parser.get().result() != http::status::ok) {
    co_return std::nullopt;
  }
  co_return parser.release().body();
}

net::awaitable<void> IndexWatcher::follow_meter(IndexWatcher* self) {
  while (!self->stopping_) {
    const auto rt = self->runtime_.get();
    const HostRuntime* host = self->host_in(*rt);
    if (host != nullptr && !host->spec->meter.empty()) {
      if (auto text = co_await self->scrape(host->spec->meter)) {
        const auto now = std::chrono::steady_clock::now();
        self->usage_.add(std::chrono::duration_cast<std::chrono::milliseconds>(
                             now.time_since_epoch())
                             .count(),
                         policy::parse_container_samples(*text));
        self->index_.set_host_usage(host->name, HostUsage{now, self->usage_.snapshot()});
      }
    }
    net::steady_timer pause(self->context_, std::chrono::seconds(5));
    error_code ec;
    co_await pause.async_wait(with_ec(ec));
  }
}

net::awaitable<void> IndexWatcher::follow_migrations(IndexWatcher* self) {
  while (!self->stopping_) {
    const auto rt = self->runtime_.get();
    if (self->synced_ && rt->fleet() && self->primary(*rt)) {
      try {
        co_await recover_migrations(self->index_, self->pool_, rt);
      } catch (const std::exception& e) {
        // A surprise in one reading ends that reading, never the recovery.
        log_error(std::string("migration recovery failed: ") + e.what());
      }
    }
    net::steady_timer pause(self->context_, std::chrono::seconds(3));
    error_code ec;
    co_await pause.async_wait(with_ec(ec));
  }
}

net::awaitable<bool> IndexWatcher::resync() {
  const auto rt = runtime_.get();
  const HostRuntime* host = host_in(*rt);
  if (host == nullptr) {
    co_return false;
  }
  const std::string name = host->name;
  const bool is_primary = primary(*rt);
  auto info = co_await ask(rt, "/info");
  auto containers = co_await ask(rt, "/containers/json?all=1");
  auto volumes = co_await ask(rt, "/volumes");
  auto images = co_await ask(rt, "/images/json?all=1");
  // Networks are the primary's (a fleet's tenant networks are overlays made on its manager).
  std::expected<DockerReply, error_code> networks = DockerReply{200, "[]"};
  if (is_primary) {
    networks = co_await ask(rt, "/networks");
  }
  for (const auto* r : {&info, &containers, &networks, &volumes, &images}) {
    if (!*r || (*r)->status != 200) {
      index_.set_host_up(name, false);
      co_return false;
    }
  }
  policy::OwnershipIndex fresh;
  policy::DaemonFacts facts;
  HostFacts host_facts;
  host_facts.up = true;
  if (const auto doc = json::parse(info->body, nullptr, false); doc.is_object()) {
    facts.cgroup_driver = doc.value("CgroupDriver", std::string("cgroupfs"));
    facts.log_driver = doc.value("LoggingDriver", std::string("json-file"));
    host_facts.nano_cpus = doc.value("NCPU", std::int64_t{0}) * 1'000'000'000;
    host_facts.memory = doc.value("MemTotal", std::int64_t{0});
  }
  read_images(host_facts, images->body);
  if (rt->fleet()) {  // only placement reads them
    host_facts.published = published_ports_of(containers->body);
  }
  fill_from_lists(fresh, containers->body, networks->body, volumes->body,
                  is_primary ? images->body : std::string("[]"));
  // What each tenant container holds against its quota is in its HostConfig, which only
  // inspect shows: one request per tenant container, here and not on any request's path.
  for (const auto& c : fresh.containers_of_tenants()) {
    auto reply = co_await ask(rt, "/containers/" + c.id + "/json");
    if (!reply || reply->status != 200) {
      continue;  // removed meanwhile; its destroy event follows
    }
    if (const auto doc = json::parse(reply->body, nullptr, false);
        doc.is_object() && doc.contains("HostConfig")) {
      fresh.set_resources(c.id, policy::held_resources(doc["HostConfig"]));
    }
  }
  // Anonymous volumes of tenants that the previous index learned from mount events survive a
  // resynchronisation even after their container is gone.
  index_.write([&](policy::OwnershipIndex& idx) {
    for (const auto& v : fresh.volumes_of("")) {
      if (auto known = idx.volume(v.name); known && !known->tenant.empty()) {
        fresh.put_volume(*known);
      }
    }
    idx.replace_host(name, std::move(fresh), is_primary);
  });
  index_.set_host_facts(name, std::move(host_facts));
  if (is_primary) {
    facts.fleet = rt->fleet();
    facts.host_routes = read_host_routes();
    index_.set_facts(std::move(facts));
    sync_isolation();
  }
  co_return true;
}

net::awaitable<void> IndexWatcher::follow_events(std::int64_t since) {
  const auto rt = runtime_.get();
  const HostRuntime* host = host_in(*rt);
  if (host == nullptr) {
    co_return;
  }
  const Target to{host};
  auto acquired = co_await pool_.acquire(rt, to);
  if (!acquired) {
    co_return;
  }
  events_stream_ = *acquired;
  http::request<http::empty_body> req{http::verb::get,
                                      "/events?since=" + std::to_string(since), 11};
  req.set(http::field::host, "docker");
  error_code ec;
  co_await http::async_write(*events_stream_, req, with_ec(ec));
  if (ec) {
    co_return;
  }
  beast::flat_buffer buffer;
  buffer.reserve(64 * 1024);
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  co_await http::async_read_header(*events_stream_, buffer, parser, with_ec(ec));
  if (ec || parser.get().result() != http::status::ok) {
    co_return;
  }
  std::string pending;
  std::vector<char> window(64 * 1024);
  while (!parser.is_done() && !stopping_) {
    parser.get().body().data = window.data();
    parser.get().body().size = window.size();
    co_await http::async_read_some(*events_stream_, buffer, parser, with_ec(ec));
    if (ec == http::error::need_buffer) {
      ec = {};
    }
    if (ec) {
      break;
    }
    pending.append(window.data(), window.size() - parser.get().body().size);
    std::size_t start = 0;
    for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n', start)) {
      const std::string line = pending.substr(start, nl - start);
      start = nl + 1;
      co_await apply_event(line);
    }
    pending.erase(0, start);
  }
  events_stream_->close();
  events_stream_.reset();
  index_.set_host_up(host->name, false);
  if (!stopping_) {
    log_warn("ownership index: dockerd's event stream ended; resynchronising");
  }
}

void IndexWatcher::refresh_host_routes() {
  policy::DaemonFacts facts = *index_.facts();
  facts.host_routes = read_host_routes();
  index_.set_facts(std::move(facts));
}

net::awaitable<void> IndexWatcher::apply_event(std::string_view line) {
  const auto ev = json::parse(line, nullptr, false);
  if (ev.is_discarded() || !ev.is_object()) {
    co_return;
  }
  const std::string type = ev.value("Type", std::string());
  const std::string action = ev.value("Action", std::string());
  if (!ev.contains("Actor") || !ev["Actor"].is_object()) {
    co_return;
  }
  const json& actor = ev["Actor"];
  const std::string id = actor.value("ID", std::string());
  const json attrs = actor.value("Attributes", json::object());
  const bool is_primary = primary(*runtime_.get());
  if (type == "container") {
    co_await apply_container_event(action, id, attrs);
  } else if (type == "network" && is_primary && !policy::overlay_attachment_event(ev)) {
    co_await apply_network_event(action, id);
  } else if (type == "network" && is_primary && action == "destroy") {
    // The primary's copy of an overlay went. Usually the overlay lives on (no container of it
    // is left here); after the Swarm removed it, this is the last word on it (a berth that
    // started in between never saw the Swarm's "remove").
    const auto rt = runtime_.get();
    auto reply = co_await ask(rt, "/networks/" + id);
    if (reply && reply->status == 404) {
      co_await apply_network_event(action, id);
    }
  } else if (type == "volume") {
    co_await apply_volume_event(action, id, attrs);
  } else if (type == "image") {
    if (is_primary) {
      co_await apply_image_event(id);
    }
    co_await refresh_image_ids();
  }
}

net::awaitable<void> IndexWatcher::apply_container_event(std::string action, std::string id,
                                                         json attrs) {
  const auto rt = runtime_.get();
  const HostRuntime* host = host_in(*rt);
  if (host == nullptr) {
    co_return;
  }
  if (action == "create") {
    policy::ContainerInfo c{id, label_tenant(attrs), attrs.value("name", std::string()),
                            "created", host->name};
    note_moved(c, attrs);
    index_.write([&](policy::OwnershipIndex& idx) { idx.put_container(c); });
    if (!c.tenant.empty()) {
      // A tenant container created behind berth's back (by the operator on the socket)
      // holds quota too; one created through berth is already recorded with its holding.
      const bool known = index_.read([&](const policy::OwnershipIndex& idx) {
        return idx.resources_of(id).has_value();
      });
      if (!known) {
        auto reply = co_await ask(rt, "/containers/" + id + "/json");
        if (reply && reply->status == 200) {
          index_container(index_, reply->body, host->name);
        }
      }
    }
  } else if (action == "update") {
    auto reply = co_await ask(rt, "/containers/" + id + "/json");
    if (reply && reply->status == 200) {
      index_container(index_, reply->body, host->name);
    }
  } else if (action == "destroy") {
    index_.write([&](policy::OwnershipIndex& idx) { idx.erase_container(id); });
    co_await note_published_ports(action, id);  // a created one never started held its ports
  } else if (action == "rename") {
    const auto name = attrs.value("name", std::string());
    index_.write([&](policy::OwnershipIndex& idx) { idx.rename_container(id, name); });
  } else if (action == "start" || action == "unpause" || action == "restart") {
    index_.write([&](policy::OwnershipIndex& idx) { idx.set_container_state(id, "running"); });
    co_await note_published_ports(action, id);
  } else if (action == "die") {
    index_.write([&](policy::OwnershipIndex& idx) { idx.set_container_state(id, "exited"); });
    co_await note_published_ports(action, id);
  } else if (action == "pause") {
    index_.write([&](policy::OwnershipIndex& idx) { idx.set_container_state(id, "paused"); });
  }
}

net::awaitable<void> IndexWatcher::apply_network_event(std::string action, std::string id) {
  const auto rt = runtime_.get();
  if (action == "create") {
    auto reply = co_await ask(rt, "/networks/" + id);
    if (reply && reply->status == 200) {
      index_network(index_, reply->body);
    }
    sync_isolation();
    refresh_host_routes();
  } else if (action == "destroy" || action == "remove") {  // "remove": a Swarm overlay's end
    index_.write([&](policy::OwnershipIndex& idx) { idx.erase_network(id); });
    sync_isolation();
    refresh_host_routes();
  }
}

net::awaitable<void> IndexWatcher::apply_volume_event(std::string action, std::string id,
                                                      json attrs) {
  const auto rt = runtime_.get();
  const HostRuntime* host = host_in(*rt);
  if (host == nullptr) {
    co_return;
  }
  if (action == "create") {
    auto reply = co_await ask(rt, "/volumes/" + policy::escape_path(id));
    if (reply && reply->status == 200) {
      index_volume(index_, reply->body, host->name);
    }
  } else if (action == "destroy") {
    index_.write([&](policy::OwnershipIndex& idx) { idx.erase_volume(id); });
  } else if (action == "mount" && is_anonymous_volume(id)) {
    const auto container = attrs.value("container", std::string());
    index_.write([&](policy::OwnershipIndex& idx) {
      auto c = idx.container_by_id(container);
      auto v = idx.volume(id);
      if (c && !c->tenant.empty() && (!v || v->tenant.empty())) {
        idx.put_volume({id, c->tenant, host->name});
      }
    });
  }
}

net::awaitable<void> IndexWatcher::apply_image_event(std::string id) {
  const auto rt = runtime_.get();
  auto reply = co_await ask(rt, "/images/" + policy::escape_path(id) + "/json");
  if (reply && reply->status == 200) {
    index_image(index_, reply->body);
  } else if (reply && reply->status == 404 && id.starts_with("sha256:")) {
    index_.write([&](policy::OwnershipIndex& idx) { idx.erase_image(id); });
  }
}

}  // namespace berth::proxy
