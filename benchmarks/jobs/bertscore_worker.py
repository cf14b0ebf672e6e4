"""The reference BERTScore: the ``bert-score`` package 0.3.13, run on a request and written as JSON.

Runs inside benchmarks/.venv-bertscore (benchmarks/bertscore_setup.sh), never in the project venv:
bert-score needs transformers < 4.58, the project is on 5.x. tests/test_bertscore.py and
benchmarks/jobs/bertscore_bench.py call it as a subprocess:

    benchmarks/.venv-bertscore/bin/python benchmarks/jobs/bertscore_worker.py REQUEST.json RESULT.json

REQUEST: {"model": checkpoint folder, "runs": [{"cands": [...], "refs": [...] (str or lists of str),
"num_layers": k, "idf": false | true, "all_layers": false, "baseline_path": null | path,
"use_fast_tokenizer": false, "repeats": 1}, ...], "threads": 2}. RESULT: {"runs": [{"P", "R", "F"
(lists; [layers][pairs] with all_layers), "hash", "seconds" (each repeat, model loading included, as
a user's call pays it)}, ...], "versions": {...}}.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def run_one(bert_score, model: str, run: dict) -> dict:
    kwargs = {
        "model_type": model,
        "num_layers": run["num_layers"],
        "idf": run.get("idf", False),
        "all_layers": run.get("all_layers", False),
        "use_fast_tokenizer": run.get("use_fast_tokenizer", False),
        "return_hash": True,
        "batch_size": run.get("batch_size", 64),
    }
    if run.get("baseline_path"):
        kwargs.update(rescale_with_baseline=True, baseline_path=run["baseline_path"], lang="en")
    seconds = []
    for _ in range(run.get("repeats", 1)):
        started = time.perf_counter()
        (p, r, f), hash_code = bert_score.score(run["cands"], run["refs"], **kwargs)
        seconds.append(time.perf_counter() - started)
    return {"P": p.tolist(), "R": r.tolist(), "F": f.tolist(), "hash": hash_code, "seconds": seconds}


def main(request_path: str, result_path: str) -> None:
    import bert_score
    import torch
    import transformers

    request = json.loads(open(request_path, encoding="utf-8").read())
    torch.set_num_threads(int(request.get("threads", torch.get_num_threads())))
    runs = [run_one(bert_score, request["model"], run) for run in request["runs"]]
    versions = {"bert_score": bert_score.__version__, "transformers": transformers.__version__, "torch": torch.__version__}
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump({"runs": runs, "versions": versions}, f)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
