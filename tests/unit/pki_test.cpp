// berthctl's certificate authority, checked with OpenSSL itself: chains verify with
// X509_verify_cert, CRL entries are looked up with X509_CRL_get0_by_serial, and nothing is
// ever overwritten or left half-written.

#include "ctl/pki.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
namespace pki = berth::ctl::pki;

template <auto Free>
struct Freer {
  template <class T>
  void operator()(T* p) const noexcept {
    Free(p);
  }
};

using CertPtr = std::unique_ptr<X509, Freer<X509_free>>;
using CrlPtr = std::unique_ptr<X509_CRL, Freer<X509_CRL_free>>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, Freer<BIO_free_all>>;
using StorePtr = std::unique_ptr<X509_STORE, Freer<X509_STORE_free>>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, Freer<X509_STORE_CTX_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Freer<BN_free>>;
using IntegerPtr = std::unique_ptr<ASN1_INTEGER, Freer<ASN1_INTEGER_free>>;
using GeneralNamesPtr = std::unique_ptr<GENERAL_NAMES, Freer<GENERAL_NAMES_free>>;
using BasicConstraintsPtr = std::unique_ptr<BASIC_CONSTRAINTS, Freer<BASIC_CONSTRAINTS_free>>;
using OctetsPtr = std::unique_ptr<ASN1_OCTET_STRING, Freer<ASN1_OCTET_STRING_free>>;

/// A fresh directory under /tmp, removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "berth-pki-test-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&&) = delete;
  TempDir& operator=(TempDir&&) = delete;

  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }

  [[nodiscard]] const fs::path& path() const { return path_; }

  [[nodiscard]] fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

CertPtr read_cert(const fs::path& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  REQUIRE(bio);
  CertPtr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(cert);
  return cert;
}

CrlPtr read_crl(const fs::path& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  REQUIRE(bio);
  CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(crl);
  return crl;
}

PkeyPtr read_key(const fs::path& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  REQUIRE(bio);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  REQUIRE(key);
  return key;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

unsigned mode_of(const fs::path& path) {
  struct stat st {};

  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777U;
}

std::vector<std::string> entries_of(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

/// X509_verify_cert's verdict on `leaf` against `ca` for a TLS purpose: X509_V_OK or the error.
int verify(X509* ca, X509* leaf, int purpose, X509_CRL* crl = nullptr) {
  StorePtr store(X509_STORE_new());
  REQUIRE(store);
  REQUIRE(X509_STORE_add_cert(store.get(), ca) == 1);
  unsigned long flags = X509_V_FLAG_X509_STRICT;
  if (crl != nullptr) {
    REQUIRE(X509_STORE_add_crl(store.get(), crl) == 1);
    flags |= X509_V_FLAG_CRL_CHECK;
  }
  REQUIRE(X509_STORE_set_flags(store.get(), flags) == 1);
  StoreCtxPtr ctx(X509_STORE_CTX_new());
  REQUIRE(ctx);
  REQUIRE(X509_STORE_CTX_init(ctx.get(), store.get(), leaf, nullptr) == 1);
  REQUIRE(X509_STORE_CTX_set_purpose(ctx.get(), purpose) == 1);
  const int ok = X509_verify_cert(ctx.get());
  const int error = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  return ok == 1 ? X509_V_OK : error;
}

std::string subject_field(X509* cert, int nid) {
  X509_NAME* name = X509_get_subject_name(cert);
  const int index = X509_NAME_get_index_by_NID(name, nid, -1);
  if (index < 0) {
    return {};
  }
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
          static_cast<std::size_t>(ASN1_STRING_length(data))};
}

std::string ec_curve(EVP_PKEY* key) {
  char name[64] = {};
  std::size_t length = 0;
  if (EVP_PKEY_get_utf8_string_param(key, "group", name, sizeof name, &length) != 1) {
    return {};
  }
  return {name, length};
}

bool is_critical(X509* cert, int nid) {
  const int index = X509_get_ext_by_NID(cert, nid, -1);
  REQUIRE(index >= 0);
  return X509_EXTENSION_get_critical(X509_get_ext(cert, index)) == 1;
}

long long seconds_between(const ASN1_TIME* from, const ASN1_TIME* to) {
  int days = 0;
  int seconds = 0;
  REQUIRE(ASN1_TIME_diff(&days, &seconds, from, to) == 1);
  return static_cast<long long>(days) * 86400 + seconds;
}

/// Negative for a time in the past.
long long seconds_from_now(const ASN1_TIME* t) {
  int days = 0;
  int seconds = 0;
  REQUIRE(ASN1_TIME_diff(&days, &seconds, nullptr, t) == 1);
  return static_cast<long long>(days) * 86400 + seconds;
}

std::string crl_number(X509_CRL* crl) {
  IntegerPtr number(
      static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl, NID_crl_number, nullptr, nullptr)));
  REQUIRE(number);
  BignumPtr bn(ASN1_INTEGER_to_BN(number.get(), nullptr));
  char* dec = BN_bn2dec(bn.get());
  std::string out(dec);
  OPENSSL_free(dec);
  return out;
}

