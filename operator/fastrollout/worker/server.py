"""``serve()``: run a handler as a drain-safe single-request worker.

This module only wires the parts together: the serial worker port, the concurrent admin port, the
signal handler, and the drain sequence in ``drain.py``.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading

from fastrollout.worker.connection import (
    DEFAULT_BODY_SECONDS,
    DEFAULT_HEADER_SECONDS,
    Limits,
    serve_connection,
)
from fastrollout.worker.drain import (
    DEFAULT_DRAIN_DEADLINE_SECONDS,
    EXIT_DEADLINE,
    STOP_SIGNALS,
    Events,
    Stopped,
    drain,
    run_listener,
    signals_blocked,
)
from fastrollout.worker.listener import Listener, bind
from fastrollout.worker.probes import probe_handler
from fastrollout.worker.protocol import Handler
from fastrollout.worker.state import WorkerState

__all__ = ["EXIT_DEADLINE", "serve"]

log = logging.getLogger(__name__)

PROBE_LIMITS = Limits(header_seconds=2.0, body_seconds=2.0, max_body=64 * 1024)
"""Probes and scrapes send their request at once; a client that does not is dropped quickly."""


def serve(
    handler: Handler,
    *,
    version: str,
    port: int = 8080,
    metrics_port: int = 9090,
    host: str | None = None,
    pod: str | None = None,
    drain_delay: float | None = None,
    drain_deadline: float | None = None,
    header_timeout: float | None = None,
    body_timeout: float | None = None,
) -> None:
    """Serve ``handler`` one request at a time until SIGTERM or SIGINT, then drain and return.

    Must be called from the main thread (Python delivers signals there). ``host`` None listens on all
    addresses; port 0 picks a free port (the log line ``worker listening`` names it). ``pod`` defaults
    to ``$POD_NAME``, then the hostname. ``drain_delay`` defaults to ``$WORKER_DRAIN_DELAY_SECONDS``
    (else 0); ``drain_deadline`` to ``$WORKER_DRAIN_DEADLINE_SECONDS``, else ``$FASTROLLOUT_DRAIN_SECONDS``
    (what the operator computes from the pod's grace period, see ``drain.py``), else 590.
    ``header_timeout`` and ``body_timeout`` bound how long one client may take to send its request
    (``$WORKER_HEADER_TIMEOUT_SECONDS``, else 10; ``$WORKER_BODY_TIMEOUT_SECONDS``, else 60; see
    ``connection.py``). Returns after a clean drain; exits the process with :data:`EXIT_DEADLINE` past
    the deadline.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("serve() must run in the main thread: it handles SIGTERM")
    delay = _seconds(drain_delay, "WORKER_DRAIN_DELAY_SECONDS", 0.0)
    deadline = _seconds(
        drain_deadline,
        "WORKER_DRAIN_DEADLINE_SECONDS",
        _seconds(None, "FASTROLLOUT_DRAIN_SECONDS", DEFAULT_DRAIN_DEADLINE_SECONDS),
    )
    limits = Limits(
        header_seconds=_seconds(header_timeout, "WORKER_HEADER_TIMEOUT_SECONDS", DEFAULT_HEADER_SECONDS),
        body_seconds=_seconds(body_timeout, "WORKER_BODY_TIMEOUT_SECONDS", DEFAULT_BODY_SECONDS),
    )
    if min(limits.header_seconds, limits.body_seconds) <= 0:
        raise ValueError("header and body timeouts must be positive")
    if delay >= deadline:
        raise ValueError(f"drain delay {delay}s must be shorter than the drain deadline {deadline}s")
    pod = pod or os.environ.get("POD_NAME") or socket.gethostname()
    state = WorkerState(version=version, pod=pod)
    # SimpleQueue.put is reentrant, so the signal handler can use it safely; the main thread then
    # waits on one queue for "a signal came" and "the serving thread ended".
    events: Events = queue.SimpleQueue()
    previous = {sig: signal.signal(sig, lambda signum, _frame: events.put(signum)) for sig in STOP_SIGNALS}
    try:
        probes = probe_handler(state)
        admin = Listener(
            bind(host, metrics_port),
            lambda conn: serve_connection(conn, probes, PROBE_LIMITS),
            concurrent=True,
        )
        worker = Listener(bind(host, port), lambda conn: _serve_counted(conn, handler, state, limits))
        with signals_blocked():
            threading.Thread(target=admin.run, name="probes", daemon=True).start()
            threading.Thread(target=run_listener, args=(worker, events), name="worker", daemon=True).start()
        try:
            state.mark_serving()
            log.info(
                "worker listening port=%d metrics_port=%d version=%s pod=%s",
                worker.port,
                admin.port,
                version,
                pod,
            )
            match events.get():
                case Stopped(error=error):
                    raise RuntimeError("the serving loop ended on its own") from error
                case signum:
                    drain(events, state=state, worker=worker, signum=signum, delay=delay, deadline=deadline)
        finally:
            admin.stop()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _serve_counted(conn: socket.socket, handler: Handler, state: WorkerState, limits: Limits) -> None:
    with state.request() as responded:
        serve_connection(conn, handler, limits, on_response=responded)


def _seconds(value: float | None, env: str, default: float) -> float:
    if value is not None:
        return value
    raw = os.environ.get(env, "")
    try:
        return float(raw) if raw else default
    except ValueError as exc:
        raise ValueError(f"{env}={raw!r} is not a number of seconds") from exc
