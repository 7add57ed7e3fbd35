#include "policy/tar_stream.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

namespace berth::policy::tar {

namespace {

using namespace std::string_view_literals;

constexpr std::size_t block_size = 512;

struct Field {
  std::size_t offset;
  std::size_t size;
};

// POSIX ustar layout; GNU headers differ from offset 345 on (no prefix field).
constexpr Field f_name{0, 100};
constexpr Field f_mode{100, 8};
constexpr Field f_uid{108, 8};
constexpr Field f_gid{116, 8};
constexpr Field f_size{124, 12};
constexpr Field f_mtime{136, 12};
constexpr Field f_chksum{148, 8};
constexpr std::size_t o_typeflag = 156;
constexpr Field f_linkname{157, 100};
constexpr Field f_magic{257, 6};
constexpr Field f_version{263, 2};
constexpr Field f_uname{265, 32};
constexpr Field f_gname{297, 32};
constexpr Field f_devmajor{329, 8};
constexpr Field f_devminor{337, 8};
constexpr Field f_prefix{345, 155};
constexpr Field f_ustar_pad{500, 12};
constexpr Field f_gnu_atime{345, 12};
constexpr Field f_gnu_ctime{357, 12};
constexpr Field f_gnu_rest{369, 143};  // offset, longnames, sparse map, realsize: unused here

constexpr std::uint64_t max_int64 =
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
// chown(2) reads -1 as "leave unchanged"; dockerd would fail on anything wider than 32 bits.
constexpr std::uint64_t max_id = 0xFFFFFFFEu;

std::string_view field(const std::array<char, block_size>& b, Field f) {
  return {b.data() + f.offset, f.size};
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '\0'; });
}

std::uint64_t padding_of(std::uint64_t size) {
  return (block_size - size % block_size) % block_size;
}

// Octal as GNU tar, Go, Python and busybox write it: leading spaces, digits, then only NULs and
// spaces. Go also accepts leading NULs and stops at an embedded NUL; those are refused here.
// `blank`: a field of only NULs and spaces reads as 0 (fields berth does not carry).
std::optional<std::uint64_t> parse_octal(std::string_view f, bool blank) {
  std::size_t i = 0;
  while (i < f.size() && f[i] == ' ') {
    ++i;
  }
  std::uint64_t v = 0;
  std::size_t digits = 0;
  for (; i < f.size() && f[i] >= '0' && f[i] <= '7'; ++i, ++digits) {
    if (v > (max_int64 >> 3)) {
      return std::nullopt;
    }
    v = (v << 3) | static_cast<std::uint64_t>(f[i] - '0');
  }
  for (; i < f.size(); ++i) {
    if (f[i] != ' ' && f[i] != '\0') {
      return std::nullopt;
    }
  }
  if (digits == 0 && !blank) {
    return std::nullopt;
  }
  return v;
}

// GNU base-256: 0x80, then a big-endian non-negative number (Go reads other lead bytes and
// negative numbers too; no writer berth knows produces them).
std::optional<std::uint64_t> parse_base256(std::string_view f) {
  if (static_cast<unsigned char>(f[0]) != 0x80) {
    return std::nullopt;
  }
  std::uint64_t v = 0;
  for (std::size_t i = 1; i < f.size(); ++i) {
    if (v >> 55) {
      return std::nullopt;  // would not fit an int64, as Go requires
    }
    v = (v << 8) | static_cast<unsigned char>(f[i]);
  }
  return v;
}

std::optional<std::uint64_t> parse_numeric(std::string_view f, bool base256, bool blank) {
  if (static_cast<unsigned char>(f[0]) & 0x80) {
    return base256 ? parse_base256(f) : std::nullopt;
  }
  return parse_octal(f, blank);
}

// A C string field: the text up to the first NUL, with only NULs after it.
std::optional<std::string_view> parse_string(std::string_view f) {
  const auto nul = f.find('\0');
  if (nul == std::string_view::npos) {
    return f;
  }
  if (!all_zero(f.substr(nul))) {
    return std::nullopt;
  }
  return f.substr(0, nul);
}

