#include "policy/ownership_index.hpp"

#include <algorithm>

#include "policy/names.hpp"

namespace berth::policy {

namespace {

// Unique-prefix search over a map sorted by id; only entries `visible` counts, so another
// tenant's object can neither satisfy nor make ambiguous a tenant's prefix.
template <typename Map, typename Visible>
Resolved<typename Map::mapped_type> by_prefix(const Map& m, std::string_view prefix,
                                              Visible visible) {
  Resolved<typename Map::mapped_type> out;
  if (prefix.empty()) {
    return out;
  }
  for (auto it = m.lower_bound(prefix); it != m.end() && it->first.starts_with(prefix); ++it) {
    if (!visible(it->second)) {
      continue;
    }
    if (out.result == Lookup::found) {
      out.result = Lookup::ambiguous;
      return out;
    }
    out.result = Lookup::found;
    out.value = it->second;
  }
  return out;
}

// Keeps `key` in an insertion-ordered, bounded record (`order` its keys, oldest first).
template <typename Map>
void remember(Map& m, std::vector<std::string>& order, const std::string& key,
              typename Map::mapped_type value) {
  if (m.insert_or_assign(key, std::move(value)).second) {
    order.push_back(key);
    if (order.size() > 4096) {
      m.erase(order.front());
      order.erase(order.begin());
    }
  }
}

bool is_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return !s.empty();
}

}  // namespace

// A name belongs to one container. On a fleet two may carry it for a moment, while a live
// migration's twin is made on another host (proxy/migrate.cpp): the newer container takes the
// name, a container read again keeps a name only if no other holds it, and when the holder
// goes the name passes to the other.
void OwnershipIndex::put_container(ContainerInfo c) {
  if (!c.name.empty() && c.name.front() == '/') {
    c.name.erase(0, 1);
  }
  bool known = false;
  if (auto it = containers_.find(c.id); it != containers_.end()) {
    known = true;
    drop_alias(it->second);
    if (auto n = container_names_.find(it->second.name);
        n != container_names_.end() && n->second == c.id && it->second.name != c.name) {
      container_names_.erase(n);  // renamed
    }
  }
  const auto held = container_names_.find(c.name);
  const bool other_holder = held != container_names_.end() && held->second != c.id &&
                            containers_.contains(held->second);
  if (!known || !other_holder) {
    container_names_[c.name] = c.id;
  }
  if (!c.shown.empty()) {
    aliases_.emplace(c.shown, c.id);
    moved_.remember_shown(c);
  }
  std::string id = c.id;
  containers_[id] = std::move(c);
}

void OwnershipIndex::drop_alias(const ContainerInfo& c) {
  if (c.shown.empty()) {
    return;
  }
  auto [first, last] = aliases_.equal_range(c.shown);
  for (auto it = first; it != last; ++it) {
    if (it->second == c.id) {
      aliases_.erase(it);
      return;
    }
  }
}

void OwnershipIndex::Moved::remember_shown(const ContainerInfo& c) {
  if (shown[c.tenant].insert_or_assign(c.id, c.shown).second) {
    shown_order.emplace_back(c.tenant, c.id);
    if (shown_order.size() > 4096) {
      const auto& [tenant, id] = shown_order.front();
      if (auto it = shown.find(tenant); it != shown.end()) {
        it->second.erase(id);
        if (it->second.empty()) {
          shown.erase(it);
        }
      }
      shown_order.erase(shown_order.begin());
    }
  }
}

const std::unordered_map<std::string, std::string>& OwnershipIndex::shown_ids(
    std::string_view tenant) const {
  static const std::unordered_map<std::string, std::string> none;
  const auto it = moved_.shown.find(tenant);
  return it == moved_.shown.end() ? none : it->second;
}

void OwnershipIndex::begin_move(std::string source) {
  remember(moved_.moves, moved_.move_order, source, Moved::Move{});
}

void OwnershipIndex::end_move(std::string_view source, bool moved, std::int64_t end_nano) {
  if (auto it = moved_.moves.find(source); it != moved_.moves.end()) {
    it->second.state = moved ? Moved::Move::State::moved : Moved::Move::State::undone;
    it->second.end_nano = end_nano;
  }
}

