#!/usr/bin/env bash
# Install every real component the tests and the demo start (see docs/testing.md):
#   - PostgreSQL server and redis-server from Debian packages (system services left stopped and disabled:
#     the tests start their own instances on free loopback ports);
#   - prometheus-postgres-exporter from Debian (PostgreSQL server metrics for the collector's prometheus receiver);
#   - prometheus + promtool, alertmanager + amtool, victoria-metrics (scale-out store), built from the Go module proxy
#     into ${COVET_TOOLS_DIR:-$HOME/.cache/covet-otel/tools}, one directory per pinned version;
#   - the collector distribution, through collector/build.sh when that script exists.
# Versions come from tools/versions.env only. Idempotent: a second run with the same pins is a no-op.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../tools/versions.env
source "$ROOT/tools/versions.env"

: "${POSTGRESQL_MAJOR:?POSTGRESQL_MAJOR is not set in tools/versions.env}"
: "${PROMETHEUS_MODULE_VERSION:?PROMETHEUS_MODULE_VERSION is not set in tools/versions.env}"
: "${ALERTMANAGER_VERSION:?ALERTMANAGER_VERSION is not set in tools/versions.env}"
: "${VICTORIAMETRICS_VERSION:?VICTORIAMETRICS_VERSION is not set in tools/versions.env}"

COVET_TOOLS_DIR="${COVET_TOOLS_DIR:-$HOME/.cache/covet-otel/tools}"
export COVET_TOOLS_DIR
BIN_DIR="$COVET_TOOLS_DIR/bin"
PKG_DIR="$COVET_TOOLS_DIR/pkg"
mkdir -p "$BIN_DIR" "$PKG_DIR"

