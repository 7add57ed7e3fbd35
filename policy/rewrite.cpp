#include "policy/rewrite.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <cstdlib>
#include <set>

#include "policy/docker_types.hpp"
#include "policy/dockerfile.hpp"
#include "policy/egress.hpp"
#include "policy/go_json.hpp"
#include "policy/hex.hpp"
#include "policy/migration.hpp"
#include "policy/names.hpp"
#include "policy/network_pools.hpp"
#include "policy/units.hpp"
#include "policy/vocabulary.hpp"

namespace berth::policy {

namespace {

using json = nlohmann::json;

Decision refuse(std::string message, std::string rule) {
  return Decision::deny(403, "berth: " + std::move(message), std::move(rule));
}

Decision bad(std::string message, std::string rule) {
  return Decision::deny(400, std::move(message), std::move(rule));
}

Rewritten refused(Decision d) {
  Rewritten r;
  r.decision = std::move(d);
  return r;
}

bool is_reserved_label(std::string_view key) {
  return key.starts_with(vocabulary::reserved_label_prefix);
}

// Labels: no berth.* from the tenant, then the ownership label.
std::optional<Decision> own_labels(json& doc, const char* field, std::string_view tenant,
                                   std::string_view what) {
  json& labels = doc[field];
  if (labels.is_null()) {
    labels = json::object();
  }
  for (const auto& [key, value] : labels.items()) {
    if (is_reserved_label(key)) {
      return refuse(std::string(what) + " label '" + key +
                        "' is reserved: the berth. prefix belongs to the operator",
                    "label.reserved");
    }
  }
  labels[std::string(vocabulary::tenant_label)] = std::string(tenant);
  return std::nullopt;
}

// Splits "name[:suffix]" at the first ':'.
std::pair<std::string, std::string> split_ref(std::string_view entry) {
  const auto colon = entry.find(':');
  if (colon == std::string_view::npos) {
    return {std::string(entry), {}};
  }
  return {std::string(entry.substr(0, colon)), std::string(entry.substr(colon))};
}

struct Ctx {
  const Principal& who;
  const OwnershipIndex& index;
  const DaemonFacts& facts;
  const Tenant& rules;
  Rewritten& out;
  /// Host ports a create publishes, counted by judge_ports for apply_limits' claim.
  mutable std::optional<std::int64_t> ports;
  const std::string& tenant() const { return who.tenant; }
};

// A container named inside a request body: dockerd answers a missing one with 400 (the
// docker CLI reads a 404 from create as a missing image and starts a pull).
Decision body_container_not_found(std::string_view ref) {
  return Decision::deny(400, "No such container: " + std::string(ref), "resolve.container");
}

std::expected<std::string, Decision> container_id(const Ctx& c, std::string_view ref) {
  auto found = c.index.find_container(c.tenant(), ref);
  if (found.result == Lookup::found) {
    return found.value.id;
  }
  return std::unexpected(body_container_not_found(ref));
}

// Rewrites "name[:alias]" links in place to "<prefix><stored name>:<alias>" within the
// tenant; `missing` is dockerd's answer for a missing container in that context.
std::optional<Decision> resolve_links(const Ctx& c, json& links, std::string_view prefix,
                                      Decision (*missing)(std::string_view)) {
  for (auto& link : links) {
    auto [ref, alias] = split_ref(link.get<std::string>());
    auto found = c.index.find_container(c.tenant(), ref);
    if (found.result != Lookup::found) {
      return missing(ref);
    }
    link = std::string(prefix) + found.value.name + (alias.empty() ? ":" + ref : alias);
  }
  return std::nullopt;
}

// A network reference in a body: the tenant's default, none, or one of its own networks.
std::expected<std::string, Decision> network_name(const Ctx& c, std::string_view ref) {
  if (ref.empty() || ref == "default" || ref == names::default_network_view) {
    c.out.ensure_default_network = true;
    return names::default_network(c.tenant());
  }
  if (ref == "host") {
    return std::unexpected(refuse("HostConfig.NetworkMode 'host' (the host network) is not "
                                  "allowed for tenant " + c.tenant(),
                                  "network.host"));
  }
  if (ref == "none") {
    return std::string("none");
  }
  auto found = c.index.find_network(c.tenant(), ref);
  if (found.result == Lookup::found) {
    return found.value.name;
  }
  return std::unexpected(not_found(RefKind::network, ref));
}

// A named volume: the tenant's own (existing or to be created, labelled, by the proxy).
std::expected<std::string, Decision> volume_name(const Ctx& c, std::string_view name) {
  if (!names::is_valid_object_name(name)) {
    return std::unexpected(bad("create " + std::string(name) +
                                   ": \"" + std::string(name) +
                                   "\" includes invalid characters for a local volume name, "
                                   "only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed",
                               "volume.name"));
  }
  const std::string stored = names::stored(c.tenant(), name);
  if (auto v = c.index.volume(stored)) {
    if (v->tenant != c.tenant()) {
      return std::unexpected(not_found(RefKind::volume, name));
    }
    return stored;
  }
  if (auto v = c.index.volume(name); v && v->tenant == c.tenant()) {
    return std::string(name);  // a labelled volume created without a name
  }
  c.out.ensure_volumes.push_back(stored);
  return stored;
}

// Mode fields that can name the host or another container: "host" is refused,
// "container:<ref>" is resolved within the tenant.
std::optional<Decision> namespace_mode(const Ctx& c, json& hc, const char* field,
                                       bool container_allowed,
                                       std::initializer_list<std::string_view> plain_ok) {
  if (!hc.contains(field)) {
    return std::nullopt;
  }
  std::string mode = hc[field].get<std::string>();
  if (mode.empty()) {
    return std::nullopt;
  }
  if (container_allowed && mode.starts_with("container:")) {
    auto id = container_id(c, std::string_view(mode).substr(10));
    if (!id) {
      return id.error();
    }
    hc[field] = "container:" + *id;
    return std::nullopt;
  }
  for (auto ok : plain_ok) {
    if (mode == ok) {
      return std::nullopt;
    }
  }
  return refuse("HostConfig." + std::string(field) + " '" + mode + "' is not allowed for tenant " +
                    c.tenant(),
                "escape.namespace");
}

bool nonempty(const json& doc, const char* field) {
  if (!doc.contains(field)) {
    return false;
  }
  const json& v = doc[field];
  return !(v.is_null() || (v.is_array() && v.empty()) || (v.is_object() && v.empty()) ||
           (v.is_string() && v.get<std::string>().empty()) || (v.is_boolean() && !v.get<bool>()) ||
           (v.is_number() && v.get<double>() == 0));
}

// Resource fields shared by create and update.
std::optional<Decision> judge_resources(const Ctx& c, const json& hc) {
  const std::string& t = c.tenant();
  for (const char* field : {"Devices", "DeviceRequests", "DeviceCgroupRules"}) {
    if (nonempty(hc, field)) {
      return refuse("HostConfig." + std::string(field) + " is not allowed for tenant " + t,
                    "escape.devices");
    }
  }
  for (const char* field : {"BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps",
                            "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps"}) {
    if (nonempty(hc, field)) {
      return refuse("HostConfig." + std::string(field) + " names host devices and is not "
                    "allowed for tenant " + t,
                    "escape.devices");
    }
  }
  if (nonempty(hc, "CgroupParent")) {
    return refuse("HostConfig.CgroupParent is set by berth and is not allowed for tenant " + t,
                  "escape.cgroup_parent");
  }
  for (const char* field : {"CpuRealtimePeriod", "CpuRealtimeRuntime"}) {
    if (nonempty(hc, field)) {
      return refuse("HostConfig." + std::string(field) + " is not allowed for tenant " + t,
                    "escape.realtime");
    }
  }
  if (hc.contains("OomKillDisable") && hc["OomKillDisable"].get<bool>()) {
    return refuse("HostConfig.OomKillDisable is not allowed for tenant " + t, "escape.oom");
  }
  return std::nullopt;
}

bool is_namespaced_sysctl(std::string_view key) {
  // The sysctls dockerd itself considers namespaced (IPC and network namespaces).
  static constexpr std::string_view exact[] = {"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni",
                                               "kernel.sem",    "kernel.shmall", "kernel.shmmax",
                                               "kernel.shmmni", "kernel.shm_rmid_forced"};
  for (auto e : exact) {
    if (key == e) {
      return true;
    }
  }
  return key.starts_with("fs.mqueue.") || key.starts_with("net.");
}

// Capabilities: dockerd's default set may always be named again; anything else must be
// granted to the tenant. "ALL" and unknown names are refused.
std::optional<Decision> judge_capabilities(const Ctx& c, const json& hc) {
  static constexpr std::string_view defaults[] = {
      "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",     "CAP_FOWNER",           "CAP_MKNOD",
      "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",     "CAP_SETFCAP",          "CAP_SETPCAP",
      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"};
  if (!hc.contains("CapAdd") || !hc["CapAdd"].is_array()) {
    return std::nullopt;
  }
  for (const auto& cap : hc["CapAdd"]) {
    const std::string name = cap.get<std::string>();
    const std::string normal = normalize_capability(name);
    const auto& granted = c.rules.grants.capabilities;
    const bool ok = !normal.empty() &&
                    (std::find(std::begin(defaults), std::end(defaults), normal) !=
                         std::end(defaults) ||
                     std::find(granted.begin(), granted.end(), normal) != granted.end());
    if (!ok) {
      return refuse("HostConfig.CapAdd '" + name + "' is not allowed for tenant " + c.tenant() +
                        " (capabilities beyond Docker's defaults need a grant)",
                    "escape.capabilities");
    }
  }
  return std::nullopt;
}

// "8080" or "8000-8010" -> [first, last]; "" or "0" -> a random port (nullopt).
std::optional<std::pair<long, long>> host_port_range(const std::string& text, bool& valid) {
  valid = true;
  if (text.empty() || text == "0") {
    return std::nullopt;
  }
  auto number = [&](std::string_view t) -> long {
    long v = 0;
    if (t.empty() || t.size() > 5) {
      valid = false;
      return 0;
    }
    for (char ch : t) {
      if (ch < '0' || ch > '9') {
        valid = false;
        return 0;
      }
      v = v * 10 + (ch - '0');
    }
    return v;
  };
  const auto dash = text.find('-');
  const long first = number(std::string_view(text).substr(0, dash));
  const long last =
      dash == std::string::npos ? first : number(std::string_view(text).substr(dash + 1));
  if (!valid || first < 1 || last > 65535 || first > last) {
    valid = false;
    return std::nullopt;
  }
  return std::pair{first, last};
}

std::string describe_ranges(const std::vector<PortRange>& ranges) {
  if (ranges.empty()) {
    return "none";
  }
  std::string out;
  for (const auto& r : ranges) {
    out += out.empty() ? "" : ", ";
    out += std::to_string(r.first);
    if (r.last != r.first) {
      out += "-" + std::to_string(r.last);
    }
  }
  return out;
}

// Published ports: host ports inside the tenant's granted ranges, on all addresses or
// loopback only. A port published without a host port (-p PORT, -P) gets the tenant's first
// granted range, from which dockerd takes a free port: never the host's ephemeral range, which no
// tenant owns. Counts the claim's host ports.
std::optional<Decision> judge_ports(const Ctx& c, json& hc) {
  const std::string& t = c.tenant();
  const auto& ranges = c.rules.grants.host_ports;
  if (hc.value("PublishAllPorts", false)) {
    // publish_all() turned it into bindings; anything else here is not berth's writing.
    return refuse("HostConfig.PublishAllPorts (-P) needs host ports granted to tenant " + t,
                  "ports.random");
  }
  std::int64_t count = 0;
  if (!hc.contains("PortBindings") || !hc["PortBindings"].is_object()) {
    c.ports = count;
    return std::nullopt;
  }
  for (auto& [port, bindings] : hc["PortBindings"].items()) {
    if (!bindings.is_array()) {
      continue;
    }
    for (auto& b : bindings) {
      if (b.is_null()) {
        continue;
      }
      const auto ip = b.value("HostIp", std::string());
      if (!ip.empty() && ip != "0.0.0.0" && ip != "::" && ip != "127.0.0.1" && ip != "::1") {
        return refuse("publishing on host address '" + ip + "' is not allowed for tenant " + t,
                      "ports.address");
      }
      auto host_port = b.value("HostPort", std::string());
      bool valid = true;
      auto range = host_port_range(host_port, valid);
      if (!valid) {
        return bad("Invalid hostPort: " + host_port, "ports.invalid");
      }
      if (!range) {
        if (ranges.empty()) {
          return refuse("publishing " + port + " needs host ports granted to tenant " + t,
                        "ports.random");
        }
        host_port = std::to_string(ranges.front().first) + "-" +
                    std::to_string(ranges.front().last);
        b["HostPort"] = host_port;
        range = std::pair<long, long>{ranges.front().first, ranges.front().last};
      }
      const bool inside = std::any_of(ranges.begin(), ranges.end(), [&](const PortRange& r) {
        return range->first >= r.first && range->second <= r.last;
      });
      if (!inside) {
        return refuse("host port " + host_port + " is outside the host ports of tenant " + t +
                          " (" + describe_ranges(ranges) + ")",
                      "ports.range");
      }
      ++count;  // dockerd takes one host port of a range for each binding
    }
  }
  c.ports = count;
  return std::nullopt;
}

// -P: every exposed port published on a port of the tenant's ranges. The request's own exposed
// ports become bindings here; the image's, which only dockerd knows, the proxy adds with
// add_published_ports before the quota is reserved.
void publish_all(const Ctx& c, json& doc, json& hc) {
  if (!hc.value("PublishAllPorts", false) || c.rules.grants.host_ports.empty()) {
    return;
  }
  hc["PublishAllPorts"] = false;
  json& bindings = hc["PortBindings"];
  if (!bindings.is_object()) {
    bindings = json::object();
  }
  if (doc.contains("ExposedPorts") && doc["ExposedPorts"].is_object()) {
    for (const auto& [port, unused] : doc["ExposedPorts"].items()) {
      if (!bindings.contains(port)) {
        bindings[port] = json::array({{{"HostIp", ""}, {"HostPort", ""}}});
      }
    }
  }
  c.out.publish_image_ports = true;
}

std::vector<std::string> bind_options(std::string_view rest) {
  // rest is ":/target[:options]" (split at the source's end).
  std::vector<std::string> options;
  if (rest.starts_with(':')) {
    rest.remove_prefix(1);
  }
  const auto colon = rest.find(':');
  if (colon == std::string_view::npos) {
    return options;
  }
  std::string_view list = rest.substr(colon + 1);
  while (!list.empty()) {
    const auto comma = list.find(',');
    options.emplace_back(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
  }
  return options;
}

// A host path: only one the tenant was granted, exactly as granted, read-only unless the
// grant says rw, with no mount propagation toward the host and no relabelling of it.
std::optional<Decision> judge_bind_grant(const Ctx& c, std::string_view source,
                                         const std::vector<std::string>& options,
                                         const std::string& what) {
  const std::string& t = c.tenant();
  const auto& grants = c.rules.grants.bind_mounts;
  const auto grant = std::find_if(grants.begin(), grants.end(),
                                  [&](const BindGrant& g) { return g.path == source; });
  if (grant == grants.end()) {
    return refuse(what + " mounts a host path, which is not allowed for tenant " + t +
                      (grants.empty() ? std::string()
                                      : " (granted paths: " + [&] {
                                          std::string list;
                                          for (const auto& g : grants) {
                                            list += list.empty() ? "" : ", ";
                                            list += g.path + (g.read_write ? " rw" : " ro");
                                          }
                                          return list;
                                        }() + ")"),
                  "escape.bind");
  }
  bool read_only = false;
  for (const auto& o : options) {
    if (o == "ro" || o == "readonly") {
      read_only = true;
    } else if (o == "rw" || o == "private" || o == "rprivate" || o == "nocopy" ||
               o == "consistent" || o == "cached" || o == "delegated" || o.empty()) {
      continue;
    } else {
      return refuse(what + " option '" + o + "' is not allowed for tenant " + t +
                        " (no shared propagation or relabelling of host paths)",
                    "escape.bind");
    }
  }
  if (!grant->read_write && !read_only) {
    return refuse(what + " must be read-only: tenant " + t + " is granted " + grant->path +
                      " read-only (add :ro)",
                  "grant.bind_read_only");
  }
  return std::nullopt;
}

std::optional<Decision> judge_host_config(const Ctx& c, json& hc) {
  const std::string& t = c.tenant();
  if (hc.contains("Privileged") && hc["Privileged"].get<bool>()) {
    return refuse("HostConfig.Privileged is not allowed for tenant " + t, "escape.privileged");
  }
  if (auto d = judge_capabilities(c, hc)) {
    return d;
  }
  if (auto d = judge_resources(c, hc)) {
    return d;
  }
  if (nonempty(hc, "Cgroup")) {
    return refuse("HostConfig.Cgroup is not allowed for tenant " + t, "escape.namespace");
  }
  if (auto d = namespace_mode(c, hc, "PidMode", true, {})) {
    return d;
  }
  if (auto d = namespace_mode(c, hc, "IpcMode", true, {"private", "shareable", "none"})) {
    return d;
  }
  if (auto d = namespace_mode(c, hc, "UTSMode", false, {})) {
    return d;
  }
  if (auto d = namespace_mode(c, hc, "UsernsMode", false, {})) {
    return d;
  }
  if (auto d = namespace_mode(c, hc, "CgroupnsMode", false, {"private"})) {
    return d;
  }
  for (const auto& opt : hc.value("SecurityOpt", json::array())) {
    const std::string o = opt.get<std::string>();
    if (o != "no-new-privileges" && o != "no-new-privileges=true" &&
        o != "no-new-privileges:true") {
      return refuse("HostConfig.SecurityOpt '" + o + "' is not allowed for tenant " + t,
                    "escape.security_opt");
    }
  }
  for (const char* field : {"MaskedPaths", "ReadonlyPaths"}) {
    if (hc.contains(field)) {
      return refuse("HostConfig." + std::string(field) + " is not allowed for tenant " + t,
                    "escape.masked_paths");
    }
  }
  // Bound to a name first: .items() of a temporary dangles (found by the fuzz replay).
  const json sysctls = hc.value("Sysctls", json::object());
  for (const auto& [key, value] : sysctls.items()) {
    if (!is_namespaced_sysctl(key)) {
      return refuse("HostConfig.Sysctls '" + key + "' is not namespaced and is not allowed for "
                    "tenant " + t,
                    "escape.sysctl");
    }
  }
  if (const auto runtime = hc.value("Runtime", std::string()); !runtime.empty() &&
                                                               runtime != "runc") {
    return refuse("HostConfig.Runtime '" + runtime + "' is not allowed for tenant " + t,
                  "escape.runtime");
  }
  if (hc.value("OomScoreAdj", 0LL) < 0) {
    return refuse("a negative HostConfig.OomScoreAdj is not allowed for tenant " + t,
                  "escape.oom");
  }
  if (nonempty(hc, "StorageOpt")) {
    return refuse("HostConfig.StorageOpt is not allowed for tenant " + t, "escape.storage_opt");
  }
  if (const auto iso = hc.value("Isolation", std::string()); !iso.empty() && iso != "default") {
    return refuse("HostConfig.Isolation '" + iso + "' is not allowed for tenant " + t,
                  "escape.isolation");
  }
  if (const auto driver = hc.value("VolumeDriver", std::string());
      !driver.empty() && driver != "local") {
    return refuse("HostConfig.VolumeDriver '" + driver + "' is not allowed for tenant " + t,
                  "escape.volume_driver");
  }
  if (hc.contains("LogConfig")) {
    const json& log = hc["LogConfig"];
    const auto type = log.value("Type", std::string());
    if (!type.empty() && type != "json-file" && type != "local" && type != "none") {
      return refuse("HostConfig.LogConfig.Type '" + type +
                        "' writes outside dockerd's own logs and is not allowed for tenant " + t,
                    "escape.log_driver");
    }
    const json log_config = log.value("Config", json::object());
    for (const auto& [key, value] : log_config.items()) {
      if (key != "max-size" && key != "max-file" && key != "compress" && key != "mode" &&
          key != "max-buffer-size") {
        return refuse("HostConfig.LogConfig.Config '" + key + "' is not allowed for tenant " + t,
                      "escape.log_driver");
      }
    }
  }
  if (auto d = judge_ports(c, hc)) {
    return d;
  }

  // Binds: named volumes only, in the tenant's namespace.
  if (hc.contains("Binds")) {
    for (auto& entry : hc["Binds"]) {
      const std::string bind = entry.get<std::string>();
      auto [source, rest] = split_ref(bind);
      if (!source.empty() && source.front() == '/') {
        if (auto d = judge_bind_grant(c, source, bind_options(rest), "HostConfig.Binds '" + bind +
                                                                         "'")) {
          return d;
        }
        continue;
      }
      if (source.empty() || source.front() == '.' ||
          source.front() == '~' || source.find('/') != std::string::npos ||
          source.find('\\') != std::string::npos) {
        return refuse("HostConfig.Binds '" + bind +
                          "' mounts a host path, which is not allowed for tenant " + t,
                      "escape.bind");
      }
      auto stored = volume_name(c, source);
      if (!stored) {
        return stored.error();
      }
      entry = *stored + rest;
    }
  }
  if (hc.contains("Mounts")) {
    for (auto& m : hc["Mounts"]) {
      const auto type = m.value("Type", std::string());
      if (type == "volume") {
        if (m.contains("VolumeOptions") && m["VolumeOptions"].contains("DriverConfig")) {
          return refuse("HostConfig.Mounts VolumeOptions.DriverConfig is not allowed for "
                        "tenant " + t,
                        "escape.volume_driver");
        }
        if (m.contains("VolumeOptions") && m["VolumeOptions"].contains("Labels")) {
          for (const auto& [k, v] : m["VolumeOptions"]["Labels"].items()) {
            if (is_reserved_label(k)) {
              return refuse("volume label '" + k + "' is reserved", "label.reserved");
            }
          }
        }
        const auto source = m.value("Source", std::string());
        if (!source.empty()) {
          auto stored = volume_name(c, source);
          if (!stored) {
            return stored.error();
          }
          m["Source"] = *stored;
        }
      } else if (type == "tmpfs") {
        if (nonempty(m, "Source")) {
          return refuse("a tmpfs mount takes no source", "escape.bind");
        }
      } else if (type == "bind") {
        std::vector<std::string> options;
        if (m.value("ReadOnly", false)) {
          options.emplace_back("ro");
        }
        if (m.contains("BindOptions") && m["BindOptions"].is_object()) {
          if (auto p = m["BindOptions"].value("Propagation", std::string()); !p.empty()) {
            options.push_back(p);
          }
        }
        const auto source = m.value("Source", std::string());
        if (auto d = judge_bind_grant(c, source, options,
                                      "HostConfig.Mounts bind of '" + source + "'")) {
          return d;
        }
      } else {
        return refuse("HostConfig.Mounts of type '" + type + "' is not allowed for tenant " + t,
                      "escape.bind");
      }
    }
  }
  if (hc.contains("VolumesFrom")) {
    for (auto& entry : hc["VolumesFrom"]) {
      auto [ref, mode] = split_ref(entry.get<std::string>());
      auto id = container_id(c, ref);
      if (!id) {
        return id.error();
      }
      entry = *id + mode;
    }
  }
  if (hc.contains("Links")) {
    if (auto d = resolve_links(c, hc["Links"], "/", [](std::string_view ref) {
          const std::string r(ref);
          return Decision::deny(400, "could not get container for " + r +
                                         ": No such container: " + r,
                                "resolve.container");
        })) {
      return d;
    }
  }
  return std::nullopt;
}

std::int64_t int_field(const json& doc, const char* field) {
  if (!doc.contains(field) || !doc[field].is_number_integer()) {
    return 0;
  }
  return doc[field].get<std::int64_t>();
}

constexpr std::int64_t nano_per_cpu = 1'000'000'000;
constexpr std::int64_t default_cpu_period = 100'000;  // µs, the kernel's and dockerd's default

// Memory, CPUs, pids, restart policy and log size of one container, for create (`doc` is the
// HostConfig) or update (`doc` is the update body, `current` the container's holding).
// Fills in the tenant's defaults where the request sets nothing, refuses (or, with clamp,
// lowers to) anything above the tenant's per-container limits, and records the claim.
std::optional<Decision> apply_limits(const Ctx& c, json& doc, const Resources* current) {
  const Tenant& rules = c.rules;
  const std::string& t = c.tenant();
  const bool create = current == nullptr;
  const bool clamp = rules.clamp();
  Resources claim = current ? *current : Resources{};
  claim.ports = c.ports.value_or(claim.ports);

  const bool memory_ruled = rules.limits.memory || rules.quota.memory;
  const bool cpu_ruled = rules.limits.nano_cpus || rules.quota.nano_cpus;

  // Memory: 0 leaves it unset at create ("no limit") and unchanged at update.
  std::int64_t memory = int_field(doc, "Memory");
  if (memory < 0) {
    return bad("berth: HostConfig.Memory must not be negative", "limits.memory");
  }
  if (memory == 0 && create) {
    memory = rules.defaults.memory.value_or(rules.limits.memory.value_or(0));
    if (memory > 0) {
      doc["Memory"] = memory;
    }
  }
  if (memory > 0 && rules.limits.memory && memory > *rules.limits.memory) {
    if (!clamp) {
      return refuse("HostConfig.Memory " + units::format_size(memory) + " is above tenant " + t +
                        "'s per-container limit of " + units::format_size(*rules.limits.memory),
                    "limits.memory");
    }
    memory = *rules.limits.memory;
    doc["Memory"] = memory;
  }
  if (memory > 0) {
    claim.memory = memory;
  }
  // An update of a container whose holding berth does not know yet (it predates the quota)
  // is judged on what it changes.
  if (create && claim.memory == 0 && rules.quota.memory) {
    return refuse("HostConfig.Memory must be set: tenant " + t + " has a memory quota of " +
                      units::format_size(*rules.quota.memory),
                  "quota.memory");
  }
  // Swap: MemorySwap is memory plus swap; -1 is unlimited swap on the host. Where memory is
  // ruled, a container may have at most as much swap as memory (dockerd's own default).
  const std::int64_t swap = int_field(doc, "MemorySwap");
  if (memory_ruled && swap != 0 && claim.memory > 0) {
    const std::int64_t max_swap = 2 * claim.memory;
    if (swap < 0 || swap > max_swap) {
      if (!clamp) {
        return refuse("HostConfig.MemorySwap " +
                          (swap < 0 ? std::string("unlimited") : units::format_size(swap)) +
                          " is above tenant " + t + "'s limit of twice the memory (" +
                          units::format_size(max_swap) + ")",
                      "limits.swap");
      }
      doc["MemorySwap"] = max_swap;
    }
  }

  // CPUs: NanoCpus, or CpuQuota over CpuPeriod (dockerd refuses both at once; a negative
  // CpuQuota is "no limit" and wins over NanoCpus in the cgroup).
  const std::int64_t quota_field = int_field(doc, "CpuQuota");
  const std::int64_t period_field = int_field(doc, "CpuPeriod");
  if (period_field < 0) {
    return bad("berth: HostConfig.CpuPeriod must not be negative", "limits.cpus");
  }
  if (quota_field < 0 && cpu_ruled) {
    return refuse("an unlimited HostConfig.CpuQuota is not allowed for tenant " + t +
                      " (it has a CPU limit or quota)",
                  "limits.cpus");
  }
  // At update berth does not know the period a container was created with: a quota or a
  // period changes the container's CPUs only together with the other.
  if (!create && cpu_ruled && (quota_field > 0) != (period_field > 0)) {
    return bad("berth: update CpuQuota and CpuPeriod together (--cpu-quota with --cpu-period), "
               "or use NanoCpus (--cpus)",
               "limits.cpus");
  }
  const std::int64_t period = period_field > 0 ? period_field : default_cpu_period;
  const bool by_quota = int_field(doc, "NanoCpus") <= 0 && quota_field > 0;
  constexpr long double int64_max = 9.2e18L;
  auto scaled = [&](long double v) {
    return v >= int64_max ? std::numeric_limits<std::int64_t>::max()
                          : static_cast<std::int64_t>(v);
  };
  std::int64_t nano =
      by_quota ? scaled(static_cast<long double>(quota_field) * nano_per_cpu / period)
               : std::max<std::int64_t>(int_field(doc, "NanoCpus"), 0);
  auto set_cpus = [&](std::int64_t value, bool as_quota) {
    if (as_quota) {
      doc["CpuQuota"] = scaled(static_cast<long double>(value) * period / nano_per_cpu);
    } else {
      doc["NanoCpus"] = value;
    }
  };
  if (nano == 0 && create && quota_field >= 0) {
    nano = rules.defaults.nano_cpus.value_or(rules.limits.nano_cpus.value_or(0));
    if (nano > 0) {
      // With a CpuPeriod of its own the container takes the default as a quota of it.
      set_cpus(nano, period_field > 0);
    }
  }
  if (nano > 0 && rules.limits.nano_cpus && nano > *rules.limits.nano_cpus) {
    if (!clamp) {
      return refuse("HostConfig.NanoCpus " + units::format_cpus(nano) + " CPUs is above tenant " +
                        t + "'s per-container limit of " +
                        units::format_cpus(*rules.limits.nano_cpus) + " CPUs",
                    "limits.cpus");
    }
    nano = *rules.limits.nano_cpus;
    set_cpus(nano, by_quota || (create && period_field > 0 && int_field(doc, "NanoCpus") <= 0));
  }
  if (nano > 0) {
    claim.nano_cpus = nano;
  }
  if (create && claim.nano_cpus == 0 && rules.quota.nano_cpus) {
    return refuse("a CPU limit (HostConfig.NanoCpus) must be set: tenant " + t +
                      " has a CPU quota of " + units::format_cpus(*rules.quota.nano_cpus) +
                      " CPUs",
                  "quota.cpus");
  }

  // Pids: PidsLimit is a pointer. At create the docker CLI always sends it, 0 when the user set
  // nothing, so null and 0 take the default; -1 asks for no limit. At update null leaves it
  // unchanged and 0 or -1 lift the limit.
  const bool has_pids = doc.contains("PidsLimit") && doc["PidsLimit"].is_number_integer();
  const std::int64_t pids = has_pids ? doc["PidsLimit"].get<std::int64_t>() : 0;
  const auto max_pids = rules.quota.pids_per_container;
  const bool unset = create ? pids == 0 : !has_pids;
  const bool unlimited = !unset && pids <= 0;
  if (unset && create) {
    if (const auto fallback = rules.defaults.pids_limit ? rules.defaults.pids_limit : max_pids) {
      doc["PidsLimit"] = *fallback;
    }
  } else if (unlimited && max_pids) {
    if (!clamp) {
      return refuse("an unlimited HostConfig.PidsLimit is above tenant " + t + "'s limit of " +
                        std::to_string(*max_pids) + " processes per container",
                    "quota.pids");
    }
    doc["PidsLimit"] = *max_pids;
  } else if (!unset && max_pids && pids > *max_pids) {
    if (!clamp) {
      return refuse("HostConfig.PidsLimit " + std::to_string(pids) + " is above tenant " + t +
                        "'s limit of " + std::to_string(*max_pids) + " processes per container",
                    "quota.pids");
    }
    doc["PidsLimit"] = *max_pids;
  }

  // Restart policy: the names the tenant may use, and a cap on on-failure's retries (0 there
  // means "retry forever").
  // At update an empty name leaves the policy as it is (the docker CLI always sends one).
  if (doc.contains("RestartPolicy") && doc["RestartPolicy"].is_object() &&
      (create || !doc["RestartPolicy"].value("Name", std::string()).empty())) {
    json& rp = doc["RestartPolicy"];
    std::string name = rp.value("Name", std::string());
    const std::string shown = name.empty() ? "no" : name;
    if (rules.limits.restart_policies) {
      const auto& allowed = *rules.limits.restart_policies;
      if (std::find(allowed.begin(), allowed.end(), shown) == allowed.end()) {
        std::string list;
        for (const auto& a : allowed) {
          list += list.empty() ? "" : ", ";
          list += a;
        }
        return refuse("HostConfig.RestartPolicy '" + shown + "' is not allowed for tenant " + t +
                          " (allowed: " + (list.empty() ? "none" : list) + ")",
                      "limits.restart");
      }
    }
    if (name == "on-failure" && rules.limits.restart_retries) {
      const std::int64_t retries = rp.value("MaximumRetryCount", std::int64_t{0});
      const std::int64_t max = *rules.limits.restart_retries;
      if (retries <= 0 || retries > max) {
        if (!clamp) {
          return refuse("HostConfig.RestartPolicy on-failure with " +
                            (retries <= 0 ? std::string("unlimited") : std::to_string(retries)) +
                            " retries is above tenant " + t + "'s limit of " +
                            std::to_string(max),
                        "limits.restart");
        }
        rp["MaximumRetryCount"] = max;
      }
    }
  }
  c.out.claim = claim;
  return std::nullopt;
}

// A log size as go-units' RAMInBytes reads it ("10m", "1.5g", "100kb": powers of 1024). The
// drivers read some sizes in powers of 1000 (FromHumanSize); this reading is never smaller.
std::optional<std::int64_t> docker_log_size(std::string_view text) {
  std::size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) {
    ++i;
  }
  std::string_view number = text.substr(0, i);
  std::string_view unit = text.substr(i);
  if (unit.starts_with(' ')) {
    unit.remove_prefix(1);
  }
  if (number.empty() || number.front() == '.' || number.back() == '.') {
    return std::nullopt;
  }
  constexpr std::int64_t base = 1024;
  std::int64_t factor = 1;
  if (!unit.empty()) {
    const char u = static_cast<char>(unit.front() | 0x20);
    const std::string_view prefixes = "kmgtp";
    const auto at = prefixes.find(u);
    if (at != std::string_view::npos) {
      for (std::size_t k = 0; k <= at; ++k) {
        factor *= base;
      }
      unit.remove_prefix(1);
    }
    if (!unit.empty() && (unit.front() | 0x20) == 'i') {
      unit.remove_prefix(1);
    }
    if (!unit.empty() && (unit.front() | 0x20) == 'b') {
      unit.remove_prefix(1);
    }
    if (!unit.empty()) {
      return std::nullopt;
    }
  }
  const long double value = std::strtold(std::string(number).c_str(), nullptr) *
                           static_cast<long double>(factor);
  if (!(value < 9.2e18L)) {
    return std::numeric_limits<std::int64_t>::max();
  }
  return static_cast<std::int64_t>(value);
}

// Log rotation for the drivers that write under dockerd's root: the tenant's defaults when
// it sets none, and no more than its limits.
std::optional<Decision> apply_log_limits(const Ctx& c, json& hc) {
  const Tenant& rules = c.rules;
  if (!rules.defaults.log_max_size && !rules.defaults.log_max_file &&
      !rules.limits.log_max_size && !rules.limits.log_max_file) {
    return std::nullopt;
  }
  json& log = hc["LogConfig"];
  if (log.is_null()) {
    log = json::object();
  }
  std::string type = log.value("Type", std::string());
  const std::string effective = type.empty() ? c.facts.log_driver : type;
  if (effective != "json-file" && effective != "local") {
    if (log.empty()) {
      hc.erase("LogConfig");
    }
    return std::nullopt;
  }
  json& config = log["Config"];
  if (config.is_null()) {
    config = json::object();
  }
  const std::string& t = c.tenant();
  // Missing options are written out (as byte counts, which both drivers read alike): dockerd
  // would otherwise fill them from the daemon's own log-opts, or the local driver's 5 files.
  if (!config.contains("max-size")) {
    if (auto size = rules.defaults.log_max_size ? rules.defaults.log_max_size
                                                : rules.limits.log_max_size) {
      config["max-size"] = std::to_string(*size);
    }
  }
  if (!config.contains("max-file")) {
    if (auto files = rules.defaults.log_max_file ? rules.defaults.log_max_file
                                                 : rules.limits.log_max_file) {
      config["max-file"] = std::to_string(*files);
    }
  }
  if (rules.limits.log_max_size) {
    const std::int64_t max = *rules.limits.log_max_size;
    const std::string text = config.value("max-size", std::string());
    const auto size = text.empty() ? std::optional<std::int64_t>(-1) : docker_log_size(text);
    if (!size) {
      return bad("berth: LogConfig max-size '" + text + "' is not a size", "limits.log");
    }
    if (*size <= 0 || *size > max) {
      if (!rules.clamp()) {
        return refuse("HostConfig.LogConfig max-size " +
                          (*size <= 0 ? std::string("unlimited") : units::format_size(*size)) +
                          " is above tenant " + t + "'s limit of " + units::format_size(max),
                      "limits.log");
      }
      config["max-size"] = std::to_string(max);
    }
  }
  if (rules.limits.log_max_file) {
    const std::int64_t max = *rules.limits.log_max_file;
    const std::string text = config.value("max-file", std::string("1"));
    std::int64_t files = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), files);
    if (ec != std::errc() || end != text.data() + text.size()) {
      return bad("berth: LogConfig max-file '" + text + "' is not a number", "limits.log");
    }
    if (files > max) {
      if (!rules.clamp()) {
        return refuse("HostConfig.LogConfig max-file " + text + " is above tenant " + t +
                          "'s limit of " + std::to_string(max),
                      "limits.log");
      }
      config["max-file"] = std::to_string(max);
    }
  }
  if (type.empty()) {
    log["Type"] = effective;  // the options above belong to this driver
  }
  return std::nullopt;
}

Rewritten container_create(const Ctx& c, const Classified& request, std::string_view body) {
  Rewritten& out = c.out;
  auto decoded = go::decode(body, docker_types::container_create());
  if (!decoded) {
    return refused(bad("berth: invalid container config: " + decoded.error(), "body.invalid"));
  }
  json doc = std::move(*decoded);
  if (auto d = own_labels(doc, "Labels", c.tenant(), "container")) {
    return refused(*d);
  }
  // No id to show but its own, whatever labels its image carries (one committed from a
  // moved container carries the label that shows that container's id).
  doc["Labels"][std::string(shown_id_label)] = "";
  // The image: the tenant's own tag, a shared image, or an id it may see.
  if (doc.contains("Image")) {
    const std::string image = doc["Image"].get<std::string>();
    auto found = c.index.find_image(c.tenant(), image);
    if (found.result == Lookup::found && !image_allowed(c.rules, found.value)) {
      return refused(refuse("image '" + image + "' is not among the shared images tenant " +
                                c.tenant() + " may use",
                            "image.not_allowed"));
    }
    if (found.result == Lookup::found) {
      if (auto parsed = names::parse_image_ref(image);
          parsed && std::find(found.value.tags.begin(), found.value.tags.end(),
                              names::stored_image(c.tenant(), *parsed)) != found.value.tags.end()) {
        doc["Image"] = names::stored_image(c.tenant(), *parsed);
      } else {
        const bool by_shared_tag =
            parsed && !names::is_tenant_image_repo(parsed->str()) &&
            std::any_of(found.value.tags.begin(), found.value.tags.end(), [&](const auto& t) {
              return t == parsed->str() || t == "docker.io/library/" + parsed->str();
            });
        // A shared image keeps the operator's tag (dockerd resolves it the same way); an id
        // or prefix becomes the full id, since dockerd's prefix search spans every tenant.
        if (!by_shared_tag) {
          doc["Image"] = found.value.id;
        }
      }
    } else if (auto parsed = names::parse_image_ref(image)) {
      // Not indexed (yet): name it in the tenant's namespace; dockerd answers if it is missing.
      doc["Image"] = names::stored_image(c.tenant(), *parsed);
    }
  }
  json& hc = doc["HostConfig"];
  if (hc.is_null()) {
    hc = json::object();
  }
  publish_all(c, doc, hc);
  if (auto d = judge_host_config(c, hc)) {
    return refused(*d);
  }
  if (auto d = apply_limits(c, hc, nullptr)) {
    return refused(*d);
  }
  if (auto d = apply_log_limits(c, hc)) {
    return refused(*d);
  }
  hc["CgroupParent"] = tenant_cgroup_parent(c.tenant(), c.facts);
  // The effective configuration, whatever the API version: dockerd fills an empty
  // CgroupnsMode with "host" below API 1.41 on a cgroup v1 host (and at 1.41 from the daemon's
  // default, host on v1), and an empty IpcMode with "shareable" below 1.40. Written out, they
  // mean the same at every version (tests/unit/rewrite_test.cpp, "version defaults").
  for (const char* field : {"CgroupnsMode", "IpcMode"}) {
    if (hc.value(field, std::string()).empty()) {
      hc[field] = "private";
    }
  }

  // Networking: never the shared bridge or the host network.
  const std::string mode = hc.value("NetworkMode", std::string());
  std::string primary;
  if (mode.starts_with("container:")) {
    auto id = container_id(c, std::string_view(mode).substr(10));
    if (!id) {
      return refused(id.error());
    }
    hc["NetworkMode"] = "container:" + *id;
  } else {
    auto net = network_name(c, mode);
    if (!net) {
      return refused(net.error());
    }
    hc["NetworkMode"] = *net;
    primary = *net;
  }
  if (doc.contains("NetworkingConfig") && doc["NetworkingConfig"].contains("EndpointsConfig")) {
    json endpoints = json::object();
    for (auto& [name, settings] : doc["NetworkingConfig"]["EndpointsConfig"].items()) {
      auto net = network_name(c, name);
      if (!net) {
        return refused(net.error());
      }
      json s = settings;
      if (s.is_object()) {
        // dockerd prefers EndpointSettings.NetworkID over the key for user-defined networks
        // (getNetworkID): an id, name or prefix there would attach to another tenant's network.
        s.erase("NetworkID");
        s.erase("EndpointID");
      }
      if (s.is_object() && s.contains("Links")) {
        if (auto d = resolve_links(c, s["Links"], "", body_container_not_found)) {
          return refused(*d);
        }
      }
      endpoints[*net] = std::move(s);
    }
    doc["NetworkingConfig"]["EndpointsConfig"] = std::move(endpoints);
  }

  // Legacy links: dockerd honours HostConfig.Links only on the default bridge, and a tenant's
  // containers are on its own user-defined network, where a link is an endpoint setting.
  if (!primary.empty() && primary != "none" && hc.contains("Links") && !hc["Links"].empty()) {
    json& endpoints = doc["NetworkingConfig"]["EndpointsConfig"];
    json& ep = endpoints[primary];
    if (ep.is_null()) {
      ep = json::object();
    }
    for (const auto& link : hc["Links"]) {
      std::string l = link.get<std::string>();
      if (l.starts_with("/")) {
        l.erase(0, 1);
      }
      ep["Links"].push_back(l);
    }
  }

  // The name, in the tenant's namespace.
  auto query = parse_query(request.query);
  if (!query) {
    return refused(bad("berth: malformed query string", "query.invalid"));
  }
  bool named = false;
  std::string chosen;  // the name as the tenant wrote it
  for (auto& [key, value] : *query) {
    if (key == "name" && named) {
      value.clear();  // dockerd reads the first "name" only; the rest are dropped below
      continue;
    }
    if (key == "name") {
      named = !value.empty();
    }
    if (key == "name" && !value.empty()) {
      std::string_view name = value;
      if (name.front() == '/') {
        name.remove_prefix(1);
      }
      if (!names::is_valid_object_name(name) || name.size() < 2) {
        return refused(bad("Invalid container name (" + value +
                               "), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                           "name.invalid"));
      }
      chosen = std::string(name);
      value = names::stored(c.tenant(), name);
      out.created_name = value;
    }
  }
  std::erase_if(*query, [](const auto& kv) { return kv.first == "name" && kv.second.empty(); });
  out.generate_name = !named;
  // dockerd's DNS answers a container's stored name ("acme_web") on its networks; on a private
  // host the tenant's containers reach each other by the name they gave ("web"). Its networks
  // are its own, so that alias can meet no other tenant's container.
  if (!chosen.empty() && !primary.empty() && primary != "none") {
    json& ep = doc["NetworkingConfig"]["EndpointsConfig"][primary];
    if (!ep.is_object()) {
      ep = json::object();
    }
    json& aliases = ep["Aliases"];
    if (!aliases.is_array()) {
      aliases = json::array();
    }
    if (std::find(aliases.begin(), aliases.end(), chosen) == aliases.end()) {
      aliases.push_back(chosen);
    }
  }
  Classified forwarded = request;
  forwarded.query = build_query(*query);
  out.target = canonical_target(forwarded);
  out.body = doc.dump();
  return out;
}

Rewritten container_update(const Ctx& c, const Classified& request, std::string_view body) {
  auto decoded = go::decode(body, docker_types::container_update());
  if (!decoded) {
    return refused(bad("berth: invalid update config: " + decoded.error(), "body.invalid"));
  }
  if (auto d = judge_resources(c, *decoded)) {
    return refused(*d);
  }
  const std::string& id = request.params.front();
  const Resources current = c.index.resources_of(id).value_or(Resources{});
  if (auto d = apply_limits(c, *decoded, &current)) {
    return refused(*d);
  }
  c.out.claim_container = id;
  c.out.body = decoded->dump();
  return c.out;
}

Rewritten exec_create(const Ctx& c, std::string_view body) {
  auto decoded = go::decode(body, docker_types::exec_create());
  if (!decoded) {
    return refused(bad("berth: invalid exec config: " + decoded.error(), "body.invalid"));
  }
  if (decoded->value("Privileged", false)) {
    return refused(refuse("a privileged exec is not allowed for tenant " + c.tenant(),
                          "escape.privileged"));
  }
  c.out.body = decoded->dump();
  return c.out;
}

Rewritten network_create(const Ctx& c, std::string_view body) {
  auto decoded = go::decode(body, docker_types::network_create());
  if (!decoded) {
    return refused(bad("berth: invalid network config: " + decoded.error(), "body.invalid"));
  }
  json doc = std::move(*decoded);
  const std::string name = doc.value("Name", std::string());
  if (name == "bridge" || name == "host" || name == "none" || name == "default") {
    return refused(Decision::deny(
        403, "operation is not permitted on predefined " + name + " network ", "network.name"));
  }
  // dockerd takes any network name ("my net", "a/b"); berth keeps out only what it could not
  // show back or route: nothing empty, no control characters, nothing too long.
  const bool control = std::any_of(name.begin(), name.end(), [](char ch) {
    return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f;
  });
  if (name.empty() || control || name.size() > 200) {
    return refused(bad("berth: a network name must be 1 to 200 characters without control "
                       "characters",
                       "network.name"));
  }
  // One host: a bridge. A fleet: an attachable overlay of berth's Swarm, which is what the
  // tenant's containers on different hosts need to reach each other ("bridge" is taken as the
  // tenant's word for "a network of my own", which compose and the CLI send by default).
  const auto driver = doc.value("Driver", std::string());
  const bool fleet = c.facts.fleet;
  if (!driver.empty() && driver != "bridge" && !(fleet && driver == "overlay")) {
    return refused(refuse("network driver '" + driver + "' is not allowed for tenant " +
                              c.tenant() + "; use bridge",
                          "network.driver"));
  }
  doc["Driver"] = fleet ? "overlay" : "bridge";
  if (fleet) {
    doc["Attachable"] = true;
  }
  if (doc.value("Ingress", false) || doc.value("ConfigOnly", false) ||
      doc.contains("ConfigFrom")) {
    return refused(refuse("ingress and config-only networks are not allowed for tenants",
                          "network.kind"));
  }
  if (const auto scope = doc.value("Scope", std::string()); !scope.empty() && scope != "local") {
    return refused(refuse("network scope '" + scope + "' is not allowed for tenants",
                          "network.kind"));
  }
  if (doc.contains("IPAM")) {
    const auto ipam_driver = doc["IPAM"].value("Driver", std::string());
    if ((!ipam_driver.empty() && ipam_driver != "default") || nonempty(doc["IPAM"], "Options")) {
      return refused(refuse("IPAM drivers and options are not allowed for tenants",
                            "network.ipam"));
    }
  }
  static const std::set<std::string> safe_options = {
      "com.docker.network.bridge.enable_icc", "com.docker.network.bridge.enable_ip_masquerade",
      "com.docker.network.driver.mtu"};
  const json options = doc.value("Options", json::object());
  for (const auto& [key, value] : options.items()) {
    if (!safe_options.contains(key)) {
      return refused(refuse("network option '" + key + "' is not allowed for tenant " +
                                c.tenant(),
                            "network.option"));
    }
  }
  if (auto d = own_labels(doc, "Labels", c.tenant(), "network")) {
    return refused(*d);
  }
  auto subnets = plan_network_addresses(c.rules, doc, c.index, c.facts);
  if (!subnets) {
    return refused(subnets.error());
  }
  c.out.claimed_subnets = std::move(*subnets);
  doc["Name"] = names::stored(c.tenant(), name);
  doc["CheckDuplicate"] = true;
  c.out.created_name = doc["Name"].get<std::string>();
  c.out.body = doc.dump();
  return c.out;
}

Rewritten network_connect(const Ctx& c, std::string_view body) {
  auto decoded = go::decode(body, docker_types::network_connect());
  if (!decoded) {
    return refused(bad("berth: invalid request: " + decoded.error(), "body.invalid"));
  }
  json doc = std::move(*decoded);
  const std::string container_ref = doc.value("Container", std::string());
  auto container = c.index.find_container(c.tenant(), container_ref);
  if (container.result != Lookup::found) {
    return refused(not_found(RefKind::container, container_ref));  // dockerd: 404 here
  }
  doc["Container"] = container.value.id;
  if (doc.contains("EndpointConfig") && doc["EndpointConfig"].is_object()) {
    json& ep = doc["EndpointConfig"];
    ep.erase("NetworkID");  // see container create: it would override the path's network
    ep.erase("EndpointID");
    if (ep.contains("Links")) {
      if (auto d = resolve_links(c, ep["Links"], "", [](std::string_view ref) {
            return not_found(RefKind::container, ref);
          })) {
        return refused(*d);
      }
    }
  }
  c.out.body = doc.dump();
  return c.out;
}

Rewritten volume_create(const Ctx& c, std::string_view body) {
  auto decoded = go::decode(body, docker_types::volume_create());
  if (!decoded) {
    return refused(bad("berth: invalid volume config: " + decoded.error(), "body.invalid"));
  }
  json doc = std::move(*decoded);
  const auto driver = doc.value("Driver", std::string());
  if (!driver.empty() && driver != "local") {
    return refused(refuse("volume driver '" + driver + "' is not allowed for tenant " +
                              c.tenant(),
                          "escape.volume_driver"));
  }
  if (nonempty(doc, "DriverOpts")) {
    return refused(refuse("volume driver options can mount host devices and are not allowed "
                          "for tenant " + c.tenant(),
                          "escape.volume_driver"));
  }
  if (auto d = own_labels(doc, "Labels", c.tenant(), "volume")) {
    return refused(*d);
  }
  const auto name = doc.value("Name", std::string());
  if (!name.empty()) {
    if (!names::is_valid_object_name(name)) {
      return refused(bad("create " + name + ": \"" + name +
                             "\" includes invalid characters for a local volume name, only "
                             "\"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed",
                         "volume.name"));
    }
    doc["Name"] = names::stored(c.tenant(), name);
    c.out.created_name = doc["Name"].get<std::string>();
  }
  c.out.body = doc.dump();
  return c.out;
}

// prune and list routes: the tenant's filters, without berth.* labels, plus its own label.
std::expected<std::string, Decision> tenant_filters(const Ctx& c, std::string_view query,
                                                    bool add_label, RefKind kind,
                                                    std::string_view route_of_filters = {}) {
  auto params = parse_query(query);
  if (!params) {
    return std::unexpected(bad("berth: malformed query string", "query.invalid"));
  }
  bool have_filters = false;
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& [key, value] : *params) {
    if (key != "filters") {
      out.emplace_back(key, value);
      continue;
    }
    if (have_filters) {
      continue;  // dockerd reads the first value only
    }
    have_filters = true;
    auto f = parse_filters(value.empty() ? "{}" : value);
    if (!f) {
      return std::unexpected(bad("invalid filter '" + value + "'", "query.filters"));
    }
    for (const auto& label : (*f)["label"]) {
      if (is_reserved_label(label)) {
        return std::unexpected(refuse("filtering on the reserved label '" + label +
                                          "' is not allowed",
                                      "label.reserved"));
      }
    }
    if (f->contains("label!")) {
      for (const auto& label : (*f)["label!"]) {
        if (is_reserved_label(label)) {
          return std::unexpected(refuse("filtering on the reserved label '" + label +
                                            "' is not allowed",
                                        "label.reserved"));
        }
      }
    }
    // Names and references are matched by berth on the tenant's own spelling.
    if (f->contains("name") &&
        (route_of_filters == "container.list" || route_of_filters == "network.list" ||
         route_of_filters == "volume.list")) {
      c.out.list_filter.names = (*f)["name"];
      f->erase("name");
    }
    if (f->contains("id") && route_of_filters == "container.list") {
      c.out.list_filter.ids = (*f)["id"];
      f->erase("id");
    }
    if (f->contains("reference") && route_of_filters == "image.list") {
      c.out.list_filter.references = (*f)["reference"];
      f->erase("reference");
    }
    if (kind == RefKind::container) {
      if (f->contains("container")) {
        // dockerd matches an events "container" filter on the id or the stored name. A
        // container found is followed by both: by its name wherever it moves (its twin on
        // another host has another id, the same name).
        std::vector<std::string> refs;
        for (const auto& ref : (*f)["container"]) {
          auto found = c.index.find_container(c.tenant(), ref);
          if (found.result == Lookup::found) {
            refs.push_back(found.value.id);
            refs.push_back(found.value.name);
          } else {
            refs.push_back(names::stored(c.tenant(), ref));
          }
        }
        (*f)["container"] = std::move(refs);
      }
      for (const char* rel : {"before", "since"}) {
        if (f->contains(rel)) {
          for (auto& ref : (*f)[rel]) {
            auto found = c.index.find_container(c.tenant(), ref);
            if (found.result != Lookup::found) {
              return std::unexpected(not_found(RefKind::container, ref));  // dockerd: 404
            }
            ref = found.value.id;
          }
        }
      }
      if (f->contains("network")) {
        for (auto& n : (*f)["network"]) {
          auto found = c.index.find_network(c.tenant(), n);
          n = found.result == Lookup::found ? found.value.id : names::stored(c.tenant(), n);
        }
      }
      if (f->contains("volume")) {
        for (auto& v : (*f)["volume"]) {
          if (!v.starts_with("/")) {
            v = names::stored(c.tenant(), v);
          }
        }
      }
    }
    if (kind == RefKind::image) {
      // dockerd answers an unknown image here with 404 and a known one with its list: on the
      // whole store, that told a tenant which of another tenant's images exist. Resolved among
      // the images the tenant may see, as dockerd resolves them on its own store.
      for (const char* rel : {"before", "since"}) {
        if (f->contains(rel)) {
          for (auto& ref : (*f)[rel]) {
            auto found = c.index.find_image(c.tenant(), ref);
            if (found.result != Lookup::found) {
              return std::unexpected(not_found(RefKind::image, ref));
            }
            ref = found.value.id;
          }
        }
      }
    }
    if (add_label) {
      (*f)["label"].push_back(std::string(vocabulary::tenant_label) + "=" + c.tenant());
    }
    out.emplace_back("filters", serialize_filters(*f));
  }
  if (!have_filters && add_label) {
    std::map<std::string, std::vector<std::string>> f;
    f["label"].push_back(std::string(vocabulary::tenant_label) + "=" + c.tenant());
    out.emplace_back("filters", serialize_filters(f));
  }
  return build_query(out);
}

std::optional<std::string> param(const std::vector<std::pair<std::string, std::string>>& q,
                                 std::string_view key) {
  for (const auto& [k, v] : q) {
    if (k == key) {
      return v;  // Go's FormValue: the first value
    }
  }
  return std::nullopt;
}

Rewritten with_query(const Ctx& c, const Classified& request, std::string query) {
  Classified forwarded = request;
  forwarded.query = std::move(query);
  c.out.target = canonical_target(forwarded);
  return c.out;
}

// --cache-from: each image the tenant names, resolved among those it may use, as an id.
std::expected<std::vector<std::string>, Decision> judge_cache_from(const Ctx& c,
                                                                  const std::string& value) {
  std::vector<std::string> ids;
  if (value.empty() || value == "null") {
    return ids;
  }
  const auto refs = json::parse(value, nullptr, false);
  if (!refs.is_array()) {
    return std::unexpected(bad("berth: cachefrom must be a JSON list of images", "query.invalid"));
  }
  for (const auto& r : refs) {
    if (!r.is_string()) {
      return std::unexpected(bad("berth: cachefrom must be a JSON list of images", "query.invalid"));
    }
    const std::string ref = r.get<std::string>();
    auto found = c.index.find_image(c.tenant(), ref);
    if (found.result != Lookup::found || !image_allowed(c.rules, found.value)) {
      return std::unexpected(refuse("cache source '" + ref + "' is not an image tenant " +
                                        c.tenant() + " may use",
                                    "build.cache_from"));
    }
    ids.push_back(found.value.id);
  }
  return ids;
}

// "80/tcp", "53/udp", "8080": a port dockerd's nat.ParsePortSpec takes.
bool is_port_spec(std::string_view port) {
  const auto slash = port.find('/');
  const std::string_view number = port.substr(0, slash);
  if (number.empty() || number.size() > 5 ||
      number.find_first_not_of("0123456789") != std::string_view::npos) {
    return false;
  }
  if (slash == std::string_view::npos) {
    return true;
  }
  const std::string_view proto = port.substr(slash + 1);
  return proto == "tcp" || proto == "udp" || proto == "sctp";
}

Rewritten build(const Ctx& c, const Classified& request) {
  auto q = parse_query(request.query);
  if (!q) {
    return refused(bad("berth: malformed query string", "query.invalid"));
  }
  if (param(*q, "version").value_or("1") == "2" || param(*q, "session").has_value()) {
    return refused(refuse("BuildKit is not supported for tenants yet; build with the classic "
                          "builder (DOCKER_BUILDKIT=0)",
                          "build.buildkit"));
  }
  std::vector<std::pair<std::string, std::string>> out;
  json wrapper = json::object();
  if (auto l = param(*q, "labels"); l && !l->empty()) {
    auto labels = json::parse(*l, nullptr, false);
    if (!labels.is_object()) {
      return refused(bad("berth: build labels must be a JSON object", "query.invalid"));
    }
    for (const auto& [k, v] : labels.items()) {
      if (!v.is_string()) {
        return refused(bad("berth: build label values must be strings", "query.invalid"));
      }
    }
    wrapper["Labels"] = std::move(labels);
  }
  if (auto d = own_labels(wrapper, "Labels", c.tenant(), "image")) {
    return refused(*d);
  }
  // The build's RUN containers: the tenant's defaults and limits, as for its own containers
  // (dockerd reads the first of each parameter). They are not counted against the quota: they
  // live for one step, inside the tenant's cgroup parent.
  static constexpr std::pair<std::string_view, const char*> resource_params[] = {
      {"memory", "Memory"}, {"memswap", "MemorySwap"}, {"cpuquota", "CpuQuota"},
      {"cpuperiod", "CpuPeriod"}};
  json resources = json::object();
  for (const auto& [param_name, field] : resource_params) {
    if (auto v = param(*q, param_name); v && !v->empty()) {
      std::int64_t number = 0;
      const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), number);
      if (ec != std::errc() || end != v->data() + v->size()) {
        return refused(bad("strconv.ParseInt: parsing \"" + *v + "\": invalid syntax",
                           "query.invalid"));
      }
      resources[field] = number;
    }
  }
  if (auto d = apply_limits(c, resources, nullptr)) {
    return refused(*d);
  }
  c.out.claim.reset();
  if (resources.contains("NanoCpus")) {  // the builder takes CPUs only as a quota of a period
    const std::int64_t nano = resources["NanoCpus"].get<std::int64_t>();
    const std::int64_t period =
        resources.value("CpuPeriod", std::int64_t{0}) > 0 ? resources["CpuPeriod"].get<std::int64_t>()
                                                          : default_cpu_period;
    resources["CpuPeriod"] = period;
    resources["CpuQuota"] = static_cast<std::int64_t>(static_cast<long double>(nano) * period /
                                                      nano_per_cpu);
    resources.erase("NanoCpus");
  }
  bool network_seen = false;
  for (const auto& [key, value] : *q) {
    if (std::any_of(std::begin(resource_params), std::end(resource_params),
                    [&](const auto& p) { return key == p.first; })) {
      continue;  // written below, judged
    }
    if (key == "t") {
      auto ref = names::parse_image_ref(value);
      if (!ref) {
        return refused(bad("invalid reference format: repository name must be lowercase",
                           "image.reference"));
      }
      out.emplace_back("t", names::stored_image(c.tenant(), *ref));
    } else if (key == "labels" || key == "cgroupparent") {
      continue;
    } else if (key == "remote" && !value.empty()) {
      return refused(refuse("remote build contexts make the daemon fetch URLs and are not "
                            "allowed for tenants",
                            "build.remote"));
    } else if (key == "networkmode") {
      if (network_seen) {
        continue;
      }
      network_seen = true;
      auto net = network_name(c, value);
      if (!net) {
        return refused(net.error());
      }
      out.emplace_back("networkmode", *net);
    } else if (key == "cachefrom") {
      continue;  // judged below
    } else if (key == "isolation" && !value.empty() && value != "default") {
      return refused(refuse("build isolation '" + value + "' is not allowed", "escape.isolation"));
    } else if (key == "outputs" || key == "squash") {
      continue;
    } else {
      out.emplace_back(key, value);
    }
  }
  if (!network_seen) {
    auto net = network_name(c, "");
    out.emplace_back("networkmode", *net);
  }
  // The classic builder's cache spans every image on the daemon: a tenant would get another
  // tenant's layers (and their secrets) for an identical step, or plant its own. No cache,
  // unless the build names its cache sources (--cache-from): then dockerd takes cache hits only
  // from those images' histories, and berth lets through only images the tenant may use.
  auto cache_from = judge_cache_from(c, param(*q, "cachefrom").value_or(""));
  if (!cache_from) {
    return refused(cache_from.error());
  }
  if (cache_from->empty()) {
    std::erase_if(out, [](const auto& kv) { return kv.first == "nocache"; });
    out.emplace_back("nocache", "1");
  } else {
    json ids = json::array();
    for (const auto& id : *cache_from) {
      ids.push_back(id);
    }
    out.emplace_back("cachefrom", ids.dump());
  }
  out.emplace_back("labels", wrapper["Labels"].dump());
  out.emplace_back("cgroupparent", tenant_cgroup_parent(c.tenant(), c.facts));
  for (const auto& [param_name, field] : resource_params) {
    if (resources.contains(field) && resources[field].get<std::int64_t>() != 0) {
      out.emplace_back(std::string(param_name), std::to_string(resources[field].get<std::int64_t>()));
    }
  }
  c.out.view = ResponseView::build_stream;
  c.out.filter_build_context = true;
  c.out.dockerfile = param(*q, "dockerfile").value_or("");
  return with_query(c, request, build_query(out));
}

