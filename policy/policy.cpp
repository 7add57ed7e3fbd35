#include "policy/policy.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <set>

#include "policy/egress.hpp"
#include "policy/identity.hpp"
#include "policy/names.hpp"
#include "policy/units.hpp"
#include "policy/vocabulary.hpp"

namespace berth::policy {

namespace {

// Collects diagnostics while walking the document. yaml-cpp counts lines and columns from 0;
// operators read them from 1.
class Checker {
 public:
  explicit Checker(std::string_view source) : source_(source) {}

  void error(const YAML::Node& at, std::string message) {
    const auto mark = at.Mark();
    add(mark.is_null() ? 0 : mark.line + 1, mark.is_null() ? 0 : mark.column + 1,
        std::move(message));
  }

  void add(int line, int column, std::string message) {
    diagnostics_.push_back(Diagnostic{std::string(source_), line, column, std::move(message)});
  }

  [[nodiscard]] bool ok() const noexcept { return diagnostics_.empty(); }
  Diagnostics take() { return std::move(diagnostics_); }

  // Calls `visit(key, value)` for every entry of a mapping after refusing duplicate keys and
  // keys not in `allowed` (empty: any key). yaml-cpp would silently keep the first duplicate.
  template <typename Visit>
  void each_entry(const YAML::Node& map, std::string_view what,
                  std::initializer_list<std::string_view> allowed, Visit&& visit) {
    if (!map.IsMap()) {
      error(map, std::string(what) + " must be a mapping");
      return;
    }
    std::set<std::string> seen;
    for (const auto& entry : map) {
      const YAML::Node& key = entry.first;
      if (!key.IsScalar()) {
        error(key, std::string("keys of ") + std::string(what) + " must be plain names");
        continue;
      }
      const std::string name = key.Scalar();
      if (!seen.insert(name).second) {
        error(key, "duplicate key '" + name + "' in " + std::string(what));
        continue;
      }
      if (allowed.size() != 0 &&
          std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
        std::string expected;
        for (auto a : allowed) {
          expected += expected.empty() ? "" : ", ";
          expected += a;
        }
        error(key, "unknown key '" + name + "' in " + std::string(what) + " (expected one of: " +
                       expected + ")");
        continue;
      }
      visit(name, key, entry.second);
    }
  }

  bool string_value(const YAML::Node& node, std::string_view what, std::string& out) {
    if (!node.IsScalar()) {
      error(node, std::string(what) + " must be a string");
      return false;
    }
    out = node.Scalar();
    return true;
  }

  void size_value(const YAML::Node& node, std::string_view what,
                  std::optional<std::int64_t>& out) {
    positive_quantity(node, what, "a size such as 512MiB or 2GiB", units::parse_size, out);
  }

  void cpus_value(const YAML::Node& node, std::string_view what,
                  std::optional<std::int64_t>& out) {
    positive_quantity(node, what, "a number of CPUs such as 2 or 1.5", units::parse_cpus, out);
  }

  // A scalar that `parse` reads as a quantity above 0, else an error naming `what`.
  void positive_quantity(const YAML::Node& node, std::string_view what, std::string_view expected,
                         std::expected<std::int64_t, std::string> (*parse)(std::string_view),
                         std::optional<std::int64_t>& out) {
    if (!node.IsScalar()) {
      error(node, std::string(what) + ": expected " + std::string(expected));
      return;
    }
    auto value = parse(node.Scalar());
    if (!value) {
      error(node, std::string(what) + ": " + value.error());
    } else if (*value <= 0) {
      error(node, std::string(what) + " must be more than 0");
    } else {
      out = *value;
    }
  }

  // A whole number in [min, max].
  void count_value(const YAML::Node& node, std::string_view what, std::optional<std::int64_t>& out,
                   std::int64_t min = 0, std::int64_t max = std::numeric_limits<std::int64_t>::max()) {
    const std::string text = node.IsScalar() ? node.Scalar() : std::string();
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (!node.IsScalar() || text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      error(node, std::string(what) + ": expected a whole number");
    } else if (value < min || value > max) {
      error(node, std::string(what) + " must be between " + std::to_string(min) + " and " +
                      std::to_string(max));
    } else {
      out = value;
    }
  }

  void bool_value(const YAML::Node& node, std::string_view what, std::optional<bool>& out) {
    const std::string text = node.IsScalar() ? node.Scalar() : std::string();
    if (text == "true") {
      out = true;
    } else if (text == "false") {
      out = false;
    } else {
      error(node, std::string(what) + ": expected true or false");
    }
  }

