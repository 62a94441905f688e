"""`kubectl fastrollout` against the bed: status exit codes (reached, rolled back, timed out), history
listing the kept versions, undo returning to the previous version through its kept ReplicaSet.

The plugin runs as a subprocess (`python -m fastrollout.plugin.main`, what the console script runs)
with the user's kubeconfig and -n, as a CI job would call it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rollout_helpers import Fleet, fleet_manifest, revision, version_of

if TYPE_CHECKING:
    from conftest import Testbed

REPO = Path(__file__).resolve().parents[2]
NEVER_READY = {"template": {"metadata": {"labels": {"fastrollout.test/never-ready": "true"}}}}
DEADLINE = 8  # progress deadline of the failing version: short, the module must stay fast


def plugin(bed: Testbed, namespace: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = {**bed.env, "PYTHONPATH": str(REPO / "operator")}
    return subprocess.run(
        [sys.executable, "-m", "fastrollout.plugin.main", *args, "-n", namespace],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def small_fleet(fleet: Fleet, **spec: object) -> None:
    fleet.apply(fleet_manifest(replicas=3, version="v1", drain_seconds=1, pre_stop=1, grace=10, **spec))
    fleet.wait_complete("v1")


def test_status_history_and_undo(testbed: Testbed, fleet: Fleet) -> None:
    small_fleet(fleet)
    v1_rs = {rs["metadata"]["name"]: rs["metadata"]["uid"] for rs in fleet.replica_sets()}

    fleet.patch({"version": "v2"})
    done = plugin(testbed, fleet.namespace, "status", "w", "--until", "traffic-stopped", "--timeout", "60s")
    assert done.returncode == 0, done
    assert done.stdout.strip().splitlines()[-1].endswith(": TrafficStopped"), done.stdout
    assert fleet.status()["version"] == "v2"

    # v1's ReplicaSet stays, at 0, as history (revisionHistoryLimit defaults to 10)
    testbed.wait_for(
        lambda: {version_of(rs): rs["spec"]["replicas"] for rs in fleet.replica_sets()} == {"v1": 0, "v2": 3},
        timeout=20,
        message="v1 kept at 0 beside v2",
    )
    listed = plugin(testbed, fleet.namespace, "history", "w")
    assert listed.returncode == 0, listed
    rows = [line.split() for line in listed.stdout.strip().splitlines()]
    assert rows[0] == ["VERSION", "REVISION", "REPLICASET", "CREATED", "REPLICAS", "CURRENT"]
    assert [r[0] for r in rows[1:]] == ["v1", "v2"]
    assert rows[2][-1] == "target,stable"

    undone = plugin(testbed, fleet.namespace, "undo", "w")
    assert undone.returncode == 0, undone
    assert "rolled back to version v1" in undone.stdout
    back = plugin(testbed, fleet.namespace, "status", "w", "--timeout", "60s")
    assert back.returncode == 0, back
    status = fleet.status()
    assert (status["version"], status["stableVersion"]) == ("v1", "v1")
    # the kept ReplicaSet was reused: same name, same object
    now = {
        rs["metadata"]["name"]: rs["metadata"]["uid"] for rs in fleet.replica_sets() if version_of(rs) == "v1"
    }
    assert now == v1_rs
    assert fleet.get()["spec"]["version"] == "v1"


def test_status_times_out_then_reports_the_rollback(testbed: Testbed, fleet: Fleet) -> None:
    small_fleet(fleet, progressDeadlineSeconds=DEADLINE)
    fleet.patch({"version": "v2", **NEVER_READY})

    started = time.monotonic()
    waited = plugin(testbed, fleet.namespace, "status", "w", "--timeout", "2s")
    assert waited.returncode == 2, waited
    assert "timed out after 2s" in waited.stdout
    assert time.monotonic() - started < DEADLINE, "the timeout should end the wait well before the deadline"

    failed = plugin(testbed, fleet.namespace, "status", "w", "--until", "drained", "--timeout", "60s")
    assert failed.returncode == 1, failed
    assert "rolled back to version v1" in failed.stdout
    assert fleet.status()["phase"] == "RolledBack"

    table = plugin(testbed, fleet.namespace, "get", "w")
    assert table.returncode == 0, table
    assert table.stdout.splitlines()[0].startswith("w: version v2, phase RolledBack")


def test_missing_object_exits_3(testbed: Testbed, crd: None, namespace: str) -> None:
    missing = plugin(testbed, namespace, "status", "nope", "--timeout", "5s")
    assert missing.returncode == 3, missing
    assert "not found" in missing.stderr


def test_restart_and_pause(testbed: Testbed, fleet: Fleet) -> None:
    small_fleet(fleet)
    before = revision(fleet.replica_sets()[0])
    assert plugin(testbed, fleet.namespace, "pause", "w").returncode == 0
    assert fleet.get()["spec"]["paused"] is True
    assert plugin(testbed, fleet.namespace, "restart", "w").returncode == 0
    assert plugin(testbed, fleet.namespace, "resume", "w").returncode == 0
    done = plugin(testbed, fleet.namespace, "status", "w", "--timeout", "60s")
    assert done.returncode == 0, done
    status = fleet.status()
    assert status["revision"] != before
    assert status["version"] == "v1"
    annotations = fleet.get()["spec"]["template"]["metadata"]["annotations"]
    assert "fastrollout.io/restartedAt" in annotations
