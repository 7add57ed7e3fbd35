#include "proxy/config.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace berth::proxy {

namespace {

constexpr const char* kUsage =
    "usage: berth-proxy --policy FILE [--listen HOST:PORT] [--upstream URL] [--workers N]\n"
    "                   [--shutdown-grace SECONDS] [--handshake-timeout SECONDS]\n"
    "                   [--header-timeout SECONDS] [--idle-timeout SECONDS]\n"
    "                   [--max-connections-per-address N] [--max-handshakes-per-address N]\n"
    "                   [--max-connections-per-certificate N]\n"
    "                   [--audit-log FILE]\n"
    "                   [--metrics-listen HOST:PORT] [--no-bridge-isolation]\n"
    "       berth-proxy --check FILE\n";

bool parse_unsigned(std::string_view text, unsigned& out) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && ptr == text.data() + text.size();
}

// A whole number of seconds above 0.
bool parse_seconds(std::string_view text, std::chrono::seconds& out) {
  unsigned n = 0;
  if (!parse_unsigned(text, n) || n == 0) {
    return false;
  }
  out = std::chrono::seconds(n);
  return true;
}

std::string openssl_errors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    out += out.empty() ? "" : "; ";
    out += text;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

std::string resolve(const std::filesystem::path& base, const std::string& file) {
  if (file.empty()) {
    return file;
  }
  std::filesystem::path p(file);
  return p.is_absolute() ? file : (base / p).lexically_normal().string();
}

std::expected<std::string, std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return std::unexpected(path + ": cannot be read: " + std::strerror(errno));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Loads every CRL in a PEM file into the store and turns on CRL checking for the leaf.
std::expected<void, std::string> load_crl(X509_STORE* store, const std::string& path) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (!bio) {
    return std::unexpected(path + ": cannot be read: " + openssl_errors());
  }
  int count = 0;
  while (X509_CRL* crl = PEM_read_bio_X509_CRL(bio, nullptr, nullptr, nullptr)) {
    X509_STORE_add_crl(store, crl);
    X509_CRL_free(crl);
    ++count;
  }
  BIO_free(bio);
  ERR_clear_error();
  if (count == 0) {
    return std::unexpected(path + ": no CRL found in the file");
  }
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  return {};
}

// A certificate file without its chain makes OpenSSL build the chain from the verify store
// (here: the client CAs) and verify it on every handshake: a tenth of a handshake's CPU. Build
// it once at load instead, without the self-signed root (as nginx sends it; RFC 8446 4.4.2: a
// trust anchor may be omitted, and a client can only trust the root it already has), and so
// also spare each client parsing the root.
void build_chain_once(SSL_CTX* c) {
  STACK_OF(X509)* chain = nullptr;
  STACK_OF(X509)* extra = nullptr;
  SSL_CTX_get0_chain_certs(c, &chain);
  SSL_CTX_get_extra_chain_certs_only(c, &extra);
  if (sk_X509_num(chain) > 0 || sk_X509_num(extra) > 0) {
    return;  // an explicit chain is sent as configured
  }
  if (SSL_CTX_build_cert_chain(c, SSL_BUILD_CHAIN_FLAG_NO_ROOT | SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR |
                                      SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR) > 0) {
    SSL_CTX_set_mode(c, SSL_MODE_NO_AUTO_CHAIN);
  }
  ERR_clear_error();
}

std::expected<SslCtxPtr, std::string> make_server_ctx(const policy::TlsFiles& tls) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()), SslCtxDeleter{});
  if (!ctx) {
    return std::unexpected("TLS: " + openssl_errors());
  }
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  // Client-initiated renegotiation is a CPU amplification vector; nothing in Docker needs it.
  SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                             SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Not SSL_MODE_RELEASE_BUFFERS: it frees and reallocates OpenSSL's 16 KiB record buffers
  // around every read and write, several large allocations per request. A session frees them
  // itself when it goes idle (Session::serve_requests), which is when their memory matters.
  SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(c, tls.cert.c_str()) != 1) {
    return std::unexpected(tls.cert + ": server certificate: " + openssl_errors());
  }
  if (SSL_CTX_use_PrivateKey_file(c, tls.key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return std::unexpected(tls.key + ": server key: " + openssl_errors());
  }
  if (SSL_CTX_check_private_key(c) != 1) {
    return std::unexpected(tls.key + ": does not match " + tls.cert);
  }
  if (SSL_CTX_load_verify_locations(c, tls.client_ca.c_str(), nullptr) != 1) {
    return std::unexpected(tls.client_ca + ": client CA: " + openssl_errors());
  }
  if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca.c_str())) {
    SSL_CTX_set_client_CA_list(c, names);
  }
  if (!tls.crl.empty()) {
    if (auto r = load_crl(SSL_CTX_get_cert_store(c), tls.crl); !r) {
      return std::unexpected(r.error());
    }
  }
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  static constexpr unsigned char sid_ctx[] = "berth";
  SSL_CTX_set_session_id_context(c, sid_ctx, sizeof sid_ctx - 1);
  // No session resumption: no TLS 1.3 tickets, no TLS 1.2 tickets, no session cache. A resumed
  // session skips certificate verification (expiry, the CRL), and Docker clients never resume
  // (the docker CLI is a new process per command; neither Go's client nor python-docker keeps
  // a session cache), so the two tickets OpenSSL sends by default were a third of the CPU of
  // every handshake, spent for nothing.
  SSL_CTX_set_num_tickets(c, 0);
  SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  build_chain_once(c);
  return ctx;
}

