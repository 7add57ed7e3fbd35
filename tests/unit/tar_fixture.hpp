#pragma once
// Hand-made tar blocks for the build-context tests: every field spelled as a test needs it, the
// checksum computed (or not) on request. Deliberately independent of policy/tar_stream, so the
// same tests run against any implementation of BuildContextFilter.

#include <cstdint>
#include <string>
#include <stdexcept>
#include <string_view>

#include <zlib.h>

namespace berth::test_tar {

inline constexpr std::size_t block = 512;

/// `v` as width-1 zero-padded octal digits and a NUL, as Go and GNU tar write it.
inline std::string octal(std::uint64_t v, std::size_t width) {
  std::string out(width - 1, '0');
  for (std::size_t i = width - 1; i-- > 0;) {
    out[i] = static_cast<char>('0' + (v & 7));
    v >>= 3;
  }
  return out + '\0';
}

struct Fields {
  std::string name;
  char type = '0';
  std::string size;  ///< the raw size field; empty: octal of the data size
  std::string link;
  std::string mode = octal(0644, 8);
  std::string uid = octal(0, 8);
  std::string gid = octal(0, 8);
  std::string mtime = octal(1700000000, 12);
  bool gnu = false;  ///< GNU magic ("ustar  \0") instead of POSIX ustar
  std::string prefix;
  bool good_checksum = true;
};

inline void put(std::string& b, std::size_t at, std::string_view s) {
  b.replace(at, s.size(), s);
}

inline std::string header(const Fields& f, std::size_t data_size = 0) {
  std::string b(block, '\0');
  put(b, 0, f.name.substr(0, 100));
  put(b, 100, f.mode);
  put(b, 108, f.uid);
  put(b, 116, f.gid);
  put(b, 124, f.size.empty() ? octal(data_size, 12) : f.size);
  put(b, 136, f.mtime);
  b[156] = f.type;
  put(b, 157, f.link.substr(0, 100));
  if (f.gnu) {
    put(b, 257, std::string_view("ustar  \0", 8));
  } else {
    put(b, 257,
        std::string_view("ustar\0"
                         "00",
                         8));
    put(b, 345, f.prefix);
  }
  put(b, 329, octal(0, 8));
  put(b, 337, octal(0, 8));
  put(b, 148, "        ");
  unsigned sum = 0;
  for (char c : b) {
    sum += static_cast<unsigned char>(c);
  }
  put(b, 148, octal(f.good_checksum ? sum : sum + 1, 7));
  return b;
}

inline std::string padded(std::string_view data) {
  std::string out(data);
  out.append((block - data.size() % block) % block, '\0');
  return out;
}

inline std::string entry(const Fields& f, std::string_view data = {}) {
  return header(f, data.size()) + padded(data);
}

inline std::string file(std::string name, std::string_view data) {
  Fields f;
  f.name = std::move(name);
  return entry(f, data);
}

inline std::string directory(std::string name) {
  Fields f;
  f.name = std::move(name);
  f.type = '5';
  f.mode = octal(0755, 8);
  return entry(f);
}

inline std::string symbolic_link(std::string name, std::string target) {
  Fields f;
  f.name = std::move(name);
  f.type = '2';
  f.link = std::move(target);
  return entry(f);
}

inline std::string hard_link(std::string name, std::string target) {
  Fields f;
  f.name = std::move(name);
  f.type = '1';
  f.link = std::move(target);
  return entry(f);
}

/// A GNU long name ('L') or long link ('K') record.
inline std::string gnu_long(char type, std::string_view name) {
  Fields f;
  f.name = "././@LongLink";
  f.type = type;
  f.gnu = true;
  std::string data(name);
  data += '\0';
  return entry(f, data);
}

/// One PAX record, with its length as Go's writer computes it.
inline std::string pax_record(std::string_view key, std::string_view value) {
  std::size_t size = key.size() + value.size() + 3;
  size += std::to_string(size).size();
  std::string head = std::to_string(size);
  if (head.size() + 3 + key.size() + value.size() != size) {
    size = head.size() + 3 + key.size() + value.size();
    head = std::to_string(size);
  }
  return head + " " + std::string(key) + "=" + std::string(value) + "\n";
}

/// A PAX extended header ('x') or global header ('g') holding `records`.
inline std::string pax(std::string_view records, char type = 'x') {
  Fields f;
  f.name = "PaxHeaders/x";
  f.type = type;
  return entry(f, records);
}

inline std::string end_of_archive() {
  return std::string(2 * block, '\0');
}

/// gzip as the docker CLI's --compress (and `gzip`) writes it.
inline std::string gzip(std::string_view plain, int level = Z_DEFAULT_COMPRESSION) {
  z_stream z{};
  if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2");
  }
  std::string out(deflateBound(&z, plain.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plain.data()));
  z.avail_in = static_cast<uInt>(plain.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) {
    throw std::runtime_error("deflate");
  }
  return out;
}

}  // namespace berth::test_tar
