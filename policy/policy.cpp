#include "policy/policy.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "policy/identity.hpp"
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

void parse_tenants(Checker& c, const YAML::Node& node, std::vector<Tenant>& tenants) {
  if (node.IsNull()) {
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
                 if (!value.IsNull()) {
                   c.each_entry(value, "tenant " + id, {"description"},
                                [&](const std::string&, const YAML::Node&, const YAML::Node& v) {
                                  std::string ignored;
                                  c.string_value(v, "description", ignored);
                                });
                 }
                 tenants.push_back(Tenant{id});
               });
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

}  // namespace

const Tenant* Policy::find_tenant(std::string_view id) const noexcept {
  for (const auto& t : tenants) {
    if (t.id == id) {
      return &t;
    }
  }
  return nullptr;
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
  YAML::Node identities_node;
  bool has_tls = false;
  c.each_entry(root, "the policy",
               {"listen", "upstream", "upstream_tls", "metrics_listen", "tls", "tenants",
                "identities"},
               [&](const std::string& name, const YAML::Node&, const YAML::Node& value) {
                 if (name == "listen") {
                   c.string_value(value, name, policy.listen);
                 } else if (name == "upstream") {
                   if (c.string_value(value, name, policy.upstream) &&
                       !policy.upstream.starts_with("unix://") &&
                       !policy.upstream.starts_with("tcp://") &&
                       !policy.upstream.starts_with("tls://")) {
                     c.error(value, "upstream must be unix:///path, tcp://host:port or "
                                    "tls://host:port");
                   }
                 } else if (name == "upstream_tls") {
                   c.each_entry(value, "upstream_tls", {"ca", "cert", "key", "server_name"},
                                [&](const std::string& field, const YAML::Node&,
                                    const YAML::Node& v) {
                                  auto& u = policy.upstream_tls;
                                  std::string* target = field == "ca"     ? &u.ca
                                                        : field == "cert" ? &u.cert
                                                        : field == "key"  ? &u.key
                                                                          : &u.server_name;
                                  c.string_value(v, "upstream_tls." + field, *target);
                                });
                 } else if (name == "metrics_listen") {
                   c.string_value(value, name, policy.metrics_listen);
                 } else if (name == "tls") {
                   has_tls = true;
                   parse_tls(c, value, policy.tls);
                 } else if (name == "tenants") {
                   tenants_node = value;
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
  // Tenants first, so identity rules can be checked against them wherever they are written.
  if (tenants_node) {
    parse_tenants(c, tenants_node, policy.tenants);
  }
  if (identities_node) {
    parse_identities(c, identities_node, policy.tenants, policy.identities);
  }
  if (!c.ok()) {
    return std::unexpected(c.take());
  }
  return policy;
}

}  // namespace berth::policy
