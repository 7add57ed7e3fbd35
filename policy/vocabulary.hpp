#pragma once
// Names shared by every berth module: the ownership label and tenant-id rules.
// This is the only header of policy/ that metering/ may include.

#include <optional>
#include <string>
#include <string_view>

namespace berth::vocabulary {

/// The label that marks the tenant owning a container, network, volume or image.
inline constexpr std::string_view tenant_label = "berth.tenant";
/// Every label beginning with this prefix is reserved for berth; tenants may neither set nor
/// filter on it.
inline constexpr std::string_view reserved_label_prefix = "berth.";

/// The label on a moved container: the id its tenant knows it by (its first container's id,
/// policy/migration.hpp), which berth shows in place of the id its current host gave it.
inline constexpr std::string_view shown_id_label = "berth.id";

/// A container id as dockerd makes them: 64 lowercase hex digits.
constexpr bool is_full_container_id(std::string_view id) noexcept {
  if (id.size() != 64) {
    return false;
  }
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

/// A tenant id is 1..63 characters of [a-z0-9-], not starting or ending with '-'.
/// Tenant ids end up in labels, cgroup paths and object names, so the alphabet is kept
/// small enough that none of those can be confused or escaped.
constexpr bool is_valid_tenant_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 63 || id.front() == '-' || id.back() == '-') {
    return false;
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

/// Where the kernel accounts a tenant: the cgroup parent the proxy gives every container of
/// the tenant and the meter reads. Under the cgroupfs driver an absolute path; under systemd a
/// slice, whose name systemd reads '-' in as nesting ("berth-a-b.slice" would sit inside
/// "berth-a.slice" and bill tenant a for a-b), so '-' is escaped as systemd-escape does. The
/// two functions below are each other's inverse; metering/cgroup.cpp and policy/rewrite.cpp
/// both use them.
inline constexpr std::string_view cgroupfs_root = "berth";  ///< /berth/<tenant>
inline constexpr std::string_view slice_root = "berth.slice";

inline std::string cgroup_parent(std::string_view tenant, bool systemd) {
  if (!systemd) {
    return "/" + std::string(cgroupfs_root) + "/" + std::string(tenant);
  }
  std::string escaped;
  for (char ch : tenant) {
    escaped += ch == '-' ? std::string("\\x2d") : std::string(1, ch);
  }
  return "berth-" + escaped + ".slice";
}

/// The tenant whose slice (as cgroup_parent makes it under systemd) `slice` is; nullopt for any
/// other name, an unescaped '-' (a nested slice) or an invalid tenant id.
inline std::optional<std::string> tenant_of_slice(std::string_view slice) {
  constexpr std::string_view prefix = "berth-";
  constexpr std::string_view suffix = ".slice";
  if (!slice.starts_with(prefix) || !slice.ends_with(suffix)) {
    return std::nullopt;
  }
  slice.remove_prefix(prefix.size());
  slice.remove_suffix(suffix.size());
  std::string tenant;
  for (std::size_t i = 0; i < slice.size(); ++i) {
    if (slice.substr(i).starts_with("\\x2d")) {
      tenant += '-';
      i += 3;
    } else if (slice[i] == '-') {
      return std::nullopt;
    } else {
      tenant += slice[i];
    }
  }
  if (!is_valid_tenant_id(tenant)) {
    return std::nullopt;
  }
  return tenant;
}

}  // namespace berth::vocabulary
