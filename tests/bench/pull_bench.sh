#!/usr/bin/env bash
# docker pull through berth (a tenant's pull: digest lookup, pull by digest, tag in the tenant's
# namespace) against the same pull on dockerd's own socket, in one run, from Debian's
# docker-registry on loopback. The image: the test busybox plus one layer of BENCH_PULL_MB
# (100) MiB of random bytes, so nothing compresses and the pull moves the whole layer.
#
# usage: tests/bench/pull_bench.sh BUILD_DIR
#   BUILD_DIR holds proxy/berth-proxy and ctl/berthctl. Needs root, dockerd on
#   /var/run/docker.sock, /usr/bin/docker-registry and the berth-test/busybox image.
# Knobs: BENCH_PULL_MB (100), BENCH_PULL_ROUNDS (5): each round pulls once each way, in turn;
#   the table shows the median of each and the range.
# Everything it creates (registry, proxy, images, temp dir) is removed on exit.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
BUILD=$(cd "$1" && pwd)
PROXY=$BUILD/proxy/berth-proxy
CTL=$BUILD/ctl/berthctl
MB=${BENCH_PULL_MB:-100}
ROUNDS=${BENCH_PULL_ROUNDS:-5}
TENANT=pullbench
DOCKER=/usr/bin/docker
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

log() { printf 'pull_bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

T=$(mktemp -d /tmp/berth-pull-bench.XXXXXX)
PIDS=()
REG_PORT=$(free_port)
REG=127.0.0.1:$REG_PORT
REF=$REG/bench/big:v1
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  DOCKER_HOST=unix:///var/run/docker.sock $DOCKER rmi -f "$REF" bench-pull-src:v1 >/dev/null 2>&1 || true
  DOCKER_HOST=unix:///var/run/docker.sock $DOCKER images -q --filter "reference=$TENANT.berth.local/*" |
    xargs -r $DOCKER rmi -f >/dev/null 2>&1 || true
  rm -rf "/etc/docker/certs.d/$REG" "$T"
}
trap cleanup EXIT

"$CTL" ca init "$T/ca" --host localhost --host 127.0.0.1 >"$T/berthctl.log" 2>&1 ||
  { cat "$T/berthctl.log" >&2; die "berthctl ca init failed"; }
"$CTL" cert issue --ca "$T/ca" --tenant "$TENANT" --user bench --out "$T/tenant" \
  >>"$T/berthctl.log" 2>&1 || die "berthctl cert issue failed"

# The registry: TLS with the bench CA (trusted by dockerd for this address), no auth.
mkdir -p "/etc/docker/certs.d/$REG"
cp "$T/ca/ca.pem" "/etc/docker/certs.d/$REG/ca.crt"
cat >"$T/registry.yml" <<YML
version: 0.1
log: {level: warn}
storage: {filesystem: {rootdirectory: $T/registry}}
http: {addr: $REG, tls: {certificate: $T/ca/server-cert.pem, key: $T/ca/server-key.pem}}
YML
/usr/bin/docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 &
PIDS+=($!)
for ((i = 0; i < 100; i++)); do
  curl -sf --cacert "$T/ca/ca.pem" "https://$REG/v2/" >/dev/null && break
  sleep 0.1
done

cat >"$T/policy.yaml" <<YML
listen: "127.0.0.1:0"
upstream: "unix:///var/run/docker.sock"
tls: {cert: $T/ca/server-cert.pem, key: $T/ca/server-key.pem, client_ca: $T/ca/ca.pem}
tenants: {$TENANT: {egress: {registries: ["$REG"]}}}
identities:
  - organization: $TENANT
    tenant: $TENANT
YML
"$PROXY" --policy "$T/policy.yaml" --listen 127.0.0.1:0 >"$T/proxy.out" 2>"$T/proxy.err" &
PIDS+=($!)
BERTH_PORT=
for ((i = 0; i < 150; i++)); do
  BERTH_PORT=$(sed -n 's/^berth-proxy: ready on port \([0-9][0-9]*\).*/\1/p' "$T/proxy.out" | head -n1)
  [[ -n $BERTH_PORT ]] && break
  sleep 0.1
done
[[ -n $BERTH_PORT ]] || { tail "$T/proxy.err" >&2; die "berth-proxy did not get ready"; }

raw() { DOCKER_HOST=unix:///var/run/docker.sock DOCKER_CONFIG=$T/raw-config $DOCKER "$@"; }
tenant() {
  DOCKER_HOST=tcp://127.0.0.1:$BERTH_PORT DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$T/tenant \
    DOCKER_CONFIG=$T/tenant-config $DOCKER "$@"
}

log "building a ${MB} MiB image and pushing it to $REG"
mkdir -p "$T/layer"
head -c "$((MB * 1024 * 1024))" /dev/urandom >"$T/layer/blob"
printf 'FROM berth-test/busybox:latest\nCOPY blob /blob\n' >"$T/layer/Dockerfile"
DOCKER_BUILDKIT=0 raw build -q -t bench-pull-src:v1 "$T/layer" >/dev/null
raw tag bench-pull-src:v1 "$REF"
raw push "$REF" >/dev/null
raw rmi "$REF" bench-pull-src:v1 >/dev/null

# pull_once WHO: removes the pulled image (the busybox base layer stays: both pulls move only
# the big layer), pulls, prints the seconds it took.
pull_once() {
  local who=$1 start end
  if [[ $who == raw ]]; then raw rmi -f "$REF" >/dev/null 2>&1 || true; else tenant rmi -f "$REF" >/dev/null 2>&1 || true; fi
  # The layer goes too, whoever pulled it last.
  raw images -q --filter "reference=*/bench/big" | xargs -r "$DOCKER" rmi -f >/dev/null 2>&1 || true
  raw images -q --filter "reference=$TENANT.berth.local/*/bench/big" | xargs -r "$DOCKER" rmi -f >/dev/null 2>&1 || true
  start=$(date +%s.%N)
  if [[ $who == raw ]]; then raw pull -q "$REF" >/dev/null; else tenant pull -q "$REF" >/dev/null; fi
  end=$(date +%s.%N)
  awk -v a="$end" -v b="$start" 'BEGIN {printf "%.3f\n", a - b}'
}

declare -a RAW BERTH
for ((r = 0; r < ROUNDS; r++)); do
  RAW+=("$(pull_once raw)")
  BERTH+=("$(pull_once tenant)")
  log "round $((r + 1)): raw ${RAW[-1]} s, berth ${BERTH[-1]} s"
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
range() { printf '%s\n' "$@" | sort -g | awk 'NR==1{lo=$1} {hi=$1} END {printf "%.2f-%.2f", lo, hi}'; }
RM=$(median "${RAW[@]}")
BM=$(median "${BERTH[@]}")
printf '\n| docker pull, %d MiB layer, %d rounds | median s | range s | MB/s |\n' "$MB" "$ROUNDS"
printf '|---|---|---|---|\n'
div() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
printf '| dockerd socket | %.2f | %s | %.1f |\n' "$RM" "$(range "${RAW[@]}")" "$(div "$MB" "$RM")"
printf '| berth (tenant) | %.2f | %s | %.1f |\n' "$BM" "$(range "${BERTH[@]}")" "$(div "$MB" "$BM")"
printf '\nberth / dockerd: %s x the time\n' "$(div "$BM" "$RM")"
