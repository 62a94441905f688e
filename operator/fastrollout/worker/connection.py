"""One HTTP/1.1 exchange per TCP connection.

Every response says ``Connection: close`` and the connection then closes. That is deliberate:

* kube-proxy balances *connections*, not requests. A kept-alive connection stays pinned to its pod,
  even after the pod left the Service's endpoints, so a client could keep sending new requests to a
  draining pod. One request per connection means every request is balanced afresh.
* The classic keep-alive race (the server closes an idle connection just as the client reuses it,
  and the client sees a reset) cannot happen when the server never keeps a connection idle.
* An idle kept-alive client would hold the worker's single slot and starve everyone queued behind it.

Parsing is ``http11.py`` (h11's grammar, standard library only); this module adds time. The request
line and headers must arrive within ``Limits.header_seconds`` of the worker starting to read, the body
within ``Limits.body_seconds`` after that, and the response must be taken within ``body_seconds`` too.
A client that trickles bytes is cut off when its deadline passes, however often it sends, so no
client holds the worker's single slot for longer than that (plus its handler's own time).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote, urlsplit

from fastrollout.worker.http11 import MAX_BODY, BadRequestError, ClientGoneError, RequestReader
from fastrollout.worker.linger import Linger
from fastrollout.worker.protocol import Handler, Request, Response, text_response

log = logging.getLogger(__name__)

RECV_SIZE = 65536
_FRAMING_HEADERS = frozenset({"content-length", "connection", "transfer-encoding"})
_LINGER = Linger()
DEFAULT_HEADER_SECONDS = 10.0
DEFAULT_BODY_SECONDS = 60.0


@dataclass(frozen=True)
class Limits:
    """How long a client may take, and how much it may send."""

    header_seconds: float = DEFAULT_HEADER_SECONDS
    """Request line and headers complete within this, counted from accept."""
    body_seconds: float = DEFAULT_BODY_SECONDS
    """The body complete within this after the headers; and the response taken within it."""
    max_body: int = MAX_BODY


class _Deadline:
    """``recv`` for :class:`RequestReader` that raises ``TimeoutError`` once ``until`` has passed."""

    def __init__(self, conn: socket.socket, until: float) -> None:
        self.conn = conn
        self.until = until

    def recv(self) -> bytes:
        left = self.until - time.monotonic()
        if left <= 0:
            raise TimeoutError("deadline passed")
        self.conn.settimeout(left)
        return self.conn.recv(RECV_SIZE)


def serve_connection(
    conn: socket.socket,
    handler: Handler,
    limits: Limits,
    on_response: Callable[[int], object] = lambda _status: None,
) -> None:
    """Read one request, answer it, close.

    ``on_response(status)`` runs just *before* the response is written, so anyone who has read a
    response also finds it in the metrics. Never raises for anything a client does: a malformed request
    gets its 4xx/5xx, a slow one 408, and one that vanishes nothing.
    """
    deadline = _Deadline(conn, time.monotonic() + limits.header_seconds)
    method = ""
    try:
        try:
            request = _read_request(deadline, limits)
            method = request.method
            response = _call(handler, request)
        except BadRequestError as exc:
            response = text_response(exc.status, str(exc))
        except TimeoutError:
            response = text_response(HTTPStatus.REQUEST_TIMEOUT, "request not received in time")
        on_response(response.status)
        conn.settimeout(limits.body_seconds)  # sendall's timeout bounds the whole send (Python 3.5+)
        conn.sendall(_encode(response, head=method == "HEAD"))
    except (ClientGoneError, OSError) as exc:
        log.debug("connection ended without a full response: %r", exc)
    _LINGER.close_later(conn)


def _read_request(deadline: _Deadline, limits: Limits) -> Request:
    reader = RequestReader(deadline.recv, max_body=limits.max_body)
    head = reader.head()
    deadline.until = time.monotonic() + limits.body_seconds
    if head.length is not None and head.length > limits.max_body:
        raise BadRequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
    if head.expects_continue and not reader.buffered:
        deadline.conn.settimeout(limits.body_seconds)
        deadline.conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = reader.body(head)
    try:
        url = urlsplit(head.target)
    except ValueError as exc:  # e.g. "http://[::1/": an unclosed IPv6 literal
        raise BadRequestError(HTTPStatus.BAD_REQUEST, "malformed request target") from exc
    query = dict(parse_qsl(url.query, keep_blank_values=True))
    return Request(
        method=head.method, path=unquote(url.path) or "/", query=query, headers=head.headers, body=body
    )


def _call(handler: Handler, request: Request) -> Response:
    """Run the handler; a bug in it becomes a 500, never a dropped connection."""
    try:
        status, headers, body = handler(request)
        response = Response(int(status), dict(headers), bytes(body))
        _encode(response, head=False)  # reject bad headers here, while a 500 can still be sent
    except Exception:
        log.exception("handler failed on %s %s", request.method, request.path)
        return text_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")
    return response


def _encode(response: Response, *, head: bool) -> bytes:
    status, headers, body = response
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Status"
    lines = [f"HTTP/1.1 {status} {phrase}"]
    for name, value in headers.items():
        if any(c in name + value for c in "\r\n") or ":" in name:
            raise ValueError(f"invalid response header {name!r}")
        if name.lower() not in _FRAMING_HEADERS:
            lines.append(f"{name}: {value}")
    no_body = status in (HTTPStatus.NO_CONTENT, HTTPStatus.NOT_MODIFIED) or status < 200
    if not no_body:
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head_bytes if head or no_body else head_bytes + body
