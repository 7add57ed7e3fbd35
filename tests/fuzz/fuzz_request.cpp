// Fuzz entry point for how berth reads a tenant's request line: classify (method, path, API
// version) and the query judged against the route's list (policy/query). Besides the
// sanitizers it checks that forwarding only what was judged holds, aborting when it breaks:
//  - the canonical query berth forwards, judged again, is accepted and unchanged (one spelling);
//  - the target berth rebuilds classifies to the same route, version and parameters.
//
// Input: the first byte picks the method; the rest is the request target.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "policy/endpoint_table.hpp"
#include "policy/query.hpp"
#include "policy/rewrite.hpp"
#include "tests/fuzz/fuzz_entry.hpp"

namespace {

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

constexpr std::string_view methods[] = {"GET", "POST", "PUT", "DELETE", "HEAD"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace berth::policy;
  if (size == 0) {
    return 0;
  }
  const std::string_view method = methods[data[0] % 5];
  const std::string_view target(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto c = classify(method, target);
  if (!c) {
    return 0;
  }
  const std::string name = std::string(method) + " " + std::string(c->route->pattern);
  const auto judged = judge_query(c->route->query, c->query, api_minor(*c), name);
  if (!judged) {
    return 0;
  }
  const auto again = judge_query(c->route->query, *judged, api_minor(*c), name);
  check(again.has_value());
  check(*again == *judged);
  Classified forwarded = *c;
  forwarded.query = *judged;
  const auto re = classify(method, canonical_target(forwarded));
  check(re.has_value());
  check(re->route == c->route);
  check(re->api_version == c->api_version);
  check(re->params == c->params);
  return 0;
}
