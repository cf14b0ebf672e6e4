"""``layerwise serve``: its flags, the typed settings they make, and which server runs them.

Every number a flag sets lives in server/settings.py's ``Settings`` (its default too); the Ray
Serve flags make a ``RayServing`` (beside it). Nothing below this module sees
the parsed flags.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..runtime.errors import InputError
from ..server.settings import API_KEY_ENV, RayServing, Settings, default
from .flags import add_bundle, add_runtime_flags, verb

# The flags that set a number in Settings, with their help (their defaults live in Settings alone).
NUMBER_FLAGS: tuple[tuple[str, type, str], ...] = (
    ("max_batch_tokens", int, "tokens in one batched run (at least the model's max length)"),
    ("max_batch_requests", int, "requests merged into one run at most"),
    ("max_wait_ms", float, "longest a request waits for others to join its run, only while more are arriving"),
    ("max_client_batch_size", int, "inputs per request (more: 422)"),
    ("max_concurrent_requests", int, "requests admitted at once (more: 429 at once)"),
    ("payload_limit", int, "request body bytes (more: 413, before parsing)"),
    ("graceful_timeout", float, "seconds in-flight requests get on SIGTERM/SIGINT"),
    ("keep_alive_timeout", float, "close a connection idle this many seconds"),
    ("header_timeout", float, "seconds a request head may take (then 408 and close)"),
    ("body_timeout", float, "seconds a request body may take after its head (then 408 and close)"),
)


def add_parser(verbs: Any) -> None:
    p = verb(verbs, "serve", "HTTP embedding server (TEI and OpenAI compatible)")
    add_bundle(p)
    p.add_argument("--host", default=default("host"), help="address to listen on (0.0.0.0: every interface; then set --api-key)")
    p.add_argument("--port", type=int, default=default("port"), help="port to listen on")
    p.add_argument("--api-key", help=f"require 'Authorization: Bearer KEY' (also read from ${API_KEY_ENV})")
    for name, kind, text in NUMBER_FLAGS:
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default(name), help=text)
    p.add_argument("--auto-truncate", action="store_true", help="cut too-long inputs unless a request sends truncate=false")
    ray = p.add_argument_group("Ray Serve", "only with --ray")
    ray.add_argument("--ray", action="store_true", help="serve as Ray Serve replicas (--threads CPUs each); needs 'layerwise[ray]'")
    ray.add_argument("--replicas", type=int, default=1, help="with --ray: replicas, each with its own Encoder")
    ray.add_argument("--autoscale", metavar="MIN..MAX", help="with --ray: let Ray Serve scale between MIN and MAX replicas")
    ray.add_argument("--ray-address", help="with --ray: cluster to join (default: start a local one, or RAY_ADDRESS)")
    add_runtime_flags(p)
    p.set_defaults(run=run_serve)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the parsed flags; the API key may come from $LAYERWISE_API_KEY."""
    names = [name for name in Settings.__dataclass_fields__ if name != "api_key"]
    values = {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
    api_key = args.api_key if args.api_key is not None else (os.environ.get(API_KEY_ENV) or None)
    return Settings(api_key=api_key, **values)


def parse_autoscale(text: str) -> tuple[int, int]:
    """``"1..4"`` -> (1, 4)."""
    low, sep, high = text.partition("..")
    if not (sep and low.isdigit() and high.isdigit()) or not 0 <= int(low) <= int(high) or int(high) < 1:
        raise InputError(f"--autoscale takes MIN..MAX replicas like 1..4, got {text!r}")
    return int(low), int(high)


def run_serve(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    ray_only = [
        flag
        for flag, given in (("--replicas", args.replicas != 1), ("--autoscale", args.autoscale), ("--ray-address", args.ray_address))
        if given
    ]
    if ray_only and not args.ray:
        raise InputError(f"{', '.join(ray_only)} only apply with --ray; add --ray to serve on Ray Serve, or leave them out")
    if args.ray:
        ray = RayServing(args.replicas, parse_autoscale(args.autoscale) if args.autoscale else None, args.ray_address, args.threads or 1)
        try:
            from ..ray.serve import serve_on_ray
        except ImportError as e:
            raise ImportError(f"`layerwise serve --ray` needs the ray extra ({e.name} is missing): pip install 'layerwise[ray]'") from e
        return serve_on_ray(settings, ray)
    try:
        from ..server.app import serve
    except ImportError as e:
        raise ImportError(f"`layerwise serve` needs the serve extra ({e.name} is missing): pip install 'layerwise[serve]'") from e
    return serve(settings, quiet=args.quiet)
