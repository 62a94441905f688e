"""Metrics: what a status transition counts, and that series of gone versions/FastRollouts vanish."""

from datetime import UTC, datetime

import pytest

from fastrollout.api import FastRolloutSpec, FastRolloutStatus, Phase, VersionStatus
from fastrollout.metrics import Metrics, Transition, deadline, transition

T0, T1, T2 = "2026-11-27T15:00:00Z", "2026-11-27T15:00:12Z", "2026-11-27T15:05:00Z"
NOW = datetime(2026, 11, 27, 15, 6, tzinfo=UTC)


def spec(**fields: object) -> FastRolloutSpec:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "w", "image": "w"}]}}
    return FastRolloutSpec.model_validate({"replicas": 3, "version": "v2", "template": template, **fields})


SPEC = spec()


def status(**fields: object) -> FastRolloutStatus:
    return FastRolloutStatus.model_validate(fields)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(status(), status(phase="Progressing", rolloutStartedAt=T0), Transition(), id="started"),
        pytest.param(
            status(phase="Progressing", rolloutStartedAt=T0),
            status(phase="Complete", rolloutStartedAt=T0, trafficStoppedAt=T1),
            Transition(result="complete", traffic_stopped_seconds=12.0),
            id="complete",
        ),
        pytest.param(
            status(phase="Complete", rolloutStartedAt=T0, trafficStoppedAt=T1),
            status(phase="Complete", rolloutStartedAt=T0, trafficStoppedAt=T1, drainedAt=T2),
            Transition(drained_seconds=300.0),
            id="drained-later",
        ),
        pytest.param(
            status(phase="Complete", rolloutStartedAt=T0, trafficStoppedAt=T1, drainedAt=T2),
            status(phase="Complete", rolloutStartedAt=T0, trafficStoppedAt=T1, drainedAt=T2),
            Transition(),
            id="unchanged-counts-nothing",
        ),
        pytest.param(
            status(phase="Progressing", rolloutStartedAt=T0),
            status(phase="Failed", rolloutStartedAt=T0),
            Transition(result="failed"),
            id="failed",
        ),
        pytest.param(
            status(phase="Failed", rolloutStartedAt=T0),
            status(phase="RolledBack", rolloutStartedAt=T0),
            Transition(result="rolled_back"),
            id="rolled-back",
        ),
        pytest.param(
            status(phase="Complete", rolloutStartedAt=T0, trafficStoppedAt=T1),
            status(phase="Complete", rolloutStartedAt=T1, trafficStoppedAt=T2),
            Transition(traffic_stopped_seconds=288.0),
            id="next-rollout-observed-again",
        ),
        pytest.param(
            status(phase="Progressing"),
            status(phase="Complete", trafficStoppedAt="not a time"),
            Transition(result="complete"),
            id="unparseable-time-skipped",
        ),
    ],
)
def test_transition(old: FastRolloutStatus, new: FastRolloutStatus, expected: Transition) -> None:
    assert transition(old, new) == expected


def two_versions() -> FastRolloutStatus:
    return FastRolloutStatus(
        phase=Phase.COMPLETE,
        version="v2",
        stable_version="v2",
        rollout_started_at=T0,
        traffic_stopped_at=T1,
        versions=[
            VersionStatus(version="v2", replicas=3, ready_replicas=3, serving_replicas=3),
            VersionStatus(version="v1", draining_replicas=2),
        ],
    )


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    result: float | None = metrics.registry.get_sample_value(name, labels)
    return result


def test_record_sets_gauges_and_counts_once() -> None:
    metrics = Metrics()
    new = two_versions()
    metrics.record(
        "io-dev",
        "web",
        FastRolloutStatus(phase=Phase.PROGRESSING, rollout_started_at=T0),
        new,
        spec=SPEC,
        now=NOW,
    )
    metrics.record("io-dev", "web", new, new, spec=SPEC, now=NOW)
    fleet = {"namespace": "io-dev", "fastrollout": "web"}
    assert value(metrics, "fastrollout_pods", **fleet, version="v2", state="serving") == 3
    assert value(metrics, "fastrollout_pods", **fleet, version="v1", state="draining") == 2
    assert value(metrics, "fastrollout_version_info", **fleet, version="v2", role="target") == 1
    assert value(metrics, "fastrollout_version_info", **fleet, version="v2", role="stable") == 1
    assert value(metrics, "fastrollout_rollouts_total", result="complete") == 1
    assert value(metrics, "fastrollout_rollouts_total", result="failed") == 0
    assert value(metrics, "fastrollout_rollout_traffic_stopped_duration_seconds_count", **fleet) == 1
    assert value(metrics, "fastrollout_rollout_traffic_stopped_duration_seconds_sum", **fleet) == 12


