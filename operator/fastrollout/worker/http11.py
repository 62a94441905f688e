"""A strict reader of one HTTP/1.1 request (RFC 9112), standard library only, I/O left to the caller.

The grammar is h11's (the same regular expressions for the request line, header fields and chunk
headers, the same Content-Length and Transfer-Encoding rules), and ``tests/unit/test_worker_fuzz.py``
holds the two to agreement on generated input: whatever h11 refuses, this refuses. It is written out
here rather than imported because the worker library, and the worker image built from it, use the
standard library only. Where RFC 9112 lets a server choose, this reader is stricter than h11 and
answers 400: obsolete line folding (RFC 9112 5.2), ``Content-Length`` together with
``Transfer-Encoding`` (6.3, a request-smuggling vector), and versions other than 1.0 and 1.1 (505).

Everything is bounded: the request line and headers by :data:`MAX_HEAD` (431), the body by
``max_body`` whatever its framing (413), a chunk header or trailer line by :data:`MAX_HEAD` too.
Time is the caller's business: ``recv`` may raise :class:`TimeoutError` when a deadline passes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus

MAX_HEAD = 64 * 1024
"""Request line plus headers, in bytes (h11's default is 16 KiB; this matches the old worker's line)."""
MAX_BODY = 64 * 1024 * 1024
MAX_LENGTH_DIGITS = 20  # len(str(2**64)), as h11

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9]\.[0-9])")
_FIELD = re.compile(rb"(" + _TOKEN + rb"):[ \t]*((?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?)[ \t]*")
_CHUNK_HEADER = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;.*)?[ \t]*")
_BLANK_LINE = re.compile(rb"\n\r?\n")
_DIGITS = re.compile(rb"[0-9]+")
_VERSIONS = ("1.0", "1.1")

Recv = Callable[[], bytes]
"""Returns the next bytes from the client, ``b""`` at end of stream; may raise ``TimeoutError``."""


class BadRequestError(Exception):
    """The request breaks the protocol or a limit: answer ``status`` and close."""

    def __init__(self, status: HTTPStatus, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class ClientGoneError(Exception):
    """The client closed before sending a whole request: there is no one to answer."""


@dataclass(frozen=True)
class Head:
    """A request line and its headers, validated, and how long the body is."""

    method: str
    target: str
    version: str
    headers: dict[str, str]
    """Lower-cased names; repeated fields joined with ", " (RFC 9110 5.3)."""
    length: int | None
    """Body length in bytes, or None for a chunked body."""
    expects_continue: bool
    """An HTTP/1.1 client waits for ``100 Continue`` before it sends its body."""


class RequestReader:
    """Reads one request through ``recv``; bytes after it (a pipelined request) are left unread."""

    def __init__(self, recv: Recv, *, max_body: int = MAX_BODY) -> None:
        self._recv = recv
        self._max_body = max_body
        self._buf = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes received and not yet consumed."""
        return len(self._buf)

    def head(self) -> Head:
        searched = 0
        while (match := _BLANK_LINE.search(self._buf, searched)) is None:
            if self._buf and self._buf[0] < 0x21:  # an empty line, or TLS (0x16): refuse without waiting
                raise BadRequestError(HTTPStatus.BAD_REQUEST, "illegal request line")
            if len(self._buf) > MAX_HEAD:
                raise BadRequestError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large")
            searched = max(0, len(self._buf) - 2)
            self._fill(before_request=not self._buf)
        end = match.end()
        if end > MAX_HEAD:
            raise BadRequestError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "request head too large")
        lines = [line.removesuffix(b"\r") for line in bytes(self._buf[:end]).split(b"\n")[:-2]]
        del self._buf[:end]
        return _parse_head(lines)

    def body(self, head: Head) -> bytes:
        if head.length is None:
            return self._chunked()
        if head.length > self._max_body:
            raise BadRequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
        return self._exactly(head.length)

    def _chunked(self) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self._crlf_line()
            if (match := _CHUNK_HEADER.fullmatch(line)) is None:
                raise BadRequestError(HTTPStatus.BAD_REQUEST, "illegal chunk header")
            size = int(match[1], 16)
            if size == 0:
                break
            total += size
            if total > self._max_body:
                raise BadRequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
            chunks.append(self._exactly(size))
            if self._exactly(2) != b"\r\n":
                raise BadRequestError(HTTPStatus.BAD_REQUEST, "chunk not followed by CRLF")
        self._trailer()
        return b"".join(chunks)

    def _trailer(self) -> None:
        """Trailer fields are checked like headers, then dropped (RFC 9110 6.5: a server may discard them)."""
        searched = 0
        while True:
            for empty in (b"\n", b"\r\n"):
                if self._buf.startswith(empty):
                    del self._buf[: len(empty)]
                    return
            if (match := _BLANK_LINE.search(self._buf, searched)) is not None:
                break
            if len(self._buf) > MAX_HEAD:
                raise BadRequestError(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "trailer too large")
            searched = max(0, len(self._buf) - 2)
            self._fill()
        lines = [line.removesuffix(b"\r") for line in bytes(self._buf[: match.end()]).split(b"\n")[:-2]]
        del self._buf[: match.end()]
        _fields(lines)

    def _crlf_line(self) -> bytes:
        searched = 0
        while (end := self._buf.find(b"\r\n", searched)) < 0:
            if len(self._buf) > MAX_HEAD:
                raise BadRequestError(HTTPStatus.BAD_REQUEST, "chunk header too long")
            searched = max(0, len(self._buf) - 1)
            self._fill()
        line = bytes(self._buf[:end])
        del self._buf[: end + 2]
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self._buf) < size:
            self._fill()
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return data

    def _fill(self, *, before_request: bool = False) -> None:
        data = self._recv()
        if not data:
            raise ClientGoneError("closed before a request" if before_request else "closed mid-request")
        self._buf += data