std::expected<SslCtxPtr, std::string> make_upstream_ctx(const policy::UpstreamTls& tls) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()), SslCtxDeleter{});
  if (!ctx) {
    return std::unexpected("TLS: " + openssl_errors());
  }
  SSL_CTX* c = ctx.get();
  SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION);
  SSL_CTX_set_options(c, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                          SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_load_verify_locations(c, tls.ca.c_str(), nullptr) != 1) {
    return std::unexpected(tls.ca + ": upstream CA: " + openssl_errors());
  }
  if (!tls.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(c, tls.cert.c_str()) != 1) {
      return std::unexpected(tls.cert + ": upstream client certificate: " + openssl_errors());
    }
    if (SSL_CTX_use_PrivateKey_file(c, tls.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      return std::unexpected(tls.key + ": upstream client key: " + openssl_errors());
    }
  }
  SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  return ctx;
}

std::expected<HostRuntime, std::string> make_host(const policy::FleetHost& spec) {
  HostRuntime h;
  h.name = spec.name;
  h.spec = &spec;
  auto address = parse_upstream(spec.url);
  if (!address) {
    return std::unexpected("host " + spec.name + ": " + address.error());
  }
  h.address = std::move(*address);
  if (h.address.kind == UpstreamAddress::Kind::tls) {
    if (spec.tls.ca.empty()) {
      return std::unexpected("host " + spec.name + " (" + spec.url + ") needs a tls ca");
    }
    auto client = make_upstream_ctx(spec.tls);
    if (!client) {
      return std::unexpected("host " + spec.name + ": " + client.error());
    }
    h.ctx = std::move(*client);
    h.server_name = spec.tls.server_name.empty() ? h.address.host : spec.tls.server_name;
  }
  if (!spec.node.empty()) {
    auto node = std::make_shared<HostRuntime>();
    node->name = spec.name + " (berth-node)";
    auto node_address = parse_upstream(spec.node);
    if (!node_address || node_address->kind != UpstreamAddress::Kind::tls) {
      return std::unexpected("host " + spec.name + ": node url " + spec.node +
                             " must be tls://host:port");
    }
    node->address = std::move(*node_address);
    auto client = make_upstream_ctx(spec.node_tls);
    if (!client) {
      return std::unexpected("host " + spec.name + " node: " + client.error());
    }
    node->ctx = std::move(*client);
    node->server_name =
        spec.node_tls.server_name.empty() ? node->address.host : spec.node_tls.server_name;
    h.node = std::move(node);
  }
  return h;
}

}  // namespace

std::expected<Options, std::string> parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&](std::string& out) -> bool {
      if (i + 1 >= argc) {
        return false;
      }
      out = argv[++i];
      return true;
    };
    std::string text;
    if (arg == "--policy" && value(o.policy_path)) {
    } else if (arg == "--check" && value(o.policy_path)) {
      o.check_only = true;
    } else if (arg == "--listen" && value(o.listen_override)) {
    } else if (arg == "--upstream" && value(o.upstream_override)) {
    } else if (arg == "--audit-log" && value(o.audit_log)) {
    } else if (arg == "--metrics-listen" && value(o.metrics_listen_override)) {
    } else if (arg == "--no-bridge-isolation") {
      o.bridge_isolation = false;
    } else if (arg == "--workers" && value(text) && parse_unsigned(text, o.workers) &&
               o.workers <= 64) {
    } else if (arg == "--shutdown-grace" && value(text) &&
               parse_unsigned(text, o.shutdown_grace_seconds)) {
    } else if (arg == "--handshake-timeout" && value(text) &&
               parse_seconds(text, o.client.handshake)) {
    } else if (arg == "--header-timeout" && value(text) && parse_seconds(text, o.client.header)) {
    } else if (arg == "--idle-timeout" && value(text) && parse_seconds(text, o.client.idle)) {
    } else if (arg == "--max-connections-per-address" && value(text) &&
               parse_unsigned(text, o.client.per_address) && o.client.per_address > 0) {
    } else if (arg == "--max-handshakes-per-address" && value(text) &&
               parse_unsigned(text, o.client.handshakes_per_address) &&
               o.client.handshakes_per_address > 0) {
    } else if (arg == "--max-connections-per-certificate" && value(text) &&
               parse_unsigned(text, o.client.per_certificate) && o.client.per_certificate > 0) {
    } else {
      return std::unexpected(std::string("berth-proxy: bad argument '") + std::string(arg) +
                             "'\n" + kUsage);
    }
  }
  if (o.policy_path.empty()) {
    return std::unexpected(std::string("berth-proxy: --policy FILE is required\n") + kUsage);
  }
  return o;
}

