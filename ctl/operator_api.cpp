#include "ctl/operator_api.hpp"

#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace berth::ctl {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace http = boost::beast::http;

std::expected<ProxyAnswer, std::string> operator_post(const ProxyEndpoint& endpoint,
                                                      const std::string& target,
                                                      std::chrono::seconds timeout) {
  std::string address = endpoint.url;
  for (std::string_view scheme : {"tcp://", "https://"}) {
    if (address.starts_with(scheme)) {
      address = address.substr(scheme.size());
    }
  }
  const std::size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return std::unexpected("the proxy's address must be tcp://HOST:PORT, got '" + endpoint.url +
                           "'");
  }
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port = address.substr(colon + 1);
  boost::system::error_code ec;
  ssl::context ctx(ssl::context::tls_client);
  ctx.load_verify_file(endpoint.cert_path + "/ca.pem", ec);
  if (!ec) {
    ctx.use_certificate_chain_file(endpoint.cert_path + "/cert.pem", ec);
  }
  if (!ec) {
    ctx.use_private_key_file(endpoint.cert_path + "/key.pem", ssl::context::pem, ec);
  }
  if (ec) {
    return std::unexpected("the certificates in " + endpoint.cert_path + ": " + ec.message());
  }
  ctx.set_verify_mode(ssl::verify_peer);
  net::io_context io;
  ssl::stream<net::ip::tcp::socket> stream(io, ctx);
  stream.set_verify_callback(ssl::host_name_verification(host));
  // SSL_set_tlsext_host_name, without its macro's C cast.
  SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
           const_cast<char*>(host.c_str()));
  net::ip::tcp::resolver resolver(io);
  const auto found = resolver.resolve(host, port, ec);
  if (!ec) {
    net::connect(stream.next_layer(), found, ec);
  }
  if (!ec) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count());
    ::setsockopt(stream.next_layer().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    stream.handshake(ssl::stream_base::client, ec);
  }
  if (ec) {
    return std::unexpected("cannot reach berth-proxy at " + endpoint.url + ": " + ec.message());
  }
  http::request<http::empty_body> request{http::verb::post, target, 11};
  request.set(http::field::host, host);
  request.set(http::field::user_agent, "berthctl");
  request.content_length(0);
  http::write(stream, request, ec);
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1024 * 1024);
  if (!ec) {
    http::read(stream, buffer, parser, ec);
  }
  if (ec) {
    return std::unexpected("berth-proxy at " + endpoint.url + " did not answer: " + ec.message());
  }
  return ProxyAnswer{parser.get().result_int(), parser.get().body()};
}

}  // namespace berth::ctl
