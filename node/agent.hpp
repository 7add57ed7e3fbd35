#pragma once
// berth-node's work on its own host, below dockerd: what dockerd's API cannot do for a live
// migration (issue #16). dockerd can checkpoint a container into a directory and start one
// from a checkpoint in its own data root, but it can neither hand a checkpoint over nor take
// one in, nor set CRIU's options, nor drain a container's new connections.
//
// A migration, as berth-proxy drives it (proxy/migrate.cpp):
//   source  checkpoint: restart policy "no" (so dockerd never brings the source back while
//           the target runs), new TCP connections dropped in the container's network namespace
//           and drain_ms waited, then the dump by runc itself, underneath dockerd (CRIU, with
//           tcp-established and skip-in-flight): the container stops (dockerd records its
//           exit), its checkpoint is kept here, and archive_command() streams it with the
//           writable layer.
//   target  restore: the archive (begin_restore() + extract_command()) into the container
//           berth-proxy created with the same configuration and address; the checkpoint goes
//           into dockerd's data root, the layer into the container's UpperDir; dockerd starts
//           the container from the checkpoint. Its memory pages stay out of dockerd's and
//           containerd's way (see keep_pages_aside()).
//   source  commit: the stopped source removed, with its kept checkpoint; or
//           rollback: the source started again from its kept checkpoint, its restart policy
//           given back.

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "node/dockerd.hpp"

namespace berth::node {

struct Settings {
  std::string docker_socket = "/var/run/docker.sock";
  std::string data_root = "/var/lib/docker";  ///< dockerd's --data-root
  std::string state_dir = "/var/lib/berth-node";
  std::string criu = "criu";  ///< for preflight, and the one runc runs
  std::string runc = "runc";
  /// runc's state of dockerd's containers: `<dockerd's --exec-root>/runtime-runc/moby`.
  std::string runc_root = "/var/run/docker/runtime-runc/moby";
  std::string containerd_tmp = "/tmp";  ///< where containerd unpacks a restore's checkpoint
  /// The file runc reads CRIU's options from, at dump and restore, for every container
  /// without an org.criu.config annotation: berth-node keeps tcp-established (an open TCP
  /// connection is dumped and restored, not refused) and skip-in-flight (a connection still
  /// being accepted while the container froze is dropped, not a failed dump) in it.
  std::string criu_config = "/etc/criu/runc.conf";
};

/// Writes settings.criu_config when it is absent or berth-node's own; returns the problem when
/// it is someone else's and lacks the options (it is left as it is).
[[nodiscard]] std::string ensure_criu_config(const Settings& settings);

/// A step's answer: 200, or dockerd's status (or 409/500) with the reason.
struct Outcome {
  unsigned status = 200;
  std::string message;
  nlohmann::json detail = nlohmann::json::object();
  [[nodiscard]] bool ok() const noexcept { return status == 200; }
};

/// Per-phase figures, as /metrics shows them.
class Figures {
 public:
  void phase(const std::string& name, double seconds, bool ok);
  void bytes(const std::string& direction, std::uint64_t n);
  [[nodiscard]] std::string prometheus_text() const;

 private:
  struct Phase {
    std::uint64_t ok = 0;
    std::uint64_t failed = 0;
    double seconds = 0;
    double last = 0;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Phase> phases_;
  std::map<std::string, std::uint64_t> bytes_;
};

/// A container id as dockerd gives it (64 lowercase hex) and a checkpoint name berth chose.
[[nodiscard]] bool valid_container_id(const std::string& id);
[[nodiscard]] bool valid_checkpoint_name(const std::string& name);

class Agent {
 public:
  explicit Agent(Settings settings);

  /// What this host can do: criu, runc's state of dockerd's containers, the kernel's
  /// dirty-page tracking (pre-copy) and userfaultfd (post-copy), dockerd's checkpoints, free
  /// space in the data root.
  [[nodiscard]] nlohmann::json preflight() const;

