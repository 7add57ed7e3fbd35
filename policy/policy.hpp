#pragma once
// The operator's policy file: where berth listens, which dockerd it fronts, which TLS files it
// uses, and which certificate identities are tenants or operators. Parsing refuses unknown
// keys, duplicate keys and malformed values with 1-based line/column diagnostics, so a typo
// can never silently widen access.

#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/diagnostic.hpp"

namespace berth::policy {

enum class Role { tenant, operator_ };

/// One identity rule. A rule matches a certificate when every field it sets matches exactly.
/// At least one of common_name, organization or serial is set.
struct IdentityRule {
  std::optional<std::string> common_name;
  std::optional<std::string> organization;
  std::optional<std::string> serial;  ///< lowercase hex without leading zeros or separators
  Role role = Role::tenant;
  std::string tenant;  ///< set when role == tenant
  int line = 0;        ///< where the rule is written, for audit
};

struct Tenant {
  std::string id;
};

struct TlsFiles {
  std::string cert;       ///< server certificate chain (PEM)
  std::string key;        ///< server private key (PEM)
  std::string client_ca;  ///< CA bundle that client certificates must chain to
  std::string crl;        ///< optional CRL file (PEM); empty: none
};

/// Client-side TLS toward a dockerd listening on tls://host:port (dockerd --tlsverify).
struct UpstreamTls {
  std::string ca;    ///< CA that signed dockerd's server certificate
  std::string cert;  ///< berth's client certificate for dockerd
  std::string key;
  std::string server_name;  ///< name to verify in dockerd's certificate; default: the host
};

struct Policy {
  std::string listen = "0.0.0.0:2376";
  std::string upstream = "unix:///var/run/docker.sock";
  UpstreamTls upstream_tls;
  std::string metrics_listen;  ///< empty: no metrics listener
  TlsFiles tls;
  std::vector<IdentityRule> identities;  ///< first matching rule wins
  std::vector<Tenant> tenants;

  [[nodiscard]] const Tenant* find_tenant(std::string_view id) const noexcept;
};

/// Parses and validates a policy document. `source` names the file in diagnostics.
/// File paths inside are returned as written; the caller resolves relative ones.
[[nodiscard]] std::expected<Policy, Diagnostics> parse_policy(std::string_view yaml_text,
                                                              std::string_view source);

}  // namespace berth::policy
