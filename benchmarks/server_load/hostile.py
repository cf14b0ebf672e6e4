"""Clients that drop their connection at the worst moment, on raw loopback sockets (issue 30 §1).

Each entry of ``HOSTILE`` opens one connection to 127.0.0.1:PORT, sends (part of) one POST and
leaves: with a reset (SO_LINGER 0, the kernel sends RST) before the body, mid-body, while the job
runs or mid-response; by vanishing (an ordinary close, FIN) mid-body or mid-response; or by a
half-close (shutdown of its write side) after the whole request, reading the answer. Each returns
what it saw: "sent" or, for the half-close, the status line it read ("no answer" when none came).
``hostile_loop`` runs them in turn until a deadline. Not here: any check of the server (the soak
checks it is alive and right afterwards).
"""

from __future__ import annotations

import json
import socket
import struct
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

Hostile = Callable[[int, str, bytes], str]


def _connect(port: int, receive_buffer: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)  # before connect: the window stays small
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    return sock


def _reset(sock: socket.socket) -> None:
    """Close with SO_LINGER 0: the kernel drops unsent data and sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def head(route: str, length: int) -> bytes:
    return f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n".encode()


def leave(port: int, route: str, body: bytes, *, sent: float, wait: float, reset: bool, mid_response: bool = False) -> str:
    """Send the head and the first ``sent`` share of the body, wait ``wait`` s (mid-response: after
    reading one byte through a small receive window), then reset (RST) or close (FIN)."""
    sock = _connect(port, receive_buffer=4096 if mid_response else None)
    sock.sendall(head(route, len(body)) + body[: int(len(body) * sent)])
    if mid_response:
        sock.recv(1)
    time.sleep(wait)
    if reset:
        _reset(sock)
    else:  # with unread data the kernel answers RST too
        sock.close()
    return "sent"


def half_close_after_request(port: int, route: str, body: bytes) -> str:
    """The whole request, then shutdown(SHUT_WR); the status line of whatever answer comes back."""
    sock = _connect(port)
    try:
        sock.sendall(head(route, len(body)) + body)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    except OSError:
        pass
    finally:
        sock.close()
    return answer.split(b"\r\n", 1)[0].decode(errors="replace") if answer else "no answer"


# name -> (client, wants a large response): mid-response clients get /embed_all of long texts
HOSTILE: dict[str, tuple[Hostile, bool]] = {
    "reset before the body": (partial(leave, sent=0, wait=0.05, reset=True), False),
    "reset mid-body": (partial(leave, sent=0.5, wait=0.05, reset=True), False),
    "vanish mid-body": (partial(leave, sent=0.5, wait=0, reset=False), False),
    "reset while the job runs": (partial(leave, sent=1, wait=0.01, reset=True), False),
    "half-close after the request": (half_close_after_request, False),
    "reset mid-response": (partial(leave, sent=1, wait=0.3, reset=True, mid_response=True), True),
    "vanish mid-response": (partial(leave, sent=1, wait=0.3, reset=False, mid_response=True), True),
}


def large_response_body(long_texts: Sequence[str]) -> tuple[str, bytes]:
    """/embed_all of 8 long texts (cut to the model's maximum): one vector per token, megabytes of JSON."""
    texts = [long_texts[i % len(long_texts)] for i in range(8)]
    return "/embed_all", json.dumps({"inputs": texts, "truncate": True}).encode()


def hostile_loop(
    port: int, requests: Sequence[tuple[str, dict[str, Any]]], long_texts: Sequence[str], deadline: float, pause: float
) -> Counter:
    """Every hostile client in turn, on the routes of ``requests`` in turn, until ``deadline``
    (time.monotonic()); counts "<client>: <outcome>" (an OSError on our side counts as its name)."""
    seen: Counter = Counter()
    big = large_response_body(long_texts)
    names = list(HOSTILE)
    i = 0
    while time.monotonic() < deadline:
        name = names[i % len(names)]
        client, wants_big = HOSTILE[name]
        route, body = big if wants_big else (requests[i % len(requests)][0], json.dumps(requests[i % len(requests)][1]).encode())
        try:
            seen[f"{name}: {client(port, route, body)}"] += 1
        except OSError as error:
            seen[f"{name}: {type(error).__name__}"] += 1
        i += 1
        time.sleep(pause)
    return seen
