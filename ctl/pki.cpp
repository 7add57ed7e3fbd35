#include "ctl/pki.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <memory>
#include <system_error>
#include <tuple>
#include <utility>

#include <fcntl.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/vocabulary.hpp"

namespace berth::ctl::pki {
namespace {

namespace fs = std::filesystem;

template <class T>
using Result = std::expected<T, std::string>;

std::unexpected<std::string> fail(std::string message) {
  return std::unexpected(std::move(message));
}

// ---------------------------------------------------------------------------------------------
// RAII for every OpenSSL object this file touches.

template <auto Free>
struct Freer {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};

void free_openssl_bytes(void* p) noexcept {
  OPENSSL_free(p);
}

using BioPtr = std::unique_ptr<BIO, Freer<BIO_free_all>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Freer<X509_free>>;
using CrlPtr = std::unique_ptr<X509_CRL, Freer<X509_CRL_free>>;
using NamePtr = std::unique_ptr<X509_NAME, Freer<X509_NAME_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Freer<BN_free>>;
using IntegerPtr = std::unique_ptr<ASN1_INTEGER, Freer<ASN1_INTEGER_free>>;
using TimePtr = std::unique_ptr<ASN1_TIME, Freer<ASN1_TIME_free>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Freer<X509_EXTENSION_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Freer<GENERAL_NAMES_free>>;
using GeneralNamePtr = std::unique_ptr<GENERAL_NAME, Freer<GENERAL_NAME_free>>;
using OctetsPtr = std::unique_ptr<ASN1_OCTET_STRING, Freer<ASN1_OCTET_STRING_free>>;
using Ia5Ptr = std::unique_ptr<ASN1_IA5STRING, Freer<ASN1_IA5STRING_free>>;
using RevokedPtr = std::unique_ptr<X509_REVOKED, Freer<X509_REVOKED_free>>;
using OpensslCharsPtr = std::unique_ptr<char, Freer<free_openssl_bytes>>;
using OpensslBytesPtr = std::unique_ptr<unsigned char, Freer<free_openssl_bytes>>;

/// "what: reason; reason" from OpenSSL's thread-local error queue, which it empties.
std::string openssl_error(std::string_view what) {
  std::string out(what);
  const char* separator = ": ";
  for (unsigned long code = ERR_get_error(); code != 0; code = ERR_get_error()) {
    out += separator;
    separator = "; ";
    if (const char* reason = ERR_reason_error_string(code); reason != nullptr) {
      out += reason;
    } else {
      std::array<char, 256> buffer{};
      ERR_error_string_n(code, buffer.data(), buffer.size());
      out += buffer.data();
    }
  }
  return out;
}

std::string errno_error(std::string_view what, const fs::path& path, int error) {
  return std::string(what) + " " + path.string() + ": " + std::strerror(error);
}

// ---------------------------------------------------------------------------------------------
// Validation.

constexpr int max_days = 36500;
constexpr std::int64_t seconds_per_day = 86400;
// Clients and the proxy need not agree on the time to the second: a certificate that is not
// yet valid for a few minutes on a slightly slow host would be refused for no good reason.
constexpr std::int64_t clock_skew_margin_seconds = 5 * 60;
constexpr int ca_days = 3650;
constexpr int crl_days = 365;

bool is_ip_address(const std::string& host) {
  OctetsPtr ip(a2i_IPADDRESS(host.c_str()));
  ERR_clear_error();
  return ip != nullptr;
}

// RFC 1123 host names: labels of letters, digits and inner dashes. Anything else (spaces,
// commas, NULs) could smuggle a second name into the SAN or a config string.
bool is_dns_name(std::string_view host) {
  if (host.empty() || host.size() > 253) {
    return false;
  }
  std::size_t label_start = 0;
  while (label_start <= host.size()) {
    std::size_t dot = host.find('.', label_start);
    if (dot == std::string_view::npos) {
      dot = host.size();
    }
    const std::string_view label = host.substr(label_start, dot - label_start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (const char c : label) {
      const auto u = static_cast<unsigned char>(c);
      if (std::isalnum(u) == 0 && c != '-') {
        return false;
      }
    }
    label_start = dot + 1;
  }
  return true;
}

Result<void> check_days(std::string_view what, int days, int min) {
  if (days < min || days > max_days) {
    return fail(std::string(what) + " must be between " + std::to_string(min) + " and " +
                std::to_string(max_days) + ", got " + std::to_string(days));
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Files: read whole, write atomically, publish a set of files all or nothing.

Result<std::string> read_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail(errno_error("cannot read", path, errno));
  }
  std::string data;
  std::array<char, 16384> buffer{};
  for (;;) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      return fail(errno_error("cannot read", path, error));
    }
    if (n == 0) {
      break;
    }
    data.append(buffer.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return data;
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    ERR_clear_error();
    // Only names a temp file, opened with O_EXCL; uniqueness is all that matters.
    raw = std::to_string(::getpid()) + std::to_string(std::time(nullptr));
  }
  static constexpr std::string_view digits = "0123456789abcdef";
  std::string out;
  for (const char c : raw) {
    const auto u = static_cast<unsigned char>(c);
    out += digits[u >> 4];
    out += digits[u & 0xf];
  }
  return out;
}

Result<void> fsync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return fail(errno_error("cannot open directory", dir, errno));
  }
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (rc != 0) {
    return fail(errno_error("cannot sync directory", dir, error));
  }
  return {};
}

