#include "policy/filter.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "policy/authorize.hpp"
#include "policy/json_scan.hpp"
#include "policy/migration.hpp"
#include "policy/names.hpp"
#include "policy/vocabulary.hpp"

namespace berth::policy {

namespace {

using json = nlohmann::json;

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string view_volume_path(const std::string& tenant, std::string path);

void strip_labels(json& labels) {
  if (!labels.is_object()) {
    return;
  }
  for (auto it = labels.begin(); it != labels.end();) {
    if (std::string_view(it.key()).starts_with(vocabulary::reserved_label_prefix)) {
      it = labels.erase(it);
    } else {
      ++it;
    }
  }
}

bool owned(const json& labels, const std::string& tenant) {
  if (!labels.is_object()) {
    return false;
  }
  const auto it = labels.find(std::string(vocabulary::tenant_label));
  return it != labels.end() && it->is_string() && it->get<std::string>() == tenant;
}

// A stored name as the tenant knows it; names outside its namespace are shown as stored
// (only objects it owns reach here).
std::string view(const std::string& tenant, std::string_view stored) {
  if (auto v = names::tenant_view(tenant, stored)) {
    return *v;
  }
  if (!stored.empty() && stored.front() == '/') {
    stored.remove_prefix(1);
  }
  return std::string(stored);
}

std::optional<std::string> image_view(const std::string& tenant, std::string_view stored) {
  if (auto v = names::tenant_image_view(tenant, stored)) {
    return v;
  }
  if (names::is_tenant_image_repo(stored)) {
    return std::nullopt;  // another tenant's tag
  }
  return std::string(stored);
}

void view_image_field(const std::string& tenant, json& obj, const char* field) {
  if (obj.contains(field) && obj[field].is_string()) {
    if (auto v = image_view(tenant, obj[field].get<std::string>())) {
      obj[field] = *v;
    } else {
      obj[field] = "";
    }
  }
}

void view_tags(const std::string& tenant, json& obj, const char* field) {
  if (!obj.contains(field) || !obj[field].is_array()) {
    return;
  }
  json out = json::array();
  for (const auto& t : obj[field]) {
    if (!t.is_string()) {
      continue;
    }
    const std::string s = t.get<std::string>();
    if (s == "<none>:<none>" || s == "<none>@<none>") {
      out.push_back(s);
    } else if (auto v = image_view(tenant, s)) {
      out.push_back(*v);
    }
  }
  obj[field] = std::move(out);
}

void view_networks(const std::string& tenant, json& settings) {
  if (!settings.is_object() || !settings.contains("Networks") ||
      !settings["Networks"].is_object()) {
    return;
  }
  json out = json::object();
  for (auto& [name, value] : settings["Networks"].items()) {
    out[view(tenant, name)] = value;
  }
  settings["Networks"] = std::move(out);
}

void view_network_mode(const std::string& tenant, json& hc) {
  if (!hc.is_object() || !hc.contains("NetworkMode") || !hc["NetworkMode"].is_string()) {
    return;
  }
  const std::string mode = hc["NetworkMode"].get<std::string>();
  if (mode != "none" && !mode.starts_with("container:") && mode != "default") {
    hc["NetworkMode"] = view(tenant, mode);
  }
}

void view_mounts(const std::string& tenant, json& mounts) {
  if (!mounts.is_array()) {
    return;
  }
  for (auto& m : mounts) {
    if (m.is_object() && m.contains("Name") && m["Name"].is_string()) {
      m["Name"] = view(tenant, m["Name"].get<std::string>());
    }
    if (m.is_object() && m.contains("Source") && m["Source"].is_string()) {
      m["Source"] = view_volume_path(tenant, m["Source"].get<std::string>());
    }
  }
}

// "/acme_web" and link names "/acme_app/acme_db" -> "/web", "/app/db".
std::optional<std::string> view_path_name(const std::string& tenant, std::string_view stored) {
  // A link alias ("/parent/alias") is shown only when its parent is the tenant's own; a
  // plain name of a container the tenant owns is shown even if dockerd generated it.
  const bool link = stored.find('/', stored.starts_with("/") ? 1 : 0) != std::string_view::npos;
  std::string out;
  std::size_t start = 0;
  while (start < stored.size()) {
    if (stored[start] == '/') {
      ++start;
      continue;
    }
    const auto end = std::min(stored.find('/', start), stored.size());
    const std::string_view part = stored.substr(start, end - start);
    auto v = names::tenant_view(tenant, part);
    if (!v && link) {
      return std::nullopt;
    }
    out += '/';
    out += v ? *v : std::string(part);  // a name dockerd generated stays as it is
    start = end;
  }
  return out;
}

void view_container(const std::string& tenant, json& c, bool inspect) {
  if (inspect) {
    if (c.contains("Name") && c["Name"].is_string()) {
      c["Name"] = "/" + view(tenant, c["Name"].get<std::string>());
    }
    if (c.contains("Config") && c["Config"].is_object()) {
      strip_labels(c["Config"]["Labels"]);
      view_image_field(tenant, c["Config"], "Image");
    }
    if (c.contains("HostConfig") && c["HostConfig"].is_object()) {
      json& hc = c["HostConfig"];
      hc["CgroupParent"] = "";
      view_network_mode(tenant, hc);
      if (hc.contains("Binds") && hc["Binds"].is_array()) {
        for (auto& b : hc["Binds"]) {
          if (b.is_string()) {
            const std::string s = b.get<std::string>();
            const auto colon = s.find(':');
            b = view(tenant, s.substr(0, colon)) +
                (colon == std::string::npos ? "" : s.substr(colon));
          }
        }
      }
      if (hc.contains("Links") && hc["Links"].is_array()) {
        json links = json::array();
        for (auto& l : hc["Links"]) {
          const std::string s = l.get<std::string>();
          const auto colon = s.find(':');
          auto a = view_path_name(tenant, s.substr(0, colon));
          auto b = colon == std::string::npos ? std::optional<std::string>("")
                                              : view_path_name(tenant, s.substr(colon + 1));
          if (a && b) {
            links.push_back(*a + (colon == std::string::npos ? "" : ":" + *b));
          }
        }
        hc["Links"] = std::move(links);
      }
    }
  } else {
    if (c.contains("Names") && c["Names"].is_array()) {
      json out = json::array();
      for (const auto& n : c["Names"]) {
        if (auto v = view_path_name(tenant, n.get<std::string>())) {
          out.push_back(*v);
        }
      }
      c["Names"] = std::move(out);
    }
    strip_labels(c["Labels"]);
    view_image_field(tenant, c, "Image");
    if (c.contains("HostConfig")) {
      view_network_mode(tenant, c["HostConfig"]);
    }
  }
  if (c.contains("NetworkSettings")) {
    view_networks(tenant, c["NetworkSettings"]);
  }
  if (c.contains("Mounts")) {
    view_mounts(tenant, c["Mounts"]);
  }
}

// The tenant's container list and inspect views rewritten over dockerd's bytes: the members
// view_container changes are rewritten, everything else is copied as dockerd wrote it, and no
// DOM is built (for a 300-container list the DOM round trip cost six times berth's own work on
// the request). Declines (nullopt) on anything it does not rewrite exactly as view_container
// does: text json_scan does not accept, a duplicate of a member it judges (nlohmann keeps the
// last, this rewriter would see both), a type view_container would throw on, two networks
// shown under one name. filter_response then runs the DOM filter, whose answer stands.
// The document is the DOM filter's (filter_test's differential cases check it), though keys
// keep dockerd's order and escapes rather than nlohmann's sorted re-serialization.
class ContainerRewriter {
 public:
  ContainerRewriter(const std::string& tenant, std::string_view body)
      : tenant_(tenant), in_(body) {}