// Canonical decimal: "0" or digits without a leading zero, within int64.
std::optional<std::uint64_t> parse_decimal(std::string_view s) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) {
    return std::nullopt;
  }
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (max_int64 - d) / 10) {
      return std::nullopt;
    }
    v = v * 10 + d;
  }
  return v;
}

// A PAX time ("%d" or "%d.%d"), non-negative; the whole seconds (Go's parsePAXTime accepts
// signs and "1." too).
std::optional<std::int64_t> parse_pax_time(std::string_view s) {
  const auto dot = s.find('.');
  const auto secs = parse_decimal(s.substr(0, dot));
  if (!secs) {
    return std::nullopt;
  }
  if (dot != std::string_view::npos) {
    const auto frac = s.substr(dot + 1);
    if (frac.empty() ||
        !std::all_of(frac.begin(), frac.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return std::nullopt;
    }
  }
  return static_cast<std::int64_t>(*secs);
}

struct PaxRecord {
  std::string_view key;
  std::string_view value;
};

// PAX records "<len> <key>=<value>\n" as Go's parsePAXRecord reads them, with a canonical
// length (Go also takes "+12" and "012"). Keys may not repeat: Go keeps the last.
std::expected<std::vector<PaxRecord>, std::string> parse_pax(std::string_view s) {
  std::vector<PaxRecord> records;
  while (!s.empty()) {
    const auto sp = s.find(' ');
    if (sp == std::string_view::npos) {
      return std::unexpected("a PAX record has no length");
    }
    const auto n = parse_decimal(s.substr(0, sp));
    if (!n || *n < 5 || *n > s.size() || *n <= sp + 1) {
      return std::unexpected("a PAX record has a malformed length");
    }
    const auto len = static_cast<std::size_t>(*n);
    if (s[len - 1] != '\n') {
      return std::unexpected("a PAX record does not end with a newline");
    }
    const std::string_view record = s.substr(sp + 1, len - sp - 2);
    const auto eq = record.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return std::unexpected("a PAX record has no key");
    }
    const std::string_view key = record.substr(0, eq);
    const std::string_view value = record.substr(eq + 1);
    if (key.find('\0') != std::string_view::npos) {
      return std::unexpected("a PAX record's key contains NUL");
    }
    if ((key == "path" || key == "linkpath" || key == "uname" || key == "gname") &&
        value.find('\0') != std::string_view::npos) {
      return std::unexpected("a PAX " + std::string(key) + " record contains NUL");
    }
    if (key.starts_with("GNU.sparse.")) {
      return std::unexpected("sparse files are not accepted in a build context");
    }
    for (const auto& r : records) {
      if (r.key == key) {
        return std::unexpected("a PAX header repeats the key '" + std::string(key) + "'");
      }
    }
    records.push_back({key, value});
    s.remove_prefix(len);
  }
  return records;
}

std::string describe_type(char type) {
  switch (type) {
    case '3':
      return "character device";
    case '4':
      return "block device";
    case '6':
      return "FIFO";
    case '7':
      return "contiguous-file";
    case 'S':
      return "sparse-file";
    case 'V':
      return "volume-label";
    case 'M':
      return "multi-volume";
    case 'D':
      return "GNU dump-directory";
    case 'N':
      return "old GNU long-name";
    default:
      break;
  }
  if (type >= 0x21 && type <= 0x7e) {
    return "unknown ('" + std::string(1, type) + "')";
  }
  static constexpr char hex[] = "0123456789abcdef";
  const auto u = static_cast<unsigned char>(type);
  return std::string("unknown (0x") + hex[u >> 4] + hex[u & 15] + ")";
}

bool escapes(std::string_view cleaned) {
  return cleaned == ".." || cleaned.starts_with("../");
}