/// Creates every missing component of `dir` with mode 0700; returns the ones it created,
/// outermost first, so that a failed operation can remove exactly those again.
Result<std::vector<fs::path>> make_directories(const fs::path& dir) {
  std::vector<fs::path> created;
  fs::path prefix;
  for (const fs::path& part : dir) {
    prefix /= part;
    if (::mkdir(prefix.c_str(), 0700) == 0) {
      // The umask may have taken bits away; the mode must be exactly 0700.
      if (::chmod(prefix.c_str(), 0700) != 0) {
        const int error = errno;
        for (auto it = created.rbegin(); it != created.rend(); ++it) {
          ::rmdir(it->c_str());
        }
        ::rmdir(prefix.c_str());
        return fail(errno_error("cannot set mode of", prefix, error));
      }
      created.push_back(prefix);
      continue;
    }
    const int error = errno;

    struct stat st {};

    if (error == EEXIST && ::stat(prefix.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      continue;
    }
    for (auto it = created.rbegin(); it != created.rend(); ++it) {
      ::rmdir(it->c_str());
    }
    return fail(errno_error("cannot create directory", prefix, error == EEXIST ? ENOTDIR : error));
  }
  return created;
}

bool path_taken(const fs::path& path) {
  struct stat st {};

  // lstat: a dangling symlink is taken too, and following one could write outside the dir.
  return ::lstat(path.c_str(), &st) == 0 || errno != ENOENT;
}

/// Holds an exclusive flock on a directory for as long as it lives, so that two berthctl runs
/// on the same CA cannot interleave a read-modify-write of crl.pem.
class DirectoryLock {
 public:
  DirectoryLock() = default;
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  DirectoryLock(DirectoryLock&&) = delete;
  DirectoryLock& operator=(DirectoryLock&&) = delete;

  ~DirectoryLock() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }

  Result<void> lock(const fs::path& dir) {
    fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ < 0) {
      return fail(errno_error("cannot open directory", dir, errno));
    }
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        return fail(errno_error("cannot lock directory", dir, errno));
      }
    }
    return {};
  }

 private:
  int fd_ = -1;
};

/// A set of files published into one directory all or nothing. Each file is first written in
/// full to a temp file next to its final name; commit() then links the new files into place
/// (link() fails instead of overwriting, so a concurrent writer cannot be clobbered) and renames
/// the replaceable ones last. Until commit() succeeds, the destructor removes every temp file,
/// every file already linked, and the directories the operation created.
class FileSet {
 public:
  FileSet(fs::path dir, std::vector<fs::path> created_dirs)
      : dir_(std::move(dir)), created_dirs_(std::move(created_dirs)) {}

  FileSet(const FileSet&) = delete;
  FileSet& operator=(const FileSet&) = delete;
  FileSet(FileSet&&) = delete;
  FileSet& operator=(FileSet&&) = delete;

  ~FileSet() {
    for (const Entry& e : entries_) {
      if (!e.temp.empty()) {
        ::unlink(e.temp.c_str());
      }
    }
    if (committed_) {
      return;
    }
    for (const fs::path& p : linked_) {
      ::unlink(p.c_str());
    }
    for (auto it = created_dirs_.rbegin(); it != created_dirs_.rend(); ++it) {
      ::rmdir(it->c_str());
    }
  }

