#pragma once
// The ownership index: every container, exec session, network, volume and image dockerd holds,
// with the tenant that owns it, so that a tenant's reference (full id, unique id prefix, name)
// resolves within that tenant's objects only, without asking dockerd.
//
// A pure data structure: the proxy fills it from dockerd's lists and event stream and guards
// it with a lock. Objects with no ownership label belong to the operator (tenant "").
// Resolution follows dockerd's own order (exact id, then name, then unique id prefix), but
// over the tenant's objects only, so another tenant's object is indistinguishable from one
// that does not exist.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace berth::policy {

struct ContainerInfo {
  std::string id;
  std::string tenant;  ///< "" = operator
  std::string name;    ///< stored name, without the leading '/'
  std::string state;   ///< "created", "running", "paused", "exited"...
};

struct NetworkInfo {
  std::string id;
  std::string tenant;
  std::string name;  ///< stored name
};

struct VolumeInfo {
  std::string name;  ///< stored name
  std::string tenant;
};

struct ImageInfo {
  std::string id;                 ///< "sha256:<64 hex>"
  std::string tenant;             ///< the ownership label, "" when none
  std::vector<std::string> tags;  ///< stored "repo:tag" references
};

enum class Lookup { found, missing, ambiguous };

template <typename T>
struct Resolved {
  Lookup result = Lookup::missing;
  T value{};
};

class OwnershipIndex {
 public:
  // containers
  void put_container(ContainerInfo c);
  void erase_container(std::string_view id);
  [[nodiscard]] Resolved<ContainerInfo> find_container(std::string_view tenant,
                                                       std::string_view ref) const;
  [[nodiscard]] std::optional<ContainerInfo> container_by_id(std::string_view id) const;
  [[nodiscard]] std::vector<ContainerInfo> containers_of(std::string_view tenant) const;
  void set_container_state(std::string_view id, std::string state);
  void rename_container(std::string_view id, std::string name);

  // exec sessions belong to the owner of their container
  void put_exec(std::string exec_id, std::string container_id);
  [[nodiscard]] std::optional<std::string> exec_container(std::string_view exec_id) const;

  // networks
  void put_network(NetworkInfo n);
  void erase_network(std::string_view id);
  [[nodiscard]] Resolved<NetworkInfo> find_network(std::string_view tenant,
                                                   std::string_view ref) const;
  [[nodiscard]] std::optional<NetworkInfo> network_by_id(std::string_view id) const;

  // volumes (by name only, as dockerd)
  void put_volume(VolumeInfo v);
  void erase_volume(std::string_view name);
  [[nodiscard]] std::optional<VolumeInfo> volume(std::string_view name) const;
  [[nodiscard]] std::vector<VolumeInfo> volumes_of(std::string_view tenant) const;

  // images
  void put_image(ImageInfo i);
  void erase_image(std::string_view id);
  [[nodiscard]] std::optional<ImageInfo> image_by_id(std::string_view id) const;
  /// The image a tenant means by `ref`: an id or unique id prefix among the images it may
  /// see, its own tag, or else a shared (operator) tag.
  [[nodiscard]] Resolved<ImageInfo> find_image(std::string_view tenant,
                                               std::string_view ref) const;
  /// True when the tenant may see the image: labelled as its own, tagged in its namespace,
  /// or shared (no label, at least one tag outside every tenant namespace).
  [[nodiscard]] bool image_visible(std::string_view tenant, const ImageInfo& image) const;
  [[nodiscard]] std::vector<ImageInfo> images() const;

  /// Replaces everything (a full resynchronisation from dockerd's lists). Exec sessions whose
  /// container still exists are kept.
  void replace_all(OwnershipIndex&& fresh);

  [[nodiscard]] std::size_t container_count() const noexcept { return containers_.size(); }

 private:
  std::map<std::string, ContainerInfo, std::less<>> containers_;  // by id, sorted for prefixes
  std::unordered_map<std::string, std::string> container_names_;  // stored name -> id
  std::unordered_map<std::string, std::string> execs_;            // exec id -> container id
  std::map<std::string, NetworkInfo, std::less<>> networks_;
  std::map<std::string, VolumeInfo, std::less<>> volumes_;
  std::map<std::string, ImageInfo, std::less<>> images_;          // by "sha256:..." id
  std::unordered_map<std::string, std::string> image_tags_;       // stored tag -> id
};

}  // namespace berth::policy