def _parse_head(lines: list[bytes]) -> Head:
    if (match := _REQUEST_LINE.fullmatch(lines[0])) is None:
        raise BadRequestError(HTTPStatus.BAD_REQUEST, "illegal request line")
    method, target, version = (part.decode("ascii") for part in match.groups())
    if version not in _VERSIONS:
        raise BadRequestError(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"HTTP/{version} not supported")
    fields = _fields(lines[1:])
    hosts = [value for name, value in fields if name == "host"]
    if len(hosts) > 1 or (version == "1.1" and not hosts):
        raise BadRequestError(HTTPStatus.BAD_REQUEST, "HTTP/1.1 needs exactly one Host header")
    headers: dict[str, str] = {}
    for name, value in fields:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    length = _framing(fields)
    expects_continue = (
        version == "1.1" and headers.get("expect", "").lower() == "100-continue" and length != 0
    )
    return Head(method, target, version, headers, length, expects_continue)


def _fields(lines: list[bytes]) -> list[tuple[str, str]]:
    fields = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            raise BadRequestError(HTTPStatus.BAD_REQUEST, "obsolete line folding")
        if (match := _FIELD.fullmatch(line)) is None:
            raise BadRequestError(HTTPStatus.BAD_REQUEST, "illegal header line")
        fields.append((match[1].decode("ascii").lower(), match[2].decode("latin-1")))
    return fields


def _framing(fields: list[tuple[str, str]]) -> int | None:
    """Body length from Content-Length, None for chunked; h11's rules plus "not both" (RFC 9112 6.3)."""
    encodings = [value for name, value in fields if name == "transfer-encoding"]
    lengths = {
        part.strip(" \t") for name, value in fields if name == "content-length" for part in value.split(",")
    }
    if encodings:
        if len(encodings) > 1 or encodings[0].lower() != "chunked":
            raise BadRequestError(HTTPStatus.NOT_IMPLEMENTED, "only Transfer-Encoding: chunked is supported")
        if lengths:
            raise BadRequestError(HTTPStatus.BAD_REQUEST, "both Content-Length and Transfer-Encoding")
        return None
    if not lengths:
        return 0
    if len(lengths) > 1:
        raise BadRequestError(HTTPStatus.BAD_REQUEST, "conflicting Content-Length values")
    (raw,) = lengths
    if not _DIGITS.fullmatch(raw.encode("latin-1")) or len(raw) > MAX_LENGTH_DIGITS:
        raise BadRequestError(HTTPStatus.BAD_REQUEST, "bad Content-Length")
    return int(raw)
