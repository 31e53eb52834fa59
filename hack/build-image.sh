#!/usr/bin/env bash
# Builds the operator image from the top-level Dockerfile with buildah (no Docker engine).
#
# With BASE_IMAGE set (e.g. docker.io/library/python:3.11-slim-bookworm, the Dockerfile's
# default), that base is pulled. Without it, where registries cannot be reached, a local
# base is made once: a minimal Debian bookworm root filesystem with Python 3.11
# (debootstrap), committed as localhost/servingopt-base:$BASE_TAG and kept in buildah's
# storage for the next builds.
#
#   hack/build-image.sh            build localhost/servingopt:VERSION, print its name
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASE_TAG="bookworm-python3.11-1"
LOCAL_BASE="localhost/servingopt-base:$BASE_TAG"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

log() { printf '[build-image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || { log "$tool not found: run \`make image-deps\`"; exit 1; }
done

make_base() {
  local ctr mnt
  ctr="$(buildah from scratch)"
  mnt="$(buildah mount "$ctr")"
  log "making $LOCAL_BASE with debootstrap (once; about a minute)"
  if ! debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$mnt" "$MIRROR" >"$ROOT/.image-base.log" 2>&1; then
    tail -20 "$ROOT/.image-base.log" >&2
    buildah rm "$ctr" >/dev/null
    return 1
  fi
  rm -rf "$mnt"/var/cache/apt/archives/*.deb "$mnt"/var/lib/apt/lists/* \
    "$mnt"/usr/share/doc/* "$mnt"/usr/share/man/* "$mnt"/usr/share/info/* "$ROOT/.image-base.log"
  buildah umount "$ctr" >/dev/null
  buildah config --env LANG=C.UTF-8 \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  buildah commit --quiet --rm "$ctr" "$LOCAL_BASE" >/dev/null
}

base="${BASE_IMAGE:-}"
if [ -z "$base" ]; then
  base="$LOCAL_BASE"
  buildah inspect --type image "$base" >/dev/null 2>&1 || make_base
fi
version="$(cd "$ROOT/operator" && python3 -c 'import servingopt; print(servingopt.__version__)')"
revision="$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)"
image="localhost/servingopt:$version"
log "building $image from $base"
start=$SECONDS
# The CA bundle pip trusts here (a proxy's CA included), for pip inside the build only.
ca="${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}"
buildah bud --quiet --isolation chroot --layers=false --secret "id=ca-bundle,src=$ca" \
  --build-arg "BASE_IMAGE=$base" --build-arg "VERSION=$version" \
  --build-arg "REVISION=$revision" -t "$image" "$ROOT" >/dev/null
size="$(buildah images --format '{{.Size}}' "$image" | head -1)"
log "built $image in $((SECONDS - start)) s: $size"
echo "$image"
