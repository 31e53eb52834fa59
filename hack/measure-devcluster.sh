#!/usr/bin/env bash
# Measures the dev cluster's warm start (binaries already built) and its memory: starts a
# detached cluster RUNS times and prints each start-up time, then runs the integration
# tests against the last one and prints every component's current and peak RSS.
#
#   hack/measure-devcluster.sh [RUNS]     (default 5)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS="${1:-5}"
PY=".venv/bin/python"
NAME="measure-$$"
export SERVINGOPT_BIN_DIR="${SERVINGOPT_BIN_DIR:-$(hack/build-controlplane.sh)}"
cli() { "$PY" -m servingopt.devcluster "$@"; }
trap 'cli down --name "$NAME" >/dev/null 2>&1 || true' EXIT

for i in $(seq "$RUNS"); do
  start=$(date +%s.%N)
  cli up --detach --name "$NAME" >/dev/null 2>&1
  end=$(date +%s.%N)
  inner=$(cli status --name "$NAME" -o json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["startupSeconds"])')
  printf 'run %d: cluster ready in %s s (whole command %.2f s)\n' "$i" "$inner" "$(echo "$end - $start" | bc)"
  if [ "$i" -lt "$RUNS" ]; then cli down --name "$NAME" >/dev/null 2>&1; fi
done

echo "running the integration tests against it, then reading peak memory..."
SERVINGOPT_DEVCLUSTER="$NAME" .venv/bin/pytest tests/integration -q -p no:cacheprovider \
  --deselect tests/integration/test_lifecycle.py 2>&1 | tail -1
cli status --name "$NAME"
