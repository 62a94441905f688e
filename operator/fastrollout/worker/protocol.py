"""What a worker's handler sees and returns.

A handler is a plain function from :class:`Request` to :class:`Response`: no framework, no async, because
a single-request worker has nothing to interleave. The library owns everything around it (parsing,
framing, one-at-a-time, draining), so a handler cannot get drain behaviour wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple


@dataclass(frozen=True)
class Request:
    """One parsed HTTP request.

    ``path`` is percent-decoded and has no query; ``query`` keeps the last value of a repeated key
    (workers take a few scalar knobs, not lists); ``headers`` has lower-cased names.
    """

    method: str
    path: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


class Response(NamedTuple):
    """``(status, headers, body)``; a plain 3-tuple works too.

    The library adds ``Content-Length`` and ``Connection: close`` itself (see ``connection.py`` for why
    every connection carries exactly one request), so handlers must not set them.
    """

    status: int
    headers: Mapping[str, str]
    body: bytes


Handler = Callable[[Request], Response]
"""Called on the serving thread, one request at a time; it may block (that is the point)."""


def json_response(status: int, payload: object) -> Response:
    """A JSON body with its content type, the common case for workers and their tests."""
    body = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
    return Response(status, {"Content-Type": "application/json"}, body)


def text_response(status: int, text: str) -> Response:
    """A short plain-text body, used for probes and errors."""
    return Response(status, {"Content-Type": "text/plain; charset=utf-8"}, text.encode() + b"\n")