Rewritten image_tag(const Ctx& c, const Classified& request) {
  auto q = parse_query(request.query);
  if (!q) {
    return refused(bad("berth: malformed query string", "query.invalid"));
  }
  // A tag in the tenant's namespace makes an image the tenant's to use: a shared image the
  // policy does not let it use stays unusable under any name.
  if (const auto image = c.index.image_by_id(request.params.front());
      image && !image_allowed(c.rules, *image)) {
    return refused(refuse("image '" +
                              (request.refs.empty() ? request.params.front()
                                                    : request.refs.front()) +
                              "' is not among the shared images tenant " + c.tenant() +
                              " may use",
                          "image.not_allowed"));
  }
  const std::string repo = param(*q, "repo").value_or("");
  const std::string tag = param(*q, "tag").value_or("");
  auto ref = names::parse_image_ref(tag.empty() ? repo : repo + ":" + tag);
  if (repo.empty() || !ref) {
    return refused(bad("invalid reference format", "image.reference"));
  }
  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back("repo", names::stored_image(c.tenant(), names::ImageRef{ref->name, {}, {}}));
  out.emplace_back("tag", ref->tag);
  return with_query(c, request, build_query(out));
}

Rewritten image_delete(const Ctx& c, const Classified& request, const std::string& original) {
  // `request.params[0]` was resolved to an image id; decide what the tenant may remove.
  auto img = c.index.image_by_id(request.params.front());
  if (!img) {
    return refused(not_found(RefKind::image, original));
  }
  auto parsed = names::parse_image_ref(original);
  if (parsed) {
    const std::string stored = names::stored_image(c.tenant(), *parsed);
    if (std::find(img->tags.begin(), img->tags.end(), stored) != img->tags.end()) {
      Classified forwarded = request;
      forwarded.params = {stored};
      forwarded.path = "/images/" + stored;
      c.out.target = canonical_target(forwarded);
      return c.out;
    }
  }
  if (img->tenant != c.tenant()) {
    return refused(Decision::deny(
        409, "berth: image " + original + " is shared by the operator and read-only for tenants",
        "image.shared"));
  }
  for (const auto& t : img->tags) {
    if (!names::tenant_image_view(c.tenant(), t)) {
      return refused(Decision::deny(
          409, "conflict: unable to delete " + original + " - image is referenced in multiple "
               "repositories",
          "image.shared"));
    }
  }
  return c.out;
}

