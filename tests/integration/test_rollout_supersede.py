"""A newer version during a rollout supersedes it at once, the stable version serving until the newest
is ready; old versions draining at the same time are all reported in status.versions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rollout_helpers import (
    Fleet,
    fleet_manifest,
    is_ready,
    is_terminating,
    recording,
    slow_version,
    version_of,
)

if TYPE_CHECKING:
    from conftest import Testbed


def test_newer_version_mid_rollout_supersedes_it(testbed: Testbed, fleet: Fleet) -> None:
    # No revision history here: the empty old ReplicaSets are deleted (the limit at work on a real cluster).
    fleet.apply(fleet_manifest(replicas=10, version="v1", drain_seconds=10, revisionHistoryLimit=0))
    fleet.wait_complete("v1")
    with (
        recording(testbed, fleet.namespace, "pods") as pods,
        recording(testbed, fleet.namespace, "replicasets") as replica_sets,
        recording(testbed, fleet.namespace, "fastrollouts") as rollouts,
    ):
        # v2's pods take 60 s to start: it is still in flight when v3 arrives.
        fleet.patch(slow_version("v2", 60))
        fleet.wait_status(
            lambda s: s.get("version") == "v2" and s.get("updatedReplicas") == 10,
            timeout=30,
            message="v2's 10 pods created",
        )
        # v3 starts fast (merge patch: null removes the start-delay annotation)
        fleet.patch(
            {
                "version": "v3",
                "template": {"metadata": {"annotations": {"fastrollout.test/start-delay": None}}},
            }
        )
        done = fleet.wait_complete("v3", timeout=60)
        testbed.wait_for(
            lambda: {version_of(rs) for rs in fleet.replica_sets()} == {"v3"},
            timeout=60,
            message="only v3's ReplicaSet left",
        )

    assert done["stableVersion"] == "v3"
    # v2 never became stable or Complete, and no v2 pod ever became Ready
    for seen in rollouts.events():
        status = seen.obj.get("status") or {}
        assert status.get("stableVersion") in ("v1", "v3"), status.get("stableVersion")
        assert not (status.get("version") == "v2" and status.get("phase") == "Complete")
    assert not [s for s in pods.events() if version_of(s.obj) == "v2" and is_ready(s.obj)]
    # v1 served until v3 was ready: Ready, non-terminating pods never below 10 at any pod change
    for seen, state in pods.snapshots():
        ready = sum(1 for p in state.values() if is_ready(p) and not is_terminating(p))
        assert ready >= 10, f"{ready} Ready pods at {seen.type} of {seen.name}"
    # v3's ReplicaSet was created at full size, once
    v3 = [s for s in replica_sets.events() if version_of(s.obj) == "v3"]
    assert [s.type for s in v3].count("ADDED") == 1
    assert v3[0].obj["spec"]["replicas"] == 10
    assert {s.obj["spec"]["replicas"] for s in v3} == {10}
    # the superseded version's pods were removed without waiting for them
    assert all(is_terminating(p) for p in fleet.pods() if version_of(p) == "v2")

    reasons = fleet.event_reasons()
    assert "Superseded" in reasons, reasons
    superseded = [e["message"] for e in fleet.events() if e["reason"] == "Superseded"]
    assert any("v2" in m and "v3" in m for m in superseded), superseded
    fleet.wait_drained("v3", timeout=90)


def test_two_old_versions_draining_at_once_are_both_reported(testbed: Testbed, fleet: Fleet) -> None:
    fleet.apply(fleet_manifest(replicas=10, version="v1", drain_seconds=20))
    fleet.wait_complete("v1")
    fleet.patch({"version": "v2"})
    fleet.wait_complete("v2")
    fleet.patch({"version": "v3"})
    both = fleet.wait_status(
        lambda s: (
            s.get("version") == "v3"
            and s.get("phase") == "Complete"
            and {v["version"] for v in s.get("versions") or [] if v["drainingReplicas"] > 0} == {"v1", "v2"}
        ),
        timeout=60,
        message="v3 Complete while v1 and v2 both drain",
    )
    by_version = {v["version"]: v for v in both["versions"]}
    assert set(by_version) == {"v1", "v2", "v3"}
    for old in ("v1", "v2"):
        entry = by_version[old]
        assert (entry["replicas"], entry["readyReplicas"], entry["servingReplicas"]) == (0, 0, 0), entry
        assert entry["drainingReplicas"] > 0
        assert entry["replicaSet"].startswith("w-")
    assert by_version["v3"]["replicas"] == 10
    assert by_version["v3"]["drainingReplicas"] == 0
    assert (
        both["drainingReplicas"]
        == by_version["v1"]["drainingReplicas"] + by_version["v2"]["drainingReplicas"]
    )
    assert both["oldServingReplicas"] == 0
    # what the cluster shows agrees: terminating pods of both old versions
    terminating = {version_of(p) for p in fleet.pods() if is_terminating(p)}
    assert terminating == {"v1", "v2"}

    # v1 goes first (cut over first), then v2: Drained, each old ReplicaSet emptied and kept as history
    fleet.wait_drained("v3", timeout=90)
    testbed.wait_for(
        lambda: (
            {version_of(rs): rs["spec"]["replicas"] for rs in fleet.replica_sets()}
            == {"v1": 0, "v2": 0, "v3": 10}
        ),
        timeout=30,
        message="old ReplicaSets at 0, kept by revisionHistoryLimit",
    )
    assert [v["version"] for v in fleet.status()["versions"]] == ["v3"]


def test_manual_rollback_while_the_old_version_still_drains(testbed: Testbed, fleet: Fleet) -> None:
    """Applying the previous template again is a new rollout to the same revision: its ReplicaSet (at 0,
    its old pods still draining) is reused and grown again, the version just left is cut over."""
    fleet.apply(fleet_manifest(replicas=10, version="v1", drain_seconds=15))
    fleet.wait_complete("v1")
    (rs1,) = fleet.replica_sets()
    fleet.patch({"version": "v2"})
    fleet.wait_complete("v2")
    with recording(testbed, fleet.namespace, "replicasets") as replica_sets:
        fleet.patch({"version": "v1"})
        back = fleet.wait_complete("v1", timeout=60)
    live_v1 = [p for p in fleet.pods() if version_of(p) == "v1" and not is_terminating(p)]
    assert len(live_v1) == 10
    assert all(is_ready(p) for p in live_v1)
    assert all(p["metadata"]["ownerReferences"][0]["name"] == rs1["metadata"]["name"] for p in live_v1)
    assert not [p for p in fleet.pods() if version_of(p) == "v2" and not is_terminating(p)]
    assert not [s for s in replica_sets.events() if s.type == "ADDED"], (
        "a new ReplicaSet for a known revision"
    )
    assert (back["stableVersion"], back["updatedReplicas"], back["oldServingReplicas"]) == ("v1", 10, 0)
    by_version = {v["version"]: v for v in back["versions"]}
    assert by_version["v1"]["replicas"] == 10
    assert by_version["v2"]["drainingReplicas"] > 0
    terminating = len([p for p in fleet.pods() if is_terminating(p)])
    assert back["drainingReplicas"] <= terminating + 10  # read a moment apart; both old sets drain
    assert back["drainingReplicas"] >= by_version["v2"]["drainingReplicas"]
    fleet.wait_drained("v1", timeout=90)
    testbed.wait_for(
        lambda: (
            {version_of(rs): rs["spec"]["replicas"] for rs in fleet.replica_sets()} == {"v1": 10, "v2": 0}
        ),
        timeout=30,
        message="v2's ReplicaSet at 0, kept as history",
    )