pki::IssueOptions tenant_options(const TempDir& tmp, const std::string& tenant,
                                 const std::string& user, const std::string& out = "bundle") {
  pki::IssueOptions options;
  options.ca_dir = tmp / "ca";
  options.tenant = tenant;
  options.user = user;
  options.out_dir = tmp / out;
  return options;
}

void init_ca(const TempDir& tmp) {
  auto ca = pki::init_ca(tmp / "ca");
  REQUIRE(ca.has_value());
}

constexpr std::int64_t day = 86400;

}  // namespace

TEST_CASE("a new CA directory holds a self-signed EC P-256 CA certificate for 10 years", "[pki]") {
  TempDir tmp;
  auto paths = pki::init_ca(tmp / "ca");
  REQUIRE(paths.has_value());

  CertPtr ca = read_cert(paths->ca_cert);
  PkeyPtr key = read_key(paths->ca_key);
  CHECK(subject_field(ca.get(), NID_commonName) == "berth client CA");
  CHECK(X509_check_private_key(ca.get(), key.get()) == 1);
  CHECK(EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_EC);
  CHECK(ec_curve(key.get()) == "prime256v1");
  CHECK(verify(ca.get(), ca.get(), X509_PURPOSE_ANY) == X509_V_OK);
  CHECK(X509_check_ca(ca.get()) == 1);
  CHECK(is_critical(ca.get(), NID_basic_constraints));
  CHECK(is_critical(ca.get(), NID_key_usage));
  CHECK(X509_get_key_usage(ca.get()) == (KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  CHECK(X509_get0_subject_key_id(ca.get()) != nullptr);
  const long long lifetime =
      seconds_between(X509_get0_notBefore(ca.get()), X509_get0_notAfter(ca.get()));
  CHECK(lifetime >= 3650 * day);
  CHECK(lifetime <= 3653 * day);
}

TEST_CASE("a new CA directory is private to its owner and so are its keys", "[pki]") {
  TempDir tmp;
  auto paths = pki::init_ca(tmp / "nested" / "ca");
  REQUIRE(paths.has_value());
  CHECK(mode_of(paths->dir) == 0700);
  CHECK(mode_of(paths->ca_key) == 0600);
  CHECK(mode_of(paths->server_key) == 0600);
  CHECK(mode_of(paths->ca_cert) == 0644);
  CHECK(entries_of(paths->dir) == std::vector<std::string>{"ca-key.pem", "ca.pem", "crl.pem",
                                                           "server-cert.pem", "server-key.pem"});
}

TEST_CASE("the server certificate of a new CA is a TLS server certificate for every host given",
          "[pki]") {
  TempDir tmp;
  pki::CaOptions options;
  std::vector<std::string> dns;
  std::vector<std::string> ips;
  long long days = 825;
  SECTION("default hosts") {
    dns = {"localhost"};
    ips = {"127.0.0.1", "::1"};
  }
  SECTION("hosts and validity given by the operator") {
    options.hosts = {"docker.example.com", "10.1.2.3", "fd00::7", "node-2.example.com"};
    options.server_days = 30;
    dns = {"docker.example.com", "node-2.example.com"};
    ips = {"10.1.2.3", "fd00::7"};
    days = 30;
  }
  auto paths = pki::init_ca(tmp / "ca", options);
  REQUIRE(paths.has_value());
  CertPtr ca = read_cert(paths->ca_cert);
  CertPtr server = read_cert(paths->server_cert);
  PkeyPtr key = read_key(paths->server_key);

  CHECK(verify(ca.get(), server.get(), X509_PURPOSE_SSL_SERVER) == X509_V_OK);
  CHECK(verify(ca.get(), server.get(), X509_PURPOSE_SSL_CLIENT) != X509_V_OK);
  CHECK(X509_check_private_key(server.get(), key.get()) == 1);
  CHECK(EVP_PKEY_get_base_id(key.get()) == EVP_PKEY_EC);
  CHECK(subject_field(server.get(), NID_commonName) ==
        (dns.size() == 1 ? "localhost" : "docker.example.com"));
  for (const std::string& name : dns) {
    CAPTURE(name);
    CHECK(X509_check_host(server.get(), name.data(), name.size(), 0, nullptr) == 1);
  }
  for (const std::string& ip : ips) {
    CAPTURE(ip);
    CHECK(X509_check_ip_asc(server.get(), ip.c_str(), 0) == 1);
  }
  CHECK(X509_check_host(server.get(), "evil.example.com", 0, 0, nullptr) == 0);
  CHECK((X509_get_extended_key_usage(server.get()) & XKU_SSL_SERVER) != 0);
  CHECK(X509_get_key_usage(server.get()) == KU_DIGITAL_SIGNATURE);
  const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(server.get());
  REQUIRE(aki != nullptr);
  CHECK(ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(ca.get())) == 0);
  CHECK(seconds_between(X509_get0_notBefore(server.get()), X509_get0_notAfter(server.get())) ==
        days * day);
}

TEST_CASE("a new CA starts with an empty CRL signed by the CA for a year", "[pki]") {
  TempDir tmp;
  auto paths = pki::init_ca(tmp / "ca");
  REQUIRE(paths.has_value());
  CertPtr ca = read_cert(paths->ca_cert);
  CrlPtr crl = read_crl(paths->crl);
  CHECK(X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.get())) == 1);
  CHECK(X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), X509_get_subject_name(ca.get())) == 0);
  CHECK(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl.get())) <= 0);
  CHECK(crl_number(crl.get()) == "1");
  CHECK(std::abs(seconds_from_now(X509_CRL_get0_lastUpdate(crl.get()))) < 60);
  CHECK(seconds_between(X509_CRL_get0_lastUpdate(crl.get()), X509_CRL_get0_nextUpdate(crl.get())) ==
        365 * day);
}