  std::optional<std::string> list() {
    out_.reserve(in_.text().size());
    if (!in_.consume('[')) {
      return std::nullopt;
    }
    out_ += '[';
    bool any = false;
    if (!in_.consume(']')) {
      do {
        if (in_.peek() != '{') {
          if (!in_.skip_value()) {  // dropped, as the DOM filter drops non-objects
            return std::nullopt;
          }
          continue;
        }
        const std::size_t mark = out_.size();
        if (any) {
          out_ += ',';
        }
        bool owned = false;
        if (!container(false, owned)) {
          return std::nullopt;
        }
        if (owned) {
          any = true;
        } else {
          out_.resize(mark);
        }
      } while (in_.consume(','));
      if (!in_.consume(']')) {
        return std::nullopt;
      }
    }
    out_ += ']';
    return finish();
  }

  std::optional<std::string> inspect() {
    out_.reserve(in_.text().size() + 32);
    bool owned = false;
    if (in_.peek() != '{' || !container(true, owned)) {
      return std::nullopt;
    }
    return finish();
  }

 private:
  // Separators and keys of one object or array being written.
  struct Members {
    std::string& out;
    bool first = true;
    void sep() {
      if (!first) {
        out += ',';
      }
      first = false;
    }
    void key(std::string_view raw_key) {
      sep();
      out += raw_key;
      out += ':';
    }
    void key_text(std::string_view text) {
      sep();
      json_scan::append_quoted(out, text);
      out += ':';
    }
  };

  // Member handlers get (members, decoded key, raw key token) and consume the value; `end`
  // may add members before the closing brace.
  template <typename Member, typename End>
  bool object(Member&& member, End&& end) {
    if (!in_.consume('{')) {
      return false;
    }
    out_ += '{';
    Members m{out_};
    if (!in_.consume('}')) {
      do {
        std::string_view raw_key;
        std::string_view key;
        if (!in_.read_string(raw_key, key, scratch_) || !in_.consume(':') ||
            !member(m, key, raw_key)) {
          return false;
        }
      } while (in_.consume(','));
      if (!in_.consume('}')) {
        return false;
      }
    }
    end(m);
    out_ += '}';
    return true;
  }

  template <typename Member>
  bool object(Member&& member) {
    return object(std::forward<Member>(member), [](Members&) {});
  }

  template <typename Element>
  bool array(Element&& element) {
    if (!in_.consume('[')) {
      return false;
    }
    out_ += '[';
    Members m{out_};
    if (!in_.consume(']')) {
      do {
        if (!element(m)) {
          return false;
        }
      } while (in_.consume(','));
      if (!in_.consume(']')) {
        return false;
      }
    }
    out_ += ']';
    return true;
  }

  std::optional<std::string> finish() {
    if (!in_.at_end()) {
      return std::nullopt;
    }
    return std::move(out_);
  }

  bool copy_value() {
    std::string_view raw;
    if (!in_.skip_value(raw)) {
      return false;
    }
    out_ += raw;
    return true;
  }

  // A string value: the text `shown` makes of it (nullopt: dropped); another value: copied.
  template <typename Shown>
  bool rewrite_string(Members& m, std::string_view raw_key, Shown&& shown) {
    if (in_.peek() != '"') {
      m.key(raw_key);
      return copy_value();
    }
    std::string_view raw;
    std::string_view value;
    if (!in_.read_string(raw, value, scratch_)) {
      return false;
    }
    m.key(raw_key);
    json_scan::append_quoted(out_, shown(value));
    return true;
  }