log() { printf '[install-tools] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

# ---------------------------------------------------------------------------------------------------
# Debian packages
# ---------------------------------------------------------------------------------------------------
PG_BIN="/usr/lib/postgresql/$POSTGRESQL_MAJOR/bin"

stop_system_service() {
    # Stop and disable a Debian system service so it neither holds the default port nor restarts on boot.
    # Only the packaged service is touched (its init script / unit), never servers the tests started.
    local svc="$1"
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        as_root systemctl disable --now "$svc" >/dev/null 2>&1 || true
        return
    fi
    if [ -x "/etc/init.d/$svc" ]; then
        if as_root "/etc/init.d/$svc" status >/dev/null 2>&1; then
            log "stopping system service $svc"
            as_root "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
        fi
        if command -v update-rc.d >/dev/null 2>&1; then
            as_root update-rc.d "$svc" disable >/dev/null 2>&1 || true
        fi
    fi
}

install_debian_packages() {
    local missing=()
    [ -x "$PG_BIN/postgres" ] && [ -x "$PG_BIN/initdb" ] || missing+=("postgresql-$POSTGRESQL_MAJOR")
    command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
    [ -x /usr/bin/prometheus-postgres-exporter ] || missing+=(prometheus-postgres-exporter)
    command -v wrk >/dev/null 2>&1 || missing+=(wrk)  # load generator of benchmarks/reference_endpoint.py
    # the runbooks' shell steps, run as written by tests/runbooks
    command -v jq >/dev/null 2>&1 || missing+=(jq)
    command -v curl >/dev/null 2>&1 || missing+=(curl)
    if [ "${#missing[@]}" -gt 0 ]; then
        command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install ${missing[*]} by hand"
        log "apt-get install ${missing[*]}"
        # keep the packaged services from starting during the install (policy-rc.d is honoured by
        # invoke-rc.d); it is removed again right after
        local policy=/usr/sbin/policy-rc.d created_policy=0
        if [ ! -e "$policy" ]; then
            trap 'as_root rm -f /usr/sbin/policy-rc.d' EXIT
            printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
            as_root chmod 755 "$policy"
            created_policy=1
        fi
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
        if [ "$created_policy" = 1 ]; then
            as_root rm -f "$policy"
            trap - EXIT
        fi
    else
        log "Debian packages already installed (postgresql-$POSTGRESQL_MAJOR, redis-server, postgres_exporter, wrk, jq, curl)"
    fi
    stop_system_service postgresql
    stop_system_service redis-server
    stop_system_service prometheus-postgres-exporter
    "$PG_BIN/postgres" --version >&2 || die "$PG_BIN/postgres does not run"
    redis-server --version >&2 || die "redis-server does not run"
}

# ---------------------------------------------------------------------------------------------------
# Go tools
# ---------------------------------------------------------------------------------------------------
# Go modules come from the Go module proxy only (no direct VCS fallback), as in collector/build.sh
export GOPROXY="${GOPROXY:-https://proxy.golang.org}"
export GOFLAGS="${GOFLAGS:-} -mod=mod -buildvcs=false"
export CGO_ENABLED="${CGO_ENABLED:-0}"
GO_BUILD_FLAGS=(-p "$(nproc 2>/dev/null || echo 2)" -trimpath)

# Module versions that the checksum database does not list (its lookup answers 404), with the module
# checksum this script verifies instead (none at present).
declare -A PINNED_MODULE_SUMS=()

# go_tool NAME MODULE VERSION TAGS LDFLAGS VERIFY_ARG PKG...
#   Builds the packages PKG... (paths relative to MODULE, "." for its root) of MODULE@VERSION with build
#   tags TAGS into PKG_DIR/NAME-VERSION, then links each binary into BIN_DIR. `go install` first; when it
#   refuses (replace directives in the module's go.mod), the module is downloaded and built inside a
#   writable copy of it. The directory's .complete file records the build inputs: same inputs, no build.
go_tool() {
    local name="$1" module="$2" version="$3" tags="$4" ldflags="$5" verify="$6"
    shift 6
    local pkgs=("$@") dest="$PKG_DIR/$name-$version" bins=() p
    for p in "${pkgs[@]}"; do bins+=("$(basename "${p:-$module}")"); done
    [ "${pkgs[0]}" = "." ] && bins=("$(basename "$module")")
    local signature="$module@$version tags=[$tags] ldflags=[$ldflags] $(go env GOVERSION)"

    if [ -f "$dest/.complete" ] && [ "$(cat "$dest/.complete")" = "$signature" ]; then
        log "$name $version already built in $dest"
    else
        local tmp="$dest.partial" start=$SECONDS
        rm -rf "$tmp"
        mkdir -p "$tmp"
        log "building $name $version ($module) — this takes minutes"
        local pinned_sum="${PINNED_MODULE_SUMS[$module@$version]:-}"
        if [ -n "$pinned_sum" ]; then
            local -x GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}$module"
            local got_sum
            got_sum="$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p')"
            [ "$got_sum" = "$pinned_sum" ] \
                || die "$module@$version: module checksum '$got_sum' is not the pinned $pinned_sum"
            log "$module@$version: not in the checksum database; verified against the pinned $pinned_sum"
        fi
        local targets=()
        for p in "${pkgs[@]}"; do
            if [ "$p" = "." ]; then targets+=("$module@$version"); else targets+=("$module/$p@$version"); fi
        done
        local hook="prepare_src_${name//-/_}"
        if declare -F "$hook" >/dev/null; then
            echo "$name needs its module source prepared before the build" >"$tmp.log"
        fi
        if declare -F "$hook" >/dev/null \
            || ! GOBIN="$tmp" go install "${GO_BUILD_FLAGS[@]}" -tags "$tags" -ldflags "$ldflags" "${targets[@]}" \
                2>"$tmp.log"; then
            if declare -F "$hook" >/dev/null; then
                log "$name: building inside the downloaded module ($hook)"
            elif grep -qE 'replace|exclude' "$tmp.log"; then
                log "go install refused ($(grep -m1 -E 'replace|exclude' "$tmp.log")); building inside the module"
            else
                cat "$tmp.log" >&2
                log "go install failed; retrying inside the downloaded module"
            fi
            local dir src="$COVET_TOOLS_DIR/src/$name-$version"
            dir="$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
            [ -n "$dir" ] && [ -d "$dir" ] || die "go mod download $module@$version failed"
            rm -rf "$src"
            mkdir -p "$(dirname "$src")"
            cp -R "$dir" "$src"
            chmod -R u+w "$src"
            if declare -F "$hook" >/dev/null; then "$hook" "$src"; fi
            local rel=()
            for p in "${pkgs[@]}"; do rel+=("./$p"); done
            [ "${pkgs[0]}" = "." ] && rel=(".")
            if [ "${#rel[@]}" -eq 1 ]; then
                (cd "$src" && go build "${GO_BUILD_FLAGS[@]}" -tags "$tags" -ldflags "$ldflags" -o "$tmp/${bins[0]}" "${rel[0]}")
            else
                (cd "$src" && go build "${GO_BUILD_FLAGS[@]}" -tags "$tags" -ldflags "$ldflags" -o "$tmp/" "${rel[@]}")
            fi
            rm -rf "$src"
        fi
        rm -f "$tmp.log"
        local b
        for b in "${bins[@]}"; do
            [ -x "$tmp/$b" ] || die "$name: binary $b was not produced"
        done
        echo "$version" >"$tmp/.version"
        echo "$signature" >"$tmp/.complete"
        rm -rf "$dest"
        mv "$tmp" "$dest"
        log "built $name $version in $((SECONDS - start))s"
    fi
    local b
    for b in "${bins[@]}"; do
        ln -sfn "$dest/$b" "$BIN_DIR/$b"
        "$BIN_DIR/$b" "$verify" >/dev/null 2>&1 || { "$BIN_DIR/$b" "$verify" >&2 || true; die "$b $verify failed"; }
        log "ok: $b ($("$BIN_DIR/$b" "$verify" 2>&1 | head -n1))"
    done
}