std::expected<UpstreamAddress, std::string> parse_upstream(std::string_view url) {
  UpstreamAddress a;
  a.text = std::string(url);
  auto host_port = [&](std::string_view rest) -> bool {
    const std::size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size()) {
      return false;
    }
    a.host = std::string(rest.substr(0, colon));
    a.port = std::string(rest.substr(colon + 1));
    if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']') {
      a.host = a.host.substr(1, a.host.size() - 2);
    }
    return true;
  };
  if (url.starts_with("unix://")) {
    a.kind = UpstreamAddress::Kind::unix_socket;
    a.path = std::string(url.substr(7));
    if (a.path.empty() || a.path.front() != '/') {
      return std::unexpected("upstream " + a.text + ": expected unix:///absolute/path");
    }
    return a;
  }
  if (url.starts_with("tcp://") && host_port(url.substr(6))) {
    a.kind = UpstreamAddress::Kind::tcp;
    return a;
  }
  if (url.starts_with("tls://") && host_port(url.substr(6))) {
    a.kind = UpstreamAddress::Kind::tls;
    return a;
  }
  return std::unexpected("upstream " + a.text +
                         ": expected unix:///path, tcp://host:port or tls://host:port");
}

std::expected<std::shared_ptr<const Runtime>, std::string> load_runtime(
    const Options& options, std::uint64_t generation) {
  auto text = read_file(options.policy_path);
  if (!text) {
    return std::unexpected(text.error());
  }
  auto parsed = policy::parse_policy(*text, options.policy_path);
  if (!parsed) {
    std::string out = policy::format(parsed.error());
    if (!out.empty() && out.back() == '\n') {
      out.pop_back();
    }
    return std::unexpected(out);
  }
  policy::Policy p = std::move(*parsed);
  const auto base =
      std::filesystem::absolute(options.policy_path).parent_path();
  for (std::string* f : {&p.tls.cert, &p.tls.key, &p.tls.client_ca, &p.tls.crl,
                         &p.upstream_tls.ca, &p.upstream_tls.cert, &p.upstream_tls.key}) {
    *f = resolve(base, *f);
  }
  auto rt = std::make_shared<Runtime>();
  rt->generation = generation;
  rt->listen = options.listen_override.empty() ? p.listen : options.listen_override;
  if (!options.upstream_override.empty()) {
    if (p.hosts.size() != 1) {
      return std::unexpected("--upstream names one daemon; the policy lists a fleet of " +
                             std::to_string(p.hosts.size()) + " hosts");
    }
    p.hosts.front().url = options.upstream_override;
  }
  auto server = make_server_ctx(p.tls);
  if (!server) {
    return std::unexpected(server.error());
  }
  rt->server_ctx = std::move(*server);
  for (policy::FleetHost& h : p.hosts) {
    for (std::string* f : {&h.tls.ca, &h.tls.cert, &h.tls.key, &h.node_tls.ca,
                           &h.node_tls.cert, &h.node_tls.key}) {
      *f = resolve(base, *f);
    }
  }
  auto made = std::make_shared<const policy::Policy>(std::move(p));
  for (const policy::FleetHost& h : made->hosts) {
    auto host = make_host(h);
    if (!host) {
      return std::unexpected(host.error());
    }
    rt->hosts.push_back(std::move(*host));
  }
  rt->policy = std::move(made);
  return std::shared_ptr<const Runtime>(std::move(rt));
}

const HostRuntime* Runtime::host(std::string_view name) const noexcept {
  for (const HostRuntime& h : hosts) {
    if (h.name == name) {
      return &h;
    }
  }
  return nullptr;
}

}  // namespace berth::proxy