  /// Writes `data` to a temp file with exactly `mode`. `replace`: may overwrite an existing
  /// file of that name; at most one such file per set, since a replaced file cannot be restored.
  Result<void> stage(std::string_view name, std::string_view data, mode_t mode, bool replace) {
    Entry e{dir_ / name, dir_ / ("." + std::string(name) + ".tmp-" + random_hex(8)), replace};
    const int fd =
        ::open(e.temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
      return fail(errno_error("cannot create", e.temp, errno));
    }
    entries_.push_back(e);
    int error = 0;
    if (::fchmod(fd, mode) != 0) {
      error = errno;
    }
    std::size_t written = 0;
    while (error == 0 && written < data.size()) {
      const ssize_t n = ::write(fd, data.data() + written, data.size() - written);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        error = errno;
        break;
      }
      written += static_cast<std::size_t>(n);
    }
    if (error == 0 && ::fsync(fd) != 0) {
      error = errno;
    }
    if (::close(fd) != 0 && error == 0) {
      error = errno;
    }
    if (error != 0) {
      return fail(errno_error("cannot write", e.temp, error));
    }
    return {};
  }

  Result<void> commit() {
    std::stable_partition(entries_.begin(), entries_.end(),
                          [](const Entry& e) { return !e.replace; });
    for (Entry& e : entries_) {
      if (e.replace) {
        if (::rename(e.temp.c_str(), e.final.c_str()) != 0) {
          return fail(errno_error("cannot write", e.final, errno));
        }
      } else {
        if (::link(e.temp.c_str(), e.final.c_str()) != 0) {
          if (errno == EEXIST) {
            return fail(e.final.string() + " already exists; refusing to overwrite it");
          }
          return fail(errno_error("cannot write", e.final, errno));
        }
        linked_.push_back(e.final);
        ::unlink(e.temp.c_str());
      }
      e.temp.clear();
    }
    if (auto synced = fsync_directory(dir_); !synced) {
      return synced;
    }
    committed_ = true;
    return {};
  }

 private:
  struct Entry {
    fs::path final;
    fs::path temp;
    bool replace = false;
  };

  fs::path dir_;
  std::vector<fs::path> created_dirs_;
  std::vector<Entry> entries_;
  std::vector<fs::path> linked_;
  bool committed_ = false;
};

// ---------------------------------------------------------------------------------------------
// PEM in and out.

// A key file is never encrypted here; an encrypted one must fail, not prompt on the terminal.
int refuse_password(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*userdata*/) {
  return -1;
}

Result<BioPtr> memory_bio(std::string_view data) {
  BioPtr bio(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
  if (!bio) {
    return fail(openssl_error("cannot allocate a BIO"));
  }
  return bio;
}

// Reads one PEM object of a kind (`read` is PEM_read_bio_X509, _PrivateKey or _X509_CRL);
// the file's text outlives the memory BIO that reads it.
template <class Ptr, class Read>
Result<Ptr> load_pem(const fs::path& path, Read read, std::string_view missing) {
  auto text = read_file(path);
  if (!text) {
    return fail(text.error());
  }
  auto bio = memory_bio(*text);
  if (!bio) {
    return fail(bio.error());
  }
  Ptr object(read(bio->get(), nullptr, refuse_password, nullptr));
  if (!object) {
    return fail(openssl_error(std::string(missing) + " in " + path.string()));
  }
  return object;
}

Result<CertPtr> load_cert(const fs::path& path) {
  return load_pem<CertPtr>(path, PEM_read_bio_X509, "no PEM certificate");
}

Result<PkeyPtr> load_key(const fs::path& path) {
  return load_pem<PkeyPtr>(path, PEM_read_bio_PrivateKey, "no unencrypted PEM private key");
}

Result<CrlPtr> load_crl(const fs::path& path) {
  return load_pem<CrlPtr>(path, PEM_read_bio_X509_CRL, "no PEM CRL");
}

template <class Write>
Result<std::string> to_pem(std::string_view what, Write write) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) {
    return fail(openssl_error("cannot encode " + std::string(what)));
  }
  char* data = nullptr;
  const long size = BIO_ctrl(bio.get(), BIO_CTRL_INFO, 0, static_cast<void*>(&data));
  if (size < 0 || data == nullptr) {
    return fail(openssl_error("cannot encode " + std::string(what)));
  }
  return std::string(data, static_cast<std::size_t>(size));
}

Result<std::string> cert_pem(X509* cert) {
  return to_pem("certificate", [cert](BIO* bio) { return PEM_write_bio_X509(bio, cert); });
}

Result<std::string> key_pem(EVP_PKEY* key) {
  // PKCS#8, unencrypted: what docker, Go's tls.X509KeyPair and OpenSSL all read.
  return to_pem("private key", [key](BIO* bio) {
    return PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  });
}

Result<std::string> crl_pem(X509_CRL* crl) {
  return to_pem("CRL", [crl](BIO* bio) { return PEM_write_bio_X509_CRL(bio, crl); });
}

// ---------------------------------------------------------------------------------------------
// Building certificates and CRLs.

Result<PkeyPtr> generate_key(KeyType type) {
  // EC keys come out with the named-curve encoding, which Go's crypto/x509 requires.
  PkeyPtr key(type == KeyType::rsa_3072
                  ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(3072))
                  : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) {
    return fail(openssl_error("cannot generate a key"));
  }
  return key;
}

