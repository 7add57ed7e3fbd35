#include "metering/docker.hpp"

#include <nlohmann/json.hpp>

#include "policy/vocabulary.hpp"

namespace berth::metering {
namespace {

using nlohmann::json;

std::string str(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::uint64_t u64(const json& object, const char* key) {
  const auto it = object.find(key);
  return it != object.end() && it->is_number_unsigned() ? it->get<std::uint64_t>() : 0;
}

std::optional<std::string> label(const json& labels, std::string_view key) {
  if (!labels.is_object()) {
    return std::nullopt;
  }
  const auto it = labels.find(std::string(key));
  if (it == labels.end() || !it->is_string()) {
    return std::nullopt;
  }
  return it->get<std::string>();
}

// A moved container's berth.id: the id its tenant knows (vocabulary::shown_id_label).
std::string shown_id(const json& labels) {
  auto v = label(labels, vocabulary::shown_id_label);
  return v && vocabulary::is_full_container_id(*v) ? *v : std::string();
}

std::string strip_slash(std::string name) {
  if (name.starts_with('/')) {
    name.erase(0, 1);
  }
  return name;
}

}  // namespace

std::string tenant_for_label(const std::optional<std::string>& label_value) {
  if (label_value && vocabulary::is_valid_tenant_id(*label_value)) {
    return *label_value;
  }
  return std::string(operator_tenant);
}

std::vector<ContainerInfo> parse_container_list(std::string_view body) {
  std::vector<ContainerInfo> out;
  const json doc = json::parse(body, nullptr, false);
  if (!doc.is_array()) {
    return out;
  }
  for (const json& c : doc) {
    if (!c.is_object()) {
      continue;
    }
    ContainerInfo info;
    info.id = str(c, "Id");
    if (info.id.empty()) {
      continue;
    }
    if (const auto names = c.find("Names"); names != c.end() && names->is_array() &&
                                            !names->empty() && names->front().is_string()) {
      info.name = strip_slash(names->front().get<std::string>());
    }
    info.tenant = tenant_for_label(label(c.value("Labels", json()), vocabulary::tenant_label));
    info.shown_id = shown_id(c.value("Labels", json()));
    info.running = str(c, "State") == "running";
    out.push_back(std::move(info));
  }
  return out;
}

std::optional<ContainerInfo> parse_container_inspect(std::string_view body) {
  const json c = json::parse(body, nullptr, false);
  if (!c.is_object() || str(c, "Id").empty()) {
    return std::nullopt;
  }
  ContainerInfo info;
  info.id = str(c, "Id");
  info.name = strip_slash(str(c, "Name"));
  const json config = c.value("Config", json::object());
  const json labels = config.is_object() ? config.value("Labels", json()) : json();
  info.tenant = tenant_for_label(label(labels, vocabulary::tenant_label));
  info.shown_id = shown_id(labels);
  const json host = c.value("HostConfig", json::object());
  if (host.is_object()) {
    info.cgroup_parent = str(host, "CgroupParent");
  }
  const json state = c.value("State", json::object());
  info.running = state.is_object() && state.value("Running", false);
  if (state.is_object()) {
    info.started_at = str(state, "StartedAt");
  }
  info.inspected = true;
  return info;
}

std::optional<ContainerEvent> parse_event(std::string_view line) {
  const json e = json::parse(line, nullptr, false);
  if (!e.is_object() || str(e, "Type") != "container") {
    return std::nullopt;
  }
  ContainerEvent ev;
  ev.action = str(e, "Action");
  const json actor = e.value("Actor", json::object());
  if (!actor.is_object()) {
    return std::nullopt;
  }
  ev.id = str(actor, "ID");
  if (ev.id.empty() || ev.action.empty()) {
    return std::nullopt;
  }
  const json attributes = actor.value("Attributes", json::object());
  ev.name = str(attributes, "name");
  ev.tenant_label = label(attributes, vocabulary::tenant_label);
  ev.shown_id = shown_id(attributes);
  if (const auto t = e.find("timeNano"); t != e.end() && t->is_number_integer()) {
    ev.time_unix_ns = t->get<std::int64_t>();
  }
  return ev;
}

std::optional<Reading> reading_from_stats(std::string_view body) {
  const json s = json::parse(body, nullptr, false);
  if (!s.is_object()) {
    return std::nullopt;
  }
  if (str(s, "read").starts_with("0001-01-01")) {
    return std::nullopt;
  }
  Reading r;
  const json cpu = s.value("cpu_stats", json::object());
  const json usage = cpu.is_object() ? cpu.value("cpu_usage", json::object()) : json::object();
  if (!usage.is_object() || !usage.contains("total_usage")) {
    return std::nullopt;
  }
  r.cpu_ns = u64(usage, "total_usage");
  const json mem = s.value("memory_stats", json::object());
  if (mem.is_object()) {
    const json stats = mem.value("stats", json::object());
    std::uint64_t inactive = 0;
    if (stats.is_object()) {
      inactive = stats.contains("total_inactive_file") ? u64(stats, "total_inactive_file")
                                                       : u64(stats, "inactive_file");
    }
    const std::uint64_t used = u64(mem, "usage");
    r.working_set_bytes = used > inactive ? used - inactive : 0;
  }
  if (const auto nets = s.find("networks"); nets != s.end() && nets->is_object()) {
    r.has_net = true;
    for (const auto& [name, n] : nets->items()) {
      if (n.is_object()) {
        r.net_rx_bytes += u64(n, "rx_bytes");
        r.net_tx_bytes += u64(n, "tx_bytes");
      }
    }
  }
  const json blk = s.value("blkio_stats", json::object());
  if (blk.is_object()) {
    const json list = blk.value("io_service_bytes_recursive", json());
    if (list.is_array()) {
      r.has_blk = true;
      for (const json& entry : list) {
        if (!entry.is_object()) {
          continue;
        }
        const std::string op = str(entry, "op");
        if (op == "Read" || op == "read") {
          r.blk_read_bytes += u64(entry, "value");
        } else if (op == "Write" || op == "write") {
          r.blk_write_bytes += u64(entry, "value");
        }
      }
    }
  }
  return r;
}

std::expected<std::vector<ContainerInfo>, std::string> DockerClient::list() const {
  auto r = http_request(endpoint_, "GET", "/containers/json?all=1");
  if (!r) {
    return std::unexpected(r.error());
  }
  if (r->status != 200) {
    return std::unexpected("container list: HTTP " + std::to_string(r->status));
  }
  return parse_container_list(r->body);
}

std::expected<ContainerInfo, std::string> DockerClient::inspect(std::string_view id) const {
  auto r = http_request(endpoint_, "GET", "/containers/" + std::string(id) + "/json");
  if (!r) {
    return std::unexpected(r.error());
  }
  if (r->status != 200) {
    return std::unexpected("inspect: HTTP " + std::to_string(r->status));
  }
  auto info = parse_container_inspect(r->body);
  if (!info) {
    return std::unexpected("inspect: unexpected answer");
  }
  return *info;
}

std::expected<HttpLineStream, std::string> DockerClient::stats_stream(std::string_view id) const {
  // dockerd sends the head at once and the first frame at its collector's next tick.
  return HttpLineStream::open(endpoint_, "/containers/" + std::string(id) + "/stats?stream=true",
                              std::chrono::seconds(10));
}

std::expected<HttpLineStream, std::string> DockerClient::events(std::int64_t since_unix) const {
  const std::string filters = R"({"type":["container"]})";
  return HttpLineStream::open(
      endpoint_, "/events?since=" + std::to_string(since_unix) + "&filters=" + url_encode(filters),
      std::chrono::seconds(10));
}

}  // namespace berth::metering