# Alertmanager embeds its web UI from ui/app/dist, which its release process builds with npm and which
# is not part of the Go module. The tests use the API only: embed a placeholder page instead.
prepare_src_alertmanager() {
    local ui="$1/ui/app/dist" d
    [ -d "$ui" ] && return 0
    for d in elm mantine; do
        mkdir -p "$ui/$d"
        printf '<!doctype html><title>Alertmanager</title><p>Web UI not included in this build (%s); %s</p>\n' \
            "covet-otel scripts/install-tools.sh" "the API is at /api/v2/" >"$ui/$d/index.html"
    done
}

# Prometheus 3.x is published as module tags v0.3MM.P (v0.316.0 == Prometheus 3.16.0)
prometheus_release() {
    local v="${1#v0.}"
    local minor="${v%%.*}" patch="${v#*.}"
    if [ "$minor" -ge 300 ] 2>/dev/null; then echo "$((minor / 100)).$((minor % 100)).$patch"; else echo "${1#v}"; fi
}

version_ldflags() {  # version_ldflags VERSION: -X flags for github.com/prometheus/common/version
    local pc=github.com/prometheus/common/version
    echo "-s -w -X $pc.Version=$1 -X $pc.Revision=module -X $pc.Branch=release -X $pc.BuildUser=covet-otel"
}

install_go_tools() {
    command -v go >/dev/null 2>&1 || die "go not found on PATH (the Go toolchain builds the Go tools)"
    # remove_all_sd: leave out the cloud service-discovery plugins (AWS, Azure, GCE, Kubernetes, ...),
    # which are most of the build time; static_configs, file_sd and http_sd remain. The tests and the
    # demo use static targets only.
    go_tool prometheus github.com/prometheus/prometheus "$PROMETHEUS_MODULE_VERSION" remove_all_sd \
        "$(version_ldflags "$(prometheus_release "$PROMETHEUS_MODULE_VERSION")")" --version \
        cmd/prometheus cmd/promtool
    go_tool alertmanager github.com/prometheus/alertmanager "$ALERTMANAGER_VERSION" "" \
        "$(version_ldflags "${ALERTMANAGER_VERSION#v}")" --version \
        cmd/alertmanager cmd/amtool
    # VictoriaMetrics single-node: the scale-out store the remote-write variant is proven against
    go_tool victoria-metrics github.com/VictoriaMetrics/VictoriaMetrics "$VICTORIAMETRICS_VERSION" "" \
        "-s -w -X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-metrics-$VICTORIAMETRICS_VERSION" \
        -version app/victoria-metrics
    bash "$ROOT/tools/dashboard-check/build.sh"  # strict Grafana dashboard validation (tests/dashboards)
}

# ---------------------------------------------------------------------------------------------------
main() {
    local only="${1:-all}"
    case "$only" in
        all|debian) install_debian_packages ;;&
        all|go) install_go_tools ;;&
        all|collector)
            if [ -f "$ROOT/collector/build.sh" ]; then
                log "collector/build.sh"
                bash "$ROOT/collector/build.sh"
            else
                log "collector/build.sh not present; skipping the collector build"
            fi
            ;;
        all|debian|go) ;;
        *) die "usage: $0 [all|debian|go|collector]" ;;
    esac
    log "done; binaries in $BIN_DIR"
}

main "$@"