Result<std::string> serial_hex(const ASN1_INTEGER* serial) {
  BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) {
    return fail(openssl_error("cannot read serial number"));
  }
  OpensslCharsPtr hex(BN_bn2hex(bn.get()));
  if (!hex) {
    return fail(openssl_error("cannot format serial number"));
  }
  std::string out(hex.get());
  std::transform(out.begin(), out.end(), out.begin(), [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  // BN_bn2hex pads to whole bytes; the policy and the proxy compare serials without leading
  // zeros (policy::normalize_serial), so print them that way too.
  const auto first = out.find_first_not_of('0');
  out.erase(0, first == std::string::npos ? out.size() - 1 : first);
  return out;
}

// A random positive 128-bit serial: unpredictable serials keep a CA safe from chosen-prefix
// collisions, and Go refuses negative or zero serials.
Result<IntegerPtr> random_serial() {
  BignumPtr bn(BN_new());
  if (!bn) {
    return fail(openssl_error("cannot allocate a serial number"));
  }
  do {
    if (BN_rand(bn.get(), 128, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) {
      return fail(openssl_error("cannot generate a serial number"));
    }
  } while (BN_is_zero(bn.get()) == 1);
  IntegerPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!serial) {
    return fail(openssl_error("cannot encode a serial number"));
  }
  return serial;
}

struct NameEntry {
  const char* field;
  std::string_view value;
};

Result<NamePtr> make_name(std::initializer_list<NameEntry> entries) {
  NamePtr name(X509_NAME_new());
  if (!name) {
    return fail(openssl_error("cannot allocate a name"));
  }
  for (const NameEntry& e : entries) {
    if (X509_NAME_add_entry_by_txt(name.get(), e.field, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(e.value.data()),
                                   static_cast<int>(e.value.size()), -1, 0) != 1) {
      return fail(openssl_error("cannot set " + std::string(e.field) + "=" + std::string(e.value)));
    }
  }
  return name;
}

struct Validity {
  std::int64_t not_before = 0;
  std::int64_t not_after = 0;
};

Validity validity_from_now(int days, int backdate_days) {
  const std::int64_t now = std::time(nullptr);
  Validity v;
  v.not_before = now - backdate_days * seconds_per_day - clock_skew_margin_seconds;
  v.not_after = v.not_before + days * seconds_per_day;
  return v;
}

Result<CertPtr> new_cert(const X509_NAME* subject, const X509_NAME* issuer, EVP_PKEY* key,
                         Validity validity) {
  CertPtr cert(X509_new());
  if (!cert) {
    return fail(openssl_error("cannot allocate a certificate"));
  }
  auto serial = random_serial();
  if (!serial) {
    return fail(serial.error());
  }
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_serialNumber(cert.get(), serial->get()) != 1 ||
      X509_set_subject_name(cert.get(), subject) != 1 ||
      X509_set_issuer_name(cert.get(), issuer) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(cert.get()), static_cast<time_t>(validity.not_before)) ==
          nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), static_cast<time_t>(validity.not_after)) ==
          nullptr ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return fail(openssl_error("cannot fill in a certificate"));
  }
  return cert;
}

/// Adds one extension written in OpenSSL's config syntax. `issuer` provides the authority key
/// id; values are constants of this file, never operator input.
Result<void> add_extension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx{};
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return fail(
        openssl_error(std::string("cannot add extension ") + OBJ_nid2sn(nid) + " " + value));
  }
  return {};
}

struct Extension {
  int nid;
  const char* value;
};

Result<void> add_extensions(X509* cert, X509* issuer, std::initializer_list<Extension> exts) {
  for (const Extension& e : exts) {
    if (auto added = add_extension(cert, issuer, e.nid, e.value); !added) {
      return added;
    }
  }
  return {};
}

// Built as GENERAL_NAMEs rather than a "DNS:a,IP:b" config string, so that no host can inject
// a second entry; hosts are validated before they get here anyway.
Result<void> add_subject_alt_names(X509* cert, const std::vector<std::string>& hosts) {
  GeneralNamesPtr names(GENERAL_NAMES_new());
  if (!names) {
    return fail(openssl_error("cannot allocate subjectAltName"));
  }
  for (const std::string& host : hosts) {
    GeneralNamePtr gn(GENERAL_NAME_new());
    if (!gn) {
      return fail(openssl_error("cannot allocate subjectAltName"));
    }
    if (OctetsPtr ip(a2i_IPADDRESS(host.c_str())); ip) {
      GENERAL_NAME_set0_value(gn.get(), GEN_IPADD, ip.release());
    } else {
      ERR_clear_error();
      Ia5Ptr dns(ASN1_IA5STRING_new());
      if (!dns || ASN1_STRING_set(dns.get(), host.data(), static_cast<int>(host.size())) != 1) {
        return fail(openssl_error("cannot encode subjectAltName " + host));
      }
      GENERAL_NAME_set0_value(gn.get(), GEN_DNS, dns.release());
    }
    if (sk_GENERAL_NAME_push(names.get(), gn.get()) <= 0) {
      return fail(openssl_error("cannot add subjectAltName " + host));
    }
    static_cast<void>(gn.release());
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_APPEND) != 1) {
    return fail(openssl_error("cannot add subjectAltName"));
  }
  return {};
}

