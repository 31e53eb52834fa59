#!/usr/bin/env bash
# Installs the Debian packages servingopt's tests use: a real Prometheus server (with
# promtool), headless Chromium (to check that HTML reports render), and buildah with
# debootstrap (to build the operator image without a Docker engine). Idempotent; needs
# root or sudo.
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "[system-deps] installing ${need[*]} from Debian packages" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
