// Fuzz entry point for the build-context path: the strict tar reader (whole and in pieces),
// BuildContextFilter, the image archive filters (LoadArchiveFilter, SaveArchiveFilter), and the
// tar writer. Besides the sanitizers it checks the promises
// berth's forwarding rests on, aborting when one breaks:
//  - the reader yields the same entries whether fed whole or in pieces;
//  - every header berth writes reads back as the entry it was written for;
//  - what the filter forwards reads back, with berth's reader, as the entries it accepted;
//  - an image archive berth forwards to dockerd reads back with manifest.json once, as its last
//    entry, and no "repositories" file; a saved archive berth passes on reads back entry for entry.
//
// Input: the first byte picks the piece size and the dockerfile parameter; the rest is the
// build context.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "policy/build_context.hpp"
#include "policy/image_archive.hpp"
#include "policy/ownership_index.hpp"
#include "policy/tar_stream.hpp"
#include "tests/fuzz/fuzz_entry.hpp"

namespace {

using namespace berth::policy;

struct Read {
  bool ok = false;
  std::vector<tar::Entry> entries;
  std::vector<std::string> data;
};

Read read(std::string_view bytes, std::size_t piece) {
  Read r;
  tar::Reader reader;
  while (true) {
    std::string_view window = bytes.substr(0, std::min(piece, bytes.size()));
    bytes.remove_prefix(window.size());
    for (;;) {
      auto step = reader.next(window);
      if (!step) {
        return r;
      }
      if (step->event == tar::Reader::Event::need_more) {
        break;
      }
      if (step->event == tar::Reader::Event::entry) {
        r.entries.push_back(reader.entry());
        r.data.emplace_back();
      } else if (step->event == tar::Reader::Event::data) {
        r.data.back().append(step->data);
      }
    }
    if (bytes.empty()) {
      break;
    }
  }
  r.ok = reader.finish().has_value();
  return r;
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

// The same bytes as a tenant's `docker load` and as dockerd's answer to a `docker save`.
void check_image_archives(std::string_view input, std::size_t piece, const Read& whole) {
  LoadArchiveFilter load("acme");
  SaveArchiveFilter save("acme");
  std::string loaded;
  std::string saved;
  bool load_ok = true;
  bool save_ok = true;
  for (std::string_view rest = input; !rest.empty();) {
    const std::string_view window = rest.substr(0, std::min(piece, rest.size()));
    rest.remove_prefix(window.size());
    if (load_ok) {
      auto out = load.feed(window, sample_index());
      while (out && load.pending()) {
        auto more = load.feed({}, sample_index());
        out = more ? std::expected<std::string, Decision>(*out + *more) : std::move(more);
      }
      load_ok = out.has_value();
      loaded += out.value_or("");
    }
    if (save_ok) {
      auto out = save.feed(window);
      save_ok = out.has_value();
      saved += out.value_or("");
    }
  }
  if (load_ok) {
    auto tail = load.finish();
    if (tail) {
      const Read back = read(loaded + *tail, loaded.size() + tail->size() + 1);
      if (!back.ok || back.entries.empty() || back.entries.back().path != "manifest.json") {
        std::abort();
      }
      for (std::size_t i = 0; i + 1 < back.entries.size(); ++i) {
        const tar::Entry& e = back.entries[i];
        if (e.path == "manifest.json" ||
            (e.path == "repositories" && e.type == tar::Type::regular)) {
          std::abort();
        }
      }
    }
  }
  if (save_ok) {
    auto tail = save.finish();
    if (tail) {
      const Read back = read(saved + *tail, saved.size() + tail->size() + 1);
      if (!back.ok || !whole.ok || back.entries.size() != whole.entries.size()) {
        std::abort();
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const auto control = data[0];
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  static const char* const params[] = {"",     "",           "Dockerfile",      "sub/Dockerfile",
                                       "../x", "dockerfile", "/a/./Dockerfile", "x"};
  const std::string param = params[control & 7];
  const std::size_t piece = 1 + (static_cast<std::size_t>(control >> 3) * 37);

  const Read whole = read(input, input.size() + 1);
  const Read cut = read(input, piece);
  if (whole.ok != cut.ok ||
      (whole.ok && (whole.entries != cut.entries || whole.data != cut.data))) {
    std::abort();
  }
  for (const auto& e : whole.entries) {
    std::string out;
    tar::append_header(out, e);
    out.append(static_cast<std::size_t>(std::min<std::uint64_t>(e.size, 4096)), 'd');
    if (e.size <= 4096) {
      tar::append_padding(out, e.size);
      const Read back = read(out, out.size() + 1);
      if (!back.ok || back.entries.size() != 1 || !(back.entries[0] == e)) {
        std::abort();
      }
    }
  }

  check_image_archives(input, piece, whole);

  BuildContextFilter filter(sample_tenant(), param);
  std::string forwarded;
  bool accepted = true;
  for (std::string_view rest = input; !rest.empty();) {
    const std::string_view window = rest.substr(0, std::min(piece, rest.size()));
    rest.remove_prefix(window.size());
    auto out = filter.feed(window, sample_index());
    if (!out) {
      accepted = false;
      break;
    }
    forwarded += *out;
  }
  if (accepted) {
    auto tail = filter.finish();
    accepted = tail.has_value();
    if (accepted) {
      forwarded += *tail;
    }
  }
  if (accepted) {
    const Read again = read(forwarded, forwarded.size() + 1);
    if (!again.ok || !whole.ok || again.entries.size() != whole.entries.size()) {
      std::abort();
    }
    for (std::size_t i = 0; i < again.entries.size(); ++i) {
      tar::Entry a = again.entries[i];
      tar::Entry w = whole.entries[i];
      if (a.size != w.size || again.data[i] != whole.data[i]) {
        // Only a Dockerfile is replaced, by its canonical text.
        auto text = rewrite_dockerfile(sample_tenant(), whole.data[i], sample_index());
        if (!text || *text != again.data[i]) {
          std::abort();
        }
        a.size = w.size;
      }
      if (!(a == w)) {
        std::abort();
      }
    }
  }
  return 0;
}
