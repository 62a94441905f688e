"""Around a rollout: paused, `kubectl scale fr/x`, replicas 0, deleting the FastRollout, and the operator
SIGKILLed mid-rollout and restarted."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rollout_helpers import (
    Fleet,
    fleet_manifest,
    is_ready,
    is_terminating,
    is_true,
    recording,
    revision,
    slow_version,
    version_of,
)

if TYPE_CHECKING:
    from conftest import OperatorProcess, Testbed


def live(fleet: Fleet, version: str | None = None) -> list[dict[str, Any]]:
    return [
        p for p in fleet.pods() if not is_terminating(p) and (version is None or version_of(p) == version)
    ]


def generation(fleet: Fleet) -> int:
    return int(fleet.get()["metadata"]["generation"])


def test_paused_takes_no_step_and_unpausing_continues(testbed: Testbed, fleet: Fleet) -> None:
    fleet.apply(fleet_manifest(replicas=5, version="v1", drain_seconds=2))
    fleet.wait_complete("v1")
    (rs1,) = fleet.replica_sets()

    with recording(testbed, fleet.namespace, "replicasets") as replica_sets:
        fleet.patch({"paused": True, "version": "v2"})
        gen = generation(fleet)
        paused = fleet.wait_status(
            lambda s: s.get("phase") == "Paused" and s.get("observedGeneration") == gen,
            timeout=30,
            message="phase Paused for the new generation",
        )
        # Status still updates while paused: it reports what runs.
        assert (paused["replicas"], paused["readyReplicas"], paused["oldServingReplicas"]) == (5, 5, 5)
        assert paused["updatedReplicas"] == 0
        # Scaling while paused is recorded but not acted on either.
        fleet.kubectl("scale", "fr/w", "--replicas=7")
        fleet.wait_status(
            lambda s: s.get("observedGeneration") == generation(fleet) and s.get("phase") == "Paused",
            timeout=30,
            message="the scaled generation observed, still Paused",
        )
        # Observation window (a negative check needs one; the operator passes about every second).
        time.sleep(4)
    changes = [
        (s.type, s.name, s.obj["spec"]["replicas"]) for s in replica_sets.events() if s.type != "LISTED"
    ]
    assert changes == [], f"ReplicaSets changed while paused: {changes}"
    assert [rs["metadata"]["name"] for rs in fleet.replica_sets()] == [rs1["metadata"]["name"]]
    assert len(live(fleet, "v1")) == 5

    fleet.patch({"paused": False})
    done = fleet.wait_complete("v2")
    assert (done["replicas"], done["updatedReplicas"], done["readyReplicas"]) == (7, 7, 7)
    assert "RolloutPaused" not in {c["reason"] for c in done["conditions"]}


def test_pause_mid_rollout_holds_the_cutover(testbed: Testbed, fleet: Fleet) -> None:
    fleet.apply(fleet_manifest(replicas=5, version="v1", drain_seconds=2))
    fleet.wait_complete("v1")
    fleet.patch(slow_version("v2", 4))
    fleet.wait_status(
        lambda s: s.get("version") == "v2" and s.get("updatedReplicas") == 5,
        timeout=30,
        message="v2's pods created",
    )
    fleet.patch({"paused": True})
    gen = generation(fleet)
    with recording(testbed, fleet.namespace, "pods") as pods:
        fleet.wait_status(
            lambda s: s.get("phase") == "Paused" and s.get("observedGeneration") == gen,
            timeout=30,
            message="Paused",
        )
        # The new pods become Ready while paused: ready to cut over, but paused takes no step.
        testbed.wait_for(
            lambda: len([p for p in live(fleet, "v2") if is_ready(p)]) == 5, timeout=30, message="v2 Ready"
        )
        held = fleet.wait_status(
            lambda s: s.get("readyReplicas") == 10, timeout=30, message="status: 10 Ready pods while paused"
        )
        time.sleep(4)  # observation window: no cutover may happen in it
    assert held["phase"] == "Paused"
    assert held["oldServingReplicas"] == 5
    deleted = [s.name for s in pods.events() if version_of(s.obj) == "v1" and is_terminating(s.obj)]
    assert deleted == [], f"v1 pods deleted while paused: {deleted}"
    assert fleet.status()["phase"] == "Paused"

    fleet.patch({"paused": False})
    done = fleet.wait_complete("v2")
    assert done["oldServingReplicas"] == 0
    assert not live(fleet, "v1")


def test_kubectl_scale_and_replicas_zero(testbed: Testbed, fleet: Fleet) -> None:
    fleet.apply(fleet_manifest(replicas=5, version="v1", drain_seconds=2))
    fleet.wait_complete("v1")
    (rs1,) = fleet.replica_sets()
    rev1 = revision(rs1)

    # The scale subresource: what `kubectl scale` and autoscalers read and write.
    scale = testbed.kubectl_json("get", "fr/w", "-n", fleet.namespace, "--subresource=scale")
    assert (scale["kind"], scale["spec"]["replicas"], scale["status"]["replicas"]) == ("Scale", 5, 5)
    assert scale["status"]["selector"] == "app=w"

    def scaled_to(n: int) -> dict[str, Any]:
        fleet.kubectl("scale", "fr/w", f"--replicas={n}")
        assert fleet.get()["spec"]["replicas"] == n
        status = fleet.wait_status(
            lambda s: (
                s.get("observedGeneration") == generation(fleet)
                and s.get("phase") == "Complete"
                and (s.get("replicas"), s.get("readyReplicas")) == (n, n)
            ),
            timeout=60,
            message=f"Complete at {n} replicas",
        )
        rs = fleet.replica_set(status["revision"])
        assert rs is not None
        assert rs["spec"]["replicas"] == n
        testbed.wait_for(lambda: len(live(fleet)) == n, timeout=30, message=f"{n} running pods")
        return status

    scaled_to(12)
    assert len([p for p in live(fleet) if is_ready(p)]) == 12
    scaled_to(3)
    assert {revision(p) for p in live(fleet)} == {rev1}, "scaling started a new revision"

    # Zero: every pod goes, the ReplicaSet stays at 0, the rollout is Complete.
    zero = scaled_to(0)
    assert (zero["updatedReplicas"], zero["oldServingReplicas"]) == (0, 0)
    assert is_true(zero, "TrafficStopped")
    scale = testbed.kubectl_json("get", "fr/w", "-n", fleet.namespace, "--subresource=scale")
    # (autoscaling/v1 Scale omits a zero count)
    assert (scale["spec"].get("replicas", 0), scale["status"].get("replicas", 0)) == (0, 0)

    # A new version at zero replicas completes without a pod, and scaling up runs it.
    fleet.patch({"version": "v2"})
    at_zero = fleet.wait_complete("v2")
    assert (at_zero["replicas"], at_zero["updatedReplicas"]) == (0, 0)
    assert at_zero["stableVersion"] == "v2"
    up = scaled_to(4)
    assert up["version"] == "v2"
    assert {version_of(p) for p in live(fleet)} == {"v2"}
    testbed.wait_for(
        lambda: {version_of(rs): rs["spec"]["replicas"] for rs in fleet.replica_sets()} == {"v1": 0, "v2": 4},
        timeout=30,
        message="v1 ReplicaSet at 0, kept as history",
    )


def test_scale_during_a_rollout_resizes_the_new_version(testbed: Testbed, fleet: Fleet) -> None:
    fleet.apply(fleet_manifest(replicas=10, version="v1", drain_seconds=2))
    fleet.wait_complete("v1")
    fleet.patch(slow_version("v2", 5))
    fleet.wait_status(
        lambda s: s.get("version") == "v2" and s.get("updatedReplicas") == 10,
        timeout=30,
        message="v2's pods created",
    )
    fleet.kubectl("scale", "fr/w", "--replicas=15")
    done = fleet.wait_status(
        lambda s: (
            s.get("observedGeneration") == generation(fleet)
            and s.get("phase") == "Complete"
            and s.get("version") == "v2"
            and s.get("updatedReplicas") == 15
            and s.get("readyReplicas") == 15
        ),
        timeout=60,
        message="Complete at v2 with 15 pods",
    )
    assert done["oldServingReplicas"] == 0
    testbed.wait_for(lambda: len(live(fleet, "v2")) == 15, timeout=30, message="15 v2 pods")
    assert not live(fleet, "v1")


def test_deleting_the_fastrollout_garbage_collects_everything(
    testbed: Testbed, fleet: Fleet, rollout_operator: OperatorProcess
) -> None:
    fleet.apply(fleet_manifest(replicas=6, version="v1", drain_seconds=3))
    fleet.wait_complete("v1")
    fleet.patch({"version": "v2"})
    fleet.wait_complete("v2")
    assert len(fleet.replica_sets()) == 2  # v1's still holds its draining pods

    with recording(testbed, fleet.namespace, "replicasets") as replica_sets:
        # No finalizer on it: deleting returns at once even though the operator is running.
        fleet.kubectl("delete", "fr/w", "--timeout=30s")
        testbed.wait_for(
            lambda: fleet.kubectl("get", "fastrollouts,replicasets,pods", "-o", "name").strip() == "",
            timeout=90,
            message="ReplicaSets and pods garbage-collected",
        )
    assert not [s for s in replica_sets.events() if s.type == "ADDED"], (
        "a ReplicaSet was created after the delete"
    )
    assert rollout_operator.alive, "the operator exited after the delete"


def test_operator_killed_mid_rollout_finishes_the_rollout_correctly(
    testbed: Testbed, fleet: Fleet, rollout_operator: OperatorProcess
) -> None:
    op = rollout_operator
    fleet.apply(fleet_manifest(replicas=20, version="v1", drain_seconds=15))
    fleet.wait_complete("v1")
    (rs1,) = fleet.replica_sets()
    rev1 = revision(rs1)

    with (
        recording(testbed, fleet.namespace, "replicasets") as replica_sets,
        recording(testbed, fleet.namespace, "fastrollouts") as rollouts,
    ):
        fleet.patch(slow_version("v2", 5))
        # 1. Killed while the new pods start (new ReplicaSet made, nothing cut over yet).
        fleet.wait_status(
            lambda s: s.get("version") == "v2" and s.get("updatedReplicas", 0) > 0,
            timeout=30,
            message="v2 starting",
        )
        assert op.kill() == -9
        assert fleet.status()["phase"] == "Progressing"
        # While it is down, the new pods become Ready; nobody cuts over.
        testbed.wait_for(
            lambda: len([p for p in live(fleet, "v2") if is_ready(p)]) == 20, timeout=60, message="v2 Ready"
        )
        assert len(live(fleet, "v1")) == 20
        op.restart()
        done = fleet.wait_complete("v2", timeout=60)
        assert done["drainingReplicas"] > 0

        # 2. Killed while the old pods drain; they finish draining while it is down.
        assert op.kill() == -9
        testbed.wait_for(
            lambda: not [p for p in fleet.pods() if revision(p) == rev1], timeout=60, message="v1 pods gone"
        )
        op.restart()
        drained = fleet.wait_drained("v2", timeout=60)
        testbed.wait_for(
            lambda: (fleet.replica_set(rev1) or {}).get("spec", {}).get("replicas") == 0,
            timeout=30,
            message="v1 ReplicaSet at 0, kept as history",
        )

    # No duplicate: one ReplicaSet ever created for v2, always asked at 20; no third ReplicaSet.
    added = [s.name for s in replica_sets.events() if s.type == "ADDED"]
    assert len(added) == 1, added
    new_rs = added[0]
    assert {s.obj["spec"]["replicas"] for s in replica_sets.events() if s.name == new_rs} == {20}
    assert sorted(rs["metadata"]["name"] for rs in fleet.replica_sets()) == sorted(
        [rs1["metadata"]["name"], new_rs]
    )
    # Correct final status.
    assert drained["phase"] == "Complete"
    assert (drained["version"], drained["stableVersion"]) == ("v2", "v2")
    assert (drained["replicas"], drained["readyReplicas"], drained["updatedReplicas"]) == (20, 20, 20)
    assert (drained["oldServingReplicas"], drained["drainingReplicas"]) == (0, 0)
    assert [v["version"] for v in drained["versions"]] == ["v2"]
    assert is_true(drained, "TrafficStopped")
    assert is_true(drained, "Drained")
    # The rollout's start is kept across restarts (it lives in the status), not reset by them.
    starts = {(s.obj.get("status") or {}).get("rolloutStartedAt") for s in rollouts.events()}
    starts.discard(None)
    v2_starts = {
        (s.obj.get("status") or {}).get("rolloutStartedAt")
        for s in rollouts.events()
        if (s.obj.get("status") or {}).get("version") == "v2"
    }
    assert len(v2_starts) == 1, f"rolloutStartedAt changed across restarts: {v2_starts}"
    # Each step posted once, though the operator ran three times.
    counts = _event_counts(fleet, lambda e: "v2" in e["message"] or e["reason"] == "Drained")
    assert counts.get("NewVersion") == 1, counts
    assert counts.get("CutOver") == 1, counts
    assert counts.get("TrafficStopped") == 1, counts


def _event_counts(fleet: Fleet, keep: Callable[[dict[str, Any]], bool]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in fleet.events():
        if keep(e):
            out[e["reason"]] = out.get(e["reason"], 0) + int(e.get("count") or 1)
    return out
