// Reading the kernel's cgroup files: formats, the tree layout agreed with the proxy, and what
// the tree can never make the meter believe.

#include "metering/cgroup.hpp"

#include <catch2/catch.hpp>

#include "tests/metering/unit/support.hpp"

namespace {

namespace m = berth::metering;
using berth::metering::test::container_id;
using berth::metering::test::fake_v2_cgroup;
using berth::metering::test::put;
using berth::metering::test::TempTree;

// Real excerpts from this host's kernel (cgroup v1, kernel 6.x).
constexpr std::string_view memory_stat_v1 =
    "cache 8192\nrss 57344\nrss_huge 0\nshmem 67108864\nmapped_file 0\ndirty 0\n"
    "writeback 0\npgpgin 16551\npgpgout 151\npgfault 16929\npgmajfault 0\n"
    "inactive_anon 67166208\nactive_anon 0\ninactive_file 0\nactive_file 8192\n"
    "unevictable 0\nhierarchical_memory_limit 9223372036854771712\n"
    "total_cache 67117056\ntotal_rss 57344\ntotal_shmem 67108864\n"
    "total_inactive_anon 67166208\ntotal_active_anon 0\ntotal_inactive_file 4096\n"
    "total_active_file 8192\ntotal_unevictable 0\n";

constexpr std::string_view net_dev =
    "Inter-|   Receive                                                |  Transmit\n"
    " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs "
    "drop fifo colls carrier compressed\n"
    "    lo:    1000      10    0    0    0     0          0         0     1000      10    0 "
    "   0    0     0       0          0\n"
    "  eth0:    4242      31    0    0    0     0          0         0      646       9    0 "
    "   0    0     0       0          0\n";

}  // namespace

TEST_CASE("the working set is usage minus inactive file pages, so /dev/shm is billed",
          "[metering][cgroup]") {
  const auto usage = m::parse_u64("68112384\n");
  const auto inactive = m::parse_keyed(memory_stat_v1, "total_inactive_file");
  REQUIRE(usage);
  REQUIRE(inactive);
  CHECK(*inactive == 4096);
  // "usage minus cache" would give ~1 MiB here, for a container holding 64 MiB in /dev/shm.
  CHECK(m::working_set(*usage, *inactive) == 68112384 - 4096);
  CHECK(m::working_set(10, 20) == 0);
}

TEST_CASE("keyed files match whole keys only", "[metering][cgroup]") {
  CHECK(m::parse_keyed(memory_stat_v1, "inactive_file") == 0u);
  CHECK(m::parse_keyed(memory_stat_v1, "total_inactive_file") == 4096u);
  CHECK(m::parse_keyed("usage_usec 12\nuser_usec 3\n", "usage_usec") == 12u);
  CHECK_FALSE(m::parse_keyed("usage_usec_x 12\n", "usage_usec"));
  CHECK_FALSE(m::parse_u64(""));
  CHECK_FALSE(m::parse_u64("max\n"));
}

TEST_CASE("block I/O sums reads and writes over every device", "[metering][cgroup]") {
  const auto v1 = m::parse_blkio_v1(
      "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 4608\n8:0 Async 0\n8:0 Total 4608\n"
      "8:16 Read 1\n8:16 Write 2\nTotal 4611\n");
  CHECK(v1.read == 4097);
  CHECK(v1.write == 514);
  const auto v2 = m::parse_io_stat_v2("8:0 rbytes=100 wbytes=200 rios=1\n8:16 rbytes=1 wbytes=2\n");
  CHECK(v2.read == 101);
  CHECK(v2.write == 202);
}

TEST_CASE("network bytes leave out the loopback interface", "[metering][cgroup]") {
  const auto rw = m::parse_net_dev(net_dev);
  CHECK(rw.read == 4242);
  CHECK(rw.write == 646);
}

TEST_CASE("cgroup.events tells whether a cgroup still has processes", "[metering][cgroup]") {
  CHECK(m::parse_populated("populated 0\nfrozen 0\n") == false);
  CHECK(m::parse_populated("populated 1\nfrozen 0\n") == true);
  CHECK_FALSE(m::parse_populated("frozen 0\n"));
}