bool OwnershipIndex::move_hides(std::string_view id, std::string_view twin_of,
                                std::int64_t time_nano) const {
  using State = Moved::Move::State;
  if (auto it = moved_.moves.find(id); it != moved_.moves.end()) {
    const auto& m = it->second;
    if (m.state != State::undone || time_nano <= m.end_nano) {
      return true;  // the source's drain, dump and removal; or its stop and restore
    }
  }
  if (auto it = twin_of.empty() ? moved_.moves.end() : moved_.moves.find(twin_of);
      it != moved_.moves.end()) {
    const auto& m = it->second;
    return m.state == State::moving || m.state == State::undone || time_nano <= m.end_nano;
  }
  return false;
}

void OwnershipIndex::erase_container(std::string_view id) {
  if (auto it = containers_.find(id); it != containers_.end()) {
    drop_alias(it->second);
    if (auto n = container_names_.find(it->second.name);
        n != container_names_.end() && n->second == it->first) {
      container_names_.erase(n);
      for (const auto& [other, info] : containers_) {
        if (other != it->first && info.name == it->second.name) {
          container_names_[info.name] = other;
          break;
        }
      }
    }
    containers_.erase(it);
  }
  if (auto r = resources_.find(id); r != resources_.end()) {
    resources_.erase(r);
  }
  if (removed_.emplace(id).second) {
    removed_order_.emplace_back(id);
    if (removed_order_.size() > 4096) {
      removed_.erase(removed_order_.front());
      removed_order_.erase(removed_order_.begin());
    }
  }
  std::erase_if(execs_, [&](const auto& e) { return e.second == id; });
}

Resolved<ContainerInfo> OwnershipIndex::find_container(std::string_view tenant,
                                                       std::string_view ref) const {
  Resolved<ContainerInfo> out;
  if (ref.empty()) {
    return out;
  }
  if (auto exact = by_visible_id(tenant, ref, false); exact.result != Lookup::missing) {
    return exact;
  }
  if (auto it = containers_.find(ref); it != containers_.end()) {
    if (it->second.tenant == tenant) {
      return {Lookup::found, it->second};
    }
    return out;
  }
  std::string_view name = ref;
  if (name.front() == '/') {
    name.remove_prefix(1);
  }
  // A tenant's name is looked up in its namespace; the operator's as stored.
  const std::string stored = tenant.empty() ? std::string(name) : names::stored(tenant, name);
  // The tenant's spelling in its namespace, then a name dockerd generated for an unnamed
  // container (stored as is, but still the tenant's by label).
  for (const std::string& candidate : {stored, std::string(name)}) {
    if (auto it = container_names_.find(candidate); it != container_names_.end()) {
      if (auto c = containers_.find(it->second);
          c != containers_.end() && c->second.tenant == tenant) {
        return {Lookup::found, c->second};
      }
    }
  }
  return by_visible_id(tenant, ref, true);
}

// The tenant's containers whose visible id is `ref` (or starts with it): found when they
// are one container, or one moved container's source and twin for a moment (the running
// one, else the name's holder, stands for it); ambiguous when they are several.
Resolved<ContainerInfo> OwnershipIndex::by_visible_id(std::string_view tenant,
                                                      std::string_view ref, bool prefix) const {
  auto rank = [&](const ContainerInfo& c) {
    const auto holder = container_names_.find(c.name);
    return (c.state == "running" ? 2 : 0) +
           (holder != container_names_.end() && holder->second == c.id ? 1 : 0);
  };
  const ContainerInfo* best = nullptr;
  bool ambiguous = false;
  auto consider = [&](const ContainerInfo& c) {
    if (c.tenant != tenant) {
      return;
    }
    if (best == nullptr) {
      best = &c;
    } else if (c.visible_id() != best->visible_id()) {
      ambiguous = true;
    } else if (rank(c) > rank(*best)) {
      best = &c;
    }
  };
  auto matches = [&](const std::string& key) {
    return prefix ? key.starts_with(ref) : key == ref;
  };
  for (auto it = containers_.lower_bound(ref); it != containers_.end() && matches(it->first);
       ++it) {
    if (it->second.shown.empty()) {
      consider(it->second);
    }
  }
  for (auto it = aliases_.lower_bound(ref); it != aliases_.end() && matches(it->first); ++it) {
    if (auto c = containers_.find(it->second); c != containers_.end()) {
      consider(c->second);
    }
  }
  if (ref.empty() || best == nullptr) {
    return {};
  }
  if (ambiguous) {
    return {Lookup::ambiguous, {}};
  }
  return {Lookup::found, *best};
}

std::optional<ContainerInfo> OwnershipIndex::container_by_id(std::string_view id) const {
  if (auto it = containers_.find(id); it != containers_.end()) {
    return it->second;
  }
  return std::nullopt;
}

