#!/bin/bash
# Installs what berth needs to build and run its tests on Debian 12, then makes sure dockerd
# answers on /var/run/docker.sock. Idempotent: packages are checked with dpkg-query, apt-get
# runs (with one `apt-get update`) only when something is missing, and dockerd is started only
# when its socket does not answer.
set -euo pipefail

packages=(
  build-essential cmake g++ libboost-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev catch2
  prometheus-cpp-dev libmimalloc-dev docker.io busybox-static python3-docker docker-compose nginx openssl curl
  util-linux iproute2 iptables procps clang-16 libclang-rt-16-dev prometheus
  golang-go golang-github-pkg-errors-dev libre2-dev zlib1g-dev docker-registry
)

log() { printf 'install-deps: %s\n' "$*" >&2; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  else
    sudo "$@"
  fi
}

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  if [[ $status != installed ]]; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} > 0)); then
  log "installing: ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
else
  log "all packages present"
fi

# The registry tests start docker-registry themselves on loopback; the package's own service
# (listening on every address) is not wanted.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  as_root systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi

# The differential test (tests/differential) builds against dockerd's own Dockerfile parser,
# from the Debian source of docker.io; fetched once into a cache.
"$(dirname "${BASH_SOURCE[0]}")/../tests/differential/fetch_moby_source.sh" >/dev/null

# Live migration (berth-node, tests/integration/migrate_test.cpp) needs a criu that works on
# this kernel: Debian 12's does not (scripts/install-criu.sh says why); built once from source.
as_root "$(dirname "${BASH_SOURCE[0]}")/install-criu.sh" >&2

# dockerd: talk to the socket directly so neither DOCKER_HOST nor a docker context in the
# caller's environment can point the check somewhere else.
docker_answers() {
  DOCKER_HOST=unix:///var/run/docker.sock /usr/bin/docker info >/dev/null 2>&1
}

if docker_answers; then
  log "dockerd answers on /var/run/docker.sock"
  exit 0
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  log "starting dockerd (log: /var/log/berth-dockerd.log)"
  as_root sh -c 'nohup dockerd >/var/log/berth-dockerd.log 2>&1 &'
fi

for _ in $(seq 1 120); do
  if docker_answers; then
    log "dockerd answers on /var/run/docker.sock"
    exit 0
  fi
  sleep 0.5
done

log "dockerd did not answer within 60 s; see /var/log/berth-dockerd.log"
exit 1
