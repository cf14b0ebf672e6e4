"""The peer embedders of the benchmark, one module per peer family, run by benchmarks/jobs/peers_worker.py.

Runs inside benchmarks/.venv-peers (see peers_setup.sh), never in the project venv. ``registry.PEERS``
is the table of contenders and the jobs each can do; ``loop`` builds, warms up and times them.
"""
