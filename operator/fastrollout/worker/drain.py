"""What a worker does between SIGTERM and exit.

Termination, in the order Kubernetes drives it:

1. The pod is deleted: its endpoint turns not-ready and the kubelet runs the preStop sleep while
   kube-proxies everywhere drop it from their rules. Nothing happens in the worker yet.
2. SIGTERM: ``/readyz`` answers 503 at once (``serving=false`` in the EndpointSlice).
3. After the drain delay (default 0: the preStop sleep already covered propagation) the worker
   stops accepting, serves what is already queued and the request in flight, and ``serve()``
   returns, so the process exits 0.
4. If that takes longer than the drain deadline after SIGTERM, the process exits
   :data:`EXIT_DEADLINE` itself, before the kubelet's SIGKILL, so the cause is on record.

The deadline follows the pod. Where fastrollout injects the preStop sleep it also injects
``FASTROLLOUT_DRAIN_SECONDS``, the time left after SIGTERM less a margin to log and exit
(``plan/revision.py``); an explicit ``WORKER_DRAIN_DEADLINE_SECONDS`` wins over it, and without
either the default is worked for the operator's defaults (grace 600 s, preStop sleep 5 s):
    time left after SIGTERM = 600 - 5 = 595 s
    deadline                = 595 - 5 (margin to log and exit) = 590 s
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from fastrollout.worker.listener import Listener
from fastrollout.worker.state import WorkerState

log = logging.getLogger(__name__)

EXIT_DEADLINE = 124
"""Exit code when the drain deadline passes with work unfinished (``timeout(1)`` uses 124 too)."""
DEFAULT_DRAIN_DEADLINE_SECONDS = 590.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(frozen=True)
class Stopped:
    """The serving thread ended; ``error`` says why if it was not asked to."""

    error: Exception | None


Events = queue.SimpleQueue[int | Stopped]
"""Signal numbers from the handler, and the serving thread's end."""


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Threads started inside inherit a signal mask without SIGTERM and SIGINT.

    The kernel delivers a process signal to any thread that does not block it. If that is not the
    main thread while the main thread sleeps in a lock wait, Python notes the signal but nothing
    wakes the main thread to run the handler. With every other thread blocking them, the signals
    reach the main thread and interrupt its wait at once.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def run_listener(listener: Listener, events: Events) -> None:
    try:
        listener.run()
    except Exception as exc:
        log.exception("serving loop failed")
        events.put(Stopped(exc))
    else:
        events.put(Stopped(None))


def drain(
    events: Events,
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


def _wait_stopped(events: Events, timeout: float) -> Stopped | None:
    """Wait up to ``timeout`` for the serving thread to end; further signals are only logged."""
    until = time.monotonic() + timeout
    while (left := until - time.monotonic()) > 0:
        try:
            event = events.get(timeout=left)
        except queue.Empty:
            return None
        if isinstance(event, Stopped):
            return event
        log.info("%s: already draining", signal.Signals(event).name)
    return None