  // A member whose value is rewritten by `rewrite` when it opens with `open`, else copied.
  template <typename Rewrite>
  bool nested(Members& m, std::string_view raw_key, char open, Rewrite&& rewrite) {
    m.key(raw_key);
    return in_.peek() == open ? rewrite() : copy_value();
  }

  // False for the second of two members with the same judged key.
  static bool first_time(unsigned& seen, unsigned bit) {
    if ((seen & bit) != 0) {
      return false;
    }
    seen |= bit;
    return true;
  }

  bool container(bool inspect, bool& owned) {
    unsigned seen = 0;
    return object([&](Members& m, std::string_view key, std::string_view raw_key) {
      if (inspect && key == "Name") {
        return first_time(seen, 1) && rewrite_string(m, raw_key, [&](std::string_view s) {
                 return "/" + view(tenant_, s);
               });
      }
      if (inspect && key == "Config") {
        return first_time(seen, 2) && nested(m, raw_key, '{', [&] { return config(); });
      }
      if (!inspect && key == "Names") {
        return first_time(seen, 4) && nested(m, raw_key, '[', [&] { return names(); });
      }
      if (!inspect && key == "Labels") {
        return first_time(seen, 8) &&
               nested(m, raw_key, '{', [&] { return labels(&owned); });
      }
      if (!inspect && key == "Image") {
        return first_time(seen, 16) && image(m, raw_key);
      }
      if (key == "HostConfig") {
        return first_time(seen, 32) &&
               nested(m, raw_key, '{', [&] { return host_config(inspect); });
      }
      if (key == "NetworkSettings") {
        return first_time(seen, 64) &&
               nested(m, raw_key, '{', [&] { return network_settings(); });
      }
      if (key == "Mounts") {
        return first_time(seen, 128) &&
               nested(m, raw_key, '[', [&] { return mounts(); });
      }
      m.key(raw_key);
      return copy_value();
    });
  }

  bool image(Members& m, std::string_view raw_key) {
    return rewrite_string(m, raw_key, [&](std::string_view s) {
      return image_view(tenant_, s).value_or("");
    });
  }

  // strip_labels, and owned() when `owned` is set.
  bool labels(bool* owned) {
    bool tenant_seen = false;
    return object([&](Members& m, std::string_view key, std::string_view raw_key) {
      if (!key.starts_with(vocabulary::reserved_label_prefix)) {
        m.key(raw_key);
        return copy_value();
      }
      if (key == vocabulary::tenant_label && owned) {
        if (tenant_seen) {
          return false;
        }
        tenant_seen = true;
        std::string_view raw;
        std::string_view value;
        if (in_.peek() == '"') {
          if (!in_.read_string(raw, value, scratch_)) {
            return false;
          }
          *owned = value == tenant_;
          return true;
        }
      }
      return in_.skip_value();
    });
  }

  bool names() {
    return array([&](Members& m) {
      std::string_view raw;
      std::string_view value;
      if (in_.peek() != '"' || !in_.read_string(raw, value, scratch_)) {
        return false;  // the DOM filter throws on a name that is not a string
      }
      if (auto shown = view_path_name(tenant_, value)) {
        m.sep();
        json_scan::append_quoted(out_, *shown);
      }
      return true;
    });
  }

  bool config() {
    unsigned seen = 0;
    return object(
        [&](Members& m, std::string_view key, std::string_view raw_key) {
          if (key == "Labels") {
            return first_time(seen, 1) &&
                   nested(m, raw_key, '{', [&] { return labels(nullptr); });
          }
          if (key == "Image") {
            return first_time(seen, 2) && image(m, raw_key);
          }
          m.key(raw_key);
          return copy_value();
        },
        [&](Members& m) {
          if ((seen & 1) == 0) {  // strip_labels(c["Config"]["Labels"]) adds a null
            m.key("\"Labels\"");
            out_ += "null";
          }
        });
  }

  bool network_mode(Members& m, std::string_view raw_key) {
    return rewrite_string(m, raw_key, [&](std::string_view mode) {
      if (mode != "none" && !mode.starts_with("container:") && mode != "default") {
        return view(tenant_, mode);
      }
      return std::string(mode);
    });
  }

  bool host_config(bool inspect) {
    unsigned seen = 0;
    return object(
        [&](Members& m, std::string_view key, std::string_view raw_key) {
          if (key == "NetworkMode") {
            return first_time(seen, 1) && network_mode(m, raw_key);
          }
          if (inspect && key == "CgroupParent") {
            if (!first_time(seen, 2) || !in_.skip_value()) {
              return false;
            }
            m.key(raw_key);
            out_ += "\"\"";
            return true;
          }
          if (inspect && key == "Binds") {
            return first_time(seen, 4) &&
                   nested(m, raw_key, '[', [&] { return binds(); });
          }
          if (inspect && key == "Links") {
            return first_time(seen, 8) &&
                   nested(m, raw_key, '[', [&] { return links(); });
          }
          m.key(raw_key);
          return copy_value();
        },
        [&](Members& m) {
          if (inspect && (seen & 2) == 0) {  // hc["CgroupParent"] = "" adds it
            m.key("\"CgroupParent\"");
            out_ += "\"\"";
          }
        });
  }

  bool binds() {
    return array([&](Members& m) {
      m.sep();
      if (in_.peek() != '"') {
        return copy_value();
      }
      std::string_view raw;
      std::string_view s;
      if (!in_.read_string(raw, s, scratch_)) {
        return false;
      }
      const auto colon = s.find(':');
      json_scan::append_quoted(
          out_, view(tenant_, s.substr(0, colon)) +
                    std::string(colon == std::string_view::npos ? std::string_view()
                                                                : s.substr(colon)));
      return true;
    });
  }

