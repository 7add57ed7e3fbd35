#pragma once
// How an answer from dockerd reaches the client: chosen once per request, from the route, the
// view the tenant is given of it, and the answer's head, by a pure function (unit-tested
// without sockets). The transport then does that and nothing else.

#include <string_view>

#include "policy/endpoint_table.hpp"
#include "policy/rewrite.hpp"

namespace berth::proxy {

enum class Delivery {
  splice,   ///< dockerd took the connection over (attach, exec): both directions spliced
  pass,     ///< as dockerd wrote it: small answers in one write, others relayed as they come
  rewrite,  ///< read whole and answered anew: errors in the tenant's names, filtered views,
            ///< and what the ownership index learns from (creates, updates, removals)
  lines,    ///< a stream of JSON lines, each filtered for the tenant (events, build, stats)
  archive,  ///< a saved image archive, its name files rewritten for the tenant as it streams
  refuse,   ///< not an answer berth passes on: an interim or switching status it did not ask
            ///< for (the connection is then closed, never pooled)
};

/// What deliver() needs to know of dockerd's answer head.
struct AnswerHead {
  unsigned status = 0;
  bool upgrade_requested = false;  ///< berth forwarded Connection: Upgrade (attach, exec)
  bool raw_stream = false;         ///< Content-Type application/vnd.docker.raw-stream or multiplexed
  bool framed = false;             ///< a Content-Length or chunked body
};

/// The view's filter works line by line.
constexpr bool line_view(policy::ResponseView v) noexcept {
  return v == policy::ResponseView::events || v == policy::ResponseView::build_stream ||
         v == policy::ResponseView::stats_stream;
}

/// `as_is`: the viewer sees dockerd's answer as it is (an operator, or a HEAD request).
[[nodiscard]] Delivery choose_delivery(const policy::Route& route, policy::ResponseView view,
                                       bool as_is, const AnswerHead& head) noexcept;

/// The name of a delivery, for logs and tests.
[[nodiscard]] std::string_view delivery_name(Delivery d) noexcept;

}  // namespace berth::proxy
