// An operator drives dockerd through berth with the stock docker CLIs (20.10 and 28): every
// everyday command works as it does against a private Docker host, including the streaming
// and hijacked ones (logs -f, exec -i, run -it, attach, cp, build, events).

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <string>

#include <catch2/catch.hpp>

#include "tests/support/dockerd.hpp"
#include "tests/support/process.hpp"
#include "tests/support/proxy_under_test.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/text.hpp"

using berth::test::describe;
using berth::test::ProxyUnderTest;
using berth::test::PtyStep;
using berth::test::RunOptions;
using berth::test::test_image;
using berth::test::trim;
using Catch::Matchers::Contains;

namespace {

/// `docker run -d --label berth.test=<id> --name <name> <args...>`, REQUIREd to succeed.
std::string run_detached(const ProxyUnderTest& p, const std::string& cli, const std::string& name,
                         const std::vector<std::string>& args) {
  std::vector<std::string> a{"run", "-d", "--label", p.test_label(), "--name", name};
  a.insert(a.end(), args.begin(), args.end());
  const auto r = p.docker(cli, p.operator_bundle(), a);
  INFO("docker run -d: " << describe(r));
  REQUIRE(r.ok());
  return trim(r.out);
}

}  // namespace

TEST_CASE(
    "an operator sees dockerd's server version and the negotiated API version in docker version",
    "[proxy][operator][version]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const std::string server_version = berth::test::dockerd_field("/version", "Version");
  const std::string api_version = berth::test::dockerd_field("/version", "ApiVersion");
  REQUIRE_FALSE(server_version.empty());

  const auto formatted = p.docker(
      cli, p.operator_bundle(),
      {"version", "--format", "{{.Server.Version}}|{{.Server.APIVersion}}|{{.Client.APIVersion}}"});
  INFO(describe(formatted));
  REQUIRE(formatted.ok());
  CHECK(trim(formatted.out) == server_version + "|" + api_version + "|" + api_version);

  const auto plain = p.docker(cli, p.operator_bundle(), {"version"});
  INFO(describe(plain));
  CHECK(plain.ok());
  CHECK_THAT(plain.out, Contains("Server:") && Contains(server_version));
}

TEST_CASE("an operator sees the daemon in docker info", "[proxy][operator][info]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const std::string id = berth::test::dockerd_field("/info", "ID");
  const std::string version = berth::test::dockerd_field("/info", "ServerVersion");

  const auto r =
      p.docker(cli, p.operator_bundle(), {"info", "--format", "{{.ID}}|{{.ServerVersion}}"});
  INFO(describe(r));
  REQUIRE(r.ok());
  CHECK(trim(r.out) == id + "|" + version);

  const auto plain = p.docker(cli, p.operator_bundle(), {"info"});
  INFO(describe(plain));
  CHECK(plain.ok());
  CHECK_THAT(plain.out, Contains("Server Version: " + version));
}

TEST_CASE("an operator gets a container's output and exit status from docker run --rm",
          "[proxy][operator][run]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const auto hello = p.docker(cli, p.operator_bundle(),
                              {"run", "--rm", "--label", p.test_label(), test_image, "sh", "-c",
                               "echo hello-from-$((6*7)); echo to-stderr >&2"});
  INFO(describe(hello));
  CHECK(hello.ok());
  CHECK(hello.out == "hello-from-42\n");
  CHECK(hello.err == "to-stderr\n");

  const auto status =
      p.docker(cli, p.operator_bundle(),
               {"run", "--rm", "--label", p.test_label(), test_image, "sh", "-c", "exit 7"});
  INFO(describe(status));
  CHECK(status.exit_code == 7);
  CHECK(berth::test::list_labelled(p.test_label()).containers.empty());
}

TEST_CASE("an operator follows a running container with docker logs -f until it exits",
          "[proxy][operator][logs]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const std::string name = p.name("logs");
  run_detached(p, cli, name,
               {test_image, "sh", "-c", "echo line-1; sleep 2; echo line-2; sleep 1; echo line-3"});
  // Still running when logs -f starts, so the lines after the first arrive by following.
  REQUIRE(berth::test::container_state(name) == "running");
  RunOptions bounded;
  bounded.timeout = std::chrono::seconds(30);
  const auto logs = p.docker(cli, p.operator_bundle(), {"logs", "-f", name}, bounded);
  INFO(describe(logs));
  CHECK(logs.ok());
  CHECK(logs.out == "line-1\nline-2\nline-3\n");
}

TEST_CASE("an operator pipes stdin into a container with docker exec -i",
          "[proxy][operator][exec]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const std::string name = p.name("exec-i");
  run_detached(p, cli, name, {test_image, "sleep", "300"});
  RunOptions with_input;
  with_input.input = "hello\nsecond line\n";
  const auto r = p.docker(cli, p.operator_bundle(), {"exec", "-i", name, "cat"}, with_input);
  INFO(describe(r));
  CHECK(r.ok());
  CHECK(r.out == "hello\nsecond line\n");
}

