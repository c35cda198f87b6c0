#!/usr/bin/env bash
# The main job: installs what is missing (Debian packages including the Fashion-MNIST
# data set, the Python environment with torch, braid itself) and trains the example
# CNN on two ranks: `braidrun -np 2 python examples/pytorch_fashion_mnist.py`.
# Arguments go to the example, e.g. scripts/run.sh --epochs 1
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${BRAID_VENV:-$root/.venv}"
bash "$root/scripts/setup.sh"
bash "$root/scripts/python_env.sh"
export PATH="$venv/bin:$PATH" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
cd "$root"
braidrun -np "${NP:-2}" python examples/pytorch_fashion_mnist.py "$@"