// A body where dockerd reads none, as clients send it anyway: nothing, "{}" or "null".
bool no_json_body(std::string_view body) {
  const auto first = body.find_first_not_of(" \t\r\n");
  return first == std::string_view::npos || body.substr(first) == "{}" ||
         body.substr(first) == "null";
}

Rewritten image_pull(const Ctx& c, const Classified& request,
                     const std::vector<std::pair<std::string, std::string>>& q) {
  const std::string from = param(q, "fromImage").value_or("");
  const std::string tag = param(q, "tag").value_or("");
  auto ref = names::parse_image_ref(from);
  const bool named_tag =
      !tag.empty() || from.find('@') != std::string::npos || names::has_tag_separator(from);
  if (!ref) {
    return refused(bad("invalid reference format", "image.reference"));
  }
  if (!tag.empty()) {
    auto with_tag = names::parse_image_ref(ref->name + (tag.starts_with("sha256:") ? "@" : ":") + tag);
    if (!with_tag) {
      return refused(bad("invalid reference format", "image.reference"));
    }
    ref = std::move(with_tag);
  }
  if (!named_tag) {
    return refused(refuse("pulling every tag of a repository is not available to tenants; "
                          "name the tag to pull",
                          "image.pull_all_tags"));
  }
  if (!ref->digest.empty() || ref->tag.empty()) {
    return refused(refuse("pulling by digest is not available to tenants yet; pull " + ref->name +
                              " by its tag",
                          "image.pull_digest"));
  }
  if (names::is_tenant_image_repo(ref->name + "/")) {
    return refused(not_found(RefKind::image, from));
  }
  if (auto d = judge_registry(c.rules, names::registry_of(*ref))) {
    return refused(*d);
  }
  std::vector<std::pair<std::string, std::string>> out{{"fromImage", ref->name},
                                                       {"tag", ref->tag}};
  if (auto platform = param(q, "platform"); platform && !platform->empty()) {
    out.emplace_back("platform", *platform);
  }
  c.out.transfer = ImageTransfer{ImageTransfer::Kind::pull, ref->name, ref->tag,
                                 names::stored_image(c.tenant(), *ref), {}};
  c.out.view = ResponseView::build_stream;
  return with_query(c, request, build_query(out));
}