std::vector<ContainerInfo> OwnershipIndex::containers_of(std::string_view tenant) const {
  std::vector<ContainerInfo> out;
  for (const auto& [id, c] : containers_) {
    if (c.tenant == tenant) {
      out.push_back(c);
    }
  }
  return out;
}

void OwnershipIndex::set_resources(std::string_view id, Resources r) {
  if (containers_.contains(id)) {
    resources_[std::string(id)] = r;
  }
}

std::optional<Resources> OwnershipIndex::resources_of(std::string_view id) const {
  if (auto it = resources_.find(id); it != resources_.end()) {
    return it->second;
  }
  return std::nullopt;
}

std::vector<NetworkInfo> OwnershipIndex::networks_of_tenants() const {
  std::vector<NetworkInfo> out;
  for (const auto& [id, n] : networks_) {
    if (!n.tenant.empty()) {
      out.push_back(n);
    }
  }
  return out;
}

std::vector<ContainerInfo> OwnershipIndex::containers_of_tenants() const {
  std::vector<ContainerInfo> out;
  for (const auto& [id, c] : containers_) {
    if (!c.tenant.empty()) {
      out.push_back(c);
    }
  }
  return out;
}

void OwnershipIndex::set_container_state(std::string_view id, std::string state) {
  if (auto it = containers_.find(id); it != containers_.end()) {
    it->second.state = std::move(state);
  }
}

void OwnershipIndex::rename_container(std::string_view id, std::string name) {
  if (auto it = containers_.find(id); it != containers_.end()) {
    ContainerInfo c = it->second;
    c.name = std::move(name);
    put_container(std::move(c));
  }
}

void OwnershipIndex::put_exec(std::string exec_id, std::string container_id) {
  execs_[std::move(exec_id)] = std::move(container_id);
}

std::optional<std::string> OwnershipIndex::exec_container(std::string_view exec_id) const {
  if (auto it = execs_.find(std::string(exec_id)); it != execs_.end()) {
    return it->second;
  }
  return std::nullopt;
}

void OwnershipIndex::put_network(NetworkInfo n) {
  std::string id = n.id;
  networks_[id] = std::move(n);
}

std::vector<Cidr> OwnershipIndex::subnets_in_use() const {
  std::vector<Cidr> out;
  for (const auto& [id, n] : networks_) {
    out.insert(out.end(), n.subnets.begin(), n.subnets.end());
  }
  for (const auto& [id, subnets] : subnet_reservations_) {
    out.insert(out.end(), subnets.begin(), subnets.end());
  }
  return out;
}

std::uint64_t OwnershipIndex::reserve_subnets(std::vector<Cidr> subnets) {
  const auto in_use = subnets_in_use();
  for (const auto& wanted : subnets) {
    for (const auto& used : in_use) {
      if (wanted.overlaps(used)) {
        return 0;
      }
    }
  }
  const std::uint64_t id = next_reservation_++;
  subnet_reservations_.emplace(id, std::move(subnets));
  return id;
}

void OwnershipIndex::release_subnets(std::uint64_t reservation) {
  subnet_reservations_.erase(reservation);
}

void OwnershipIndex::erase_network(std::string_view id) {
  if (auto it = networks_.find(id); it != networks_.end()) {
    networks_.erase(it);
  }
}

Resolved<NetworkInfo> OwnershipIndex::find_network(std::string_view tenant,
                                                   std::string_view ref) const {
  Resolved<NetworkInfo> out;
  if (ref.empty()) {
    return out;
  }
  if (auto it = networks_.find(ref); it != networks_.end()) {
    if (it->second.tenant == tenant) {
      return {Lookup::found, it->second};
    }
    return out;
  }
  std::string stored;
  if (tenant.empty()) {
    stored = std::string(ref);
  } else if (ref == names::default_network_view) {
    stored = names::default_network(tenant);
  } else {
    stored = names::stored(tenant, ref);
  }
  for (const auto& [id, n] : networks_) {
    if (n.tenant == tenant && n.name == stored) {
      return {Lookup::found, n};
    }
  }
  return by_prefix(networks_, ref, [&](const NetworkInfo& n) { return n.tenant == tenant; });
}

std::optional<NetworkInfo> OwnershipIndex::network_by_id(std::string_view id) const {
  if (auto it = networks_.find(id); it != networks_.end()) {
    return it->second;
  }
  return std::nullopt;
}

void OwnershipIndex::put_volume(VolumeInfo v) {
  std::string name = v.name;
  volumes_[name] = std::move(v);
}