TEST_CASE("initializing a directory that already holds a CA is refused and changes nothing",
          "[pki]") {
  TempDir tmp;
  auto first = pki::init_ca(tmp / "ca");
  REQUIRE(first.has_value());
  const std::string key_before = slurp(first->ca_key);
  const std::string cert_before = slurp(first->ca_cert);
  const std::string crl_before = slurp(first->crl);

  auto second = pki::init_ca(tmp / "ca");
  REQUIRE_FALSE(second.has_value());
  CHECK_THAT(second.error(), Catch::Contains("ca-key.pem already exists"));
  CHECK(slurp(first->ca_key) == key_before);
  CHECK(slurp(first->ca_cert) == cert_before);
  CHECK(slurp(first->crl) == crl_before);
  CHECK(entries_of(tmp / "ca").size() == 5);
}

TEST_CASE("a server host that is neither an IP address nor a DNS name is refused", "[pki]") {
  const std::string host =
      GENERATE(as<std::string>{}, "bad host", "a.com,DNS:evil.com", "", "-lead.example.com", "a..b",
               "a/b", "x_y.com", std::string("nul\0byte", 8));
  CAPTURE(host);
  TempDir tmp;
  pki::CaOptions options;
  options.hosts = {"localhost", host};
  auto result = pki::init_ca(tmp / "ca", options);
  CHECK_FALSE(result.has_value());
  CHECK_FALSE(fs::exists(tmp / "ca"));
}