Rewritten image_push(const Ctx& c, const Classified& request, std::string_view body) {
  if (!no_json_body(body)) {
    return refused(bad("berth: a push takes no request body", "body.unexpected"));
  }
  c.out.body = std::string();
  auto q = parse_query(request.query);
  if (!q) {
    return refused(bad("berth: malformed query string", "query.invalid"));
  }
  const std::string name = request.params.front();
  const std::string tag = param(*q, "tag").value_or("");
  if (tag.empty()) {
    return refused(refuse("pushing every tag of a repository is not available to tenants; "
                          "name the tag to push",
                          "image.push_all_tags"));
  }
  auto ref = names::parse_image_ref(name + ":" + tag);
  if (!ref || names::has_tag_separator(name)) {
    return refused(bad("invalid reference format", "image.reference"));
  }
  // Only the tenant's own tag is pushed: a shared image it has not tagged as its own stays the
  // operator's.
  const std::string stored = names::stored_image(c.tenant(), *ref);
  const auto image = c.index.image_by_tag(stored);
  if (!image) {
    return refused(Decision::deny(404, "An image does not exist locally with the tag: " + ref->name,
                                  "resolve.image"));
  }
  if (auto d = judge_registry(c.rules, names::registry_of(*ref))) {
    return refused(*d);
  }
  Classified forwarded = request;
  forwarded.params = {ref->name};
  forwarded.path = "/images/" + ref->name + "/push";
  forwarded.query = build_query({{"tag", ref->tag}});
  c.out.target = canonical_target(forwarded);
  c.out.transfer =
      ImageTransfer{ImageTransfer::Kind::push, ref->name, ref->tag, stored, image->id};
  c.out.view = ResponseView::build_stream;
  return c.out;
}

