#pragma once
// A strict streaming reader for the tar build contexts tenants send, and the canonical writer
// berth re-emits them with.
//
// dockerd reads a build context with Go's archive/tar twice (tarsum re-encodes it, then
// pkg/archive's Untar extracts it in a chroot). A reader that differs from Go's lets a tenant
// hide the Dockerfile dockerd builds behind one berth judged (a GNU long name followed by a PAX
// path, a size field with leading NULs). So this reader reads as Go's does where Go is strict,
// and refuses where Go is lenient in ways other readers are not:
//   - header checksums are verified (unsigned or signed sum, as Go);
//   - only ustar ("ustar\0" "00") and GNU ("ustar " " \0") headers are read; V7 and STAR
//     headers are refused, as are non-zero bytes where those formats have no field;
//   - numeric fields must be what GNU tar, Go, Python's tarfile and busybox write: optional
//     leading spaces, octal digits, then only NULs and spaces (base-256 for size, uid, gid and
//     mtime); leading or embedded NULs and other bytes are refused (Go trims NULs and stops at
//     the first one, other readers do not);
//   - string fields end at their first NUL and must be NUL-padded after it;
//   - PAX ('x') and GNU long name/link ('L', 'K') records are merged into the next entry as Go
//     merges them; a second record of one kind, a PAX path together with a GNU long name (or a
//     PAX linkpath with a long link), and an extension header not followed by an entry are
//     refused (Go silently lets one win, or drops it);
//   - PAX records are parsed as Go parses them; path, linkpath, size, uid, gid and mtime are
//     carried, atime and ctime are checked and dropped, SCHILY.xattr.* is dropped (dockerd
//     would set those attributes on the extracted host files; the docker CLI itself sends
//     security.capability, so dropping keeps such contexts building), GNU.sparse.* is refused,
//     other keys (which Go ignores) are dropped; duplicate keys are refused;
//   - PAX global headers ('g') are checked and dropped: Untar ignores them;
//   - entry kinds are allowed by list: regular files ('0', and '\0' which Go turns into a
//     directory when the name ends in '/'), hard links, symlinks, directories. Devices, FIFOs,
//     contiguous files ('7', which Untar refuses), sparse files and GNU volume headers are
//     refused by name, anything else as unknown;
//   - names and hard link targets are cleaned as Untar cleans them (filepath.Clean) and must
//     stay inside the context; links and directories carry no data.
// The reader never buffers entry data: data events are views into the bytes fed.
//
// The writer emits every entry with a header berth writes itself: ustar with the name split
// into prefix and name when it fits, otherwise a PAX header holding only `path` and `linkpath`;
// zero-padded octal numbers (base-256 beyond octal's range), a fresh checksum. So dockerd reads
// exactly the entry list berth judged.
//
// Tests: tests/unit/tar_stream_test.cpp; tests/differential (Go's archive/tar on thousands of
// generated contexts, and on what berth writes); tests/fuzz/fuzz_tar.cpp.

#include <array>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace berth::policy::tar {

enum class Type : char { regular = '0', hardlink = '1', symlink = '2', directory = '5' };

/// One entry as Untar will create it.
struct Entry {
  Type type = Type::regular;
  std::string path;        ///< cleaned and relative; "." is the context's root (directories)
  std::string link;        ///< symlink: the target as written; hard link: its cleaned path
  std::uint64_t size = 0;  ///< data bytes (always 0 for links and directories)
  std::uint32_t mode = 0;  ///< permission and set-id bits (mode & 07777)
  std::uint64_t uid = 0;
  std::uint64_t gid = 0;
  std::int64_t mtime = 0;  ///< seconds since the epoch (sub-second parts are dropped)

  bool operator==(const Entry&) const = default;
};

/// Extension headers (PAX records, GNU long names) and PAX global headers are read whole, up
/// to Go's own limit (larger ones are an error in Go too).
inline constexpr std::size_t max_extension_size = 1024 * 1024;

class Reader {
 public:
  enum class Event {
    need_more,  ///< `input` is used up; feed more
    entry,      ///< a new entry (see entry()); its data follows
    data,       ///< a piece of the current entry's data (Step::data views the fed bytes)
    entry_end,  ///< the current entry's data is complete
    end,        ///< the end-of-archive marker; everything after it is ignored
  };

  struct Step {
    Event event = Event::need_more;
    std::string_view data;
  };

  /// Consumes bytes from the front of `input` up to the next event. An error is final.
  [[nodiscard]] std::expected<Step, std::string> next(std::string_view& input);

  /// The entry announced by the last Event::entry.
  [[nodiscard]] const Entry& entry() const noexcept { return entry_; }

  /// The input ended: refuses a stream cut inside a header, an extension or an entry's data.
  /// A stream that ends at an entry boundary, with or without its end marker, is complete (Go
  /// reads it so too); a cut in the padding after the last data is too.
  [[nodiscard]] std::expected<void, std::string> finish() const;

 private:
  enum class State { header, extension, data, padding, after_zero, end, failed };

  std::expected<Step, std::string> on_header();
  std::expected<void, std::string> on_extension();
  std::expected<Step, std::string> fail(std::string message);

  State state_ = State::header;
  std::array<char, 512> block_{};
  std::size_t block_fill_ = 0;
  char ext_type_ = 0;            // the extension header whose data is being read
  std::string ext_data_;         // its data
  std::uint64_t remaining_ = 0;  // data (or extension data) bytes left
  std::uint64_t padding_ = 0;    // padding bytes left after the data
  bool entry_open_ = false;      // an entry's data is being read (entry_end still due)
  std::string error_;            // after a failure: every later call repeats it

  // Extension records merged into the next entry.
  bool have_pax_ = false;
  bool have_long_name_ = false;
  bool have_long_link_ = false;
  std::string pax_path_;
  std::string pax_linkpath_;
  bool pax_size_set_ = false;
  std::uint64_t pax_size_ = 0;
  bool pax_uid_set_ = false;
  std::uint64_t pax_uid_ = 0;
  bool pax_gid_set_ = false;
  std::uint64_t pax_gid_ = 0;
  bool pax_mtime_set_ = false;
  std::int64_t pax_mtime_ = 0;
  std::string long_name_;
  std::string long_link_;

  Entry entry_;
};

/// Appends the header(s) berth writes for `entry`: a ustar header, preceded by a PAX header
/// with `path`/`linkpath` records when a name does not fit. `entry.size` is the data that
/// follows.
void append_header(std::string& out, const Entry& entry);
/// Appends the zero padding after `size` data bytes.
void append_padding(std::string& out, std::uint64_t size);
/// Appends the end-of-archive marker (two zero blocks).
void append_end(std::string& out);

/// Go's path.Clean (filepath.Clean on Linux): lexical, "." for an empty result.
[[nodiscard]] std::string clean_path(std::string_view path);

}  // namespace berth::policy::tar