void put_octal(char* f, std::size_t width, std::uint64_t v) {
  // width-1 zero-padded octal digits and a NUL, as Go's writer formats them.
  for (std::size_t i = width - 1; i-- > 0;) {
    f[i] = static_cast<char>('0' + (v & 7));
    v >>= 3;
  }
  f[width - 1] = '\0';
}

void put_numeric(char* f, std::size_t width, std::uint64_t v) {
  if (v < (std::uint64_t{1} << (3 * (width - 1)))) {
    put_octal(f, width, v);
    return;
  }
  // GNU base-256, as Go's writer falls back to.
  for (std::size_t i = width; i-- > 1;) {
    f[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  f[0] = static_cast<char>(0x80);
}

void put_string(char* f, std::string_view s) {
  if (!s.empty()) {
    std::memcpy(f, s.data(), s.size());
  }
}

void append_block(std::string& out, char type, std::string_view name, std::string_view prefix,
                  std::string_view link, std::uint32_t mode, std::uint64_t uid, std::uint64_t gid,
                  std::uint64_t size, std::uint64_t mtime) {
  const std::size_t at = out.size();
  out.append(block_size, '\0');
  char* b = out.data() + at;
  put_string(b + f_name.offset, name);
  put_octal(b + f_mode.offset, f_mode.size, mode);
  put_numeric(b + f_uid.offset, f_uid.size, uid);
  put_numeric(b + f_gid.offset, f_gid.size, gid);
  put_numeric(b + f_size.offset, f_size.size, size);
  put_numeric(b + f_mtime.offset, f_mtime.size, mtime);
  b[o_typeflag] = type;
  put_string(b + f_linkname.offset, link);
  put_string(b + f_magic.offset, "ustar\0"sv);
  put_string(b + f_version.offset, "00"sv);
  put_octal(b + f_devmajor.offset, f_devmajor.size, 0);
  put_octal(b + f_devminor.offset, f_devminor.size, 0);
  put_string(b + f_prefix.offset, prefix);
  std::memset(b + f_chksum.offset, ' ', f_chksum.size);
  unsigned sum = 0;
  for (std::size_t i = 0; i < block_size; ++i) {
    sum += static_cast<unsigned char>(b[i]);
  }
  put_octal(b + f_chksum.offset, 7, sum);  // "%06o\0" then the space already there
}

// Go's formatPAXRecord.
void append_pax_record(std::string& out, std::string_view key, std::string_view value) {
  std::size_t size = key.size() + value.size() + 3;
  size += std::to_string(size).size();
  std::string head = std::to_string(size);
  if (head.size() + 3 + key.size() + value.size() != size) {
    size = head.size() + 3 + key.size() + value.size();
    head = std::to_string(size);
  }
  out += head;
  out += ' ';
  out += key;
  out += '=';
  out += value;
  out += '\n';
}

}  // namespace

std::string clean_path(std::string_view path) {
  if (path.empty()) {
    return ".";
  }
  const bool rooted = path.front() == '/';
  std::vector<std::string_view> parts;
  std::size_t i = 0;
  while (i < path.size()) {
    auto slash = path.find('/', i);
    if (slash == std::string_view::npos) {
      slash = path.size();
    }
    const std::string_view part = path.substr(i, slash - i);
    if (part.empty() || part == ".") {
      // skip
    } else if (part == "..") {
      if (!parts.empty() && parts.back() != "..") {
        parts.pop_back();
      } else if (!rooted) {
        parts.push_back(part);
      }
    } else {
      parts.push_back(part);
    }
    i = slash + 1;
  }
  std::string out = rooted ? "/" : "";
  for (std::size_t k = 0; k < parts.size(); ++k) {
    if (k > 0) {
      out += '/';
    }
    out += parts[k];
  }
  return out.empty() ? "." : out;
}

std::expected<Reader::Step, std::string> Reader::fail(std::string message) {
  state_ = State::failed;
  error_ = message;
  return std::unexpected(std::move(message));
}

std::expected<Reader::Step, std::string> Reader::next(std::string_view& input) {
  for (;;) {
    switch (state_) {
      case State::failed:
        return std::unexpected(error_);
      case State::end:
        // Go stops reading at the marker; nothing after it reaches dockerd.
        input = {};
        return Step{};
      case State::header:
      case State::after_zero: {
        const std::size_t take = std::min(block_size - block_fill_, input.size());
        if (take != 0) {
          std::memcpy(block_.data() + block_fill_, input.data(), take);
        }
        block_fill_ += take;
        input.remove_prefix(take);
        if (block_fill_ < block_size) {
          return Step{};
        }
        block_fill_ = 0;
        const bool pending = have_pax_ || have_long_name_ || have_long_link_;
        if (all_zero({block_.data(), block_size})) {
          if (pending) {
            return fail("an extension header is not followed by an entry");
          }
          if (state_ == State::after_zero) {
            state_ = State::end;
            return Step{Event::end, {}};
          }
          state_ = State::after_zero;
          continue;
        }
        if (state_ == State::after_zero) {
          return fail("a zero block is followed by another header");
        }
        auto announced = on_header();
        if (!announced) {
          return fail(std::move(announced.error()));
        }
        if (announced->event == Event::entry) {
          return *announced;
        }
        continue;
      }
      case State::extension: {
        const auto take =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size()));
        ext_data_.append(input.substr(0, take));
        input.remove_prefix(take);
        remaining_ -= take;
        if (remaining_ != 0) {
          return Step{};
        }
        state_ = padding_ != 0 ? State::padding : State::header;
        if (auto done = on_extension(); !done) {
          return fail(std::move(done.error()));
        }
        continue;
      }
      case State::data: {
        if (remaining_ == 0) {
          entry_open_ = false;
          state_ = padding_ != 0 ? State::padding : State::header;
          return Step{Event::entry_end, {}};
        }
        if (input.empty()) {
          return Step{};
        }
        const auto take =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size()));
        const std::string_view piece = input.substr(0, take);
        input.remove_prefix(take);
        remaining_ -= take;
        return Step{Event::data, piece};
      }
      case State::padding: {
        // Padding is never forwarded (berth writes its own), so its bytes do not matter.
        const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(padding_, input.size()));
        input.remove_prefix(take);
        padding_ -= take;
        if (padding_ != 0) {
          return Step{};
        }
        state_ = State::header;
        continue;
      }
    }
  }
}

