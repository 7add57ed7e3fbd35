#pragma once
// The operator's certificate authority: creates the CA directory, issues client certificate
// bundles in docker's layout, revokes certificates into the CRL, and reads a certificate's
// identity (CN, O, serial) the way the proxy's identify stage sees it.
//
// Refuses: overwriting any existing key or certificate of a CA or a bundle (nothing is written
// or changed when it refuses), tenant ids outside vocabulary::is_valid_tenant_id, the tenant id
// "berth-operators" (it would be indistinguishable from an operator's organization), user names
// that could be misread inside a distinguished name, hosts that are neither an IP address nor a
// DNS name, and revoking a certificate that the CA did not sign.
//
// Files are written atomically (temp file + link/rename in the same directory); keys are 0600
// and directories created here are 0700.

#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::ctl::pki {

/// The organization of every operator certificate.
inline constexpr std::string_view operator_organization = "berth-operators";
/// Common name of the CA certificate.
inline constexpr std::string_view ca_common_name = "berth client CA";

/// File names inside a CA directory.
inline constexpr std::string_view ca_cert_file = "ca.pem";
inline constexpr std::string_view ca_key_file = "ca-key.pem";
inline constexpr std::string_view server_cert_file = "server-cert.pem";
inline constexpr std::string_view server_key_file = "server-key.pem";
inline constexpr std::string_view crl_file = "crl.pem";

/// File names inside a client bundle (docker's DOCKER_CERT_PATH layout).
inline constexpr std::string_view bundle_ca_file = "ca.pem";
inline constexpr std::string_view bundle_cert_file = "cert.pem";
inline constexpr std::string_view bundle_key_file = "key.pem";

enum class KeyType { ec_p256, rsa_3072 };

struct CaOptions {
  /// DNS names or IP addresses for the server certificate; the first is its CN.
  /// Empty: localhost, 127.0.0.1, ::1.
  std::vector<std::string> hosts;
  int server_days = 825;  ///< validity of the server certificate, 1..36500
};

struct CaPaths {
  std::filesystem::path dir;
  std::filesystem::path ca_cert;
  std::filesystem::path ca_key;
  std::filesystem::path server_cert;
  std::filesystem::path server_key;
  std::filesystem::path crl;
};

/// Creates `dir` (0700, parents too) with a fresh CA, a server certificate and an empty CRL.
/// Precondition: none of the five files exists in `dir` (refused otherwise, nothing changed).
[[nodiscard]] std::expected<CaPaths, std::string> init_ca(const std::filesystem::path& dir,
                                                          const CaOptions& options = {});

struct IssueOptions {
  std::filesystem::path ca_dir;
  std::optional<std::string> tenant;  ///< nullopt: an operator certificate
  std::string user;                   ///< becomes the subject CN
  std::filesystem::path out_dir;
  int days = 365;         ///< 1..36500, counted from notBefore
  int backdate_days = 0;  ///< 0..36500, notBefore = now - backdate - clock skew margin
  KeyType key_type = KeyType::ec_p256;
};

struct IssuedBundle {
  std::filesystem::path out_dir;  ///< absolute
  std::filesystem::path ca_cert;  ///< absolute
  std::filesystem::path cert;     ///< absolute
  std::filesystem::path key;      ///< absolute
  std::string serial;             ///< lowercase hex, no leading zeros
  std::string context_name;       ///< "<tenant>-<user>" or "operator-<user>"
};

/// Issues a client certificate signed by the CA in `options.ca_dir` and writes the bundle
/// (ca.pem, cert.pem, key.pem) into `options.out_dir`, created if missing.
/// Precondition: neither out_dir/key.pem nor out_dir/cert.pem exists (refused otherwise).
/// On error nothing of the bundle is left behind.
[[nodiscard]] std::expected<IssuedBundle, std::string> issue_client_cert(
    const IssueOptions& options);

struct Revocation {
  std::string serial;            ///< lowercase hex, no leading zeros
  bool already_revoked = false;  ///< true: the CRL was left untouched
};

/// Adds the serial of the certificate in `cert_file` to ca_dir/crl.pem, bumps the CRL number
/// and re-signs it. The certificate must be signed by the CA of `ca_dir`, and crl.pem too.
/// Revoking an already revoked serial changes nothing and succeeds.
[[nodiscard]] std::expected<Revocation, std::string> revoke_cert(
    const std::filesystem::path& ca_dir, const std::filesystem::path& cert_file);

struct CertIdentity {
  std::string common_name;   ///< empty when the subject has no CN
  std::string organization;  ///< empty when the subject has no O
  std::string serial;        ///< lowercase hex, no leading zeros
};

/// Reads the first certificate of a PEM file. Refuses a subject with more than one CN or O,
/// since which one an identity rule would match is then ambiguous.
[[nodiscard]] std::expected<CertIdentity, std::string> read_identity(
    const std::filesystem::path& cert_pem);

/// 1..64 printable ASCII characters, no ',', '=', '/', '\\', '+', quotes, and no leading or
/// trailing space: nothing that could be read as a second attribute of a distinguished name.
[[nodiscard]] bool is_valid_user_name(std::string_view name) noexcept;

/// The lines berthctl prints after issuing: the serial, a `docker context create` command and
/// the equivalent environment, all for the daemon at `host_port` ("localhost:2376").
[[nodiscard]] std::string describe_bundle(const IssuedBundle& bundle, std::string_view host_port);

/// Replaces the existing file `file` with `data`, all or nothing, keeping its permission bits:
/// written in full to a temp file beside it, fsync'ed, renamed over it, the directory fsync'ed
/// (the policy file `berthctl host cordon` edits: berth-proxy never reads half of it).
[[nodiscard]] std::expected<void, std::string> replace_file(const std::filesystem::path& file,
                                                            std::string_view data);

}  // namespace berth::ctl::pki
