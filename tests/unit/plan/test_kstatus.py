"""What kstatus (Flux, Helm 4 --wait, cli-utils) concludes from a FastRollout's status, phase by phase.

kstatus is Go; its rules for a custom resource are few, so they are re-implemented here line for line
from sigs.k8s.io/cli-utils at commit 5895ad6c17dd06b99c1e5c8af17e2b12a3504fad, pkg/kstatus/status:
  status.go  Compute(): checkGenericProperties, then the legacy type rules (GetLegacyConditionsFn in
             core.go knows only built-in kinds, not FastRollout), then checkReadyCondition, else Current;
  generic.go checkGenericProperties(): metadata.deletionTimestamp -> Terminating; checkGeneration():
             status.observedGeneration present and != metadata.generation -> InProgress
             (LatestGenerationNotObserved); then the conditions in list order, first match wins:
             Reconciling True -> InProgress, Stalled True -> Failed.
"""

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.unit.plan.status_samples import samples

IN_PROGRESS, FAILED, CURRENT, TERMINATING = "InProgress", "Failed", "Current", "Terminating"


def kstatus_compute(obj: dict[str, Any]) -> tuple[str, str]:
    """(status, message) as kstatus' Compute() returns them for a custom resource."""
    metadata, status = obj.get("metadata") or {}, obj.get("status") or {}
    if metadata.get("deletionTimestamp"):
        return TERMINATING, "Resource scheduled for deletion"
    generation, observed = metadata.get("generation"), status.get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        kind = obj["kind"]
        return IN_PROGRESS, f"{kind} generation is {generation}, but latest observed generation is {observed}"
    conditions = status.get("conditions") or []
    for condition in conditions:
        if condition["type"] == "Reconciling" and condition["status"] == "True":
            return IN_PROGRESS, condition.get("message", "")
        if condition["type"] == "Stalled" and condition["status"] == "True":
            return FAILED, condition.get("message", "")
    # no legacy rules for fastrollout.io/FastRollout; then a Ready condition, if any
    for condition in conditions:
        if condition["type"] == "Ready":
            return (CURRENT, "Resource is Ready") if condition["status"] == "True" else (IN_PROGRESS, "")
    return CURRENT, "Resource is current"


# The closing note's table: sample -> what kstatus concludes.
EXPECTED = {
    "progressing": IN_PROGRESS,
    "paused": CURRENT,  # at rest by the user's choice: nothing is reconciling, nothing failed
    "complete": CURRENT,
    "failed": FAILED,
    "rolled-back": FAILED,  # the stable version serves, but the version asked for did not take
    "generation-not-observed": IN_PROGRESS,
    # kstatus' own limit: with no status.observedGeneration and no condition it cannot tell an object
    # nobody has reconciled yet from one that needs nothing. The operator writes its first status
    # within one pass; the Argo CD health check (docs/argocd-health.lua) says Progressing here.
    "no-status-yet": CURRENT,
}

SAMPLES = samples()


def test_every_phase_has_a_sample() -> None:
    assert set(SAMPLES) == set(EXPECTED)
    phases = {s["status"]["phase"] for s in SAMPLES.values() if "status" in s}
    assert phases == {"Progressing", "Paused", "Complete", "Failed", "RolledBack"}


@pytest.mark.parametrize("sample", EXPECTED)
def test_kstatus_reads_each_phase(sample: str) -> None:
    status, message = kstatus_compute(SAMPLES[sample])
    assert status == EXPECTED[sample], message
    if status == FAILED:
        assert "deadline" in message or "Ready" in message or "crash" in message, message


def test_reconciling_and_stalled_are_never_both_true() -> None:
    """kstatus takes the first of the two it meets in list order: both True would make the answer
    depend on the order of the conditions."""
    for obj in SAMPLES.values():
        true = {c["type"] for c in obj.get("status", {}).get("conditions", []) if c["status"] == "True"}
        assert not {"Reconciling", "Stalled"} <= true


def test_before_these_conditions_kstatus_read_a_rollout_in_flight_as_current() -> None:
    """Why the two conditions exist: without them kstatus falls through to Current mid-rollout."""
    obj = SAMPLES["progressing"]
    bare = [c for c in obj["status"]["conditions"] if c["type"] not in ("Reconciling", "Stalled")]
    assert kstatus_compute({**obj, "status": {**obj["status"], "conditions": bare}})[0] == CURRENT


def test_deletion_wins() -> None:
    obj = SAMPLES["progressing"]
    deleting = {**obj, "metadata": {**obj["metadata"], "deletionTimestamp": "2026-11-27T12:00:00Z"}}
    assert kstatus_compute(deleting)[0] == TERMINATING
