#include "policy/tar_filter.hpp"

#include <utility>

#include <zlib.h>

namespace berth::policy {

// gzip, as Go's compress/gzip reads it (several members one after the other), inflated a
// bounded piece at a time: a small compressed body may stand for a huge one, and berth holds
// no more of it than one piece.
class TarBodyFilter::Gunzip {
 public:
  Gunzip() {
    if (inflateInit2(&z_, 15 + 16) != Z_OK) {
      failed_ = true;
    }
  }
  ~Gunzip() { inflateEnd(&z_); }
  Gunzip(const Gunzip&) = delete;
  Gunzip& operator=(const Gunzip&) = delete;

  void push(std::string_view bytes) {
    input_.erase(0, consumed_);
    consumed_ = 0;
    input_.append(bytes);
  }
  [[nodiscard]] bool pending() const noexcept { return !failed_ && consumed_ < input_.size(); }
  [[nodiscard]] bool ended() const noexcept { return ended_ && consumed_ == input_.size(); }

  /// Up to `limit` bytes of inflated data; an error for data Go's reader refuses.
  std::expected<std::string, std::string> inflate_some(std::size_t limit) {
    std::string out(limit, '\0');
    std::size_t produced = 0;
    while (!failed_ && consumed_ < input_.size() && produced < limit) {
      if (ended_) {
        // Another member follows (Go's multistream reading).
        inflateReset(&z_);
        ended_ = false;
      }
      z_.next_in = reinterpret_cast<Bytef*>(input_.data() + consumed_);
      z_.avail_in = static_cast<uInt>(input_.size() - consumed_);
      z_.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
      z_.avail_out = static_cast<uInt>(limit - produced);
      const int rc = inflate(&z_, Z_NO_FLUSH);
      consumed_ = input_.size() - z_.avail_in;
      produced = limit - z_.avail_out;
      if (rc == Z_STREAM_END) {
        ended_ = true;
      } else if (rc != Z_OK && rc != Z_BUF_ERROR) {
        failed_ = true;
        return std::unexpected(std::string("gzip: ") + (z_.msg != nullptr ? z_.msg : "invalid data"));
      } else if (rc == Z_BUF_ERROR && z_.avail_in == 0) {
        break;
      }
    }
    out.resize(produced);
    return out;
  }

