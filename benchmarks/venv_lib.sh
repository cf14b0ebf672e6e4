# Shared by the peer set-up scripts (peers_setup.sh, bertscore_setup.sh, infinity_setup.sh): each
# peer lives in its own venv, since they pin transformers 4.57.x while the project venv is on 5.x.
# Source it, then call these; `set -euo pipefail` is the caller's.

# fresh STAMP FILE...: the stamp exists and is newer than every FILE (the venv is up to date).
fresh() {
    local stamp="$1" file
    shift
    [[ -f "$stamp" ]] || return 1
    for file in "$@"; do
        [[ "$stamp" -nt "$file" ]] || return 1
    done
}

# install_requirements PYTHON VENV REQUIREMENTS: create VENV if needed and install REQUIREMENTS into it,
# torch first and exactly: the CPU wheel lies on this machine's disk, any looser spec would download a
# multi-GB CUDA build; repeating it with -r keeps the resolver from moving it.
install_requirements() {
    local python="$1" venv="$2" requirements="$3"
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
