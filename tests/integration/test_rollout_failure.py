"""A new version whose pods never become Ready: Failed at the progress deadline; with rollbackOnFailure
the new pods go and the stable version is untouched (same pods), without it nothing is rolled back."""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rollout_helpers import (
    Fleet,
    condition,
    fleet_manifest,
    is_ready,
    is_terminating,
    is_true,
    operator_metric,
    recording,
    version_of,
)

if TYPE_CHECKING:
    from conftest import OperatorProcess, Testbed

DEADLINE = 15
NEVER_READY = {"template": {"metadata": {"labels": {"fastrollout.test/never-ready": "true"}}}}


def live_uids(fleet: Fleet, version: str) -> set[str]:
    return {
        p["metadata"]["uid"]
        for p in fleet.pods()
        if version_of(p) == version and not is_terminating(p) and is_ready(p)
    }


def start_failing_rollout(fleet: Fleet, *, rollback: bool) -> tuple[set[str], float]:
    fleet.apply(
        fleet_manifest(
            replicas=10,
            version="v1",
            drain_seconds=5,
            progressDeadlineSeconds=DEADLINE,
            rollbackOnFailure=rollback,
        )
    )
    fleet.wait_complete("v1")
    uids = live_uids(fleet, "v1")
    assert len(uids) == 10
    started = time.monotonic()
    fleet.patch({"version": "v2", **NEVER_READY})
    return uids, started


def test_never_ready_version_fails_at_the_deadline_and_rolls_back(
    testbed: Testbed, fleet: Fleet, rollout_operator: OperatorProcess
) -> None:
    v1_uids, started = start_failing_rollout(fleet, rollback=True)
    progressing = fleet.wait_status(
        lambda s: s.get("version") == "v2" and s.get("updatedReplicas") == 10,
        timeout=30,
        message="v2's 10 pods created",
    )
    # What the FastRolloutStuck alert reads: while Progressing and not cut over, the phase and the
    # planner's deadline (rolloutStartedAt + progressDeadlineSeconds) are exported.
    labels = {"namespace": fleet.namespace, "fastrollout": fleet.name}
    due = datetime.fromisoformat(progressing["rolloutStartedAt"]).timestamp() + DEADLINE
    deadline = testbed.wait_for(  # the pass records its metrics just after writing the status
        lambda: operator_metric(rollout_operator, "fastrollout_rollout_deadline_timestamp_seconds", **labels),
        timeout=5,
        message="the deadline exported",
    )
    assert deadline == due
    assert operator_metric(rollout_operator, "fastrollout_rollout_phase", **labels, phase="Progressing") == 1
    status = fleet.wait_status(
        lambda s: s.get("phase") == "RolledBack", timeout=DEADLINE + 45, message="RolledBack"
    )
    elapsed = time.monotonic() - started
    assert elapsed >= DEADLINE - 1, f"failed after {elapsed:.1f}s, before the {DEADLINE}s progress deadline"

    # the status says why
    assert status["version"] == "v2"
    assert status["stableVersion"] == "v1"
    progressing = condition(status, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded"), (
        progressing
    )
    assert "v1" in status["message"], status["message"]
    assert "roll" in status["message"].lower(), status["message"]
    # kstatus (Flux, Helm 4 --wait): Failed, with the reason
    stalled, reconciling = condition(status, "Stalled"), condition(status, "Reconciling")
    assert (stalled["status"], stalled["reason"]) == ("True", "ProgressDeadlineExceeded"), stalled
    assert reconciling["status"] == "False", reconciling
    # the new pods are removed ...
    testbed.wait_for(
        lambda: not [p for p in fleet.pods() if version_of(p) == "v2" and not is_terminating(p)],
        timeout=30,
        message="every v2 pod removed",
    )
    # ... and the stable version untouched: the very same pods, Ready, its ReplicaSet at full size
    assert live_uids(fleet, "v1") == v1_uids
    v1_rs = next(rs for rs in fleet.replica_sets() if version_of(rs) == "v1")
    assert v1_rs["spec"]["replicas"] == 10
    after = fleet.wait_status(
        lambda s: (
            s.get("updatedReplicas") == 0
            and s.get("oldServingReplicas") == 10
            and s.get("phase") == "RolledBack"
        ),
        timeout=30,
        message="status: no v2 pod, 10 v1 pods serving",
    )
    assert after["readyReplicas"] == 10
    assert is_true(after, "Available")
    # The metrics say so too (FastRolloutFailed), and the deadline series is gone.
    testbed.wait_for(
        lambda: operator_metric(rollout_operator, "fastrollout_rollout_phase", **labels, phase="RolledBack"),
        timeout=5,
        message="phase RolledBack exported",
    )
    assert operator_metric(rollout_operator, "fastrollout_rollout_phase", **labels, phase="Progressing") == 0
    assert (
        operator_metric(rollout_operator, "fastrollout_rollout_deadline_timestamp_seconds", **labels) is None
    )
    assert operator_metric(rollout_operator, "fastrollout_rollouts_total", result="rolled_back") == 1

    events = {e["reason"]: e for e in fleet.events()}
    assert events["RolloutFailed"]["type"] == "Warning"
    assert events["RolledBack"]["type"] == "Warning"
    assert "v1" in events["RolledBack"]["message"]

    # The failed template is not retried while the spec stays the same: an observation window in
    # which no v2 pod may appear (a negative check needs a window; the operator passes every ~1 s).
    with recording(testbed, fleet.namespace, "pods") as pods:
        time.sleep(6)
    assert not [s for s in pods.events() if s.type == "ADDED" and version_of(s.obj) == "v2"], "v2 retried"
    assert fleet.status()["phase"] == "RolledBack"

    # A fixed version rolls out normally from there.
    fleet.patch(
        {"version": "v3", "template": {"metadata": {"labels": {"fastrollout.test/never-ready": None}}}}
    )
    done = fleet.wait_complete("v3")
    assert done["stableVersion"] == "v3"
    assert not is_true(done, "Stalled")
    assert not is_true(done, "Reconciling")


