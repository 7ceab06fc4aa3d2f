#!/usr/bin/env bash
# Build otelcol-covet from collector/manifest.yaml with the OpenTelemetry Collector Builder (ocb).
#
#   collector/build.sh            build (a no-op when the binary for the pinned versions exists)
#   collector/build.sh --force    rebuild anyway
#   collector/build.sh --print-binary   print the binary path, build nothing
#
# Versions come from tools/versions.env (OCB_VERSION, OTELCOL_CORE_VERSION, OTELCOL_CONTRIB_VERSION).
# ocb is installed from the Go module proxy into ${COVET_TOOLS_DIR:-$HOME/.cache/covet-otel/tools}/bin.
# The binary lands in collector/_build/otelcol-covet (gitignored); a stamp file beside it records the
# versions and the manifest hash it was built from.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

# KEY=VALUE lines, no expansion (the Python harness parses the same file)
read_version() {
    local v
    v="$(sed -n "s/^$1=//p" "$root/tools/versions.env" | tail -n1)"
    if [[ -z "$v" ]]; then
        echo "build.sh: $1 is not set in tools/versions.env" >&2
        exit 2
    fi
    printf '%s' "$v"
}
OCB_VERSION="$(read_version OCB_VERSION)"
OTELCOL_CORE_VERSION="$(read_version OTELCOL_CORE_VERSION)"
OTELCOL_CONTRIB_VERSION="$(read_version OTELCOL_CONTRIB_VERSION)"

tools_dir="${COVET_TOOLS_DIR:-$HOME/.cache/covet-otel/tools}"
ocb="$tools_dir/bin/ocb-$OCB_VERSION"
build_dir="$here/_build"
binary="$build_dir/otelcol-covet"
stamp="$build_dir/otelcol-covet.stamp"

manifest_hash="$(sha256sum "$here/manifest.yaml" | cut -d' ' -f1)"
want_stamp="ocb=$OCB_VERSION core=$OTELCOL_CORE_VERSION contrib=$OTELCOL_CONTRIB_VERSION manifest=$manifest_hash"

if [[ "${1:-}" == "--print-binary" ]]; then
    echo "$binary"
    exit 0
fi

if [[ "${1:-}" != "--force" && -x "$binary" && -f "$stamp" && "$(cat "$stamp")" == "$want_stamp" ]]; then
    echo "otelcol-covet is up to date: $binary ($want_stamp)"
    exit 0
fi

command -v go >/dev/null || { echo "build.sh: the Go toolchain (go) is required" >&2; exit 2; }
# Go modules come from the Go module proxy only
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"
export GOFLAGS="${GOFLAGS:-} -mod=mod"
export CGO_ENABLED="${CGO_ENABLED:-0}"

start=$(date +%s)
if [[ ! -x "$ocb" ]]; then
    echo "installing ocb $OCB_VERSION into $tools_dir/bin"
    mkdir -p "$tools_dir/bin"
    tmp_gobin="$(mktemp -d)"
    GOBIN="$tmp_gobin" go install "go.opentelemetry.io/collector/cmd/builder@$OCB_VERSION"
    mv "$tmp_gobin/builder" "$ocb"
    rmdir "$tmp_gobin"
    ln -sf "ocb-$OCB_VERSION" "$tools_dir/bin/ocb"
fi

mkdir -p "$build_dir"
# start from fresh generated sources (ocb leaves an existing go.mod alone when it skips get-modules)
rm -f "$build_dir"/go.mod "$build_dir"/go.sum "$build_dir"/*.go
resolved="$build_dir/manifest.resolved.yaml"
sed -e "s/@OTELCOL_CORE_VERSION@/$OTELCOL_CORE_VERSION/g" \
    -e "s/@OTELCOL_CONTRIB_VERSION@/$OTELCOL_CONTRIB_VERSION/g" \
    -e "s#output_path: ./_build#output_path: $build_dir#" \
    "$here/manifest.yaml" > "$resolved"

rm -f "$stamp"
echo "building otelcol-covet ($want_stamp)"
# ocb generates the sources (main.go, components.go, go.mod). Its `go mod tidy` step also wants the
# test dependencies of every component, some of which the Go module proxy does not serve, so it may
# fail; the sources are written before it runs. `go build -mod=mod` then resolves exactly the
# modules that the binary needs, and fails loudly if one of those is missing.
if ! "$ocb" --config "$resolved" --skip-compilation --skip-strict-versioning > "$build_dir/ocb.log" 2>&1; then
    if [[ ! -f "$build_dir/go.mod" || ! -f "$build_dir/components.go" ]]; then
        cat "$build_dir/ocb.log" >&2
        echo "build.sh: ocb did not generate the sources" >&2
        exit 1
    fi
    echo "ocb's go mod tidy step failed (see $build_dir/ocb.log); building with go build -mod=mod"
fi
(
    cd "$build_dir"
    go build -mod=mod -trimpath -ldflags="-s -w" -o otelcol-covet .
)
echo "$want_stamp" > "$stamp"
end=$(date +%s)
size=$(stat -c %s "$binary")
echo "built $binary in $((end - start)) s ($((size / 1024 / 1024)) MiB)"
