"""Record what the API shows, with this host's clock: a list+watch per kind in a background thread.

Each event is kept as ``(t, type, object)``: ``t`` is ``time.time()`` when the event arrived here, so it
compares directly with the load generator's request times (same host, same clock). The analysis is done
afterwards on the recorded events (:mod:`analysis`), never while the test runs, except for the small
``latest()`` view the scenario uses to decide when to act.

The watch is re-opened every few seconds (server-side ``timeoutSeconds``) from the last resourceVersion,
which also bounds how long :meth:`Recorder.stop` waits; a 410 Gone re-lists.

A recording is only evidence if the watch never broke: a failed watch request or a broken stream delays
every event behind it (their timestamps are late), and a re-list after 410 Gone loses the transitions in
between when anything changed meanwhile (an endpoint's ready -> not-ready shows up at the re-list time,
if at all). Each such gap is kept in :attr:`Recorder.errors`, and :func:`assert_intact` fails a test whose
conclusions rest on it.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

WATCH_WINDOW_S = 5


@dataclasses.dataclass(frozen=True)
class Event:
    t: float
    type: str  # ADDED, MODIFIED, DELETED (list results are recorded as ADDED)
    obj: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])


@dataclasses.dataclass(frozen=True)
class Gap:
    """A moment the recording may have missed or delayed events: a failed or broken watch, a re-list."""

    t: float  # time.time() when it happened
    what: str

    def __str__(self) -> str:
        return f"at {self.t:.3f}: {self.what}"


def api_client(kubeconfig: str) -> client.ApiClient:
    return config.new_client_from_config(config_file=kubeconfig)


class Recorder:
    """``Recorder(api.list_namespaced_pod, namespace=ns, label_selector=...)``: every event, timestamped."""

    def __init__(self, name: str, list_fn: Callable[..., Any], **kwargs: Any) -> None:
        self.name = name
        self._list_fn = list_fn
        self._kwargs = kwargs
        self._events: list[Event] = []
        self._state: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"recorder-{name}", daemon=True)
        self.errors: list[Gap] = []  # every gap in the recording (after the initial list), oldest first
        self._start_errors: list[Gap] = []  # failures before the initial list: nothing recorded to lose

    def start(self, timeout: float = 30) -> Recorder:
        self._thread.start()
        if not self._synced.wait(timeout):
            raise TimeoutError(
                f"recorder {self.name}: no initial list within {timeout}s: {[str(e) for e in self._start_errors[-3:]]}"
            )
        return self

    def stop(self) -> list[Event]:
        self._stop.set()
        self._thread.join(WATCH_WINDOW_S + 10)
        if self._thread.is_alive():
            self._error(f"the watch thread did not stop within {WATCH_WINDOW_S + 10}s")
        return self.events()

    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def latest(self) -> dict[str, dict[str, Any]]:
        """The current objects by name, as last seen."""
        with self._lock:
            return dict(self._state)

    def _error(self, what: str) -> None:
        (self.errors if self._synced.is_set() else self._start_errors).append(Gap(time.time(), what))

    def _record(self, etype: str, obj: dict[str, Any]) -> None:
        event = Event(time.time(), etype, obj)
        with self._lock:
            self._events.append(event)
            if etype == "DELETED":
                self._state.pop(event.name, None)
            else:
                self._state[event.name] = obj

    def _list(self) -> str:
        """List; record every object that differs from what was last seen; return the resourceVersion.

        After a 410 Gone, an object that differs changed while nothing watched: its event is recorded
        late and the states in between are lost, a gap. If every object is as last seen, nothing was
        missed (a CRD update, for one, restarts the apiserver's watch cache and answers 410 to a
        quiet watch whose object never changed).
        """
        raw = self._list_fn(**self._kwargs, _preload_content=False, _request_timeout=30)
        body = json.loads(raw.data)
        seen = self.latest()
        changed = []
        for item in body.get("items", []):
            before = seen.pop(item["metadata"]["name"], None)
            if before is None or before["metadata"].get("resourceVersion") != item["metadata"].get(
                "resourceVersion"
            ):
                changed.append(item["metadata"]["name"])
                self._record("ADDED" if before is None else "MODIFIED", item)
        for name, obj in seen.items():  # went away while we were not watching
            changed.append(name)
            self._record("DELETED", obj)
        if changed and self._synced.is_set():
            self._error(
                f"re-listed after 410 Gone: {len(changed)} object(s) changed while unwatched (recorded "
                f"late, states in between lost): {sorted(changed)[:5]}"
            )
        self._synced.set()
        return str(body["metadata"]["resourceVersion"])

    def _run(self) -> None:
        rv: str | None = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    rv = self._list()
                w = watch.Watch()
                for ev in w.stream(
                    self._list_fn,
                    **self._kwargs,
                    resource_version=rv,
                    timeout_seconds=WATCH_WINDOW_S,
                    allow_watch_bookmarks=True,
                    _request_timeout=WATCH_WINDOW_S + 30,
                ):
                    raw = ev["raw_object"]
                    new_rv = raw.get("metadata", {}).get("resourceVersion")
                    if new_rv:
                        rv = new_rv
                    if ev["type"] != "BOOKMARK":
                        self._record(ev["type"], raw)
                    if self._stop.is_set():
                        break
            except ApiException as exc:
                # The watch library turns an ERROR event into an ApiException. 410: our resourceVersion
                # is too old to resume from; the re-list tells whether anything was missed.
                if exc.status == 410:
                    rv = None
                else:
                    self._error(f"{type(exc).__name__}: {exc.status} {exc.reason}")
                    time.sleep(0.5)
            except Exception as exc:  # a broken stream: note it, re-open from the last resourceVersion
                self._error(f"{type(exc).__name__}: {exc}")
                time.sleep(0.5)


def assert_intact(recorders: Iterable[Recorder]) -> None:
    """Fail, naming every gap, unless each recorder watched without a break.

    Everything the e2e tests conclude (propagation lag, capacity, which version answered after
    TrafficStopped) is read off these recordings; a broken watch makes those conclusions unfounded,
    in either direction, so a gap fails the run instead of being left in ``errors``.
    """
    broken = [r for r in recorders if r.errors]
    if broken:
        lines = [f"  {r.name}: {len(r.errors)} gap(s): {[str(e) for e in r.errors[:3]]}" for r in broken]
        raise AssertionError(
            "the watch recording is incomplete, so what it shows cannot be trusted:\n" + "\n".join(lines)
        )