TEST_CASE("a client certificate issued for a tenant carries the tenant as its organization",
          "[pki]") {
  TempDir tmp;
  init_ca(tmp);
  auto bundle = pki::issue_client_cert(tenant_options(tmp, "acme-7", "alice"));
  REQUIRE(bundle.has_value());
  CertPtr cert = read_cert(bundle->cert);
  CHECK(subject_field(cert.get(), NID_organizationName) == "acme-7");
  CHECK(subject_field(cert.get(), NID_commonName) == "alice");
  CHECK(bundle->context_name == "acme-7-alice");

  auto identity = pki::read_identity(bundle->cert);
  REQUIRE(identity.has_value());
  CHECK(identity->organization == "acme-7");
  CHECK(identity->common_name == "alice");
  CHECK(identity->serial == bundle->serial);
}

TEST_CASE("an operator certificate carries the operators' organization", "[pki]") {
  TempDir tmp;
  init_ca(tmp);
  pki::IssueOptions options = tenant_options(tmp, "", "root");
  options.tenant.reset();
  auto bundle = pki::issue_client_cert(options);
  REQUIRE(bundle.has_value());
  auto identity = pki::read_identity(bundle->cert);
  REQUIRE(identity.has_value());
  CHECK(identity->organization == "berth-operators");
  CHECK(identity->common_name == "root");
  CHECK(bundle->context_name == "operator-root");
}

TEST_CASE("a tenant cannot be issued the operators' organization", "[pki]") {
  TempDir tmp;
  init_ca(tmp);
  auto bundle = pki::issue_client_cert(tenant_options(tmp, "berth-operators", "mallory"));
  REQUIRE_FALSE(bundle.has_value());
  CHECK_THAT(bundle.error(), Catch::Contains("reserved"));
  CHECK_FALSE(fs::exists(tmp / "bundle"));
}

TEST_CASE("a client certificate verifies against the CA for TLS clients only", "[pki]") {
  TempDir tmp;
  init_ca(tmp);
  auto bundle = pki::issue_client_cert(tenant_options(tmp, "acme", "alice"));
  REQUIRE(bundle.has_value());
  CertPtr ca = read_cert(tmp / "ca" / "ca.pem");
  CertPtr cert = read_cert(bundle->cert);

  CHECK(verify(ca.get(), cert.get(), X509_PURPOSE_SSL_CLIENT) == X509_V_OK);
  CHECK(verify(ca.get(), cert.get(), X509_PURPOSE_SSL_SERVER) != X509_V_OK);
  CHECK(X509_get_extended_key_usage(cert.get()) == XKU_SSL_CLIENT);
  CHECK(X509_get_key_usage(cert.get()) == KU_DIGITAL_SIGNATURE);
  CHECK(is_critical(cert.get(), NID_key_usage));
  CHECK(X509_check_ca(cert.get()) == 0);
  CHECK(X509_get_ext_by_NID(cert.get(), NID_subject_alt_name, -1) < 0);
  CHECK(X509_get_version(cert.get()) == X509_VERSION_3);

  SECTION("and not against another CA") {
    TempDir other;
    REQUIRE(pki::init_ca(other / "ca").has_value());
    CertPtr other_ca = read_cert(other / "ca" / "ca.pem");
    CHECK(verify(other_ca.get(), cert.get(), X509_PURPOSE_SSL_CLIENT) != X509_V_OK);
  }
}

TEST_CASE("a client key is EC P-256 by default and RSA 3072 on request", "[pki]") {
  TempDir tmp;
  init_ca(tmp);
  pki::IssueOptions options = tenant_options(tmp, "acme", "alice");
  int expected_type = EVP_PKEY_EC;
  int expected_bits = 256;
  SECTION("default") {}
  SECTION("rsa") {
    options.key_type = pki::KeyType::rsa_3072;
    expected_type = EVP_PKEY_RSA;
    expected_bits = 3072;
  }
  auto bundle = pki::issue_client_cert(options);
  REQUIRE(bundle.has_value());
  PkeyPtr key = read_key(bundle->key);
  CertPtr cert = read_cert(bundle->cert);
  CHECK(EVP_PKEY_get_base_id(key.get()) == expected_type);
  CHECK(EVP_PKEY_get_bits(key.get()) == expected_bits);
  if (expected_type == EVP_PKEY_EC) {
    CHECK(ec_curve(key.get()) == "prime256v1");
  }
  CHECK(X509_check_private_key(cert.get(), key.get()) == 1);
}

