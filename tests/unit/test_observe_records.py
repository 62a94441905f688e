"""Parsing of child objects (pods, ReplicaSets, EndpointSlices) into the records the cache keeps."""

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from fastrollout.observe.records import (
    EndpointState,
    Owner,
    PodRecord,
    ServiceRecord,
    parse_endpoint_slice,
    parse_pod,
    parse_replica_set,
    parse_service,
)

DATA = Path(__file__).parent / "test_observe_data"


def load(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return loaded


@pytest.mark.parametrize(
    ("fixture", "terminating", "ready", "crashing"),
    [
        pytest.param("pod_ready", False, True, False, id="ready"),
        pytest.param("pod_terminating", True, True, False, id="terminating-still-ready"),
        pytest.param("pod_crashloop", False, False, True, id="crashloop"),
        pytest.param("pod_image_pull", False, False, True, id="image-pull-backoff"),
        pytest.param("pod_restarted_ready", False, True, False, id="restarted-but-ready-now"),
        pytest.param("pod_pending", False, False, False, id="unscheduled"),
    ],
)
def test_pod_states(fixture: str, terminating: bool, ready: bool, crashing: bool) -> None:
    record = parse_pod(load(fixture))
    assert record is not None
    assert (record.terminating, record.ready, record.crashing) == (terminating, ready, crashing)


def test_pod_keeps_identity_and_labels() -> None:
    assert parse_pod(load("pod_ready")) == PodRecord(
        namespace="io-dev",
        fastrollout="web",
        name="web-7c9d5f6b8-x2x9k",
        revision="7c9d5f6b8",
        version="v2",
        terminating=False,
        ready=True,
        crashing=False,
        owner=Owner(kind="ReplicaSet", name="web-7c9d5f6b8", uid="6d1c"),
    )


def test_pod_restarting_and_not_ready_is_crashing() -> None:
    pod = load("pod_restarted_ready")
    pod["status"]["containerStatuses"][0]["ready"] = False
    record = parse_pod(pod)
    assert record is not None
    assert record.crashing


def test_stuck_init_container_is_crashing() -> None:
    pod = load("pod_pending")
    pod["status"]["initContainerStatuses"] = [
        {"name": "init", "restartCount": 0, "ready": False, "state": {"waiting": {"reason": "ErrImagePull"}}}
    ]
    record = parse_pod(pod)
    assert record is not None
    assert record.crashing


@pytest.mark.parametrize("label", ["fastrollout.io/name", "fastrollout.io/revision"])
def test_pod_without_operator_labels_is_skipped(label: str) -> None:
    pod = copy.deepcopy(load("pod_ready"))
    del pod["metadata"]["labels"][label]
    assert parse_pod(pod) is None


def test_pod_missing_version_label_reads_empty() -> None:
    pod = load("pod_ready")
    del pod["metadata"]["labels"]["fastrollout.io/version"]
    record = parse_pod(pod)
    assert record is not None
    assert record.version == ""


def test_malformed_pod_does_not_raise() -> None:
    pod = load("pod_ready")
    pod["status"] = {"conditions": "garbage", "containerStatuses": [None, 3]}
    record = parse_pod(pod)
    assert record is not None
    assert not record.ready


def test_replica_set() -> None:
    record = parse_replica_set(load("replicaset"))
    assert record is not None
    assert (record.name, record.fastrollout, record.revision, record.version, record.replicas) == (
        "web-7c9d5f6b8",
        "web",
        "7c9d5f6b8",
        "v2",
        200,
    )


def test_replica_set_replicas_default_to_one() -> None:
    replica_set = load("replicaset")
    del replica_set["spec"]["replicas"]
    record = parse_replica_set(replica_set)
    assert record is not None
    assert record.replicas == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            "2026-11-27T15:24:36Z", datetime(2026, 11, 27, 15, 24, 36, tzinfo=UTC), id="rfc3339-utc"
        ),
        pytest.param(
            "2026-11-27T16:24:36+01:00", datetime(2026, 11, 27, 15, 24, 36, tzinfo=UTC), id="offset-to-utc"
        ),
        pytest.param("yesterday", None, id="malformed"),
        pytest.param(12, None, id="not-a-string"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_replica_set_creation_timestamp(value: object, expected: datetime | None) -> None:
    """Revision history keeps the newest old ReplicaSets: creation time is how "newest" is told."""
    replica_set = load("replicaset")
    replica_set["metadata"]["creationTimestamp"] = value
    record = parse_replica_set(replica_set)
    assert record is not None
    assert record.created == expected


def test_endpoint_slice_keeps_pod_targets_with_api_defaults() -> None:
    record = parse_endpoint_slice(load("endpointslice"))
    assert record is not None
    assert record.service == "web"
    assert dict(record.endpoints) == {
        "web-7c9d5f6b8-x2x9k": EndpointState(ready=True, serving=True, terminating=False),
        "web-5f2a1c4d9-abcde": EndpointState(ready=False, serving=True, terminating=True),
        # No conditions: ready and serving default to true, terminating to false.
        "web-7c9d5f6b8-nocond": EndpointState(ready=True, serving=True, terminating=False),
    }


def test_endpoint_slice_without_service_label_is_skipped() -> None:
    endpoint_slice = load("endpointslice")
    del endpoint_slice["metadata"]["labels"]["kubernetes.io/service-name"]
    assert parse_endpoint_slice(endpoint_slice) is None


def test_endpoint_slice_without_endpoints() -> None:
    endpoint_slice = load("endpointslice")
    endpoint_slice["endpoints"] = None
    record = parse_endpoint_slice(endpoint_slice)
    assert record is not None
    assert record.endpoints == ()


def test_replica_set_and_service_records() -> None:
    replica_set = parse_replica_set(load("replicaset"))
    assert replica_set is not None
    assert (replica_set.uid, replica_set.owner) == ("6d1c", Owner("FastRollout", "web", "aa11"))
    service = parse_service(
        {
            "metadata": {"namespace": "io-dev", "name": "web"},
            "spec": {"selector": {"tier": "b", "app": "web"}},
        }
    )
    assert service == ServiceRecord("io-dev", "web", (("app", "web"), ("tier", "b")))
    bare = parse_service({"metadata": {"namespace": "io-dev", "name": "headless"}, "spec": {}})
    assert bare is not None
    assert bare.selector == ()