TEST_CASE("an operator gets the exit status of a command run with docker exec",
          "[proxy][operator][exec]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const std::string name = p.name("exec-status");
  run_detached(p, cli, name, {test_image, "sleep", "300"});
  const auto r =
      p.docker(cli, p.operator_bundle(), {"exec", name, "sh", "-c", "echo before-exit; exit 3"});
  INFO(describe(r));
  CHECK(r.exit_code == 3);
  CHECK(r.out == "before-exit\n");
}

TEST_CASE("an operator reads megabytes of docker exec output byte for byte, with and without a "
          "TTY",
          "[proxy][operator][exec]") {
  // Large enough to cross every relay path: many windows, TLS records sent together, and a
  // TTY's 4 KiB pieces gathered into larger ones.
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const std::string name = p.name("exec-big");
  run_detached(p, cli, name, {test_image, "sleep", "300"});
  std::string lines;
  std::string terminal_lines;  // the TTY turns each \n into \r\n
  for (int i = 1; i <= 300000; ++i) {
    lines += std::to_string(i) + "\n";
    terminal_lines += std::to_string(i) + "\r\n";
  }
  // Where `got` first differs from `want` (want's size when it does not): a short figure
  // instead of megabytes in a failure report.
  const auto first_difference = [](const std::string& got, const std::string& want) {
    const auto at = std::mismatch(got.begin(), got.end(), want.begin(), want.end());
    return static_cast<std::size_t>(at.second - want.begin());
  };
  const auto plain = p.docker(cli, p.operator_bundle(), {"exec", name, "seq", "1", "300000"});
  INFO("docker exec: exit " << plain.exit_code << ", stderr: " << plain.err);
  CHECK(plain.ok());
  CHECK(plain.out.size() == lines.size());
  CHECK(first_difference(plain.out, lines) == lines.size());
  const auto tty = p.docker(cli, p.operator_bundle(), {"exec", "-t", name, "seq", "1", "300000"});
  INFO("docker exec -t: exit " << tty.exit_code << ", stderr: " << tty.err);
  CHECK(tty.ok());
  CHECK(tty.out.size() == terminal_lines.size());
  CHECK(first_difference(tty.out, terminal_lines) == terminal_lines.size());
}

TEST_CASE("an operator gets a terminal in the container with docker run -it",
          "[proxy][operator][tty]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const auto r = p.docker_pty(cli, p.operator_bundle(),
                              {"run", "-it", "--rm", "--label", p.test_label(), test_image, "sh",
                               "-c", "test -t 0 && test -t 1 && echo TTY-$((40+2)); exit 6"},
                              {});
  INFO(describe(r));
  CHECK_FALSE(r.timed_out);
  CHECK_THAT(r.out, Contains("TTY-42"));
  CHECK(r.exit_code == 6);
}

TEST_CASE("an operator works in an interactive shell with docker exec -it",
          "[proxy][operator][tty]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const std::string name = p.name("exec-it");
  run_detached(p, cli, name, {test_image, "sleep", "300"});
  const auto r = p.docker_pty(
      cli, p.operator_bundle(), {"exec", "-it", name, "sh"},
      {PtyStep{"# ", "test -t 0 && echo TTY-$((40+2))\r"}, PtyStep{"TTY-42", "exit 5\r"}});
  INFO(describe(r));
  CHECK_FALSE(r.timed_out);
  CHECK_THAT(r.out, Contains("TTY-42"));
  CHECK(r.exit_code == 5);
}

TEST_CASE("an operator attaches to a running container and talks to it with docker attach",
          "[proxy][operator][attach]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const std::string name = p.name("attach");
  run_detached(p, cli, name, {"-i", test_image, "sh", "-c", "read line; echo got-$line; exit 4"});
  // On a terminal, so stdin stays open: for a container without StdinOnce, dockerd closes the
  // attach's stdout as soon as the attach's stdin reaches EOF, and output after that is lost.
  const auto r = p.docker_pty(cli, p.operator_bundle(), {"attach", name}, {PtyStep{"", "ping\r"}});
  INFO(describe(r));
  CHECK_FALSE(r.timed_out);
  CHECK_THAT(r.out, Contains("got-ping"));
  CHECK(r.exit_code == 4);
}

TEST_CASE("an operator detaches from a container with detach keys and it keeps running",
          "[proxy][operator][attach][tty]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const std::string name = p.name("detach");
  run_detached(p, cli, name, {"-it", test_image, "sh"});
  const auto r =
      p.docker_pty(cli, p.operator_bundle(), {"attach", "--detach-keys", "ctrl-x,x", name},
                   {PtyStep{"", "echo ping-$((40+2))\r"}, PtyStep{"ping-42", "\x18x"}});
  INFO(describe(r));
  CHECK_FALSE(r.timed_out);
  CHECK_THAT(r.out, Contains("ping-42"));
  // Both CLIs report the detach as "read escape sequence" (and exit 1).
  CHECK_THAT(r.out, Contains("read escape sequence"));
  CHECK(berth::test::container_state(name) == "running");
}