def test_gone_version_and_deleted_fastrollout_lose_their_series() -> None:
    metrics = Metrics()
    both = two_versions()
    metrics.record("io-dev", "web", FastRolloutStatus(rollout_started_at=T0), both, spec=SPEC, now=NOW)
    only_new = both.model_copy(update={"versions": both.versions[:1]})
    metrics.record("io-dev", "web", both, only_new, spec=SPEC, now=NOW)
    fleet = {"namespace": "io-dev", "fastrollout": "web"}
    assert value(metrics, "fastrollout_pods", **fleet, version="v1", state="draining") is None
    assert value(metrics, "fastrollout_pods", **fleet, version="v2", state="ready") == 3
    metrics.forget("io-dev", "web")
    assert value(metrics, "fastrollout_pods", **fleet, version="v2", state="ready") is None
    assert value(metrics, "fastrollout_version_info", **fleet, version="v2", role="target") is None
    assert value(metrics, "fastrollout_rollout_traffic_stopped_duration_seconds_count", **fleet) is None
    assert value(metrics, "fastrollout_rollout_phase", **fleet, phase="Complete") is None
    metrics.forget("io-dev", "never-seen")  # no error


PROGRESSING = status(phase="Progressing", revision="abc", rolloutStartedAt=T0)


@pytest.mark.parametrize(
    ("rollout", "observed", "expected"),
    [
        pytest.param(SPEC, PROGRESSING, "2026-11-27T15:10:00+00:00", id="start-plus-600s"),
        pytest.param(
            spec(progressDeadlineSeconds=60), PROGRESSING, "2026-11-27T15:01:00+00:00", id="own-deadline"
        ),
        pytest.param(
            SPEC,
            status(
                phase="Progressing",
                revision="abc",
                rolloutStartedAt=T0,
                conditions=[
                    {
                        "type": "Progressing",
                        "status": "True",
                        "reason": "RolloutProgressing",
                        "lastTransitionTime": T2,
                    }
                ],
            ),
            "2026-11-27T15:15:00+00:00",
            id="from-the-last-resume",
        ),
        pytest.param(
            SPEC,
            status(
                phase="Progressing",
                revision="abc",
                rolloutStartedAt=T0,
                conditions=[{"type": "Progressing", "status": "True", "reason": "WaitingForDrain"}],
            ),
            None,
            id="cut-over-and-draining",
        ),
        pytest.param(SPEC, status(phase="Complete", revision="abc", rolloutStartedAt=T0), None, id="settled"),
        pytest.param(SPEC, status(phase="Paused", revision="abc", rolloutStartedAt=T0), None, id="paused"),
        pytest.param(SPEC, status(phase="Progressing"), None, id="no-revision-yet"),
    ],
)
def test_deadline_is_the_planners_while_progressing(
    rollout: FastRolloutSpec, observed: FastRolloutStatus, expected: str | None
) -> None:
    due = deadline(rollout, observed, NOW)
    assert (due.isoformat() if due else None) == expected


def test_phase_and_deadline_series_follow_the_status() -> None:
    metrics = Metrics()
    fleet = {"namespace": "io-dev", "fastrollout": "web"}
    metrics.record("io-dev", "web", FastRolloutStatus(), PROGRESSING, spec=SPEC, now=NOW)
    phases = {p.value: value(metrics, "fastrollout_rollout_phase", **fleet, phase=p.value) for p in Phase}
    assert phases == {
        "Pending": 0,
        "Progressing": 1,
        "Paused": 0,
        "Complete": 0,
        "Failed": 0,
        "RolledBack": 0,
    }
    due = datetime(2026, 11, 27, 15, 10, tzinfo=UTC).timestamp()
    assert value(metrics, "fastrollout_rollout_deadline_timestamp_seconds", **fleet) == due
    complete = PROGRESSING.model_copy(update={"phase": Phase.COMPLETE})
    metrics.record("io-dev", "web", PROGRESSING, complete, spec=SPEC, now=NOW)
    assert value(metrics, "fastrollout_rollout_phase", **fleet, phase="Complete") == 1
    assert value(metrics, "fastrollout_rollout_phase", **fleet, phase="Progressing") == 0
    assert value(metrics, "fastrollout_rollout_deadline_timestamp_seconds", **fleet) is None
    metrics.record("io-dev", "other", FastRolloutStatus(), FastRolloutStatus(), spec=SPEC, now=NOW)
    assert (
        value(metrics, "fastrollout_rollout_phase", namespace="io-dev", fastrollout="other", phase="Pending")
        is None
    )
    metrics.record("io-dev", "web", complete, PROGRESSING, spec=SPEC, now=NOW)
    metrics.forget("io-dev", "web")
    assert value(metrics, "fastrollout_rollout_phase", **fleet, phase="Progressing") is None
    assert value(metrics, "fastrollout_rollout_deadline_timestamp_seconds", **fleet) is None
