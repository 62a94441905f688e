"""Isolation: sync is per scope, a watch that cannot list says so (readiness, metrics, the API's message),
and slow collection deletes never hold the threads that other FastRollouts' passes need."""

import asyncio
import itertools
import json
import threading
import time
from collections.abc import Iterator, Sized
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aiohttp import ClientSession
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client import generate_latest

from fastrollout.api import FastRolloutStatus, Phase
from fastrollout.apply import Applier, Target
from fastrollout.handlers import RetryForever
from fastrollout.health import HealthServer, readiness
from fastrollout.metrics import Metrics
from fastrollout.observe import Observer, WatchHealth
from fastrollout.observe import watch as watch_module
from fastrollout.observe.cache import ChildCache
from fastrollout.observe.watch import FAILING_AFTER, Kind, ListWatch, describe_error
from fastrollout.plan.model import DeletePods, Plan

FORBIDDEN_BODY = json.dumps(
    {
        "kind": "Status",
        "status": "Failure",
        "message": 'pods is forbidden: User "system:serviceaccount:ops:fr" cannot list resource "pods" '
        'in API group "" in the namespace "b"',
        "reason": "Forbidden",
        "code": 403,
    }
)


def forbidden() -> ApiException:
    return ApiException(status=403, reason="Forbidden", body=FORBIDDEN_BODY)


def nothing(_namespace: str, _name: str) -> None:
    pass


def health(kind: str = "pods", scope: str = "a", *, synced: bool = True, failures: int = 0) -> WatchHealth:
    error = "Forbidden: pods is forbidden" if failures else ""
    return WatchHealth(kind, scope, synced, failures, error, {"Forbidden": failures} if failures else {})


# --------------------------------------------------------------------------------------------- per scope


@pytest.fixture
def observer() -> Iterator[Observer]:
    # Never started: no thread, no request; the test sets each watch's `synced` by hand.
    with client.ApiClient(client.Configuration()) as api:
        yield Observer(api, ["a", "b"], nothing)


def mark_synced(observer: Observer, namespace: str | None) -> None:
    for watch in observer._watches:
        if watch.namespace == namespace:
            watch.synced.set()


def test_a_namespace_waits_only_for_its_own_watches(observer: Observer) -> None:
    assert not observer.synced_for("a")
    mark_synced(observer, "a")  # b's lists keep failing (403)
    assert observer.synced_for("a"), "a's FastRollouts must not wait for b"
    assert not observer.synced_for("b")
    assert not observer.synced
    mark_synced(observer, "b")
    assert observer.synced_for("b")
    assert observer.synced


def test_current_means_synced_and_not_failing(observer: Observer) -> None:
    """What a leader waits for (leader election): a synced cache whose watches follow the API now."""
    assert not observer.current_for("a")
    mark_synced(observer, "a")
    assert observer.current_for("a")
    watch = next(w for w in observer._watches if w.namespace == "a")
    watch._failures = FAILING_AFTER  # an API server outage: reconnects keep failing
    assert observer.synced_for("a"), "synced stays true through reconnects"
    assert not observer.current_for("a")
    assert observer.current_for("b") is False  # never listed
    watch._failures = 0  # reconnected
    assert observer.current_for("a")


def test_a_namespace_no_watch_covers_is_never_synced(observer: Observer) -> None:
    mark_synced(observer, "a")
    mark_synced(observer, "b")
    assert not observer.synced_for("c"), "no watch covers c: an empty cache is not a synced one"


def test_cluster_wide_watches_cover_every_namespace() -> None:
    with client.ApiClient(client.Configuration()) as api:
        observer = Observer(api, None, nothing)
        assert not observer.synced_for("anything")
        mark_synced(observer, None)
        assert observer.synced_for("anything")
        assert {(h.scope, h.synced) for h in observer.health()} == {("*", True)}


# --------------------------------------------------------------------------------------------- one watch


