"""One list+watch of one child kind in one scope, in a background thread, on raw JSON.

Why not kopf or the client's `Watch` helper: a kopf index over 10,000 pods takes minutes to start
(notes/watch-scale.md), and typed models cost 3x the CPU and memory of raw JSON. This loop:

- lists in pages of 500 with the server-side label selector, cuts each object to its record at once,
  then swaps the scope's records into the cache in one step (so a relist also removes what vanished);
- watches from the list's resourceVersion with bookmarks, so a reconnect resumes without a relist;
- on 410 Gone (the resourceVersion left the watch cache, or an ERROR event saying so) relists;
- on any other failure waits with capped exponential backoff and jitter, then resumes.

Each watch reports its own health (`health()`): whether its first list is in, how many attempts in a
row failed, and the API's own message for the last failure (e.g. a 403 when the operator's Role in
that namespace was removed). The observer answers "synced" per namespace from it, and the health
endpoint and metrics show it, so one namespace that cannot be listed is visible and stops nothing else.
"""

import contextlib
import json
import logging
import random
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from fastrollout.observe.cache import Sink
from fastrollout.observe.records import Json

logger = logging.getLogger(__name__)

R = TypeVar("R")

PAGE_SIZE = 500
# The server closes a watch after timeoutSeconds; jitter spreads the reconnects of many watchers.
WATCH_SECONDS = (240, 300)
BACKOFF_FIRST, BACKOFF_MAX = 0.5, 30.0
HTTP_GONE = 410
# A watch is failing, not just reconnecting, after this many failed attempts in a row: with the
# backoff above that is about 2-4 s of errors. One dropped connection (one failure) is routine.
FAILING_AFTER = 3
CLUSTER_SCOPE = "*"  # the `scope` of a watch over all namespaces (never a namespace's name)


@dataclass(frozen=True)
class Kind(Generic[R]):
    """One child kind: how to list it (cluster-wide or in a namespace) and how to cut it down."""

    name: str
    list_all: Callable[..., Any]  # e.g. CoreV1Api.list_pod_for_all_namespaces
    list_namespaced: Callable[..., Any]  # e.g. CoreV1Api.list_namespaced_pod
    label_selector: str
    parse: Callable[[Json], R | None]


class GoneError(Exception):
    """The watch's resourceVersion is too old: relist."""


@dataclass(frozen=True)
class WatchHealth:
    """What one list+watch can say about itself, read by the health endpoint and the metrics."""

    kind: str  # "pods", "replicasets", ...
    scope: str  # the namespace, or CLUSTER_SCOPE
    synced: bool  # its first list is in the cache (stays True through later reconnects and relists)
    failures: int  # failed list/watch attempts in a row; 0 once a list or watch call succeeds again
    error: str  # the API's message for the last failure ("" when none since the last success)
    errors: Mapping[str, int] = field(default_factory=dict)  # failures ever, by reason

    @property
    def current(self) -> bool:
        """The cache for this kind and scope is in and being kept up to date."""
        return self.synced and self.failures < FAILING_AFTER


def describe_error(error: BaseException) -> tuple[str, str]:
    """(reason, message) of a failed call: the API's own Status reason and message when it sent one.

        403 on a list -> ("Forbidden", 'pods is forbidden: User "system:serviceaccount:..." cannot list ...')
        a dropped connection -> ("ProtocolError", "('Connection broken: ...')")
    The reason is a bounded word (a Kubernetes StatusReason or an exception class): a metric label.
    """
    if isinstance(error, ApiException):
        status: dict[str, Any] = {}
        with contextlib.suppress(ValueError, TypeError):
            loaded = json.loads(error.body or "")
            status = loaded if isinstance(loaded, dict) else {}
        reason = str(status.get("reason") or "") or (f"HTTP{error.status}" if error.status else "ApiError")
        message = str(status.get("message") or error.reason or f"HTTP {error.status}")
        return reason, message
    return type(error).__name__, str(error).splitlines()[0] if str(error) else type(error).__name__


