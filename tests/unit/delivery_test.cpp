// How an answer reaches the client, chosen once from the route, the tenant's view and the
// answer's head (proxy/delivery).

#include "proxy/delivery.hpp"

#include <catch2/catch.hpp>

using berth::policy::classify;
using berth::policy::ResponseView;
using berth::proxy::AnswerHead;
using berth::proxy::choose_delivery;
using berth::proxy::Delivery;

namespace {

const berth::policy::Route& route(std::string_view method, std::string_view target) {
  return *classify(method, target)->route;
}

AnswerHead head(unsigned status) { return AnswerHead{status, false, false, true}; }

}  // namespace

TEST_CASE("an interim or switching answer berth did not ask for is never passed on",
          "[proxy][delivery]") {
  const auto& inspect = route("GET", "/containers/c/json");
  for (unsigned status : {100u, 102u, 103u, 101u}) {
    CAPTURE(status);
    CHECK(choose_delivery(inspect, ResponseView::container_inspect, false, head(status)) ==
          Delivery::refuse);
    CHECK(choose_delivery(inspect, ResponseView::pass, true, head(status)) == Delivery::refuse);
  }
  // A 101 to the upgrade berth asked for on exec start is the hijack.
  const auto& exec = route("POST", "/exec/e/start");
  CHECK(choose_delivery(exec, ResponseView::pass, false, AnswerHead{101, true, false, false}) ==
        Delivery::splice);
  CHECK(choose_delivery(exec, ResponseView::pass, false, AnswerHead{101, false, false, false}) ==
        Delivery::refuse);
}

TEST_CASE("attach and exec are spliced on the old 200 hijack too, not on a framed answer",
          "[proxy][delivery]") {
  const auto& attach = route("POST", "/containers/c/attach");
  CHECK(choose_delivery(attach, ResponseView::pass, false, AnswerHead{200, false, true, false}) ==
        Delivery::splice);
  // An error dockerd frames is an answer, rewritten in the tenant's names.
  CHECK(choose_delivery(attach, ResponseView::pass, false, AnswerHead{404, false, false, true}) ==
        Delivery::rewrite);
}

TEST_CASE("a tenant's errors, filtered views and index-feeding answers are rewritten",
          "[proxy][delivery]") {
  CHECK(choose_delivery(route("GET", "/containers/c/json"), ResponseView::container_inspect,
                        false, head(200)) == Delivery::rewrite);
  CHECK(choose_delivery(route("GET", "/containers/c/json"), ResponseView::container_inspect,
                        false, head(404)) == Delivery::rewrite);
  CHECK(choose_delivery(route("POST", "/containers/create"), ResponseView::pass, false,
                        head(201)) == Delivery::rewrite);
  CHECK(choose_delivery(route("DELETE", "/containers/c"), ResponseView::pass, false,
                        head(204)) == Delivery::rewrite);
  // A pass view passes; so does a success with nothing to filter.
  CHECK(choose_delivery(route("GET", "/_ping"), ResponseView::pass, false, head(200)) ==
        Delivery::pass);
  CHECK(choose_delivery(route("GET", "/containers/json"), ResponseView::container_list, false,
                        head(204)) == Delivery::pass);
}

TEST_CASE("event, build and stats streams are filtered line by line", "[proxy][delivery]") {
  CHECK(choose_delivery(route("GET", "/events"), ResponseView::events, false, head(200)) ==
        Delivery::lines);
  CHECK(choose_delivery(route("POST", "/build"), ResponseView::build_stream, false,
                        head(200)) == Delivery::lines);
  CHECK(choose_delivery(route("GET", "/containers/c/stats"), ResponseView::stats_stream, false,
                        head(200)) == Delivery::lines);
}

TEST_CASE("an operator, and any HEAD request, get dockerd's answer as it is",
          "[proxy][delivery]") {
  CHECK(choose_delivery(route("GET", "/containers/c/json"), ResponseView::container_inspect,
                        true, head(404)) == Delivery::pass);
  CHECK(choose_delivery(route("POST", "/containers/create"), ResponseView::pass, true,
                        head(201)) == Delivery::pass);
}
