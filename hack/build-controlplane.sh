#!/usr/bin/env bash
# Builds the real control-plane binaries used by servingopt's tests and demo
# (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok, and
# prometheus-adapter, the custom-metrics API server HPAs read through; KEDA's operator and
# metrics API server; helm, to lint and render the chart) from Go modules, without Docker. Binaries are cached outside the
# repository, keyed by version, and rebuilt only when missing.
#
#   hack/build-controlplane.sh            build what is missing, print the bin dir
#   SERVINGOPT_CACHE=/path hack/...       cache root (default ~/.cache/servingopt)
set -euo pipefail

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${SERVINGOPT_CACHE:-$HOME/.cache/servingopt}"
KUBE_VERSION="v1.36.3"
ETCD_VERSION="v3.6.16"
KWOK_VERSION="v0.8.0"
ADAPTER_VERSION="v0.12.0"
KEDA_VERSION="v2.21.0"
HELM_VERSION="v3.22.0"
BIN_DIR="$CACHE/bin/k8s-$KUBE_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION"
# The adapter has its own versioned dir; BIN_DIR holds a link to the version pinned here.
ADAPTER_DIR="$CACHE/bin/prometheus-adapter-$ADAPTER_VERSION"
KEDA_DIR="$CACHE/bin/keda-$KEDA_VERSION"
HELM_DIR="$CACHE/bin/helm-$HELM_VERSION"

export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--mod=readonly}"
export GOCACHE="${GOCACHE:-$CACHE/go-build}"

log() { printf '[build-controlplane %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Logs a line every 15 s so that a long cold build visibly makes progress. The ticker is
# killed on any exit (Ctrl-C included: background jobs of a script ignore SIGINT) and
# never holds stdout, which callers read for the bin dir.
TICKER=""
stop_ticker() { if [ -n "$TICKER" ]; then kill "$TICKER" 2>/dev/null || true; TICKER=""; fi; }
trap stop_ticker EXIT
trap 'stop_ticker; exit 130' INT TERM

with_progress() {
  local what="$1"; shift
  local start=$SECONDS
  log "building $what (cold builds take minutes; cached afterwards)"
  (
    trap 'kill "$nap" 2>/dev/null; exit 0' TERM  # `wait` lets the trap run at once
    while :; do
      sleep 15 & nap=$!; wait "$nap"
      log "  ... $what still building ($((SECONDS - start)) s)"
    done
  ) >/dev/null &
  TICKER=$!
  local rc=0
  "$@" || rc=$?
  stop_ticker
  if [ "$rc" -ne 0 ]; then log "FAILED building $what (exit $rc)"; return "$rc"; fi
  log "built $what in $((SECONDS - start)) s"
}

build_kube() {
  local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  local date; date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  local ld=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
  done
  (cd "$HACK_DIR/kube" && go build -trimpath -ldflags "-s -w $ld" -o "$BIN_DIR/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
}

build_etcd() {
  (cd "$HACK_DIR/etcd" && go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd" .)
}

build_kwok() {
  (cd "$HACK_DIR/kwok" && go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" \
    -o "$BIN_DIR/kwok" sigs.k8s.io/kwok/cmd/kwok)
}

build_adapter() {
  mkdir -p "$ADAPTER_DIR"
  (cd "$HACK_DIR/adapter" && go build -trimpath -ldflags "-s -w" \
    -o "$ADAPTER_DIR/prometheus-adapter" sigs.k8s.io/prometheus-adapter/cmd/adapter)
}

# KEDA's and helm's go.mod pin dependencies with replace directives, which only the main
# module's go.mod applies: each is built inside a writable copy of its own module.
# Prints the copy's directory (the caller removes it).
module_copy() {
  local src work
  src="$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "$1" \
    | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [ -f "$src/go.mod" ] || { log "no source for $1"; return 1; }
  work="$(mktemp -d)"
  cp -r "$src"/. "$work/"
  chmod -R u+w "$work"
  echo "$work"
}

build_keda() {
  local work
  work="$(module_copy "github.com/kedacore/keda/v2@$KEDA_VERSION")" || return 1
  mkdir -p "$KEDA_DIR"
  local ld="-s -w -X github.com/kedacore/keda/v2/version.Version=$KEDA_VERSION"
  (cd "$work" && GOFLAGS=-mod=mod go build -trimpath -ldflags "$ld" \
    -o "$KEDA_DIR/keda-operator" ./cmd/operator &&
    GOFLAGS=-mod=mod go build -trimpath -ldflags "$ld" \
    -o "$KEDA_DIR/keda-metrics-apiserver" ./cmd/adapter)
  local rc=$?
  rm -rf "$work"
  return "$rc"
}

build_helm() {
  local work
  work="$(module_copy "helm.sh/helm/v3@$HELM_VERSION")" || return 1
  mkdir -p "$HELM_DIR"
  # As helm's Makefile: the Kubernetes version it assumes (`helm template`, lint) follows
  # the client-go it is built with (v0.X.Y is Kubernetes 1.X).
  local client_go minor
  client_go="$(cd "$work" && GOFLAGS=-mod=mod go list -m -f '{{.Version}}' k8s.io/client-go)"
  minor="$(echo "$client_go" | cut -d. -f2)"
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    ld+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
  done
  (cd "$work" && GOFLAGS=-mod=mod go build -trimpath -ldflags "$ld" \
    -o "$HELM_DIR/helm" ./cmd/helm)
  local rc=$?
  rm -rf "$work"
  return "$rc"
}

main() {
  mkdir -p "$BIN_DIR"
  local total_start=$SECONDS
  local missing=0
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    [ -x "$BIN_DIR/$b" ] || missing=1
  done
  if [ "$missing" = 1 ]; then with_progress "kubernetes $KUBE_VERSION" build_kube; fi
  [ -x "$BIN_DIR/etcd" ] || with_progress "etcd $ETCD_VERSION" build_etcd
  [ -x "$BIN_DIR/kwok" ] || with_progress "kwok $KWOK_VERSION" build_kwok
  [ -x "$ADAPTER_DIR/prometheus-adapter" ] ||
    with_progress "prometheus-adapter $ADAPTER_VERSION" build_adapter
  ln -sfn "$ADAPTER_DIR/prometheus-adapter" "$BIN_DIR/prometheus-adapter"
  [ -x "$KEDA_DIR/keda-operator" ] && [ -x "$KEDA_DIR/keda-metrics-apiserver" ] ||
    with_progress "keda $KEDA_VERSION (operator, metrics API server)" build_keda
  ln -sfn "$KEDA_DIR/keda-operator" "$BIN_DIR/keda-operator"
  ln -sfn "$KEDA_DIR/keda-metrics-apiserver" "$BIN_DIR/keda-metrics-apiserver"
  [ -x "$HELM_DIR/helm" ] || with_progress "helm $HELM_VERSION" build_helm
  ln -sfn "$HELM_DIR/helm" "$BIN_DIR/helm"
  log "control plane ready in $BIN_DIR ($((SECONDS - total_start)) s)"
  echo "$BIN_DIR"
}

main "$@"
