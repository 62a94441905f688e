"""A load generator for end-to-end tests: N client threads sending requests to one address, continuously.

Each request is one TCP connection (the reference worker answers with ``Connection: close``), made with
a plain socket so every way a request can fail is told apart and recorded:

    connect-refused, connect-timeout, connect-error   the connection could not be made
    reset                                             the peer reset the connection (RST)
    timeout                                           no complete answer within the timeout
    eof                                               the connection closed before a complete response
    bad-response                                      a response that is not HTTP, or whose body does not
                                                      name exactly one version and one pod
    http-5xx / http-4xx                               an HTTP error status

Every request records its start (before ``connect``), connection and end times in wall-clock seconds
(``time.time()``, comparable with watch timestamps taken on the same host), the status or error, and the
version and pod named by the response. The run is bounded: it stops by itself after ``max_seconds`` or
``max_requests``, whichever comes first, or when :meth:`LoadGenerator.stop` is called.

    load = LoadGenerator("10.96.0.12", 80, clients=12, max_seconds=300).start()
    ...
    results = load.stop()

``python -m tests.e2e.load 10.96.0.12 --seconds 10`` (or ``python tests/e2e/load.py ...``) runs it by hand
and prints a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable

READ_CHUNK = 65536


@dataclasses.dataclass(frozen=True)
class Result:
    """One request, as the client saw it."""

    client: int
    path: str
    start: float  # wall clock, before connect()
    connected: float | None  # wall clock, connect() returned (None: it failed)
    end: float  # wall clock, response complete or error
    status: int | None = None  # HTTP status, when a status line arrived
    error: str | None = None  # None for a well-formed HTTP response (any status)
    detail: str = ""
    version: str | None = None
    pod: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer that names one version and one pod."""
        return self.error is None and self.status is not None and 200 <= self.status < 300

    @property
    def failure(self) -> str | None:
        """Why this request counts as failed (None if it did not): the error, or ``http-<status>``."""
        if self.error is not None:
            return self.error
        if self.status is None or not 200 <= self.status < 300:
            return f"http-{self.status}"
        return None

    @property
    def duration(self) -> float:
        return self.end - self.start


def request(host: str, port: int, path: str = "/", timeout: float = 60.0, client: int = -1) -> Result:
    """Send one ``GET path`` on a fresh connection and classify what happens."""
    start = time.time()
    connected: float | None = None
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError as exc:
        return Result(client, path, start, None, time.time(), error="connect-refused", detail=str(exc))
    except TimeoutError as exc:
        return Result(client, path, start, None, time.time(), error="connect-timeout", detail=str(exc))
    except OSError as exc:
        return Result(client, path, start, None, time.time(), error="connect-error", detail=repr(exc))
    connected = time.time()
    deadline = start + timeout
    chunks: list[bytes] = []
    try:
        with sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            while True:
                # A timeout of ~0 makes recv raise TimeoutError at once: the deadline has passed.
                sock.settimeout(max(deadline - time.time(), 1e-6))
                chunk = sock.recv(READ_CHUNK)
                if not chunk:
                    break
                chunks.append(chunk)
    except ConnectionResetError as exc:
        return Result(client, path, start, connected, time.time(), error="reset", detail=str(exc))
    except TimeoutError as exc:
        return Result(client, path, start, connected, time.time(), error="timeout", detail=str(exc))
    except OSError as exc:
        return Result(client, path, start, connected, time.time(), error="io-error", detail=repr(exc))
    end = time.time()
    return _parse(client, path, start, connected, end, b"".join(chunks))