  // A list of strings; `check` may refuse an item (returns the reason) or normalize it.
  template <typename Check>
  std::vector<std::string> string_list(const YAML::Node& node, std::string_view what,
                                       Check&& check) {
    std::vector<std::string> out;
    if (!node.IsSequence()) {
      error(node, std::string(what) + " must be a list");
      return out;
    }
    for (const auto& item : node) {
      std::string text;
      if (!string_value(item, what, text)) {
        continue;
      }
      if (std::string reason = check(text); !reason.empty()) {
        error(item, std::string(what) + ": " + reason);
        continue;
      }
      out.push_back(std::move(text));
    }
    return out;
  }

 private:
  std::string_view source_;
  Diagnostics diagnostics_;
};

void parse_tls(Checker& c, const YAML::Node& node, TlsFiles& tls) {
  c.each_entry(node, "tls", {"cert", "key", "client_ca", "crl"},
               [&](const std::string& name, const YAML::Node&, const YAML::Node& value) {
                 std::string* target = name == "cert"        ? &tls.cert
                                       : name == "key"       ? &tls.key
                                       : name == "client_ca" ? &tls.client_ca
                                                             : &tls.crl;
                 c.string_value(value, "tls." + name, *target);
               });
  if (node.IsMap()) {
    for (auto [field, name] : {std::pair{&tls.cert, "cert"}, std::pair{&tls.key, "key"},
                               std::pair{&tls.client_ca, "client_ca"}}) {
      if (field->empty()) {
        c.error(node, std::string("tls.") + name + " is required");
      }
    }
  }
}

constexpr std::string_view known_capabilities[] = {
    "AUDIT_CONTROL", "AUDIT_READ",   "AUDIT_WRITE",  "BLOCK_SUSPEND",   "BPF",
    "CHECKPOINT_RESTORE", "CHOWN",   "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER",
    "FSETID",        "IPC_LOCK",     "IPC_OWNER",    "KILL",            "LEASE",
    "LINUX_IMMUTABLE", "MAC_ADMIN",  "MAC_OVERRIDE", "MKNOD",           "NET_ADMIN",
    "NET_BIND_SERVICE", "NET_BROADCAST", "NET_RAW",  "PERFMON",         "SETFCAP",
    "SETGID",        "SETPCAP",      "SETUID",       "SYS_ADMIN",       "SYS_BOOT",
    "SYS_CHROOT",    "SYS_MODULE",   "SYS_NICE",     "SYS_PACCT",       "SYS_PTRACE",
    "SYS_RAWIO",     "SYS_RESOURCE", "SYS_TIME",     "SYS_TTY_CONFIG",  "SYSLOG",
    "WAKE_ALARM",
};

constexpr std::string_view restart_policy_names[] = {"no", "on-failure", "unless-stopped",
                                                     "always"};

// Host paths no grant may name: each hands the tenant dockerd, the host's devices or kernel
// interfaces, or every other tenant's data.
constexpr std::string_view forbidden_grant_roots[] = {
    "/var/run/docker.sock", "/run/docker.sock", "/var/run/docker", "/run/docker",
    "/var/lib/docker",      "/var/lib/containerd", "/run/containerd", "/proc",
    "/sys",                 "/dev",             "/etc",            "/boot",
    "/root",                "/var/run",         "/run"};

std::string check_grant_path(std::string_view path) {
  if (!path.starts_with('/')) {
    return "'" + std::string(path) + "' must be an absolute path";
  }
  if (path == "/") {
    return "the host's root directory cannot be granted";
  }
  if (path.ends_with('/') || path.find("//") != std::string_view::npos ||
      path.find("/./") != std::string_view::npos || path.find("/../") != std::string_view::npos ||
      path.ends_with("/.") || path.ends_with("/..") || path.find(':') != std::string_view::npos ||
      path.find(',') != std::string_view::npos) {
    return "'" + std::string(path) +
           "' must be a clean absolute path (no trailing '/', '.', '..', ':' or ',')";
  }
  for (auto root : forbidden_grant_roots) {
    if (path == root || (path.starts_with(root) && path[root.size()] == '/') ||
        (root.starts_with(path) && root[path.size()] == '/')) {
      return "'" + std::string(path) + "' would expose " + std::string(root) +
             " (dockerd, devices, kernel interfaces or host configuration) and cannot be granted";
    }
  }
  return {};
}

std::optional<PortRange> parse_port_range(std::string_view text) {
  auto number = [](std::string_view t) -> std::optional<int> {
    int v = 0;
    const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc() || end != t.data() + t.size() || v < 1 || v > 65535) {
      return std::nullopt;
    }
    return v;
  };
  const auto dash = text.find('-');
  auto first = number(text.substr(0, dash));
  auto last = dash == std::string_view::npos ? first : number(text.substr(dash + 1));
  if (!first || !last || *first > *last) {
    return std::nullopt;
  }
  return PortRange{*first, *last};
}

// quota, defaults, limits, images, egress, networks, placement: shared by tenant_defaults and
// each tenant's own section.
void parse_settings(Checker& c, const std::string& name, const YAML::Node& key,
                    const YAML::Node& value, const std::string& where, Tenant& t) {
  (void)key;
  if (name == "quota") {
    c.each_entry(value, where + ".quota",
                 {"containers", "memory", "cpus", "pids_per_container", "published_ports"},
                 [&](const std::string& field, const YAML::Node&, const YAML::Node& v) {
                   const std::string what = where + ".quota." + field;
                   if (field == "containers") {
                     c.count_value(v, what, t.quota.containers);
                   } else if (field == "memory") {
                     c.size_value(v, what, t.quota.memory);
                   } else if (field == "cpus") {
                     c.cpus_value(v, what, t.quota.nano_cpus);
                   } else if (field == "pids_per_container") {
                     c.count_value(v, what, t.quota.pids_per_container, 1);
                   } else {
                     c.count_value(v, what, t.quota.published_ports);
                   }
                 });
  } else if (name == "defaults") {
    c.each_entry(value, where + ".defaults",
                 {"memory", "cpus", "pids_limit", "log_max_size", "log_max_file"},
                 [&](const std::string& field, const YAML::Node&, const YAML::Node& v) {
                   const std::string what = where + ".defaults." + field;
                   auto& d = t.defaults;
                   if (field == "memory") {
                     c.size_value(v, what, d.memory);
                   } else if (field == "cpus") {
                     c.cpus_value(v, what, d.nano_cpus);
                   } else if (field == "pids_limit") {
                     c.count_value(v, what, d.pids_limit, 1);
                   } else if (field == "log_max_size") {
                     c.size_value(v, what, d.log_max_size);
                   } else {
                     c.count_value(v, what, d.log_max_file, 1, 1000);
                   }
                 });
  } else if (name == "limits") {
    c.each_entry(value, where + ".limits",
                 {"memory", "cpus", "log_max_size", "log_max_file", "restart_retries",
                  "restart_policies", "clamp"},
                 [&](const std::string& field, const YAML::Node&, const YAML::Node& v) {
                   const std::string what = where + ".limits." + field;
                   auto& l = t.limits;
                   if (field == "memory") {
                     c.size_value(v, what, l.memory);
                   } else if (field == "cpus") {
                     c.cpus_value(v, what, l.nano_cpus);
                   } else if (field == "log_max_size") {
                     c.size_value(v, what, l.log_max_size);
                   } else if (field == "log_max_file") {
                     c.count_value(v, what, l.log_max_file, 1, 1000);
                   } else if (field == "restart_retries") {
                     c.count_value(v, what, l.restart_retries, 0);
                   } else if (field == "restart_policies") {
                     l.restart_policies = c.string_list(v, what, [](std::string& p) {
                       for (auto known : restart_policy_names) {
                         if (p == known) {
                           return std::string();
                         }
                       }
                       return "'" + p + "' is not one of no, on-failure, unless-stopped, always";
                     });
                   } else {
                     c.bool_value(v, what, l.clamp);
                   }
                 });
  } else if (name == "placement") {
    std::vector<Expression> pins;
    (void)c.string_list(value, where + ".placement", [&](std::string& text) {
      auto pin = parse_expression(text, Expression::Kind::constraint, Author::operator_);
      if (!pin) {
        return pin.error();
      }
      pins.push_back(std::move(*pin));
      return std::string();
    });
    t.placement = std::move(pins);
  } else if (name == "images") {
    t.images = c.string_list(value, where + ".images", [](std::string& p) {
      if (p.empty() || p.find_first_of(" \t@") != std::string::npos) {
        return "'" + p + "' is not an image reference pattern (repo[:tag], '*' as wildcard)";
      }
      return std::string();
    });
  } else if (name == "egress") {
    c.each_entry(value, where + ".egress", {"registries", "urls"},
                 [&](const std::string& field, const YAML::Node&, const YAML::Node& v) {
                   const std::string what = where + ".egress." + field;
                   if (field == "registries") {
                     t.egress.registries = c.string_list(v, what, [](std::string& entry) {
                       return check_registry_entry(entry);
                     });
                   } else {
                     t.egress.urls = c.string_list(v, what, [](std::string& entry) {
                       return check_url_prefix(entry);
                     });
                   }
                 });
  } else if (name == "networks") {
    c.each_entry(value, where + ".networks", {"pools", "ipv4_size", "ipv6_size"},
                 [&](const std::string& field, const YAML::Node&, const YAML::Node& v) {
                   const std::string what = where + ".networks." + field;
                   auto& n = t.networks;
                   if (field == "ipv4_size") {
                     c.count_value(v, what, n.ipv4_size, 8, 30);
                   } else if (field == "ipv6_size") {
                     c.count_value(v, what, n.ipv6_size, 48, 120);
                   } else {
                     std::vector<Cidr> pools;
                     c.string_list(v, what, [&](std::string& text) {
                       auto cidr = parse_cidr(text);
                       if (!cidr) {
                         return "'" + text + "' is not a network prefix such as 10.64.0.0/12 or "
                                "fd00:b::/48 (host bits zero)";
                       }
                       pools.push_back(*cidr);
                       return std::string();
                     });
                     n.pools = std::move(pools);
                   }
                 });
  }
}

void parse_grants(Checker& c, const YAML::Node& node, const std::string& where, Grants& g) {
  c.each_entry(node, where + ".grants", {"bind_mounts", "capabilities", "host_ports"},
               [&](const std::string& field, const YAML::Node&, const YAML::Node& v) {
                 const std::string what = where + ".grants." + field;
                 if (field == "capabilities") {
                   g.capabilities = c.string_list(v, what, [](std::string& cap) {
                     std::string normal = normalize_capability(cap);
                     if (normal.empty()) {
                       return "'" + cap + "' is not a Linux capability (ALL cannot be granted)";
                     }
                     cap = std::move(normal);
                     return std::string();
                   });
                 } else if (field == "host_ports") {
                   if (!v.IsSequence()) {
                     c.error(v, what + " must be a list of ports or ranges such as 8000-8099");
                     return;
                   }
                   for (const auto& item : v) {
                     auto range = item.IsScalar() ? parse_port_range(item.Scalar()) : std::nullopt;
                     if (!range) {
                       c.error(item, what + ": expected a port (1-65535) or a range such as "
                                            "8000-8099");
                       continue;
                     }
                     g.host_ports.push_back(*range);
                   }
                 } else {
                   if (!v.IsSequence()) {
                     c.error(v, what + " must be a list of {path, mode}");
                     return;
                   }
                   for (const auto& item : v) {
                     BindGrant grant;
                     bool has_path = false;
                     c.each_entry(item, what + " entry", {"path", "mode"},
                                  [&](const std::string& k, const YAML::Node&,
                                      const YAML::Node& val) {
                                    std::string text;
                                    if (!c.string_value(val, what + "." + k, text)) {
                                      return;
                                    }
                                    if (k == "path") {
                                      has_path = true;
                                      if (auto reason = check_grant_path(text); !reason.empty()) {
                                        c.error(val, what + ": " + reason);
                                      }
                                      grant.path = text;
                                    } else if (text == "ro" || text == "rw") {
                                      grant.read_write = text == "rw";
                                    } else {
                                      c.error(val, what + ".mode must be ro or rw");
                                    }
                                  });
                     if (item.IsMap() && !has_path) {
                       c.error(item, what + " entry needs a path");
                     }
                     g.bind_mounts.push_back(std::move(grant));
                   }
                 }
               });
}

template <typename T>
void inherit(std::optional<T>& own, const std::optional<T>& base) {
  if (!own) {
    own = base;
  }
}

void inherit(Tenant& t, const Tenant& base) {
  inherit(t.quota.containers, base.quota.containers);
  inherit(t.quota.memory, base.quota.memory);
  inherit(t.quota.nano_cpus, base.quota.nano_cpus);
  inherit(t.quota.pids_per_container, base.quota.pids_per_container);
  inherit(t.quota.published_ports, base.quota.published_ports);
  inherit(t.defaults.memory, base.defaults.memory);
  inherit(t.defaults.nano_cpus, base.defaults.nano_cpus);
  inherit(t.defaults.pids_limit, base.defaults.pids_limit);
  inherit(t.defaults.log_max_size, base.defaults.log_max_size);
  inherit(t.defaults.log_max_file, base.defaults.log_max_file);
  inherit(t.limits.memory, base.limits.memory);
  inherit(t.limits.nano_cpus, base.limits.nano_cpus);
  inherit(t.limits.log_max_size, base.limits.log_max_size);
  inherit(t.limits.log_max_file, base.limits.log_max_file);
  inherit(t.limits.restart_retries, base.limits.restart_retries);
  inherit(t.limits.restart_policies, base.limits.restart_policies);
  inherit(t.limits.clamp, base.limits.clamp);
  inherit(t.images, base.images);
  inherit(t.placement, base.placement);
  inherit(t.egress.registries, base.egress.registries);
  inherit(t.egress.urls, base.egress.urls);
  inherit(t.networks.pools, base.networks.pools);
  inherit(t.networks.ipv4_size, base.networks.ipv4_size);
  inherit(t.networks.ipv6_size, base.networks.ipv6_size);
}

// A default no container could be created with is an operator's mistake, not a tenant's.
void check_consistent(Checker& c, const Tenant& t) {
  using units::format_cpus;
  using units::format_size;
  auto at_most = [&](const std::optional<std::int64_t>& value, const std::optional<std::int64_t>& max,
                     std::string_view what, std::string_view max_what, auto format) {
    if (value && max && *value > *max) {
      c.add(t.line, 0,
            "tenant " + t.id + ": " + std::string(what) + " " + format(*value) + " is above " +
                std::string(max_what) + " " + format(*max));
    }
  };
  auto count = [](std::int64_t v) { return std::to_string(v); };
  at_most(t.defaults.memory, t.limits.memory, "defaults.memory", "limits.memory", format_size);
  at_most(t.defaults.memory, t.quota.memory, "defaults.memory", "quota.memory", format_size);
  at_most(t.defaults.nano_cpus, t.limits.nano_cpus, "defaults.cpus", "limits.cpus", format_cpus);
  at_most(t.defaults.nano_cpus, t.quota.nano_cpus, "defaults.cpus", "quota.cpus", format_cpus);
  at_most(t.defaults.pids_limit, t.quota.pids_per_container, "defaults.pids_limit",
          "quota.pids_per_container", count);
  at_most(t.defaults.log_max_size, t.limits.log_max_size, "defaults.log_max_size",
          "limits.log_max_size", format_size);
  at_most(t.defaults.log_max_file, t.limits.log_max_file, "defaults.log_max_file",
          "limits.log_max_file", count);
  // json-file refuses max-file without max-size.
  if (t.defaults.log_max_file && *t.defaults.log_max_file > 1 && !t.defaults.log_max_size) {
    c.add(t.line, 0, "tenant " + t.id + ": defaults.log_max_file needs defaults.log_max_size "
                     "(dockerd's json-file rotates by size)");
  }
  // dockerd refuses a memory limit under 6MiB.
  constexpr std::int64_t min_memory = 6 * 1024 * 1024;
  for (auto [value, what] : {std::pair{t.defaults.memory, "defaults.memory"},
                             std::pair{t.limits.memory, "limits.memory"}}) {
    if (value && *value < min_memory) {
      c.add(t.line, 0, "tenant " + t.id + ": " + what + " " + format_size(*value) +
                           " is below dockerd's minimum of 6MiB");
    }
  }
}

void parse_tenants(Checker& c, const YAML::Node& node, const YAML::Node& defaults_node,
                   std::vector<Tenant>& tenants) {
  Tenant base;
  if (defaults_node && !defaults_node.IsNull()) {
    c.each_entry(defaults_node, "tenant_defaults",
                 {"quota", "defaults", "limits", "images", "egress", "networks", "placement"},
                 [&](const std::string& name, const YAML::Node& key, const YAML::Node& value) {
                   parse_settings(c, name, key, value, "tenant_defaults", base);
                 });
  }
  if (!node || node.IsNull()) {
    return;
  }
  c.each_entry(node, "tenants", {},
               [&](const std::string& id, const YAML::Node& key, const YAML::Node& value) {
                 if (!vocabulary::is_valid_tenant_id(id)) {
                   c.error(key, "tenant id '" + id +
                                    "' must be 1 to 63 of a-z, 0-9 and '-', not starting or "
                                    "ending with '-'");
                   return;
                 }
                 Tenant t;
                 t.id = id;
                 t.line = key.Mark().line + 1;
                 const std::string where = "tenants." + id;
                 if (!value.IsNull()) {
                   c.each_entry(value, "tenant " + id,
                                {"description", "quota", "defaults", "limits", "images", "egress",
                                 "networks", "grants", "placement"},
                                [&](const std::string& name, const YAML::Node& k,
                                    const YAML::Node& v) {
                                  if (name == "description") {
                                    c.string_value(v, "description", t.description);
                                  } else if (name == "grants") {
                                    parse_grants(c, v, where, t.grants);
                                  } else {
                                    parse_settings(c, name, k, v, where, t);
                                  }
                                });
                 }
                 inherit(t, base);
                 check_consistent(c, t);
                 tenants.push_back(std::move(t));
               });
  // Two tenants publishing on the same host port would take it from each other.
  for (std::size_t i = 0; i < tenants.size(); ++i) {
    for (std::size_t j = i + 1; j < tenants.size(); ++j) {
      for (const auto& a : tenants[i].grants.host_ports) {
        for (const auto& b : tenants[j].grants.host_ports) {
          if (a.first <= b.last && b.first <= a.last) {
            c.add(tenants[j].line, 0,
                  "tenant " + tenants[j].id + ": grants.host_ports " + std::to_string(b.first) +
                      "-" + std::to_string(b.last) + " overlaps tenant " + tenants[i].id + "'s " +
                      std::to_string(a.first) + "-" + std::to_string(a.last));
          }
        }
      }
    }
  }
}

void parse_identities(Checker& c, const YAML::Node& node, const std::vector<Tenant>& tenants,
                      std::vector<IdentityRule>& rules) {
  if (node.IsNull()) {
    return;
  }
  if (!node.IsSequence()) {
    c.error(node, "identities must be a list of rules");
    return;
  }
  for (const auto& item : node) {
    IdentityRule rule;
    rule.line = item.Mark().line + 1;
    std::string role = "tenant";
    bool has_role = false;
    bool has_tenant = false;
    c.each_entry(
        item, "an identity rule", {"common_name", "organization", "serial", "tenant", "role"},
        [&](const std::string& name, const YAML::Node&, const YAML::Node& value) {
          std::string text;
          if (!c.string_value(value, name, text)) {
            return;
          }
          if (name == "common_name") {
            rule.common_name = text;
          } else if (name == "organization") {
            rule.organization = text;
          } else if (name == "serial") {
            rule.serial = normalize_serial(text);
            if (rule.serial->empty()) {
              c.error(value, "serial '" + text + "' is not a hexadecimal certificate serial");
            }
          } else if (name == "tenant") {
            rule.tenant = text;
            has_tenant = true;
          } else {
            role = text;
            has_role = true;
          }
        });
    if (!item.IsMap()) {
      continue;
    }
    if (!rule.common_name && !rule.organization && !rule.serial) {
      c.error(item,
              "an identity rule must match on at least one of common_name, organization, serial");
    }
    if (role == "operator") {
      rule.role = Role::operator_;
      if (has_tenant) {
        c.error(item, "an operator rule must not name a tenant");
      }
    } else if (role == "tenant") {
      rule.role = Role::tenant;
      if (!has_tenant) {
        c.error(item, "a tenant rule must name its tenant (or say role: operator)");
      } else if (std::none_of(tenants.begin(), tenants.end(),
                              [&](const Tenant& t) { return t.id == rule.tenant; })) {
        c.error(item["tenant"], "tenant '" + rule.tenant + "' is not declared under tenants");
      }
    } else if (has_role) {
      c.error(item["role"], "role must be 'tenant' or 'operator', not '" + role + "'");
    }
    rules.push_back(std::move(rule));
  }
}

bool is_upstream_url(std::string_view url) {
  return url.starts_with("unix://") || url.starts_with("tcp://") || url.starts_with("tls://");
}

void parse_upstream_tls(Checker& c, const YAML::Node& node, std::string_view where,
                        UpstreamTls& u) {
  c.each_entry(node, where, {"ca", "cert", "key", "server_name"},
               [&](const std::string& field, const YAML::Node&, const YAML::Node& v) {
                 std::string* target = field == "ca"     ? &u.ca
                                       : field == "cert" ? &u.cert
                                       : field == "key"  ? &u.key
                                                         : &u.server_name;
                 c.string_value(v, std::string(where) + "." + field, *target);
               });
}

// A host name as the operator writes it in constraints (node==h1) and berthctl: letters,
// digits, '-', '_' and '.', starting with a letter or digit, at most 63 characters.
bool valid_host_name(std::string_view name) {
  if (name.empty() || name.size() > 63 || !std::isalnum(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
  });
}

// A host's berth-node: `node: {url: tls://host:port, ca: ..., cert: ..., key: ...}`.
void parse_node(Checker& c, const YAML::Node& node, FleetHost& h) {
  c.each_entry(node, "hosts.node", {"url", "ca", "cert", "key", "server_name"},
               [&](const std::string& field, const YAML::Node&, const YAML::Node& v) {
                 std::string* target = field == "url"    ? &h.node
                                       : field == "ca"   ? &h.node_tls.ca
                                       : field == "cert" ? &h.node_tls.cert
                                       : field == "key"  ? &h.node_tls.key
                                                         : &h.node_tls.server_name;
                 if (c.string_value(v, "hosts.node." + field, *target) && field == "url" &&
                     (!h.node.starts_with("tls://") || h.node.size() <= 6)) {
                   c.error(v, "hosts.node.url must be tls://host:port (berth-node)");
                 }
               });
  if (node.IsMap() && (h.node.empty() || h.node_tls.ca.empty() || h.node_tls.cert.empty() ||
                       h.node_tls.key.empty())) {
    c.error(node, "hosts.node needs a url, and the ca, cert and key berth reaches it with");
  }
}

void parse_host(Checker& c, const YAML::Node& node, FleetHost& h) {
  c.each_entry(node, "a host", {"name", "url", "tls", "labels", "capacity", "cordoned", "meter",
                                      "node"},
               [&](const std::string& key, const YAML::Node&, const YAML::Node& value) {
                 if (key == "name") {
                   if (c.string_value(value, "hosts.name", h.name) && !valid_host_name(h.name)) {
                     c.error(value, "hosts.name '" + h.name +
                                        "': letters, digits, '-', '_' and '.', at most 63");
                   }
                 } else if (key == "url") {
                   if (c.string_value(value, "hosts.url", h.url) && !is_upstream_url(h.url)) {
                     c.error(value, "hosts.url must be unix:///path, tcp://host:port or "
                                    "tls://host:port");
                   }
                 } else if (key == "tls") {
                   parse_upstream_tls(c, value, "hosts.tls", h.tls);
                 } else if (key == "meter") {
                   if (c.string_value(value, "hosts.meter", h.meter) &&
                       (!h.meter.starts_with("http://") || h.meter.size() <= 7)) {
                     c.error(value, "hosts.meter must be http://host:port/metrics (berth-meter)");
                   }
                 } else if (key == "node") {
                   parse_node(c, value, h);
                 } else if (key == "labels") {
                   c.each_entry(value, "hosts.labels", {},
                                [&](const std::string& label, const YAML::Node&,
                                    const YAML::Node& v) {
                                  std::string text;
                                  if (c.string_value(v, "hosts.labels." + label, text)) {
                                    std::string lower = label;
                                    std::transform(lower.begin(), lower.end(), lower.begin(),
                                                   [](unsigned char ch) { return std::tolower(ch); });
                                    h.labels.emplace_back(std::move(lower), std::move(text));
                                  }
                                });
                 } else if (key == "capacity") {
                   c.each_entry(value, "hosts.capacity", {"cpus", "memory"},
                                [&](const std::string& what, const YAML::Node&,
                                    const YAML::Node& v) {
                                  if (what == "cpus") {
                                    c.cpus_value(v, "hosts.capacity.cpus", h.nano_cpus);
                                  } else {
                                    c.size_value(v, "hosts.capacity.memory", h.memory);
                                  }
                                });
                 } else {
                   std::optional<bool> cordoned;
                   c.bool_value(value, "hosts.cordoned", cordoned);
                   h.cordoned = cordoned.value_or(false);
                 }
               });
  if (!node.IsMap()) {
    return;
  }
  if (h.name.empty() || h.url.empty()) {
    c.error(node, "a host needs a name and a url");
  }
  if (h.url.starts_with("tls://") && h.tls.ca.empty()) {
    c.error(node, "host '" + h.name + "': a tls:// url needs tls.ca (and cert and key)");
  }
}

void parse_hosts(Checker& c, const YAML::Node& node, std::vector<FleetHost>& hosts) {
  if (!node.IsSequence() || node.size() == 0) {
    c.error(node, "hosts must be a list of at least one host");
    return;
  }
  for (const auto& item : node) {
    FleetHost h;
    parse_host(c, item, h);
    const bool duplicate = std::any_of(hosts.begin(), hosts.end(), [&](const FleetHost& other) {
      return other.name == h.name || other.url == h.url;
    });
    if (duplicate && !h.name.empty()) {
      c.error(item, "host '" + h.name + "': its name or url is listed twice");
    }
    hosts.push_back(std::move(h));
  }
}

// An overcommit factor: a number from 1 (never reserve beyond capacity) to 20.
void overcommit_value(Checker& c, const YAML::Node& node, std::string_view what, double& out) {
  const std::string text = node.IsScalar() ? node.Scalar() : std::string();
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !(value >= 1.0) ||
      value > 20.0) {
    c.error(node, std::string(what) + ": expected a number from 1 to 20");
    return;
  }
  out = value;
}

