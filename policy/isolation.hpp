#pragma once
// Isolation between bridges that does not depend on dockerd's own rules. dockerd 20.10 keeps
// bridge networks apart with its DOCKER-ISOLATION-STAGE-* chains, jumped to from the filter
// table's FORWARD chain, and on every network create and delete it deletes and re-inserts those
// jumps; with concurrent network operations (moby#25393) there are moments without them, and a
// container on one bridge reached another bridge's containers in 5 of 300 pings here. berth adds
// its own chain in the mangle table's FORWARD hook, which dockerd never touches: for each tenant
// bridge, traffic stays on that bridge or leaves toward the host's own interfaces, and nothing
// is forwarded between it and any other Docker bridge.
//
// Pure text: the proxy feeds the result to `iptables-restore --noflush`, which swaps the
// chain's rules in one transaction.

#include <string>
#include <string_view>
#include <vector>

namespace berth::policy::isolation {

inline constexpr std::string_view chain = "BERTH-ISOLATION";

/// The Linux bridge dockerd creates for a bridge network ("br-" and the id's first 12
/// characters); empty when `network_id` is not a dockerd id.
[[nodiscard]] std::string bridge_of(std::string_view network_id);

/// iptables-restore input for the mangle table that replaces the rules of `chain` with, for
/// each bridge (sorted, duplicates dropped):
///   -i B -o B      RETURN   (a bridge's own traffic)
///   -i B -o br-+   DROP     (to another Docker bridge)
///   -i B -o docker0 DROP
///   -i br-+ -o B   DROP     (from another Docker bridge)
///   -i docker0 -o B DROP
/// Bridges that are not "br-<12 hex>" are left out.
[[nodiscard]] std::string restore_script(std::vector<std::string> bridges);

}  // namespace berth::policy::isolation
