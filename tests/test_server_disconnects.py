"""A client that resets (RST), half-closes (FIN, still reading) or vanishes (close) at the worst
moments costs only its own request: before its body, mid-body, while its job runs, mid-response,
on every embedding route and /tokenize, against ``layerwise serve`` as users start it (uvloop).

After each, the server is alive, answers a normal request with the Python API's vector, has
logged no traceback, counts no request in flight or queued, and counted no 500 (/metrics).
The clients are in tests/leaving_clients.py; `serve --ray` meets some of them in test_ray_serve.py.
"""

from __future__ import annotations

import pytest

from .leaving_clients import BATCH, HOWS, POINTS, REQUESTS, leave
from .server_process import ServerProcess, serve_process

CASES = [pytest.param(path, point, how, id=f"{path}-{point}-{how}") for path in REQUESTS for point in POINTS for how in HOWS]


@pytest.fixture(scope="module")
def server(tiny_bundle):
    rig = {"gate": True, "runs": True}
    with serve_process(tiny_bundle, "--threads", "1", "--max-client-batch-size", str(BATCH), rig=rig) as running:
        yield running


def _errors(server: ServerProcess) -> float:
    """Answers counted as 500 so far, every route."""
    return sum(value for name, value in server.metrics().items() if name.startswith("layerwise_requests_total") and 'status="500"' in name)


@pytest.mark.parametrize(("path", "point", "how"), CASES)
def test_a_client_leaving_at_any_point_costs_only_its_own_request(server, tiny_bundle, path, point, how):
    since, errors = server.log_mark(), _errors(server)
    leave(server, path, point, how)
    server.assert_serves_correctly(tiny_bundle, since)
    assert _errors(server) == errors, "a client leaving was counted as a server error (500)"
