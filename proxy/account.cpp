// 8. account: once per request, at the pipeline's one exit (serve()): the metrics, and the
//    audit line handed to the audit log's writer (never a body: bodies carry environment
//    values and registry credentials). Refusals are always logged, audit file or not.

#include <chrono>
#include <string>

#include "proxy/audit.hpp"
#include "proxy/log.hpp"
#include "proxy/metrics.hpp"
#include "proxy/server.hpp"
#include "proxy/session.hpp"

namespace berth::proxy {

void Session::account(const Exchange& ex) const {
  const auto elapsed = Clock::now() - ex.started;
  worker_.metrics().request(ex.operator_ ? std::string_view("(operator)") : ex.tenant,
                            ex.endpoint_class, ex.allowed,
                            std::chrono::duration<double>(elapsed).count(), ex.stream);
  if (ex.allowed && !worker_.audit().enabled()) {
    return;
  }
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count();
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  // Bodies never appear here: they carry environment values and registry credentials.
  std::string line;
  line.reserve(384 + ex.target.size());
  const auto field = [&line](std::string_view name) {
    line += line.empty() ? "{\"" : ",\"";
    line += name;
    line += "\":";
  };
  const auto text = [&](std::string_view name, std::string_view value) {
    field(name);
    append_json_string(line, value);
  };
  const auto number = [&](std::string_view name, auto value) {
    field(name);
    line += std::to_string(value);
  };
  const auto flag = [&](std::string_view name, bool value) {
    field(name);
    line += value ? "true" : "false";
  };
  number("time_ms", now);
  text("client", peer_);
  text("tenant", ex.tenant);
  flag("operator", ex.operator_);
  text("user", identity_.common_name);
  text("serial", identity_.serial);
  text("method", ex.method);
  text("path", ex.target);
  text("endpoint", ex.endpoint);
  text("class", ex.endpoint_class);
  text("decision", ex.allowed ? "allow" : "deny");
  text("rule", ex.rule);
  number("status", ex.status);
  number("bytes_in", ex.bytes_in);
  number("bytes_out", ex.bytes_out);
  flag("hijacked", ex.hijacked);
  if (!ex.host.empty()) {
    text("host", ex.host);
  }
  if (!ex.placement.empty()) {
    text("placement", ex.placement);
  }
  number("duration_us", us);
  line += '}';
  if (!worker_.audit().write(line)) {
    worker_.metrics().audit_dropped();
  }
  if (!ex.allowed) {
    log_info(line);  // refusals are always logged, audit file or not
  }
}

}  // namespace berth::proxy
