#pragma once
// Tenant-scoped names: the name a tenant gives to a container, network, volume or image is
// unique within that tenant only. berth stores it in dockerd under a prefix that no other
// tenant can produce, and shows the tenant only its own spelling.
//
//   container, network, volume:  "<tenant>_<name>"   (tenant ids never contain '_')
//   tenant's default network:    "<tenant>_bridge", shown as "bridge"
//   image repository:            "<tenant>.berth.local/<familiar name>"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace berth::policy::names {

/// dockerd's rule for container and volume names: [a-zA-Z0-9][a-zA-Z0-9_.-]+ (2+ chars)
bool is_valid_object_name(std::string_view name);

std::string stored(std::string_view tenant, std::string_view name);
/// The tenant's spelling of a stored name; nullopt when it is not in the tenant's namespace.
std::optional<std::string> tenant_view(std::string_view tenant, std::string_view stored_name);

/// True when a stored name is in some tenant's namespace ("<valid tenant id>_...").
bool tenant_view_of_other(std::string_view stored_name);

/// A name for a container the tenant did not name, in the style of dockerd's generated names
/// ("adjective_surname"), picked by `random`. berth names unnamed tenant containers itself:
/// dockerd's own generated names are global and unprefixed, so one could equal another
/// tenant's prefixed name ("happy" + "_turing").
std::string generated_name(std::uint64_t random);

/// The network a tenant's containers join when they name none (or "bridge"/"default").
std::string default_network(std::string_view tenant);
inline constexpr std::string_view default_network_view = "bridge";

/// The registry-style prefix under which a tenant's image repositories are stored.
std::string image_prefix(std::string_view tenant);

struct ImageRef {
  std::string name;    ///< familiar repository name ("busybox", "team/app", "host:5000/x")
  std::string tag;     ///< empty when a digest was given
  std::string digest;  ///< "sha256:..." or empty
  [[nodiscard]] std::string str() const;
};

/// Parses a reference as the docker CLI and daemon do (docker.io/library/ prefixes dropped,
/// "latest" when no tag or digest). nullopt for an invalid reference.
std::optional<ImageRef> parse_image_ref(std::string_view text);

/// True when a reference as written has a ':' after its last '/': a tag (or, with '@', a
/// digest's algorithm), never a registry's port.
bool has_tag_separator(std::string_view text);

/// "app:v1" of tenant acme -> "acme.berth.local/app:v1".
std::string stored_image(std::string_view tenant, const ImageRef& ref);
/// The tenant's spelling of a stored "repo:tag"; nullopt when it is not the tenant's.
std::optional<std::string> tenant_image_view(std::string_view tenant, std::string_view stored_ref);
/// The registry a reference is pulled from or pushed to: its first component when the docker
/// CLI reads that as a host (a '.', a port, "localhost"), else Docker Hub ("docker.io").
std::string registry_of(const ImageRef& ref);
/// True when a repository belongs to some tenant's namespace (not a shared image).
bool is_tenant_image_repo(std::string_view stored_ref);

}  // namespace berth::policy::names
