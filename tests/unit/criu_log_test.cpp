// berth-node's reading of CRIU's own logs (node/criu_log.hpp): the figures a migration
// reports for its restore, and the reason a failed dump gives.

#include "node/criu_log.hpp"

#include <sstream>
#include <string>

#include <catch2/catch.hpp>

namespace {

// The shape of a restore.log that containerd keeps: runc probes CRIU once (a first run),
// then the restore, which calls runc back for the network hook.
const std::string restore_log =
    "(00.000000) CRIU run id = 6b24d178-9243-4f05-b2a9-5d3c430dc83c\n"
    "(00.004000) Running setup-namespaces scripts\n"
    "(00.004010) \tRPC\n"
    "(00.900000) Restore finished successfully. Tasks resumed.\n"
    "(00.000000) CRIU run id = edea20e7-5418-4ba6-a2b0-a70c43c96ea0\n"
    "(00.061167) Wait until namespaces are created\n"
    "(00.062513) Running setup-namespaces scripts\n"
    "(00.062522) \tRPC\n"
    "(00.406334)      1: cg: Move into 2\n"
    "not a stamped line\n"
    "(00.476170) Running post-restore scripts\n"
    "(00.569729) Restore finished successfully. Tasks resumed.\n"
    "(00.569927) Running post-resume scripts\n";

}  // namespace

TEST_CASE(
    "a restore's figures are read from CRIU's last run in its log: the whole restore and "
    "the network hook runc ran when CRIU called back",
    "[node]") {
  std::istringstream log(restore_log);
  const auto figures = berth::node::restore_figures(log);
  CHECK(figures.value("criu_restore_ms", -1) == 570);
  CHECK(figures.value("network_hook_ms", -1) == 344);
}

TEST_CASE("a log without a finished restore gives no figures rather than wrong ones", "[node]") {
  std::istringstream failed(
      "(00.000000) CRIU run id = edea20e7\n"
      "(00.062513) Running setup-namespaces scripts\n"
      "(00.062522) \tRPC\n"
      "(00.406334) Error (criu/cr-restore.c:1518): 1 killed by signal 9\n");
  CHECK(berth::node::restore_figures(failed).empty());
  std::istringstream empty("");
  CHECK(berth::node::restore_figures(empty).empty());
}

TEST_CASE("a failed dump's reason is CRIU's error lines, and only them", "[node]") {
  std::istringstream log(
      "(00.010000) Dumping sockets\n"
      "(00.020000) Error (criu/sk-inet.c:199): inet: Connected TCP socket, consider using "
      "--tcp-established option.\n"
      "(00.020100) Unlock network\n"
      "(00.030000) Error (criu/cr-dump.c:1781): Dumping FAILED.\n");
  CHECK(berth::node::criu_errors(log) ==
        "(00.020000) Error (criu/sk-inet.c:199): inet: Connected TCP socket, consider using "
        "--tcp-established option. | (00.030000) Error (criu/cr-dump.c:1781): Dumping FAILED.");
  std::istringstream clean("(00.100000) Dumping finished successfully\n");
  CHECK(berth::node::criu_errors(clean).empty());
}