 private:
  z_stream z_{};
  std::string input_;
  std::size_t consumed_ = 0;
  bool ended_ = false;
  bool failed_ = false;
};

namespace {

// Symbolic links remembered to refuse entries written through them; beyond these an archive
// is refused rather than held in memory.
constexpr std::size_t max_symlinks = 65536;
constexpr std::size_t max_symlink_bytes = 4 * 1024 * 1024;

using namespace std::string_view_literals;

// dockerd's DetectCompression, for what berth does not inflate.
bool other_compression(std::string_view head) {
  return head.starts_with("\x1f\x8b"sv) || head.starts_with("BZh"sv) ||
         head.starts_with("\xfd"
                          "7zXZ\0"sv) ||
         head.starts_with("\x28\xb5\x2f\xfd"sv);
}

}  // namespace

TarBodyFilter::TarBodyFilter(std::string what, std::string rule, std::string compressed_rule)
    : what_(std::move(what)), rule_(std::move(rule)), compressed_rule_(std::move(compressed_rule)) {}
TarBodyFilter::~TarBodyFilter() = default;
TarBodyFilter::TarBodyFilter(TarBodyFilter&&) noexcept = default;
TarBodyFilter& TarBodyFilter::operator=(TarBodyFilter&&) noexcept = default;

Decision TarBodyFilter::refusal(std::string message, std::string rule) const {
  return Decision::deny(403, "berth: " + std::move(message), rule.empty() ? rule_ : std::move(rule));
}

std::unexpected<Decision> TarBodyFilter::refuse(Decision decision) {
  refused_ = decision;
  return std::unexpected(std::move(decision));
}

bool TarBodyFilter::is_symlink(std::string_view path) const { return symlinks_.contains(path); }

bool TarBodyFilter::below_symlink(std::string_view path) const {
  if (symlinks_.empty()) {
    return false;
  }
  for (auto slash = path.find('/'); slash != std::string_view::npos;
       slash = path.find('/', slash + 1)) {
    if (symlinks_.contains(path.substr(0, slash))) {
      return true;
    }
  }
  return false;
}

std::expected<void, Decision> TarBodyFilter::check_links(const tar::Entry& e) {
  // Untar writes each entry at its path as the kernel resolves it: a symbolic link earlier in
  // the archive redirects later entries (a link "x" -> "." and an entry "x/Dockerfile" write
  // the Dockerfile dockerd reads). Test: "a symbolic link cannot redirect a later entry onto the
  // Dockerfile".
  if (below_symlink(e.path)) {
    return refuse(
        refusal("the " + what_ + " writes '" + e.path + "' through a symbolic link it created earlier"));
  }
  if (e.type == tar::Type::hardlink && (symlinks_.contains(e.link) || below_symlink(e.link))) {
    // A hard link to a symbolic link is another symbolic link (test: "a hard link to a
    // symbolic link is refused: it is another symbolic link").
    return refuse(refusal("the " + what_ + " has a hard link to a symbolic link"));
  }
  if (e.type == tar::Type::symlink) {
    symlink_bytes_ += e.path.size();
    if (symlinks_.size() >= max_symlinks || symlink_bytes_ > max_symlink_bytes) {
      return refuse(
          refusal("the " + what_ + " has more symbolic links than berth follows (65536)"));
    }
    symlinks_.insert(e.path);
  }
  return {};
}

std::expected<void, Decision> TarBodyFilter::check_magic() {
  magic_checked_ = true;
  // gzip is "\x1f\x8b\x08" (deflate), which berth inflates and judges like any archive; the
  // rest it does not read.
  if (std::string_view(magic_).starts_with("\x1f\x8b\x08"sv)) {
    gunzip_ = std::make_unique<Gunzip>();
    return {};
  }
  if (other_compression(magic_)) {
    return refuse(refusal("only gzip-compressed " + what_ +
                          "s are judged; send it uncompressed or compressed with gzip",
                          compressed_rule_));
  }
  return {};
}

std::expected<void, Decision> TarBodyFilter::emit_header(const tar::Entry& entry,
                                                         std::string& out) {
  const std::size_t at = out.size();
  tar::append_header(out, entry);
  if (!wrote_header_) {
    wrote_header_ = true;
    // dockerd sniffs the first bytes it reads for gzip, bzip2 and xz; berth's first header
    // starts with the first entry's name (test: "a first entry whose name dockerd would take
    // for compressed data is refused").
    if (other_compression(std::string_view(out).substr(at, 6))) {
      return refuse(refusal("the " + what_ +
                            "'s first entry has a name dockerd would take for compressed data; "
                            "put another entry first"));
    }
  }
  return {};
}

bool TarBodyFilter::pending() const noexcept { return gunzip_ && gunzip_->pending(); }

std::expected<std::string, Decision> TarBodyFilter::feed(std::string_view bytes,
                                                         const OwnershipIndex& index) {
  if (refused_) {
    return std::unexpected(*refused_);
  }
  std::string first;
  if (!magic_checked_) {
    // Held until dockerd's sniffing of the first bytes can be repeated: compressed or not.
    magic_.append(bytes);
    if (magic_.size() < 6) {
      return std::string();
    }
    if (auto r = check_magic(); !r) {
      return std::unexpected(std::move(r.error()));
    }
    first = std::move(magic_);
    magic_ = first.substr(0, 6);
    bytes = first;
  }
  if (!gunzip_) {
    return feed_plain(bytes, index);
  }
  gunzip_->push(bytes);
  auto plain = gunzip_->inflate_some(gunzip_piece);
  if (!plain) {
    return refuse(refusal("the compressed " + what_ + " is not valid gzip: " + plain.error()));
  }
  return feed_plain(*plain, index);
}

std::expected<std::string, Decision> TarBodyFilter::feed_plain(std::string_view bytes,
                                                               const OwnershipIndex& index) {
  std::string out;
  out.reserve(bytes.size() + 2048);
  std::string_view rest = bytes;
  for (;;) {
    auto step = reader_.next(rest);
    if (!step) {
      return refuse(refusal(step.error()));
    }
    switch (step->event) {
      case tar::Reader::Event::need_more:
        return out;
      case tar::Reader::Event::entry:
        if (auto r = check_links(reader_.entry()); !r) {
          return std::unexpected(std::move(r.error()));
        }
        if (auto r = on_entry(reader_.entry(), out); !r) {
          return std::unexpected(std::move(r.error()));
        }
        break;
      case tar::Reader::Event::data:
        on_data(step->data, out);
        break;
      case tar::Reader::Event::entry_end:
        if (auto r = on_entry_end(index, out); !r) {
          return std::unexpected(std::move(r.error()));
        }
        break;
      case tar::Reader::Event::end:
        break;
    }
  }
}

std::expected<std::string, Decision> TarBodyFilter::finish() {
  if (refused_) {
    return std::unexpected(*refused_);
  }
  if (!magic_checked_) {
    // Fewer than six bytes in all: no tar archive (it ends with two zero blocks).
    return refuse(refusal("the " + what_ + " is not a tar archive"));
  }
  if (gunzip_ && !gunzip_->ended()) {
    return refuse(refusal("the compressed " + what_ + " ends early"));
  }
  if (auto r = reader_.finish(); !r) {
    return refuse(refusal(r.error()));
  }
  std::string out;
  if (auto r = on_finish(out); !r) {
    return refuse(std::move(r.error()));
  }
  tar::append_end(out);
  return out;
}

}  // namespace berth::policy
