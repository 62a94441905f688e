"""Accept loops: serial for the worker's port, concurrent for the probe and metrics port.

One request at a time is enforced by *not accepting*: while the serving thread is busy, new
connections wait in the kernel's accept queue (the TCP handshake is already done there), so a client
sent here by kube-proxy waits instead of being refused or reset. Refusing would fail requests during
a rollout; queueing only delays them.

Stopping is equally careful. ``stop()`` ends accepting, but connections the kernel has already
completed are clients that reached us in good faith: closing the listening socket would reset them.
So the loop first serves every connection still queued, then closes. A connection that arrives
after that last check is refused; the preStop sleep exists so that none does.

Neither a failing ``accept()`` nor a failing connection ends the loop. ``accept()`` fails for reasons
that pass (EMFILE and ENFILE when descriptors run out, ENOBUFS and ENOMEM, the network errors Linux
reports on the new socket): the loop backs off from 10 ms doubling to 1 s, logs, and tries again.
Only errors that mean the listening socket itself is gone (EBADF, EINVAL, ENOTSOCK) end it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

BACKLOG = 1024
"""Queue depth (the kernel caps it at net.core.somaxconn). Beyond it, SYNs are dropped and clients
retransmit: slower, still not failed."""

MAX_CONCURRENT = 32
"""Connections served at once by a concurrent listener (the admin port: probes and scrapes). More wait
in the accept queue, as on the worker port; each is bounded by its own deadlines, so the wait is too."""
BACKOFF_FIRST, BACKOFF_MAX = 0.01, 1.0
_FATAL_ACCEPT_ERRORS = frozenset({errno.EBADF, errno.EINVAL, errno.ENOTSOCK})

ServeConnection = Callable[[socket.socket], object]
"""Serves one accepted connection and closes it; its return value is ignored."""


def bind(host: str | None, port: int) -> socket.socket:
    """Listen on ``host:port``; ``None`` means every address, IPv4 and IPv6 where the kernel has both."""
    if host is None:
        if socket.has_dualstack_ipv6():
            return socket.create_server(
                ("", port), family=socket.AF_INET6, dualstack_ipv6=True, backlog=BACKLOG
            )
        host = ""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=BACKLOG)


class Listener:
    """Runs ``serve`` on each accepted connection until :meth:`stop`, then drains the accept queue.

    ``concurrent=False`` serves inline, so the next connection is accepted only after the previous
    one is answered. ``concurrent=True`` gives each connection a thread, at most
    :data:`MAX_CONCURRENT` at once, for probes and scrapes that must never wait behind a request.
    """

    def __init__(self, sock: socket.socket, serve: ServeConnection, *, concurrent: bool = False) -> None:
        self._sock = sock
        self._serve = serve
        self._concurrent = concurrent
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT)
        self._failures = 0
        self._wake_read, self._wake_write = socket.socketpair()
        sock.setblocking(False)  # accept must return at once when the queue is empty

    @property
    def port(self) -> int:
        """The bound port (useful when asked for port 0)."""
        return int(self._sock.getsockname()[1])

    def run(self) -> None:
        """Serve until :meth:`stop`; then serve what is already queued and close the socket."""
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._sock, selectors.EVENT_READ)
                selector.register(self._wake_read, selectors.EVENT_READ)
                while not any(key.fileobj is self._wake_read for key, _ in selector.select()):
                    self._accept_one()
            while self._accept_one():
                pass
        finally:
            self._sock.close()
            self._wake_read.close()
            self._wake_write.close()

    def stop(self) -> None:
        """Ask :meth:`run` to stop accepting; safe from any thread, and more than once."""
        with contextlib.suppress(OSError):
            self._wake_write.send(b"\0")

    def _accept_one(self) -> bool:
        """Serve one queued connection; False when the queue is empty."""
        try:
            conn, _ = self._sock.accept()
        except BlockingIOError:
            return False
        except ConnectionAbortedError:  # the client gave up while queued
            return True
        except OSError as exc:
            if exc.errno in _FATAL_ACCEPT_ERRORS:
                raise
            self._back_off(exc)
            return True
        self._failures = 0
        conn.setblocking(True)
        if self._concurrent:
            self._slots.acquire()  # waits while MAX_CONCURRENT are served; their deadlines bound it
            threading.Thread(target=self._serve_and_release, args=(conn,), daemon=True).start()
        else:
            self._serve_guarded(conn)
        return True

    def _back_off(self, exc: OSError) -> None:
        delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2**self._failures)
        self._failures += 1
        if self._failures & (self._failures - 1) == 0:  # 1st, 2nd, 4th, 8th... failure in a row
            log.warning("accept failed (%s, %d in a row): retrying in %gs", exc, self._failures, delay)
        time.sleep(delay)

    def _serve_and_release(self, conn: socket.socket) -> None:
        try:
            self._serve_guarded(conn)
        finally:
            self._slots.release()

    def _serve_guarded(self, conn: socket.socket) -> None:
        """``serve`` never raises for a client's doing; should it ever, this connection alone is lost."""
        try:
            self._serve(conn)
        except Exception:
            log.exception("serving a connection failed; closing it and going on")
            conn.close()
