#pragma once
// A request body that dockerd extracts as a tar archive: a build context (POST /build) or an
// image archive (POST /images/load). Both are read by the strict reader (policy/tar_stream.hpp)
// and re-emitted with headers berth writes, so dockerd extracts exactly the entry list berth
// judged; what each entry may be is the subclass's judgment.
//
// dockerd sniffs both for compression (pkg/archive DetectCompression). gzip is inflated a
// bounded piece at a time and judged like a plain archive (forwarded plain); bzip2, xz and
// zstd are refused by name. The end-of-archive marker is written only by finish(), after the
// subclass's last judgment: until then dockerd holds an incomplete archive, and a refusal cuts
// the request before it is whole, so dockerd acts on nothing.

#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "policy/decision.hpp"
#include "policy/ownership_index.hpp"
#include "policy/tar_stream.hpp"

namespace berth::policy {

class TarBodyFilter {
 public:
  virtual ~TarBodyFilter();
  TarBodyFilter(const TarBodyFilter&) = delete;
  TarBodyFilter& operator=(const TarBodyFilter&) = delete;

  /// Consumes body bytes; returns the bytes to forward now. `index` resolves image references.
  /// After a refusal every call refuses.
  [[nodiscard]] std::expected<std::string, Decision> feed(std::string_view bytes,
                                                          const OwnershipIndex& index);
  /// The body ended: refuses an archive that stopped mid-entry or that the subclass refuses
  /// as a whole; otherwise what the subclass held back, then the end-of-archive marker.
  [[nodiscard]] std::expected<std::string, Decision> finish();
  /// A gzip-compressed body inflates a bounded piece per feed(): true while compressed bytes
  /// are left, to be drained with feed({}) before finish().
  [[nodiscard]] bool pending() const noexcept;

 protected:
  /// `what` names the archive in refusals ("build context"); `rule` is the rule id of
  /// refusals of its form, `compressed_rule` that of a compression berth does not read.
  TarBodyFilter(std::string what, std::string rule, std::string compressed_rule);
  TarBodyFilter(TarBodyFilter&&) noexcept;
  TarBodyFilter& operator=(TarBodyFilter&&) noexcept;

  /// A 403 refusal: "berth: <message>", with `rule` (the archive's own rule when empty).
  [[nodiscard]] Decision refusal(std::string message, std::string rule = {}) const;
  /// Makes `decision` final and returns it.
  std::unexpected<Decision> refuse(Decision decision);
  [[nodiscard]] bool refused() const noexcept { return refused_.has_value(); }
  [[nodiscard]] const std::string& what() const noexcept { return what_; }

  /// Appends berth's header for `entry`; refuses a first header dockerd would sniff as
  /// compressed data.
  std::expected<void, Decision> emit_header(const tar::Entry& entry, std::string& out);
  /// True when `path` lies below a symbolic link of the archive (Untar would write through it).
  [[nodiscard]] bool below_symlink(std::string_view path) const;
  [[nodiscard]] bool is_symlink(std::string_view path) const;
  /// The checks every entry passes before the subclass sees it: nothing written through a
  /// symbolic link, no hard link to one; symbolic links remembered (up to a bound).
  std::expected<void, Decision> check_links(const tar::Entry& entry);

  virtual std::expected<void, Decision> on_entry(const tar::Entry& entry, std::string& out) = 0;
  virtual void on_data(std::string_view data, std::string& out) = 0;
  virtual std::expected<void, Decision> on_entry_end(const OwnershipIndex& index,
                                                     std::string& out) = 0;
  /// The archive is complete and well formed: the last judgment, and anything held back.
  virtual std::expected<void, Decision> on_finish(std::string& out) = 0;

 private:
  class Gunzip;
  static constexpr std::size_t gunzip_piece = 256 * 1024;
  std::expected<std::string, Decision> feed_plain(std::string_view bytes,
                                                  const OwnershipIndex& index);
  std::expected<void, Decision> check_magic();

  std::string what_;
  std::string rule_;
  std::string compressed_rule_;
  std::optional<Decision> refused_;  // sticky
  tar::Reader reader_;
  std::string magic_;               // the first bytes, to recognise compressed bodies
  std::unique_ptr<Gunzip> gunzip_;  // a gzip-compressed body
  bool magic_checked_ = false;
  bool wrote_header_ = false;
  std::set<std::string, std::less<>> symlinks_;
  std::size_t symlink_bytes_ = 0;
};

}  // namespace berth::policy
