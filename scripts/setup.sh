#!/usr/bin/env bash
# Installs the Debian 12 packages braid builds and tests with, when missing (clang
# and its runtime libraries are for the libFuzzer targets, scripts/fuzz.sh).
set -euo pipefail

packages=(build-essential cmake ninja-build pkg-config git
          openmpi-bin libopenmpi-dev libhwloc-dev
          libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev
          dataset-fashion-mnist
          clang libclang-rt-14-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "braid setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