TEST_CASE("only valid tenant ids and container ids are taken from the tree",
          "[metering][cgroup]") {
  CHECK(m::tenant_from_slice("berth-acme.slice") == "acme");
  CHECK(m::tenant_from_slice("berth-my\\x2dteam.slice") == "my-team");
  // systemd nests "berth-a-b.slice" inside "berth-a.slice": not a tenant slice of its own.
  CHECK_FALSE(m::tenant_from_slice("berth-a-b.slice"));
  CHECK_FALSE(m::tenant_from_slice("berth-ACME.slice"));
  CHECK_FALSE(m::tenant_from_slice("berth-.slice"));
  CHECK(m::container_from_dir(container_id(1)) == container_id(1));
  CHECK(m::container_from_dir("docker-" + container_id(2) + ".scope") == container_id(2));
  CHECK_FALSE(m::container_from_dir("docker-abc.scope"));
  CHECK_FALSE(m::container_from_dir(std::string(64, 'G')));
}

TEST_CASE("the tree scan finds tenants, their containers and loose containers",
          "[metering][cgroup]") {
  TempTree tree;
  const auto& root = tree.path();
  put(root / "cgroup.controllers", "cpu memory io\n");
  fake_v2_cgroup(root, "berth/acme", 1, 1, 0);
  fake_v2_cgroup(root, "berth/acme/" + container_id(1), 1, 1, 0);
  fake_v2_cgroup(root, "berth/Bad_Tenant", 1, 1, 0);
  fake_v2_cgroup(root, "berth/acme/not-a-container", 1, 1, 0);
  fake_v2_cgroup(root, "berth.slice/berth-globex.slice", 1, 1, 0);
  fake_v2_cgroup(root, "berth.slice/berth-globex.slice/docker-" + container_id(2) + ".scope", 1,
                 1, 0);
  fake_v2_cgroup(root, "docker/" + container_id(3), 1, 1, 0);
  fake_v2_cgroup(root, "custom/parent/" + container_id(4), 1, 1, 0);

  const auto layout = m::detect_layout(root);
  REQUIRE(layout);
  CHECK(layout->version == m::CgroupVersion::v2);
  const std::vector<std::string> extra{"custom/parent", "berth/acme"};
  const auto scan = m::scan_tree(*layout, extra);
  REQUIRE(scan.tenants.size() == 2);
  CHECK(scan.tenants[0].tenant == "acme");
  CHECK(scan.tenants[1].tenant == "globex");
  CHECK(scan.tenants[1].rel == "berth.slice/berth-globex.slice");
  REQUIRE(scan.containers.size() == 4);
  CHECK(scan.containers[0].parent_tenant == "acme");
  CHECK(scan.containers[1].parent_tenant == "globex");
  CHECK(scan.containers[2].id == container_id(3));
  CHECK(scan.containers[2].parent_tenant.empty());
  CHECK(scan.containers[3].rel == "custom/parent/" + container_id(4));
}

TEST_CASE("a cgroup v1 hierarchy needs cpuacct and memory", "[metering][cgroup]") {
  TempTree tree;
  CHECK_FALSE(m::detect_layout(tree.path()));
  put(tree.path() / "cpuacct" / "cpuacct.usage", "1\n");
  CHECK_FALSE(m::detect_layout(tree.path()));
  put(tree.path() / "memory" / "memory.usage_in_bytes", "1\n");
  put(tree.path() / "unified" / "cgroup.controllers", "\n");
  const auto layout = m::detect_layout(tree.path());
  REQUIRE(layout);
  CHECK(layout->version == m::CgroupVersion::v1);
  CHECK(layout->blkio.empty());
  CHECK(layout->events == tree.path() / "unified");
}

TEST_CASE("an open cgroup reader sees new values and reports a removed cgroup",
          "[metering][cgroup]") {
  TempTree tree;
  const auto& root = tree.path();
  put(root / "cgroup.controllers", "\n");
  fake_v2_cgroup(root, "berth/acme", 1500, 10000, 1000);
  const auto layout = m::detect_layout(root);
  REQUIRE(layout);
  auto reader = m::CgroupReader::open(*layout, "berth/acme", true);
  REQUIRE(reader);
  auto r = reader->read();
  REQUIRE(r);
  CHECK(r->cpu_ns == 1'500'000);
  CHECK(r->working_set_bytes == 9000);
  CHECK(r->has_blk);
  CHECK(r->blk_read_bytes == 101);
  CHECK(r->blk_write_bytes == 202);
  CHECK(reader->generation() != 0);
  CHECK_FALSE(reader->first_pid());
  CHECK_FALSE(m::CgroupReader::open(*layout, "berth/nobody", false));
  CHECK(m::CgroupReader::open(*layout, "berth/nobody", false).error() == ENOENT);
}
