#include "policy/egress.hpp"

#include <algorithm>

#include "policy/address.hpp"

namespace berth::policy {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  });
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && s.size() <= 5 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A DNS name of letters, digits, '-' and '.', or an IP literal: what net/http dials without
// interpretation (no percent-encoding, no IDNA, no zone).
bool plain_host(std::string_view host, bool bracketed) {
  if (bracketed) {
    const auto ip = parse_ip(host);
    return ip && ip->v6;
  }
  if (host.empty() || host.size() > 253) {
    return false;
  }
  return std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

// "host", "host:port", "[v6]" or "[v6]:port" into host and port; false when malformed.
bool split_authority(std::string_view authority, std::string& host, std::string& port) {
  if (authority.starts_with('[')) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return false;
    }
    host = std::string(authority.substr(1, close - 1));
    const std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (!rest.starts_with(':') || !all_digits(rest.substr(1))) {
        return false;
      }
      port = std::string(rest.substr(1));
    }
    return plain_host(host, true);
  }
  const std::size_t colon = authority.rfind(':');
  host = lower(authority.substr(0, colon));
  if (colon != std::string_view::npos) {
    if (!all_digits(authority.substr(colon + 1))) {
      return false;
    }
    port = std::string(authority.substr(colon + 1));
  }
  return plain_host(host, false);
}

bool path_under(std::string_view path, std::string_view prefix) {
  if (!path.starts_with(prefix)) {
    return false;
  }
  return prefix.ends_with('/') || path.size() == prefix.size() || path[prefix.size()] == '/' ||
         path[prefix.size()] == '?';
}

Decision egress_refusal(const Tenant& rules, std::string what, std::string rule) {
  return Decision::deny(403,
                        "berth: " + what + " is not among the addresses tenant " + rules.id +
                            " may make the Docker daemon contact (policy: egress)",
                        std::move(rule));
}

}  // namespace

std::optional<FetchUrl> parse_fetch_url(std::string_view url) {
  FetchUrl out;
  // dockerd calls a source a URL only with these exact lowercase prefixes (urlutil.IsURL).
  std::string_view rest;
  if (url.starts_with("http://")) {
    out.scheme = "http";
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    out.scheme = "https";
    rest = url.substr(8);
  } else {
    return std::nullopt;
  }
  // Bytes net/url would read differently from a plain reading are refused outright.
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '\\' || c == '%' || c == '@') {
      return std::nullopt;
    }
  }
  // Go cuts the fragment, then the query, then the authority at the first '/'.
  rest = rest.substr(0, rest.find('#'));
  const std::size_t q = rest.find('?');
  const std::string_view before_query = rest.substr(0, q);
  const std::size_t slash = before_query.find('/');
  const std::string_view authority = before_query.substr(0, slash);
  if (!split_authority(authority, out.host, out.port)) {
    return std::nullopt;
  }
  if (out.port.empty()) {
    out.port = out.scheme == "https" ? "443" : "80";
  }
  out.path = slash == std::string_view::npos ? std::string("/")
                                             : std::string(before_query.substr(slash));
  return out;
}

std::string check_url_prefix(std::string_view entry) {
  if (!parse_fetch_url(entry)) {
    return "'" + std::string(entry) +
           "' is not a plain http:// or https:// URL prefix (no user info, no percent-encoding)";
  }
  if (entry.find_first_of("?#") != std::string_view::npos) {
    return "'" + std::string(entry) + "' must not carry a query or fragment";
  }
  return {};
}

std::optional<Decision> judge_fetch_url(const Tenant& rules, std::string_view url) {
  const auto parsed = parse_fetch_url(url);
  if (!parsed) {
    return Decision::deny(403,
                          "berth: the URL '" + std::string(url) +
                              "' is not in a form berth judges (plain http:// or https://, no "
                              "user info or percent-encoded host)",
                          "egress.url");
  }
  if (rules.egress.urls) {
    for (const auto& entry : *rules.egress.urls) {
      const auto allowed = parse_fetch_url(entry);
      if (allowed && allowed->scheme == parsed->scheme && allowed->host == parsed->host &&
          allowed->port == parsed->port && path_under(parsed->path, allowed->path)) {
        return std::nullopt;
      }
    }
  }
  return egress_refusal(rules, "the URL '" + std::string(url) + "'", "egress.url");
}

std::string registry_host(std::string_view server_address) {
  std::string_view s = server_address;
  if (s.empty()) {
    return "docker.io";  // dockerd's default index
  }
  if (s.starts_with("https://")) {
    s.remove_prefix(8);
  } else if (s.starts_with("http://")) {
    s.remove_prefix(7);
  }
  s = s.substr(0, s.find('/'));
  std::string host;
  std::string port;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '\\' || c == '%' || c == '@' || c == '?' || c == '#') {
      return {};
    }
  }
  if (!split_authority(s, host, port)) {
    return {};
  }
  if (host == "index.docker.io" || host == "registry-1.docker.io" || host == "docker.io") {
    if (port.empty() || port == "443") {
      return "docker.io";
    }
  }
  if (host.find(':') != std::string::npos) {
    host = "[" + host + "]";
  }
  return port.empty() ? host : host + ":" + port;
}

std::string check_registry_entry(std::string_view entry) {
  const std::string host = registry_host(entry);
  if (host.empty() || entry.find('/') != std::string_view::npos) {
    return "'" + std::string(entry) + "' is not a registry host (host or host:port)";
  }
  return {};
}

std::optional<Decision> judge_registry(const Tenant& rules, std::string_view registry) {
  const std::string host = registry_host(registry);
  if (host.empty()) {
    return Decision::deny(400, "berth: '" + std::string(registry) + "' is not a registry address",
                          "egress.registry");
  }
  if (rules.egress.registries) {
    for (const auto& entry : *rules.egress.registries) {
      if (registry_host(entry) == host) {
        return std::nullopt;
      }
    }
  }
  return egress_refusal(rules, "the registry '" + host + "'", "egress.registry");
}

}  // namespace berth::policy
