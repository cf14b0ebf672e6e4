"""The HTTP server (server/) as Ray Serve replicas: the same Starlette app, routes, limits,
metrics and auth, one ``Encoder`` per replica, no new HTTP code.

Ray Serve's proxy takes the port and spreads requests over the replicas; each replica runs
the app's lifespan (load in the background, warm up, drain) and batches what reaches it.
A replica answers 503 until its model is loaded, as the single server does. Each replica runs
ONNX Runtime with the CPUs Ray gives it (``threads_per_replica``).
"""

from __future__ import annotations

import functools
import logging
import signal
import threading
from typing import Any

import ray
from ray import serve

from ..runtime import load
from ..runtime.errors import InputError
from ..runtime.manifest import read_manifest
from ..server.app import create_app
from ..server.settings import RayServing, Settings, check_budget
from .embedder import assigned_cpus, check_cpus

log = logging.getLogger("layerwise.server")
APP_NAME = "layerwise"


@serve.deployment
@serve.ingress()
class Replica:
    """One replica: builds the server's app for ``settings`` when Ray Serve starts it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __serve_build_asgi_app__(self) -> Any:
        s = self.settings
        loader = functools.partial(load, s.bundle, variant=s.variant, provider=s.provider, threads=s.threads or assigned_cpus() or None)
        return create_app(s, loader)


def deploy(settings: Settings, replicas: int = 1, autoscale: tuple[int, int] | None = None, threads_per_replica: int = 1) -> Any:
    """Deploy the app on the connected Ray cluster, listening on ``settings.host:settings.port``; return its handle."""
    if replicas < 1 or threads_per_replica < 1:
        raise InputError(f"--replicas and --threads must be at least 1, got --replicas {replicas} and --threads {threads_per_replica}")
    options: dict[str, Any] = {
        "ray_actor_options": {"num_cpus": threads_per_replica, "num_gpus": 1 if settings.provider == "cuda" else 0},
        "max_ongoing_requests": settings.max_concurrent_requests,  # the app's own batcher merges and caps them
        "health_check_period_s": 5,
    }
    if autoscale:
        options["autoscaling_config"] = {
            "min_replicas": autoscale[0],
            "max_replicas": autoscale[1],
            "target_ongoing_requests": settings.max_batch_requests,
        }
    else:
        options["num_replicas"] = replicas
    serve.start(http_options={"host": settings.host, "port": settings.port})
    deployment: Any = Replica  # a Deployment: the stubs of @serve.ingress keep the class type
    return serve.run(deployment.options(**options).bind(settings), name=APP_NAME, route_prefix="/", blocking=False)


def serve_on_ray(settings: Settings, replicas: RayServing) -> int:
    """``layerwise serve BUNDLE --ray``: deploy, then serve until SIGINT or SIGTERM."""
    check_budget(settings, read_manifest(settings.bundle).model.max_length)
    autoscale = replicas.autoscale
    ray.init(address=replicas.address, log_to_driver=False)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    deployed = False
    try:
        check_cpus(autoscale[0] if autoscale else replicas.replicas, replicas.threads_per_replica, "--replicas", "--threads")
        deploy(settings, replicas.replicas, autoscale, replicas.threads_per_replica)
        deployed = True
        log.warning("serving %s on http://%s:%d with Ray Serve; Ctrl-C stops", settings.model_id, settings.host, settings.port)
        stop.wait()
    finally:
        if deployed:
            serve.delete(APP_NAME)
        ray.shutdown()
    return 0
