// Fuzz entry point for the Dockerfile parser port and the canonical Dockerfile berth forwards.
// Besides the sanitizers it checks, aborting when one breaks:
//  - each instruction's canonical line reads back as the instruction (or is refused);
//  - a Dockerfile berth accepts is forwarded as text that parses back to exactly the
//    instructions it judged, with the same escape token.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "policy/build_context.hpp"
#include "policy/dockerfile.hpp"
#include "policy/ownership_index.hpp"
#include "tests/fuzz/fuzz_entry.hpp"

namespace {

using namespace berth::policy;

bool same(const dockerfile::Node& a, const dockerfile::Node& b) {
  if (a.cmd != b.cmd || a.flags != b.flags || a.args != b.args || a.json != b.json ||
      a.child.size() != b.child.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.child.size(); ++i) {
    if (!same(a.child[i], b.child[i])) {
      return false;
    }
  }
  return true;
}

const OwnershipIndex& sample_index() {
  static const OwnershipIndex index = [] {
    OwnershipIndex idx;
    idx.put_image({"sha256:" + std::string(64, 'a'), "", {"berth-test/busybox:latest"}});
    idx.put_image({"sha256:" + std::string(64, 'b'), "globex", {"globex.berth.local/app:1"}});
    idx.put_image({"sha256:" + std::string(64, 'c'), "acme", {"acme.berth.local/app:v1"}});
    return idx;
  }();
  return index;
}

const Tenant& sample_tenant() {
  static const Tenant tenant = [] {
    Tenant t;
    t.id = "acme";
    t.images = std::vector<std::string>{"berth-test/*"};
    t.egress.urls = std::vector<std::string>{"http://allowed.example/"};
    return t;
  }();
  return tenant;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto parsed = dockerfile::parse(input);
  if (parsed) {
    for (const auto& node : parsed->instructions) {
      (void)dockerfile::onbuild_expression(node.original);
      if (!dockerfile::known_instruction(node.cmd)) {
        continue;
      }
      auto line = dockerfile::instruction_line(node.cmd, node.flags, node.rest, parsed->escape);
      if (!line) {
        continue;
      }
      const std::string text = std::string("# escape=") + parsed->escape + "\n" + *line + "\n";
      auto again = dockerfile::parse(text);
      if (!again || again->instructions.size() != 1) {
        std::abort();
      }
      // ONBUILD's inner instruction is parsed from the same text: it is compared too.
      if (!same(again->instructions[0], node)) {
        std::abort();
      }
    }
  }
  auto judged = judge_dockerfile(sample_tenant(), input, sample_index());
  if (judged) {
    auto again = dockerfile::parse(judged->text);
    if (!again || !parsed || again->escape != parsed->escape ||
        again->instructions.size() != judged->instructions.size()) {
      std::abort();
    }
    for (std::size_t i = 0; i < again->instructions.size(); ++i) {
      if (!same(again->instructions[i], judged->instructions[i])) {
        std::abort();
      }
    }
  }
  return 0;
}