std::expected<Reader::Step, std::string> Reader::on_header() {
  const auto& b = block_;
  const auto chksum = parse_octal(field(b, f_chksum), false);
  if (!chksum) {
    return std::unexpected("a tar header's checksum field is malformed");
  }
  std::uint64_t unsigned_sum = 0;
  std::int64_t signed_sum = 0;
  for (std::size_t i = 0; i < block_size; ++i) {
    const char c = (i >= f_chksum.offset && i < f_chksum.offset + f_chksum.size) ? ' ' : b[i];
    unsigned_sum += static_cast<unsigned char>(c);
    signed_sum += static_cast<signed char>(c);
  }
  if (*chksum != unsigned_sum &&
      (signed_sum < 0 || *chksum != static_cast<std::uint64_t>(signed_sum))) {
    return std::unexpected("a tar header has a wrong checksum");
  }

  bool gnu = false;
  const auto magic = field(b, f_magic);
  const auto version = field(b, f_version);
  if (magic == "ustar\0"sv && version == "00"sv) {
    // Go reads a ustar header with "tar\0" at 508 as STAR, whose prefix field is shorter.
    if (!all_zero(field(b, f_ustar_pad))) {
      return std::unexpected("a ustar header has bytes after its prefix field");
    }
  } else if (magic == "ustar "sv && version == " \0"sv) {
    gnu = true;
    // Go reads these as times only when their first byte is not NUL, and falls back to a
    // pre-Go1.8 prefix field when they do not parse: strict numbers or nothing.
    if (!parse_octal(field(b, f_gnu_atime), true) || !parse_octal(field(b, f_gnu_ctime), true)) {
      return std::unexpected("a GNU tar header has malformed time fields");
    }
    if (!all_zero(field(b, f_gnu_rest))) {
      return std::unexpected("a GNU tar header has sparse or multi-volume fields");
    }
  } else {
    return std::unexpected(
        "a tar header is neither ustar nor GNU (old V7 and STAR headers are not accepted)");
  }

  const auto mode = parse_numeric(field(b, f_mode), false, false);
  const auto uid = parse_numeric(field(b, f_uid), true, false);
  const auto gid = parse_numeric(field(b, f_gid), true, false);
  const auto size = parse_numeric(field(b, f_size), true, false);
  const auto mtime = parse_numeric(field(b, f_mtime), true, false);
  const auto devmajor = parse_numeric(field(b, f_devmajor), false, true);
  const auto devminor = parse_numeric(field(b, f_devminor), false, true);
  if (!mode || !uid || !gid || !size || !mtime || !devmajor || !devminor) {
    return std::unexpected(
        "a tar header has a malformed numeric field (leading or embedded NULs, or other bytes "
        "than octal digits, spaces and trailing NULs)");
  }
  const auto name = parse_string(field(b, f_name));
  const auto linkname = parse_string(field(b, f_linkname));
  const auto uname = parse_string(field(b, f_uname));
  const auto gname = parse_string(field(b, f_gname));
  const auto prefix = gnu ? std::optional<std::string_view>("") : parse_string(field(b, f_prefix));
  if (!name || !linkname || !uname || !gname || !prefix) {
    return std::unexpected("a tar header has bytes after the NUL that ends a name field");
  }

  const char type = b[o_typeflag];
  switch (type) {
    case 'x':
    case 'g':
    case 'L':
    case 'K': {
      if ((type == 'x' && have_pax_) || (type == 'L' && have_long_name_) ||
          (type == 'K' && have_long_link_)) {
        return std::unexpected(std::string("two ") +
                               (type == 'x' ? "PAX headers" : "GNU long-name headers") +
                               " precede one entry (readers disagree on which applies)");
      }
      if (type == 'g' && (have_pax_ || have_long_name_ || have_long_link_)) {
        return std::unexpected("an extension header is not followed by an entry");
      }
      if (*size > max_extension_size) {
        return std::unexpected("a tar extension header is larger than 1 MiB");
      }
      ext_type_ = type;
      ext_data_.clear();
      remaining_ = *size;
      padding_ = padding_of(*size);
      state_ = State::extension;
      return Step{};
    }
    case '0':
    case '\0':
    case '1':
    case '2':
    case '5':
      break;
    default:
      return std::unexpected(describe_type(type) + " entries are not accepted in a build context");
  }

  if (have_pax_ && !pax_path_.empty() && have_long_name_) {
    return std::unexpected(
        "an entry has both a PAX path and a GNU long name (readers disagree on which applies)");
  }
  if (have_pax_ && !pax_linkpath_.empty() && have_long_link_) {
    return std::unexpected(
        "an entry has both a PAX linkpath and a GNU long link (readers disagree on which "
        "applies)");
  }
  std::string path;
  if (have_long_name_) {
    path = std::move(long_name_);
  } else if (!pax_path_.empty()) {
    path = std::move(pax_path_);
  } else if (!prefix->empty()) {
    path.reserve(prefix->size() + 1 + name->size());
    path.append(*prefix).append("/").append(*name);
  } else {
    path = *name;
  }
  std::string link;
  if (have_long_link_) {
    link = std::move(long_link_);
  } else if (!pax_linkpath_.empty()) {
    link = std::move(pax_linkpath_);
  } else {
    link = *linkname;
  }
  std::uint64_t data_size = pax_size_set_ ? pax_size_ : *size;
  const std::uint64_t entry_uid = pax_uid_set_ ? pax_uid_ : *uid;
  const std::uint64_t entry_gid = pax_gid_set_ ? pax_gid_ : *gid;
  const std::int64_t entry_mtime = pax_mtime_set_ ? pax_mtime_ : static_cast<std::int64_t>(*mtime);
  have_pax_ = have_long_name_ = have_long_link_ = false;
  pax_path_.clear();
  pax_linkpath_.clear();
  long_name_.clear();
  long_link_.clear();
  pax_size_set_ = pax_uid_set_ = pax_gid_set_ = pax_mtime_set_ = false;

  Type kind = Type::regular;
  if (type == '\0') {
    // Go's reader: legacy archives mark directories with a trailing slash.
    kind = path.ends_with('/') ? Type::directory : Type::regular;
  } else {
    kind = static_cast<Type>(type);
  }
  if (type != '\0' && kind == Type::regular && path.ends_with('/')) {
    // tarsum's archive/tar writer refuses it, so dockerd would fail the build.
    return std::unexpected("a regular file entry's name ends with '/'");
  }
  if (kind != Type::regular && data_size != 0) {
    return std::unexpected(
        "a link or directory entry carries data (Go would skip it, other "
        "readers would not)");
  }
  if (path.starts_with('/')) {
    return std::unexpected("a build context entry has an absolute name");
  }
  std::string cleaned = clean_path(path);
  if (escapes(cleaned)) {
    return std::unexpected("a build context entry's name leaves the context ('..')");
  }
  if (cleaned == "." && kind != Type::directory) {
    return std::unexpected(
        "a build context entry that is not a directory names the context's "
        "root");
  }
  if (kind == Type::regular || kind == Type::directory) {
    if (!link.empty()) {
      return std::unexpected("a file or directory entry has a link target");
    }
  } else if (link.empty()) {
    return std::unexpected("a link entry has no target");
  } else if (kind == Type::hardlink) {
    if (link.starts_with('/')) {
      return std::unexpected("a hard link has an absolute target");
    }
    link = clean_path(link);
    if (escapes(link) || link == ".") {
      return std::unexpected("a hard link's target is outside the context");
    }
  }
  if (entry_uid > max_id || entry_gid > max_id) {
    return std::unexpected("a build context entry has an owner id beyond 32 bits");
  }
  entry_.type = kind;
  entry_.path = std::move(cleaned);
  entry_.link = std::move(link);
  entry_.size = data_size;
  entry_.mode = static_cast<std::uint32_t>(*mode & 07777);
  entry_.uid = entry_uid;
  entry_.gid = entry_gid;
  entry_.mtime = entry_mtime;
  remaining_ = data_size;
  padding_ = padding_of(data_size);
  entry_open_ = true;
  state_ = State::data;
  return Step{Event::entry, {}};
}

