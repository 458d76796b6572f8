#!/usr/bin/env bash
# Install the Debian tools the tests use, only those missing.
set -euo pipefail
pkgs=(socat mbpoll python3-pymodbus docker-compose curl chromium fonts-wqy-microhei)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "[test-deps] error: missing Debian packages ${missing[*]}; run as root: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "[test-deps] installing ${missing[*]}" >&2
mkdir -p .run
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >.run/apt-test-deps.log 2>&1 || {
  apt-get update -qq >>.run/apt-test-deps.log 2>&1 || true
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >>.run/apt-test-deps.log 2>&1 \
    || { echo "[test-deps] error: apt-get install ${missing[*]} failed; see .run/apt-test-deps.log" >&2; exit 1; }
}