def _parse(client: int, path: str, start: float, connected: float, end: float, raw: bytes) -> Result:
    def bad(error: str, detail: str, status: int | None = None) -> Result:
        return Result(client, path, start, connected, end, status=status, error=error, detail=detail[:300])

    if not raw:
        return bad("eof", "connection closed without a response")
    head, sep, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return bad("bad-response", f"status line {lines[0]!r}")
    status = int(parts[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:]) if k}
    if not sep:
        return bad("eof", "connection closed inside the headers", status)
    length = headers.get("content-length")
    if length is not None and length.isdigit() and len(body) < int(length):
        return bad("eof", f"body truncated: {len(body)} of {length} bytes", status)
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    version = payload.get("version") if isinstance(payload, dict) else None
    pod = payload.get("pod") if isinstance(payload, dict) else None
    if status >= 500:
        return Result(
            client,
            path,
            start,
            connected,
            end,
            status,
            "http-5xx",
            body[:200].decode("latin-1"),
            version,
            pod,
        )
    if 200 <= status < 300 and (not isinstance(version, str) or not version or not isinstance(pod, str)):
        # "Every response names exactly one version": one JSON string field, nothing else.
        return bad("bad-response", f"body does not name one version and pod: {body[:200]!r}", status)
    return Result(client, path, start, connected, end, status, None, "", version, pod)


class LoadGenerator:
    """``clients`` threads, each sending requests back to back (optionally ``pause`` seconds apart)."""

    def __init__(
        self,
        host: str,
        port: int = 80,
        *,
        clients: int = 8,
        path: str = "/",
        timeout: float = 60.0,
        pause: float = 0.0,
        max_seconds: float = 600.0,
        max_requests: int = 1_000_000,
    ) -> None:
        self.host, self.port, self.clients, self.path = host, port, clients, path
        self.timeout, self.pause = timeout, pause
        self.max_seconds, self.max_requests = max_seconds, max_requests
        self._results: list[Result] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.started_at: float | None = None
        self.stopped_at: float | None = None

    def start(self) -> LoadGenerator:
        self.started_at = time.time()
        deadline = time.monotonic() + self.max_seconds
        for i in range(self.clients):
            t = threading.Thread(target=self._run, args=(i, deadline), name=f"load-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _run(self, client: int, deadline: float) -> None:
        while not self._stop.is_set() and time.monotonic() < deadline:
            with self._lock:
                if len(self._results) >= self.max_requests:
                    return
            result = request(self.host, self.port, self.path, self.timeout, client)
            with self._lock:
                self._results.append(result)
            if self.pause:
                self._stop.wait(self.pause)

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def snapshot(self) -> list[Result]:
        """Results so far (a copy), while it runs."""
        with self._lock:
            return list(self._results)

    def stop(self, join_timeout: float | None = None) -> list[Result]:
        """Ask every client to stop after its current request, wait for them, return every result.

        Requests in flight are completed (or time out), never abandoned: an abandoned slow request
        would hide exactly the failures the tests look for.
        """
        self._stop.set()
        limit = self.timeout + 5 if join_timeout is None else join_timeout
        until = time.monotonic() + limit
        for t in self._threads:
            t.join(max(0.0, until - time.monotonic()))
        self.stopped_at = time.time()
        with self._lock:
            return sorted(self._results, key=lambda r: r.start)


def summarize(results: Iterable[Result]) -> dict[str, object]:
    """Counts for a report: sent, ok, failed by kind, by version, by status."""
    results = list(results)
    failures = Counter(r.failure for r in results if r.failure)
    versions = Counter(r.version for r in results if r.ok)
    span = (max(r.end for r in results) - min(r.start for r in results)) if results else 0.0
    return {
        "sent": len(results),
        "ok": sum(r.ok for r in results),
        "failed": sum(failures.values()),
        "failures": dict(failures),
        "versions": dict(versions),
        "pods": len({r.pod for r in results if r.ok}),
        "seconds": round(span, 2),
        "per_second": round(len(results) / span, 1) if span else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("host")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--path", default="/")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--requests", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    load = LoadGenerator(
        args.host,
        args.port,
        clients=args.clients,
        path=args.path,
        max_seconds=args.seconds,
        max_requests=args.requests,
    ).start()
    with contextlib.suppress(KeyboardInterrupt):
        while load.running:
            time.sleep(0.2)
    results = load.stop()
    print(json.dumps(summarize(results), indent=2))
    for r in results:
        if r.failure:
            print(f"FAILED {r.failure} at {r.start:.3f}: {r.detail}")
    return 1 if any(r.failure for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
