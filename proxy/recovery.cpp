// Migrations no berth-proxy drives any more (issue #16): a proxy killed mid-way, or one whose
// call to a berth-node failed because that node was killed, leaves a twin that must not run,
// a source stopped into its checkpoint, or a drained source. The hosts keep the journal
// (policy::twin_label on the twin, the checkpoint the source's node keeps); every few seconds
// the primary's watcher reads it and finishes or undoes each such migration
// (policy::recovery_steps), so that exactly one copy of the container runs.

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/migration.hpp"
#include "policy/query.hpp"
#include "policy/vocabulary.hpp"
#include "proxy/docker_client.hpp"
#include "proxy/log.hpp"
#include "proxy/ownership.hpp"
#include "proxy/recovery.hpp"

namespace berth::proxy {

using json = nlohmann::json;

namespace {

struct Journal {
  std::vector<policy::TwinSeen> twins;
  std::vector<policy::KeptSeen> kept;
};

// A JSON document's member `key` that is an array, or an empty one.
json array_at(const json& doc, const char* key) {
  return doc.is_object() && doc.contains(key) && doc[key].is_array() ? doc[key] : json::array();
}

// A listed container's own stored name ("/acme_app" of its Names; the others are links'
// "/acme_web/db"), without the '/'; empty when it has none.
std::string own_name(const json& c) {
  const json names = c.is_object() ? c.value("Names", json::array()) : json::array();
  for (const json& n : names.is_array() ? names : json::array()) {
    const std::string name = n.is_string() ? n.get<std::string>() : std::string();
    if (name.size() > 1 && name[0] == '/' && name.find('/', 1) == std::string::npos) {
      return name.substr(1);
    }
  }
  return {};
}

// One host's part of the journal; false when its dockerd or node did not answer.
net::awaitable<bool> read_host(UpstreamPool& pool, std::shared_ptr<const Runtime> rt,
                               const HostRuntime& host, Journal& into) {
  const json filters = {{"label", json::array({std::string(policy::twin_label)})}};
  std::string path =
      "/containers/json?" + policy::build_query({{"all", "1"}, {"filters", filters.dump()}});
  const Target dockerd{&host};
  const Target node{host.node.get()};
  const auto listed = co_await docker_request_to(pool, rt, dockerd, http::verb::get, std::move(path));
  const json twins = listed && listed->status == 200 ? json::parse(listed->body, nullptr, false)
                                                     : json();
  const auto kept = co_await docker_request_to(pool, rt, node, http::verb::get, "/v1/kept");
  const json held = kept && kept->status == 200 ? json::parse(kept->body, nullptr, false) : json();
  if (!twins.is_array() || !held.is_object()) {
    co_return false;
  }
  for (const json& c : twins) {
    const json labels = c.is_object() ? c.value("Labels", json::object()) : json::object();
    const json source = labels.is_object() ? labels.value(std::string(policy::twin_label), json())
                                           : json();
    // No ownership label: the operator's container (tenant "", as the index has it).
    const json tenant = labels.is_object()
                            ? labels.value(std::string(vocabulary::tenant_label), json(""))
                            : json();
    const json state = c.is_object() ? c.value("State", json()) : json();
    const std::string name = own_name(c);
    if (c.is_object() && c.value("Id", json()).is_string() && source.is_string() &&
        tenant.is_string() && state.is_string() && !name.empty()) {
      into.twins.push_back({c["Id"].get<std::string>(), host.name, source.get<std::string>(),
                            state.get<std::string>(), tenant.get<std::string>(), name});
    }
  }
  for (const json& k : array_at(held, "Kept")) {
    if (k.is_object() && k.value("Id", json()).is_string() &&
        k.value("Checkpoint", json()).is_string() && k.value("Twin", json()).is_string()) {
      into.kept.push_back({host.name, k["Id"].get<std::string>(),
                           k["Checkpoint"].get<std::string>(), k["Twin"].get<std::string>()});
    }
  }
  co_return true;
}

const char* verb(policy::RecoveryStep::Kind kind) {
  switch (kind) {
    case policy::RecoveryStep::Kind::discard: return "discard";
    case policy::RecoveryStep::Kind::commit: return "commit";
    case policy::RecoveryStep::Kind::rollback: return "rollback";
    case policy::RecoveryStep::Kind::release: return "release";
  }
  return "";
}

// One step on its host's node; true when it was done.
net::awaitable<bool> run_step(UpstreamPool& pool, SharedIndex& index,
                              std::shared_ptr<const Runtime> rt, const policy::RecoveryStep& step) {
  const HostRuntime* host = rt->host(step.host);
  if (host == nullptr || !host->node) {
    co_return false;
  }
  std::string path = "/v1/containers/" + step.container + "/" + verb(step.kind);
  if (step.kind == policy::RecoveryStep::Kind::rollback && !step.checkpoint.empty()) {
    path += "?checkpoint=" + step.checkpoint;
  }
  const Target node{host->node.get()};
  const auto reply =
      co_await docker_request_to(pool, rt, node, http::verb::post, std::move(path));
  const bool done = reply && reply->status == 200;
  if (done && (step.kind == policy::RecoveryStep::Kind::discard ||
               step.kind == policy::RecoveryStep::Kind::commit)) {
    index.write([&](policy::OwnershipIndex& idx) { idx.erase_container(step.container); });
  }
  const std::string said = reply ? std::to_string(reply->status) + " " + reply->body.substr(0, 300)
                                 : reply.error().message();
  (done ? log_info : log_warn)("migration recovery: " + std::string(verb(step.kind)) + " " +
                               step.container.substr(0, 12) + " on " + step.host + ": " + said);
  co_return done;
}

// The steps the journal calls for now (the sources looked up in the index).
std::vector<policy::Recovery> steps_for(const SharedIndex& index, const Journal& journal) {
  const auto source = [&](std::string_view id) {
    return index.read([&](const policy::OwnershipIndex& idx) -> std::optional<policy::SourceSeen> {
      const auto c = idx.container_by_id(id);
      if (!c) {
        return std::nullopt;
      }
      return policy::SourceSeen{c->host, c->state == "running", c->tenant, c->name};
    });
  };
  const auto in_flight = [&](std::string_view id) { return index.migrating(id); };
  return policy::recovery_steps(journal.twins, journal.kept, source, in_flight);
}

}  // namespace

net::awaitable<void> recover_migrations(SharedIndex& index, UpstreamPool& pool,
                                        std::shared_ptr<const Runtime> rt) {
  const std::uint64_t epoch = index.migration_epoch();
  Journal journal;
  for (const HostRuntime& host : rt->hosts) {
    if (!host.node) {
      continue;
    }
    // Every host that can hold a twin or a source answers, or nothing is judged: a source
    // missing from a host not yet read is not a source that is gone.
    if (!index.host_facts(host.name)->up) {
      co_return;
    }
    const bool read = co_await read_host(pool, rt, host, journal);
    if (!read) {
      co_return;
    }
  }
  if (index.migration_epoch() != epoch) {
    co_return;  // a migration began or ended meanwhile: what was read may be its passing state
  }
  const std::vector<policy::Recovery> recoveries = steps_for(index, journal);
  for (const policy::Recovery& r : recoveries) {
    // Held as a migration of the source, so that none begins while it is recovered.
    const MigrationHold hold(index, r.source);
    if (!hold.held()) {
      continue;
    }
    // Its steps on the hosts are hidden from the tenant's events, as a migration's are
    // (OwnershipIndex::begin_move): the source's removal after a commit, a discarded twin.
    index.write([&](policy::OwnershipIndex& idx) { idx.begin_move(r.source); });
    bool committed = false;
    for (const policy::RecoveryStep& step : r.steps) {
      const bool done = co_await run_step(pool, index, rt, step);
      if (!done) {
        break;  // the rest waits for the next reading
      }
      committed = committed || step.kind == policy::RecoveryStep::Kind::commit;
    }
    const std::int64_t end = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
    index.write([&](policy::OwnershipIndex& idx) { idx.end_move(r.source, committed, end); });
  }
}

}  // namespace berth::proxy