// The Dockerfile instructions of an import's or a commit's `changes`, as dockerd reads them
// (joined by newlines and parsed as one Dockerfile), judged and written back canonically, with
// the ownership label last.
std::expected<std::vector<std::string>, Decision> judge_changes(
    const Ctx& c, const std::vector<std::pair<std::string, std::string>>& q) {
  std::string joined;
  for (const auto& [key, value] : q) {
    if (key == "changes") {
      joined += value;
      joined += '\n';
    }
  }
  std::vector<std::string> out;
  if (!joined.empty()) {
    auto parsed = dockerfile::parse(joined);
    if (!parsed) {
      return std::unexpected(bad("dockerfile parse error line " + std::to_string(parsed.error().line) +
                                     ": " + parsed.error().message,
                                 "image.changes"));
    }
    if (parsed->escape != '\\') {
      out.push_back(std::string("# escape=") + parsed->escape);
    }
    static constexpr std::string_view allowed[] = {"cmd",  "entrypoint", "healthcheck", "env",
                                                   "expose", "label",    "user",        "volume",
                                                   "workdir"};
    for (const auto& node : parsed->instructions) {
      if (std::find(std::begin(allowed), std::end(allowed), node.cmd) == std::end(allowed)) {
        return std::unexpected(
            node.cmd == "onbuild"
                ? refuse("ONBUILD triggers are not available to tenants", "image.onbuild")
                : bad(node.cmd + " is not a valid change command", "image.changes"));
      }
      if (node.cmd == "label") {
        // Keys as the builder reads them after quotes, escapes and variables: refuse what could
        // become a reserved key.
        for (std::size_t i = 0; i < node.args.size(); i += 2) {
          const std::string& key = node.args[i];
          if (key.find_first_of("\"'\\$`") != std::string::npos ||
              key.starts_with(vocabulary::reserved_label_prefix)) {
            return std::unexpected(refuse("image label '" + key +
                                              "' is reserved or not plain: the berth. prefix "
                                              "belongs to the operator",
                                          "label.reserved"));
          }
        }
      }
      auto line = dockerfile::instruction_line(node.cmd, node.flags, node.rest, parsed->escape);
      if (!line) {
        return std::unexpected(bad("berth: a change berth cannot write back: " + line.error(),
                                   "image.changes"));
      }
      out.push_back(std::move(*line));
    }
  }
  out.push_back("LABEL " + std::string(vocabulary::tenant_label) + "=" + c.tenant());
  return out;
}