Result<void> sign_cert(X509* cert, EVP_PKEY* key) {
  if (X509_sign(cert, key, EVP_sha256()) <= 0) {
    return fail(openssl_error("cannot sign certificate"));
  }
  return {};
}

/// Stamps the CRL as issued now, valid for crl_days, with `number` as its CRL number and the
/// CA's key id, then signs it. Works for a fresh CRL and for one read from disk.
Result<void> sign_crl(X509_CRL* crl, X509* ca, EVP_PKEY* ca_key, const BIGNUM* number) {
  const std::time_t now = std::time(nullptr);
  TimePtr last_update(ASN1_TIME_set(nullptr, now));
  TimePtr next_update(ASN1_TIME_set(nullptr, now + crl_days * seconds_per_day));
  IntegerPtr crl_number(BN_to_ASN1_INTEGER(number, nullptr));
  if (!last_update || !next_update || !crl_number ||
      X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) != 1 ||
      X509_CRL_set1_lastUpdate(crl, last_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl, next_update.get()) != 1) {
    return fail(openssl_error("cannot fill in the CRL"));
  }
  for (int i = X509_CRL_get_ext_by_NID(crl, NID_crl_number, -1); i >= 0;
       i = X509_CRL_get_ext_by_NID(crl, NID_crl_number, -1)) {
    ExtensionPtr old(X509_CRL_delete_ext(crl, i));
  }
  if (X509_CRL_add1_ext_i2d(crl, NID_crl_number, crl_number.get(), 0, 0) != 1) {
    return fail(openssl_error("cannot set the CRL number"));
  }
  if (X509_CRL_get_ext_by_NID(crl, NID_authority_key_identifier, -1) < 0) {
    X509V3_CTX ctx{};
    X509V3_set_ctx(&ctx, ca, nullptr, nullptr, crl, 0);
    ExtensionPtr aki(
        X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
    if (!aki || X509_CRL_add_ext(crl, aki.get(), -1) != 1) {
      return fail(openssl_error("cannot set the CRL's authority key id"));
    }
  }
  if (X509_CRL_sort(crl) != 1 || X509_CRL_sign(crl, ca_key, EVP_sha256()) <= 0) {
    return fail(openssl_error("cannot sign the CRL"));
  }
  return {};
}

struct LoadedCa {
  CertPtr cert;
  PkeyPtr key;
};

Result<LoadedCa> load_ca(const fs::path& dir) {
  auto cert = load_cert(dir / ca_cert_file);
  if (!cert) {
    return fail(cert.error());
  }
  auto key = load_key(dir / ca_key_file);
  if (!key) {
    return fail(key.error());
  }
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    return fail(openssl_error((dir / ca_key_file).string() + " is not the key of " +
                              (dir / ca_cert_file).string()));
  }
  if (X509_check_ca(cert->get()) == 0) {
    return fail((dir / ca_cert_file).string() + " is not a CA certificate");
  }
  return LoadedCa{std::move(*cert), std::move(*key)};
}

std::string absolute_path(const fs::path& path) {
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  return (ec ? path : abs).lexically_normal().string();
}

fs::path without_trailing_slash(const fs::path& path) {
  fs::path p = fs::path(absolute_path(path));
  if (!p.has_filename() && p.has_parent_path() && p != p.root_path()) {
    p = p.parent_path();
  }
  return p;
}

}  // namespace

bool is_valid_user_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64 || name.front() == ' ' || name.back() == ' ') {
    return false;
  }
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) {
      return false;
    }
    if (std::string_view(",=/\\+\"'").find(c) != std::string_view::npos) {
      return false;
    }
  }
  return true;
}

