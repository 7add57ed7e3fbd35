#!/bin/bash
# Builds criu 4.1.1, patched for Linux >= 6.16, and installs it as /opt/berth/bin/criu: what
# runc runs for the live migrations berth-node makes (issue #16; dockerd finds it through PATH).
#
# Why: Debian 12's criu 3.17 cannot read this kernel's vDSO ("criu check" fails), and criu 4.1.1
# unpatched cannot dump any process holding a TCP/UDP socket on Linux >= 6.16 (SO_PASSCRED and
# SO_PASSSEC on inet sockets return EOPNOTSUPP: "sockets: Can't get 1:16 opt"; upstream criu
# issues #2705 and #2718). The patch treats those options as unset.
# Source: the orig tarball of Debian trixie's criu 4.1.1 (trixie's binary package needs glibc
# 2.38, so it cannot be installed on bookworm; its source builds here with bookworm's -dev
# packages). About 2 minutes on 2 cores. Idempotent: does nothing when the patched criu is there.
set -euo pipefail
dest=/opt/berth/bin/criu
if [[ -x $dest ]] && "$dest" --version 2>/dev/null | grep -q 'Version: 4.1.1'; then
  echo "build-criu: $dest already installed"; exit 0
fi
here=$(dirname "$(readlink -f "$0")")
work=/tmp/berth-criu
rm -rf "$work" && mkdir -p "$work" && cd "$work"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends build-essential pkg-config libprotobuf-dev \
  libprotobuf-c-dev protobuf-c-compiler protobuf-compiler python3-protobuf libnl-3-dev libnet1-dev \
  libcap-dev libgnutls28-dev libbsd-dev libnftables-dev libaio-dev uuid-dev libdrm-dev \
  dpkg-dev >/dev/null
if ! grep -rqs '^deb-src .* trixie main' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  # the Debian mirror this machine already uses (one-line or deb822 sources)
  mirror=$(grep -rhoE '^(deb|URIs:)[[:space:]]+(\[[^]]*\][[:space:]]+)?https?://[^[:space:]]+' \
             /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
             2>/dev/null | grep -v security | grep -oE 'https?://[^[:space:]]+' | head -1 || true)
  [[ -n $mirror ]] || { echo "build-criu: no Debian mirror found in the apt sources" >&2; exit 1; }
  echo "deb-src $mirror trixie main" >/etc/apt/sources.list.d/berth-trixie-src.list
  apt-get update -q >/dev/null
fi
# Only the orig tarball is needed (the .debian.tar.xz may be missing; that is fine).
apt-get source --download-only -q criu/trixie >/dev/null 2>&1 || true
tarball=$(ls criu_4.1.1*.orig.tar.* 2>/dev/null | head -1)
[[ -n $tarball ]] || { echo "build-criu: could not download criu 4.1.1's source" >&2; exit 1; }
tar xf "$tarball"
cd criu-4.1.1
patch -p1 <"$here/../deploy/criu/criu-6.16-sockopts.patch"
make -j"$(nproc)" criu >"$work/build.log" 2>&1 || { tail -20 "$work/build.log"; exit 1; }
install -D -m 0755 criu/criu "$dest"
"$dest" check && "$dest" --version
