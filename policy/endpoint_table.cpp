#include "policy/endpoint_table.hpp"

#include <array>
#include <algorithm>
#include <charconv>

#include "policy/hex.hpp"

namespace berth::policy {

namespace {

using enum Access;
using enum BodyMode;
using enum TimeoutClass;
using enum Scope;
constexpr auto unindexed = IndexEffect::none;
using IndexEffect::container_created, IndexEffect::container_updated,
    IndexEffect::container_removed, IndexEffect::exec_created, IndexEffect::network_created,
    IndexEffect::volume_created;

// Query parameters, as dockerd 20.10.24 reads them (api/server/router/*; the research behind
// each line, with file and line, is summarised in SECURITY.md). Tenants may send these and
// nothing else; berth forwards them in canonical form (policy/query.hpp).
constexpr QueryParam flag(std::string_view name) { return {name, QueryKind::flag}; }
constexpr QueryParam number(std::string_view name, std::int64_t min, std::int64_t max) {
  return {name, QueryKind::integer, {}, min, max};
}
constexpr QueryParam text(std::string_view name, std::int64_t max) {
  return {name, QueryKind::text, {}, 0, max};
}
constexpr QueryParam many_text(std::string_view name, std::int64_t max) {
  return {name, QueryKind::text, {}, 0, max, true};
}
constexpr QueryParam judged(std::string_view name, std::int64_t max) {
  return {name, QueryKind::judged, {}, 0, max};
}
constexpr QueryParam one_of(std::string_view name, std::span<const std::string_view> values) {
  return {name, QueryKind::one_of, values};
}
constexpr QueryParam filters(std::span<const std::string_view> keys) {
  return {"filters", QueryKind::filters, keys};
}
constexpr QueryParam time_value(std::string_view name) { return {name, QueryKind::timestamp}; }
constexpr QueryParam ignored(std::string_view name) { return {name, QueryKind::ignored}; }
constexpr QueryParam refused_param(std::string_view name, std::string_view reason) {
  return {name, QueryKind::refused, {}, 0, 0, false, 0, 99, reason};
}
constexpr QueryParam false_only(std::string_view name, std::string_view reason) {
  return {name, QueryKind::false_only, {}, 0, 0, false, 0, 99, reason};
}
constexpr QueryParam neutral_only(std::string_view name, std::span<const std::string_view> values,
                                  std::string_view reason) {
  return {name, QueryKind::neutral_only, values, 0, 0, false, 0, 99, reason};
}
constexpr QueryParam since_version(QueryParam p, int minor) {
  p.min_minor = minor;
  return p;
}
constexpr QueryParam until_version(QueryParam p, int minor) {
  p.max_minor = minor;
  return p;
}

constexpr std::int64_t big = std::int64_t{1} << 62;
constexpr std::int64_t name_max = 255;
constexpr std::int64_t path_max = 4096;
constexpr std::int64_t json_max = 64 * 1024;

// The ps options whose output keeps its real PID column and lists only the container's own
// processes (daemon/top_unix.go runs the host's ps as root; a renamed or shifted PID column,
// or a selection option that makes dockerd rerun ps over every host process, turned its
// "Unexpected pid" errors into a window on other processes' command lines). Matched exactly.
constexpr std::string_view kPsArgs[] = {
    "", "-ef", "-f", "-eF", "-F", "-efw", "-efww", "aux", "-aux", "axu", "ux", "auxw",
    "auxww", "-e", "-A", "ax", "axw", "axww", "x", "-el", "-elf", "-ely", "-eL", "-eLf", "-eT",
    "-L", "-T", "-em", "-o pid,comm", "-eo pid,comm", "-o pid,args", "-eo pid,args",
    "-o pid,cmd", "-eo pid,cmd", "-eo pid,ppid,comm", "-eo pid,ppid,args", "-eo pid,ppid,cmd",
    "-eo pid,user,comm", "-eo pid,user,args", "-eo pid,ppid,user,args",
    "-eo pid,%cpu,%mem,args", "-eo pid,rss,vsz,comm", "-eo pid,etime,args", "-eo pid,stat,args",
    "-eo pid,ppid,stat,etime,args"};
constexpr std::string_view kWaitConditions[] = {"not-running", "next-exit", "removed"};
constexpr std::string_view kIsolations[] = {"", "default"};
constexpr std::string_view kBuildVersions[] = {"1", "2"};
constexpr std::string_view kEmpty[] = {""};
constexpr std::string_view kNoUlimits[] = {"", "null", "[]"};
constexpr std::string_view kNetworkScopes[] = {"", "local", "swarm", "global"};

constexpr std::string_view kEventFilters[] = {"container", "event", "image", "label",
                                              "network",   "type",  "volume", "scope", "daemon"};
constexpr std::string_view kContainerFilters[] = {
    "ancestor", "before", "expose",  "exited", "health", "id",     "isolation", "is-task",
    "label",    "name",   "network", "publish", "since", "status", "volume"};
constexpr std::string_view kPruneFilters[] = {"label", "label!", "until"};
constexpr std::string_view kImageFilters[] = {"dangling", "label", "before", "since", "reference"};
constexpr std::string_view kImagePruneFilters[] = {"dangling", "label", "label!", "until"};
constexpr std::string_view kSearchFilters[] = {"is-automated", "is-official", "stars"};
constexpr std::string_view kNetworkFilters[] = {"dangling", "driver", "id",  "label",
                                                "name",     "scope",  "type"};
constexpr std::string_view kVolumeFilters[] = {"dangling", "driver", "label", "name"};
constexpr std::string_view kVolumePruneFilters[] = {"label", "label!"};
constexpr std::string_view kPluginFilters[] = {"enabled", "capability"};

constexpr QueryParam kEventsQuery[] = {time_value("since"), time_value("until"),
                                       filters(kEventFilters)};
// docker-py sends trunc_cmd, since and before; dockerd reads since and before without using
// them (only the filters of those names work).
constexpr QueryParam kContainerListQuery[] = {flag("all"), number("limit", -1, 1000000),
                                              flag("size"), filters(kContainerFilters),
                                              ignored("since"), ignored("before"),
                                              ignored("trunc_cmd")};
constexpr QueryParam kContainerCreateQuery[] = {judged("name", name_max),
                                                since_version(text("platform", 64), 41)};
constexpr QueryParam kContainerPruneQuery[] = {filters(kPruneFilters)};
constexpr QueryParam kInspectQuery[] = {flag("size")};
constexpr QueryParam kTopQuery[] = {one_of("ps_args", kPsArgs)};
constexpr QueryParam kLogsQuery[] = {flag("stdout"),     flag("stderr"),        flag("follow"),
                                     flag("timestamps"), flag("details"),       time_value("since"),
                                     time_value("until"), text("tail", 20)};
constexpr QueryParam kStatsQuery[] = {flag("stream"), since_version(flag("one-shot"), 41)};
constexpr QueryParam kAttachQuery[] = {text("detachKeys", 64), flag("logs"),  flag("stream"),
                                       flag("stdin"),          flag("stdout"), flag("stderr")};
constexpr QueryParam kArchiveQuery[] = {text("path", path_max)};
constexpr QueryParam kArchivePutQuery[] = {text("path", path_max), flag("noOverwriteDirNonDir"),
                                           flag("copyUIDGID")};
constexpr QueryParam kKillQuery[] = {{"signal", QueryKind::signal}};
// A negative t makes dockerd wait forever, holding the request and a connection.
constexpr QueryParam kStopQuery[] = {number("t", 0, 3600)};
constexpr QueryParam kWaitQuery[] = {since_version(one_of("condition", kWaitConditions), 30)};
constexpr QueryParam kResizeQuery[] = {number("h", 0, 65535), number("w", 0, 65535)};
constexpr QueryParam kRenameQuery[] = {judged("name", name_max)};
constexpr QueryParam kStartQuery[] = {
    refused_param("checkpoint", "checkpoints are an operator's tool"),
    refused_param("checkpoint-dir", "checkpoints are an operator's tool"),
    text("detachKeys", 64)};
// link=1 removes the legacy link "parent/alias" (resolved in the tenant's namespace); docker-py
// sends link=False with every removal.
constexpr QueryParam kContainerDeleteQuery[] = {flag("force"), flag("v"), flag("link")};
constexpr QueryParam kImageListQuery[] = {flag("all"), filters(kImageFilters),
                                          until_version(text("filter", name_max), 40),
                                          ignored("only_ids")};
constexpr QueryParam kImageSearchQuery[] = {text("term", name_max), number("limit", 1, 100),
                                            filters(kSearchFilters)};
constexpr QueryParam kImageCreateQuery[] = {
    text("fromImage", name_max), text("tag", name_max),      text("fromSrc", path_max),
    text("repo", name_max),      text("message", path_max), many_text("changes", path_max),
    since_version(text("platform", 64), 32)};
// POST /commit (api/server/router/image/image_routes.go postCommit); the body is a
// container.Config the image's configuration starts from.
constexpr QueryParam kCommitQuery[] = {
    text("container", name_max), text("repo", name_max), text("tag", name_max),
    text("comment", path_max),   text("author", name_max), flag("pause"),
    many_text("changes", path_max)};
// GET /images/get (api/server/router/image/image_routes.go getImagesGet): names, repeated.
constexpr QueryParam kImageSaveQuery[] = {many_text("names", name_max)};
constexpr QueryParam kImageLoadQuery[] = {flag("quiet")};
constexpr QueryParam kImagePruneQuery[] = {filters(kImagePruneFilters)};
constexpr QueryParam kImagePushQuery[] = {text("tag", name_max)};
// docker-py sends force=0 with every tag; dockerd has not read it since API 1.24.
constexpr QueryParam kImageTagQuery[] = {text("repo", name_max), text("tag", name_max),
                                         ignored("force")};
constexpr QueryParam kImageDeleteQuery[] = {flag("force"), flag("noprune")};
// The classic builder's parameters (api/server/router/build/build_routes.go). The docker CLI
// sends cgroupparent= and ulimits=null with every build: neutral values pass (and berth
// writes the tenant's own cgroup parent).
constexpr QueryParam kBuildQuery[] = {
    text("dockerfile", path_max),
    many_text("t", name_max),
    many_text("extrahosts", name_max),
    refused_param("remote",
                  "remote build contexts make the daemon fetch URLs from the host's network; "
                  "send the context in the request"),
    flag("q"),
    flag("nocache"),
    judged("cachefrom", json_max),
    false_only("pull", "pulling base images is not available to tenants"),
    flag("rm"),
    flag("forcerm"),
    number("memory", 0, big),
    number("memswap", -1, big),
    number("cpushares", 0, 262144),
    text("cpusetcpus", 128),
    text("cpusetmems", 128),
    number("cpuperiod", 0, 1000000),
    number("cpuquota", -1, big),
    judged("buildargs", json_max),
    number("shmsize", 0, big),
    false_only("squash", "squashing needs an experimental daemon"),
    judged("labels", json_max),
    text("networkmode", name_max),
    since_version(text("platform", 64), 32),
    text("target", name_max),
    since_version(refused_param("outputs", "build outputs are BuildKit's"), 40),
    one_of("isolation", kIsolations),
    neutral_only("ulimits", kNoUlimits, "ulimits would raise the build's resource limits"),
    refused_param("securityopt", "dockerd refuses security options on builds"),
    refused_param("session", "BuildKit sessions are not available to tenants"),
    refused_param("buildid", "BuildKit build ids are not available to tenants"),
    neutral_only("cgroupparent", kEmpty, "berth places builds in the tenant's own cgroup"),
    one_of("version", kBuildVersions),
};
constexpr QueryParam kNetworkListQuery[] = {filters(kNetworkFilters)};
constexpr QueryParam kNetworkPruneQuery[] = {filters(kPruneFilters)};
constexpr QueryParam kNetworkInspectQuery[] = {{"verbose", QueryKind::strict_bool},
                                               one_of("scope", kNetworkScopes)};
constexpr QueryParam kVolumeListQuery[] = {filters(kVolumeFilters)};
constexpr QueryParam kVolumePruneQuery[] = {filters(kVolumePruneFilters)};
constexpr QueryParam kVolumeDeleteQuery[] = {flag("force")};
constexpr QueryParam kPluginListQuery[] = {filters(kPluginFilters)};

// Every route dockerd 20.10 (API 1.41) registers, in dockerd's own registration order where
// order matters (a literal segment before a "{name*}" capture of the same shape). The columns:
// method, path pattern, endpoint class id, who may call it, body handling, timeout class, the
// query parameters a tenant may send, what the answer tells the ownership index, and which
// daemon of a fleet serves it.
constexpr std::array kRoutes{
    // system
    Route{"GET", "/_ping", "system.ping", tenant, none, quick, {}, unindexed, any},
    Route{"HEAD", "/_ping", "system.ping", tenant, none, quick, {}, unindexed, any},
    Route{"GET", "/version", "system.version", tenant, none, quick, {}, unindexed, any},
    Route{"GET", "/info", "system.info", tenant, none, quick, {}, unindexed, fanout},
    Route{"GET", "/events", "system.events", tenant, none, endless, kEventsQuery, unindexed, fanout},
    Route{"GET", "/system/df", "system.df", tenant, none, slow, {}, unindexed, fanout},
    Route{"POST", "/auth", "system.auth", tenant, judge, slow, {}, unindexed, any},
    // containers
    Route{"GET", "/containers/json", "container.list", tenant, none, quick, kContainerListQuery,
          unindexed, fanout},
    Route{"POST", "/containers/create", "container.create", tenant, judge, slow,
          kContainerCreateQuery, container_created, placement},
    Route{"POST", "/containers/prune", "container.prune", tenant, none, slow, kContainerPruneQuery,
          unindexed, fanout},
    Route{"GET", "/containers/{id}/export", "container.export", tenant, none, endless, {},
          unindexed, holder},
    Route{"GET", "/containers/{id}/changes", "container.changes", tenant, none, slow, {}, unindexed,
          holder},
    Route{"GET", "/containers/{id}/json", "container.inspect", tenant, none, quick, kInspectQuery,
          unindexed, holder},
    Route{"GET", "/containers/{id}/top", "container.top", tenant, none, slow, kTopQuery, unindexed,
          holder},
    Route{"GET", "/containers/{id}/logs", "container.logs", tenant, none, endless, kLogsQuery,
          unindexed, holder},
    Route{"GET", "/containers/{id}/stats", "container.stats", tenant, none, endless, kStatsQuery,
          unindexed, holder},
    Route{"GET", "/containers/{id}/attach/ws", "container.attach_ws", tenant, hijack, endless,
          kAttachQuery, unindexed, holder},
    Route{"GET", "/containers/{id}/archive", "container.archive_get", tenant, none, endless,
          kArchiveQuery, unindexed, holder},
    Route{"HEAD", "/containers/{id}/archive", "container.archive_stat", tenant, none, quick,
          kArchiveQuery, unindexed, holder},
    Route{"PUT", "/containers/{id}/archive", "container.archive_put", tenant, stream, endless,
          kArchivePutQuery, unindexed, holder},
    Route{"POST", "/containers/{id}/kill", "container.kill", tenant, none, slow, kKillQuery,
          unindexed, holder},
    Route{"POST", "/containers/{id}/pause", "container.pause", tenant, none, slow, {}, unindexed,
          holder},
    Route{"POST", "/containers/{id}/unpause", "container.unpause", tenant, none, slow, {},
          unindexed, holder},
    Route{"POST", "/containers/{id}/restart", "container.restart", tenant, none, slow, kStopQuery,
          unindexed, holder},
    Route{"POST", "/containers/{id}/start", "container.start", tenant, judge, slow, kStartQuery,
          unindexed, holder},
    Route{"POST", "/containers/{id}/stop", "container.stop", tenant, none, slow, kStopQuery,
          unindexed, holder},
    Route{"POST", "/containers/{id}/wait", "container.wait", tenant, none, endless, kWaitQuery,
          unindexed, holder},
    Route{"POST", "/containers/{id}/resize", "container.resize", tenant, none, quick, kResizeQuery,
          unindexed, holder},
    Route{"POST", "/containers/{id}/attach", "container.attach", tenant, hijack, endless,
          kAttachQuery, unindexed, holder},
    Route{"POST", "/containers/{id}/copy", "container.copy", operator_only, judge, endless, {},
          unindexed, holder},
    Route{"POST", "/containers/{id}/exec", "exec.create", tenant, judge, quick, {}, exec_created,
          holder},
    Route{"POST", "/containers/{id}/rename", "container.rename", tenant, none, quick, kRenameQuery,
          unindexed, holder},
    Route{"POST", "/containers/{id}/update", "container.update", tenant, judge, quick, {},
          container_updated, holder},
    // berth's own: an operator moves a running container to another host of the fleet
    // (issue #16; proxy/migrate.cpp). dockerd never sees it.
    Route{"POST", "/containers/{id}/migrate", "container.migrate", operator_only, none, slow, {},
          unindexed, holder},
    // berth's own: every container of a cordoned host migrated elsewhere, one at a time.
    Route{"POST", "/hosts/{name}/drain", "host.drain", operator_only, none, slow, {}, unindexed,
          any},
    Route{"GET", "/containers/{id}/checkpoints", "checkpoint.list", operator_only, none, quick, {},
          unindexed, holder},
    Route{"POST", "/containers/{id}/checkpoints", "checkpoint.create", operator_only, judge, slow,
          {}, unindexed, holder},
    Route{"DELETE", "/containers/{id}/checkpoints/{checkpoint}", "checkpoint.delete", operator_only,
          none, slow, {}, unindexed, holder},
    // dockerd's route is "/containers/{name:.*}": with link=1 the name is "container/alias",
    // a legacy link to remove. After the checkpoint route, which berth classifies first.
    Route{"DELETE", "/containers/{id*}", "container.delete", tenant, none, slow,
          kContainerDeleteQuery, container_removed, holder},
    Route{"POST", "/commit", "container.commit", tenant, judge, slow, kCommitQuery,
          IndexEffect::image_committed, holder},
    // exec
    Route{"GET", "/exec/{id}/json", "exec.inspect", tenant, none, quick, {}, unindexed, holder},
    Route{"POST", "/exec/{id}/start", "exec.start", tenant, judge_hijack, endless, {}, unindexed,
          holder},
    Route{"POST", "/exec/{id}/resize", "exec.resize", tenant, none, quick, kResizeQuery, unindexed,
          holder},
    // images
    Route{"GET", "/images/json", "image.list", tenant, none, quick, kImageListQuery, unindexed,
          fanout},
    Route{"GET", "/images/search", "image.search", tenant, none, slow, kImageSearchQuery, unindexed,
          any},
    Route{"GET", "/images/get", "image.save", tenant, none, endless, kImageSaveQuery, unindexed,
          any},
    Route{"GET", "/images/{name*}/get", "image.save_one", tenant, none, endless, {}, unindexed,
          holder},
    Route{"GET", "/images/{name*}/history", "image.history", tenant, none, quick, {}, unindexed,
          holder},
    Route{"GET", "/images/{name*}/json", "image.inspect", tenant, none, quick, {}, unindexed,
          holder},
    Route{"POST", "/images/load", "image.load", tenant, stream, endless, kImageLoadQuery,
          unindexed, placement},
    Route{"POST", "/images/create", "image.create", tenant, stream, endless, kImageCreateQuery,
          unindexed, placement},
    Route{"POST", "/images/prune", "image.prune", tenant, none, slow, kImagePruneQuery, unindexed,
          fanout},
    // docker-py sends "{}" with a push: read, and judged empty.
    Route{"POST", "/images/{name*}/push", "image.push", tenant, judge, endless, kImagePushQuery,
          unindexed, holder},
    Route{"POST", "/images/{name*}/tag", "image.tag", tenant, none, quick, kImageTagQuery,
          unindexed, holder},
    Route{"DELETE", "/images/{name*}", "image.delete", tenant, none, slow, kImageDeleteQuery,
          unindexed, holder},
    // build
    Route{"POST", "/build", "build.run", tenant, stream, endless, kBuildQuery, unindexed, placement},
    Route{"POST", "/build/prune", "build.prune", operator_only, none, slow, {}, unindexed, fanout},
    Route{"POST", "/build/cancel", "build.cancel", operator_only, none, quick, {}, unindexed, any},
    Route{"POST", "/session", "build.session", tenant, hijack, endless, {}, unindexed, any},
    Route{"POST", "/grpc", "build.grpc", operator_only, hijack, endless, {}, unindexed, any},
    // networks
    Route{"GET", "/networks", "network.list", tenant, none, quick, kNetworkListQuery, unindexed,
          fanout},
    Route{"GET", "/networks/", "network.list", tenant, none, quick, kNetworkListQuery, unindexed,
          fanout},
    Route{"POST", "/networks/create", "network.create", tenant, judge, quick, {}, network_created,
          placement},
    Route{"POST", "/networks/prune", "network.prune", tenant, none, slow, kNetworkPruneQuery,
          unindexed, fanout},
    Route{"GET", "/networks/{id*}", "network.inspect", tenant, none, quick, kNetworkInspectQuery,
          unindexed, holder},
    Route{"POST", "/networks/{id*}/connect", "network.connect", tenant, judge, quick, {}, unindexed,
          holder},
    Route{"POST", "/networks/{id*}/disconnect", "network.disconnect", tenant, judge, quick, {},
          unindexed, holder},
    Route{"DELETE", "/networks/{id*}", "network.delete", tenant, none, quick, {}, unindexed, holder},
    // volumes
    Route{"GET", "/volumes", "volume.list", tenant, none, quick, kVolumeListQuery, unindexed,
          fanout},
    Route{"POST", "/volumes/create", "volume.create", tenant, judge, quick, {}, volume_created,
          placement},
    Route{"POST", "/volumes/prune", "volume.prune", tenant, none, slow, kVolumePruneQuery,
          unindexed, fanout},
    Route{"GET", "/volumes/{name*}", "volume.inspect", tenant, none, quick, {}, unindexed, holder},
    Route{"DELETE", "/volumes/{name*}", "volume.delete", tenant, none, quick, kVolumeDeleteQuery,
          unindexed, holder},
    // distribution
    Route{"GET", "/distribution/{name*}/json", "distribution.inspect", operator_only, none, slow,
          {}, unindexed, holder},
    // plugins
    Route{"GET", "/plugins", "plugin.list", tenant, none, quick, kPluginListQuery, unindexed,
          fanout},
    Route{"GET", "/plugins/privileges", "plugin.privileges", operator_only, none, slow, {},
          unindexed, any},
    Route{"POST", "/plugins/pull", "plugin.pull", operator_only, judge, endless, {}, unindexed,
          placement},
    Route{"POST", "/plugins/create", "plugin.create", operator_only, stream, endless, {}, unindexed,
          placement},
    Route{"GET", "/plugins/{name*}/json", "plugin.inspect", tenant, none, quick, {}, unindexed,
          holder},
    Route{"POST", "/plugins/{name*}/enable", "plugin.enable", operator_only, none, slow, {},
          unindexed, holder},
    Route{"POST", "/plugins/{name*}/disable", "plugin.disable", operator_only, none, slow, {},
          unindexed, holder},
    Route{"POST", "/plugins/{name*}/push", "plugin.push", operator_only, none, endless, {},
          unindexed, holder},
    Route{"POST", "/plugins/{name*}/upgrade", "plugin.upgrade", operator_only, judge, endless, {},
          unindexed, holder},
    Route{"POST", "/plugins/{name*}/set", "plugin.set", operator_only, judge, quick, {}, unindexed,
          holder},
    Route{"DELETE", "/plugins/{name*}", "plugin.delete", operator_only, none, slow, {}, unindexed,
          holder},
    // swarm
    Route{"GET", "/swarm", "swarm.inspect", operator_only, none, quick, {}, unindexed, any},
    Route{"GET", "/swarm/unlockkey", "swarm.unlockkey", operator_only, none, quick, {}, unindexed,
          any},
    Route{"POST", "/swarm/init", "swarm.init", operator_only, judge, slow, {}, unindexed, placement},
    Route{"POST", "/swarm/join", "swarm.join", operator_only, judge, slow, {}, unindexed, placement},
    Route{"POST", "/swarm/leave", "swarm.leave", operator_only, none, slow, {}, unindexed, any},
    Route{"POST", "/swarm/update", "swarm.update", operator_only, judge, slow, {}, unindexed, any},
    Route{"POST", "/swarm/unlock", "swarm.unlock", operator_only, judge, slow, {}, unindexed, any},
    Route{"GET", "/nodes", "node.list", operator_only, none, quick, {}, unindexed, fanout},
    Route{"GET", "/nodes/{id}", "node.inspect", operator_only, none, quick, {}, unindexed, holder},
    Route{"DELETE", "/nodes/{id}", "node.delete", operator_only, none, slow, {}, unindexed, holder},
    Route{"POST", "/nodes/{id}/update", "node.update", operator_only, judge, slow, {}, unindexed,
          holder},
    Route{"GET", "/services", "service.list", operator_only, none, quick, {}, unindexed, fanout},
    Route{"POST", "/services/create", "service.create", operator_only, judge, slow, {}, unindexed,
          placement},
    Route{"GET", "/services/{id}", "service.inspect", operator_only, none, quick, {}, unindexed,
          holder},
    Route{"POST", "/services/{id}/update", "service.update", operator_only, judge, slow, {},
          unindexed, holder},
    Route{"DELETE", "/services/{id}", "service.delete", operator_only, none, slow, {}, unindexed,
          holder},
    Route{"GET", "/services/{id}/logs", "service.logs", operator_only, none, endless, {}, unindexed,
          holder},
    Route{"GET", "/tasks", "task.list", operator_only, none, quick, {}, unindexed, fanout},
    Route{"GET", "/tasks/{id}", "task.inspect", operator_only, none, quick, {}, unindexed, holder},
    Route{"GET", "/tasks/{id}/logs", "task.logs", operator_only, none, endless, {}, unindexed,
          holder},
    Route{"GET", "/secrets", "secret.list", operator_only, none, quick, {}, unindexed, fanout},
    Route{"POST", "/secrets/create", "secret.create", operator_only, judge, quick, {}, unindexed,
          placement},
    Route{"GET", "/secrets/{id}", "secret.inspect", operator_only, none, quick, {}, unindexed,
          holder},
    Route{"DELETE", "/secrets/{id}", "secret.delete", operator_only, none, quick, {}, unindexed,
          holder},
    Route{"POST", "/secrets/{id}/update", "secret.update", operator_only, judge, quick, {},
          unindexed, holder},
    Route{"GET", "/configs", "config.list", operator_only, none, quick, {}, unindexed, fanout},
    Route{"POST", "/configs/create", "config.create", operator_only, judge, quick, {}, unindexed,
          placement},
    Route{"GET", "/configs/{id}", "config.inspect", operator_only, none, quick, {}, unindexed,
          holder},
    Route{"DELETE", "/configs/{id}", "config.delete", operator_only, none, quick, {}, unindexed,
          holder},
    Route{"POST", "/configs/{id}/update", "config.update", operator_only, judge, quick, {},
          unindexed, holder},
};

// Go's url.Parse decodes the path this way before gorilla/mux routes on it; an invalid escape
// makes Go's server answer 400 before routing, so refusing it loses nothing.
bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) {
        return false;
      }
      const int hi = hex_digit(in[i + 1]);
      const int lo = hex_digit(in[i + 2]);
      if (hi < 0 || lo < 0) {
        return false;
      }
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    // Control characters (NUL included) never appear in a legitimate Docker path.
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return false;
    }
    out += c;
  }
  return true;
}

