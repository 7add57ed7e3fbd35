#include "node/dockerd.hpp"

#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

namespace berth::node {

namespace http = boost::beast::http;

Reply Dockerd::call(http::verb method, const std::string& target, const std::string& body) const {
  boost::asio::io_context io;
  boost::asio::local::stream_protocol::socket socket(io);
  boost::system::error_code ec;
  socket.connect(boost::asio::local::stream_protocol::endpoint(socket_), ec);
  if (ec) {
    return {0, "connect to dockerd: " + ec.message()};
  }
  http::request<http::string_body> request{method, target, 11};
  request.set(http::field::host, "docker");
  if (!body.empty()) {
    request.set(http::field::content_type, "application/json");
    request.body() = body;
  }
  request.prepare_payload();
  http::write(socket, request, ec);
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64 * 1024 * 1024);
  if (!ec) {
    http::read(socket, buffer, parser, ec);
  }
  if (ec) {
    return {0, "dockerd: " + ec.message()};
  }
  return {parser.get().result_int(), std::move(parser.get().body())};
}

std::string docker_message(const Reply& reply) {
  const auto doc = nlohmann::json::parse(reply.body, nullptr, false);
  if (doc.is_object() && doc.contains("message") && doc["message"].is_string()) {
    return doc["message"].get<std::string>();
  }
  return reply.body.substr(0, 500);
}

}  // namespace berth::node
