#pragma once
// Names shared by every berth module: the ownership label and tenant-id rules.
// This is the only header of policy/ that metering/ may include.

#include <string_view>

namespace berth::vocabulary {

/// The label that marks the tenant owning a container, network, volume or image.
inline constexpr std::string_view tenant_label = "berth.tenant";
/// Every label beginning with this prefix is reserved for berth; tenants may neither set nor
/// filter on it.
inline constexpr std::string_view reserved_label_prefix = "berth.";

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

}  // namespace berth::vocabulary
