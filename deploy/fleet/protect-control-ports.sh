#!/bin/bash
# Keeps container traffic off the Swarm ports of a fleet host (Docker advisory
# GHSA-vwm3-crmr-xfxw: a container that reaches them can join or inject into overlays):
# tcp/2377 (cluster management), tcp+udp/7946 (gossip), udp/4789 (VXLAN data).
#
#   protect-control-ports.sh [BRIDGE...]
#
# Run on every fleet host, in the network namespace its dockerd runs in, after dockerd has
# started (dockerd creates DOCKER-USER; it keeps the jumps this adds). Idempotent. Packets that
# arrive from a container bridge (docker0, br-*, docker_gwbridge, and any BRIDGE given: names
# as iptables matches them, '+' a wildcard) for those ports are dropped, whether bound for this
# host (INPUT) or routed toward another (DOCKER-USER, in FORWARD). The hosts' own Swarm
# traffic (from their addresses, not a bridge) and the VXLAN the kernel sends are untouched.
set -euo pipefail
chain=BERTH-SWARM-PORTS
bridges=(docker0 'br-+' docker_gwbridge "$@")
for tool in iptables ip6tables; do
  command -v "$tool" >/dev/null || continue
  "$tool" -w -N "$chain" 2>/dev/null || "$tool" -w -F "$chain"
  for bridge in "${bridges[@]}"; do
    "$tool" -w -A "$chain" -i "$bridge" -p tcp -m multiport --dports 2377,7946 -j DROP
    "$tool" -w -A "$chain" -i "$bridge" -p udp -m multiport --dports 4789,7946 -j DROP
  done
  "$tool" -w -A "$chain" -j RETURN
  for parent in INPUT DOCKER-USER; do
    "$tool" -w -n -L "$parent" >/dev/null 2>&1 || continue
    "$tool" -w -C "$parent" -j "$chain" 2>/dev/null || "$tool" -w -I "$parent" -j "$chain"
  done
done