def test_never_ready_version_without_rollback_fails_and_keeps_everything(
    testbed: Testbed, fleet: Fleet
) -> None:
    v1_uids, started = start_failing_rollout(fleet, rollback=False)
    status = fleet.wait_status(lambda s: s.get("phase") == "Failed", timeout=DEADLINE + 45, message="Failed")
    assert time.monotonic() - started >= DEADLINE - 1
    assert status["version"] == "v2"
    assert status["stableVersion"] == "v1"
    assert condition(status, "Progressing")["reason"] == "ProgressDeadlineExceeded"
    assert (condition(status, "Stalled")["status"], condition(status, "Reconciling")["status"]) == (
        "True",
        "False",
    )

    # nothing rolled back: v2's pods stay (not Ready), v1's keep serving, the same pods
    v2_rs = next(rs for rs in fleet.replica_sets() if version_of(rs) == "v2")
    assert v2_rs["spec"]["replicas"] == 10
    v2_pods = [p for p in fleet.pods() if version_of(p) == "v2"]
    assert len(v2_pods) == 10
    assert not any(is_terminating(p) or is_ready(p) for p in v2_pods)
    assert live_uids(fleet, "v1") == v1_uids
    assert (status["updatedReplicas"], status["oldServingReplicas"], status["readyReplicas"]) == (10, 10, 10)

    reasons = fleet.event_reasons()
    assert "RolloutFailed" in reasons
    assert "RolledBack" not in reasons
    assert fleet.status()["phase"] == "Failed"


def test_crash_looping_new_pod_fails_the_rollout_at_once(testbed: Testbed, fleet: Fleet) -> None:
    """kwok runs no containers, so the crash loop is written into one new pod's status by hand, as a
    kubelet would report it; kwok leaves never-ready pods' status alone after they run."""
    fleet.apply(fleet_manifest(replicas=5, version="v1", drain_seconds=2, progressDeadlineSeconds=600))
    fleet.wait_complete("v1")
    v1_uids = live_uids(fleet, "v1")
    fleet.patch({"version": "v2", **NEVER_READY})
    victim = testbed.wait_for(
        lambda: next(
            (p for p in fleet.pods() if version_of(p) == "v2" and p.get("status", {}).get("podIP")), None
        ),
        timeout=30,
        message="a running v2 pod",
    )
    started = time.monotonic()
    crash = {
        "status": {
            "containerStatuses": [
                {
                    "name": "worker",
                    "image": victim["spec"]["containers"][0]["image"],
                    "imageID": "",
                    "ready": False,
                    "started": False,
                    "restartCount": 3,
                    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
                }
            ]
        }
    }
    fleet.kubectl(
        "patch",
        "pod",
        victim["metadata"]["name"],
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(crash),
    )
    status = fleet.wait_status(
        lambda s: s.get("phase") == "RolledBack", timeout=30, message="RolledBack on the crash loop"
    )
    assert time.monotonic() - started < 20, "a crash loop should fail the rollout at once, not at a deadline"
    assert condition(status, "Progressing")["reason"] == "NewPodsCrashing"
    assert "crash" in status["message"].lower(), status["message"]
    testbed.wait_for(
        lambda: not [p for p in fleet.pods() if version_of(p) == "v2" and not is_terminating(p)],
        timeout=30,
        message="v2 pods removed",
    )
    assert live_uids(fleet, "v1") == v1_uids
