#include "node/server.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <iostream>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <openssl/x509.h>

#include "node/process.hpp"

namespace berth::node {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using Stream = ssl::stream<tcp::socket>;

namespace {

constexpr std::size_t window = 1024 * 1024;

struct Target {
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;
  [[nodiscard]] std::string param(std::string_view key) const {
    for (const auto& [k, v] : query) {
      if (k == key) {
        return v;
      }
    }
    return {};
  }
};

// Only the characters berth-proxy sends: no decoding is needed, and anything else is refused
// by the validity checks of what it names.
Target parse_target(std::string_view target) {
  Target t;
  const std::size_t q = target.find('?');
  t.path = std::string(target.substr(0, q));
  if (q == std::string_view::npos) {
    return t;
  }
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const std::size_t amp = rest.find('&');
    const std::string_view pair = rest.substr(0, amp);
    const std::size_t eq = pair.find('=');
    t.query.emplace_back(std::string(pair.substr(0, eq)),
                         eq == std::string_view::npos ? "" : std::string(pair.substr(eq + 1)));
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
  }
  return t;
}

void write_json(Stream& stream, unsigned status, const json& body) {
  http::response<http::string_body> res{static_cast<http::status>(status), 11};
  res.set(http::field::server, "berth-node");
  res.set(http::field::content_type, "application/json");
  res.keep_alive(false);
  res.body() = body.dump() + "\n";
  res.prepare_payload();
  boost::system::error_code ignored;
  http::write(stream, res, ignored);
}

void write_outcome(Stream& stream, const Outcome& o) {
  if (o.ok()) {
    write_json(stream, 200, o.detail);
  } else {
    write_json(stream, o.status, json{{"message", o.message}});
  }
}

void write_text(Stream& stream, unsigned status, std::string text) {
  http::response<http::string_body> res{static_cast<http::status>(status), 11};
  res.set(http::field::server, "berth-node");
  res.set(http::field::content_type, "text/plain; version=0.0.4");
  res.keep_alive(false);
  res.body() = std::move(text);
  res.prepare_payload();
  boost::system::error_code ignored;
  http::write(stream, res, ignored);
}

// The kept checkpoint and writable layer, streamed as tar runs. A failure midway ends the
// connection without the last chunk: the reader sees a broken body, never a short archive.
void send_archive(Stream& stream, Agent& agent, const std::string& id, const std::string& name,
                  const std::string& figures) {
  Child tar(agent.archive_command(id, name), Child::Pipe::from_stdout);
  if (!tar.started()) {
    write_json(stream, 500, json{{"message", "cannot run tar"}});
    return;
  }
  http::response<http::buffer_body> res{http::status::ok, 11};
  res.set(http::field::server, "berth-node");
  res.set(http::field::content_type, "application/x-tar");
  res.set("Berth-Checkpoint", figures);
  res.keep_alive(false);
  res.chunked(true);
  http::response_serializer<http::buffer_body> sr{res};
  boost::system::error_code ec;
  http::write_header(stream, sr, ec);
  std::vector<char> buffer(window);
  std::uint64_t sent = 0;
  while (!ec) {
    const ssize_t n = ::read(tar.fd(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      break;
    }
    res.body().data = buffer.data();
    res.body().size = static_cast<std::size_t>(n);
    res.body().more = true;
    http::write(stream, sr, ec);
    if (ec == http::error::need_buffer) {
      ec = {};
    }
    sent += static_cast<std::uint64_t>(n);
  }
  const Ran done = tar.finish();
  agent.figures().bytes("sent", sent);
  if (ec || !done.ok()) {
    std::cerr << "berth-node: archive of " << id << " failed: "
              << (ec ? ec.message() : done.output) << "\n";
    return;  // no last chunk
  }
  agent.wait_stopped(id);  // the restore, which the last chunk lets go, comes after
  res.body().data = nullptr;
  res.body().size = 0;
  res.body().more = false;
  http::write(stream, sr, ec);
}

// The archive in the request's body into tar, then the restore.
void receive_archive(Stream& stream, boost::beast::flat_buffer& buffer,
                     http::request_parser<http::buffer_body>& parser, Agent& agent,
                     const std::string& id, const std::string& name) {
  std::string problem;
  const std::string dir = agent.begin_restore(id, problem);
  if (dir.empty()) {
    write_json(stream, 409, json{{"message", problem}});
    return;
  }
  Child tar(Agent::extract_command(dir), Child::Pipe::to_stdin);
  std::vector<char> chunk(window);
  std::uint64_t received = 0;
  boost::system::error_code ec;
  bool written = tar.started();
  while (!parser.is_done() && !ec) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    http::read(stream, buffer, parser, ec);
    if (ec == http::error::need_buffer) {
      ec = {};
    }
    const std::size_t n = chunk.size() - parser.get().body().size;
    received += n;
    for (std::size_t off = 0; written && off < n;) {
      const ssize_t w = ::write(tar.fd(), chunk.data() + off, n - off);
      if (w < 0 && errno == EINTR) {
        continue;
      }
      if (w <= 0) {
        written = false;
        break;
      }
      off += static_cast<std::size_t>(w);
    }
  }
  const Ran done = tar.finish();
  agent.figures().bytes("received", received);
  if (ec || !written || !done.ok()) {
    agent.abandon_restore(dir);
    const std::string why = ec ? "the archive did not arrive whole: " + ec.message()
                               : "tar: " + done.output.substr(0, 500);
    write_json(stream, ec ? 400 : 500, json{{"message", why}});
    return;
  }
  write_outcome(stream, agent.restore(id, name, dir));
}

// "/v1/containers/ID/VERB": the id and the verb, or empty.
std::pair<std::string, std::string> container_action(const std::string& path) {
  constexpr std::string_view prefix = "/v1/containers/";
  if (!path.starts_with(prefix)) {
    return {};
  }
  const std::string rest = path.substr(prefix.size());
  const std::size_t slash = rest.find('/');
  if (slash == std::string::npos) {
    return {};
  }
  return {rest.substr(0, slash), rest.substr(slash + 1)};
}

void handle_request(Stream& stream, Agent& agent) {
  boost::beast::flat_buffer buffer;
  http::request_parser<http::buffer_body> parser;
  parser.header_limit(16 * 1024);
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  boost::system::error_code ec;
  http::read_header(stream, buffer, parser, ec);
  if (ec) {
    return;
  }
  const auto& req = parser.get();
  const Target t = parse_target(req.target());
  if (req.method() == http::verb::get && t.path == "/v1/preflight") {
    write_json(stream, 200, agent.preflight());
    return;
  }
  if (req.method() == http::verb::get && t.path == "/v1/kept") {
    write_json(stream, 200, json{{"Kept", agent.kept_checkpoints()}});
    return;
  }
  if (req.method() == http::verb::get && t.path == "/metrics") {
    write_text(stream, 200, agent.figures().prometheus_text());
    return;
  }
  const auto [id, action] = container_action(t.path);
  const std::string name = t.param("checkpoint");
  if (req.method() != http::verb::post || !valid_container_id(id)) {
    write_json(stream, 404, json{{"message", "no such route"}});
    return;
  }
  const bool named = valid_checkpoint_name(name);
  if (action == "restore" && named) {
    receive_archive(stream, buffer, parser, agent, id, name);
    return;
  }
  if (!parser.is_done() && parser.content_length().value_or(1) != 0) {
    write_json(stream, 400, json{{"message", "this route takes no body"}});
    return;
  }
  if (action == "checkpoint" && named) {
    int drain_ms = 0;
    const std::string drain = t.param("drain_ms");
    const auto [end, err] = std::from_chars(drain.data(), drain.data() + drain.size(), drain_ms);
    if (!drain.empty() && (err != std::errc() || end != drain.data() + drain.size() ||
                           drain_ms < 0 || drain_ms > 10000)) {
      write_json(stream, 400, json{{"message", "drain_ms: 0 to 10000"}});
      return;
    }
    const std::string twin = t.param("twin");
    if (!twin.empty() && !valid_container_id(twin)) {
      write_json(stream, 400, json{{"message", "twin: a container id"}});
      return;
    }
    const Outcome o = agent.checkpoint(id, name, drain_ms, twin);
    if (!o.ok()) {
      write_outcome(stream, o);
      return;
    }
    // The dump's figures travel in a header: the body is the archive.
    send_archive(stream, agent, id, name, o.detail.dump());
    return;
  }
  if (action == "commit") {
    write_outcome(stream, agent.commit(id));
  } else if (action == "rollback" && (named || name.empty())) {
    write_outcome(stream, agent.rollback(id, name));
  } else if (action == "release") {
    write_outcome(stream, agent.release(id));
  } else if (action == "discard") {
    write_outcome(stream, agent.discard(id));
  } else {
    write_json(stream, 404, json{{"message", "no such route"}});
  }
}

bool peer_allowed(Stream& stream, const std::string& cn) {
  if (cn.empty()) {
    return true;  // the CA's verification was enough
  }
  X509* peer = SSL_get0_peer_certificate(stream.native_handle());
  if (peer == nullptr) {
    return false;
  }
  char name[256] = {};
  const int n = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, name,
                                          sizeof name);
  return n > 0 && std::string(name, static_cast<std::size_t>(n)) == cn;
}

