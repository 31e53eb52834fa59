#!/usr/bin/env bash
# Fetches KEDA's own CRDs (ScaledObject, ScaledJob, TriggerAuthentication…) from the
# github.com/kedacore/keda/v2 Go module, so that tests check servingopt against the real
# schemas without a KEDA install. Cached outside the repository, keyed by version.
#
#   hack/keda-crds.sh         print the directory holding the CRD YAML files
set -euo pipefail

CACHE="${SERVINGOPT_CACHE:-$HOME/.cache/servingopt}"
KEDA_VERSION="v2.21.0"
OUT="$CACHE/keda/$KEDA_VERSION/crds"

if [ ! -s "$OUT/keda.sh_scaledobjects.yaml" ]; then
  printf '[keda-crds %s] fetching github.com/kedacore/keda/v2@%s\n' "$(date +%H:%M:%S)" \
    "$KEDA_VERSION" >&2
  dir="$(cd "$(mktemp -d)" && GOFLAGS=-mod=mod go mod download -json \
    "github.com/kedacore/keda/v2@$KEDA_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [ -d "$dir/config/crd/bases" ] || { echo "keda module has no config/crd/bases" >&2; exit 1; }
  mkdir -p "$OUT.tmp"
  cp "$dir"/config/crd/bases/*.yaml "$OUT.tmp/"
  chmod u+w "$OUT.tmp"/*.yaml
  rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
fi
echo "$OUT"
