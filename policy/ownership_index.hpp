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

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "policy/address.hpp"

namespace berth::policy {

/// What one container holds against its tenant's quota: its limits as dockerd stores them
/// (0 = none) and the host ports it publishes.
struct Resources {
  std::int64_t memory = 0;     ///< HostConfig.Memory, bytes
  std::int64_t nano_cpus = 0;  ///< NanoCpus, or CpuQuota/CpuPeriod in billionths of a CPU
  std::int64_t ports = 0;      ///< published host ports

  bool operator==(const Resources&) const = default;
};

/// What a tenant holds, plus what its requests in flight have reserved.
struct Usage {
  std::int64_t containers = 0;
  std::int64_t memory = 0;
  std::int64_t nano_cpus = 0;
  std::int64_t ports = 0;
};

struct ContainerInfo {
  std::string id;
  std::string tenant;  ///< "" = operator
  std::string name;    ///< stored name, without the leading '/'
  std::string state;   ///< "created", "running", "paused", "exited"...
  std::string host = {};  ///< the fleet host that holds it (its policy name)
  /// The id its tenant knows it by when that is not `id`: a moved container keeps the id of
  /// the container it was first (policy::shown_id_label), which berth resolves and shows.
  std::string shown = {};
  std::string twin_of = {};  ///< policy::twin_label's value: the container it was made to replace
  [[nodiscard]] const std::string& visible_id() const { return shown.empty() ? id : shown; }
};

struct NetworkInfo {
  std::string id;
  std::string tenant;
  std::string name;  ///< stored name
  std::vector<Cidr> subnets = {};  ///< its IPAM subnets, as dockerd reports them
  /// Local scope (a bridge): on a fleet it is on the primary alone, and so must its
  /// containers be (a tenant network made before its host joined a fleet).
  bool local = false;
};

struct VolumeInfo {
  std::string name;  ///< stored name
  std::string tenant;
  std::string host = {};  ///< the fleet host that holds it; a volume ties its containers there
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
  /// What a container holds, once dockerd's inspect (or berth's own create) told it.
  void set_resources(std::string_view id, Resources r);
  [[nodiscard]] std::optional<Resources> resources_of(std::string_view id) const;
  /// Every container that carries an ownership label.
  [[nodiscard]] std::vector<ContainerInfo> containers_of_tenants() const;
  void set_container_state(std::string_view id, std::string state);
  void rename_container(std::string_view id, std::string name);
  /// Host ids of `tenant`'s moved containers and the ids it knows them by (those it holds and
  /// the last 4096 removed): berth writes the shown ids over the host ids in its answers
  /// (policy::show_ids). Empty, and cheap, for a tenant none of whose containers moved.
  /// A reference into the index: valid while the caller holds it (the proxy's read lock).
  [[nodiscard]] const std::unordered_map<std::string, std::string>& shown_ids(
      std::string_view tenant) const;

  // A migration as the tenant's `docker events` see it: nothing of it but berth's own
  // "moved" event. While the source `source` moves, none of its events is shown, nor any of
  // a container carrying policy::twin_label with its id; once it has moved, no event of the
  // source is shown any more, nor the twin's up to the end; once undone, neither's up to the
  // end (the source's die and restart from its checkpoint), the twin's never.
  void begin_move(std::string source);
  void end_move(std::string_view source, bool moved, std::int64_t end_nano);
  /// True when the event of container `id` at `time_nano` (ns since the epoch) is a step of a
  /// migration; `twin_of` is its twin_label's value, "" when it has none.
  [[nodiscard]] bool move_hides(std::string_view id, std::string_view twin_of,
                                std::int64_t time_nano) const;

  // exec sessions belong to the owner of their container
  void put_exec(std::string exec_id, std::string container_id);
  [[nodiscard]] std::optional<std::string> exec_container(std::string_view exec_id) const;

  // networks
  void put_network(NetworkInfo n);
  void erase_network(std::string_view id);
  [[nodiscard]] Resolved<NetworkInfo> find_network(std::string_view tenant,
                                                   std::string_view ref) const;
  [[nodiscard]] std::optional<NetworkInfo> network_by_id(std::string_view id) const;
  /// Every network that carries an ownership label.
  [[nodiscard]] std::vector<NetworkInfo> networks_of_tenants() const;
  /// The subnets of every network dockerd holds (whoever owns it) and of the network creates
  /// in flight: what a new tenant network must not overlap.
  [[nodiscard]] std::vector<Cidr> subnets_in_use() const;
  /// Reserves `subnets` for a network create in flight, so that concurrent creates do not take
  /// the same range; 0 when one of them overlaps a subnet in use (judge again).
  [[nodiscard]] std::uint64_t reserve_subnets(std::vector<Cidr> subnets);
  /// The create finished (the network, if made, is in the index with its subnets) or failed.
  void release_subnets(std::uint64_t reservation);

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
  /// The image a stored "repo:tag" names, whoever may see it.
  [[nodiscard]] std::optional<ImageInfo> image_by_tag(std::string_view stored_ref) const;
  /// A reference berth gives an image for a moment on a tenant's behalf (the registry's name
  /// during a push): no tenant sees it or resolves it while it is held. False when it is held
  /// already (another push of that name is in flight).
  bool hold_transient(const std::string& ref);
  void release_transient(const std::string& ref);
  [[nodiscard]] bool is_transient(std::string_view ref) const;
  /// Pulls in flight by one registry digest reference ("registry/repo@sha256:..."), which
  /// berth pulls by and removes when the pull ends: only the last of several concurrent pulls
  /// of one digest removes it, so none loses the reference it is about to tag by.
  void hold_pull(const std::string& by_digest);
  /// True when this was the last pull of the reference in flight.
  bool release_pull(const std::string& by_digest);
  /// berth removed the tag itself: it leaves the index now, not when dockerd's event comes.
  void untag_image(std::string_view ref);

