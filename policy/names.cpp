#include "policy/names.hpp"

#include <cctype>

#include "policy/vocabulary.hpp"

namespace berth::policy::names {

namespace {

constexpr std::string_view image_suffix = ".berth.local/";

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

}  // namespace

bool is_valid_object_name(std::string_view name) {
  // dockerd: ^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$ (at least two characters).
  if (name.size() < 2 || !is_alnum(name.front()) || name.size() > 200) {
    return false;
  }
  for (char c : name) {
    if (!is_alnum(c) && c != '_' && c != '.' && c != '-') {
      return false;
    }
  }
  return true;
}

std::string stored(std::string_view tenant, std::string_view name) {
  std::string out(tenant);
  out += '_';
  out += name;
  return out;
}

std::optional<std::string> tenant_view(std::string_view tenant, std::string_view stored_name) {
  if (!stored_name.empty() && stored_name.front() == '/') {
    stored_name.remove_prefix(1);
  }
  if (stored_name.size() > tenant.size() + 1 && stored_name.starts_with(tenant) &&
      stored_name[tenant.size()] == '_') {
    std::string view(stored_name.substr(tenant.size() + 1));
    if (view == "bridge") {
      return std::string(default_network_view);
    }
    return view;
  }
  return std::nullopt;
}

bool tenant_view_of_other(std::string_view stored_name) {
  if (!stored_name.empty() && stored_name.front() == '/') {
    stored_name.remove_prefix(1);
  }
  const auto underscore = stored_name.find('_');
  return underscore != std::string_view::npos && underscore + 1 < stored_name.size() &&
         vocabulary::is_valid_tenant_id(stored_name.substr(0, underscore));
}

std::string generated_name(std::uint64_t random) {
  static constexpr std::string_view moods[] = {
      "agile",   "bold",    "brisk",   "calm",    "candid",  "cheery",  "clever",  "cosmic",
      "crisp",   "daring",  "deft",    "eager",   "earnest", "fluent",  "frank",   "gentle",
      "glad",    "hardy",   "humble",  "jolly",   "keen",    "lively",  "lucid",   "mellow",
      "merry",   "nimble",  "noble",   "placid",  "plucky",  "poised",  "quiet",   "rapid",
      "serene",  "sharp",   "sleek",   "snappy",  "steady",  "sunny",   "swift",   "tidy",
      "upbeat",  "vivid",   "warm",    "wise",    "witty",   "zesty",   "amber",   "azure"};
  static constexpr std::string_view minds[] = {
      "ada",      "babbage", "bohr",     "boole",    "cantor",   "curie",    "darwin",
      "dijkstra", "euler",   "faraday",  "fermi",    "feynman",  "gauss",    "germain",
      "hamilton", "hopper",  "hypatia",  "kepler",   "knuth",    "lamarr",   "leibniz",
      "lovelace", "maxwell", "meitner",  "mendel",   "newton",   "noether",  "pascal",
      "planck",   "ramanujan", "riemann", "shannon", "somerville", "tesla",  "turing",
      "volta",    "wiles",   "wu",       "yalow",    "zuse"};
  constexpr std::uint64_t a = std::size(moods);
  constexpr std::uint64_t b = std::size(minds);
  std::string out(moods[random % a]);
  out += '_';
  out += minds[(random / a) % b];
  return out;
}

std::string default_network(std::string_view tenant) { return stored(tenant, "bridge"); }

std::string image_prefix(std::string_view tenant) {
  return std::string(tenant) + std::string(image_suffix);
}

std::string ImageRef::str() const {
  std::string out = name;
  if (!tag.empty()) {
    out += ':';
    out += tag;
  }
  if (!digest.empty()) {
    out += '@';
    out += digest;
  }
  return out;
}

std::optional<ImageRef> parse_image_ref(std::string_view text) {
  if (text.empty() || text.size() > 512) {
    return std::nullopt;
  }
  ImageRef ref;
  if (const auto at = text.find('@'); at != std::string_view::npos) {
    ref.digest = std::string(text.substr(at + 1));
    text = text.substr(0, at);
    if (!ref.digest.starts_with("sha256:") || ref.digest.size() != 71) {
      return std::nullopt;
    }
  }
  const auto slash = text.rfind('/');
  const auto colon = text.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    ref.tag = std::string(text.substr(colon + 1));
    text = text.substr(0, colon);
    if (ref.tag.empty() || ref.tag.size() > 128) {
      return std::nullopt;
    }
    for (char c : ref.tag) {
      if (!is_alnum(c) && c != '_' && c != '.' && c != '-') {
        return std::nullopt;
      }
    }
  }
  if (text.empty()) {
    return std::nullopt;
  }
  for (char c : text) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                    c == '-' || c == '/' || c == ':' || (c >= 'A' && c <= 'Z');
    if (!ok) {
      return std::nullopt;
    }
  }
  std::string name(text);
  for (std::string_view p : {"docker.io/", "index.docker.io/"}) {
    if (name.starts_with(p)) {
      name.erase(0, p.size());
      break;
    }
  }
  if (name.starts_with("library/") && name.find('/', 8) == std::string::npos) {
    name.erase(0, 8);
  }
  // Only the registry host may contain upper case or a port colon.
  const auto first_slash = name.find('/');
  const std::string_view path =
      first_slash == std::string::npos ? std::string_view(name)
                                       : std::string_view(name).substr(first_slash + 1);
  for (char c : path) {
    if ((c >= 'A' && c <= 'Z') || c == ':') {
      return std::nullopt;
    }
  }
  if (first_slash == std::string::npos) {
    for (char c : name) {
      if ((c >= 'A' && c <= 'Z') || c == ':') {
        return std::nullopt;
      }
    }
  }
  ref.name = std::move(name);
  if (ref.tag.empty() && ref.digest.empty()) {
    ref.tag = "latest";
  }
  return ref;
}

