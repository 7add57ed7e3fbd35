#!/bin/bash
# Fetches the Debian source of docker.io 20.10.24+dfsg1-1+deb12u1 (the dockerd berth fronts)
# the way a fresh CI machine can, and unpacks only what the differential harness builds
# against: the Dockerfile parser and its command package, vendored from buildkit in the
# engine. Debian applies no patch to them. apt checks the download against the signed index.
#
#   fetch_moby_source.sh [CACHE_DIR]   prints the unpacked engine directory
#
# Idempotent: a complete cache is used as is. A missing deb-src entry for bookworm is added
# (/etc/apt/sources.list.d/berth-debsrc.sources) and the index updated, as root or with sudo.
set -euo pipefail

version=20.10.24+dfsg1-1+deb12u1
orig=docker.io_20.10.24+dfsg1.orig.tar.xz
cache=${1:-${BERTH_MOBY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth/moby-source}}
dest=$cache/$version
engine=$dest/moby-20.10.24/engine
wanted=(
  moby-20.10.24/engine/vendor/github.com/moby/buildkit/frontend/dockerfile/parser
  moby-20.10.24/engine/vendor/github.com/moby/buildkit/frontend/dockerfile/command
)

log() { printf 'fetch_moby_source: %s\n' "$*" >&2; }

if [[ -f $dest/.complete ]]; then
  echo "$engine"
  exit 0
fi

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  else
    sudo "$@"
  fi
}

has_source() {
  apt-cache showsrc docker.io 2>/dev/null | grep -qx "Version: $version"
}

if ! has_source; then
  if ! grep -rqsE '^[[:space:]]*(deb-src[[:space:]]|Types:.*deb-src)' \
      /etc/apt/sources.list /etc/apt/sources.list.d/; then
    log "adding deb-src entries for bookworm"
    as_root tee /etc/apt/sources.list.d/berth-debsrc.sources >/dev/null <<'SOURCES'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  fi
  log "updating the apt index for sources"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  if ! has_source; then
    log "apt knows no source package docker.io $version"
    exit 1
  fi
fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "downloading docker.io $version (source)"
(cd "$work" && apt-get source --download-only -q "docker.io=$version" >&2)
mkdir -p "$work/unpacked"
# The tarball's members start with "./".
tar -xJf "$work/$orig" -C "$work/unpacked" "${wanted[@]/#/./}"
for dir in "${wanted[@]}"; do
  [[ -f $work/unpacked/$dir/$(basename "$dir").go || -n $(ls "$work/unpacked/$dir"/*.go) ]] || {
    log "the source tarball lacks $dir"
    exit 1
  }
done
rm -rf "$dest"
mv "$work/unpacked" "$dest"
touch "$dest/.complete"
echo "$engine"