void OwnershipIndex::erase_volume(std::string_view name) {
  if (auto it = volumes_.find(name); it != volumes_.end()) {
    volumes_.erase(it);
  }
}

std::optional<VolumeInfo> OwnershipIndex::volume(std::string_view name) const {
  if (auto it = volumes_.find(name); it != volumes_.end()) {
    return it->second;
  }
  return std::nullopt;
}

std::vector<VolumeInfo> OwnershipIndex::volumes_of(std::string_view tenant) const {
  std::vector<VolumeInfo> out;
  for (const auto& [name, v] : volumes_) {
    if (v.tenant == tenant) {
      out.push_back(v);
    }
  }
  return out;
}

void OwnershipIndex::put_image(ImageInfo i) {
  if (auto it = images_.find(i.id); it != images_.end()) {
    for (const auto& t : it->second.tags) {
      // Only if the tag still names this image: dockerd may already have moved it to another
      // image whose update arrived first.
      if (auto tag = image_tags_.find(t); tag != image_tags_.end() && tag->second == i.id) {
        image_tags_.erase(tag);
      }
    }
  }
  for (const auto& t : i.tags) {
    image_tags_[t] = i.id;
  }
  std::string id = i.id;
  images_[id] = std::move(i);
}

void OwnershipIndex::erase_image(std::string_view id) {
  if (auto it = images_.find(id); it != images_.end()) {
    for (const auto& t : it->second.tags) {
      if (auto tag = image_tags_.find(t); tag != image_tags_.end() && tag->second == it->first) {
        image_tags_.erase(tag);
      }
    }
    images_.erase(it);
  }
}

std::optional<ImageInfo> OwnershipIndex::image_by_id(std::string_view id) const {
  if (auto it = images_.find(id); it != images_.end()) {
    return it->second;
  }
  return std::nullopt;
}

bool OwnershipIndex::image_visible(std::string_view tenant, const ImageInfo& image) const {
  if (tenant.empty()) {
    return true;
  }
  // A tag in the tenant's namespace makes the image its own, whatever labels the image carries
  // (a pulled image's labels are whoever built it). The ownership label decides only for an
  // image no tenant has tagged (an untagged build); a shared image has neither.
  bool other_tenant_tag = false;
  bool shared_tag = false;
  for (const auto& t : image.tags) {
    if (names::tenant_image_view(tenant, t)) {
      return true;
    }
    if (names::is_tenant_image_repo(t)) {
      other_tenant_tag = true;
    } else if (!transient_.contains(t)) {
      shared_tag = true;
    }
  }
  if (!image.tenant.empty()) {
    return image.tenant == tenant && !other_tenant_tag;
  }
  return shared_tag;
}

std::optional<ImageInfo> OwnershipIndex::image_by_tag(std::string_view stored_ref) const {
  if (auto it = image_tags_.find(std::string(stored_ref)); it != image_tags_.end()) {
    return images_.at(it->second);
  }
  return std::nullopt;
}

bool OwnershipIndex::hold_transient(const std::string& ref) { return transient_.insert(ref).second; }

void OwnershipIndex::release_transient(const std::string& ref) { transient_.erase(ref); }

void OwnershipIndex::hold_pull(const std::string& by_digest) { ++pulls_[by_digest]; }

bool OwnershipIndex::release_pull(const std::string& by_digest) {
  const auto it = pulls_.find(by_digest);
  if (it == pulls_.end() || --it->second == 0) {
    if (it != pulls_.end()) {
      pulls_.erase(it);
    }
    return true;
  }
  return false;
}

bool OwnershipIndex::is_transient(std::string_view ref) const {
  return transient_.contains(std::string(ref));
}

void OwnershipIndex::untag_image(std::string_view ref) {
  const auto tag = image_tags_.find(std::string(ref));
  if (tag == image_tags_.end()) {
    return;
  }
  if (auto it = images_.find(tag->second); it != images_.end()) {
    std::erase(it->second.tags, std::string(ref));
  }
  image_tags_.erase(tag);
}

