#!/usr/bin/env bash
# Installs the Debian packages that building, running and testing Puddle need.
# Safe to run again: it installs only what is missing.
set -euo pipefail

build_packages=(
  cmake ninja-build ccache g++ pkg-config make
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libcurl4-openssl-dev libsqlite3-dev libpq-dev libsodium-dev
  libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev libexpected-dev libhiredis-dev
  libgtest-dev libgmock-dev
)
run_packages=(jupyter-notebook procps iproute2 iptables ca-certificates)
test_packages=(curl sqlite3 python3 python3-websocket openssl postgresql-15 redis-server)

wanted=("${build_packages[@]}" "${run_packages[@]}")
if [ "${1:-}" = "--test" ]; then
  wanted+=("${test_packages[@]}")
fi

missing=()
for package in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing packages: ${missing[*]}; run 'sudo make setup' or install them" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
