#pragma once
// Image archives, the tar streams of `docker save` and `docker load`, in a tenant's namespace.
//
// docker load (POST /images/load). dockerd extracts the archive into a temporary directory,
// then reads manifest.json: for each image, its configuration file (whose sha256 is the image
// id), its layers, and the names it gets (RepoTags). Without manifest.json it falls back to the
// legacy format, which names images from a "repositories" file. LoadArchiveFilter judges the
// archive as it streams to dockerd (TarBodyFilter) and writes manifest.json itself, last:
//   - manifest.json must be one regular file at the top; it is decoded as Go decodes it and
//     rewritten with only Config, RepoTags and Layers. Every name becomes the tenant's stored
//     name, as `docker tag` would store it; an image with no name is refused (it would belong to
//     no tenant). Parent (a link to an image the tenant may not see) is dropped, LayerSources
//     (foreign layers, fetched from URLs) refused. Archives without manifest.json are refused,
//     and "repositories" is not forwarded: dockerd names images from manifest.json alone.
//   - each image's configuration must be a regular file of the archive that berth read whole
//     (up to config_limit) and decoded as dockerd decodes it: no ONBUILD triggers (they would
//     run unjudged in a later build) and no label under berth's reserved prefix but the
//     ownership label, which every image built through berth carries (see README, Known gaps,
//     for what it means once such an image has lost its names).
//   - no path is written twice (a later entry would replace a judged configuration), no
//     directory above a path written is replaced by a file or link (a link there would send
//     dockerd to another configuration), nothing through a symbolic link, and manifest.json is
//     no link.
// Layers are data, applied by dockerd's layer store as a pull's would be.
//
// docker save (GET /images/get, GET /images/{name}/get). dockerd writes the names it was asked
// for into manifest.json and "repositories"; SaveArchiveFilter rewrites those two files with
// the tenant's own spelling, so that a tenant's archive loads anywhere under the names it knows.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "policy/decision.hpp"
#include "policy/tar_filter.hpp"
#include "policy/tar_stream.hpp"

namespace berth::policy {

/// The largest image configuration (and manifest.json) berth reads whole.
inline constexpr std::size_t image_config_limit = 4 * 1024 * 1024;

/// Why dockerd's decoding of an image configuration would make it unfit for a tenant; nullopt
/// when it is fit. Unfit: ONBUILD triggers, a label under berth's reserved prefix other than
/// the ownership label itself (every image built through berth carries it, and such images
/// are pushed, saved and brought back, by their builder or by another tenant), and text that
/// is no configuration dockerd can read.
[[nodiscard]] std::optional<std::string> judge_image_config(std::string_view text);

/// manifest.json as dockerd will read it, rewritten for `tenant`. `config_verdicts` maps each
/// regular file berth read whole (cleaned path) to judge_image_config's answer.
[[nodiscard]] std::expected<std::string, Decision> judge_load_manifest(
    std::string_view tenant, std::string_view manifest,
    const std::map<std::string, std::optional<std::string>, std::less<>>& config_verdicts);

class LoadArchiveFilter final : public TarBodyFilter {
 public:
  explicit LoadArchiveFilter(std::string tenant);

 private:
  enum class Hold { pass, keep_copy, manifest, drop };
  std::expected<void, Decision> on_entry(const tar::Entry& entry, std::string& out) override;
  void on_data(std::string_view data, std::string& out) override;
  std::expected<void, Decision> on_entry_end(const OwnershipIndex& index,
                                             std::string& out) override;
  std::expected<void, Decision> on_finish(std::string& out) override;

  std::string tenant_;
  std::set<std::string, std::less<>> paths_;  // every path written
  std::set<std::string, std::less<>> parents_;  // every directory above a path written
  std::size_t path_bytes_ = 0;
  Hold hold_ = Hold::pass;
  tar::Entry current_;
  std::string held_;  // the current entry's data, when read whole
  std::optional<std::string> manifest_;
  std::map<std::string, std::optional<std::string>, std::less<>> configs_;
};

/// manifest.json of a save, with each name as `tenant` knows it (operator: as it is).
[[nodiscard]] std::expected<std::string, std::string> tenant_save_manifest(std::string_view tenant,
                                                                           std::string_view text);
/// "repositories" of a save, the same way.
[[nodiscard]] std::expected<std::string, std::string> tenant_save_repositories(
    std::string_view tenant, std::string_view text);

class SaveArchiveFilter {
 public:
  explicit SaveArchiveFilter(std::string tenant) : tenant_(std::move(tenant)) {}

  /// Consumes dockerd's bytes; returns those to send the tenant now. An error means dockerd's
  /// archive could not be read (the stream must be cut).
  [[nodiscard]] std::expected<std::string, std::string> feed(std::string_view bytes);
  /// dockerd's answer ended: the end-of-archive marker, or an error for a cut archive.
  [[nodiscard]] std::expected<std::string, std::string> finish();

 private:
  std::expected<void, std::string> on_entry_end(std::string& out);

  std::string tenant_;
  tar::Reader reader_;
  bool holding_ = false;
  tar::Entry held_entry_;
  std::string held_;
  std::uint64_t passing_size_ = 0;
  bool failed_ = false;
};

}  // namespace berth::policy
