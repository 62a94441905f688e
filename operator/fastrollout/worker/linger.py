"""Closing answered connections without resetting them, on one thread for all of them.

Closing a socket with unread bytes in its receive buffer sends a reset, which can destroy the response
before the client reads it (a rejected body, a pipelined request). So after the response the worker
sends FIN (``shutdown(SHUT_WR)``) and hands the socket here; it is closed when the client has closed
too, or after :data:`LINGER_SECONDS`. One thread and one selector serve every lingering socket, and at
most :data:`MAX_LINGERING` are kept (beyond that the oldest is closed at once): a flood of clients that
never close costs neither a thread each nor unbounded file descriptors.
"""

from __future__ import annotations

import collections
import contextlib
import selectors
import socket
import threading
import time

LINGER_SECONDS = 2.0
MAX_LINGERING = 256


class Linger:
    """Owns sockets whose response is sent, until their client closes or the linger time passes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._incoming: list[socket.socket] = []
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._thread: threading.Thread | None = None

    def close_later(self, conn: socket.socket) -> None:
        """Send FIN now; close once the client has closed too. Never blocks the caller."""
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            conn.close()
            return
        with self._lock:
            self._incoming.append(conn)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="linger", daemon=True)
                self._thread.start()
        with contextlib.suppress(OSError):
            self._wake_write.send(b"\0")

    def _run(self) -> None:
        lingering: collections.OrderedDict[socket.socket, float] = collections.OrderedDict()
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_read, selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                timeout = max(0.0, next(iter(lingering.values())) - now) if lingering else None
                for key, _ in selector.select(timeout):
                    if key.fileobj is self._wake_read:
                        with contextlib.suppress(OSError):
                            self._wake_read.recv(4096)
                        continue
                    conn = key.fileobj
                    assert isinstance(conn, socket.socket)
                    if not _drain(conn):
                        _close(selector, conn)
                        del lingering[conn]
                with self._lock:
                    incoming, self._incoming = self._incoming, []
                for conn in incoming:
                    try:
                        conn.setblocking(False)
                        selector.register(conn, selectors.EVENT_READ)
                    except (OSError, ValueError):
                        conn.close()
                    else:
                        lingering[conn] = time.monotonic() + LINGER_SECONDS
                now = time.monotonic()
                while lingering and (len(lingering) > MAX_LINGERING or next(iter(lingering.values())) <= now):
                    conn, _ = lingering.popitem(last=False)
                    _close(selector, conn)


def _drain(conn: socket.socket) -> bool:
    """Read and drop what the client sent; False once it has closed (or the socket failed)."""
    try:
        return bool(conn.recv(65536))
    except BlockingIOError:
        return True
    except OSError:
        return False


def _close(selector: selectors.BaseSelector, conn: socket.socket) -> None:
    with contextlib.suppress(KeyError, ValueError):
        selector.unregister(conn)
    conn.close()