void parse_placement(Checker& c, const YAML::Node& node, PlacementSettings& p) {
  c.each_entry(node, "placement", {"cpu_overcommit", "memory_overcommit"},
               [&](const std::string& key, const YAML::Node&, const YAML::Node& value) {
                 overcommit_value(c, value, "placement." + key,
                                  key == "cpu_overcommit" ? p.cpu_overcommit
                                                          : p.memory_overcommit);
               });
}

}  // namespace


const Tenant* Policy::find_tenant(std::string_view id) const noexcept {
  for (const auto& t : tenants) {
    if (t.id == id) {
      return &t;
    }
  }
  return nullptr;
}

bool star_match(std::string_view pattern, std::string_view text) {
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star = std::string_view::npos;
  std::size_t resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}

bool image_pattern_matches(std::string_view pattern, std::string_view ref) {
  if (star_match(pattern, ref)) {
    return true;
  }
  // A pattern without a tag allows every tag of the repository.
  if (!names::has_tag_separator(pattern)) {
    const auto ref_slash = ref.rfind('/');
    const auto colon = ref.find(':', ref_slash == std::string_view::npos ? 0 : ref_slash);
    if (colon != std::string_view::npos && star_match(pattern, ref.substr(0, colon))) {
      return true;
    }
  }
  return false;
}