// The repository and tag an import or commit names, in the tenant's namespace.
std::expected<std::pair<std::string, std::string>, Decision> stored_repo_tag(
    const Ctx& c, const std::string& repo, const std::string& tag) {
  if (repo.empty()) {
    if (!tag.empty()) {
      return std::unexpected(bad("invalid reference format", "image.reference"));
    }
    return std::pair<std::string, std::string>{};
  }
  auto ref = names::parse_image_ref(tag.empty() ? repo : repo + ":" + tag);
  if (!ref || !ref->digest.empty()) {
    return std::unexpected(bad("invalid reference format", "image.reference"));
  }
  return std::pair{names::stored_image(c.tenant(), names::ImageRef{ref->name, {}, {}}), ref->tag};
}

Rewritten image_import(const Ctx& c, const Classified& request,
                       const std::vector<std::pair<std::string, std::string>>& q) {
  if (param(q, "fromSrc").value_or("") != "-") {
    return refused(refuse("importing from a URL makes the daemon fetch it; send the archive in "
                          "the request (docker import FILE or -)",
                          "image.import_url"));
  }
  auto names = stored_repo_tag(c, param(q, "repo").value_or(""), param(q, "tag").value_or(""));
  if (!names) {
    return refused(names.error());
  }
  auto changes = judge_changes(c, q);
  if (!changes) {
    return refused(changes.error());
  }
  std::vector<std::pair<std::string, std::string>> out{{"fromSrc", "-"}};
  if (!names->first.empty()) {
    out.emplace_back("repo", names->first);
    out.emplace_back("tag", names->second);
  }
  for (auto& change : *changes) {
    out.emplace_back("changes", std::move(change));
  }
  for (const char* key : {"message", "platform"}) {
    if (auto v = param(q, key); v && !v->empty()) {
      out.emplace_back(key, *v);
    }
  }
  c.out.view = ResponseView::build_stream;
  return with_query(c, request, build_query(out));
}