std::expected<CaPaths, std::string> init_ca(const fs::path& dir_in, const CaOptions& options) {
  ERR_clear_error();
  if (dir_in.empty()) {
    return fail("the CA directory must not be empty");
  }
  const fs::path dir = without_trailing_slash(dir_in);
  std::vector<std::string> hosts = options.hosts;
  if (hosts.empty()) {
    hosts = {"localhost", "127.0.0.1", "::1"};
  }
  for (const std::string& host : hosts) {
    if (!is_ip_address(host) && !is_dns_name(host)) {
      return fail("host '" + host + "' is neither an IP address nor a DNS name");
    }
  }
  if (hosts.front().size() > 64) {
    return fail("host '" + hosts.front() + "' is too long for a common name (64 at most)");
  }
  if (auto ok = check_days("--days", options.server_days, 1); !ok) {
    return fail(ok.error());
  }
  const CaPaths paths{dir,
                      dir / ca_cert_file,
                      dir / ca_key_file,
                      dir / server_cert_file,
                      dir / server_key_file,
                      dir / crl_file};
  for (const fs::path& p :
       {paths.ca_key, paths.ca_cert, paths.server_key, paths.server_cert, paths.crl}) {
    if (path_taken(p)) {
      return fail(p.string() + " already exists; refusing to overwrite an existing CA");
    }
  }

  // Everything is built in memory first: a failure here leaves the disk untouched.
  auto ca_key = generate_key(KeyType::ec_p256);
  if (!ca_key) {
    return fail(ca_key.error());
  }
  auto ca_name = make_name({{"CN", ca_common_name}});
  if (!ca_name) {
    return fail(ca_name.error());
  }
  auto ca = new_cert(ca_name->get(), ca_name->get(), ca_key->get(), validity_from_now(ca_days, 0));
  if (!ca) {
    return fail(ca.error());
  }
  if (auto ok = add_extensions(ca->get(), ca->get(),
                               {{NID_basic_constraints, "critical,CA:TRUE"},
                                {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                {NID_subject_key_identifier, "hash"},
                                {NID_authority_key_identifier, "keyid:always"}});
      !ok) {
    return fail(ok.error());
  }
  if (auto ok = sign_cert(ca->get(), ca_key->get()); !ok) {
    return fail(ok.error());
  }

  auto server_key = generate_key(KeyType::ec_p256);
  if (!server_key) {
    return fail(server_key.error());
  }
  auto server_name = make_name({{"CN", hosts.front()}});
  if (!server_name) {
    return fail(server_name.error());
  }
  auto server = new_cert(server_name->get(), ca_name->get(), server_key->get(),
                         validity_from_now(options.server_days, 0));
  if (!server) {
    return fail(server.error());
  }
  if (auto ok = add_extensions(server->get(), ca->get(),
                               {{NID_basic_constraints, "critical,CA:FALSE"},
                                {NID_key_usage, "critical,digitalSignature"},
                                {NID_ext_key_usage, "serverAuth"},
                                {NID_subject_key_identifier, "hash"},
                                {NID_authority_key_identifier, "keyid:always"}});
      !ok) {
    return fail(ok.error());
  }
  if (auto ok = add_subject_alt_names(server->get(), hosts); !ok) {
    return fail(ok.error());
  }
  if (auto ok = sign_cert(server->get(), ca_key->get()); !ok) {
    return fail(ok.error());
  }

  CrlPtr crl(X509_CRL_new());
  BignumPtr first_number(BN_new());
  if (!crl || !first_number || BN_set_word(first_number.get(), 1) != 1) {
    return fail(openssl_error("cannot allocate the CRL"));
  }
  if (auto ok = sign_crl(crl.get(), ca->get(), ca_key->get(), first_number.get()); !ok) {
    return fail(ok.error());
  }

  auto ca_cert_text = cert_pem(ca->get());
  auto ca_key_text = key_pem(ca_key->get());
  auto server_cert_text = cert_pem(server->get());
  auto server_key_text = key_pem(server_key->get());
  auto crl_text = crl_pem(crl.get());
  for (const auto* text :
       {&ca_cert_text, &ca_key_text, &server_cert_text, &server_key_text, &crl_text}) {
    if (!*text) {
      return fail(text->error());
    }
  }

  auto created = make_directories(dir);
  if (!created) {
    return fail(created.error());
  }
  // Declared before the file set, so that a rollback still happens under the lock.
  DirectoryLock lock;
  FileSet files(dir, std::move(*created));
  if (auto ok = lock.lock(dir); !ok) {
    return fail(ok.error());
  }
  // ca-key.pem is linked first: it is what marks the directory as a CA, so of two concurrent
  // runs exactly one gets past it.
  for (auto [name, text, mode] : {std::tuple{ca_key_file, &ca_key_text, mode_t{0600}},
                                  std::tuple{ca_cert_file, &ca_cert_text, mode_t{0644}},
                                  std::tuple{server_key_file, &server_key_text, mode_t{0600}},
                                  std::tuple{server_cert_file, &server_cert_text, mode_t{0644}},
                                  std::tuple{crl_file, &crl_text, mode_t{0644}}}) {
    if (auto ok = files.stage(name, **text, mode, false); !ok) {
      return fail(ok.error());
    }
  }
  if (auto ok = files.commit(); !ok) {
    return fail(ok.error());
  }
  return paths;
}

std::expected<IssuedBundle, std::string> issue_client_cert(const IssueOptions& options) {
  ERR_clear_error();
  std::string organization(operator_organization);
  std::string context_prefix = "operator";
  if (options.tenant) {
    if (!vocabulary::is_valid_tenant_id(*options.tenant)) {
      return fail("invalid tenant id '" + *options.tenant +
                  "': 1..63 characters of [a-z0-9-], not starting or ending with '-'");
    }
    // The proxy tells operators from tenants by the organization, so a tenant must never be
    // able to carry the operators' one.
    if (*options.tenant == operator_organization) {
      return fail("tenant id '" + *options.tenant + "' is reserved for operators");
    }
    organization = *options.tenant;
    context_prefix = *options.tenant;
  }
  if (!is_valid_user_name(options.user)) {
    return fail("invalid user name '" + options.user +
                "': 1..64 printable characters without , = / \\ + or quotes");
  }
  if (auto ok = check_days("--days", options.days, 1); !ok) {
    return fail(ok.error());
  }
  if (auto ok = check_days("--backdate-days", options.backdate_days, 0); !ok) {
    return fail(ok.error());
  }
  if (options.out_dir.empty()) {
    return fail("the output directory must not be empty");
  }
  const fs::path out = without_trailing_slash(options.out_dir);
  IssuedBundle bundle{out,
                      out / bundle_ca_file,
                      out / bundle_cert_file,
                      out / bundle_key_file,
                      {},
                      context_prefix + "-" + options.user};
  for (const fs::path& p : {bundle.key, bundle.cert}) {
    if (path_taken(p)) {
      return fail(p.string() + " already exists; refusing to overwrite it");
    }
  }

  auto ca = load_ca(options.ca_dir);
  if (!ca) {
    return fail(ca.error());
  }
  auto key = generate_key(options.key_type);
  if (!key) {
    return fail(key.error());
  }
  auto subject = make_name({{"O", organization}, {"CN", options.user}});
  if (!subject) {
    return fail(subject.error());
  }
  auto cert = new_cert(subject->get(), X509_get_subject_name(ca->cert.get()), key->get(),
                       validity_from_now(options.days, options.backdate_days));
  if (!cert) {
    return fail(cert.error());
  }
  if (auto ok = add_extensions(cert->get(), ca->cert.get(),
                               {{NID_basic_constraints, "critical,CA:FALSE"},
                                {NID_key_usage, "critical,digitalSignature"},
                                {NID_ext_key_usage, "clientAuth"},
                                {NID_subject_key_identifier, "hash"},
                                {NID_authority_key_identifier, "keyid:always"}});
      !ok) {
    return fail(ok.error());
  }
  if (auto ok = sign_cert(cert->get(), ca->key.get()); !ok) {
    return fail(ok.error());
  }
  auto serial = serial_hex(X509_get0_serialNumber(cert->get()));
  if (!serial) {
    return fail(serial.error());
  }
  bundle.serial = *serial;

  auto ca_text = cert_pem(ca->cert.get());
  auto cert_text = cert_pem(cert->get());
  auto key_text = key_pem(key->get());
  for (const auto* text : {&ca_text, &cert_text, &key_text}) {
    if (!*text) {
      return fail(text->error());
    }
  }

  auto created = make_directories(out);
  if (!created) {
    return fail(created.error());
  }
  FileSet files(out, std::move(*created));
  if (auto ok = files.stage(bundle_key_file, *key_text, 0600, false); !ok) {
    return fail(ok.error());
  }
  if (auto ok = files.stage(bundle_cert_file, *cert_text, 0644, false); !ok) {
    return fail(ok.error());
  }
  // ca.pem is only a copy of the CA certificate; refreshing one left by an earlier bundle is
  // harmless, so it is the one file that may be replaced.
  if (auto ok = files.stage(bundle_ca_file, *ca_text, 0644, true); !ok) {
    return fail(ok.error());
  }
  if (auto ok = files.commit(); !ok) {
    return fail(ok.error());
  }
  return bundle;
}

std::expected<Revocation, std::string> revoke_cert(const fs::path& ca_dir,
                                                   const fs::path& cert_file) {
  ERR_clear_error();
  auto ca = load_ca(ca_dir);
  if (!ca) {
    return fail(ca.error());
  }
  auto cert = load_cert(cert_file);
  if (!cert) {
    return fail(cert.error());
  }
  EVP_PKEY* ca_public = X509_get0_pubkey(ca->cert.get());
  if (X509_check_issued(ca->cert.get(), cert->get()) != X509_V_OK ||
      X509_verify(cert->get(), ca_public) != 1) {
    ERR_clear_error();
    return fail(cert_file.string() + " was not issued by the CA in " + ca_dir.string());
  }
  if (X509_cmp(ca->cert.get(), cert->get()) == 0) {
    return fail(cert_file.string() + " is the CA certificate itself; it cannot be revoked");
  }
  auto serial = serial_hex(X509_get0_serialNumber(cert->get()));
  if (!serial) {
    return fail(serial.error());
  }

  DirectoryLock lock;
  if (auto ok = lock.lock(ca_dir); !ok) {
    return fail(ok.error());
  }
  const fs::path crl_path = ca_dir / crl_file;
  auto crl = load_crl(crl_path);
  if (!crl) {
    return fail(crl.error());
  }
  if (X509_NAME_cmp(X509_CRL_get_issuer(crl->get()), X509_get_subject_name(ca->cert.get())) != 0 ||
      X509_CRL_verify(crl->get(), ca_public) != 1) {
    ERR_clear_error();
    return fail(crl_path.string() + " is not signed by the CA in " + ca_dir.string());
  }

  X509_REVOKED* existing = nullptr;
  if (X509_CRL_get0_by_serial(crl->get(), &existing, X509_get0_serialNumber(cert->get())) == 1) {
    return Revocation{*serial, true};
  }

  int critical = 0;
  IntegerPtr old_number(static_cast<ASN1_INTEGER*>(
      X509_CRL_get_ext_d2i(crl->get(), NID_crl_number, &critical, nullptr)));
  if (!old_number && critical != -1) {
    return fail(openssl_error(crl_path.string() + " has an unreadable CRL number"));
  }
  BignumPtr number(old_number ? ASN1_INTEGER_to_BN(old_number.get(), nullptr) : BN_new());
  if (!number || BN_add_word(number.get(), 1) != 1) {
    return fail(openssl_error("cannot compute the next CRL number"));
  }

  RevokedPtr revoked(X509_REVOKED_new());
  TimePtr now(ASN1_TIME_set(nullptr, std::time(nullptr)));
  if (!revoked || !now ||
      X509_REVOKED_set_serialNumber(revoked.get(), X509_get_serialNumber(cert->get())) != 1 ||
      X509_REVOKED_set_revocationDate(revoked.get(), now.get()) != 1) {
    return fail(openssl_error("cannot build the revocation entry"));
  }
  if (X509_CRL_add0_revoked(crl->get(), revoked.get()) != 1) {
    return fail(openssl_error("cannot add the revocation entry"));
  }
  static_cast<void>(revoked.release());
  if (auto ok = sign_crl(crl->get(), ca->cert.get(), ca->key.get(), number.get()); !ok) {
    return fail(ok.error());
  }
  auto text = crl_pem(crl->get());
  if (!text) {
    return fail(text.error());
  }
  FileSet files(ca_dir, {});
  if (auto ok = files.stage(crl_file, *text, 0644, true); !ok) {
    return fail(ok.error());
  }
  if (auto ok = files.commit(); !ok) {
    return fail(ok.error());
  }
  return Revocation{*serial, false};
}

std::expected<CertIdentity, std::string> read_identity(const fs::path& cert_pem_path) {
  ERR_clear_error();
  auto cert = load_cert(cert_pem_path);
  if (!cert) {
    return fail(cert.error());
  }
  const X509_NAME* subject = X509_get_subject_name(cert->get());
  auto field = [&](int nid, const char* label) -> Result<std::string> {
    const int first = X509_NAME_get_index_by_NID(subject, nid, -1);
    if (first < 0) {
      return std::string();
    }
    if (X509_NAME_get_index_by_NID(subject, nid, first) >= 0) {
      return fail(cert_pem_path.string() + ": the subject has more than one " + label);
    }
    const ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, first));
    unsigned char* utf8 = nullptr;
    const int size = ASN1_STRING_to_UTF8(&utf8, value);
    if (size < 0) {
      return fail(openssl_error(cert_pem_path.string() + ": unreadable " + label));
    }
    OpensslBytesPtr owned(utf8);
    return std::string(reinterpret_cast<const char*>(owned.get()), static_cast<std::size_t>(size));
  };
  auto common_name = field(NID_commonName, "CN");
  if (!common_name) {
    return fail(common_name.error());
  }
  auto organization = field(NID_organizationName, "O");
  if (!organization) {
    return fail(organization.error());
  }
  auto serial = serial_hex(X509_get0_serialNumber(cert->get()));
  if (!serial) {
    return fail(serial.error());
  }
  return CertIdentity{std::move(*common_name), std::move(*organization), std::move(*serial)};
}

std::string describe_bundle(const IssuedBundle& bundle, std::string_view host_port) {
  const std::string host(host_port);
  std::string out;
  out += "serial: " + bundle.serial + "\n";
  out += "docker context create " + bundle.context_name + " --docker \"host=tcp://" + host +
         ",ca=" + bundle.ca_cert.string() + ",cert=" + bundle.cert.string() +
         ",key=" + bundle.key.string() + "\"\n";
  out += "export DOCKER_HOST=tcp://" + host +
         " DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=" + bundle.out_dir.string() + "\n";
  return out;
}

std::expected<void, std::string> replace_file(const std::filesystem::path& file,
                                              std::string_view data) {
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    return std::unexpected(errno_error("cannot stat", file, errno));
  }
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  FileSet set(dir, {});
  if (auto staged = set.stage(file.filename().string(), data, st.st_mode & 07777, true);
      !staged) {
    return staged;
  }
  return set.commit();
}

}  // namespace berth::ctl::pki
