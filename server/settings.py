"""Server settings from the ``layerwise serve`` flags, checked before anything listens.

Defaults follow text-embeddings-inference: 16384 batch tokens, 32 inputs per request,
512 concurrent requests, 2 MB bodies. They live in ``Settings`` alone: the ``serve`` flags
take theirs from ``default``. The read deadlines (TEI has none; uvicorn only the
keep-alive one) stop slow or silent clients holding connections: a connection idle for
``keep_alive_timeout`` s is closed, a request head not complete ``header_timeout`` s after its
first byte and a body not complete ``body_timeout`` s after its head get a 408. Not handled
here: the model's own limits (see ``check_budget``, called once its maximum input length is
known). Imports no web framework, so the CLI can read the defaults without the serve extra;
layerwise/commands/serve.py makes these from the flags.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..runtime.errors import LayerwiseError

API_KEY_ENV = "LAYERWISE_API_KEY"


class ServerConfigError(LayerwiseError, ValueError):
    """A ``layerwise serve`` setting that cannot work; raised before the server listens."""


@dataclass(frozen=True)
class Settings:
    """Everything the server needs to know; ``repr`` never shows the API key."""

    bundle: str
    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str | None = field(default=None, repr=False)
    max_batch_tokens: int = 16384
    max_batch_requests: int = 64
    max_wait_ms: float = 5.0
    max_client_batch_size: int = 32
    max_concurrent_requests: int = 512
    payload_limit: int = 2_000_000
    graceful_timeout: float = 30.0
    keep_alive_timeout: float = 5.0  # uvicorn's default
    header_timeout: float = 10.0
    body_timeout: float = 30.0  # a 2 MB body in 30 s needs ~70 kB/s
    auto_truncate: bool = False  # TEI's --auto-truncate: cut too-long inputs when a request does not say
    variant: str | None = None
    provider: str = "auto"
    threads: int | None = None

    def __post_init__(self) -> None:
        for flag in ("max_batch_tokens", "max_batch_requests", "max_client_batch_size", "max_concurrent_requests", "payload_limit"):
            value = getattr(self, flag)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ServerConfigError(f"--{flag.replace('_', '-')} must be a positive integer, got {value!r}")
        for flag in ("max_wait_ms", "graceful_timeout"):
            value = getattr(self, flag)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < float("inf"):
                raise ServerConfigError(f"--{flag.replace('_', '-')} must be a number >= 0, got {value!r}")
        for flag in ("keep_alive_timeout", "header_timeout", "body_timeout"):
            value = getattr(self, flag)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < float("inf"):
                raise ServerConfigError(f"--{flag.replace('_', '-')} must be a finite number of seconds > 0, got {value!r}")
        if not 0 <= self.port <= 65535:
            raise ServerConfigError(f"--port must be from 0 to 65535, got {self.port}")
        if self.api_key is not None and not self.api_key.strip():
            raise ServerConfigError("--api-key is empty; pass a non-empty key, or leave the flag out to serve without one")

    @property
    def model_id(self) -> str:
        """The name clients see: the bundle folder's name."""
        return Path(self.bundle).resolve().name

    @property
    def loopback(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")


@dataclass(frozen=True)
class RayServing:
    """How ``layerwise serve --ray`` runs the server on Ray Serve: fixed replicas, or autoscaled between
    (min, max); the cluster to join (None: start a local one, or $RAY_ADDRESS); CPUs (= threads) per replica."""

    replicas: int = 1
    autoscale: tuple[int, int] | None = None
    address: str | None = None
    threads_per_replica: int = 1

    def __post_init__(self) -> None:
        if self.replicas < 1 or self.threads_per_replica < 1:
            raise ServerConfigError(
                f"--replicas and --threads must be at least 1, got --replicas {self.replicas} and --threads {self.threads_per_replica}"
            )


def default(name: str) -> Any:
    """The default of one ``Settings`` field: the value a ``layerwise serve`` flag shows and takes when left out."""
    return Settings.__dataclass_fields__[name].default


def check_budget(settings: Settings, max_length: int) -> None:
    """Refuse a batch-token budget smaller than one full-length input."""
    if max_length > settings.max_batch_tokens:
        raise ServerConfigError(
            f"--max-batch-tokens {settings.max_batch_tokens} is less than the model's maximum input length "
            f"{max_length} tokens, so a full-length input could never run; pass --max-batch-tokens {max_length} or more"
        )


def max_request_tokens(settings: Settings, max_length: int) -> int:
    """Tokens one request may run, all windows of chunked inputs together: its most inputs at full
    length, so ``"overflow": "chunk"`` never buys more work than a full request of cut inputs."""
    return settings.max_client_batch_size * max_length
