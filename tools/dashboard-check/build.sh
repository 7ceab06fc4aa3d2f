#!/usr/bin/env bash
# Build dashboard-check (strict structural validation of Grafana dashboards against
# github.com/grafana/grafana-foundation-sdk/go) into
#   ${COVET_TOOLS_DIR:-$HOME/.cache/covet-otel/tools}/pkg/dashboard-check-<sdk version>/dashboard-check
# and link it into $COVET_TOOLS_DIR/bin. The SDK version is pinned in tools/versions.env
# (GRAFANA_FOUNDATION_SDK_GO_VERSION); go.mod must require exactly that version (checked here).
# Idempotent: the .complete file records the inputs (source hash, SDK version, Go version).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../versions.env
source "$ROOT/tools/versions.env"
: "${GRAFANA_FOUNDATION_SDK_GO_VERSION:?GRAFANA_FOUNDATION_SDK_GO_VERSION is not set in tools/versions.env}"

COVET_TOOLS_DIR="${COVET_TOOLS_DIR:-$HOME/.cache/covet-otel/tools}"
DEST="$COVET_TOOLS_DIR/pkg/dashboard-check-$GRAFANA_FOUNDATION_SDK_GO_VERSION"
BIN_DIR="$COVET_TOOLS_DIR/bin"
log() { printf '[dashboard-check] %s\n' "$*" >&2; }

command -v go >/dev/null 2>&1 || { log "ERROR: go not found on PATH"; exit 1; }
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"
export CGO_ENABLED="${CGO_ENABLED:-0}"
export GOFLAGS="-mod=readonly -buildvcs=false"

required="$(cd "$HERE" && go list -m -f '{{.Version}}' github.com/grafana/grafana-foundation-sdk/go)"
if [ "$required" != "$GRAFANA_FOUNDATION_SDK_GO_VERSION" ]; then
    log "ERROR: go.mod requires grafana-foundation-sdk/go $required, tools/versions.env pins $GRAFANA_FOUNDATION_SDK_GO_VERSION"
    exit 1
fi

signature="$(cat "$HERE/main.go" "$HERE/go.mod" "$HERE/go.sum" | sha256sum | cut -d' ' -f1) $GRAFANA_FOUNDATION_SDK_GO_VERSION $(go env GOVERSION)"
if [ -f "$DEST/.complete" ] && [ "$(cat "$DEST/.complete")" = "$signature" ] && [ -x "$DEST/dashboard-check" ]; then
    log "already built in $DEST"
else
    log "building with grafana-foundation-sdk/go $GRAFANA_FOUNDATION_SDK_GO_VERSION"
    tmp="$DEST.partial"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    (cd "$HERE" && go build -trimpath \
        -ldflags "-s -w -X main.version=$GRAFANA_FOUNDATION_SDK_GO_VERSION" -o "$tmp/dashboard-check" .)
    echo "$signature" >"$tmp/.complete"
    rm -rf "$DEST"
    mv "$tmp" "$DEST"
fi
mkdir -p "$BIN_DIR"
ln -sfn "$DEST/dashboard-check" "$BIN_DIR/dashboard-check"
"$BIN_DIR/dashboard-check" --version >&2
