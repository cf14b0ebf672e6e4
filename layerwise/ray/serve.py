"""The HTTP server (server/) as Ray Serve replicas: the same Starlette app, routes, limits,
metrics and auth, one ``Encoder`` per replica, no new HTTP code.

Ray Serve's proxy takes the port and spreads requests over the replicas; each replica runs
the app's lifespan (load in the background, warm up, drain) and batches what reaches it.
A replica answers 503 until its model is loaded, as the single server does. Each replica runs
ONNX Runtime with the CPUs Ray gives it (``threads_per_replica``).

Ray Serve's own waits for its HTTP proxy are too short for a busy machine: its controller kills a
proxy not ready 5 s after it was started (RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S) and
``serve.start`` then fails with the killed actor's ActorDiedError (or gives up after 60 s).
``start_serve`` gives the proxy LAYERWISE_RAY_START_TIMEOUT seconds (300 by default) and, past
that, says what timed out and which variable raises the wait.
"""

from __future__ import annotations

import functools
import inspect
import logging
import math
import os
import signal
import threading
import time
from typing import Any

import ray
from ray import serve
from ray.exceptions import RayActorError

from ..runtime import load
from ..runtime.errors import InputError
from ..runtime.manifest import read_manifest
from ..server.app import create_app
from ..server.settings import RayServing, Settings, check_budget
from .embedder import assigned_cpus, check_cpus

log = logging.getLogger("layerwise.server")
APP_NAME = "layerwise"
START_TIMEOUT_ENV = "LAYERWISE_RAY_START_TIMEOUT"
START_TIMEOUT_S = 300.0
PROXY_READY_ENV = "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S"  # Ray Serve's controller reads it when it starts
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # SIGHUP: the terminal that started it closed


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


def start_timeout() -> float:
    """Seconds to wait for Ray Serve's HTTP proxy: LAYERWISE_RAY_START_TIMEOUT, else START_TIMEOUT_S."""
    text = os.environ.get(START_TIMEOUT_ENV, "").strip()
    if not text:
        return START_TIMEOUT_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise InputError(f"{START_TIMEOUT_ENV} must be a number of seconds > 0, got {text!r}")
    return seconds


def start_serve(host: str, port: int, timeout: float) -> None:
    """Start Ray Serve with its HTTP proxy on ``host:port`` and wait up to ``timeout`` s until the
    controller counts every proxy healthy; then TimeoutError (exit 1) naming the wait and its variable.

    The controller's ready check gets ``timeout`` too (unless RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S is
    set). ``serve.start`` returning is not enough (its proxy may still be killed as not ready), and
    its failing is not the end (the controller starts the proxy again): the controller's status decides.
    """
    options: dict[str, Any] = {"http_options": {"host": host, "port": port}}
    if "controller_options" in inspect.signature(serve.start).parameters:  # newer Ray: env for the controller
        ready_check = os.environ.get(PROXY_READY_ENV) or f"{timeout:g}"
        options["controller_options"] = {"runtime_env": {"env_vars": {PROXY_READY_ENV: ready_check}}}
    started = time.monotonic()
    seen = "serve.start returned"
    try:
        serve.start(**options)
    except (TimeoutError, RayActorError) as e:
        seen = f"serve.start: {type(e).__name__}: {str(e).strip().splitlines()[0]}"
        log.warning("Ray Serve's HTTP proxy is not ready yet (%s); waiting up to %g s in all", seen, timeout)
    while True:
        states = sorted(getattr(status, "value", str(status)) for status in serve.status().proxies.values())
        if states and set(states) == {"HEALTHY"}:
            return
        if time.monotonic() - started >= timeout:
            break
        time.sleep(0.5)
    raise TimeoutError(
        f"Ray Serve's HTTP proxy for http://{host}:{port} was not ready after {timeout:g} s (proxies: "
        f"{', '.join(states) or 'none'}; {seen}); a busy machine can take longer: set {START_TIMEOUT_ENV} to more "
        "seconds (Ray's log of the proxy: logs/serve/proxy_*.log in the Ray session folder)"
    )


def deploy(
    settings: Settings,
    replicas: int = 1,
    autoscale: tuple[int, int] | None = None,
    threads_per_replica: int = 1,
    start_timeout_s: float | None = None,
) -> Any:
    """Deploy the app on the connected Ray cluster, listening on ``settings.host:settings.port``; return its handle.
    ``start_timeout_s``: the wait for Ray Serve's HTTP proxy (default: ``start_timeout()``)."""
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
    start_serve(settings.host, settings.port, start_timeout_s or start_timeout())
    deployment: Any = Replica  # a Deployment: the stubs of @serve.ingress keep the class type
    return serve.run(deployment.options(**options).bind(settings), name=APP_NAME, route_prefix="/", blocking=False)


def serve_on_ray(settings: Settings, replicas: RayServing) -> int:
    """``layerwise serve BUNDLE --ray``: deploy, then serve until SIGINT, SIGTERM or SIGHUP."""
    check_budget(settings, read_manifest(settings.bundle).model.max_length)
    autoscale = replicas.autoscale
    timeout = start_timeout()  # a bad value is refused before Ray starts
    ray.init(address=replicas.address, log_to_driver=False)
    stop = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    deployed = False
    try:
        check_cpus(autoscale[0] if autoscale else replicas.replicas, replicas.threads_per_replica, "--replicas", "--threads")
        deploy(settings, replicas.replicas, autoscale, replicas.threads_per_replica, timeout)
        deployed = True
        log.warning("serving %s on http://%s:%d with Ray Serve; Ctrl-C stops", settings.model_id, settings.host, settings.port)
        stop.wait()
    finally:
        if deployed:
            serve.delete(APP_NAME)
        ray.shutdown()
    return 0
