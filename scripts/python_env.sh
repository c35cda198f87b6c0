#!/usr/bin/env bash
# Creates the virtual environment .venv (or $BRAID_VENV) when missing, installs what
# the Python package, its tests and examples need (numpy, pytest, torch,
# tensorflow-cpu, and the build tools), and installs braid into it, editable
# (rebuilt in build-python/).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${BRAID_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  if ! "$python" -m venv --help >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-venv
  fi
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
"${pip[@]}" numpy pytest "scikit-build-core>=0.10" "pybind11>=2.12" torch "tensorflow-cpu>=2.16"
# A venv other than the default builds in its own folder, so that two venvs never
# rebuild into one build directory at once.
build_dir=()
[ "$venv" != "$root/.venv" ] && build_dir=(-C "build-dir=$root/build-python/$(basename "$venv")/{wheel_tag}")
"${pip[@]}" --no-build-isolation "${build_dir[@]}" -e "$root"
