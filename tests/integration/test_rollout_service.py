"""Rollouts behind a Service (spec.serviceName): TrafficStopped is decided from the Service's
EndpointSlices, the signal kube-proxy routes by, not from pod state."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rollout_helpers import (
    Fleet,
    fleet_manifest,
    is_terminating,
    is_true,
    recording,
    revision,
    service_manifest,
)

if TYPE_CHECKING:
    from conftest import Testbed


def endpoints(slices: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Endpoint conditions by pod name, over all slices of the Service (absent `ready` means true)."""
    out: dict[str, dict[str, Any]] = {}
    for s in slices:
        for ep in s.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            if ref.get("kind") == "Pod":
                out[ref["name"]] = ep.get("conditions") or {}
    return out


def ready_pods(slices: list[dict[str, Any]], rev: str, name: str = "w") -> set[str]:
    """Pods of revision `rev` whose endpoint is `ready` (receives new traffic through kube-proxy)."""
    prefix = f"{name}-{rev}-"
    return {pod for pod, c in endpoints(slices).items() if pod.startswith(prefix) and c.get("ready", True)}


def rv(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def bump_and_check_slices(testbed: Testbed, fleet: Fleet, replicas: int, timeout: float) -> dict[str, Any]:
    """v1 -> v2 behind the Service `w`; asserts, against the EndpointSlices, the moment the status said
    TrafficStopped. Returns the Complete status."""
    (rs1,) = fleet.replica_sets()
    rev1 = revision(rs1)
    testbed.wait_for(
        lambda: len(ready_pods(fleet.endpoint_slices("w"), rev1)) == replicas,
        timeout=60,
        message=f"{replicas} ready v1 endpoints in the Service's EndpointSlices",
    )
    with (
        recording(testbed, fleet.namespace, "endpointslices", "kubernetes.io/service-name=w") as slices,
        recording(testbed, fleet.namespace, "fastrollouts") as rollouts,
        recording(testbed, fleet.namespace, "replicasets") as replica_sets,
    ):
        fleet.patch({"version": "v2"})
        done = fleet.wait_complete("v2", timeout=timeout)
        now_slices = fleet.endpoint_slices("w")

    # When the status says TrafficStopped, the slices show no ready old endpoint ...
    assert ready_pods(now_slices, rev1) == set(), "status says TrafficStopped, a v1 endpoint is still ready"
    # ... while old pods are still there, Terminating: their endpoints are published not-ready (serving,
    # terminating). That is what "receives no new traffic" means, not "gone".
    assert done["drainingReplicas"] > 0
    old_eps = {p: c for p, c in endpoints(now_slices).items() if p.startswith(f"w-{rev1}-")}
    assert old_eps, "no v1 endpoint left in the slices: drain-seconds should keep the pods Terminating"
    assert all(c.get("ready") is False and c.get("terminating") is True for c in old_eps.values()), old_eps
    (rs2,) = [rs for rs in fleet.replica_sets() if revision(rs) != rev1]
    assert len(ready_pods(now_slices, revision(rs2))) == replicas

    # The same at the instant of the decision. On the test bed's single etcd, resourceVersions of all
    # kinds are one sequence, so "the slices as of the status write that first said TrafficStopped" is
    # every slice change with a smaller resourceVersion: the operator decided from no more than that.
    first = next(
        s.obj
        for s in rollouts.events()
        if (s.obj.get("status") or {}).get("version") == "v2" and is_true(s.obj["status"], "TrafficStopped")
    )
    as_of: dict[str, dict[str, Any]] = {}
    for seen in slices.events():
        if rv(seen.obj) > rv(first):
            break
        if seen.type == "DELETED":
            as_of.pop(seen.name, None)
        else:
            as_of[seen.name] = seen.obj
    still_ready = ready_pods(list(as_of.values()), rev1)
    assert still_ready == set(), (
        f"status said TrafficStopped at resourceVersion {rv(first)} while the slices still had ready v1 "
        f"endpoints {sorted(still_ready)}"
    )
    # and before that, the status never claimed TrafficStopped for v2
    assert all(
        not is_true(s.obj.get("status") or {}, "TrafficStopped")
        for s in rollouts.events()
        if (s.obj.get("status") or {}).get("version") == "v2" and rv(s.obj) < rv(first)
    )

    # The new ReplicaSet was created at full size in one step.
    new_versions = [s.obj for s in replica_sets.events() if s.name == rs2["metadata"]["name"]]
    assert new_versions[0]["spec"]["replicas"] == replicas
    return done


def test_traffic_stopped_is_decided_from_endpoint_slices(testbed: Testbed, fleet: Fleet) -> None:
    testbed.apply(json.dumps(service_manifest("w")), fleet.namespace)
    fleet.apply(fleet_manifest(replicas=10, version="v1", drain_seconds=20, serviceName="w"))
    fleet.wait_complete("v1")
    done = bump_and_check_slices(testbed, fleet, 10, timeout=60)
    assert (done["updatedReplicas"], done["readyReplicas"], done["oldServingReplicas"]) == (10, 10, 0)
    fleet.wait_drained("v2", timeout=60)


def test_old_pods_published_ready_keep_receiving_traffic_until_gone(testbed: Testbed, fleet: Fleet) -> None:
    """publishNotReadyAddresses: the EndpointSlice controller publishes every endpoint `ready`, even a
    terminating pod's, so kube-proxy keeps sending it new connections while it drains. Judged from the
    slices, those old pods still receive traffic: no TrafficStopped until they are gone. (Judged from
    pod state they would count as stopped at cutover.)"""
    testbed.apply(json.dumps(service_manifest("w", publish_not_ready=True)), fleet.namespace)
    fleet.apply(fleet_manifest(replicas=5, version="v1", drain_seconds=12, serviceName="w"))
    fleet.wait_complete("v1")
    (rs1,) = fleet.replica_sets()
    rev1 = revision(rs1)

    fleet.patch({"version": "v2"})
    # Cut over (every old pod terminating), but their endpoints are still ready ...
    testbed.wait_for(
        lambda: (
            (pods := [p for p in fleet.pods() if revision(p) == rev1])
            and all(is_terminating(p) for p in pods)
            and len(pods) == 5
        ),
        timeout=60,
        message="every v1 pod Terminating",
    )
    assert len(ready_pods(fleet.endpoint_slices("w"), rev1)) == 5
    # ... so the status reports them serving: not Complete, TrafficStopped False.
    during = fleet.wait_status(
        lambda s: (
            s.get("version") == "v2" and s.get("oldServingReplicas") == 5 and s.get("drainingReplicas") == 5
        ),
        timeout=30,
        message="5 old pods reported serving while they drain",
    )
    assert during["phase"] == "Progressing"
    assert not is_true(during, "TrafficStopped")
    # Once the drained pods are gone (and their endpoints with them), traffic has stopped.
    done = fleet.wait_complete("v2", timeout=60)
    assert ready_pods(fleet.endpoint_slices("w"), rev1) == set()
    assert [p for p in fleet.pods() if revision(p) == rev1] == []
    assert done["oldServingReplicas"] == 0


def test_bulk_rollout_of_300_pods_behind_a_service(testbed: Testbed, fleet: Fleet) -> None:
    testbed.apply(json.dumps(service_manifest("w")), fleet.namespace)
    fleet.apply(fleet_manifest(replicas=300, version="v1", drain_seconds=15, serviceName="w"))
    fleet.wait_complete("v1", timeout=180)
    done = bump_and_check_slices(testbed, fleet, 300, timeout=180)
    assert (done["updatedReplicas"], done["readyReplicas"], done["oldServingReplicas"]) == (300, 300, 0)
    drained = fleet.wait_drained("v2", timeout=120)
    assert drained["replicas"] == 300
    testbed.wait_for(
        lambda: sorted(rs["spec"]["replicas"] for rs in fleet.replica_sets()) == [0, 300],
        timeout=30,
        message="old ReplicaSet at 0, kept as history",
    )