// A name of `docker save`, as dockerd must be asked for it: the tenant's own tag (a repository
// without a tag is every tag of it, as dockerd reads it), a shared image by the operator's name
// (that tag only: the repository may hold tags the tenant may not use), else the image's id.
std::expected<std::string, Decision> save_name(const Ctx& c, const std::string& name) {
  auto parsed = names::parse_image_ref(name);
  const bool name_only =
      parsed && name.find('@') == std::string::npos && !names::has_tag_separator(name);
  auto found = c.index.find_image(c.tenant(), name);
  if (found.result != Lookup::found) {
    if (name_only) {
      // Perhaps a repository of the tenant's without "latest": dockerd answers from it alone.
      return names::stored_image(c.tenant(), names::ImageRef{parsed->name, {}, {}});
    }
    return std::unexpected(not_found(RefKind::image, name));
  }
  if (!image_allowed(c.rules, found.value)) {
    return std::unexpected(refuse("image '" + name + "' is not among the shared images tenant " +
                                      c.tenant() + " may use",
                                  "image.not_allowed"));
  }
  const auto& tags = found.value.tags;
  if (parsed) {
    const std::string stored = names::stored_image(c.tenant(), *parsed);
    if (std::find(tags.begin(), tags.end(), stored) != tags.end()) {
      return name_only ? names::stored_image(c.tenant(), names::ImageRef{parsed->name, {}, {}})
                       : stored;
    }
    const std::string shared = parsed->str();
    if (!names::is_tenant_image_repo(shared) &&
        std::any_of(tags.begin(), tags.end(), [&](const std::string& t) {
          return t == shared || t == "docker.io/library/" + shared;
        })) {
      return shared;
    }
  }
  return found.value.id;
}

// docker save: the names resolved in the tenant's namespace; the archive's own name files are
// rewritten on the way back (ResponseView::image_archive).
Rewritten image_save(const Ctx& c, const Classified& request) {
  c.out.view = ResponseView::image_archive;
  if (request.route->endpoint == "image.save_one") {
    auto forwarded = save_name(c, request.refs.empty() ? request.params.front()
                                                       : request.refs.front());
    if (!forwarded) {
      return refused(std::move(forwarded.error()));
    }
    Classified one = request;
    one.params = {*forwarded};
    one.path = "/images/" + *forwarded + "/get";
    c.out.target = canonical_target(one);
    return c.out;
  }
  auto q = parse_query(request.query);
  if (!q) {
    return refused(bad("berth: malformed query string", "query.invalid"));
  }
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [key, value] : *q) {
    if (key != "names") {
      continue;
    }
    auto forwarded = save_name(c, value);
    if (!forwarded) {
      return refused(std::move(forwarded.error()));
    }
    out.emplace_back("names", std::move(*forwarded));
  }
  return with_query(c, request, build_query(out));
}

Rewritten container_commit(const Ctx& c, const Classified& request, std::string_view body) {
  auto q = parse_query(request.query);
  if (!q) {
    return refused(bad("berth: malformed query string", "query.invalid"));
  }
  const std::string container = param(*q, "container").value_or("");
  auto found = c.index.find_container(c.tenant(), container);
  if (found.result != Lookup::found) {
    return refused(not_found(RefKind::container, container));
  }
  auto names = stored_repo_tag(c, param(*q, "repo").value_or(""), param(*q, "tag").value_or(""));
  if (!names) {
    return refused(names.error());
  }
  auto changes = judge_changes(c, *q);
  if (!changes) {
    return refused(changes.error());
  }
  // The configuration the image starts from: labels judged (and the ownership label), no
  // ONBUILD triggers.
  json doc = json::object();
  const auto first = body.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && body.substr(first) != "null") {
    auto decoded = go::decode(body, docker_types::container_config());
    if (!decoded || !decoded->is_object()) {
      return refused(bad("berth: invalid commit configuration: " +
                             (decoded ? std::string("not an object") : decoded.error()),
                         "body.invalid"));
    }
    doc = std::move(*decoded);
  }
  if (doc.contains("OnBuild") && doc["OnBuild"].is_array() && !doc["OnBuild"].empty()) {
    return refused(refuse("ONBUILD triggers are not available to tenants", "image.onbuild"));
  }
  if (auto d = own_labels(doc, "Labels", c.tenant(), "image")) {
    return refused(*d);
  }
  std::vector<std::pair<std::string, std::string>> out{{"container", found.value.id}};
  if (!names->first.empty()) {
    out.emplace_back("repo", names->first);
    out.emplace_back("tag", names->second);
  }
  for (const char* key : {"comment", "author", "pause"}) {
    if (auto v = param(*q, key); v && !v->empty()) {
      out.emplace_back(key, *v);
    }
  }
  for (auto& change : *changes) {
    out.emplace_back("changes", std::move(change));
  }
  c.out.body = doc.dump();
  return with_query(c, request, build_query(out));
}

}  // namespace

std::expected<std::int64_t, Decision> add_published_ports(std::string& body,
                                                          const std::string& image_inspect,
                                                          const Tenant& rules) {
  auto doc = json::parse(body, nullptr, false);
  const auto image = json::parse(image_inspect, nullptr, false);
  if (!doc.is_object() || rules.grants.host_ports.empty()) {
    return std::unexpected(bad("berth: internal error publishing ports", "ports.random"));
  }
  if (!image.is_object() || !image.contains("Config") || !image["Config"].is_object()) {
    return 0;  // no such image: dockerd answers the create itself
  }
  const json exposed = image["Config"].value("ExposedPorts", json::object());
  if (!exposed.is_object()) {
    return 0;
  }
  json& bindings = doc["HostConfig"]["PortBindings"];
  if (!bindings.is_object()) {
    bindings = json::object();
  }
  const auto& range = rules.grants.host_ports.front();
  const std::string host_port = std::to_string(range.first) + "-" + std::to_string(range.last);
  std::int64_t added = 0;
  for (const auto& [port, unused] : exposed.items()) {
    if (!bindings.contains(port) && is_port_spec(port)) {
      bindings[port] = json::array({{{"HostIp", ""}, {"HostPort", host_port}}});
      ++added;
    }
  }
  body = doc.dump();
  return added;
}

int api_minor(const Classified& request) {
  if (request.api_version.empty()) {
    return max_api_minor;  // dockerd's version middleware: no prefix is the current version
  }
  return std::stoi(request.api_version.substr(2));
}

std::string tenant_cgroup_parent(std::string_view tenant, const DaemonFacts& facts) {
  return vocabulary::cgroup_parent(tenant, facts.cgroup_driver == "systemd");
}

RefKind ref_kind(const Route& route) noexcept {
  const std::string_view e = route.endpoint;
  if (route.pattern.find('{') == std::string_view::npos) {
    return RefKind::none;
  }
  if (e.starts_with("container.") || e == "exec.create" || e.starts_with("checkpoint.")) {
    return RefKind::container;
  }
  if (e.starts_with("exec.")) {
    return RefKind::exec;
  }
  if (e.starts_with("network.")) {
    return RefKind::network;
  }
  if (e.starts_with("volume.")) {
    return RefKind::volume;
  }
  if (e.starts_with("image.") && e != "image.push") {  // a push names a tag: image_push
    return RefKind::image;
  }
  return RefKind::none;
}

Decision not_found(RefKind kind, std::string_view ref) {
  const std::string r(ref);
  switch (kind) {
    case RefKind::container:
      return Decision::deny(404, "No such container: " + r, "resolve.container");
    case RefKind::exec:
      return Decision::deny(404, "No such exec instance: " + r, "resolve.exec");
    case RefKind::network:
      return Decision::deny(404, "network " + r + " not found", "resolve.network");
    case RefKind::volume:
      return Decision::deny(404, "get " + r + ": no such volume", "resolve.volume");
    case RefKind::image:
      return Decision::deny(404, "No such image: " + r, "resolve.image");
    case RefKind::none:
      break;
  }
  return Decision::deny(404, "page not found", "route.unknown");
}

