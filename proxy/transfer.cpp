// A tenant's pull or push (policy::ImageTransfer): what berth does before dockerd sees the
// request (the tag's digest for a pull; the registry's name, held transient, for a push) and
// before the stream's end reaches the client (the pulled image tagged under the tenant's name;
// the push's name removed). A push's name is removed on every way out (pipeline()).

#include <string>

#include <nlohmann/json.hpp>

#include "policy/filter.hpp"
#include "policy/names.hpp"
#include "policy/vocabulary.hpp"
#include "proxy/docker_client.hpp"
#include "proxy/log.hpp"
#include "proxy/ownership.hpp"
#include "proxy/server.hpp"
#include "proxy/session.hpp"
#include "proxy/wire.hpp"

namespace berth::proxy {

using namespace wire;
using json = nlohmann::json;

namespace {

std::string docker_message(const DockerReply& reply) {
  const auto doc = json::parse(reply.body, nullptr, false);
  if (doc.is_object() && doc.contains("message") && doc["message"].is_string()) {
    return doc["message"].get<std::string>();
  }
  return "the Docker daemon answered " + std::to_string(reply.status);
}

bool is_digest(std::string_view d) {
  return d.size() == 71 && d.starts_with("sha256:") &&
         d.substr(7).find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// "repo:tag" split at the tag's colon (the last ':' after the last '/').
std::pair<std::string, std::string> repo_and_tag(const std::string& ref) {
  const auto colon = ref.rfind(':');
  return {ref.substr(0, colon), ref.substr(colon + 1)};
}

// One line of the JSON message stream the docker CLI prints as an error.
std::string error_line(const std::string& message) {
  json line;
  line["errorDetail"]["message"] = message;
  line["error"] = message;
  return line.dump() + "\n";
}

}  // namespace

net::awaitable<std::optional<Refusal>> Session::begin_transfer(Admission& a) {
  if (a.rewritten.transfer->kind == policy::ImageTransfer::Kind::pull) {
    co_return co_await begin_pull(a);
  }
  co_return co_await begin_push(a);
}

net::awaitable<std::optional<Refusal>> Session::begin_pull(Admission& a) {
  policy::ImageTransfer& t = *a.rewritten.transfer;
  const bool keep = a.parser.is_done() && a.keep_alive;
  // The tag's digest, asked with the tenant's own credentials (a private repository answers
  // only them), so that dockerd pulls by digest and names nothing globally.
  std::string auth(a.header()["X-Registry-Auth"]);
  std::string target = "/distribution/" + policy::escape_path(t.remote_ref()) + "/json";
  std::string no_body;
  auto reply = co_await docker_request(worker_.pool(), a.rt, http::verb::get, std::move(target),
                                       std::move(no_body), std::move(auth));
  if (!reply) {
    co_return Refusal{
        policy::Decision::deny(502, "berth: the Docker daemon did not answer", "upstream.failed"),
        false};
  }
  if (reply->status != 200) {
    co_return Refusal{policy::Decision::deny(reply->status, docker_message(*reply), "image.pull"),
                      keep};
  }
  const auto doc = json::parse(reply->body, nullptr, false);
  std::string digest;
  if (doc.is_object() && doc.contains("Descriptor") && doc["Descriptor"].is_object()) {
    digest = doc["Descriptor"].value("digest", std::string());
  }
  const std::string from = "&tag=" + t.tag;
  const auto at = a.rewritten.target.find(from);
  if (!is_digest(digest) || at == std::string::npos) {
    co_return Refusal{policy::Decision::deny(
                          502, "berth: the registry gave no usable digest for " + t.remote_ref(),
                          "image.pull"),
                      keep};
  }
  a.rewritten.target.replace(at, from.size(), "&tag=" + policy::percent_encode(digest, ":"));
  a.transfer_digest = digest;
  a.transfer_open = true;
  worker_.index().write(
      [&](policy::OwnershipIndex& idx) { idx.hold_pull(t.remote + "@" + digest); });
  co_return std::nullopt;
}

net::awaitable<std::optional<Refusal>> Session::begin_push(Admission& a) {
  const policy::ImageTransfer& t = *a.rewritten.transfer;
  const bool keep = a.parser.is_done() && a.keep_alive;
  // The registry's name on the tenant's image for as long as the push runs, hidden from every
  // tenant. A name that already names another image (a shared one, or another push in flight)
  // is not moved.
  const std::string remote = t.remote_ref();
  enum class Hold { taken, same_image, busy };
  const Hold hold = worker_.index().write([&](policy::OwnershipIndex& idx) {
    if (idx.is_transient(remote)) {
      return Hold::busy;
    }
    if (const auto existing = idx.image_by_tag(remote)) {
      return existing->id == t.image_id ? Hold::same_image : Hold::busy;
    }
    idx.hold_transient(remote);
    return Hold::taken;
  });
  if (hold == Hold::busy) {
    co_return Refusal{policy::Decision::deny(
                          409, "berth: the name " + remote +
                                   " is in use on this Docker host right now; push again later "
                                   "or under another name",
                          "image.push_busy"),
                      keep};
  }
  if (hold == Hold::same_image) {
    co_return std::nullopt;
  }
  a.transfer_open = true;
  const auto [repo, tag] = repo_and_tag(remote);
  std::string target = "/images/" + policy::escape_path(t.image_id) + "/tag?repo=" +
                       policy::percent_encode(repo, "") + "&tag=" + policy::percent_encode(tag, "");
  auto reply = co_await docker_request(worker_.pool(), a.rt, http::verb::post, std::move(target));
  if (!reply || reply->status >= 300) {
    (void)co_await end_transfer(a, false);
    co_return Refusal{policy::Decision::deny(500, "berth: could not prepare the push of " + remote,
                                             "image.push"),
                      keep};
  }
  co_return std::nullopt;
}

net::awaitable<std::string> Session::end_transfer(Admission& a, bool succeeded) {
  if (!a.transfer_open) {
    co_return std::string();
  }
  a.transfer_open = false;
  const policy::ImageTransfer& t = *a.rewritten.transfer;
  UpstreamPool& pool = worker_.pool();
  if (t.kind == policy::ImageTransfer::Kind::push) {
    const std::string remote = t.remote_ref();
    auto reply = co_await docker_request(pool, a.rt, http::verb::delete_,
                                         "/images/" + policy::escape_path(remote) + "?noprune=1");
    if (!reply || (reply->status != 200 && reply->status != 404)) {
      log_error("push of " + remote + " for tenant " + a.who->tenant +
                ": could not remove the registry's name; it stays hidden from tenants");
      co_return std::string();  // still held: nobody sees or resolves it
    }
    worker_.index().write([&](policy::OwnershipIndex& idx) {
      idx.untag_image(remote);
      idx.release_transient(remote);
    });
    co_return std::string();
  }
  // A pull: the image under the tenant's own name, then the digest reference gone.
  const std::string by_digest = t.remote + "@" + a.transfer_digest;
  std::string extra;
  if (succeeded) {
    const auto [repo, tag] = repo_and_tag(t.stored);
    auto tagged = co_await docker_request(
        pool, a.rt, http::verb::post,
        "/images/" + policy::escape_path(by_digest) + "/tag?repo=" +
            policy::percent_encode(repo, "") + "&tag=" + policy::percent_encode(tag, ""));
    if (!tagged || tagged->status >= 300) {
      extra = error_line("berth: the image was pulled but could not be named " + t.remote_ref());
    } else if (auto inspected = co_await docker_request(
                   pool, a.rt, http::verb::get, "/images/" + policy::escape_path(t.stored) + "/json");
               inspected && inspected->status == 200) {
      if (const auto unfit = policy::judge_image_config(inspected->body)) {
        // ONBUILD triggers run unjudged in any build FROM the image (a COPY --from naming
        // another tenant's image, an ADD of a URL the tenant may not fetch); labels under
        // berth's prefix are berth's (the ownership label excepted, which every image built
        // through berth carries): not kept. (The
        // inspect's "Config" is the configuration's "config", as Go matches keys.)
        std::string untag = "/images/" + policy::escape_path(t.stored) + "?noprune=1";
        (void)co_await docker_request(pool, a.rt, http::verb::delete_, std::move(untag));
        extra = error_line("berth: " + t.remote_ref() + " " + *unfit + "; it was not kept");
      } else {
        index_image(worker_.index(), inspected->body);  // the client may run it at once
      }
    }
  }
  // The digest reference, untagged whether or not the pull went through (dockerd keeps the
  // image while any other name holds it), once no other pull of it is in flight.
  const bool last = worker_.index().write(
      [&](policy::OwnershipIndex& idx) { return idx.release_pull(by_digest); });
  if (!last) {
    co_return extra;
  }
  auto removed = co_await docker_request(pool, a.rt, http::verb::delete_,
                                         "/images/" + policy::escape_path(by_digest) + "?noprune=1");
  if (removed && removed->status != 200 && removed->status != 404 && removed->status != 409) {
    log_error("pull of " + t.remote_ref() + ": could not remove " + by_digest);
  }
  co_return extra;
}

std::string Session::transfer_lines(const Exchange& ex, std::string_view lines,
                                    const policy::Principal& who) {
  std::string out;
  const policy::ImageTransfer& t = *ex.transfer->rewritten.transfer;
  const std::string by_digest = t.remote + "@" + ex.transfer->transfer_digest;
  std::size_t start = 0;
  while (start < lines.size()) {
    auto nl = lines.find('\n', start);
    if (nl == std::string_view::npos) {
      nl = lines.size();
    }
    std::string line(lines.substr(start, nl - start));
    start = nl + 1;
    if (line.empty()) {
      continue;
    }
    if (line.find("\"errorDetail\"") != std::string::npos) {
      ex.transfer->transfer_failed = true;
    }
    if (!ex.transfer->transfer_digest.empty()) {
      // What dockerd says of the digest it pulled is said of the tag the tenant named, as a
      // pull by tag reads ("v1: Pulling from team/app").
      const std::string id_field = "\"id\":\"" + by_digest + "\"";
      if (const auto at = line.find(id_field); at != std::string::npos) {
        line.replace(at, id_field.size(), "\"id\":\"" + t.tag + "\"");
      }
      for (auto at = line.find(by_digest); at != std::string::npos; at = line.find(by_digest, at)) {
        line.replace(at, by_digest.size(), t.remote_ref());
        at += t.remote_ref().size();
      }
    }
    out += policy::filter_build_message(who, line);
    out += '\n';
  }
  return out;
}

}  // namespace berth::proxy
