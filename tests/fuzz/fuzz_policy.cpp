// Fuzz entry point over everything policy/ judges from a hostile client: request
// classification, path resolution, body judgement and rewriting for a tenant (container,
// network, volume, exec create; builds), Go-faithful JSON decoding, response and event filters,
// and the build-context tar filter.
//
// Input format: the first line is "METHOD TARGET", the rest is the body. The same bytes are
// also fed, whole, to the decoders and filters, so a corpus file exercises several parsers.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "policy/build_context.hpp"
#include "policy/docker_types.hpp"
#include "policy/endpoint_table.hpp"
#include "policy/filter.hpp"
#include "policy/go_json.hpp"
#include "policy/ownership_index.hpp"
#include "policy/rewrite.hpp"
#include "tests/fuzz/fuzz_entry.hpp"

namespace {

const berth::policy::OwnershipIndex& sample_index() {
  static const berth::policy::OwnershipIndex index = [] {
    berth::policy::OwnershipIndex idx;
    idx.put_container({"aaaa1111", "acme", "acme_web", "running"});
    idx.put_container({"aaaa2222", "globex", "globex_web", "running"});
    idx.put_container({"bbbb3333", "", "operator_db", "exited"});
    idx.put_network({"net1", "acme", "acme_bridge"});
    idx.put_network({"net2", "globex", "globex_app"});
    idx.put_volume({"acme_data", "acme"});
    idx.put_volume({"globex_data", "globex"});
    idx.put_image({"sha256:" + std::string(64, 'a'), "", {"berth-test/busybox:latest"}});
    idx.put_image({"sha256:" + std::string(64, 'b'), "globex", {"globex.berth.local/app:1"}});
    idx.put_exec("exec1", "aaaa1111");
    return idx;
  }();
  return index;
}

// A tenant with every kind of rule, so the fuzzer walks defaults, limits, grants and patterns.
const berth::policy::Tenant& sample_rules() {
  static const berth::policy::Tenant rules = [] {
    berth::policy::Tenant t;
    t.id = "acme";
    t.quota.containers = 10;
    t.quota.memory = 4LL << 30;
    t.quota.nano_cpus = 4'000'000'000;
    t.quota.pids_per_container = 512;
    t.quota.published_ports = 5;
    t.defaults.memory = 256LL << 20;
    t.defaults.nano_cpus = 500'000'000;
    t.defaults.pids_limit = 256;
    t.defaults.log_max_size = 10LL << 20;
    t.defaults.log_max_file = 3;
    t.limits.memory = 1LL << 30;
    t.limits.nano_cpus = 2'000'000'000;
    t.limits.log_max_size = 100LL << 20;
    t.limits.log_max_file = 5;
    t.limits.restart_retries = 5;
    t.limits.restart_policies = std::vector<std::string>{"no", "on-failure"};
    t.images = std::vector<std::string>{"berth-test/*"};
    t.grants.bind_mounts = {{"/srv/acme", false}, {"/srv/acme-rw", true}};
    t.grants.capabilities = {"CAP_NET_ADMIN"};
    t.grants.host_ports = {{8000, 8099}};
    return t;
  }();
  return rules;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace berth::policy;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto nl = input.find('\n');
  const std::string_view line = input.substr(0, nl);
  const std::string_view body = nl == std::string_view::npos ? std::string_view()
                                                             : input.substr(nl + 1);
  const auto space = line.find(' ');
  const std::string_view method = line.substr(0, space);
  const std::string_view target =
      space == std::string_view::npos ? std::string_view() : line.substr(space + 1);

  Principal tenant;
  tenant.role = Role::tenant;
  tenant.tenant = "acme";
  const auto& index = sample_index();
  const DaemonFacts facts;

  if (auto c = classify(method, target)) {
    (void)canonical_target(*c);
    if (auto r = resolve(tenant, *c, index)) {
      const Rewritten rw = rewrite_for_tenant(tenant, *r, body, index, facts, sample_rules());
      if (rw.body) {
        // What berth forwards must itself decode to the same document.
        (void)go::decode(*rw.body, docker_types::container_create());
      }
    }
  }
  (void)go::decode(input, docker_types::container_create());
  (void)go::decode(input, docker_types::network_create());
  for (auto view : {ResponseView::container_list, ResponseView::container_inspect,
                    ResponseView::image_list, ResponseView::volume_list,
                    ResponseView::system_df, ResponseView::info}) {
    (void)filter_response(view, tenant, input, index);
  }
  for (auto view : {ResponseView::container_list, ResponseView::container_inspect}) {
    for (std::string_view doc : {input, body}) {
      // The streaming container views must make the DOM filter's document, or decline.
      const auto streamed = filter_response(view, tenant, doc, index);
      const auto reference = filter_response_dom(view, tenant, doc, index);
      if (streamed.has_value() != reference.has_value() ||
          (streamed && nlohmann::json::parse(*streamed) != nlohmann::json::parse(*reference))) {
        std::abort();
      }
    }
  }
  (void)filter_event(tenant, input, index);
  (void)tenant_error_message(tenant, input);
  (void)parse_filters(input);
  (void)rewrite_dockerfile(sample_rules(), input, index);
  BuildContextFilter tar(sample_rules(), "");
  if (auto out = tar.feed(input, index)) {
    (void)tar.finish();
  }
  return 0;
}
