#!/usr/bin/env bash
# Fetches the Prometheus Operator's CRDs (ServiceMonitor, PrometheusRule) from the
# github.com/prometheus-operator/prometheus-operator Go module, so that the tests check
# servingopt's monitoring objects against the real schemas. Cached outside the
# repository, keyed by version.
#
#   hack/prometheus-operator-crds.sh    print the directory holding the CRD YAML files
set -euo pipefail

CACHE="${SERVINGOPT_CACHE:-$HOME/.cache/servingopt}"
VERSION="v0.94.1"
MODULE="github.com/prometheus-operator/prometheus-operator"
OUT="$CACHE/prometheus-operator/$VERSION/crds"

if [ ! -s "$OUT/monitoring.coreos.com_prometheusrules.yaml" ]; then
  printf '[prometheus-operator-crds %s] fetching %s@%s\n' "$(date +%H:%M:%S)" "$MODULE" \
    "$VERSION" >&2
  dir="$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json "$MODULE@$VERSION" \
    | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  src="$dir/example/prometheus-operator-crd"
  [ -d "$src" ] || { echo "$MODULE has no example/prometheus-operator-crd" >&2; exit 1; }
  mkdir -p "$OUT.tmp"
  cp "$src"/monitoring.coreos.com_servicemonitors.yaml \
    "$src"/monitoring.coreos.com_prometheusrules.yaml "$OUT.tmp/"
  chmod u+w "$OUT.tmp"/*.yaml
  rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
fi
echo "$OUT"
