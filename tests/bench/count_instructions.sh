#!/usr/bin/env bash
# Instructions per proxied request, berth-proxy against nginx, counted by callgrind: a figure
# that does not move with whatever else the machine is doing (run_bench.sh's rates do).
#
# usage: tests/bench/count_instructions.sh BUILD_DIR [PATH]
#   PATH: the keep-alive GET to count (default /_ping; an API path such as
#   /v1.41/containers/json works as well).
# Each server runs alone under `valgrind --tool=callgrind` with one worker; berth-bench opens 4
# mTLS keep-alive connections, the counters are zeroed once they are up, and the instructions
# of the following requests (user space: the proxy, OpenSSL, libc) are divided by how many
# there were: berth's own request counter, nginx's stub_status. Handshakes are not counted.
# Needs valgrind, nginx and dockerd on /var/run/docker.sock; takes about a minute.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 BUILD_DIR [PATH]" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
REQ_PATH=${2:-/_ping}
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/bench/bench_lib.sh
source "$HERE/bench_lib.sh"
BENCH=$BUILD/tests/bench/berth-bench
PROXY=$BUILD/proxy/berth-proxy
CTL=$BUILD/ctl/berthctl
DOCKER_SOCK=/var/run/docker.sock

log() { printf '[count_instructions] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
for tool in valgrind callgrind_control callgrind_annotate /usr/sbin/nginx curl; do
  command -v "$tool" >/dev/null || die "$tool missing"
done
[[ -x $BENCH && -x $PROXY && -x $CTL ]] || die "build berth-bench, berth-proxy and berthctl first"
[[ -S $DOCKER_SOCK ]] || die "dockerd socket $DOCKER_SOCK missing"

T=$(mktemp -d /tmp/berth-instructions.XXXXXX)
SERVER_PID=
cleanup() {
  local rc=$?
  if [[ -n $SERVER_PID ]]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$T"
  exit "$rc"
}
trap cleanup EXIT

"$CTL" ca init "$T/ca" --host localhost --host 127.0.0.1 >"$T/berthctl.log" 2>&1 &&
  "$CTL" cert issue --ca "$T/ca" --operator --user bench --out "$T/op" >>"$T/berthctl.log" 2>&1 ||
  { cat "$T/berthctl.log" >&2; die "berthctl failed"; }
TLS=(--ca "$T/op/ca.pem" --cert "$T/op/cert.pem" --key "$T/op/key.pem")

# measure NAME PORT COUNT_COMMAND: drives the server on PORT, prints instructions per request.
measure() {
  local name=$1 port=$2 count=$3 before after out ir i
  for ((i = 0; i < 150; i++)); do  # bounded: 30 s for valgrind to start the server
    curl -s -o /dev/null --max-time 2 --cacert "$T/op/ca.pem" --cert "$T/op/cert.pem" \
      --key "$T/op/key.pem" "https://127.0.0.1:$port/_ping" && break
    sleep 0.2
  done
  "$BENCH" --scenario keepalive --target "https://127.0.0.1:$port" "${TLS[@]}" --connections 4 \
    --warmup 4 --duration 6 --path "$REQ_PATH" >"$T/$name.bench" 2>&1 &
  local bench=$!
  sleep 3  # the 4 connections are up and warm: count from here
  callgrind_control -z "$SERVER_PID" >/dev/null 2>&1
  before=$($count)
  wait "$bench" || { cat "$T/$name.bench" >&2; die "berth-bench failed against $name"; }
  after=$($count)
  callgrind_control -d "$SERVER_PID" >/dev/null 2>&1
  sleep 1
  out=$(ls -t "$T/$name".callgrind.* | head -n1)
  ir=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  ((after > before)) || die "no requests counted for $name"
  printf '%-6s %8d requests  %12d instructions  %7d per request\n' "$name" \
    $((after - before)) "$ir" $((ir / (after - before)))
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

# ---- berth-proxy, one worker ---------------------------------------------------------------------
BERTH_PORT=$(free_port) || die "no free port"
METRICS_PORT=$(free_port) || die "no free port"
cat >"$T/policy.yaml" <<EOF
listen: "127.0.0.1:$BERTH_PORT"
metrics_listen: "127.0.0.1:$METRICS_PORT"
upstream: "unix://$DOCKER_SOCK"
tls: {cert: $T/ca/server-cert.pem, key: $T/ca/server-key.pem, client_ca: $T/ca/ca.pem}
tenants: {}
identities:
  - organization: berth-operators
    role: operator
EOF
valgrind --tool=callgrind --callgrind-out-file="$T/berth.callgrind.%p" \
  "$PROXY" --policy "$T/policy.yaml" --workers 1 >"$T/berth.out" 2>"$T/berth.err" &
SERVER_PID=$!
berth_requests() {
  curl -s "http://127.0.0.1:$METRICS_PORT/metrics" |
    awk '/^berth_proxy_requests_total/ { s += $2 } END { printf "%d\n", s }'
}
measure berth "$BERTH_PORT" berth_requests

# ---- nginx, one worker, as in run_bench.sh -------------------------------------------------------
NGINX_PORT=$(free_port) || die "no free port"
mkdir -p "$T/nginx/tmp"
render_nginx_conf "$HERE/nginx.conf.in" "$T/nginx" "$NGINX_PORT" "$T/ca" "$DOCKER_SOCK" "" \
  "s|^worker_processes 2;|worker_processes 1;|" "s|^master_process on;|master_process off;|" \
  "s|^    location / {|    location = /nginx_status { stub_status; }\n    location / {|" \
  >"$T/nginx/nginx.conf"
valgrind --tool=callgrind --callgrind-out-file="$T/nginx.callgrind.%p" \
  /usr/sbin/nginx -p "$T/nginx/" -c "$T/nginx/nginx.conf" >"$T/nginx.out" 2>&1 &
SERVER_PID=$!
# The bench's nginx writes no access log: its requests are counted by stub_status (the two
# status requests themselves are among those counted, a negligible share).
nginx_requests() {
  curl -s --max-time 5 --cacert "$T/op/ca.pem" --cert "$T/op/cert.pem" --key "$T/op/key.pem" \
    "https://127.0.0.1:$NGINX_PORT/nginx_status" |
    awk 'NR == 3 { print $3; found = 1 } END { if (!found) print 0 }'
}
measure nginx "$NGINX_PORT" nginx_requests
