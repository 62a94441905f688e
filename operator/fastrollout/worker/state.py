"""The worker's observable state, and its Prometheus text rendering.

Written by the serving thread and the signal path, read by probe and scrape threads; one lock, tiny
critical sections. The text format is written by hand (it is a few lines) so the library needs only
the standard library and runs on a bare ``python3`` image.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

PREFIX = "fastrollout_worker"


@dataclass(frozen=True)
class Snapshot:
    """One consistent reading of :class:`WorkerState`."""

    version: str
    pod: str
    ready: bool
    """Serving and not draining: what ``/readyz`` reports."""
    draining: bool
    """A termination signal arrived; never goes back to False."""
    in_flight: int
    """Connections being served now: 0 or 1 on the worker port."""
    handled: Mapping[int, int]
    """Responses sent, by status code."""


class WorkerState:
    """Mutable, thread-safe state; hand out :class:`Snapshot` values to readers."""

    def __init__(self, *, version: str, pod: str) -> None:
        self._lock = threading.Lock()
        self._version = version
        self._pod = pod
        self._serving = False
        self._draining = False
        self._in_flight = 0
        self._handled: Counter[int] = Counter()

    def mark_serving(self) -> None:
        with self._lock:
            self._serving = True

    def begin_drain(self) -> None:
        with self._lock:
            self._draining = True

    @contextlib.contextmanager
    def request(self) -> Iterator[Callable[[int], None]]:
        """In flight from entry until the yielded ``responded(status)`` is called or the block ends.

        ``responded`` is called just before the response is written, so a client that has its
        answer already sees it counted. A block that ends without it (the client left) counts nothing.
        """
        done = False

        def finish(status: int | None) -> None:
            nonlocal done
            with self._lock:
                if not done:
                    done = True
                    self._in_flight -= 1
                    if status is not None:
                        self._handled[status] += 1

        with self._lock:
            self._in_flight += 1
        try:
            yield finish
        finally:
            finish(None)

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(
                version=self._version,
                pod=self._pod,
                ready=self._serving and not self._draining,
                draining=self._draining,
                in_flight=self._in_flight,
                handled=dict(self._handled),
            )


def render_metrics(snap: Snapshot) -> str:
    """Prometheus text exposition format 0.0.4."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {PREFIX}_{name} {help_text}")
        out.append(f"# TYPE {PREFIX}_{name} {kind}")
        out.extend(f"{PREFIX}_{name}{labels} {value:g}" for labels, value in samples)

    family("requests_in_flight", "gauge", "Requests being served now (at most 1).", [("", snap.in_flight)])
    family(
        "requests_total",
        "counter",
        "Responses sent, by HTTP status code.",
        [(_labels(code=str(code)), count) for code, count in sorted(snap.handled.items())],
    )
    family(
        "version_info",
        "gauge",
        "Always 1; labels name the worker's version and pod.",
        [(_labels(version=snap.version, pod=snap.pod), 1)],
    )
    family("draining", "gauge", "1 once a termination signal arrived.", [("", int(snap.draining))])
    family("ready", "gauge", "1 while /readyz answers 200.", [("", int(snap.ready))])
    return "\n".join(out) + "\n"


def _labels(**labels: str) -> str:
    body = ",".join(f'{key}="{_escape(value)}"' for key, value in labels.items())
    return "{" + body + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