// gorilla/mux cleans the path and redirects instead of routing when the clean form differs,
// so dockerd never executes an unclean path; berth refuses it outright.
bool is_clean(std::string_view path) noexcept {
  if (path.empty() || path.front() != '/') {
    return false;
  }
  std::size_t start = 1;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view seg = path.substr(start, end - start);
    const bool last = end == path.size();
    if (seg == "." || seg == ".." || (seg.empty() && !last)) {
      return false;
    }
    start = end + 1;
  }
  return true;
}

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> out;
  std::size_t start = 1;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    out.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Matches decoded path segments against a pattern. "{x}" takes one non-empty segment, "{x*}"
// one or more segments joined by '/', as dockerd's "{name:.*}" routes do.
bool match(std::string_view pattern, const std::vector<std::string_view>& segs,
           std::vector<std::string>& params) {
  const auto pat = split(pattern);
  params.clear();
  std::size_t star = pat.size();
  for (std::size_t i = 0; i < pat.size(); ++i) {
    if (pat[i].ends_with("*}")) {
      star = i;
    }
  }
  if (star == pat.size()) {
    if (pat.size() != segs.size()) {
      return false;
    }
    for (std::size_t i = 0; i < pat.size(); ++i) {
      if (pat[i].starts_with('{')) {
        if (segs[i].empty()) {
          return false;
        }
        params.emplace_back(segs[i]);
      } else if (pat[i] != segs[i]) {
        return false;
      }
    }
    return true;
  }
  const std::size_t after = pat.size() - star - 1;
  if (segs.size() < star + 1 + after) {
    return false;
  }
  for (std::size_t i = 0; i < star; ++i) {
    if (pat[i] != segs[i]) {
      return false;
    }
  }
  for (std::size_t i = 0; i < after; ++i) {
    if (pat[star + 1 + i] != segs[segs.size() - after + i]) {
      return false;
    }
  }
  std::string captured;
  for (std::size_t i = star; i < segs.size() - after; ++i) {
    if (segs[i].empty()) {
      return false;
    }
    captured += captured.empty() ? "" : "/";
    captured += segs[i];
  }
  params.push_back(std::move(captured));
  return true;
}

