# Shared by the peer set-up scripts (peers_setup.sh, bertscore_setup.sh, infinity_setup.sh): each
# peer lives in its own venv, since they pin transformers 4.57.x while the project venv is on 5.x.
# Source it, then call these; `set -euo pipefail` is the caller's. It sets `here` (benchmarks/) and `python`.

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3.11}"

# up_to_date NAME VENV REQUIREMENTS [--force]: true (after saying so) when VENV's stamp is newer than
# REQUIREMENTS, the calling script, this file and pyproject.toml; --force removes VENV first.
up_to_date() {
    local name="$1" venv="$2" requirements="$3"
    if [[ "${4:-}" == "--force" ]]; then
        rm -rf "$venv"
    fi
    if fresh "$venv/.installed" "$requirements" "$0" "${BASH_SOURCE[0]}" "$here/../pyproject.toml"; then
        echo "$name venv up to date: $venv"
        return 0
    fi
    return 1
}

# fresh STAMP FILE...: the stamp exists and is newer than every FILE (the venv is up to date).
fresh() {
    local stamp="$1" file
    shift
    [[ -f "$stamp" ]] || return 1
    for file in "$@"; do
        [[ "$stamp" -nt "$file" ]] || return 1
    done
}

# install_requirements VENV REQUIREMENTS: create VENV if needed and install REQUIREMENTS into it,
# torch first and exactly: the CPU wheel lies on this machine's disk, any looser spec would download a
# multi-GB CUDA build; repeating it with -r keeps the resolver from moving it.
install_requirements() {
    local venv="$1" requirements="$2"
    [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
    pip_install "$venv" torch==2.13.0
    pip_install "$venv" torch==2.13.0 -r "$requirements"
}

# pip_install VENV ARGS...: pip install quietly into VENV.
pip_install() {
    local venv="$1"
    shift
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
}

# check_one_onnxruntime VENV: onnxruntime and onnxruntime-gpu overwrite each other; refuse both.
check_one_onnxruntime() {
    if "$1/bin/python" -m pip show --quiet onnxruntime-gpu >/dev/null 2>&1; then
        echo "error: onnxruntime-gpu is installed next to onnxruntime in $1; remove one" >&2
        exit 1
    fi
}
