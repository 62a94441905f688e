"""Metrics: what a status transition counts, and that series of gone versions/FastRollouts vanish."""

import pytest

from fastrollout.api import FastRolloutStatus, Phase, VersionStatus
from fastrollout.metrics import Metrics, Transition, transition

T0, T1, T2 = "2026-11-27T15:00:00Z", "2026-11-27T15:00:12Z", "2026-11-27T15:05:00Z"


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
    metrics.record("io-dev", "web", FastRolloutStatus(phase=Phase.PROGRESSING, rollout_started_at=T0), new)
    metrics.record("io-dev", "web", new, new)
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
    metrics.record("io-dev", "web", FastRolloutStatus(rollout_started_at=T0), both)
    only_new = both.model_copy(update={"versions": both.versions[:1]})
    metrics.record("io-dev", "web", both, only_new)
    fleet = {"namespace": "io-dev", "fastrollout": "web"}
    assert value(metrics, "fastrollout_pods", **fleet, version="v1", state="draining") is None
    assert value(metrics, "fastrollout_pods", **fleet, version="v2", state="ready") == 3
    metrics.forget("io-dev", "web")
    assert value(metrics, "fastrollout_pods", **fleet, version="v2", state="ready") is None
    assert value(metrics, "fastrollout_version_info", **fleet, version="v2", role="target") is None
    assert value(metrics, "fastrollout_rollout_traffic_stopped_duration_seconds_count", **fleet) is None
    metrics.forget("io-dev", "never-seen")  # no error
