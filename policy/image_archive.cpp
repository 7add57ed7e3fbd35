#include "policy/image_archive.hpp"

#include <algorithm>
#include <cctype>
#include <utility>

#include <nlohmann/json.hpp>

#include "policy/go_json.hpp"
#include "policy/names.hpp"
#include "policy/vocabulary.hpp"

namespace berth::policy {

using json = nlohmann::json;

namespace {

// Paths remembered to refuse a second entry at one; beyond these an archive is refused rather
// than held in memory (`docker save` writes four entries per layer and two per image).
constexpr std::size_t max_paths = 65536;
constexpr std::size_t max_path_bytes = 8 * 1024 * 1024;

std::string dump(const json& doc) { return doc.dump(-1, ' ', false, json::error_handler_t::replace); }

// What dockerd reads of an image configuration that matters here (image.Image: "config" is a
// *container.Config).
const go::Type& config_type() {
  static const go::TypePtr type = go::struct_of(
      {{"config", go::pointer(go::struct_of({{"Labels", go::map_of(go::string())},
                                             {"OnBuild", go::array_of(go::string())}}))}});
  return *type;
}

// image/tarexport's manifestItem.
const go::Type& manifest_type() {
  static const go::TypePtr type = go::array_of(go::struct_of({{"Config", go::string()},
                                                              {"RepoTags", go::array_of(go::string())},
                                                              {"Layers", go::array_of(go::string())},
                                                              {"Parent", go::string()},
                                                              {"LayerSources", go::map_of(go::any())}}));
  return *type;
}

bool reserved_label(std::string_view key) {
  const auto prefix = vocabulary::reserved_label_prefix;
  if (key.size() < prefix.size()) {
    return false;
  }
  return std::equal(prefix.begin(), prefix.end(), key.begin(), [](char a, char b) {
    return a == std::tolower(static_cast<unsigned char>(b));
  });
}

Decision refuse_load(std::string message, std::string rule = "image.load") {
  return Decision::deny(403, "berth: " + std::move(message), std::move(rule));
}

// A path of manifest.json as dockerd opens it under its temporary directory, in the archive's
// cleaned spelling; nullopt for one that leaves the directory.
std::optional<std::string> archive_path(std::string_view path) {
  while (path.starts_with('/')) {
    path.remove_prefix(1);
  }
  std::string cleaned = tar::clean_path(path);
  if (cleaned == ".." || cleaned.starts_with("../")) {
    return std::nullopt;
  }
  return cleaned;
}

// One RepoTags entry, stored in the tenant's namespace. dockerd takes only "name:tag".
std::expected<std::string, Decision> stored_tag(std::string_view tenant, const std::string& tag) {
  auto ref = names::parse_image_ref(tag);
  if (!ref || !names::has_tag_separator(tag) || tag.find('@') != std::string::npos) {
    return std::unexpected(Decision::deny(400, "invalid tag \"" + tag + "\" in manifest.json",
                                          "image.load_name"));
  }
  return names::stored_image(tenant, *ref);
}

std::expected<json, Decision> judge_manifest_item(
    std::string_view tenant, const json& item,
    const std::map<std::string, std::optional<std::string>, std::less<>>& config_verdicts) {
  const std::string config = item.value("Config", std::string());
  const auto path = archive_path(config);
  const auto verdict = path ? config_verdicts.find(*path) : config_verdicts.end();
  if (verdict == config_verdicts.end()) {
    return std::unexpected(refuse_load(
        "the image configuration '" + config +
        "' named in manifest.json is not a regular file of the archive berth could read "
        "(JSON, up to 4 MiB)"));
  }
  if (verdict->second) {
    return std::unexpected(
        refuse_load("the image configuration '" + config + "' " + *verdict->second));
  }
  if (item.contains("LayerSources") && !item["LayerSources"].empty()) {
    return std::unexpected(refuse_load(
        "images with foreign layers (LayerSources, fetched from URLs) are not loaded"));
  }
  const json tags = item.value("RepoTags", json::array());
  if (tags.empty()) {
    return std::unexpected(refuse_load(
        "an image in the archive has no name; a tenant's images are known by their names "
        "(save it by name, not by id)",
        "image.load_name"));
  }
  json out = json::object();
  out["Config"] = config;
  out["RepoTags"] = json::array();
  for (const auto& t : tags) {
    auto stored = stored_tag(tenant, t.is_string() ? t.get<std::string>() : std::string());
    if (!stored) {
      return std::unexpected(std::move(stored.error()));
    }
    out["RepoTags"].push_back(std::move(*stored));
  }
  out["Layers"] = item.value("Layers", json::array());
  return out;
}

}  // namespace

std::optional<std::string> judge_image_config(std::string_view text) {
  auto doc = go::decode(text, config_type());
  if (!doc || !doc->is_object()) {
    return "is not an image configuration dockerd can read" +
           (doc ? std::string() : " (" + doc.error() + ")");
  }
  const json& config = doc->value("config", json());
  if (!config.is_object()) {
    return std::nullopt;
  }
  if (const json& onbuild = config.value("OnBuild", json()); onbuild.is_array() && !onbuild.empty()) {
    return "has ONBUILD triggers, which are not available to tenants";
  }
  if (const json& labels = config.value("Labels", json()); labels.is_object()) {
    for (const auto& [key, value] : labels.items()) {
      // The ownership label and berth.id are set by berth on every container made from the
      // image whatever the image says (an image committed from a container carries both).
      if (reserved_label(key) && key != vocabulary::tenant_label &&
          key != vocabulary::shown_id_label) {
        return "carries the label '" + key + "'; labels beginning with '" +
               std::string(vocabulary::reserved_label_prefix) + "' are reserved";
      }
    }
  }
  return std::nullopt;
}

std::expected<std::string, Decision> judge_load_manifest(
    std::string_view tenant, std::string_view manifest,
    const std::map<std::string, std::optional<std::string>, std::less<>>& config_verdicts) {
  auto doc = go::decode(manifest, manifest_type());
  if (!doc || !doc->is_array()) {
    return std::unexpected(Decision::deny(
        400, "berth: manifest.json of the image archive cannot be read: " +
                 (doc ? std::string("not a list of images") : doc.error()),
        "image.load"));
  }
  json out = json::array();
  for (const auto& raw : *doc) {
    // null decodes as Go's zero manifestItem.
    auto judged =
        judge_manifest_item(tenant, raw.is_object() ? raw : json::object(), config_verdicts);
    if (!judged) {
      return std::unexpected(std::move(judged.error()));
    }
    out.push_back(std::move(*judged));
  }
  return dump(out);
}

// ---- docker load ----------------------------------------------------------------------------

LoadArchiveFilter::LoadArchiveFilter(std::string tenant)
    : TarBodyFilter("image archive", "image.load", "image.load_compressed"),
      tenant_(std::move(tenant)) {}

std::expected<void, Decision> LoadArchiveFilter::on_entry(const tar::Entry& e, std::string& out) {
  path_bytes_ += e.path.size();
  if (paths_.size() >= max_paths || path_bytes_ > max_path_bytes) {
    return refuse(refusal("the image archive has more entries than berth reads (65536)"));
  }
  if (!paths_.insert(e.path).second && e.path != ".") {
    // Untar replaces what is there: a second entry could replace a configuration judged.
    return refuse(refusal("the image archive has two entries at '" + e.path + "'"));
  }
  if (e.type != tar::Type::directory && parents_.contains(e.path)) {
    // Untar removes the directory and puts the link or file in its place: a configuration
    // judged below it would be read through the link.
    return refuse(refusal("the image archive replaces the directory '" + e.path +
                          "', which holds entries written earlier, with a link or file"));
  }
  for (auto slash = e.path.find('/'); slash != std::string::npos;
       slash = e.path.find('/', slash + 1)) {
    if (parents_.insert(e.path.substr(0, slash)).second) {
      path_bytes_ += slash;
    }
  }
  current_ = e;
  held_.clear();
  if (e.path == "manifest.json") {
    if (e.type != tar::Type::regular || e.size > image_config_limit) {
      return refuse(refusal("manifest.json in the image archive must be a regular file of at most 4 MiB"));
    }
    hold_ = Hold::manifest;
    return {};
  }
  if (e.path == "repositories" && e.type == tar::Type::regular) {
    hold_ = Hold::drop;  // the legacy names; dockerd reads manifest.json's
    return {};
  }
  hold_ = e.type == tar::Type::regular && e.size <= image_config_limit ? Hold::keep_copy
                                                                        : Hold::pass;
  return emit_header(e, out);
}

void LoadArchiveFilter::on_data(std::string_view data, std::string& out) {
  if (hold_ == Hold::pass || hold_ == Hold::keep_copy) {
    out.append(data);
  }
  if (hold_ == Hold::manifest || hold_ == Hold::keep_copy) {
    held_.append(data);
  }
}

std::expected<void, Decision> LoadArchiveFilter::on_entry_end(const OwnershipIndex&,
                                                              std::string& out) {
  switch (hold_) {
    case Hold::manifest:
      manifest_ = std::move(held_);
      break;
    case Hold::keep_copy:
      if (const auto first = held_.find_first_not_of(" \t\r\n");
          first != std::string::npos && held_[first] == '{') {
        configs_.emplace(current_.path, judge_image_config(held_));
      }
      tar::append_padding(out, current_.size);
      break;
    case Hold::pass:
      tar::append_padding(out, current_.size);
      break;
    case Hold::drop:
      break;
  }
  held_.clear();
  hold_ = Hold::pass;
  return {};
}

std::expected<void, Decision> LoadArchiveFilter::on_finish(std::string& out) {
  if (!manifest_) {
    return std::unexpected(refusal(
        "the image archive has no manifest.json; archives in the legacy format (Docker before "
        "1.10) are not loaded"));
  }
  auto judged = judge_load_manifest(tenant_, *manifest_, configs_);
  if (!judged) {
    return std::unexpected(std::move(judged.error()));
  }
  tar::Entry manifest;
  manifest.path = "manifest.json";
  manifest.mode = 0644;
  manifest.size = judged->size();
  if (auto r = emit_header(manifest, out); !r) {
    return r;
  }
  out += *judged;
  tar::append_padding(out, judged->size());
  return {};
}

// ---- docker save ----------------------------------------------------------------------------

std::expected<std::string, std::string> tenant_save_manifest(std::string_view tenant,
                                                             std::string_view text) {
  auto doc = json::parse(text, nullptr, false);
  if (!doc.is_array()) {
    return std::unexpected("manifest.json is not a list of images");
  }
  for (auto& item : doc) {
    if (!item.is_object() || !item.contains("RepoTags") || !item["RepoTags"].is_array()) {
      continue;
    }
    for (auto& t : item["RepoTags"]) {
      if (t.is_string()) {
        t = names::tenant_image_view(tenant, t.get<std::string>()).value_or(t.get<std::string>());
      }
    }
  }
  return dump(doc);
}

std::expected<std::string, std::string> tenant_save_repositories(std::string_view tenant,
                                                                 std::string_view text) {
  auto doc = json::parse(text, nullptr, false);
  if (!doc.is_object()) {
    return std::unexpected("repositories is not an object");
  }
  json out = json::object();
  for (auto& [repo, tags] : doc.items()) {
    out[names::tenant_image_view(tenant, repo).value_or(repo)] = std::move(tags);
  }
  return dump(out);
}

std::expected<std::string, std::string> SaveArchiveFilter::feed(std::string_view bytes) {
  if (failed_) {
    return std::unexpected("the archive could not be read");
  }
  std::string out;
  out.reserve(bytes.size() + 1024);
  for (;;) {
    auto step = reader_.next(bytes);
    if (!step) {
      failed_ = true;
      return std::unexpected(step.error());
    }
    switch (step->event) {
      case tar::Reader::Event::need_more:
        return out;
      case tar::Reader::Event::entry: {
        const tar::Entry& e = reader_.entry();
        holding_ = !tenant_.empty() && e.type == tar::Type::regular &&
                   e.size <= image_config_limit &&
                   (e.path == "manifest.json" || e.path == "repositories");
        if (holding_) {
          held_entry_ = e;
          held_.clear();
        } else {
          tar::append_header(out, e);
          passing_size_ = e.size;
        }
        break;
      }
      case tar::Reader::Event::data:
        (holding_ ? held_ : out).append(step->data);
        break;
      case tar::Reader::Event::entry_end:
        if (auto r = on_entry_end(out); !r) {
          failed_ = true;
          return std::unexpected(r.error());
        }
        break;
      case tar::Reader::Event::end:
        break;
    }
  }
}

std::expected<void, std::string> SaveArchiveFilter::on_entry_end(std::string& out) {
  if (!holding_) {
    tar::append_padding(out, passing_size_);
    return {};
  }
  holding_ = false;
  auto text = held_entry_.path == "manifest.json" ? tenant_save_manifest(tenant_, held_)
                                                  : tenant_save_repositories(tenant_, held_);
  if (!text) {
    return std::unexpected(text.error());
  }
  held_entry_.size = text->size();
  tar::append_header(out, held_entry_);
  out += *text;
  tar::append_padding(out, text->size());
  held_.clear();
  return {};
}

std::expected<std::string, std::string> SaveArchiveFilter::finish() {
  if (failed_) {
    return std::unexpected("the archive could not be read");
  }
  if (auto r = reader_.finish(); !r) {
    return std::unexpected(r.error());
  }
  std::string out;
  tar::append_end(out);
  return out;
}

}  // namespace berth::policy
