"""The shared cache: per-revision counts, which FastRollouts each change wakes, relists."""

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fastrollout.api import FastRolloutSpec
from fastrollout.observe.cache import ChildCache
from fastrollout.observe.records import (
    EndpointSliceRecord,
    EndpointState,
    Owner,
    PodRecord,
    ReplicaSetRecord,
    parse_endpoint_slice,
    parse_pod,
    parse_replica_set,
)
from fastrollout.plan.model import ReplicaSetView, RevisionPods

DATA = Path(__file__).parent / "test_observe_data"
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "w", "image": "w:1"}]}}


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return loaded


def spec(service: str | None = None) -> FastRolloutSpec:
    return FastRolloutSpec.model_validate({"template": TEMPLATE, "serviceName": service})


RECORDED_UID = "aa11"  # the FastRollout uid in test_observe_data/replicaset.json


def fr_uid(fleet: str) -> str:
    return f"uid-fr-{fleet}"


def pod(
    name: str,
    revision: str = "new",
    *,
    ready: bool = True,
    terminating: bool = False,
    fleet: str = "web",
    owner: Owner | None = None,
) -> PodRecord:
    """A pod of `fleet`'s ReplicaSet of `revision` (see `replica_set`), unless `owner` says otherwise."""
    version = {"new": "v2", "old": "v1"}.get(revision, revision)
    owner = owner or Owner("ReplicaSet", f"{fleet}-{revision}", f"uid-rs-{fleet}-{revision}")
    return PodRecord(
        "io-dev",
        fleet,
        name,
        revision,
        version,
        terminating=terminating,
        ready=ready,
        crashing=False,
        owner=owner,
    )


def replica_set(revision: str = "new", replicas: int = 1, *, fleet: str = "web") -> ReplicaSetRecord:
    """`fleet`'s ReplicaSet of `revision`, controlled by the FastRollout `fleet` (uid fr_uid(fleet))."""
    version = {"new": "v2", "old": "v1"}.get(revision, revision)
    return ReplicaSetRecord(
        "io-dev",
        fleet,
        f"{fleet}-{revision}",
        revision,
        version,
        replicas,
        uid=f"uid-rs-{fleet}-{revision}",
        owner=Owner("FastRollout", fleet, fr_uid(fleet)),
    )


class Wakes:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, namespace: str, name: str) -> None:
        with self.lock:
            self.seen.append((namespace, name))

    def take(self) -> set[tuple[str, str]]:
        with self.lock:
            taken, self.seen = set(self.seen), []
        return taken


@pytest.fixture
def wakes() -> Wakes:
    return Wakes()


@pytest.fixture
def cache(wakes: Wakes) -> ChildCache:
    return ChildCache(wakes)


def test_counts_recorded_objects_per_revision(cache: ChildCache) -> None:
    for name in ("pod_ready", "pod_terminating", "pod_crashloop", "pod_image_pull", "pod_pending"):
        record = parse_pod(load(name))
        assert record is not None
        cache.pods.upsert(record)
    replica_set = parse_replica_set(load("replicaset"))
    assert replica_set is not None
    cache.replica_sets.upsert(replica_set)

    observed = cache.snapshot("io-dev", "web", spec(), RECORDED_UID)

    assert observed.replica_sets == (ReplicaSetView("web-7c9d5f6b8", "7c9d5f6b8", "v2", 200),)
    assert observed.pods == (
        RevisionPods("5f2a1c4d9", "v1", replicas=0, ready=0, serving=0, draining=1, crashing=0, in_service=0),
        RevisionPods("7c9d5f6b8", "v2", replicas=4, ready=1, serving=1, draining=0, crashing=2, in_service=1),
    )


def test_snapshot_with_service_uses_endpoint_slices(cache: ChildCache) -> None:
    for name in ("pod_ready", "pod_terminating"):
        record = parse_pod(load(name))
        assert record is not None
        cache.pods.upsert(record)
    endpoint_slice = parse_endpoint_slice(load("endpointslice"))
    assert endpoint_slice is not None
    cache.slices.upsert(endpoint_slice)
    replica_set_record = parse_replica_set(load("replicaset"))
    assert replica_set_record is not None
    cache.replica_sets.upsert(replica_set_record)

    observed = cache.snapshot("io-dev", "web", spec("web"), RECORDED_UID)

    # The terminating pod's endpoint is serving but not ready, and a ready endpoint exists: no traffic.
    assert observed.pods_of("5f2a1c4d9").serving == 0
    assert observed.pods_of("7c9d5f6b8").in_service == 1


