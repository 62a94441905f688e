"""The pure parts of apply: status diffing, the ReplicaSet and Event bodies, the delete selector."""

from datetime import UTC, datetime

import pytest

from fastrollout.api import FastRolloutStatus, Phase
from fastrollout.apply import Target, event_body, merge_patch, pods_selector, replica_set_body, status_patch
from fastrollout.plan.model import CreateReplicaSet, Event

TARGET = Target(namespace="io-dev", name="web", uid="aa11")


@pytest.mark.parametrize(
    ("old", "new", "patch"),
    [
        pytest.param({"a": 1}, {"a": 1}, {}, id="equal"),
        pytest.param({}, {"a": 1}, {"a": 1}, id="added"),
        pytest.param({"a": 1, "b": 2}, {"a": 1}, {"b": None}, id="removed-becomes-null"),
        pytest.param({"a": {"x": 1, "y": 2}}, {"a": {"x": 1, "y": 3}}, {"a": {"y": 3}}, id="nested"),
        pytest.param({"a": [1, 2]}, {"a": [1]}, {"a": [1]}, id="list-replaced-whole"),
        pytest.param({"a": 1}, {"a": {"x": 1}}, {"a": {"x": 1}}, id="scalar-to-object"),
        pytest.param({"a": None}, {"a": None}, {}, id="null-kept"),
    ],
)
def test_merge_patch(old: dict[str, object], new: dict[str, object], patch: dict[str, object]) -> None:
    assert merge_patch(old, new) == patch


def test_status_patch_is_empty_when_the_stored_status_says_the_same() -> None:
    status = FastRolloutStatus(phase=Phase.COMPLETE, version="v2", replicas=3, observed_generation=4)
    assert status_patch(status.to_wire(), status) == {}


def test_status_patch_changes_only_what_changed() -> None:
    old = FastRolloutStatus(phase=Phase.PROGRESSING, version="v2", replicas=3, traffic_stopped_at="t0")
    new = FastRolloutStatus(phase=Phase.COMPLETE, version="v2", replicas=3)
    assert status_patch(old.to_wire(), new) == {"phase": "Complete", "trafficStoppedAt": None}


def test_status_patch_from_nothing_writes_everything() -> None:
    new = FastRolloutStatus(phase=Phase.PENDING)
    assert status_patch(None, new) == new.to_wire()


def test_replica_set_body() -> None:
    action = CreateReplicaSet(
        name="web-7c9d5f6b8",
        revision="7c9d5f6b8",
        version="v2",
        replicas=200,
        template={
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "w", "image": "w:2"}]},
        },
    )
    body = replica_set_body(TARGET, action)
    ours = {
        "fastrollout.io/name": "web",
        "fastrollout.io/version": "v2",
        "fastrollout.io/revision": "7c9d5f6b8",
    }
    assert body["metadata"]["labels"] == ours
    assert body["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "fastrollout.io/v1alpha1",
            "kind": "FastRollout",
            "name": "web",
            "uid": "aa11",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert body["spec"]["replicas"] == 200
    assert body["spec"]["selector"] == {
        "matchLabels": {"fastrollout.io/name": "web", "fastrollout.io/revision": "7c9d5f6b8"}
    }
    assert body["spec"]["template"]["metadata"]["labels"] == {"app": "web", **ours}
    assert action.template["metadata"]["labels"] == {"app": "web"}  # the plan's template is not mutated
    assert "annotations" not in body["metadata"]  # no source given: nothing to keep


def test_replica_set_body_keeps_the_revision_source() -> None:
    """history and undo read the spec fields a revision hashes from the ReplicaSet itself."""
    source = '{"drain":{},"template":{},"version":"v2"}'
    action = CreateReplicaSet(
        name="web-7c9d5f6b8", revision="7c9d5f6b8", version="v2", replicas=1, template={}, source=source
    )
    assert replica_set_body(TARGET, action)["metadata"]["annotations"] == {"fastrollout.io/source": source}


def test_pods_selector_is_name_and_revision() -> None:
    assert pods_selector(TARGET, "5f2a1c4d9") == "fastrollout.io/name=web,fastrollout.io/revision=5f2a1c4d9"


def test_event_body() -> None:
    body = event_body(
        TARGET, Event("RolloutFailed", "x" * 2000, warning=True), datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    )
    assert body["type"] == "Warning"
    assert body["reason"] == "RolloutFailed"
    assert len(body["message"]) == 1024
    assert body["involvedObject"] == {
        "apiVersion": "fastrollout.io/v1alpha1",
        "kind": "FastRollout",
        "name": "web",
        "namespace": "io-dev",
        "uid": "aa11",
    }
    assert body["firstTimestamp"] == body["lastTimestamp"] == "2026-11-27T15:00:00Z"
    assert event_body(TARGET, Event("Cutover", "m"), datetime.now(UTC))["type"] == "Normal"
