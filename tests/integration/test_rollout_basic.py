"""A rollout as the cluster shows it, without a Service: first version to Complete, then a version bump
(new ReplicaSet at full size in one step, cutover, Complete while old pods still drain, Drained, old
ReplicaSet deleted); `kubectl get fr` columns; no kopf marks on children; an event for each step (a
first rollout: NewVersion and RolloutComplete only)."""

from __future__ import annotations

import re
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rollout_helpers import (
    COLUMNS,
    LABEL_NAME,
    LABEL_VERSION,
    Fleet,
    fleet_manifest,
    is_ready,
    is_terminating,
    is_true,
    recording,
    revision,
    slow_version,
)

if TYPE_CHECKING:
    from conftest import Testbed


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_first_rollout_then_version_bump_completes_while_old_pods_drain(
    testbed: Testbed, fleet: Fleet
) -> None:
    # --- first version: straight to Complete, one ReplicaSet named <name>-<revision>, owned, labelled
    fleet.apply(fleet_manifest(replicas=10, version="v1", drain_seconds=20))
    first = fleet.wait_complete("v1", timeout=60)
    assert first["phase"] == "Complete"
    assert first["stableVersion"] == "v1"
    assert (first["replicas"], first["readyReplicas"], first["updatedReplicas"]) == (10, 10, 10)
    assert (first["oldServingReplicas"], first["drainingReplicas"]) == (0, 0)
    assert first["selector"] == "app=w"
    assert is_true(first, "Available")
    assert first.get("rolloutStartedAt")
    assert first.get("trafficStoppedAt")
    (rs1,) = fleet.replica_sets()
    rev1 = revision(rs1)
    assert rs1["metadata"]["name"] == f"w-{rev1}"
    assert rs1["metadata"]["labels"][LABEL_VERSION] == "v1"
    owner = rs1["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner.get("controller")) == ("FastRollout", "w", True)
    assert owner["uid"] == fleet.get()["metadata"]["uid"]
    v1_pods = fleet.pods()
    assert len(v1_pods) == 10
    assert all(is_ready(p) and revision(p) == rev1 for p in v1_pods)
    for pod in v1_pods:
        labels = pod["metadata"]["labels"]
        assert (labels[LABEL_NAME], labels[LABEL_VERSION]) == ("w", "v1")

    # --- version bump, with the ReplicaSets recorded from before it
    with recording(testbed, fleet.namespace, "replicasets") as replica_sets:
        fleet.patch({"version": "v2"})
        done = fleet.wait_complete("v2", timeout=60)
        new_rs = next(rs for rs in fleet.replica_sets() if rs["metadata"]["labels"][LABEL_VERSION] == "v2")
        rev2 = revision(new_rs)
        pods = fleet.pods()

        # Complete while old pods are still terminating: traffic stopped, draining reported
        assert done["phase"] == "Complete"
        assert is_true(done, "TrafficStopped")
        assert not is_true(done, "Drained"), done
        assert done["drainingReplicas"] > 0
        assert (done["updatedReplicas"], done["readyReplicas"], done["oldServingReplicas"]) == (10, 10, 0)
        assert done["stableVersion"] == "v2"
        old = [p for p in pods if revision(p) == rev1]
        assert old, "no old pod left: drain-seconds 20 should keep them Terminating"
        assert all(is_terminating(p) for p in old), "an old pod is not terminating after cutover"
        assert len([p for p in pods if revision(p) == rev2 and is_ready(p) and not is_terminating(p)]) == 10
        by_version = {v["version"]: v for v in done["versions"]}
        assert by_version["v2"]["replicas"] == 10
        assert by_version["v2"]["replicaSet"] == f"w-{rev2}"
        assert by_version["v1"]["replicas"] == 0
        assert by_version["v1"]["servingReplicas"] == 0
        assert by_version["v1"]["drainingReplicas"] > 0
        assert done["drainingReplicas"] == sum(v["drainingReplicas"] for v in done["versions"])

        # cutover: the old ReplicaSet asked at 0 (so nothing recreates what the collection delete removed)
        old_rs = fleet.replica_set(rev1)
        assert old_rs is None or old_rs["spec"]["replicas"] == 0

        # then Drained; the old ReplicaSet stays at 0 as revision history (undo reuses it)
        drained = fleet.wait_drained("v2", timeout=60)
        old_rs = fleet.replica_set(rev1)
        assert old_rs is not None
        assert old_rs["spec"]["replicas"] == 0
    assert drained["phase"] == "Complete"
    assert [v["version"] for v in drained["versions"]] == ["v2"]
    assert [p for p in fleet.pods() if revision(p) != rev2] == []
    assert ts(drained["rolloutStartedAt"]) <= ts(drained["trafficStoppedAt"]) <= ts(drained["drainedAt"])
    # drain-seconds 20: Drained comes well after TrafficStopped
    assert (ts(drained["drainedAt"]) - ts(drained["trafficStoppedAt"])).total_seconds() >= 10

    # The new ReplicaSet was created at full size in one step: its first version already asked for
    # 10 pods, and it never asked for anything else.
    versions = [s.obj for s in replica_sets.events() if s.name == f"w-{rev2}"]
    assert versions, "the recorder never saw the new ReplicaSet"
    assert versions[0]["spec"]["replicas"] == 10, "new ReplicaSet not created at full size"
    assert {v["spec"]["replicas"] for v in versions} == {10}
    # exactly one ReplicaSet was ever created for the new revision
    assert [s.type for s in replica_sets.events() if s.name == f"w-{rev2}"].count("ADDED") == 1


def test_kubectl_get_fr_prints_the_design_columns_with_correct_values(testbed: Testbed, fleet: Fleet) -> None:
    def row_is(expected: list[str]) -> bool:
        header, row = fleet.table()
        assert header == COLUMNS
        return row[:-1] == ["w", *expected]

    def wait_row(expected: list[str], what: str) -> None:
        testbed.wait_for(
            lambda: row_is(expected),
            timeout=60,
            interval=0.2,
            message=f"`kubectl get fr` to show {expected} ({what})",
        )

    fleet.apply(fleet_manifest(replicas=10, version="v1", drain_seconds=15))
    wait_row(["v1", "10", "10", "10", "0", "0", "Complete"], "first version complete")
    header, row = fleet.table()
    assert header == COLUMNS
    assert re.fullmatch(r"\d+s", row[-1]), f"AGE column: {row[-1]!r}"

    # New pods slow to start: the new version is UPDATED, the old one still serving and READY.
    fleet.patch(slow_version("v2", 8))
    wait_row(["v2", "10", "10", "10", "10", "0", "Progressing"], "new pods starting, old ones serving")
    # After cutover: the old pods drain for 15 s, the rollout is Complete already.
    wait_row(["v2", "10", "10", "10", "0", "10", "Complete"], "cut over, old pods draining")
    # The DRAINING column is what the cluster shows: 10 terminating pods.
    assert len([p for p in fleet.pods() if is_terminating(p)]) == 10
    wait_row(["v2", "10", "10", "10", "0", "0", "Complete"], "drained")


def test_children_carry_no_kopf_marks_and_every_step_posts_an_event(testbed: Testbed, fleet: Fleet) -> None:
    with (
        recording(testbed, fleet.namespace, "replicasets") as replica_sets,
        recording(testbed, fleet.namespace, "pods") as pods,
    ):
        fleet.apply(fleet_manifest(replicas=5, version="v1", drain_seconds=2))
        fleet.wait_complete("v1")
        fleet.patch({"version": "v2"})
        fleet.wait_complete("v2")
        fleet.wait_drained("v2", timeout=60)

    def kopf_marks(obj: dict[str, Any]) -> list[str]:
        meta = obj["metadata"]
        keys = [
            *(meta.get("annotations") or {}),
            *(meta.get("finalizers") or []),
            *(meta.get("labels") or {}),
        ]
        return [k for k in keys if "kopf" in k]

    # every version of every ReplicaSet and pod the API delivered, not only the final ones
    seen = replica_sets.events() + pods.events()
    assert len({s.name for s in replica_sets.events()}) == 2
    assert len({s.name for s in pods.events()}) == 10
    marked = {s.name: kopf_marks(s.obj) for s in seen if kopf_marks(s.obj)}
    assert marked == {}, f"kopf annotations/finalizers/labels on children: {marked}"
    finalized = {s.name: s.obj["metadata"]["finalizers"] for s in seen if s.obj["metadata"].get("finalizers")}
    assert finalized == {}, f"finalizers on children: {finalized}"
    # ... nor on the FastRollout (kopf's annotations or finalizer would block its deletion when the
    # operator is down)
    fr_meta = fleet.get()["metadata"]
    assert not [k for k in (fr_meta.get("annotations") or {}) if "kopf" in k]
    assert not fr_meta.get("finalizers")

    events = fleet.events()
    by_reason: dict[str, list[str]] = {}
    for e in events:
        by_reason.setdefault(e["reason"], []).append(e["message"])
    for reason in ("NewVersion", "CutOver", "TrafficStopped", "Drained"):
        assert reason in by_reason, f"no {reason} event; events: {by_reason}"
    assert any("v2" in m for m in by_reason["NewVersion"]), by_reason["NewVersion"]
    assert any("v2" in m for m in by_reason["CutOver"]), by_reason["CutOver"]
    assert any("v2" in m for m in by_reason["TrafficStopped"]), by_reason["TrafficStopped"]
    # v1 was a first rollout, with no old pod: its completion, and no step about old pods
    assert any("v1" in m for m in by_reason.get("RolloutComplete", [])), by_reason
    assert not any("v2" in m for m in by_reason.get("RolloutComplete", [])), by_reason["RolloutComplete"]
    about_v1 = [(r, m) for r in ("CutOver", "TrafficStopped", "Drained") for m in by_reason[r] if "v1" in m]
    assert about_v1 == [], about_v1
    assert all(e["type"] == "Normal" for e in events), [(e["reason"], e["type"]) for e in events]
    assert all(e["involvedObject"]["uid"] == fleet.get()["metadata"]["uid"] for e in events)


def test_complete_when_drained_waits_for_the_last_old_pod(testbed: Testbed, fleet: Fleet) -> None:
    fleet.apply(fleet_manifest(replicas=5, version="v1", drain_seconds=10, completeWhen="Drained"))
    fleet.wait_complete("v1")
    fleet.patch({"version": "v2"})
    # Traffic stopped, old pods still draining: not Complete yet.
    waiting = fleet.wait_status(
        lambda s: (
            s.get("version") == "v2" and is_true(s, "TrafficStopped") and s.get("drainingReplicas", 0) > 0
        ),
        timeout=60,
        message="TrafficStopped while old pods drain",
    )
    assert waiting["phase"] == "Progressing"
    assert waiting["oldServingReplicas"] == 0
    assert not is_true(waiting, "Drained")
    progressing = next(c for c in waiting["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "WaitingForDrain"), progressing
    # kstatus: InProgress until the last old pod is gone (completeWhen: Drained)
    assert is_true(waiting, "Reconciling")
    assert not is_true(waiting, "Stalled")
    assert [p for p in fleet.pods() if p["metadata"]["labels"][LABEL_VERSION] == "v1"], (
        "old pods gone already"
    )
    # Complete once the last old pod is gone.
    done = fleet.wait_complete("v2", timeout=60)
    assert is_true(done, "Drained")
    assert done["drainingReplicas"] == 0
    assert not is_true(done, "Reconciling")
    assert not is_true(done, "Stalled")
    assert not [p for p in fleet.pods() if p["metadata"]["labels"][LABEL_VERSION] == "v1"]
    assert ts(done["trafficStoppedAt"]) <= ts(done["drainedAt"])
