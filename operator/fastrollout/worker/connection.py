"""One HTTP/1.1 exchange per TCP connection.

Every response says ``Connection: close`` and the connection then closes. That is deliberate:

* kube-proxy balances *connections*, not requests. A kept-alive connection stays pinned to its pod,
  even after the pod left the Service's endpoints, so a client could keep sending new requests to a
  draining pod. One request per connection means every request is balanced afresh.
* The classic keep-alive race (the server closes an idle connection just as the client reuses it,
  and the client sees a reset) cannot happen when the server never keeps a connection idle.
* An idle kept-alive client would hold the worker's single slot and starve everyone queued behind it.

The parser is small on purpose (request line, headers via ``http.client``, ``Content-Length`` or
chunked body, ``Expect: 100-continue``); it has no opinion about the handler's work.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from typing import BinaryIO
from urllib.parse import parse_qsl, unquote, urlsplit

from fastrollout.worker.protocol import Handler, Request, Response, text_response

log = logging.getLogger(__name__)

MAX_LINE = 65536
MAX_BODY = 64 * 1024 * 1024
LINGER_SECONDS = 2.0
_FRAMING_HEADERS = frozenset({"content-length", "connection", "transfer-encoding"})


class _ClientGoneError(Exception):
    """The peer closed or reset before sending a whole request: nothing to answer."""


class _BadRequestError(Exception):
    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def serve_connection(
    conn: socket.socket,
    handler: Handler,
    read_timeout: float,
    on_response: Callable[[int], object] = lambda _status: None,
) -> None:
    """Read one request, answer it, close.

    ``on_response(status)`` runs just *before* the response is written, so anyone who has read a
    response also finds it in the metrics. Never raises for anything a client does; ``read_timeout``
    bounds each read so a silent client cannot hold the worker's only slot for long.
    """
    conn.settimeout(read_timeout)
    rfile = conn.makefile("rb")
    method = ""
    try:
        try:
            request = _read_request(rfile, conn)
            method = request.method
            response = _call(handler, request)
        except _BadRequestError as exc:
            response = text_response(exc.status, str(exc))
        on_response(response.status)
        conn.sendall(_encode(response, head=method == "HEAD"))
    except (_ClientGoneError, OSError) as exc:
        log.debug("connection ended without a full response: %r", exc)
    finally:
        rfile.close()
        _linger_close(conn)


def _read_request(rfile: BinaryIO, conn: socket.socket) -> Request:
    try:
        line = rfile.readline(MAX_LINE + 1)
        while line in (b"\r\n", b"\n"):  # RFC 9112 2.2: ignore empty lines before the request line
            line = rfile.readline(MAX_LINE + 1)
        if not line:
            raise _ClientGoneError("closed before a request line")
        if len(line) > MAX_LINE:
            raise _BadRequestError(HTTPStatus.REQUEST_URI_TOO_LONG, "request line too long")
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise _BadRequestError(HTTPStatus.BAD_REQUEST, "malformed request line")
        method, target, version = parts
        try:
            message = http.client.parse_headers(rfile)
        except http.client.HTTPException as exc:
            raise _BadRequestError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers too large") from exc
        headers = {name.lower(): value for name, value in message.items()}
        body = _read_body(rfile, conn, headers, expect_continue=version == "HTTP/1.1")
    except TimeoutError as exc:
        raise _BadRequestError(HTTPStatus.REQUEST_TIMEOUT, "request not received in time") from exc
    url = urlsplit(target)
    query = dict(parse_qsl(url.query, keep_blank_values=True))
    return Request(method=method, path=unquote(url.path) or "/", query=query, headers=headers, body=body)


def _read_body(
    rfile: BinaryIO, conn: socket.socket, headers: dict[str, str], *, expect_continue: bool
) -> bytes:
    encoding = headers.get("transfer-encoding", "").strip().lower()
    if encoding and encoding != "chunked":
        raise _BadRequestError(HTTPStatus.NOT_IMPLEMENTED, f"transfer-encoding {encoding} not supported")
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError as exc:
        raise _BadRequestError(HTTPStatus.BAD_REQUEST, "bad content-length") from exc
    if length < 0 or length > MAX_BODY:
        raise _BadRequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
    if not encoding and length == 0:
        return b""
    if expect_continue and headers.get("expect", "").lower() == "100-continue":
        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if encoding:
        return _read_chunked(rfile)
    return _read_exactly(rfile, length)


def _read_chunked(rfile: BinaryIO) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        size_line = rfile.readline(MAX_LINE + 1)
        try:
            size = int(size_line.split(b";", 1)[0].strip(), 16)
        except ValueError as exc:
            raise _BadRequestError(HTTPStatus.BAD_REQUEST, "bad chunk size") from exc
        if size == 0:
            break
        total += size
        if total > MAX_BODY:
            raise _BadRequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
        chunks.append(_read_exactly(rfile, size))
        rfile.readline(MAX_LINE + 1)  # the CRLF that ends the chunk
    while rfile.readline(MAX_LINE + 1) not in (b"\r\n", b"\n", b""):  # trailer fields: ignored
        pass
    return b"".join(chunks)


def _read_exactly(rfile: BinaryIO, size: int) -> bytes:
    data = rfile.read(size)
    if len(data) != size:
        raise _ClientGoneError("closed inside the body")
    return data


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


def _linger_close(conn: socket.socket) -> None:
    """Send FIN now, but close only after the client has closed too (or LINGER_SECONDS pass).

    Closing a socket with unread bytes in its receive buffer sends a reset, which can destroy the
    response before the client reads it (a rejected body, a pipelined request). Waiting for the
    client's FIN on a side thread avoids that without holding the worker's single slot.
    """
    try:
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        conn.close()
        return
    threading.Thread(target=_drain_then_close, args=(conn,), name="linger", daemon=True).start()


def _drain_then_close(conn: socket.socket) -> None:
    deadline = time.monotonic() + LINGER_SECONDS
    with conn, contextlib.suppress(OSError):
        while (left := deadline - time.monotonic()) > 0:
            conn.settimeout(left)
            if not conn.recv(65536):
                return