  bool links() {
    return array([&](Members& m) {
      std::string_view raw;
      std::string_view s;
      if (in_.peek() != '"' || !in_.read_string(raw, s, scratch_)) {
        return false;  // the DOM filter throws on a link that is not a string
      }
      const auto colon = s.find(':');
      const auto a = view_path_name(tenant_, s.substr(0, colon));
      const auto b = colon == std::string_view::npos ? std::optional<std::string>("")
                                                     : view_path_name(tenant_, s.substr(colon + 1));
      if (a && b) {
        m.sep();
        json_scan::append_quoted(out_, *a + (colon == std::string_view::npos ? "" : ":" + *b));
      }
      return true;
    });
  }

  bool network_settings() {
    unsigned seen = 0;
    return object([&](Members& m, std::string_view key, std::string_view raw_key) {
      if (key == "Networks") {
        return first_time(seen, 1) &&
               nested(m, raw_key, '{', [&] { return networks(); });
      }
      m.key(raw_key);
      return copy_value();
    });
  }

  bool networks() {
    std::vector<std::string> shown_names;
    return object([&](Members& m, std::string_view key, std::string_view) {
      std::string shown = view(tenant_, key);
      for (const auto& s : shown_names) {
        if (s == shown) {
          return false;  // two networks under one name: the DOM keeps one of them
        }
      }
      m.key_text(shown);
      shown_names.push_back(std::move(shown));
      return copy_value();
    });
  }

  bool mounts() {
    return array([&](Members& m) {
      m.sep();
      return in_.peek() == '{' ? mount() : copy_value();
    });
  }

  bool mount() {
    unsigned seen = 0;
    return object([&](Members& m, std::string_view key, std::string_view raw_key) {
      if (key == "Name") {
        return first_time(seen, 1) &&
               rewrite_string(m, raw_key, [&](std::string_view s) { return view(tenant_, s); });
      }
      if (key == "Source") {
        return first_time(seen, 2) && rewrite_string(m, raw_key, [&](std::string_view s) {
                 return view_volume_path(tenant_, std::string(s));
               });
      }
      m.key(raw_key);
      return copy_value();
    });
  }

