#!/bin/bash
# Builds the Go differential harness (harness/main.go) against dockerd's own Dockerfile parser:
# GOPATH mode, the parser and command packages linked from the unpacked Debian source
# (fetch_moby_source.sh), github.com/pkg/errors from Debian's golang-github-pkg-errors-dev,
# and berth's stand-in for buildkit's util/stack (stack/stack.go).
#
#   build_harness.sh BUILD_DIR     writes BUILD_DIR/berth_go_harness
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=$1
engine=$("$here/fetch_moby_source.sh")
gopath=$build/gopath
kit=$gopath/src/github.com/moby/buildkit
rm -rf "$gopath"
mkdir -p "$kit/frontend/dockerfile" "$kit/util"
ln -s "$engine/vendor/github.com/moby/buildkit/frontend/dockerfile/parser" "$kit/frontend/dockerfile/parser"
ln -s "$engine/vendor/github.com/moby/buildkit/frontend/dockerfile/command" "$kit/frontend/dockerfile/command"
ln -s "$here/stack" "$kit/util/stack"
if [[ ! -d /usr/share/gocode/src/github.com/pkg/errors ]]; then
  echo "build_harness: golang-github-pkg-errors-dev is not installed (scripts/install-deps.sh)" >&2
  exit 1
fi
cd "$here/harness"
GOPATH="$gopath:/usr/share/gocode" GO111MODULE=off GOFLAGS= GOCACHE="$build/gocache" \
  go build -o "$build/berth_go_harness" main.go
echo "built $build/berth_go_harness against $engine" >&2
