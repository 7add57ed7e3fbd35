// Hostile image archives against the proxy every tenant shares (issue #17): `docker load` bodies
// that are garbage, a gzip bomb, cut off, or sent by many clients at once are refused while the
// proxy keeps serving, and dockerd is left with nothing of them.

#include <future>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "tests/hostile/hostile.hpp"
#include "tests/support/dockerd.hpp"
#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/tls_client.hpp"

using berth::test::check_clean_stop;
using berth::test::describe;
using berth::test::http_request;
using berth::test::ProxyUnderTest;
using berth::test::TlsClient;
using namespace std::chrono_literals;

namespace {

// What python3's tarfile writes for `script` (run with `out`, a binary stdout, in scope).
std::string python_bytes(const std::string& script) {
  berth::test::RunOptions o;
  o.timeout = 120s;
  const auto r = berth::test::run(
      {"python3", "-c", "import io, sys, tarfile, gzip, json\nout = sys.stdout.buffer\n" + script}, o);
  INFO(describe(r));
  REQUIRE(r.ok());
  return r.out;
}

// An archive whose one entry claims 96 MiB of zeros, gzip-compressed to about 100 KiB.
std::string gzip_bomb() {
  return python_bytes(
      "class Zeros(io.RawIOBase):\n"
      "    def __init__(self, n): self.n = n\n"
      "    def readable(self): return True\n"
      "    def readinto(self, b):\n"
      "        k = min(len(b), self.n); b[:k] = bytes(k); self.n -= k; return k\n"
      "with tarfile.open(fileobj=out, mode='w|gz') as t:\n"
      "    i = tarfile.TarInfo('zeros'); i.size = 96 << 20\n"
      "    t.addfile(i, io.BufferedReader(Zeros(i.size)))\n");
}

// A well-formed archive naming one image whose configuration is not in it.
std::string named_archive() {
  return python_bytes(
      "b = io.BytesIO()\n"
      "with tarfile.open(fileobj=b, mode='w') as t:\n"
      "    def add(n, d):\n"
      "        i = tarfile.TarInfo(n); i.size = len(d); t.addfile(i, io.BytesIO(d))\n"
      "    add('layer.tar', bytes(300000))\n"
      "    add('manifest.json', json.dumps([{'Config': 'c.json', 'RepoTags': ['cut:v1'],"
      " 'Layers': ['layer.tar']}]).encode())\n"
      "out.write(b.getvalue())\n");
}

// POSTs `body` as an image archive; the answer's status, or 0 when the connection ended first.
unsigned load(const ProxyUnderTest& p, const std::string& body) {
  TlsClient c("127.0.0.1", p.port(), p.tenant_bundle());
  if (!c.connect()) {
    return 0;
  }
  (void)c.send(http_request("POST", "/v1.41/images/load?quiet=1", body,
                            {"Content-Type: application/x-tar"}),
               60s);
  const auto answer = c.read_response(60s);
  return answer ? static_cast<unsigned>(answer->status) : 0U;
}

}  // namespace

TEST_CASE("hostile image archives are refused whole while the proxy keeps serving every tenant",
          "[hostile][archive]") {
  ProxyUnderTest p;
  // Garbage, a bomb, an archive without its configuration: refused, each with an answer.
  CHECK(load(p, std::string(64 * 1024, '\x5a')) == 403);
  CHECK(load(p, gzip_bomb()) == 403);
  const std::string archive = named_archive();
  CHECK(load(p, archive) == 403);

  // Cut off mid-entry by a client that goes away: dockerd's side is cut too.
  {
    TlsClient cut("127.0.0.1", p.port(), p.tenant_bundle());
    REQUIRE(cut.connect());
    const std::string request = http_request("POST", "/v1.41/images/load", archive,
                                             {"Content-Type: application/x-tar"});
    REQUIRE(cut.send(std::string_view(request).substr(0, request.size() / 2)));
    cut.reset();
  }

  // Many at once, mixed with another tenant's ordinary requests.
  std::vector<std::future<unsigned>> loads;
  for (int i = 0; i < 8; ++i) {
    loads.push_back(std::async(std::launch::async, [&, i] {
      return load(p, i % 2 == 0 ? archive : std::string(10000 + static_cast<std::size_t>(i), '\0') + "x");
    }));
  }
  for (int i = 0; i < 20; ++i) {
    TlsClient other("127.0.0.1", p.port(), p.other_tenant_bundle());
    REQUIRE(other.connect());
    REQUIRE(other.send(http_request("GET", "/v1.41/images/json")));
    const auto listed = other.read_response();
    REQUIRE(listed);
    CHECK(listed->status == 200);
  }
  for (auto& f : loads) {
    const unsigned status = f.get();
    CHECK((status == 403 || status == 400));
  }
  // dockerd holds nothing of any of them.
  CHECK(berth::test::dockerd_request("GET", "/images/" + p.id() + ".berth.local/cut:v1/json")
            .status == 404);
  check_clean_stop(p);
}
