#pragma once
// policy_edit: the few changes `berthctl` makes to the operator's policy file itself
// (`berthctl host cordon|uncordon`). The operator's file is theirs: an edit changes one value
// in place, or adds one line, and keeps every comment, key order and blank line; the result
// must still parse as a policy, or nothing is written.

#include <expected>
#include <string>
#include <string_view>

namespace berth::policy {

/// `yaml_text` with the fleet host `host`'s `cordoned:` set to `cordoned`: its value replaced
/// where it is written, or a `cordoned:` line added under the host's `name:` (block style).
/// Errors: no `hosts` list, no such host, a host written in flow style (`{name: h1, ...}`),
/// or a result that is no longer a valid policy (with parse_policy's first diagnostic).
[[nodiscard]] std::expected<std::string, std::string> set_host_cordoned(
    std::string_view yaml_text, std::string_view host, bool cordoned);

}  // namespace berth::policy