TEST_CASE("an operator copies a file into a container and back unchanged with docker cp",
          "[proxy][operator][cp]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const std::string name = p.name("cp");
  run_detached(p, cli, name, {test_image, "sleep", "300"});
  std::string content = "round trip\nsecond line\n";
  for (int i = 0; i < 256; ++i) {
    content += static_cast<char>(i);  // every byte value survives the tar stream both ways
  }
  const auto in = p.dir() / "in.bin";
  berth::test::write_file(in, content);

  const auto to = p.docker(cli, p.operator_bundle(), {"cp", in.string(), name + ":/tmp/in.bin"});
  INFO(describe(to));
  REQUIRE(to.ok());
  const auto inside = p.docker(cli, p.operator_bundle(), {"exec", name, "cat", "/tmp/in.bin"});
  CHECK(inside.out == content);

  const auto back = p.dir() / "back.bin";
  const auto from =
      p.docker(cli, p.operator_bundle(), {"cp", name + ":/tmp/in.bin", back.string()});
  INFO(describe(from));
  REQUIRE(from.ok());
  CHECK(berth::test::read_file(back) == content);

  const auto made = p.docker(cli, p.operator_bundle(),
                             {"exec", name, "sh", "-c", "echo made-inside > /tmp/made.txt"});
  REQUIRE(made.ok());
  const auto out = p.dir() / "made.txt";
  const auto from2 =
      p.docker(cli, p.operator_bundle(), {"cp", name + ":/tmp/made.txt", out.string()});
  INFO(describe(from2));
  REQUIRE(from2.ok());
  CHECK(berth::test::read_file(out) == "made-inside\n");
}

TEST_CASE("an operator builds an image from a Dockerfile with docker build and runs it",
          "[proxy][operator][build]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const auto context = p.dir() / "context";
  std::filesystem::create_directories(context);
  berth::test::write_file(context / "msg.txt", "copied-from-context\n");
  berth::test::write_file(context / "Dockerfile", std::string("FROM ") + test_image +
                                                      "\n"
                                                      "COPY msg.txt /msg.txt\n"
                                                      "RUN echo built-by-run >> /msg.txt\n"
                                                      "LABEL " +
                                                      p.test_label() +
                                                      "\n"
                                                      "CMD [\"cat\", \"/msg.txt\"]\n");
  const std::string tag = p.name("img") + ":latest";
  RunOptions slow;
  slow.timeout = std::chrono::seconds(180);
  const auto build =
      p.docker(cli, p.operator_bundle(),
               {"build", "--label", p.test_label(), "-t", tag, context.string()}, slow);
  INFO(describe(build));
  REQUIRE(build.ok());
  CHECK(berth::test::list_labelled(p.test_label()).images.size() == 1);

  const auto run =
      p.docker(cli, p.operator_bundle(), {"run", "--rm", "--label", p.test_label(), tag});
  INFO(describe(run));
  CHECK(run.ok());
  CHECK(run.out == "copied-from-context\nbuilt-by-run\n");
}

TEST_CASE("an operator sees a labelled container start in docker events for a bounded window",
          "[proxy][operator][events]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const std::string name = p.name("events");
  const auto since = std::time(nullptr) - 1;
  const auto run =
      p.docker(cli, p.operator_bundle(),
               {"run", "--rm", "--name", name, "--label", p.test_label(), test_image, "true"});
  INFO(describe(run));
  REQUIRE(run.ok());
  const auto until = std::time(nullptr) + 1;
  RunOptions bounded;
  bounded.timeout = std::chrono::seconds(30);
  const auto events = p.docker(
      cli, p.operator_bundle(),
      {"events", "--since", std::to_string(since), "--until", std::to_string(until), "--filter",
       "label=" + p.test_label(), "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"},
      bounded);
  INFO(describe(events));
  CHECK(events.ok());
  CHECK_THAT(events.out, Contains("container start " + name));
  CHECK_THAT(events.out, Contains("container die " + name));
}

TEST_CASE("an operator reads a running container's usage with docker stats --no-stream",
          "[proxy][operator][stats]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const std::string name = p.name("stats");
  run_detached(p, cli, name, {test_image, "sleep", "300"});
  const auto r = p.docker(cli, p.operator_bundle(),
                          {"stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", name});
  INFO(describe(r));
  CHECK(r.ok());
  CHECK_THAT(r.out, Contains(name + " ") && Contains("B / "));
}

TEST_CASE("an operator removes a running container with docker rm -f", "[proxy][operator][rm]") {
  const auto cli = GENERATE(as<std::string>{}, "/usr/bin/docker", "/usr/local/bin/docker");
  CAPTURE(cli);
  ProxyUnderTest p;
  const std::string name = p.name("rm");
  run_detached(p, cli, name, {test_image, "sleep", "300"});
  REQUIRE(berth::test::container_state(name) == "running");
  const auto r = p.docker(cli, p.operator_bundle(), {"rm", "-f", name});
  INFO(describe(r));
  CHECK(r.ok());
  CHECK(trim(r.out) == name);
  CHECK(berth::test::container_state(name).empty());
}