def test_snapshot_is_scoped_to_one_fastrollout(cache: ChildCache) -> None:
    cache.replica_sets.upsert(replica_set())
    cache.replica_sets.upsert(replica_set(fleet="other"))
    cache.pods.upsert(pod("a"))
    cache.pods.upsert(pod("b", fleet="other"))
    assert cache.snapshot("io-dev", "web", spec(), fr_uid("web")).pods == (
        RevisionPods("new", "v2", 1, 1, 1, 0, 0, in_service=1),
    )
    assert cache.snapshot("elsewhere", "web", spec(), fr_uid("web")).pods == ()


def test_only_children_the_fastrollout_controls_count(cache: ChildCache) -> None:
    """Labels prove nothing: a ReplicaSet or pod with our labels and another controller is not ours.
    A pod of our ReplicaSet that the ReplicaSet watch has not shown yet is left out, not foreign."""
    cache.replica_sets.upsert(replica_set())
    impostor = replica_set("old", 5)
    cache.replica_sets.upsert(
        ReplicaSetRecord(**{**_fields(impostor), "owner": Owner("Deployment", "someone", "uid-x")})
    )
    cache.pods.upsert(pod("ours"))
    cache.pods.upsert(pod("theirs", "old"))  # controlled by the impostor ReplicaSet
    cache.pods.upsert(pod("batch", "new", owner=Owner("Job", "batch", "uid-job")))
    cache.pods.upsert(pod("early", "newer"))  # its ReplicaSet web-newer is not in the cache yet
    cache.pods.upsert(pod("naked", "new", owner=Owner("", "", "")))

    observed = cache.snapshot("io-dev", "web", spec(), fr_uid("web"))

    assert [r.name for r in observed.replica_sets] == ["web-new"]
    assert observed.pods == (
        RevisionPods("new", "v2", 1, 1, 1, 0, 0, in_service=1, foreign=2),
        RevisionPods("old", "", foreign=1),
    )
    assert cache.snapshot("io-dev", "web", spec(), "another-uid").pods == (
        RevisionPods("new", "", foreign=3),
        RevisionPods("old", "", foreign=1),
    )


def _fields(record: ReplicaSetRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in record.__slots__}


def test_pod_change_wakes_its_fastrollout_once(cache: ChildCache, wakes: Wakes) -> None:
    cache.pods.upsert(pod("a", ready=False))
    assert wakes.take() == {("io-dev", "web")}
    cache.pods.upsert(pod("a", ready=False))  # same kept fields (e.g. only the pod IP changed)
    assert wakes.take() == set()
    cache.pods.upsert(pod("a", ready=True))
    assert wakes.take() == {("io-dev", "web")}
    cache.pods.delete("io-dev", "a")
    assert wakes.take() == {("io-dev", "web")}
    cache.pods.delete("io-dev", "a")  # unknown: nothing to do
    assert wakes.take() == set()


def test_relabelled_pod_moves_and_wakes_both(cache: ChildCache, wakes: Wakes) -> None:
    cache.pods.upsert(pod("a", fleet="one"))
    wakes.take()
    cache.pods.upsert(pod("a", fleet="two"))
    assert wakes.take() == {("io-dev", "one"), ("io-dev", "two")}
    assert cache.snapshot("io-dev", "one", spec(), fr_uid("one")).pods == ()


def test_relist_replaces_scope_and_wakes_changed(cache: ChildCache, wakes: Wakes) -> None:
    cache.pods.upsert(pod("gone", fleet="one"))
    cache.pods.upsert(pod("stays", fleet="two"))
    wakes.take()
    cache.pods.replace(None, [pod("stays", fleet="two"), pod("new", fleet="three")])
    assert wakes.take() == {("io-dev", "one"), ("io-dev", "three")}
    assert cache.snapshot("io-dev", "one", spec(), fr_uid("one")).pods == ()


def test_namespaced_relist_keeps_other_namespaces(cache: ChildCache) -> None:
    cache.replica_sets.upsert(replica_set())
    cache.pods.upsert(pod("a"))
    cache.pods.replace("another-namespace", [])
    assert cache.snapshot("io-dev", "web", spec(), fr_uid("web")).pods_of("new").replicas == 1


def slice_of(service: str, *endpoints: tuple[str, EndpointState], name: str = "s1") -> EndpointSliceRecord:
    return EndpointSliceRecord("io-dev", name, service, tuple(endpoints))


READY = EndpointState(ready=True, serving=True, terminating=False)
DRAINING = EndpointState(ready=False, serving=True, terminating=True)