std::expected<void, std::string> Reader::on_extension() {
  const std::string_view data = ext_data_;
  if (ext_type_ == 'L' || ext_type_ == 'K') {
    const auto nul = data.find('\0');
    if (nul == std::string_view::npos || nul == 0 || !all_zero(data.substr(nul))) {
      // Go ignores an empty long name and reads up to the first NUL.
      return std::unexpected("a GNU long name is empty or not a NUL-terminated string");
    }
    if (ext_type_ == 'L') {
      long_name_.assign(data.substr(0, nul));
      have_long_name_ = true;
    } else {
      long_link_.assign(data.substr(0, nul));
      have_long_link_ = true;
    }
    return {};
  }
  auto records = parse_pax(data);
  if (!records) {
    return std::unexpected(std::move(records.error()));
  }
  if (ext_type_ == 'g') {
    return {};  // checked (Go fails on malformed ones) and dropped: Untar ignores them
  }
  for (const auto& [key, value] : *records) {
    const bool carried = key == "path" || key == "linkpath" || key == "size" || key == "uid" ||
                         key == "gid" || key == "mtime" || key == "atime" || key == "ctime";
    if (carried && value.empty()) {
      // Go keeps the header's own field for an empty record; other readers clear it.
      return std::unexpected("an empty PAX " + std::string(key) + " record");
    }
    if (key == "path") {
      pax_path_.assign(value);
    } else if (key == "linkpath") {
      pax_linkpath_.assign(value);
    } else if (key == "size") {
      const auto v = parse_decimal(value);
      if (!v) {
        return std::unexpected("a PAX size record is malformed");
      }
      pax_size_ = *v;
      pax_size_set_ = true;
    } else if (key == "uid" || key == "gid") {
      const auto v = parse_decimal(value);
      if (!v || *v > max_id) {
        return std::unexpected("a PAX " + std::string(key) + " record is malformed");
      }
      (key == "uid" ? pax_uid_ : pax_gid_) = *v;
      (key == "uid" ? pax_uid_set_ : pax_gid_set_) = true;
    } else if (key == "mtime" || key == "atime" || key == "ctime") {
      const auto v = parse_pax_time(value);
      if (!v) {
        return std::unexpected("a PAX " + std::string(key) + " record is malformed");
      }
      if (key == "mtime") {
        pax_mtime_ = *v;
        pax_mtime_set_ = true;
      }
    }
    // Everything else is dropped: uname/gname (Untar chowns by number), SCHILY.xattr.* (which
    // Untar would set on the extracted host files), and keys Go ignores.
  }
  have_pax_ = true;
  return {};
}