std::string normalize_capability(std::string_view name) {
  std::string upper;
  for (char ch : name) {
    upper += static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 'a' + 'A' : ch);
  }
  std::string_view bare = upper;
  if (bare.starts_with("CAP_")) {
    bare.remove_prefix(4);
  }
  for (auto known : known_capabilities) {
    if (bare == known) {
      return "CAP_" + std::string(known);
    }
  }
  return {};
}

std::expected<Policy, Diagnostics> parse_policy(std::string_view yaml_text,
                                                std::string_view source) {
  Checker c(source);
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    c.add(e.mark.is_null() ? 0 : e.mark.line + 1, e.mark.is_null() ? 0 : e.mark.column + 1,
          e.msg);
    return std::unexpected(c.take());
  }
  Policy policy;
  if (!root.IsMap()) {
    c.add(1, 1, "the policy must be a mapping with keys listen, upstream, tls, tenants, identities");
    return std::unexpected(c.take());
  }
  YAML::Node tenants_node;
  YAML::Node tenant_defaults_node;
  YAML::Node identities_node;
  YAML::Node hosts_node;
  bool has_upstream = false;
  bool has_hosts = false;
  bool has_tls = false;
  c.each_entry(root, "the policy",
               {"listen", "upstream", "upstream_tls", "metrics_listen", "tls", "tenant_defaults",
                "tenants", "identities", "hosts", "placement"},
               [&](const std::string& name, const YAML::Node&, const YAML::Node& value) {
                 if (name == "listen") {
                   c.string_value(value, name, policy.listen);
                 } else if (name == "upstream") {
                   has_upstream = true;
                   if (c.string_value(value, name, policy.upstream) &&
                       !is_upstream_url(policy.upstream)) {
                     c.error(value, "upstream must be unix:///path, tcp://host:port or "
                                    "tls://host:port");
                   }
                 } else if (name == "upstream_tls") {
                   parse_upstream_tls(c, value, "upstream_tls", policy.upstream_tls);
                 } else if (name == "hosts") {
                   hosts_node = value;
                   has_hosts = true;
                   parse_hosts(c, value, policy.hosts);
                 } else if (name == "placement") {
                   parse_placement(c, value, policy.placement);
                 } else if (name == "metrics_listen") {
                   c.string_value(value, name, policy.metrics_listen);
                 } else if (name == "tls") {
                   has_tls = true;
                   parse_tls(c, value, policy.tls);
                 } else if (name == "tenants") {
                   tenants_node = value;
                 } else if (name == "tenant_defaults") {
                   tenant_defaults_node = value;
                 } else {
                   identities_node = value;
                 }
               });
  if (!has_tls) {
    c.add(1, 1, "tls is required (cert, key, client_ca)");
  }
  if (policy.upstream.starts_with("tls://") && policy.upstream_tls.ca.empty()) {
    c.add(1, 1, "a tls:// upstream needs upstream_tls.ca (and cert and key for --tlsverify)");
  }
  if (has_upstream && has_hosts) {
    c.error(hosts_node, "hosts and upstream exclude each other: list the upstream as a host");
  }
  if (!has_hosts) {
    policy.hosts.push_back(FleetHost{"local", policy.upstream, policy.upstream_tls, {}, {}, {},
                                     false, {}, {}, {}});
  }
  // Tenants first, so identity rules can be checked against them wherever they are written.
  parse_tenants(c, tenants_node, tenant_defaults_node, policy.tenants);
  if (identities_node) {
    parse_identities(c, identities_node, policy.tenants, policy.identities);
  }
  if (!c.ok()) {
    return std::unexpected(c.take());
  }
  return policy;
}

}  // namespace berth::policy