std::expected<Classified, Decision> resolve(const Principal& who, const Classified& request,
                                            const OwnershipIndex& index) {
  if (who.is_operator()) {
    return request;
  }
  const RefKind kind = ref_kind(*request.route);
  if (kind == RefKind::none || request.params.empty()) {
    return request;
  }
  Classified out = request;
  out.refs = request.params;
  const std::string& ref = request.params.front();
  std::string resolved;
  switch (kind) {
    case RefKind::container: {
      if (const auto slash = ref.find('/');
          slash != std::string::npos && request.route->endpoint == "container.delete") {
        // A legacy link, "parent/alias": dockerd names it "/<parent's stored name>/<alias>".
        // Only removed as a link (link=1, checked by the rewrite); dockerd would take the path
        // without it as the linked container's other name.
        auto parent = index.find_container(who.tenant, ref.substr(0, slash));
        if (parent.result != Lookup::found || ref.find('/', slash + 1) != std::string::npos) {
          return std::unexpected(not_found(kind, ref));
        }
        const std::string_view parent_name = parent.value.name;
        resolved = std::string(parent_name.substr(parent_name.starts_with('/') ? 1 : 0)) +
                   ref.substr(slash);
        break;
      }
      auto found = index.find_container(who.tenant, ref);
      if (found.result == Lookup::ambiguous) {
        return std::unexpected(Decision::deny(
            400, "Multiple IDs found with provided prefix: " + ref, "resolve.ambiguous"));
      }
      if (found.result != Lookup::found) {
        if (request.route->endpoint == "container.kill") {
          return std::unexpected(Decision::deny(
              404, "Cannot kill container: " + ref + ": No such container: " + ref,
              "resolve.container"));
        }
        return std::unexpected(not_found(kind, ref));
      }
      resolved = found.value.id;
      break;
    }
    case RefKind::exec: {
      auto container = index.exec_container(ref);
      if (!container) {
        return std::unexpected(not_found(kind, ref));
      }
      auto c = index.container_by_id(*container);
      if (!c || c->tenant != who.tenant) {
        return std::unexpected(not_found(kind, ref));
      }
      resolved = ref;
      break;
    }
    case RefKind::network: {
      auto found = index.find_network(who.tenant, ref);
      if (found.result == Lookup::ambiguous) {
        return std::unexpected(Decision::deny(
            400, "network " + ref + " is ambiguous (2 matches found based on ID prefix)",
            "resolve.ambiguous"));
      }
      if (found.result != Lookup::found) {
        return std::unexpected(not_found(kind, ref));
      }
      resolved = found.value.id;
      break;
    }
    case RefKind::volume: {
      const std::string stored = names::stored(who.tenant, ref);
      if (auto v = index.volume(stored); v && v->tenant == who.tenant) {
        resolved = stored;
      } else if (auto plain = index.volume(ref); plain && plain->tenant == who.tenant) {
        resolved = ref;
      } else {
        return std::unexpected(not_found(kind, ref));
      }
      break;
    }
    case RefKind::image: {
      auto found = index.find_image(who.tenant, ref);
      if (found.result != Lookup::found) {
        return std::unexpected(not_found(kind, ref));
      }
      resolved = found.value.id;
      break;
    }
    case RefKind::none:
      break;
  }
  out.params.front() = resolved;
  // Rebuild the path from the pattern with the resolved parameter.
  std::string path;
  std::string_view pattern = request.route->pattern;
  std::size_t i = 0;
  while (i < pattern.size()) {
    if (pattern[i] == '{') {
      const auto close = pattern.find('}', i);
      path += out.params.front();
      i = close + 1;
      // Only the first parameter is an object reference; later ones (checkpoint) are kept.
      for (std::size_t p = 1; p < out.params.size(); ++p) {
        const auto next = pattern.find('{', i);
        if (next == std::string_view::npos) {
          break;
        }
        path += pattern.substr(i, next - i);
        path += out.params[p];
        i = pattern.find('}', next) + 1;
      }
    } else {
      path += pattern[i++];
    }
  }
  out.path = std::move(path);
  return out;
}

bool image_allowed(const Tenant& rules, const ImageInfo& image) {
  if (!rules.images || image.tenant == rules.id) {
    return true;
  }
  for (const auto& tag : image.tags) {
    if (names::tenant_image_view(rules.id, tag)) {
      return true;  // tagged in the tenant's own namespace
    }
  }
  for (const auto& tag : image.tags) {
    std::string_view ref = tag;
    if (ref.starts_with("docker.io/library/")) {
      ref.remove_prefix(18);
    }
    for (const auto& pattern : *rules.images) {
      if (image_pattern_matches(pattern, ref) || image_pattern_matches(pattern, tag)) {
        return true;
      }
    }
  }
  return false;
}

Rewritten rewrite_for_tenant(const Principal& who, const Classified& original,
                             std::string_view body, const OwnershipIndex& index,
                             const DaemonFacts& facts, const Tenant& rules) {
  Rewritten out;
  // Older API versions change what dockerd accepts in ways berth does not judge (below 1.24,
  // start takes a HostConfig body); tenants use the versions every current client speaks.
  const int minor = api_minor(original);
  if (minor < 24) {
    return refused(bad("berth: API version " + original.api_version +
                           " is not supported for tenants; use 1.24 to 1.41",
                       "api.version"));
  }
  // The query, parameter by parameter against the route's list, in the form dockerd will
  // read it: everything below reads (and forwards) only the judged query.
  std::optional<Classified> judged_query;
  if (!original.query.empty()) {
    auto canonical =
        judge_query(original.route->query, original.query, minor,
                    std::string(original.route->method) + " " +
                        std::string(original.route->pattern));
    if (!canonical) {
      return refused(canonical.error());
    }
    judged_query.emplace(original);
    judged_query->query = std::move(*canonical);
  }
  const Classified& request = judged_query ? *judged_query : original;
  out.target = canonical_target(request);
  Ctx c{who, index, facts, rules, out, std::nullopt};
  const std::string_view e = request.route->endpoint;

  if (e == "container.create") {
    return container_create(c, request, body);
  }
  if (e == "plugin.list") {
    out.local_reply = "[]";
    return out;
  }
  if (e == "plugin.inspect") {
    return refused(Decision::deny(404, "plugin \"" + request.params.front() + "\" not found",
                                  "resolve.plugin"));
  }
  if (e == "build.session") {
    return refused(refuse("BuildKit is not supported for tenants yet; build with the classic "
                          "builder (DOCKER_BUILDKIT=0)",
                          "build.buildkit"));
  }
  if (e == "container.update") {
    return container_update(c, request, body);
  }
  if (e == "container.start") {
    if (!no_json_body(body)) {
      return refused(bad("berth: starting a container with a request body is not supported; "
                         "set the configuration at create",
                         "body.unexpected"));
    }
    out.body = std::string();
    return out;
  }
  if (e == "exec.create") {
    return exec_create(c, body);
  }
  if (e == "system.auth") {
    // dockerd logs in to the server the body names, from the host's network (a tenant could
    // scan the host's loopback this way): only registries the operator lists for the tenant.
    auto decoded = go::decode(body, docker_types::auth_config());
    if (!decoded || !decoded->is_object()) {
      return refused(bad("berth: invalid login: " + (decoded ? std::string("empty body")
                                                               : decoded.error()),
                         "body.invalid"));
    }
    const std::string server = decoded->value("serveraddress", std::string());
    if (auto d = judge_registry(rules, server)) {
      return refused(*d);
    }
    out.body = decoded->dump();
    return out;
  }
  if (e == "exec.start") {
    auto decoded = go::decode(body, docker_types::exec_start());
    if (!decoded) {
      return refused(bad("berth: invalid exec start: " + decoded.error(), "body.invalid"));
    }
    out.body = decoded->dump();
    return out;
  }
  if (e == "network.create") {
    return network_create(c, body);
  }
  if (e == "network.connect" || e == "network.disconnect") {
    return network_connect(c, body);
  }
  if (e == "volume.create") {
    return volume_create(c, body);
  }
  if (e == "container.rename") {
    auto q = parse_query(request.query);
    auto name = q ? param(*q, "name") : std::nullopt;
    if (name && name->starts_with("/")) {
      name->erase(0, 1);  // dockerd trims one leading slash before checking the name
    }
    if (!name || !names::is_valid_object_name(*name) || name->size() < 2) {
      return refused(bad("Invalid container name (" + name.value_or("") +
                             "), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed",
                         "name.invalid"));
    }
    return with_query(c, request, build_query({{"name", names::stored(who.tenant, *name)}}));
  }
  if (e == "container.list" || e == "container.prune" || e == "network.prune" ||
      e == "volume.prune" || e == "image.prune" || e == "network.list") {
    auto q = tenant_filters(c, request.query, true,
                            e.starts_with("container.") ? RefKind::container : RefKind::none, e);
    if (!q) {
      return refused(q.error());
    }
    if (e == "container.list") {
      out.view = ResponseView::container_list;
    } else if (e == "network.list") {
      out.view = ResponseView::network_list;
    } else {
      out.view = ResponseView::prune_report;
    }
    return with_query(c, request, *q);
  }
  if (e == "volume.list" || e == "image.list") {
    // Anonymous volumes and shared images carry no label: filtered by the index instead.
    auto q = tenant_filters(c, request.query, false,
                            e == "image.list" ? RefKind::image : RefKind::none, e);
    if (!q) {
      return refused(q.error());
    }
    out.view = e == "volume.list" ? ResponseView::volume_list : ResponseView::image_list;
    return with_query(c, request, *q);
  }
  if (e == "system.events") {
    auto q = tenant_filters(c, request.query, false, RefKind::container);
    if (!q) {
      return refused(q.error());
    }
    out.view = ResponseView::events;
    return with_query(c, request, *q);
  }
  if (e == "container.inspect") {
    out.view = ResponseView::container_inspect;
  } else if (e == "network.inspect") {
    out.view = ResponseView::network_inspect;
  } else if (e == "volume.inspect") {
    out.view = ResponseView::volume_inspect;
  } else if (e == "image.inspect") {
    out.view = ResponseView::image_inspect;
  } else if (e == "image.history") {
    out.view = ResponseView::image_history;
  } else if (e == "exec.inspect") {
    out.view = ResponseView::exec_inspect;
  } else if (e == "container.stats") {
    out.view = ResponseView::stats_stream;
  } else if (e == "system.info") {
    out.view = ResponseView::info;
  } else if (e == "system.df") {
    out.view = ResponseView::system_df;
  } else if (e == "build.run") {
    return build(c, request);
  } else if (e == "image.delete") {
    return image_delete(c, request, request.refs.empty() ? request.params.front()
                                                         : request.refs.front());
  } else if (e == "image.tag") {
    return image_tag(c, request);
  } else if (e == "image.create") {
    auto q = parse_query(request.query);
    if (!q) {
      return refused(bad("berth: malformed query string", "query.invalid"));
    }
    if (auto from = param(*q, "fromImage"); from && !from->empty()) {
      return image_pull(c, request, *q);
    }
    return image_import(c, request, *q);
  } else if (e == "image.push") {
    return image_push(c, request, body);
  } else if (e == "container.commit") {
    return container_commit(c, request, body);
  } else if (e == "image.save" || e == "image.save_one") {
    return image_save(c, request);
  } else if (e == "image.load") {
    // The archive is judged as it streams (LoadArchiveFilter); dockerd's messages name the
    // images it loaded, in the tenant's names.
    out.filter_load_archive = true;
    out.view = ResponseView::build_stream;
  } else if (e == "container.delete" && !request.refs.empty() &&
             request.refs.front().find('/') != std::string::npos) {
    auto q = parse_query(request.query);
    const auto link = q ? param(*q, "link") : std::nullopt;
    if (!link || *link != "1") {
      return refused(not_found(RefKind::container, request.refs.front()));
    }
  }
  return out;
}

}  // namespace berth::policy