def test_slice_change_wakes_fastrollouts_naming_the_service(cache: ChildCache, wakes: Wakes) -> None:
    cache.track("io-dev", "web", "web-svc")
    cache.track("io-dev", "canary", "web-svc")
    cache.track("io-dev", "batch", None)
    cache.slices.upsert(slice_of("web-svc", ("a", READY)))
    assert wakes.take() == {("io-dev", "web"), ("io-dev", "canary")}
    cache.slices.upsert(slice_of("unrelated", ("z", READY), name="s2"))
    assert wakes.take() == set()
    cache.forget("io-dev", "canary")
    cache.slices.upsert(slice_of("web-svc", ("a", DRAINING)))
    assert wakes.take() == {("io-dev", "web")}


def test_snapshot_tracks_the_service(cache: ChildCache, wakes: Wakes) -> None:
    cache.snapshot("io-dev", "web", spec("web-svc"), fr_uid("web"))
    cache.slices.upsert(slice_of("web-svc", ("a", READY)))
    assert wakes.take() == {("io-dev", "web")}
    cache.snapshot("io-dev", "web", spec(None), fr_uid("web"))  # serviceName removed
    cache.slices.upsert(slice_of("web-svc", ("a", DRAINING)))
    assert wakes.take() == set()


def test_pod_in_two_slices_is_ready_if_either_is(cache: ChildCache) -> None:
    cache.replica_sets.upsert(replica_set(replicas=2))
    cache.pods.upsert(pod("a"))
    cache.pods.upsert(pod("b"))
    cache.slices.upsert(slice_of("svc", ("a", READY), ("b", DRAINING), name="ipv4"))
    cache.slices.upsert(slice_of("svc", ("a", DRAINING), ("b", DRAINING), name="ipv6"))
    assert cache.snapshot("io-dev", "web", spec("svc"), fr_uid("web")).pods_of("new").serving == 1


def test_ready_endpoint_outliving_its_pod_counts_for_the_replica_set_that_named_it(cache: ChildCache) -> None:
    """publishNotReadyAddresses: the old pod `web-old-x1y2z` is deleted while its endpoint is still
    ready. kube-proxy still routes to it, so its revision still serves; another workload's endpoint
    behind the same Service (`batch-q7r8s`) is not counted."""
    cache.replica_sets.upsert(replica_set("old", 0))
    cache.replica_sets.upsert(replica_set("new", 1))
    cache.pods.upsert(pod("web-new-a1b2c"))
    cache.slices.upsert(
        slice_of("svc", ("web-new-a1b2c", READY), ("web-old-x1y2z", READY), ("batch-q7r8s", READY))
    )

    observed = cache.snapshot("io-dev", "web", spec("svc"), fr_uid("web"))

    assert observed.pods == (
        RevisionPods("new", "v2", replicas=1, ready=1, serving=1, in_service=1),
        RevisionPods("old", "v1", replicas=0, ready=0, serving=1, in_service=0),
    )


def recorded(name: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = load(name)["items"]
    return items


def test_recorded_mid_drain_snapshot() -> None:
    """Objects recorded from the test bed right after a cutover of io-dev/web (v3 -> v5): 5 new pods
    Ready, 5 old pods terminating; the EndpointSlice controller's view of them; both ReplicaSets."""
    cache = ChildCache(Wakes())
    cache.pods.replace(None, [r for r in map(parse_pod, recorded("recorded_pods")) if r is not None])
    cache.replica_sets.replace(
        None, [r for r in map(parse_replica_set, recorded("recorded_replicasets")) if r is not None]
    )
    cache.slices.replace(
        None, [r for r in map(parse_endpoint_slice, recorded("recorded_endpointslices")) if r is not None]
    )
    expected_rs = (
        ReplicaSetView(
            "web-78c8f16651", "78c8f16651", "v5", 200, datetime(2026, 11, 27, 15, 24, 36, tzinfo=UTC)
        ),
        ReplicaSetView(
            "web-e2faf648ac", "e2faf648ac", "v3", 0, datetime(2026, 11, 27, 15, 23, 12, tzinfo=UTC)
        ),
    )
    for service in ("web", None):
        observed = cache.snapshot("io-dev", "web", spec(service), "ca78ac7a-ff1c-453f-b26a-9983f6dab809")
        assert observed.replica_sets == expected_rs
        assert observed.pods == (
            RevisionPods("78c8f16651", "v5", replicas=5, ready=5, serving=5, in_service=5),
            RevisionPods("e2faf648ac", "v3", replicas=0, ready=0, serving=0, draining=5, in_service=0),
        )