  const std::string& tenant_;
  json_scan::Cursor in_;
  std::string out_;
  std::string scratch_;
};

void view_network(const std::string& tenant, json& n, const OwnershipIndex& index) {
  if (n.contains("Name") && n["Name"].is_string()) {
    n["Name"] = view(tenant, n["Name"].get<std::string>());
  }
  strip_labels(n["Labels"]);
  n.erase("Peers");  // an overlay's hosts, by name and address: hosts are not the tenant's
  if (n.contains("Containers") && n["Containers"].is_object()) {
    // Only the tenant's own endpoints (an operator may have connected anything).
    json containers = json::object();
    for (auto& [id, c] : n["Containers"].items()) {
      const auto owner = index.container_by_id(id);
      if (!owner || owner->tenant != tenant) {
        continue;
      }
      json entry = c;
      if (entry.is_object() && entry.contains("Name") && entry["Name"].is_string()) {
        entry["Name"] = view(tenant, entry["Name"].get<std::string>());
      }
      containers[id] = std::move(entry);
    }
    n["Containers"] = std::move(containers);
  }
}

// ".../volumes/acme_data/_data" -> ".../volumes/data/_data": the tenant's own names only.
std::string view_volume_path(const std::string& tenant, std::string path) {
  const std::string marker = "/volumes/" + tenant + "_";
  if (const auto at = path.find(marker); at != std::string::npos) {
    path.erase(at + 9, tenant.size() + 1);
  }
  return path;
}

void view_volume(const std::string& tenant, json& v) {
  if (v.contains("Name") && v["Name"].is_string()) {
    v["Name"] = view(tenant, v["Name"].get<std::string>());
  }
  if (v.contains("Mountpoint") && v["Mountpoint"].is_string()) {
    v["Mountpoint"] = view_volume_path(tenant, v["Mountpoint"].get<std::string>());
  }
  strip_labels(v["Labels"]);
}

bool image_visible(const std::string& tenant, const json& img, const OwnershipIndex& index) {
  ImageInfo info;
  info.id = img.value("Id", std::string());
  const json* labels = nullptr;
  if (img.contains("Labels")) {
    labels = &img["Labels"];
  } else if (img.contains("Config") && img["Config"].is_object() &&
             img["Config"].contains("Labels")) {
    labels = &img["Config"]["Labels"];
  }
  if (labels && labels->is_object()) {
    const auto it = labels->find(std::string(vocabulary::tenant_label));
    if (it != labels->end() && it->is_string()) {
      info.tenant = it->get<std::string>();
    }
  }
  if (img.contains("RepoTags") && img["RepoTags"].is_array()) {
    for (const auto& t : img["RepoTags"]) {
      if (t.is_string() && t.get<std::string>() != "<none>:<none>") {
        info.tags.push_back(t.get<std::string>());
      }
    }
  }
  return index.image_visible(tenant, info);
}

// A tenant sees an image's digest references only for repositories it sees a tag of: a digest
// dockerd recorded for another tenant's pull or push names that tenant's registry.
void view_digests(const std::string& tenant, json& img, const OwnershipIndex& index) {
  if (!img.contains("RepoDigests") || !img["RepoDigests"].is_array()) {
    return;
  }
  std::set<std::string> repositories;
  for (const auto& t : img.value("RepoTags", json::array())) {
    if (!t.is_string()) {
      continue;
    }
    const std::string tag = t.get<std::string>();
    if (names::tenant_image_view(tenant, tag) ||
        (!names::is_tenant_image_repo(tag) && !index.is_transient(tag))) {
      if (auto ref = names::parse_image_ref(tag)) {
        repositories.insert(ref->name);
      }
    }
  }
  json kept = json::array();
  for (const auto& d : img["RepoDigests"]) {
    if (!d.is_string()) {
      continue;
    }
    const std::string digest = d.get<std::string>();
    if (digest == "<none>@<none>") {
      kept.push_back(digest);
      continue;
    }
    const auto ref = names::parse_image_ref(digest);
    if (ref && repositories.contains(ref->name)) {
      kept.push_back(digest);
    }
  }
  img["RepoDigests"] = std::move(kept);
}

void view_image(const std::string& tenant, json& img, const OwnershipIndex& index) {
  if (img.contains("Containers") && img["Containers"].is_number() &&
      img["Containers"].get<long long>() > 0) {
    img["Containers"] = -1;  // dockerd's "not computed"; the real count spans tenants
  }
  view_digests(tenant, img, index);
  if (img.contains("RepoTags") && img["RepoTags"].is_array()) {
    json tags = json::array();
    for (auto& t : img["RepoTags"]) {
      if (!t.is_string() || !index.is_transient(t.get<std::string>())) {
        tags.push_back(std::move(t));
      }
    }
    img["RepoTags"] = std::move(tags);
  }
  view_tags(tenant, img, "RepoTags");
  view_tags(tenant, img, "RepoDigests");
  strip_labels(img["Labels"]);
  if (img.contains("Config") && img["Config"].is_object()) {
    strip_labels(img["Config"]["Labels"]);
  }
  if (img.contains("ContainerConfig") && img["ContainerConfig"].is_object()) {
    strip_labels(img["ContainerConfig"]["Labels"]);
  }
  if (img.contains("Container")) {
    img["Container"] = "";
  }
  if (img.contains("Labels") && img["Labels"].is_object() && img["Labels"].empty()) {
    img["Labels"] = nullptr;
  }
}

json filtered_images(const std::string& tenant, json list, const OwnershipIndex& index) {
  json out = json::array();
  for (auto& img : list) {
    if (img.is_object() && image_visible(tenant, img, index)) {
      view_image(tenant, img, index);
      out.push_back(std::move(img));
    }
  }
  return out;
}

// dockerd matches a container's name with and without its leading '/'.
bool container_name_wanted(const json& c, const NameMatcher& wanted) {
  for (const auto& n : c.value("Names", json::array())) {
    if (!n.is_string()) {
      continue;
    }
    const std::string name = n.get<std::string>();
    if (wanted.matches(name) || (name.starts_with('/') && wanted.matches(name.substr(1)))) {
      return true;
    }
  }
  return false;
}

// An image list narrowed by `reference` patterns, as dockerd narrows it: an image keeps the
// references that match, and goes when none does.
json wanted_references(json images, const std::vector<std::string>& patterns) {
  if (patterns.empty()) {
    return images;
  }
  json out = json::array();
  for (auto& img : images) {
    bool any = false;
    for (const char* field : {"RepoTags", "RepoDigests"}) {
      json kept = json::array();
      for (const auto& r : img.value(field, json::array())) {
        if (!r.is_string()) {
          continue;
        }
        const std::string ref = r.get<std::string>();
        const bool match =
            ref != "<none>:<none>" && ref != "<none>@<none>" &&
            std::any_of(patterns.begin(), patterns.end(),
                        [&](const std::string& p) { return reference_matches(p, ref); });
        if (match) {
          kept.push_back(ref);
          any = true;
        }
      }
      img[field] = std::move(kept);
    }
    if (any) {
      out.push_back(std::move(img));
    }
  }
  return out;
}

}  // namespace

void show_ids(std::string& text, const std::unordered_map<std::string, std::string>& shown) {
  if (shown.empty()) {
    return;
  }
  auto hex = [&](std::size_t i) {
    const char c = text[i];
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  };
  std::size_t i = 0;
  while (i < text.size()) {
    if (!hex(i)) {
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < text.size() && hex(end)) {
      ++end;
    }
    if (end - i == 64) {
      if (auto it = shown.find(text.substr(i, 64));
          it != shown.end() && it->second.size() == 64) {
        text.replace(i, 64, it->second);
      }
    }
    i = end;
  }
}

namespace {

std::optional<std::string> filter_dom(ResponseView view_kind, const Principal& who,
                                      std::string_view body, const OwnershipIndex& index,
                                      const ListFilter& extra);

// The tenant's view of a whole answer, its moved containers shown under the ids it knows.
std::optional<std::string> with_shown_ids(std::optional<std::string> out, const Principal& who,
                                          const OwnershipIndex& index) {
  if (out && !who.is_operator()) {
    show_ids(*out, index.shown_ids(who.tenant));
  }
  return out;
}

}  // namespace

std::optional<std::string> filter_response(ResponseView view_kind, const Principal& who,
                                           std::string_view body, const OwnershipIndex& index,
                                           const ListFilter& extra) {
  if (!extra.empty() && !who.is_operator()) {
    return with_shown_ids(filter_dom(view_kind, who, body, index, extra), who, index);
  }
  if (!who.is_operator() && (view_kind == ResponseView::container_list ||
                             view_kind == ResponseView::container_inspect)) {
    ContainerRewriter rewriter(who.tenant, body);
    auto out = view_kind == ResponseView::container_list ? rewriter.list() : rewriter.inspect();
    if (out) {
      return with_shown_ids(std::move(out), who, index);
    }
  }
  return with_shown_ids(filter_dom(view_kind, who, body, index, {}), who, index);
}

std::optional<std::string> filter_response_dom(ResponseView view_kind, const Principal& who,
                                               std::string_view body,
                                               const OwnershipIndex& index,
                                               const ListFilter& extra) {
  return with_shown_ids(filter_dom(view_kind, who, body, index, extra), who, index);
}

namespace {

std::optional<std::string> filter_dom(ResponseView view_kind, const Principal& who,
                                      std::string_view body, const OwnershipIndex& index,
                                      const ListFilter& extra) {
  const NameMatcher names_wanted(extra.names);
  if (view_kind == ResponseView::pass || who.is_operator()) {
    return std::string(body);
  }
  if (view_kind == ResponseView::info) {
    std::string redacted = redact_info_for_tenant(body);
    if (redacted.empty()) {
      return std::nullopt;
    }
    json doc = json::parse(redacted);
    int running = 0;
    int paused = 0;
    int stopped = 0;
    const auto mine = index.containers_of(who.tenant);
    for (const auto& c : mine) {
      if (c.state == "running") {
        ++running;
      } else if (c.state == "paused") {
        ++paused;
      } else {
        ++stopped;
      }
    }
    doc["Containers"] = mine.size();
    doc["ContainersRunning"] = running;
    doc["ContainersPaused"] = paused;
    doc["ContainersStopped"] = stopped;
    std::size_t images = 0;
    for (const auto& img : index.images()) {
      // As dockerd counts (every image, as `docker images -a` lists them), over what the tenant
      // sees: its own, tagged or not, and the shared tagged images.
      if (index.image_visible(who.tenant, img)) {
        ++images;
      }
    }
    doc["Images"] = images;
    return dump(doc);
  }
  auto doc = json::parse(body, nullptr, false);
  if (doc.is_discarded()) {
    return std::nullopt;
  }
  const std::string& t = who.tenant;
  switch (view_kind) {
    case ResponseView::container_list: {
      if (!doc.is_array()) {
        return std::nullopt;
      }
      json out = json::array();
      const NameMatcher ids_wanted(extra.ids);
      for (auto& c : doc) {
        if (c.is_object() && owned(c["Labels"], t)) {
          std::string visible = shown_id(c["Labels"]);
          if (visible.empty() && c.contains("Id") && c["Id"].is_string()) {
            visible = c["Id"].get<std::string>();
          }
          view_container(t, c, false);
          if ((!extra.names.empty() && !container_name_wanted(c, names_wanted)) ||
              !ids_wanted.matches(visible)) {
            continue;
          }
          out.push_back(std::move(c));
        }
      }
      return dump(out);
    }
    case ResponseView::container_inspect:
      if (!doc.is_object()) {
        return std::nullopt;
      }
      view_container(t, doc, true);
      return dump(doc);
    case ResponseView::network_list: {
      if (!doc.is_array()) {
        return std::nullopt;
      }
      json out = json::array();
      for (auto& n : doc) {
        if (n.is_object() && owned(n["Labels"], t)) {
          view_network(t, n, index);
          if (names_wanted.matches(n.value("Name", std::string()))) {
            out.push_back(std::move(n));
          }
        }
      }
      return dump(out);
    }
    case ResponseView::network_inspect:
      if (!doc.is_object()) {
        return std::nullopt;
      }
      view_network(t, doc, index);
      return dump(doc);
    case ResponseView::volume_list: {
      if (!doc.is_object()) {
        return std::nullopt;
      }
      json out = json::array();
      if (doc.contains("Volumes") && doc["Volumes"].is_array()) {
        for (auto& v : doc["Volumes"]) {
          const auto name = v.value("Name", std::string());
          const auto known = index.volume(name);
          if ((known && known->tenant == t) || owned(v["Labels"], t)) {
            view_volume(t, v);
            if (names_wanted.matches(v.value("Name", std::string()))) {
              out.push_back(std::move(v));
            }
          }
        }
      }
      doc["Volumes"] = std::move(out);
      doc["Warnings"] = json::array();
      return dump(doc);
    }
    case ResponseView::volume_inspect:
      if (!doc.is_object()) {
        return std::nullopt;
      }
      view_volume(t, doc);
      return dump(doc);
    case ResponseView::image_list:
      if (!doc.is_array()) {
        return std::nullopt;
      }
      return dump(wanted_references(filtered_images(t, std::move(doc), index), extra.references));
    case ResponseView::image_inspect:
      if (!doc.is_object()) {
        return std::nullopt;
      }
      view_image(t, doc, index);
      return dump(doc);
    case ResponseView::image_history:
      if (!doc.is_array()) {
        return std::nullopt;
      }
      for (auto& layer : doc) {
        if (layer.is_object()) {
          view_tags(t, layer, "Tags");
        }
      }
      return dump(doc);
    case ResponseView::system_df: {
      if (!doc.is_object()) {
        return std::nullopt;
      }
      json containers = json::array();
      std::map<std::string, long long> users;  // image id -> the tenant's containers using it
      for (auto& c : doc.value("Containers", json::array())) {
        if (c.is_object() && owned(c["Labels"], t)) {
          users[c.value("ImageID", std::string())]++;
          view_container(t, c, false);
          containers.push_back(std::move(c));
        }
      }
      doc["Containers"] = std::move(containers);
      json images = filtered_images(t, doc.value("Images", json::array()), index);
      long long layers = 0;
      for (auto& img : images) {
        layers += img.value("Size", 0LL);
        // A shared image's count must not reveal other tenants' containers.
        const auto it = users.find(img.value("Id", std::string()));
        img["Containers"] = it == users.end() ? 0 : it->second;
      }
      doc["Images"] = std::move(images);
      doc["LayersSize"] = layers;
      json volumes = json::array();
      for (auto& v : doc.value("Volumes", json::array())) {
        const auto known = index.volume(v.value("Name", std::string()));
        if ((known && known->tenant == t) || owned(v["Labels"], t)) {
          view_volume(t, v);
          volumes.push_back(std::move(v));
        }
      }
      doc["Volumes"] = std::move(volumes);
      doc["BuildCache"] = json::array();
      doc["BuilderSize"] = 0;
      return dump(doc);
    }
    case ResponseView::exec_inspect:
      return dump(doc);
    case ResponseView::prune_report: {
      if (!doc.is_object()) {
        return std::nullopt;
      }
      for (const char* field : {"VolumesDeleted", "NetworksDeleted"}) {
        if (doc.contains(field) && doc[field].is_array()) {
          for (auto& name : doc[field]) {
            if (name.is_string()) {
              name = view(t, name.get<std::string>());
            }
          }
        }
      }
      if (doc.contains("ImagesDeleted") && doc["ImagesDeleted"].is_array()) {
        for (auto& item : doc["ImagesDeleted"]) {
          if (item.is_object() && item.contains("Untagged") && item["Untagged"].is_string()) {
            item["Untagged"] = image_view(t, item["Untagged"].get<std::string>()).value_or("");
          }
        }
      }
      return dump(doc);
    }
    default:
      return std::string(body);
  }
}

}  // namespace

bool overlay_attachment_event(const json& event) {
  if (!event.is_object() || event.value("Type", std::string()) != "network" ||
      event.value("scope", std::string()) != "local") {
    return false;
  }
  const std::string action = event.value("Action", std::string());
  const json actor = event.value("Actor", json::object());
  const json attributes = actor.is_object() ? actor.value("Attributes", json::object()) : json();
  return (action == "create" || action == "destroy") && attributes.is_object() &&
         attributes.value("type", std::string()) == "overlay";
}

std::optional<std::string> fleet_event_view(std::string_view event_json, bool from_primary) {
  // Only network events change, and image events of the other hosts go; the others pass
  // without a parse. dockerd writes its JSON compact, and inside a string a quote is escaped:
  // an image event holds "Type":"image" as it is, and no other line does.
  const bool image = !from_primary && event_json.find(R"("Type":"image")") != std::string_view::npos;
  if (!image && event_json.find("\"network\"") == std::string_view::npos) {
    return std::string(event_json);
  }
  auto ev = json::parse(event_json, nullptr, false);
  if (image && ev.is_object() && ev.value("Type", std::string()) == "image") {
    return std::nullopt;
  }
  if (ev.is_discarded() || !ev.is_object() || ev.value("Type", std::string()) != "network") {
    return std::string(event_json);
  }
  if (overlay_attachment_event(ev)) {
    return std::nullopt;
  }
  if (ev.value("scope", std::string()) != "swarm") {
    return std::string(event_json);
  }
  const std::string action = ev.value("Action", std::string());
  if (action == "update") {
    return std::nullopt;
  }
  if (action == "remove") {
    ev["Action"] = "destroy";
  }
  std::string line = dump(ev);
  if (event_json.ends_with('\n')) {
    line += '\n';
  }
  return line;
}

std::string with_fleet_totals(std::string_view info_json, std::int64_t cpus,
                              std::int64_t memory) {
  auto doc = json::parse(info_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return std::string(info_json);
  }
  doc["NCPU"] = cpus;
  doc["MemTotal"] = memory;
  return dump(doc);
}

std::optional<std::string> filter_event(const Principal& who, std::string_view event_json,
                                        const OwnershipIndex& index) {
  if (who.is_operator()) {
    return std::string(event_json);
  }
  auto ev = json::parse(event_json, nullptr, false);
  if (ev.is_discarded() || !ev.is_object()) {
    return std::nullopt;
  }
  const std::string& t = who.tenant;
  const std::string type = ev.value("Type", std::string());
  json& actor = ev["Actor"];
  if (!actor.is_object()) {
    return std::nullopt;
  }
  const std::string id = actor.value("ID", std::string());
  json& attrs = actor["Attributes"];
  if (!attrs.is_object()) {
    attrs = json::object();
  }
  const std::int64_t time_nano = ev.contains("timeNano") && ev["timeNano"].is_number_integer()
                                     ? ev["timeNano"].get<std::int64_t>()
                                     : 0;
  if (type == "container") {
    const bool mine = owned(attrs, t) || [&] {
      auto c = index.container_by_id(id);
      return c && c->tenant == t;
    }();
    if (!mine) {
      return std::nullopt;
    }
    // A migration's steps on the hosts are not the tenant's; berth's "moved" says it all.
    const auto twin_of = attrs.find(std::string(twin_label));
    if (ev.value("Action", std::string()) != "moved" &&
        index.move_hides(id,
                         twin_of != attrs.end() && twin_of->is_string()
                             ? std::string_view(twin_of->get_ref<const std::string&>())
                             : std::string_view(),
                         time_nano)) {
      return std::nullopt;
    }
    if (const std::string shown = shown_id(attrs); !shown.empty()) {
      actor["ID"] = shown;
      if (ev.contains("id")) {
        ev["id"] = shown;
      }
    }
    for (const char* field : {"name", "oldName"}) {
      if (attrs.contains(field) && attrs[field].is_string()) {
        const std::string stored = attrs[field].get<std::string>();
        const std::string shown = view(t, stored);
        attrs[field] = stored.starts_with("/") ? "/" + shown : shown;
      }
    }
    view_image_field(t, attrs, "image");
    view_image_field(t, ev, "from");
    strip_labels(attrs);
  } else if (type == "network") {
    // The index may learn of the network a moment after this event (create) or have dropped
    // it already (destroy): the stored name's prefix, which only this tenant can produce,
    // decides then.
    auto n = index.network_by_id(id);
    const bool by_name = !n && attrs.contains("name") && attrs["name"].is_string() &&
                         names::tenant_view(t, attrs["name"].get<std::string>()).has_value();
    if (!by_name && (!n || n->tenant != t)) {
      return std::nullopt;
    }
    if (attrs.contains("name") && attrs["name"].is_string()) {
      attrs["name"] = view(t, attrs["name"].get<std::string>());
    }
    if (attrs.contains("container")) {
      auto c = index.container_by_id(attrs["container"].get<std::string>());
      if (!c || c->tenant != t || index.move_hides(c->id, c->twin_of, time_nano)) {
        return std::nullopt;
      }
    }
  } else if (type == "volume") {
    auto v = index.volume(id);
    const bool by_name = !v && names::tenant_view(t, id).has_value();
    if (!by_name && (!v || v->tenant != t)) {
      return std::nullopt;
    }
    actor["ID"] = view(t, id);
    if (ev.contains("id")) {
      ev["id"] = actor["ID"];
    }
  } else if (type == "image") {
    const std::string name = attrs.value("name", std::string());
    auto v = names::tenant_image_view(t, name);
    if (!v) {
      return std::nullopt;
    }
    attrs["name"] = *v;
    strip_labels(attrs);  // image events carry the image's labels, the ownership label included
    if (names::tenant_image_view(t, id)) {
      actor["ID"] = *names::tenant_image_view(t, id);
      if (ev.contains("id")) {
        ev["id"] = actor["ID"];
      }
    }
  } else {
    return std::nullopt;  // daemon, plugin, swarm events are the operator's
  }
  if (ev.contains("status") && ev.contains("id") && type == "container") {
    view_image_field(t, ev, "from");
  }
  std::string out = dump(ev);
  show_ids(out, index.shown_ids(t));
  return out;
}

std::string filter_stats_line(const Principal& who, std::string_view line,
                              const OwnershipIndex* index) {
  if (who.is_operator()) {
    return std::string(line);
  }
  auto doc = nlohmann::json::parse(line, nullptr, false);
  if (!doc.is_object()) {
    return std::string(line);  // dockerd's stats are objects; nothing else names anything
  }
  if (auto it = doc.find("name"); it != doc.end()) {
    std::optional<std::string> view;
    if (it->is_string()) {
      std::string_view stored = it->get_ref<const std::string&>();
      if (stored.starts_with('/')) {
        stored.remove_prefix(1);
      }
      view = names::tenant_view(who.tenant, stored);
    }
    if (view) {
      *it = "/" + *view;
    } else {
      doc.erase(it);
    }
  }
  std::string out = doc.dump();
  if (index != nullptr) {
    show_ids(out, index->shown_ids(who.tenant));
  }
  return out;
}

std::string filter_build_message(const Principal& who, std::string_view line) {
  if (who.is_operator()) {
    return std::string(line);
  }
  std::string out(line);
  const std::string prefix = names::image_prefix(who.tenant);
  for (auto pos = out.find(prefix); pos != std::string::npos; pos = out.find(prefix, pos)) {
    // The stored name up to the end of its repository path, shown as the tenant spells it.
    std::size_t end = pos + prefix.size();
    while (end < out.size() && (std::isalnum(static_cast<unsigned char>(out[end])) ||
                                std::string_view("._-/:@").find(out[end]) != std::string_view::npos)) {
      ++end;
    }
    const auto view = names::tenant_image_view(who.tenant, std::string_view(out).substr(pos, end - pos));
    out.replace(pos, end - pos, view.value_or(""));
    pos += view ? view->size() : 0;
  }
  return out;
}

std::string tenant_error_message(const Principal& who, std::string_view message,
                                 const OwnershipIndex* index) {
  std::string out = filter_build_message(who, message);
  if (who.is_operator()) {
    return out;
  }
  // A name conflict names the container holding the name; it may be the operator's (or, for
  // a name dockerd generated before berth named containers itself, another tenant's).
  static constexpr std::string_view in_use = " is already in use by container \"";
  if (const auto at = out.find(in_use); at != std::string::npos) {
    const auto end = out.find('"', at + in_use.size());
    const std::string holder =
        end == std::string::npos ? std::string() : out.substr(at + in_use.size(),
                                                              end - at - in_use.size());
    const auto owner = index ? index->container_by_id(holder) : std::nullopt;
    if (!owner || owner->tenant != who.tenant) {
      out.replace(at, end == std::string::npos ? out.size() - at : end + 1 - at,
                  " is already in use");
    }
  }
  // "<tenant>_" at the start of a name: after start, '/', '"', space, '(' or ':'.
  const std::string prefix = who.tenant + "_";
  std::size_t pos = 0;
  while ((pos = out.find(prefix, pos)) != std::string::npos) {
    const char before = pos == 0 ? ' ' : out[pos - 1];
    if (before == '/' || before == '"' || before == ' ' || before == '(' || before == ':' ||
        before == '\'') {
      out.erase(pos, prefix.size());
      // One prefix per name: skip the rest of the name ("acme_acme_web" is "acme_web").
      while (pos < out.size() && (std::isalnum(static_cast<unsigned char>(out[pos])) ||
                                  out[pos] == '_' || out[pos] == '.' || out[pos] == '-')) {
        ++pos;
      }
    } else {
      pos += prefix.size();
    }
  }
  if (index != nullptr) {
    show_ids(out, index->shown_ids(who.tenant));
  }
  return out;
}

}  // namespace berth::policy
