#!/usr/bin/env bash
# A fleet against one host (issue #15), in one run on this machine: berth-proxy in front of
# host 0 of a three-host test fleet (one host: no routing, no fan-out), then berth-proxy in
# front of all three hosts, each with six containers of one tenant (spread over the hosts in
# the second case). For each, berth-bench measures container inspect, the container list and
# container create (each create's container removed after it, not counted); the table gives
# both rates and their ratio.
#
# usage: tests/bench/fleet_bench.sh BUILD_DIR
#   BUILD_DIR holds tests/bench/berth-bench, proxy/berth-proxy and ctl/berthctl.
# Needs: root, dockerd on /var/run/docker.sock with berth-test/busybox:latest (the fleet's
#   hosts copy it), tests/support/test_fleet.sh's tools (ip, nsenter).
# Knobs (environment): BENCH_DURATION (4 s per measurement), BENCH_CONNECTIONS (16 for
#   inspect and list, a quarter of that for create), BENCH_ROUNDS (2: each measurement is
#   taken this many times, one host and fleet in turn).
# The three dockerds, berth and the client share this machine's cores: a list, which asks
# every host, pays for that here as it would not on a fleet of real machines.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
BENCH=$BUILD/tests/bench/berth-bench
PROXY=$BUILD/proxy/berth-proxy
CTL=$BUILD/ctl/berthctl
FLEET=$SRC/tests/support/test_fleet.sh
IMAGE=berth-test/busybox:latest
DURATION=${BENCH_DURATION:-4}
CONNS=${BENCH_CONNECTIONS:-16}
ROUNDS=${BENCH_ROUNDS:-2}
ID=fb$(($$ % 10000))
WORK=$(mktemp -d /tmp/berth-fleet-bench.XXXXXX)
PROXY_PID=

log() { printf '[fleet_bench] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

stop_proxy() {
  if [[ -n $PROXY_PID ]]; then
    kill -TERM "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
    PROXY_PID=
  fi
}
cleanup() {
  stop_proxy
  bash "$FLEET" down "$ID" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for bin in "$BENCH" "$PROXY" "$CTL"; do
  [[ -x $bin ]] || die "$bin not built"
done

log "fleet $ID: three dockerds"
bash "$FLEET" up "$ID" 3 "$IMAGE" >"$WORK/fleet.log" 2>&1 || { cat "$WORK/fleet.log" >&2; die "no fleet"; }
"$CTL" ca init "$WORK/ca" --host 127.0.0.1 >/dev/null
"$CTL" cert issue --ca "$WORK/ca" --tenant benchco --user bench --out "$WORK/tenant" >/dev/null

# $1: how many hosts berth fronts. Capacity is set so placement never refuses here.
write_policy() {
  {
    echo 'listen: "127.0.0.1:0"'
    echo 'hosts:'
    for ((h = 0; h < $1; h++)); do
      printf '  - name: h%d\n    url: "unix:///run/bf-%s/h%d.sock"\n' "$h" "$ID" "$h"
      printf '    capacity: {cpus: 256, memory: 1TiB}\n'
    done
    printf 'tls:\n  cert: %s/ca/server-cert.pem\n  key: %s/ca/server-key.pem\n' "$WORK" "$WORK"
    printf '  client_ca: %s/ca/ca.pem\n' "$WORK"
    printf 'tenants:\n  benchco: {}\nidentities:\n  - organization: benchco\n    tenant: benchco\n'
  } >"$WORK/policy.yaml"
}

start_proxy() {
  write_policy "$1"
  "$PROXY" --policy "$WORK/policy.yaml" >"$WORK/proxy.log" 2>&1 &
  PROXY_PID=$!
  for _ in $(seq 100); do
    PORT=$(sed -n 's/^berth-proxy: ready on port \([0-9]*\)$/\1/p' "$WORK/proxy.log")
    [[ -n $PORT ]] && return 0
    sleep 0.1
  done
  cat "$WORK/proxy.log" >&2
  die "berth-proxy did not start"
}

tenant_docker() {
  DOCKER_CONFIG=$WORK/docker-config docker --tlsverify --tlscacert "$WORK/tenant/ca.pem" \
    --tlscert "$WORK/tenant/cert.pem" --tlskey "$WORK/tenant/key.pem" \
    -H "tcp://127.0.0.1:$PORT" "$@"
}

# $1 scenario, $2 path or "", $3 connections: the rate in req/s.
rate() {
  local args=(--scenario "$1" --target "https://127.0.0.1:$PORT" --ca "$WORK/tenant/ca.pem"
              --cert "$WORK/tenant/cert.pem" --key "$WORK/tenant/key.pem"
              --connections "$3" --duration "$DURATION" --label x --image "$IMAGE")
  [[ -n $2 ]] && args+=(--path "$2")
  "$BENCH" "${args[@]}" 2>>"$WORK/bench.err" | sed -n 's/.*: \([0-9.]*\) req\/s.*/\1/p'
}

declare -A RESULT
measure() {  # $1 label (one or fleet), $2 round
  RESULT[$1,inspect,$2]=$(rate keepalive /v1.41/containers/a1/json "$CONNS")
  RESULT[$1,list,$2]=$(rate keepalive /v1.41/containers/json "$CONNS")
  RESULT[$1,create,$2]=$(rate create "" $((CONNS / 4 > 0 ? CONNS / 4 : 1)))
}

for ((round = 1; round <= ROUNDS; round++)); do
  for setup in one fleet; do
    hosts=1
    [[ $setup == fleet ]] && hosts=3
    start_proxy "$hosts"
    for i in 1 2 3 4 5 6; do
      tenant_docker run -d --name "a$i" "$IMAGE" sleep 600 >/dev/null
    done
    log "round $round, $setup ($hosts host(s)): containers on hosts" \
      "$(for h in 0 1 2; do docker -H "unix:///run/bf-$ID/h$h.sock" ps -q | wc -l; done | tr '\n' ' ')"
    measure "$setup" "$round"
    tenant_docker rm -f a1 a2 a3 a4 a5 a6 >/dev/null
    stop_proxy
    # One host made the tenant's default network a bridge there; a fleet makes an overlay
    # (with the bridge left, the fleet would keep every container on host 0).
    # The manager lists a removed overlay a moment longer: wait until it is gone.
    docker -H "unix:///run/bf-$ID/h0.sock" network rm benchco_bridge >/dev/null 2>&1 || true
    for _ in $(seq 100); do
      docker -H "unix:///run/bf-$ID/h0.sock" network inspect benchco_bridge >/dev/null 2>&1 || break
      sleep 0.1
    done
  done
done

printf '\n| | one host, req/s | fleet of 3, req/s | ratio |\n|---|---|---|---|\n'
for what in inspect list create; do
  one="" fleet="" ratio=""
  for ((round = 1; round <= ROUNDS; round++)); do
    o=${RESULT[one,$what,$round]:-0} f=${RESULT[fleet,$what,$round]:-0}
    one+="${one:+ / }$o" fleet+="${fleet:+ / }$f"
    ratio+="${ratio:+ / }$(awk -v o="$o" -v f="$f" 'BEGIN { printf (o > 0 ? "%.2f" : "-"), f / o }')"
  done
  printf '| %s | %s | %s | %s |\n' "$what" "$one" "$fleet" "$ratio"
done
if [[ -s $WORK/bench.err ]]; then
  log "berth-bench said:"
  sort "$WORK/bench.err" | uniq -c | head -5 >&2
fi