void set_timeouts(tcp::socket& socket, std::chrono::seconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count());
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(socket.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

int serve(Agent& agent, const ServerSettings& settings) {
  ssl::context ctx(ssl::context::tls_server);
  boost::system::error_code ec;
  ctx.set_options(ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                  ssl::context::no_tlsv1_1);
  ctx.use_certificate_chain_file(settings.cert, ec);
  if (!ec) {
    ctx.use_private_key_file(settings.key, ssl::context::pem, ec);
  }
  if (!ec) {
    ctx.load_verify_file(settings.client_ca, ec);
  }
  if (ec) {
    std::cerr << "berth-node: TLS files: " << ec.message() << "\n";
    return 1;
  }
  ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  const std::size_t colon = settings.listen.rfind(':');
  net::io_context io;
  tcp::endpoint endpoint;
  endpoint.address(net::ip::make_address(settings.listen.substr(0, colon), ec));
  int port = 0;
  const std::string port_text = colon == std::string::npos ? "" : settings.listen.substr(colon + 1);
  std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec || port <= 0 || port > 65535) {
    std::cerr << "berth-node: --listen must be ADDRESS:PORT, got " << settings.listen << "\n";
    return 2;
  }
  endpoint.port(static_cast<unsigned short>(port));
  tcp::acceptor acceptor(io);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    acceptor.bind(endpoint, ec);
  }
  if (!ec) {
    acceptor.listen(net::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    std::cerr << "berth-node: listen on " << settings.listen << ": " << ec.message() << "\n";
    return 1;
  }
  std::cerr << "berth-node: listening on " << settings.listen << "\n";
  std::atomic<int> active = 0;
  for (;;) {
    tcp::socket socket(io);
    acceptor.accept(socket, ec);
    if (ec) {
      continue;
    }
    if (active.load() >= settings.max_connections) {
      continue;  // the socket closes: a flood of connections takes no thread
    }
    set_timeouts(socket, settings.io_timeout);
    ++active;
    std::thread([&agent, &ctx, &settings, &active, s = std::move(socket)]() mutable {
      Stream stream(std::move(s), ctx);
      boost::system::error_code hs;
      stream.handshake(ssl::stream_base::server, hs);
      if (!hs && peer_allowed(stream, settings.client_cn)) {
        try {
          handle_request(stream, agent);
        } catch (const std::exception& e) {
          // A filesystem or JSON surprise ends this request, never the agent.
          std::cerr << "berth-node: request failed: " << e.what() << "\n";
          write_json(stream, 500, json{{"message", std::string("berth-node: ") + e.what()}});
        }
        stream.shutdown(hs);
      }
      --active;
    }).detach();
  }
}

}  // namespace berth::node
