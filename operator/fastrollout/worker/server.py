"""``serve()``: run a handler as a drain-safe single-request worker.

Termination, in the order Kubernetes drives it:

1. The pod is deleted: its endpoint turns not-ready and the kubelet runs the preStop sleep while
   kube-proxies everywhere drop it from their rules. Nothing happens in the worker yet.
2. SIGTERM: ``/readyz`` answers 503 at once (``serving=false`` in the EndpointSlice).
3. After ``drain_delay`` (default 0: the preStop sleep already covered propagation) the worker
   stops accepting, serves what is already queued and the request in flight, and ``serve()``
   returns, so the process exits 0.
4. If that takes longer than ``drain_deadline`` after SIGTERM, the process exits
   :data:`EXIT_DEADLINE` itself, before the kubelet's SIGKILL, so the cause is on record.

Default deadline, worked for the operator's defaults (grace 600 s, preStop sleep 5 s):
    time left after SIGTERM = 600 - 5 = 595 s
    deadline                = 595 - 5 (margin to log and exit) = 590 s
Set ``WORKER_DRAIN_DEADLINE_SECONDS`` when the pod's grace period or preStop differ.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from fastrollout.worker.connection import serve_connection
from fastrollout.worker.listener import Listener, bind
from fastrollout.worker.probes import probe_handler
from fastrollout.worker.protocol import Handler
from fastrollout.worker.state import WorkerState

log = logging.getLogger(__name__)

EXIT_DEADLINE = 124
"""Exit code when the drain deadline passes with work unfinished (``timeout(1)`` uses 124 too)."""
DEFAULT_DRAIN_DEADLINE_SECONDS = 590.0
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True)
class _Stopped:
    """The serving thread ended; ``error`` says why if it was not asked to."""

    error: Exception | None


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
    read_timeout: float = 30.0,
) -> None:
    """Serve ``handler`` one request at a time until SIGTERM or SIGINT, then drain and return.

    Must be called from the main thread (Python delivers signals there). ``host`` None listens on all
    addresses; port 0 picks a free port (the log line ``worker listening`` names it). ``pod`` defaults
    to ``$POD_NAME``, then the hostname. ``drain_delay`` and ``drain_deadline`` default to
    ``$WORKER_DRAIN_DELAY_SECONDS`` (else 0) and ``$WORKER_DRAIN_DEADLINE_SECONDS`` (else 590).
    Returns after a clean drain; exits the process with :data:`EXIT_DEADLINE` past the deadline.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("serve() must run in the main thread: it handles SIGTERM")
    delay = _seconds(drain_delay, "WORKER_DRAIN_DELAY_SECONDS", 0.0)
    deadline = _seconds(drain_deadline, "WORKER_DRAIN_DEADLINE_SECONDS", DEFAULT_DRAIN_DEADLINE_SECONDS)
    if delay >= deadline:
        raise ValueError(f"drain delay {delay}s must be shorter than the drain deadline {deadline}s")
    state = WorkerState(version=version, pod=pod or os.environ.get("POD_NAME") or socket.gethostname())
    # SimpleQueue.put is reentrant, so the signal handler can use it safely; the main thread then
    # waits on one queue for "a signal came" and "the serving thread ended".
    events: queue.SimpleQueue[int | _Stopped] = queue.SimpleQueue()
    previous = {sig: signal.signal(sig, lambda signum, _frame: events.put(signum)) for sig in _STOP_SIGNALS}
    try:
        probes = probe_handler(state)
        admin = Listener(
            bind(host, metrics_port), lambda c: serve_connection(c, probes, 5.0), concurrent=True
        )
        worker = Listener(bind(host, port), lambda conn: _serve_counted(conn, handler, state, read_timeout))
        with _signals_blocked():
            threading.Thread(target=admin.run, name="probes", daemon=True).start()
            threading.Thread(target=_run, args=(worker, events), name="worker", daemon=True).start()
        try:
            state.mark_serving()
            log.info(
                "worker listening port=%d metrics_port=%d version=%s pod=%s",
                worker.port,
                admin.port,
                version,
                state.snapshot().pod,
            )
            match events.get():
                case _Stopped(error=error):
                    raise RuntimeError("the serving loop ended on its own") from error
                case signum:
                    _drain(events, state=state, worker=worker, signum=signum, delay=delay, deadline=deadline)
        finally:
            admin.stop()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _serve_counted(conn: socket.socket, handler: Handler, state: WorkerState, read_timeout: float) -> None:
    with state.request() as responded:
        serve_connection(conn, handler, read_timeout, on_response=responded)


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """Threads started inside inherit a signal mask without SIGTERM and SIGINT.

    The kernel delivers a process signal to any thread that does not block it. If that is not the
    main thread while the main thread sleeps in a lock wait, Python notes the signal but nothing
    wakes the main thread to run the handler. With every other thread blocking them, the signals
    reach the main thread and interrupt its wait at once.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _run(listener: Listener, events: queue.SimpleQueue[int | _Stopped]) -> None:
    try:
        listener.run()
    except Exception as exc:
        log.exception("serving loop failed")
        events.put(_Stopped(exc))
    else:
        events.put(_Stopped(None))


def _drain(
    events: queue.SimpleQueue[int | _Stopped],
    *,
    state: WorkerState,
    worker: Listener,
    signum: int,
    delay: float,
    deadline: float,
) -> None:
    started = time.monotonic()
    state.begin_drain()
    log.info(
        "%s: not ready; stop accepting in %gs, deadline %gs", signal.Signals(signum).name, delay, deadline
    )
    stopped = _wait_stopped(events, delay)
    if stopped is None:
        worker.stop()
        log.info("stopped accepting; finishing queued and in-flight requests")
        stopped = _wait_stopped(events, started + deadline - time.monotonic())
    if stopped is None:
        log.error(
            "drain deadline of %gs passed with a request unfinished: exiting %d", deadline, EXIT_DEADLINE
        )
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_DEADLINE)  # the serving thread is inside the handler and cannot be joined
    if stopped.error is not None:
        raise RuntimeError("the serving loop failed while draining") from stopped.error
    log.info("drained in %.3fs", time.monotonic() - started)


def _wait_stopped(events: queue.SimpleQueue[int | _Stopped], timeout: float) -> _Stopped | None:
    """Wait up to ``timeout`` for the serving thread to end; further signals are only logged."""
    until = time.monotonic() + timeout
    while (left := until - time.monotonic()) > 0:
        try:
            event = events.get(timeout=left)
        except queue.Empty:
            return None
        if isinstance(event, _Stopped):
            return event
        log.info("%s: already draining", signal.Signals(event).name)
    return None


def _seconds(value: float | None, env: str, default: float) -> float:
    if value is not None:
        return value
    raw = os.environ.get(env, "")
    try:
        return float(raw) if raw else default
    except ValueError as exc:
        raise ValueError(f"{env}={raw!r} is not a number of seconds") from exc