Resolved<ImageInfo> OwnershipIndex::find_image(std::string_view tenant,
                                               std::string_view ref) const {
  Resolved<ImageInfo> out;
  if (ref.empty()) {
    return out;
  }
  // An id: "sha256:<hex>" or bare hex (full or prefix), among visible images.
  std::string_view hex = ref;
  if (hex.starts_with("sha256:")) {
    hex.remove_prefix(7);
  }
  if (is_hex(hex) && hex.size() <= 64) {
    const std::string id = "sha256:" + std::string(hex);
    if (auto it = images_.find(id); it != images_.end()) {
      if (image_visible(tenant, it->second)) {
        return {Lookup::found, it->second};
      }
      return out;
    }
  }
  if (auto parsed = names::parse_image_ref(ref)) {
    if (!tenant.empty()) {
      if (auto it = image_tags_.find(names::stored_image(tenant, *parsed));
          it != image_tags_.end()) {
        return {Lookup::found, images_.at(it->second)};
      }
    }
    // A shared image, by the name the operator tagged it with.
    if (!names::is_tenant_image_repo(parsed->str())) {
      for (const std::string& candidate : {parsed->str(), "docker.io/library/" + parsed->str()}) {
        if (auto it = image_tags_.find(candidate);
            it != image_tags_.end() && (tenant.empty() || !transient_.contains(candidate))) {
          const ImageInfo& img = images_.at(it->second);
          if (tenant.empty() || img.tenant.empty()) {
            return {Lookup::found, img};
          }
        }
      }
    }
  }
  if (is_hex(hex) && hex.size() < 64) {
    return by_prefix(images_, "sha256:" + std::string(hex),
                     [&](const ImageInfo& i) { return image_visible(tenant, i); });
  }
  return out;
}

std::vector<ImageInfo> OwnershipIndex::images() const {
  std::vector<ImageInfo> out;
  out.reserve(images_.size());
  for (const auto& [id, i] : images_) {
    out.push_back(i);
  }
  return out;
}

void OwnershipIndex::replace_all(OwnershipIndex&& fresh) {
  auto execs = std::move(execs_);
  auto reservations = std::move(reservations_);
  auto subnet_reservations = std::move(subnet_reservations_);
  auto removed = std::move(removed_);
  auto removed_order = std::move(removed_order_);
  auto moved = std::move(moved_);
  auto transient = std::move(transient_);
  auto pulls = std::move(pulls_);
  const auto next = next_reservation_;
  auto old = std::move(resources_);
  *this = std::move(fresh);
  for (auto& [exec, container] : execs) {
    if (containers_.contains(container)) {
      execs_.emplace(exec, container);
    }
  }
  for (auto& [id, held] : old) {
    if (containers_.contains(id)) {
      resources_.emplace(id, held);  // kept where the fresh lists did not tell
    }
  }
  reservations_ = std::move(reservations);
  subnet_reservations_ = std::move(subnet_reservations);
  transient_ = std::move(transient);
  pulls_ = std::move(pulls);
  removed_ = std::move(removed);
  removed_order_ = std::move(removed_order);
  for (const auto& [id, c] : containers_) {
    if (!c.shown.empty()) {
      moved.remember_shown(c);
    }
  }
  moved_ = std::move(moved);
  next_reservation_ = next;
}

void OwnershipIndex::replace_host(std::string_view host, OwnershipIndex&& fresh, bool primary) {
  for (auto& [id, c] : fresh.containers_) {
    c.host = std::string(host);
  }
  for (auto& [name, v] : fresh.volumes_) {
    v.host = std::string(host);
  }
  if (primary) {
    // The other hosts' containers and volumes go into `fresh`, which then replaces everything.
    for (const auto& [id, c] : containers_) {
      if (c.host != host && !fresh.containers_.contains(id)) {
        fresh.put_container(c);
        if (auto r = resources_.find(id); r != resources_.end()) {
          fresh.resources_.emplace(id, r->second);
        }
      }
    }
    for (const auto& [name, v] : volumes_) {
      if (v.host != host && !fresh.volumes_.contains(name)) {
        fresh.volumes_.emplace(name, v);
      }
    }
    replace_all(std::move(fresh));
    return;
  }
  for (auto it = containers_.begin(); it != containers_.end();) {
    if (it->second.host != host || fresh.containers_.contains(it->first)) {
      ++it;
      continue;
    }
    if (auto n = container_names_.find(it->second.name);
        n != container_names_.end() && n->second == it->first) {
      container_names_.erase(n);
    }
    drop_alias(it->second);
    resources_.erase(it->first);
    std::erase_if(execs_, [&](const auto& e) { return e.second == it->first; });
    it = containers_.erase(it);
  }
  std::erase_if(volumes_, [&](const auto& v) {
    return v.second.host == host && !fresh.volumes_.contains(v.first);
  });
  for (auto& [id, c] : fresh.containers_) {
    put_container(std::move(c));
  }
  for (auto& [id, r] : fresh.resources_) {
    resources_.insert_or_assign(id, r);
  }
  for (auto& [name, v] : fresh.volumes_) {
    volumes_.insert_or_assign(name, std::move(v));
  }
}