Decision bad_request(std::string message, std::string rule) {
  return Decision::deny(400, std::move(message), std::move(rule));
}

}  // namespace

std::span<const Route> endpoint_table() noexcept { return kRoutes; }

std::expected<Classified, Decision> classify(std::string_view method, std::string_view target) {
  Classified out;
  const std::size_t q = target.find('?');
  const std::string_view raw_path = target.substr(0, q);
  if (q != std::string_view::npos) {
    out.query = std::string(target.substr(q + 1));
  }
  if (raw_path.empty() || raw_path.front() != '/') {
    return std::unexpected(
        bad_request("berth: the request target must be an absolute path", "path.form"));
  }
  std::string decoded;
  if (!percent_decode(raw_path, decoded)) {
    return std::unexpected(bad_request(
        "berth: the request path has an invalid percent-encoding or a control character",
        "path.encoding"));
  }
  if (!is_clean(decoded)) {
    return std::unexpected(bad_request(
        "berth: the request path has empty, '.' or '..' segments; send the clean path",
        "path.unclean"));
  }
  std::string_view path = decoded;
  // dockerd routes "/v{version:[0-9.]+}" + route. berth accepts only the canonical "1.NN" form
  // within dockerd's range, so the version it judges is the version dockerd applies.
  if (path.size() > 2 && path[1] == 'v' && path[2] >= '0' && path[2] <= '9') {
    const std::size_t slash = path.find('/', 1);
    if (slash == std::string_view::npos) {
      return std::unexpected(Decision::deny(404, "page not found", "route.unknown"));
    }
    const std::string_view version = path.substr(2, slash - 2);
    int minor = -1;
    if (version.starts_with("1.") && version.size() >= 4 && version.size() <= 5 &&
        version[2] != '0') {
      const auto* first = version.data() + 2;
      const auto* last = version.data() + version.size();
      auto [ptr, ec] = std::from_chars(first, last, minor);
      if (ec != std::errc{} || ptr != last) {
        minor = -1;
      }
    }
    if (minor < min_api_minor || minor > max_api_minor) {
      return std::unexpected(bad_request(
          "berth: API version '" + std::string(version) + "' is not supported; use 1." +
              std::to_string(min_api_minor) + " to 1." + std::to_string(max_api_minor),
          "api.version"));
    }
    out.api_version = std::string(version);
    path.remove_prefix(slash);
  }
  out.path = std::string(path);
  const auto segs = split(out.path);
  for (const Route& route : kRoutes) {
    if (route.method != method) {
      continue;
    }
    if (match(route.pattern, segs, out.params)) {
      out.route = &route;
      return out;
    }
  }
  // dockerd answers an unrouted path with 404 {"message":"page not found"}.
  return std::unexpected(Decision::deny(404, "page not found", "route.unknown"));
}