class FakeLists:
    """list_namespaced for a Kind: fails `fail` times (403), then lists nothing; watches block."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.calls = 0
        self.release = threading.Event()

    def __call__(self, _namespace: str, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.fail:
            raise forbidden()
        if kwargs.get("watch"):
            self.release.wait(5)
            raise ConnectionResetError("test over")
        page = {"items": [], "metadata": {"resourceVersion": "7"}}
        return type("Response", (), {"data": json.dumps(page).encode()})()


def fake_watch(lists: FakeLists) -> ListWatch[Any]:
    kind = Kind("pods", lists, lists, "fastrollout.io/name", lambda _obj: None)
    return ListWatch(kind, "b", ChildCache(nothing).pods)


def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch_module, "BACKOFF_FIRST", 0.01)
    monkeypatch.setattr(watch_module, "BACKOFF_MAX", 0.02)


@pytest.mark.usefixtures("fast_backoff")
def test_a_forbidden_list_is_reported_with_the_apis_message(caplog: pytest.LogCaptureFixture) -> None:
    lists = FakeLists(fail=10**6)
    watch = fake_watch(lists)
    watch.start()
    try:
        wait_until(lambda: watch.health().failures >= FAILING_AFTER)
    finally:
        watch.stop()
        watch.join(2)
    seen = watch.health()
    assert (seen.kind, seen.scope, seen.synced, seen.current) == ("pods", "b", False, False)
    assert seen.error.startswith('Forbidden: pods is forbidden: User "system:serviceaccount:ops:fr"')
    assert seen.errors["Forbidden"] == seen.failures
    assert "FastRollouts here wait for it" in caplog.text
    assert 'cannot list resource "pods"' in caplog.text


@pytest.mark.usefixtures("fast_backoff")
def test_a_watch_that_lists_again_is_current_and_keeps_its_error_count() -> None:
    lists = FakeLists(fail=FAILING_AFTER + 1)
    watch = fake_watch(lists)
    watch.start()
    try:
        wait_until(watch.synced.is_set)
        seen = watch.health()
    finally:
        lists.release.set()
        watch.stop()
        watch.join(2)
    assert (seen.synced, seen.failures, seen.error, seen.current) == (True, 0, "", True)
    assert seen.errors == {"Forbidden": FAILING_AFTER + 1}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(forbidden(), ("Forbidden", "pods is forbidden"), id="api-status"),
        pytest.param(ApiException(status=500, reason="Internal"), ("HTTP500", "Internal"), id="no-body"),
        pytest.param(
            ConnectionResetError("reset by peer"), ("ConnectionResetError", "reset by peer"), id="net"
        ),
    ],
)
def test_describe_error(error: BaseException, expected: tuple[str, str]) -> None:
    reason, message = describe_error(error)
    assert (reason, message[: len(expected[1])]) == expected


# --------------------------------------------------------------------------------------------- readiness


@pytest.mark.parametrize(
    ("watches", "ready"),
    [
        pytest.param([health(), health(scope="b")], True, id="all-current"),
        pytest.param([health(), health(scope="b", synced=False, failures=5)], False, id="never-listed"),
        pytest.param([health(), health(scope="b", failures=FAILING_AFTER)], False, id="listed-then-failing"),
        pytest.param([health(), health(scope="b", failures=1)], True, id="one-dropped-connection"),
        pytest.param([health(scope="b", synced=False)], False, id="still-listing"),
    ],
)
def test_readiness(watches: list[WatchHealth], ready: bool) -> None:
    is_ready, body = readiness(watches)
    assert is_ready is ready
    assert body["ready"] is ready
    named = [(w["kind"], w["scope"]) for w in body["watches"]]  # type: ignore[attr-defined]
    assert named == [(w.kind, w.scope) for w in watches if not w.current]


def test_health_endpoints_split_liveness_from_readiness(unused_port: int) -> None:
    watches = [health(), health(scope="b", synced=False, failures=4)]

    async def scenario() -> dict[str, tuple[int, Any]]:
        server = HealthServer(unused_port, lambda: watches, lambda: True)
        await server.start()
        answers = {}
        try:
            async with ClientSession() as session:
                for path in ("/healthz", "/readyz"):
                    async with session.get(f"http://127.0.0.1:{unused_port}{path}") as response:
                        answers[path] = (response.status, await response.json())
        finally:
            await server.stop()
        return answers

    answers = asyncio.run(scenario())
    # A namespace that cannot be listed: not ready (503, saying which watch and why), but alive (200):
    # the kubelet must not restart the operator, which keeps serving namespace a.
    assert answers["/healthz"] == (200, {"children_synced": False, "watch_threads_alive": True})
    status, body = answers["/readyz"]
    assert status == 503
    assert body["watches"] == [
        {
            "kind": "pods",
            "scope": "b",
            "synced": False,
            "failures": 4,
            "error": "Forbidden: pods is forbidden",
        }
    ]


@pytest.fixture
def unused_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_watch_metrics() -> None:
    metrics = Metrics()
    metrics.watch(lambda: [health(), health(scope="b", synced=False, failures=7)])
    text = generate_latest(metrics.registry).decode()
    assert 'fastrollout_watch_synced{kind="pods",scope="a"} 1.0' in text
    assert 'fastrollout_watch_synced{kind="pods",scope="b"} 0.0' in text
    assert 'fastrollout_watch_errors_total{kind="pods",reason="Forbidden",scope="b"} 7.0' in text


# --------------------------------------------------------------------------------------------- threads


def test_slow_collection_deletes_do_not_hold_the_threads_of_other_passes() -> None:
    """Eight FastRollouts stuck in a DeleteCollection; a ninth's status write still goes through at once,
    even with the default executor cut to two threads (it is six on a 2-core machine)."""
    release = threading.Event()
    written: list[str] = []

    class SlowDeletes(Applier):
        def _request(self, method: str, path: str, *_args: Any, **_kwargs: Any) -> None:
            if method == "DELETE":
                release.wait(10)  # a 4,000-pod collection delete
            else:
                written.append(path)

    async def scenario() -> float:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(2))
        applier = SlowDeletes(client.ApiClient(client.Configuration()))
        quiet = Plan(status=FastRolloutStatus(phase=Phase.PROGRESSING))
        cutovers = [
            asyncio.create_task(
                applier.apply(Target("ns", f"big-{i}", "u"), Plan(actions=(DeletePods("r"),)), {})
            )
            for i in range(8)
        ]
        await asyncio.sleep(0.1)  # every cutover is in its DeleteCollection
        started = time.monotonic()
        try:
            await asyncio.wait_for(applier.apply(Target("ns", "small", "u"), quiet, {}), timeout=2)
            return time.monotonic() - started
        finally:
            release.set()
            await asyncio.gather(*cutovers)

    elapsed = asyncio.run(scenario())
    assert elapsed < 1.0
    assert any(path.endswith("/small/status") for path in written)


def test_kopf_retries_its_api_calls_forever() -> None:
    """kopf escalates a 403 on one namespace's FastRollout list to a failed watch, which stops the whole
    operator, once its retry delays run out: these never do, and restart for every request."""
    delays = RetryForever()
    assert not isinstance(delays, Sized)  # kopf counts attempts of a Sized one and then gives up
    first = list(itertools.islice(delays, 12))
    assert first == [1, 1, 2, 3, 5, 8, 13, 21, 30.0, 30.0, 30.0, 30.0]
    assert list(itertools.islice(delays, 3)) == [1, 1, 2], "each request starts over"
