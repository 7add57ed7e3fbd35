#include "policy/migration.hpp"

#include <algorithm>
#include <iterator>
#include <map>
#include <set>

namespace berth::policy {

using json = nlohmann::json;

namespace {

const json& field(const json& doc, const char* key) {
  static const json none;
  return doc.is_object() && doc.contains(key) ? doc[key] : none;
}

bool non_empty(const json& v) {
  return (v.is_array() || v.is_object()) && !v.empty();
}

}  // namespace

std::string shown_id(const json& labels) {
  const json& v = field(labels, std::string(shown_id_label).c_str());
  const bool full =
      v.is_string() && vocabulary::is_full_container_id(v.get_ref<const std::string&>());
  return full ? v.get<std::string>() : "";
}

std::string tenant_id_of(const json& inspect) {
  std::string shown = shown_id(field(field(inspect, "Config"), "Labels"));
  if (shown.empty() && field(inspect, "Id").is_string()) {
    shown = inspect["Id"].get<std::string>();
  }
  return shown;
}

std::vector<std::string> migration_blockers(const json& inspect) {
  std::vector<std::string> out;
  const json& state = field(inspect, "State");
  const json& config = field(inspect, "Config");
  const json& host = field(inspect, "HostConfig");
  if (!field(state, "Running").is_boolean() || !field(state, "Running").get<bool>()) {
    out.emplace_back("it is not running");
  } else if (field(state, "Paused") == true) {
    out.emplace_back("it is paused");
  }
  if (field(config, "Tty") == true) {
    out.emplace_back("it has a TTY, whose sessions cannot be carried");
  }
  if (field(config, "OpenStdin") == true) {
    out.emplace_back("its stdin is open to attach sessions, which cannot be carried");
  }
  const json& labels = field(config, "Labels");
  if (labels.is_object() && labels.contains(no_migrate_label) &&
      labels[std::string(no_migrate_label)] == "no") {
    out.emplace_back("it is marked not to move (label " + std::string(no_migrate_label) +
                     "=no)");
  }
  if (field(inspect, "Mounts").is_array()) {
    for (const json& m : field(inspect, "Mounts")) {
      const std::string type = field(m, "Type").is_string() ? m["Type"].get<std::string>() : "";
      if (type != "tmpfs") {
        out.emplace_back("it has a " + (type.empty() ? std::string("mount") : type) + " at " +
                         (field(m, "Destination").is_string() ? m["Destination"].get<std::string>()
                                                              : std::string("?")) +
                         ", which stays on its host");
      }
    }
  }
  if (non_empty(field(host, "Devices")) || non_empty(field(host, "DeviceRequests"))) {
    out.emplace_back("it uses devices of its host");
  }
  if (field(host, "Privileged") == true) {
    out.emplace_back("it is privileged");
  }
  if (non_empty(field(host, "Links"))) {
    out.emplace_back("it has legacy links");
  }
  const json& ports = field(host, "PortBindings");
  if (ports.is_object()) {
    for (const auto& [port, bindings] : ports.items()) {
      if (non_empty(bindings)) {
        out.emplace_back("it publishes port " + port + " on its host");
        break;
      }
    }
  }
  const std::string mode =
      field(host, "NetworkMode").is_string() ? host["NetworkMode"].get<std::string>() : "";
  if (mode == "host" || mode.starts_with("container:")) {
    out.emplace_back("it shares the network namespace of " +
                     (mode == "host" ? std::string("its host") : mode.substr(10)));
  }
  const json& networks = field(field(inspect, "NetworkSettings"), "Networks");
  if (networks.is_object() && networks.size() > 1) {
    out.emplace_back("it is on more than one network");
  }
  if (!field(inspect, "Id").is_string() || !field(inspect, "Name").is_string()) {
    out.emplace_back("dockerd's description of it has no id or name");
  }
  return out;
}

json migration_create_body(const json& inspect) {
  json body = field(inspect, "Config").is_object() ? inspect["Config"] : json::object();
  body["HostConfig"] = field(inspect, "HostConfig").is_object() ? inspect["HostConfig"]
                                                               : json::object();
  const std::string id = field(inspect, "Id").is_string() ? inspect["Id"].get<std::string>() : "";
  const std::string short_id = id.substr(0, 12);
  json endpoints = json::object();
  const json& networks = field(field(inspect, "NetworkSettings"), "Networks");
  if (networks.is_object()) {
    for (const auto& [name, net] : networks.items()) {
      json endpoint = json::object();
      const json& address = field(net, "IPAddress");
      if (address.is_string() && !address.get<std::string>().empty() && name != "bridge") {
        endpoint["IPAMConfig"] = {{"IPv4Address", address}};
      }
      json aliases = json::array();
      if (field(net, "Aliases").is_array()) {
        for (const json& alias : net["Aliases"]) {
          if (alias.is_string() && alias != short_id && alias != id) {
            aliases.push_back(alias);
          }
        }
      }
      if (!aliases.empty()) {
        endpoint["Aliases"] = aliases;
      }
      endpoints[name] = endpoint;
    }
  }
  body["NetworkingConfig"] = {{"EndpointsConfig", endpoints}};
  if (!body["Labels"].is_object()) {
    body["Labels"] = json::object();
  }
  body["Labels"][std::string(twin_label)] = id;
  body["Labels"][std::string(shown_id_label)] = tenant_id_of(inspect);
  return body;
}

json moved_event(const json& source_inspect, std::int64_t time_nano) {
  const std::string new_id = tenant_id_of(source_inspect);
  const json& config = field(source_inspect, "Config");
  json attributes = field(config, "Labels").is_object() ? field(config, "Labels") : json::object();
  for (auto it = attributes.begin(); it != attributes.end();) {
    it = it.value().is_string() ? std::next(it) : attributes.erase(it);
  }
  const json& image = field(config, "Image");
  const json& name = field(source_inspect, "Name");
  const json& old_id = field(source_inspect, "Id");
  attributes["image"] = image.is_string() ? image : json("");
  attributes["name"] = name.is_string() ? json(name.get<std::string>().substr(
                                              name.get<std::string>().starts_with('/') ? 1 : 0))
                                        : json("");
  attributes["previousId"] = old_id.is_string() ? old_id : json("");
  return {{"status", "moved"},
          {"id", new_id},
          {"from", attributes["image"]},
          {"Type", "container"},
          {"Action", "moved"},
          {"Actor", {{"ID", new_id}, {"Attributes", attributes}}},
          {"scope", "local"},
          {"time", time_nano / 1000000000},
          {"timeNano", time_nano}};
}

namespace {

// True when some value of `values` is `wanted`.
bool any_is(const std::vector<std::string>& values, const std::string& wanted) {
  return std::find(values.begin(), values.end(), wanted) != values.end();
}

std::string text_at(const json& obj, const char* key) {
  const json& v = field(obj, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

}  // namespace

bool event_admitted(const std::map<std::string, std::vector<std::string>>& filters,
                    const json& event) {
  const json& attributes = field(field(event, "Actor"), "Attributes");
  for (const auto& [key, values] : filters) {
    if (values.empty()) {
      continue;
    }
    bool holds = false;
    if (key == "type") {
      holds = any_is(values, text_at(event, "Type"));
    } else if (key == "event") {
      holds = any_is(values, text_at(event, "Action"));
    } else if (key == "scope") {
      holds = any_is(values, text_at(event, "scope"));
    } else if (key == "container") {
      holds = any_is(values, text_at(field(event, "Actor"), "ID")) ||
              any_is(values, text_at(attributes, "previousId")) ||
              any_is(values, text_at(attributes, "name"));
    } else if (key == "image") {
      const std::string image = text_at(attributes, "image");
      holds = std::any_of(values.begin(), values.end(), [&](const std::string& v) {
        return v == image || image.starts_with(v + ":");
      });
    } else if (key == "label") {
      holds = std::all_of(values.begin(), values.end(), [&](const std::string& v) {
        const std::size_t eq = v.find('=');
        const std::string k = v.substr(0, eq);
        return attributes.is_object() && attributes.contains(k) && attributes[k].is_string() &&
               (eq == std::string::npos || attributes[k] == v.substr(eq + 1));
      });
    }
    if (!holds) {
      return false;
    }
  }
  return true;
}

namespace {

// The steps for one source (see recovery_steps).
std::vector<RecoveryStep> recover_one(const std::string& id, const std::vector<TwinSeen>& twins,
                                      const KeptSeen* kept, const std::optional<SourceSeen>& src) {
  using Kind = RecoveryStep::Kind;
  std::vector<RecoveryStep> steps;
  if (!src) {
    if (kept != nullptr) {
      steps.push_back({Kind::release, kept->host, id});
    }
    return steps;
  }
  bool twin_ran = false;
  for (const TwinSeen& t : twins) {
    const bool recorded = kept != nullptr && !kept->twin.empty() && kept->twin == t.id;
    if (!recorded && (t.tenant != src->tenant || t.name != src->name)) {
      continue;  // no twin of this source
    }
    if (t.state == "created") {
      steps.push_back({Kind::discard, t.host, t.id});
    } else {
      twin_ran = true;
    }
  }
  const std::string& holder = kept != nullptr ? kept->host : src->host;
  if (twin_ran) {
    steps.push_back({Kind::commit, holder, id});
  } else if (kept != nullptr) {
    steps.push_back(src->running ? RecoveryStep{Kind::release, holder, id}
                                 : RecoveryStep{Kind::rollback, holder, id, kept->checkpoint});
  }
  return steps;
}

}  // namespace

std::vector<Recovery> recovery_steps(
    const std::vector<TwinSeen>& twins, const std::vector<KeptSeen>& kept,
    const std::function<std::optional<SourceSeen>(std::string_view)>& source,
    const std::function<bool(std::string_view)>& in_flight) {
  std::map<std::string, std::vector<TwinSeen>> twins_of;
  std::map<std::string, const KeptSeen*> kept_of;
  std::set<std::string> sources;
  for (const TwinSeen& t : twins) {
    twins_of[t.source].push_back(t);
    sources.insert(t.source);
  }
  for (const KeptSeen& k : kept) {
    kept_of[k.container] = &k;
    sources.insert(k.container);
  }
  std::vector<Recovery> out;
  for (const std::string& id : sources) {
    bool busy = id.empty() || in_flight(id);
    for (const TwinSeen& t : twins_of[id]) {
      busy = busy || in_flight(t.id);
    }
    if (busy) {
      continue;
    }
    const auto k = kept_of.find(id);
    auto steps = recover_one(id, twins_of[id], k == kept_of.end() ? nullptr : k->second,
                             source(id));
    if (!steps.empty()) {
      out.push_back({id, std::move(steps)});
    }
  }
  return out;
}

}  // namespace berth::policy