TEST_CASE("a client bundle has docker's layout and its key is readable by its owner only",
          "[pki]") {
  TempDir tmp;
  init_ca(tmp);
  auto bundle = pki::issue_client_cert(tenant_options(tmp, "acme", "alice", "new/bundle"));
  REQUIRE(bundle.has_value());
  CHECK(bundle->out_dir.is_absolute());
  CHECK(bundle->out_dir == tmp / "new" / "bundle");
  CHECK(entries_of(bundle->out_dir) == std::vector<std::string>{"ca.pem", "cert.pem", "key.pem"});
  CHECK(mode_of(bundle->out_dir) == 0700);
  CHECK(mode_of(bundle->key) == 0600);
  CHECK(mode_of(bundle->cert) == 0644);
  CertPtr copy = read_cert(bundle->ca_cert);
  CertPtr ca = read_cert(tmp / "ca" / "ca.pem");
  CHECK(X509_cmp(copy.get(), ca.get()) == 0);
}

TEST_CASE("client serials are random positive numbers of at most 128 bits written in lowercase hex",
          "[pki]") {
  TempDir tmp;
  init_ca(tmp);
  std::vector<std::string> serials;
  for (const char* user : {"a", "b", "c"}) {
    auto bundle = pki::issue_client_cert(tenant_options(tmp, "acme", user, user));
    REQUIRE(bundle.has_value());
    CertPtr cert = read_cert(bundle->cert);
    BignumPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr));
    CHECK(BN_is_negative(bn.get()) == 0);
    CHECK_FALSE(BN_is_zero(bn.get()));
    CHECK(BN_num_bits(bn.get()) <= 128);
    CHECK(BN_num_bits(bn.get()) > 64);  // fails with probability 2^-64
    const std::string& serial = bundle->serial;
    CHECK(serial.find_first_not_of("0123456789abcdef") == std::string::npos);
    CHECK(serial.front() != '0');
    serials.push_back(serial);
  }
  CHECK(serials[0] != serials[1]);
  CHECK(serials[1] != serials[2]);
}

TEST_CASE("validity starts the backdate plus a clock skew margin before now and lasts the days",
          "[pki]") {
  TempDir tmp;
  init_ca(tmp);
  pki::IssueOptions options = tenant_options(tmp, "acme", "alice");
  options.days = 10;
  options.backdate_days = 3;
  auto bundle = pki::issue_client_cert(options);
  REQUIRE(bundle.has_value());
  CertPtr cert = read_cert(bundle->cert);
  const long long start = seconds_from_now(X509_get0_notBefore(cert.get()));
  CHECK(start <= -3 * day - 60);
  CHECK(start >= -3 * day - 15 * 60);
  CHECK(seconds_between(X509_get0_notBefore(cert.get()), X509_get0_notAfter(cert.get())) ==
        10 * day);

  SECTION("so a certificate backdated past its lifetime is already expired") {
    options.days = 1;
    options.out_dir = tmp / "expired";
    auto expired = pki::issue_client_cert(options);
    REQUIRE(expired.has_value());
    CertPtr old = read_cert(expired->cert);
    CertPtr ca = read_cert(tmp / "ca" / "ca.pem");
    CHECK(verify(ca.get(), old.get(), X509_PURPOSE_SSL_CLIENT) == X509_V_ERR_CERT_HAS_EXPIRED);
  }
}

TEST_CASE("a bundle is never written over an existing key or certificate", "[pki]") {
  TempDir tmp;
  init_ca(tmp);
  fs::create_directories(tmp / "bundle");
  const std::string name = GENERATE(as<std::string>{}, "key.pem", "cert.pem");
  CAPTURE(name);
  { std::ofstream(tmp / "bundle" / name) << "precious"; }

  auto bundle = pki::issue_client_cert(tenant_options(tmp, "acme", "alice"));
  REQUIRE_FALSE(bundle.has_value());
  CHECK_THAT(bundle.error(), Catch::Contains("already exists"));
  CHECK(slurp(tmp / "bundle" / name) == "precious");
  CHECK(entries_of(tmp / "bundle") == std::vector<std::string>{name});
}