  /// Replaces everything (a full resynchronisation from dockerd's lists). Exec sessions whose
  /// container still exists are kept.
  void replace_all(OwnershipIndex&& fresh);
  /// A full resynchronisation of one host of a fleet: its containers and volumes are replaced
  /// by `fresh`'s (which take `host`), the other hosts' stay. The primary host (`primary`)
  /// also replaces the networks and images, which berth keeps there.
  void replace_host(std::string_view host, OwnershipIndex&& fresh, bool primary);
  /// The host holding the container `ref` names (full id, stored name or unique id prefix,
  /// whoever owns it): how a request is routed, after it was judged.
  [[nodiscard]] std::optional<std::string> host_of_container(std::string_view ref) const;
  /// Every container, whoever owns it (placement counts what each host holds).
  [[nodiscard]] std::vector<ContainerInfo> all_containers() const;
  /// True when a create in flight other than `except` has reserved the stored name.
  [[nodiscard]] bool name_reserved(std::string_view stored, std::uint64_t except) const;

  [[nodiscard]] std::size_t container_count() const noexcept { return containers_.size(); }

  // Quota reservations: a create or update in flight holds its claim from the moment it is
  // judged until dockerd has answered, so concurrent requests of one tenant count each other.
  /// What `tenant` holds and has reserved, leaving out container `except` (an update judges
  /// the container's new claim in its place). A container with an update in flight counts
  /// with the larger of its current and its reserved figures.
  [[nodiscard]] Usage usage_of(std::string_view tenant, std::string_view except = {}) const;
  /// Reserves `claim` for a new container (`container` empty) or for an update of `container`.
  [[nodiscard]] std::uint64_t reserve(std::string tenant, Resources claim, std::string container);
  /// The stored name a reserved create will have: once dockerd's create event brings that
  /// container into the index, the reservation stops counting as one more container.
  void name_reservation(std::uint64_t reservation, std::string name);
  /// dockerd created or updated the container: its entry takes the reserved figures (a new
  /// container enters the index now, under `id`, if the event has not brought it yet).
  void commit(std::uint64_t reservation, std::string_view id, std::string_view name = {});
  /// The request failed or was refused: the reservation is dropped.
  void release(std::uint64_t reservation);
  [[nodiscard]] std::size_t reservation_count() const noexcept { return reservations_.size(); }

 private:
  std::map<std::string, ContainerInfo, std::less<>> containers_;  // by id, sorted for prefixes
  std::map<std::string, Resources, std::less<>> resources_;       // container id -> holding
  std::unordered_map<std::string, std::string> container_names_;  // stored name -> id
  std::unordered_map<std::string, std::string> execs_;            // exec id -> container id
  std::map<std::string, NetworkInfo, std::less<>> networks_;
  std::map<std::string, VolumeInfo, std::less<>> volumes_;
  std::map<std::string, ImageInfo, std::less<>> images_;          // by "sha256:..." id
  std::unordered_map<std::string, std::string> image_tags_;       // stored tag -> id
  std::set<std::string, std::less<>> transient_;                  // see hold_transient
  std::map<std::string, std::size_t, std::less<>> pulls_;         // see hold_pull

  struct Reservation {
    std::string tenant;
    Resources claim;
    std::string container;  // empty: a new container
    std::string name;       // a new container's stored name, once known
  };
  std::map<std::uint64_t, Reservation> reservations_;
  std::map<std::uint64_t, std::vector<Cidr>> subnet_reservations_;
  std::uint64_t next_reservation_ = 1;
  // Containers removed lately, so a create committed after its container's removal (a race
  // with another request) does not bring it back.
  std::set<std::string, std::less<>> removed_;
  std::vector<std::string> removed_order_;
  // Moved containers: shown id -> host id (resolution), and what survives a resync: host id
  // -> {tenant, shown id} (see shown_ids) and the migrations' records (see begin_move).
  std::multimap<std::string, std::string, std::less<>> aliases_;
  void drop_alias(const ContainerInfo& c);
  [[nodiscard]] Resolved<ContainerInfo> by_visible_id(std::string_view tenant,
                                                      std::string_view ref, bool prefix) const;
  struct Moved {
    // tenant -> host id -> shown id; shown_order: (tenant, host id), oldest first.
    std::map<std::string, std::unordered_map<std::string, std::string>, std::less<>> shown;
    std::vector<std::pair<std::string, std::string>> shown_order;
    void remember_shown(const ContainerInfo& c);
    struct Move {
      enum class State { moving, moved, undone } state = State::moving;
      std::int64_t end_nano = 0;
    };
    std::map<std::string, Move, std::less<>> moves;  // by source id
    std::vector<std::string> move_order;
  };
  Moved moved_;
};

}  // namespace berth::policy