  /// Source: the container stopped into a checkpoint kept here (see the file's head).
  /// `twin`: the target's container, recorded with the kept checkpoint (kept_checkpoints) so
  /// that a recovery knows it by id. Refused (409) while an earlier migration's checkpoint is
  /// kept: that one is recovered first.
  Outcome checkpoint(const std::string& id, const std::string& name, int drain_ms,
                     const std::string& twin = {});
  /// Source: until dockerd has seen the container stop (at most 10 s). runc's dump returns
  /// before; dockerd releases the container's network first, which the target's restore must
  /// come after: an overlay endpoint removed after the twin's own can take its address's route
  /// with it. The archive's last chunk waits for it (after the transfer, not before).
  void wait_stopped(const std::string& id);
  /// tar of the kept checkpoint ("<name>/...") and the writable layer ("diff/...") on stdout.
  [[nodiscard]] std::vector<std::string> archive_command(const std::string& id,
                                                         const std::string& name) const;
  /// Source: the stopped container removed, its checkpoint dropped.
  Outcome commit(const std::string& id);
  /// Source: the stopped container running again from its kept checkpoint (afresh, its memory
  /// lost, when there is none or it cannot be restored); refused (409) while it runs. The
  /// checkpoint stays kept when the container could not be started at all.
  Outcome rollback(const std::string& id, const std::string& name);
  /// Source: a kept checkpoint whose container was never stopped into it (the dump did not
  /// happen) or no longer needs it: the container's new connections let in again and its
  /// restart policy given back when it runs, the checkpoint dropped. The container is left.
  Outcome release(const std::string& id);
  /// The checkpoints kept here, as [{"Id", "Checkpoint", "Twin"}] ("" when none was made or
  /// named): what a berth-proxy restarted after
  /// a kill (or one whose call to this node failed) finishes or rolls back
  /// (policy::recovery_steps). A migration under way shows here too.
  [[nodiscard]] nlohmann::json kept_checkpoints() const;

  /// Target: a twin that never started removed; one that has run (409) is the container now.
  /// Waits for a restore under way, so a twin is never removed while it starts, nor starts
  /// once removed.
  Outcome discard(const std::string& id);

  /// Target: an empty directory for the archive, in the container's own directory of the
  /// data root (so the checkpoint moves in by rename); empty with `problem` set when the
  /// container is not one to restore into.
  std::string begin_restore(const std::string& id, std::string& problem);
  /// tar -x of the archive on stdin into `dir`.
  [[nodiscard]] static std::vector<std::string> extract_command(const std::string& dir);
  /// Target: the extracted archive put in place and the container started from it.
  Outcome restore(const std::string& id, const std::string& name, const std::string& dir);
  /// Target: an archive that did not arrive whole removed.
  void abandon_restore(const std::string& dir);

  Figures& figures() noexcept { return figures_; }
  [[nodiscard]] const Settings& settings() const noexcept { return settings_; }

 private:
  [[nodiscard]] std::string kept(const std::string& id) const;
  // The container's own directory in dockerd's data root.
  [[nodiscard]] std::filesystem::path container_dir(const std::string& id) const;
  // The source.json of the checkpoint kept for `id`: discarded (not an object) when none.
  [[nodiscard]] nlohmann::json kept_source(const std::string& id) const;
  // The container dumped by runc into `images`; "" or why not.
  std::string dump(const std::string& id, const std::filesystem::path& images);
  Outcome start_from_checkpoint(const std::string& id, const std::string& name);
  void pin_addresses(const std::string& id, const nlohmann::json& networks);
  // Removes what containerd unpacked for the restore marked `mark`, and nothing of another's.
  void clean_containerd_tmp(const std::string& mark) const;
  void take_logs(const std::string& id, const nlohmann::json& twin,
                 const std::filesystem::path& incoming) const;

  Settings settings_;
  Dockerd dockerd_;
  Figures figures_;
  std::mutex busy_;  // one checkpoint or restore at a time on this host
};

}  // namespace berth::node