TEST_CASE("a failed issue leaves no partial bundle behind", "[pki]") {
  TempDir tmp;
  init_ca(tmp);
  SECTION("when the last file cannot be written") {
    // ca.pem is published last; a directory in its place makes that step fail after key.pem
    // and cert.pem are already in place, so both must be taken back.
    fs::create_directories(tmp / "bundle" / "ca.pem");
    auto bundle = pki::issue_client_cert(tenant_options(tmp, "acme", "alice"));
    REQUIRE_FALSE(bundle.has_value());
    CHECK(entries_of(tmp / "bundle") == std::vector<std::string>{"ca.pem"});
    CHECK(fs::is_empty(tmp / "bundle" / "ca.pem"));
  }
  SECTION("when the CA cannot be read") {
    pki::IssueOptions options = tenant_options(tmp, "acme", "alice", "fresh/bundle");
    options.ca_dir = tmp / "missing";
    auto bundle = pki::issue_client_cert(options);
    REQUIRE_FALSE(bundle.has_value());
    CHECK_FALSE(fs::exists(tmp / "fresh"));
  }
}

TEST_CASE("tenant ids and user names outside their alphabets are refused", "[pki]") {
  TempDir tmp;
  init_ca(tmp);
  SECTION("tenant ids") {
    const std::string tenant = GENERATE(as<std::string>{}, "", "Acme", "-acme", "acme-", "ac me",
                                        "acme/../x", "ac_me", std::string(64, 'a'));
    CAPTURE(tenant);
    auto bundle = pki::issue_client_cert(tenant_options(tmp, tenant, "alice"));
    CHECK_FALSE(bundle.has_value());
  }
  SECTION("user names") {
    const std::string user =
        GENERATE(as<std::string>{}, "", "a,O=berth-operators", "a=b", "a/b", "a\\b", "a+b", "a\"b",
                 "a'b", "tab\there", " lead", "trail ", "caf\xc3\xa9", std::string("nul\0x", 5),
                 std::string(65, 'u'));
    CAPTURE(user);
    CHECK_FALSE(pki::is_valid_user_name(user));
    auto bundle = pki::issue_client_cert(tenant_options(tmp, "acme", user));
    CHECK_FALSE(bundle.has_value());
  }
  CHECK_FALSE(fs::exists(tmp / "bundle"));
  CHECK(pki::is_valid_user_name("alice.smith@example.com"));
  CHECK(pki::is_valid_user_name(std::string(64, 'u')));
}

TEST_CASE("a revoked certificate's serial appears in the CA's re-signed CRL", "[pki]") {
  TempDir tmp;
  init_ca(tmp);
  auto alice = pki::issue_client_cert(tenant_options(tmp, "acme", "alice", "alice"));
  auto bob = pki::issue_client_cert(tenant_options(tmp, "acme", "bob", "bob"));
  REQUIRE(alice.has_value());
  REQUIRE(bob.has_value());

  auto revoked = pki::revoke_cert(tmp / "ca", alice->cert);
  REQUIRE(revoked.has_value());
  CHECK(revoked->serial == alice->serial);
  CHECK_FALSE(revoked->already_revoked);

  CertPtr ca = read_cert(tmp / "ca" / "ca.pem");
  CrlPtr crl = read_crl(tmp / "ca" / "crl.pem");
  CertPtr alice_cert = read_cert(alice->cert);
  CertPtr bob_cert = read_cert(bob->cert);
  X509_REVOKED* entry = nullptr;
  CHECK(X509_CRL_get0_by_serial(crl.get(), &entry, X509_get0_serialNumber(alice_cert.get())) == 1);
  CHECK(X509_CRL_get0_by_serial(crl.get(), &entry, X509_get0_serialNumber(bob_cert.get())) == 0);
  CHECK(X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.get())) == 1);
  CHECK(crl_number(crl.get()) == "2");
  CHECK(verify(ca.get(), alice_cert.get(), X509_PURPOSE_SSL_CLIENT, crl.get()) ==
        X509_V_ERR_CERT_REVOKED);
  CHECK(verify(ca.get(), bob_cert.get(), X509_PURPOSE_SSL_CLIENT, crl.get()) == X509_V_OK);

  SECTION("and a second revocation keeps the first") {
    REQUIRE(pki::revoke_cert(tmp / "ca", bob->cert).has_value());
    CrlPtr after = read_crl(tmp / "ca" / "crl.pem");
    CHECK(crl_number(after.get()) == "3");
    CHECK(X509_CRL_get0_by_serial(after.get(), &entry, X509_get0_serialNumber(alice_cert.get())) ==
          1);
    CHECK(X509_CRL_get0_by_serial(after.get(), &entry, X509_get0_serialNumber(bob_cert.get())) ==
          1);
    CHECK(X509_CRL_verify(after.get(), X509_get0_pubkey(ca.get())) == 1);
  }
}

