#pragma once
// What dockerd may contact on a tenant's behalf. dockerd acts on the host's network for
// tenants: a Dockerfile's `ADD <url>` is fetched by dockerd itself, `docker login` makes it
// contact the registry a tenant names, a remote build context is downloaded by it. From the
// host, those requests reach loopback-only services (berth's own metrics listener was read
// this way) and the host's private networks. So every address dockerd may contact for a
// tenant is the operator's decision: the tenant's `egress` section lists the registries and
// URL prefixes it may use, and everything else is refused with the rule's name. Nothing is
// listed by default.
//
// URLs are judged as Go's net/url reads them (dockerd fetches with net/http), and only in
// plain forms: no user info, no percent-encoding in the host, no backslashes, a host that is a
// DNS name or an IP literal. A listed server can still redirect dockerd elsewhere (Go follows
// redirects): list only servers you trust.

#include <optional>
#include <string>
#include <string_view>

#include "policy/decision.hpp"
#include "policy/policy.hpp"

namespace berth::policy {

/// A URL as dockerd's HTTP client reads it.
struct FetchUrl {
  std::string scheme;  ///< "http" or "https"
  std::string host;    ///< lowercase DNS name, IPv4 or bracketless IPv6
  std::string port;    ///< explicit or the scheme's default
  std::string path;    ///< starts with '/' (empty path reads as "/")
};

/// nullopt when `url` is not a plain http(s) URL berth can judge.
[[nodiscard]] std::optional<FetchUrl> parse_fetch_url(std::string_view url);

/// Refusal when dockerd may not fetch `url` for the tenant (ADD <url>), else nullopt.
[[nodiscard]] std::optional<Decision> judge_fetch_url(const Tenant& rules, std::string_view url);

/// The registry a `docker login` server address (or an image reference's domain) names, as
/// "host" or "host:port" in lowercase; Docker Hub's aliases are "docker.io". Empty when the
/// address is malformed.
[[nodiscard]] std::string registry_host(std::string_view server_address);

/// Refusal when dockerd may not contact `registry` (a server address or registry host) for
/// the tenant, else nullopt.
[[nodiscard]] std::optional<Decision> judge_registry(const Tenant& rules,
                                                     std::string_view registry);

/// Checks one policy entry: "" when valid, else the reason.
[[nodiscard]] std::string check_url_prefix(std::string_view entry);
[[nodiscard]] std::string check_registry_entry(std::string_view entry);

}  // namespace berth::policy
