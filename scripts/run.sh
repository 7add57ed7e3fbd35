#!/bin/bash
# The main job on one host: installs what is missing, builds, creates a demo CA, two demo
# tenants (acme, globex) and an operator on first run, then runs berth-proxy in front of this
# host's dockerd (and berth-meter, plus Prometheus when installed), printing the lines a tenant
# pastes into its shell. State lives in $BERTH_HOME (default: .berth in the repository).
#
#   scripts/run.sh                     # listen on 0.0.0.0:2376
#   BERTH_LISTEN=127.0.0.1:12376 scripts/run.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
home=${BERTH_HOME:-$repo/.berth}
listen=${BERTH_LISTEN:-0.0.0.0:2376}
build=${BERTH_BUILD_DIR:-build}

scripts/install-deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"${BERTH_JOBS:-2}"
berthctl=$repo/$build/ctl/berthctl

port=${listen##*:}
mkdir -p "$home"
if [[ ! -f $home/ca/ca-key.pem ]]; then
  echo "berth: first run: creating a demo CA, tenants acme and globex, and an operator in $home"
  hosts=(--host localhost --host 127.0.0.1)
  host_name=$(hostname 2>/dev/null || true)
  if [[ -n $host_name && $host_name != localhost ]]; then
    hosts+=(--host "$host_name")
  fi
  "$berthctl" ca init "$home/ca" "${hosts[@]}"
  "$berthctl" cert issue --ca "$home/ca" --tenant acme --user alice --out "$home/tenants/acme-alice" \
    --host "localhost:$port" >/dev/null
  "$berthctl" cert issue --ca "$home/ca" --tenant globex --user gina \
    --out "$home/tenants/globex-gina" --host "localhost:$port" >/dev/null
  "$berthctl" cert issue --ca "$home/ca" --operator --user admin --out "$home/operator-admin" \
    --host "localhost:$port" >/dev/null
  cat >"$home/policy.yaml" <<POLICY
# berth demo policy (see deploy/policy.example.yaml for every option).
listen: "$listen"
upstream: "unix:///var/run/docker.sock"
tls:
  cert: ca/server-cert.pem
  key: ca/server-key.pem
  client_ca: ca/ca.pem
  crl: ca/crl.pem
# berth-proxy's own metrics (Prometheus in deploy/prometheus scrapes this address).
metrics_listen: "127.0.0.1:9470"
# Every tenant container gets these unless it asks otherwise, within these limits and quotas.
tenant_defaults:
  defaults: {memory: 512MiB, cpus: 1, pids_limit: 512, log_max_size: 10MiB, log_max_file: 3}
  limits: {memory: 4GiB, cpus: 2}
  quota: {containers: 50, memory: 8GiB, cpus: 4, pids_per_container: 4096, published_ports: 10}
  # Tenant networks take their subnets from here (and never overlap each other or the host's).
  networks: {pools: ["10.210.0.0/16"]}
tenants:
  acme:
    grants:
      host_ports: ["8000-8099"]
  globex:
    grants:
      host_ports: ["8100-8199"]
identities:
  - organization: berth-operators
    role: operator
  - organization: acme
    tenant: acme
  - organization: globex
    tenant: globex
POLICY
fi

"$berthctl" policy check "$home/policy.yaml"

cat <<EOF_LINES

berth: a tenant's shell (acme):
  export DOCKER_HOST=tcp://localhost:$port DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$home/tenants/acme-alice
berth: the other demo tenant (globex):
  export DOCKER_HOST=tcp://localhost:$port DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$home/tenants/globex-gina
berth: the operator (sees everything):
  export DOCKER_HOST=tcp://localhost:$port DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$home/operator-admin
berth: the demo image for tenants: docker run --rm berth-test/busybox:latest echo hello
   (imported once from busybox-static; nothing can be pulled here)

EOF_LINES

# A shared image tenants can use at once (they cannot pull).
tests/integration/setup_env.sh >/dev/null

pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT INT TERM

if [[ -x $build/metering/berth-meter ]]; then
  "$build/metering/berth-meter" --listen 127.0.0.1:9471 --state "$home/meter-state.json" \
    --prices deploy/prometheus/prices.yml >"$home/meter.log" 2>&1 &
  pids+=($!)
  echo "berth: berth-meter on http://127.0.0.1:9471/metrics (log: $home/meter.log)"
  if command -v prometheus >/dev/null 2>&1 && [[ -f deploy/prometheus/prometheus.yml ]]; then
    prometheus --config.file=deploy/prometheus/prometheus.yml --storage.tsdb.path="$home/prometheus" \
      --web.listen-address=127.0.0.1:9090 >"$home/prometheus.log" 2>&1 &
    pids+=($!)
    echo "berth: Prometheus on http://127.0.0.1:9090 (log: $home/prometheus.log)"
  fi
fi

echo "berth: starting berth-proxy on $listen (Ctrl-C stops it; SIGHUP reloads $home/policy.yaml)"
"$build/proxy/berth-proxy" --policy "$home/policy.yaml" &
proxy=$!
pids+=("$proxy")
wait "$proxy"