TEST_CASE("revoking an already revoked certificate succeeds and changes nothing", "[pki]") {
  TempDir tmp;
  init_ca(tmp);
  auto alice = pki::issue_client_cert(tenant_options(tmp, "acme", "alice"));
  REQUIRE(alice.has_value());
  REQUIRE(pki::revoke_cert(tmp / "ca", alice->cert).has_value());
  const std::string crl_before = slurp(tmp / "ca" / "crl.pem");

  auto again = pki::revoke_cert(tmp / "ca", alice->cert);
  REQUIRE(again.has_value());
  CHECK(again->already_revoked);
  CHECK(again->serial == alice->serial);
  CHECK(slurp(tmp / "ca" / "crl.pem") == crl_before);
}

TEST_CASE("a certificate another CA issued cannot be revoked and the CRL stays as it was",
          "[pki]") {
  TempDir tmp;
  init_ca(tmp);
  TempDir other;
  REQUIRE(pki::init_ca(other / "ca").has_value());
  pki::IssueOptions options = tenant_options(other, "acme", "eve");
  auto foreign = pki::issue_client_cert(options);
  REQUIRE(foreign.has_value());
  const std::string crl_before = slurp(tmp / "ca" / "crl.pem");

  auto revoked = pki::revoke_cert(tmp / "ca", foreign->cert);
  REQUIRE_FALSE(revoked.has_value());
  CHECK_THAT(revoked.error(), Catch::Contains("not issued by"));
  CHECK(slurp(tmp / "ca" / "crl.pem") == crl_before);

  SECTION("nor can the CA certificate itself") {
    auto self = pki::revoke_cert(tmp / "ca", tmp / "ca" / "ca.pem");
    CHECK_FALSE(self.has_value());
    CHECK(slurp(tmp / "ca" / "crl.pem") == crl_before);
  }
}

TEST_CASE("reading an identity from a file without a certificate is refused", "[pki]") {
  TempDir tmp;
  init_ca(tmp);
  CHECK_FALSE(pki::read_identity(tmp / "ca" / "ca-key.pem").has_value());
  CHECK_FALSE(pki::read_identity(tmp / "nonexistent.pem").has_value());
  auto server = pki::read_identity(tmp / "ca" / "server-cert.pem");
  REQUIRE(server.has_value());
  CHECK(server->common_name == "localhost");
  CHECK(server->organization.empty());
}

TEST_CASE("issuing describes how to use the bundle with docker", "[pki]") {
  pki::IssuedBundle bundle;
  bundle.out_dir = "/b";
  bundle.ca_cert = "/b/ca.pem";
  bundle.cert = "/b/cert.pem";
  bundle.key = "/b/key.pem";
  bundle.serial = "1f";
  bundle.context_name = "acme-alice";
  CHECK(pki::describe_bundle(bundle, "h:2376") ==
        "serial: 1f\n"
        "docker context create acme-alice --docker "
        "\"host=tcp://h:2376,ca=/b/ca.pem,cert=/b/cert.pem,key=/b/key.pem\"\n"
        "export DOCKER_HOST=tcp://h:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=/b\n");
}
