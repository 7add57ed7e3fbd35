#include "proxy/delivery.hpp"

namespace berth::proxy {

Delivery choose_delivery(const policy::Route& route, policy::ResponseView view, bool as_is,
                         const AnswerHead& head) noexcept {
  // Only a 101 to an upgrade berth asked for may precede what is not the final answer.
  if (head.status < 200 && !(head.status == 101 && head.upgrade_requested)) {
    return Delivery::refuse;
  }
  // dockerd hijacks attach and exec start: 101 UPGRADED when the client asked for an upgrade,
  // 200 with a raw-stream content type and no framing for the older hijack.
  if (policy::may_hijack(route.body) &&
      (head.status == 101 || (head.status == 200 && head.raw_stream && !head.framed))) {
    return Delivery::splice;
  }
  if (head.status == 101) {
    return Delivery::refuse;  // a switch on a route that never hijacks
  }
  if (as_is) {
    return Delivery::pass;
  }
  // Errors name stored objects, which the tenant reads in its own names; what the index
  // learns from is read whole.
  if (head.status >= 400 || route.index != policy::IndexEffect::none) {
    return Delivery::rewrite;
  }
  if (view == policy::ResponseView::pass) {
    return Delivery::pass;
  }
  if (line_view(view)) {
    return Delivery::lines;
  }
  if (view == policy::ResponseView::image_archive) {
    return head.status == 200 ? Delivery::archive : Delivery::pass;
  }
  // A filtered view of a 200 document; another success (204, 304) has nothing to filter.
  return head.status == 200 ? Delivery::rewrite : Delivery::pass;
}

std::string_view delivery_name(Delivery d) noexcept {
  switch (d) {
    case Delivery::splice:
      return "splice";
    case Delivery::pass:
      return "pass";
    case Delivery::rewrite:
      return "rewrite";
    case Delivery::lines:
      return "lines";
    case Delivery::archive:
      return "archive";
    case Delivery::refuse:
      return "refuse";
  }
  return "?";
}

}  // namespace berth::proxy