std::expected<void, std::string> Reader::finish() const {
  switch (state_) {
    case State::failed:
      return std::unexpected(error_);
    case State::header:
    case State::after_zero:
      if (block_fill_ != 0) {
        return std::unexpected("the build context ended inside a tar header");
      }
      if (have_pax_ || have_long_name_ || have_long_link_) {
        return std::unexpected("an extension header is not followed by an entry");
      }
      return {};
    case State::extension:
      return std::unexpected("the build context ended inside a tar extension header");
    case State::data:
      if (remaining_ != 0 || entry_open_) {
        return std::unexpected("the build context ended in the middle of an entry");
      }
      return {};
    case State::padding:
    case State::end:
      return {};
  }
  return {};
}

void append_header(std::string& out, const Entry& e) {
  std::string_view name = e.path;
  std::string_view prefix;
  bool pax_path = false;
  if (name.size() > 100) {
    // ustar's split: prefix (<= 155) "/" name (<= 100), both non-empty.
    const auto slash = name.rfind('/', 155);
    if (slash != std::string_view::npos && slash > 0 && name.size() - slash - 1 <= 100 &&
        name.size() - slash - 1 > 0) {
      prefix = name.substr(0, slash);
      name = name.substr(slash + 1);
    } else {
      pax_path = true;
    }
  }
  const bool pax_link = e.link.size() > 100;
  if (pax_path || pax_link) {
    std::string records;
    if (pax_path) {
      append_pax_record(records, "path", e.path);
    }
    if (pax_link) {
      append_pax_record(records, "linkpath", e.link);
    }
    append_block(out, 'x', "././@PaxHeader", {}, {}, 0644, 0, 0, records.size(), 0);
    out += records;
    append_padding(out, records.size());
  }
  append_block(out, static_cast<char>(e.type), pax_path ? std::string_view() : name,
               pax_path ? std::string_view() : prefix, pax_link ? std::string_view() : e.link,
               e.mode & 07777, e.uid, e.gid, e.size, static_cast<std::uint64_t>(e.mtime));
}

void append_padding(std::string& out, std::uint64_t size) {
  out.append(static_cast<std::size_t>(padding_of(size)), '\0');
}

void append_end(std::string& out) {
  out.append(2 * block_size, '\0');
}

}  // namespace berth::policy::tar
