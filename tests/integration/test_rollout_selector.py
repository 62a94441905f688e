"""strategy.cutover ServiceSelector on the real control plane: the Service's selector is pinned to the
target revision (key fastrollout.io/revision), old pods are deleted only after TrafficStopped, and a
rollback inside rollbackWindowSeconds switches the selector back to pods that never stopped."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rollout_helpers import (
    Fleet,
    condition,
    fleet_manifest,
    is_ready,
    is_terminating,
    recording,
    revision,
    service_manifest,
)
from test_rollout_service import ready_pods

if TYPE_CHECKING:
    from conftest import Testbed

PIN = "fastrollout.io/revision"
SELECTOR = {"cutover": "ServiceSelector"}


def selector_of(testbed: Testbed, namespace: str, service: str = "w") -> dict[str, str]:
    found: dict[str, str] = testbed.kubectl_json("get", "service", service, "-n", namespace)["spec"][
        "selector"
    ]
    return found


def pods_of(fleet: Fleet, rev: str) -> list[dict[str, Any]]:
    return [p for p in fleet.pods() if revision(p) == rev]


def start_v1(testbed: Testbed, fleet: Fleet, replicas: int, **strategy: Any) -> str:
    """Service w and a FastRollout at v1 with the selector cutover; returns v1's revision once its
    pods are behind the (pinned) Service."""
    testbed.apply(json.dumps(service_manifest("w")), fleet.namespace)
    manifest = fleet_manifest(
        replicas=replicas, version="v1", drain_seconds=5, serviceName="w", strategy={**SELECTOR, **strategy}
    )
    fleet.apply(manifest)
    fleet.wait_complete("v1")
    (rs1,) = fleet.replica_sets()
    rev1 = revision(rs1)
    testbed.wait_for(
        lambda: selector_of(testbed, fleet.namespace) == {"app": "w", PIN: rev1},
        timeout=10,
        message="the Service pinned to v1's revision",
    )
    testbed.wait_for(
        lambda: len(ready_pods(fleet.endpoint_slices("w"), rev1)) == replicas,
        timeout=30,
        message=f"{replicas} ready v1 endpoints",
    )
    return rev1


def min_ready_endpoints(slices: Any, revisions: set[str]) -> int:
    """The fewest ready endpoints (of the given revisions) the Service had at any recorded state after the
    first one that had them all."""
    counts = []
    for _seen, objects in slices.snapshots():
        counts.append(sum(len(ready_pods(list(objects.values()), rev)) for rev in revisions))
    top = max(counts)
    return min(counts[counts.index(top) :])


def test_cutover_pins_the_selector_and_deletes_old_pods_only_after_traffic_stopped(
    testbed: Testbed, fleet: Fleet
) -> None:
    rev1 = start_v1(testbed, fleet, 10)
    with (
        recording(testbed, fleet.namespace, "endpointslices", "kubernetes.io/service-name=w") as slices,
        recording(testbed, fleet.namespace, "fastrollouts") as rollouts,
        recording(testbed, fleet.namespace, "pods", "app=w") as pods,
    ):
        fleet.patch({"version": "v2"})
        done = fleet.wait_complete("v2", timeout=60)
        rev2 = done["revision"]
        # While v2 started, the pin kept its Ready pods out of the Service.
        testbed.wait_for(
            lambda: all(is_terminating(p) for p in pods_of(fleet, rev1)),
            timeout=30,
            message="v1 pods deleted after TrafficStopped",
        )
    assert selector_of(testbed, fleet.namespace) == {"app": "w", PIN: rev2}
    # Ready endpoints never fell below 10 as the selector switched (one EndpointSlice reconcile).
    assert min_ready_endpoints(slices, {rev1, rev2}) >= 10
    # No v2 endpoint was ready before the status recorded the cutover (stableRevision v2).
    cut = next(s for s in rollouts.events() if (s.obj.get("status") or {}).get("stableRevision") == rev2)
    early = [
        seen
        for seen, objects in slices.snapshots()
        if int(seen.obj["metadata"]["resourceVersion"]) < int(cut.obj["metadata"]["resourceVersion"])
        and ready_pods(list(objects.values()), rev2)
    ]
    assert early == [], "v2 pods received traffic before the cutover"
    # The first v1 pod deletion came after the status said TrafficStopped, by the propagation margin.
    stopped = next(
        s
        for s in rollouts.events()
        if condition(s.obj.get("status") or {}, "TrafficStopped").get("status") == "True"
        and (s.obj.get("status") or {}).get("version") == "v2"
    )
    deleted = next(
        s for s in pods.events() if revision(s.obj) == rev1 and s.obj["metadata"].get("deletionTimestamp")
    )
    assert deleted.t - stopped.t >= 0.9, f"v1 deleted {deleted.t - stopped.t:.2f}s after TrafficStopped"
    reasons = fleet.event_reasons()
    assert reasons.count("CutOver") == 1, reasons
    cut_event = next(e for e in fleet.events() if e["reason"] == "CutOver")
    assert "selector" in cut_event["message"]
    fleet.wait_drained("v2", timeout=60)


def test_rollback_inside_the_window_switches_back_to_warm_pods(testbed: Testbed, fleet: Fleet) -> None:
    rev1 = start_v1(testbed, fleet, 10, rollbackWindowSeconds=60)
    v1_uids = {p["metadata"]["uid"] for p in pods_of(fleet, rev1)}
    fleet.patch({"version": "v2"})
    done = fleet.wait_complete("v2", timeout=60)
    rev2 = done["revision"]
    # v1 stays warm: Running and Ready, out of the Service, reported with the window's end.
    warm = next(v for v in done["versions"] if v["revision"] == rev1)
    assert (warm["replicas"], warm["readyReplicas"], warm["servingReplicas"]) == (10, 10, 0), warm
    assert "kept warm" in done["message"], done["message"]
    assert "until" in done["message"], done["message"]
    time.sleep(3)  # past the 2 s propagation margin, so without the window v1 would be deleted by now
    assert not any(is_terminating(p) for p in pods_of(fleet, rev1))

    started = time.monotonic()
    fleet.patch({"version": "v1"})
    back = fleet.wait_complete("v1", timeout=30)
    took = time.monotonic() - started
    assert back["revision"] == rev1
    assert selector_of(testbed, fleet.namespace) == {"app": "w", PIN: rev1}
    assert {p["metadata"]["uid"] for p in pods_of(fleet, rev1) if is_ready(p)} == v1_uids
    assert took < 10, f"rollback inside the window took {took:.1f}s"
    # v2 is now the warm one, for the same window.
    v2 = next(v for v in back["versions"] if v["revision"] == rev2)
    assert (v2["readyReplicas"], v2["servingReplicas"]) == (10, 0), v2


def test_window_expiry_deletes_the_previous_version(testbed: Testbed, fleet: Fleet) -> None:
    window = 4
    rev1 = start_v1(testbed, fleet, 5, rollbackWindowSeconds=window)
    with (
        recording(testbed, fleet.namespace, "fastrollouts") as rollouts,
        recording(testbed, fleet.namespace, "pods", "app=w") as pods,
    ):
        fleet.patch({"version": "v2"})
        done = fleet.wait_complete("v2", timeout=60)
        assert "kept warm" in done["message"], done["message"]
        testbed.wait_for(
            lambda: pods_of(fleet, rev1) and all(is_terminating(p) for p in pods_of(fleet, rev1)),
            timeout=20,
            message="v1 deleted once its window ended",
        )
    stopped = next(
        s
        for s in rollouts.events()
        if (s.obj.get("status") or {}).get("version") == "v2"
        and condition(s.obj.get("status") or {}, "TrafficStopped").get("status") == "True"
    )
    deleted = next(
        s for s in pods.events() if revision(s.obj) == rev1 and s.obj["metadata"].get("deletionTimestamp")
    )
    # trafficStoppedAt is stored to the second, so the window ends between window+1 and window+2 s
    # (with the 2 s margin) after the status said so.
    waited = deleted.t - stopped.t
    assert window + 0.9 <= waited <= window + 2 + 5, f"v1 deleted {waited:.2f}s after TrafficStopped"
    gone = fleet.wait_drained("v2", timeout=60)
    assert "kept warm" not in (gone.get("message") or "")


def test_pin_removed_by_someone_is_restored(testbed: Testbed, fleet: Fleet) -> None:
    rev1 = start_v1(testbed, fleet, 5)
    testbed.kubectl(
        "patch",
        "service",
        "w",
        "-n",
        fleet.namespace,
        "--type=json",
        "-p",
        json.dumps([{"op": "remove", "path": "/spec/selector/fastrollout.io~1revision"}]),
    )
    testbed.wait_for(
        lambda: selector_of(testbed, fleet.namespace) == {"app": "w", PIN: rev1},
        timeout=10,
        message="the pin restored",
    )


def test_service_shared_with_another_workload_is_refused(testbed: Testbed, fleet: Fleet) -> None:
    testbed.apply(json.dumps(service_manifest("w")), fleet.namespace)
    other = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "someone-else", "labels": {"app": "w"}},
        "spec": {
            "nodeSelector": {"type": "kwok"},
            "containers": [{"name": "c", "image": "x", "ports": [{"name": "http", "containerPort": 8080}]}],
        },
    }
    testbed.apply(json.dumps(other), fleet.namespace)
    testbed.wait_for(
        lambda: "someone-else" in json.dumps(fleet.endpoint_slices("w")),
        timeout=30,
        message="the other workload's pod behind the Service",
    )
    fleet.apply(fleet_manifest(replicas=3, version="v1", serviceName="w", strategy=SELECTOR))
    status = fleet.wait_status(
        lambda s: condition(s, "Progressing").get("reason") == "ServiceShared",
        timeout=30,
        message="Progressing ServiceShared",
    )
    assert "not this FastRollout's" in status["message"], status["message"]
    time.sleep(2)
    assert fleet.event_reasons().count("ServiceShared") == 1
    assert selector_of(testbed, fleet.namespace) == {"app": "w"}


def test_delete_and_switching_to_delete_remove_the_pin(testbed: Testbed, fleet: Fleet) -> None:
    rev1 = start_v1(testbed, fleet, 3)
    assert "fastrollout.io/service-selector" in fleet.get()["metadata"]["finalizers"]
    fleet.patch({"strategy": {"cutover": "Delete"}})
    testbed.wait_for(
        lambda: selector_of(testbed, fleet.namespace) == {"app": "w"},
        timeout=10,
        message="the pin removed with cutover Delete",
    )
    testbed.wait_for(
        lambda: not fleet.get()["metadata"].get("finalizers"), timeout=10, message="finalizer removed"
    )
    fleet.patch({"strategy": {"cutover": "ServiceSelector"}})
    testbed.wait_for(
        lambda: selector_of(testbed, fleet.namespace) == {"app": "w", PIN: rev1},
        timeout=10,
        message="pinned again",
    )
    fleet.kubectl("delete", "fr", fleet.name, "--wait=true", "--timeout=20s")
    assert selector_of(testbed, fleet.namespace) == {"app": "w"}