namespace {

// A registry's port cannot stand in a repository path ("acme.berth.local/host:5000/app" is no
// reference), so a stored name spells it "host__5000": a path component may hold "__", a host
// name may not. Host names are stored in lower case (a path has no upper case).
constexpr std::string_view port_mark = "__";

bool is_domain(std::string_view first) {
  return first.find('.') != std::string_view::npos || first.find(':') != std::string_view::npos ||
         first == "localhost" || first.starts_with("localhost:");
}

}  // namespace

bool has_tag_separator(std::string_view text) {
  const auto slash = text.rfind('/');
  return text.find(':', slash == std::string_view::npos ? 0 : slash) != std::string_view::npos;
}

std::string stored_image(std::string_view tenant, const ImageRef& ref) {
  std::string name = ref.name;
  const auto slash = name.find('/');
  if (slash != std::string::npos && is_domain(std::string_view(name).substr(0, slash))) {
    for (std::size_t i = 0; i < slash; ++i) {
      name[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
    }
    if (const auto colon = name.find(':'); colon < slash) {
      name.replace(colon, 1, port_mark);
    }
  }
  ImageRef stored = ref;
  stored.name = std::move(name);
  return image_prefix(tenant) + stored.str();
}

std::optional<std::string> tenant_image_view(std::string_view tenant,
                                             std::string_view stored_ref) {
  const std::string prefix = image_prefix(tenant);
  if (!stored_ref.starts_with(prefix) || stored_ref.size() <= prefix.size()) {
    return std::nullopt;
  }
  std::string view(stored_ref.substr(prefix.size()));
  const auto slash = view.find('/');
  const auto mark = view.find(port_mark);
  if (slash != std::string::npos && mark < slash) {
    const std::string_view host = std::string_view(view).substr(0, mark);
    const std::string_view port = std::string_view(view).substr(mark + 2, slash - mark - 2);
    const bool digits = !port.empty() && port.find_first_not_of("0123456789") == std::string_view::npos;
    if (digits && is_domain(host)) {
      view.replace(mark, port_mark.size(), ":");
    }
  }
  return view;
}

std::string registry_of(const ImageRef& ref) {
  const auto slash = ref.name.find('/');
  if (slash != std::string::npos && is_domain(std::string_view(ref.name).substr(0, slash))) {
    return ref.name.substr(0, slash);
  }
  return "docker.io";
}

bool is_tenant_image_repo(std::string_view stored_ref) {
  const auto slash = stored_ref.find('/');
  if (slash == std::string_view::npos) {
    return false;
  }
  const std::string_view host = stored_ref.substr(0, slash + 1);
  if (!host.ends_with(image_suffix)) {
    return false;
  }
  return vocabulary::is_valid_tenant_id(host.substr(0, host.size() - image_suffix.size()));
}

}  // namespace berth::policy::names
