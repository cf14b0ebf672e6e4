"""The jobs `make bench` runs (benchmarks/run.py): each measures one question and returns its figures."""