namespace {

// A field name compared with a lower-case one, case-insensitively (ASCII, as Go's textproto).
bool field_is(std::string_view name, std::string_view lower) noexcept {
  if (name.size() != lower.size()) {
    return false;
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i] >= 'A' && name[i] <= 'Z' ? static_cast<char>(name[i] + 32) : name[i];
    if (c != lower[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool tenant_field_forwarded(std::string_view name) noexcept {
  // Host (Go answers 400 without one), the client's name (dockerd logs it and passes it on to
  // registries as UpstreamClient), and the compression a copy from a container may use.
  return field_is(name, "host") || field_is(name, "user-agent") ||
         field_is(name, "accept-encoding");
}

bool tenant_field_forwarded(const Route& route, std::string_view name) noexcept {
  // The tenant's registry credentials, for the pulls and pushes berth judged (the registry is
  // the reference's, judged against the tenant's egress); never logged, never another's.
  const bool transfer = route.endpoint == "image.create" || route.endpoint == "image.push";
  return tenant_field_forwarded(name) || (transfer && field_is(name, "x-registry-auth"));
}

std::string_view tenant_body_content_type(const Route& route) noexcept {
  switch (route.body) {
    case BodyMode::judge:
    case BodyMode::judge_hijack:
      return "application/json";
    case BodyMode::stream:
      return "application/x-tar";  // build contexts, copies into containers, image imports
    case BodyMode::none:
    case BodyMode::hijack:
      break;
  }
  return {};
}

std::string percent_encode(std::string_view s, std::string_view also_keep) {
  static constexpr char hex[] = "0123456789ABCDEF";
  const auto keep = [also_keep](char ch) {
    const auto u = static_cast<unsigned char>(ch);
    return (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~' ||
           also_keep.find(ch) != std::string_view::npos;
  };
  // Almost every path needs no escape (ids, names, "/json"): one copy, not a char at a time.
  const auto first = std::find_if_not(s.begin(), s.end(), keep);
  if (first == s.end()) {
    return std::string(s);
  }
  std::string out(s.begin(), first);
  out.reserve(s.size() + 16);
  for (auto it = first; it != s.end(); ++it) {
    const char ch = *it;
    if (keep(ch)) {
      out += ch;
    } else {
      const auto u = static_cast<unsigned char>(ch);
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 0xF];
    }
  }
  return out;
}

std::string canonical_target(const Classified& c) {
  std::string out;
  if (!c.api_version.empty()) {
    out += "/v";
    out += c.api_version;
  }
  out += escape_path(c.path);
  if (!c.query.empty()) {
    out += '?';
    out += c.query;
  }
  return out;
}

}  // namespace berth::policy