class ListWatch(Generic[R]):
    def __init__(self, kind: Kind[R], namespace: str | None, sink: Sink[R]) -> None:
        self.kind = kind
        self.namespace = namespace
        self._sink = sink
        self._stop = threading.Event()
        self.synced = threading.Event()
        self._response: Any = None
        self._lock = threading.Lock()  # guards the failure record below, read by other threads
        self._failures = 0
        self._error = ""
        self._errors: Counter[str] = Counter()
        scope = namespace or "all namespaces"
        self._thread = threading.Thread(target=self._run, name=f"watch-{kind.name}-{scope}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        # Unblock the thread's read. Not response.close(): that waits for the buffer lock the reading
        # thread holds. Shutting the socket down makes the blocked read return at once.
        connection = getattr(self._response, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """The thread runs (it was started and has not ended: it ends only when stopped)."""
        return self._thread.is_alive()

    def health(self) -> WatchHealth:
        with self._lock:
            return WatchHealth(
                kind=self.kind.name,
                scope=self.namespace or CLUSTER_SCOPE,
                synced=self.synced.is_set(),
                failures=self._failures,
                error=self._error,
                errors=dict(self._errors),
            )

    def _succeeded(self) -> None:
        with self._lock:
            if self._failures:
                logger.info("%s: recovered after %d failed attempt(s)", self._thread.name, self._failures)
            self._failures, self._error = 0, ""

    def _call(self, **kwargs: Any) -> Any:
        kwargs.update(label_selector=self.kind.label_selector, _preload_content=False)
        if self.namespace is None:
            return self.kind.list_all(**kwargs)
        return self.kind.list_namespaced(self.namespace, **kwargs)

    def _run(self) -> None:
        resource_version: str | None = None
        delay = BACKOFF_FIRST
        while not self._stop.is_set():
            try:
                if resource_version is None:
                    resource_version = self._relist()
                    self.synced.set()
                    self._succeeded()
                resource_version = self._watch(resource_version)
                delay = BACKOFF_FIRST
            except GoneError:
                logger.info("%s: resourceVersion expired, relisting", self._thread.name)
                resource_version = None
            except ApiException as error:
                if error.status == HTTP_GONE:
                    resource_version = None
                    continue
                delay = self._backoff(delay, error)
            except Exception as error:  # any network or decode failure: back off and resume
                if self._stop.is_set():
                    return
                delay = self._backoff(delay, error)

    def _backoff(self, delay: float, error: BaseException) -> float:
        reason, message = describe_error(error)
        with self._lock:
            self._failures += 1
            self._error = f"{reason}: {message}"
            self._errors[reason] += 1
        wait = delay * random.uniform(0.5, 1.5)  # noqa: S311 -- jitter, not cryptography
        # Never listed: every FastRollout in this scope waits for it (the others do not).
        waiting = "" if self.synced.is_set() else "; not synced yet, FastRollouts here wait for it"
        logger.warning(
            "%s failed: %s: %s%s; retrying in %.1fs", self._thread.name, reason, message, waiting, wait
        )
        self._stop.wait(wait)
        return min(delay * 2, BACKOFF_MAX)

    def _relist(self) -> str:
        records: list[R] = []
        token: str | None = None
        while True:
            response = self._call(limit=PAGE_SIZE, _continue=token)
            page = json.loads(response.data)
            for item in page.get("items") or ():
                record = self.kind.parse(item)
                if record is not None:
                    records.append(record)
            metadata = page.get("metadata") or {}
            token = metadata.get("continue")
            if not token:
                self._sink.replace(self.namespace, records)
                logger.info("%s: listed %d", self._thread.name, len(records))
                return str(metadata.get("resourceVersion", ""))

    def _watch(self, resource_version: str) -> str:
        """Streams events until the server ends the watch; returns the last resourceVersion seen."""
        timeout = random.randint(*WATCH_SECONDS)  # noqa: S311 -- jitter
        self._response = self._call(
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=timeout,
            _request_timeout=(10, timeout + 30),
        )
        self._succeeded()  # the server accepted the watch: whatever failed before works again
        try:
            for kind, obj in self._events(self._response):
                metadata = obj.get("metadata") or {}
                resource_version = str(metadata.get("resourceVersion") or resource_version)
                if kind == "BOOKMARK":
                    continue
                namespace, name = str(metadata.get("namespace", "")), str(metadata.get("name", ""))
                record = None if kind == "DELETED" else self.kind.parse(obj)
                if record is None:
                    # Deleted, or no longer matching: a label change makes the server send DELETED too.
                    self._sink.delete(namespace, name)
                else:
                    self._sink.upsert(record)
        finally:
            self._response.release_conn()
            self._response = None
        return resource_version

    @staticmethod
    def _events(response: Any) -> Iterator[tuple[str, Json]]:
        for line in iter_resp_lines(response):  # type: ignore[no-untyped-call]
            if not line:
                continue
            event = json.loads(line)
            kind, obj = str(event.get("type", "")), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == HTTP_GONE:
                    raise GoneError
                raise ApiException(status=obj.get("code"), reason=obj.get("message"))
            yield kind, obj