std::vector<ContainerInfo> OwnershipIndex::all_containers() const {
  std::vector<ContainerInfo> out;
  out.reserve(containers_.size());
  for (const auto& [id, c] : containers_) {
    out.push_back(c);
  }
  return out;
}

bool OwnershipIndex::name_reserved(std::string_view stored, std::uint64_t except) const {
  return std::any_of(reservations_.begin(), reservations_.end(), [&](const auto& r) {
    return r.first != except && r.second.container.empty() && r.second.name == stored;
  });
}

std::optional<std::string> OwnershipIndex::host_of_container(std::string_view ref) const {
  if (auto it = containers_.find(ref); it != containers_.end()) {
    return it->second.host;
  }
  if (auto it = aliases_.find(ref); it != aliases_.end()) {
    if (auto c = containers_.find(it->second); c != containers_.end()) {
      return c->second.host;
    }
  }
  const std::string_view name = ref.starts_with('/') ? ref.substr(1) : ref;
  if (auto n = container_names_.find(std::string(name)); n != container_names_.end()) {
    if (auto it = containers_.find(n->second); it != containers_.end()) {
      return it->second.host;
    }
  }
  auto it = containers_.lower_bound(ref);
  if (ref.empty() || it == containers_.end() || !it->first.starts_with(ref)) {
    return std::nullopt;
  }
  const auto first = it;
  if (++it != containers_.end() && it->first.starts_with(ref)) {
    return std::nullopt;  // ambiguous: dockerd refuses it wherever it is sent
  }
  return first->second.host;
}

Usage OwnershipIndex::usage_of(std::string_view tenant, std::string_view except) const {
  Usage u;
  auto add = [&u](const Resources& r) {
    u.memory += r.memory;
    u.nano_cpus += r.nano_cpus;
    u.ports += r.ports;
  };
  std::map<std::string_view, Resources> updating;
  for (const auto& [id, r] : reservations_) {
    if (r.tenant != tenant) {
      continue;
    }
    std::string_view container = r.container;
    if (container.empty() && !r.name.empty()) {
      // A create whose container the event stream has already brought in: count it once.
      if (auto n = container_names_.find(r.name); n != container_names_.end()) {
        container = n->second;
      }
    }
    if (container.empty()) {
      ++u.containers;
      add(r.claim);
    } else {
      Resources& m = updating[container];
      m.memory = std::max(m.memory, r.claim.memory);
      m.nano_cpus = std::max(m.nano_cpus, r.claim.nano_cpus);
      m.ports = std::max(m.ports, r.claim.ports);
    }
  }
  for (const auto& [id, c] : containers_) {
    if (c.tenant != tenant || id == except) {
      continue;
    }
    ++u.containers;
    const auto known = resources_.find(id);
    Resources held = known != resources_.end() ? known->second : Resources{};
    if (auto it = updating.find(id); it != updating.end()) {
      held.memory = std::max(held.memory, it->second.memory);
      held.nano_cpus = std::max(held.nano_cpus, it->second.nano_cpus);
      held.ports = std::max(held.ports, it->second.ports);
    }
    add(held);
  }
  return u;
}

std::uint64_t OwnershipIndex::reserve(std::string tenant, Resources claim, std::string container) {
  const std::uint64_t id = next_reservation_++;
  reservations_.emplace(id, Reservation{std::move(tenant), claim, std::move(container), {}});
  return id;
}

void OwnershipIndex::name_reservation(std::uint64_t reservation, std::string name) {
  if (auto it = reservations_.find(reservation); it != reservations_.end()) {
    it->second.name = std::move(name);
  }
}

void OwnershipIndex::commit(std::uint64_t reservation, std::string_view id,
                            std::string_view name) {
  auto it = reservations_.find(reservation);
  if (it == reservations_.end()) {
    return;
  }
  Reservation r = std::move(it->second);
  reservations_.erase(it);
  if (removed_.contains(id)) {
    return;  // removed meanwhile
  }
  if (containers_.contains(id)) {
    resources_[std::string(id)] = r.claim;
  } else if (r.container.empty()) {
    put_container({std::string(id), r.tenant, std::string(name), "created"});
    resources_[std::string(id)] = r.claim;
  }
}

void OwnershipIndex::release(std::uint64_t reservation) { reservations_.erase(reservation); }

}  // namespace berth::policy
