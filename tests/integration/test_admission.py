"""Bad FastRollouts are refused by the real API server at admission (schema + CEL), with messages that
name the field, and nothing in the namespace changes. Good ones are stored with the schema's defaults."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rollout_helpers import LABEL_NAME, Fleet, fleet_manifest, is_ready, revision

if TYPE_CHECKING:
    from conftest import Testbed


def fleet(name: str = "bad") -> dict[str, Any]:
    return {
        "apiVersion": "fastrollout.io/v1alpha1",
        "kind": "FastRollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": 3,
            "template": {
                "metadata": {"labels": {"app": "w"}},
                "spec": {"containers": [{"name": "w", "image": "w:1"}]},
            },
        },
    }


def with_spec(path: str, value: Any) -> dict[str, Any]:
    """A valid fleet with one spec field (dotted path) set to `value`, or removed when value is DELETE."""
    manifest = copy.deepcopy(fleet())
    node = manifest["spec"]
    *parents, leaf = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    if value is DELETE:
        node.pop(leaf, None)
    else:
        node[leaf] = value
    return manifest


DELETE = object()


def behind_service(service: str, strategy: dict[str, Any]) -> dict[str, Any]:
    """A valid fleet (3 replicas) with spec.serviceName and spec.strategy set."""
    manifest = with_spec("strategy", strategy)
    manifest["spec"]["serviceName"] = service
    return manifest


# (id, manifest, words the error must contain: the field's path and what is wrong)
INVALID = [
    ("replicas-string", with_spec("replicas", "many"), ["spec.replicas", "integer"]),
    ("replicas-negative", with_spec("replicas", -1), ["spec.replicas", "greater than or equal to 0"]),
    ("template-missing", with_spec("template", DELETE), ["spec.template", "Required"]),
    (
        "no-containers",
        with_spec("template.spec.containers", []),
        ["spec.template.spec.containers", "at least 1"],
    ),
    (
        "container-without-image",
        with_spec("template.spec.containers", [{"name": "w"}]),
        ["image", "Required"],
    ),
    (
        "surge-150-percent",
        with_spec("strategy.maxSurge", "150%"),
        ["spec.strategy.maxSurge", "maxSurge must be"],
    ),
    ("surge-zero", with_spec("strategy.maxSurge", 0), ["spec.strategy.maxSurge", "positive integer"]),
    ("surge-word", with_spec("strategy.maxSurge", "all"), ["spec.strategy.maxSurge", "percent"]),
    ("min-ready-0", with_spec("strategy.minReadyPercent", 0), ["spec.strategy.minReadyPercent", "1"]),
    ("min-ready-101", with_spec("strategy.minReadyPercent", 101), ["spec.strategy.minReadyPercent", "100"]),
    (
        "selector-not-matching",
        with_spec("selector", {"matchLabels": {"app": "other"}}),
        ["spec.selector", "selector.matchLabels must match template.metadata.labels"],
    ),
    (
        "complete-when-unknown",
        with_spec("completeWhen", "Eventually"),
        ["spec.completeWhen", "Unsupported value"],
    ),
    (
        "prestop-longer-than-grace",
        with_spec("drain", {"preStopSleepSeconds": 60, "terminationGracePeriodSeconds": 30}),
        ["spec.drain.preStopSleepSeconds", "shorter than the termination grace period"],
    ),
    (
        "prestop-longer-than-template-grace",
        with_spec("template.spec.terminationGracePeriodSeconds", 3),
        ["spec.drain.preStopSleepSeconds", "shorter than the termination grace period"],
    ),
    ("deadline-zero", with_spec("progressDeadlineSeconds", 0), ["spec.progressDeadlineSeconds"]),
    ("version-not-a-label", with_spec("version", "v 2"), ["spec.version", "should match"]),
    ("service-name-invalid", with_spec("serviceName", "Bad_Name"), ["spec.serviceName", "should match"]),
    ("no-template-labels", with_spec("template.metadata", {}), ["spec.template.metadata.labels", "Required"]),
    (
        "reserved-label",
        with_spec("template.metadata.labels", {"app": "w", "fastrollout.io/version": "x"}),
        ["spec.template.metadata.labels", "fastrollout.io/ prefix"],
    ),
    ("paused-string", with_spec("paused", "yes"), ["spec.paused", "boolean"]),
    (
        "expression-in-other-value",
        with_spec("selector", {"matchExpressions": [{"key": "app", "operator": "In", "values": ["x", "y"]}]}),
        ["spec.selector", "selector.matchExpressions must match template.metadata.labels"],
    ),
    (
        "expression-in-missing-label",
        with_spec("selector", {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["w"]}]}),
        ["spec.selector", "selector.matchExpressions must match template.metadata.labels"],
    ),
    (
        "expression-notin-template-value",
        with_spec("selector", {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["w"]}]}),
        ["spec.selector", "selector.matchExpressions must match template.metadata.labels"],
    ),
    (
        "expression-exists-missing-label",
        with_spec("selector", {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}),
        ["spec.selector", "selector.matchExpressions must match template.metadata.labels"],
    ),
    (
        "expression-doesnotexist-present-label",
        with_spec("selector", {"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}),
        ["spec.selector", "selector.matchExpressions must match template.metadata.labels"],
    ),
    (
        "expression-in-without-values",
        with_spec("selector", {"matchExpressions": [{"key": "app", "operator": "In"}]}),
        ["spec.selector.matchExpressions[0].values", "values must be non-empty when operator is In"],
    ),
    (
        "expression-exists-with-values",
        with_spec("selector", {"matchExpressions": [{"key": "app", "operator": "Exists", "values": ["w"]}]}),
        ["spec.selector.matchExpressions[0].values", "empty when it is Exists"],
    ),
    (
        "selector-empty-match-labels",
        with_spec("selector", {"matchLabels": {}}),
        ["spec.selector", "selector must set matchLabels or matchExpressions"],
    ),
    (
        "selector-cutover-without-service",
        with_spec("strategy", {"cutover": "ServiceSelector"}),
        ["spec.serviceName", "ServiceSelector needs serviceName"],
    ),
    (
        "selector-cutover-in-waves",
        behind_service("w", {"cutover": "ServiceSelector", "maxSurge": "50%"}),
        ["spec.strategy.maxSurge", "surge of the whole fleet"],
    ),
    (
        "selector-cutover-surge-below-replicas",
        behind_service("w", {"cutover": "ServiceSelector", "maxSurge": 2}),
        ["spec.strategy.maxSurge", "surge of the whole fleet"],
    ),
    (
        "window-without-selector-cutover",
        with_spec("strategy", {"rollbackWindowSeconds": 60}),
        ["spec.strategy.rollbackWindowSeconds", "needs strategy.cutover ServiceSelector"],
    ),
    (
        "cutover-unknown",
        with_spec("strategy.cutover", "Swap"),
        ["spec.strategy.cutover", "Unsupported value"],
    ),
    (
        "window-negative",
        with_spec("strategy.rollbackWindowSeconds", -1),
        ["spec.strategy.rollbackWindowSeconds"],
    ),
    (
        "name-64-characters",
        {**fleet(), "metadata": {"name": "n" * 64}},
        ["metadata.name", "at most 63 characters", "fastrollout.io/name label"],
    ),
]

# Selectors whose expressions the template labels ({app: w}) satisfy, one per operator.
MATCHING_EXPRESSIONS = [
    pytest.param([{"key": "app", "operator": "In", "values": ["v", "w"]}], id="in"),
    pytest.param([{"key": "app", "operator": "NotIn", "values": ["v"]}], id="notin-other-value"),
    pytest.param([{"key": "tier", "operator": "NotIn", "values": ["w"]}], id="notin-missing-label"),
    pytest.param([{"key": "app", "operator": "Exists"}], id="exists"),
    pytest.param([{"key": "tier", "operator": "DoesNotExist"}], id="doesnotexist"),
]


def objects_in(testbed: Testbed, namespace: str) -> str:
    return testbed.kubectl(
        "get", "fastrollouts,replicasets,pods", "-n", namespace, "-o", "name"
    ).stdout.strip()


@pytest.mark.parametrize(("manifest", "words"), [pytest.param(m, w, id=i) for i, m, w in INVALID])
def test_invalid_fastrollout_is_refused_with_a_clear_message(
    testbed: Testbed, crd: None, namespace: str, manifest: dict[str, Any], words: list[str]
) -> None:
    before = objects_in(testbed, namespace)
    result = testbed.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False)
    assert result.returncode != 0, f"the API server accepted an invalid FastRollout: {result.stdout}"
    for word in words:
        assert word in result.stderr, f"{word!r} not in the API server's message: {result.stderr}"
    assert objects_in(testbed, namespace) == before


def test_update_to_an_invalid_spec_is_refused_and_the_stored_object_is_unchanged(
    testbed: Testbed, crd: None, namespace: str
) -> None:
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(fleet("good")))
    stored = testbed.kubectl("get", "fr/good", "-n", namespace, "-o", "jsonpath={.spec}").stdout
    result = testbed.kubectl(
        "patch",
        "fr/good",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"selector":{"matchLabels":{"x":"y"}}}}',
        check=False,
    )
    assert result.returncode != 0
    assert "selector" in result.stderr
    assert testbed.kubectl("get", "fr/good", "-n", namespace, "-o", "jsonpath={.spec}").stdout == stored


def test_selector_is_immutable(testbed: Testbed, crd: None, namespace: str) -> None:
    manifest = fleet("immutable")
    manifest["spec"]["selector"] = {"matchLabels": {"app": "w"}}
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    manifest["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    manifest["spec"]["selector"] = {"matchLabels": {"app": "w", "tier": "x"}}
    result = testbed.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False)
    assert result.returncode != 0
    assert "selector is immutable" in result.stderr


def test_valid_fastrollout_is_stored_with_defaults(testbed: Testbed, crd: None, namespace: str) -> None:
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(fleet("defaults")))
    spec = json.loads(testbed.kubectl("get", "fr/defaults", "-n", namespace, "-o", "jsonpath={.spec}").stdout)
    assert spec["strategy"] == {
        "maxSurge": "100%",
        "minReadyPercent": 100,
        "cutover": "Delete",
        "rollbackWindowSeconds": 0,
    }
    assert spec["drain"] == {"preStopSleepSeconds": 5}
    assert spec["completeWhen"] == "TrafficStopped"
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["rollbackOnFailure"] is True
    assert spec["paused"] is False


def test_name_of_63_characters_is_accepted(testbed: Testbed, crd: None, namespace: str) -> None:
    # 63 is the longest label value: the operator's ReplicaSets and pods carry the name in fastrollout.io/name.
    name = "n" * 63
    testbed.kubectl(
        "apply", "-n", namespace, "-f", "-", input=json.dumps({**fleet(), "metadata": {"name": name}})
    )
    assert testbed.kubectl("get", f"fr/{name}", "-n", namespace, "-o", "name").stdout.strip() == (
        f"fastrollout.fastrollout.io/{name}"
    )


def test_the_longest_name_rolls_out_with_valid_child_names(fleet: Fleet) -> None:
    # 63 characters with dots (a DNS subdomain may have them; a label value too): the label value, the
    # ReplicaSet name `<name>-<revision>` (74 characters) and the pod names the ReplicaSet controller
    # generates from it (cut to 58 + 5 random) are all accepted, and the rollout completes.
    name = ("w" * 9 + ".") * 6 + "www"
    assert len(name) == 63
    fleet.apply(fleet_manifest(name, replicas=3, version="v1"))
    fleet.wait_complete("v1", timeout=60)
    (replica_set,) = fleet.replica_sets()
    assert replica_set["metadata"]["name"] == f"{name}-{revision(replica_set)}"
    assert replica_set["metadata"]["labels"][LABEL_NAME] == name
    pods = fleet.pods()
    assert len(pods) == 3
    assert all(is_ready(pod) and pod["metadata"]["labels"][LABEL_NAME] == name for pod in pods)
    assert all(len(pod["metadata"]["name"]) <= 63 for pod in pods)


@pytest.mark.parametrize("expressions", MATCHING_EXPRESSIONS)
def test_match_expressions_that_match_the_template_are_accepted(
    testbed: Testbed, crd: None, namespace: str, expressions: list[dict[str, Any]]
) -> None:
    manifest = with_spec("selector", {"matchExpressions": expressions})
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    stored = testbed.kubectl_json("get", "fr/bad", "-n", namespace)
    assert stored["spec"]["selector"] == {"matchExpressions": expressions}


def spec_of(testbed: Testbed, namespace: str, name: str) -> str:
    return testbed.kubectl("get", f"fr/{name}", "-n", namespace, "-o", "jsonpath={.spec}").stdout


# (stored selector or None, merge patch, words the error must contain). Adding or removing the selector
# is valid on create: only the transition rule, comparing with the stored object, refuses it. Changing
# the template must keep it matching the stored matchExpressions, as it must the matchLabels.
INVALID_UPDATES = [
    pytest.param(
        None,
        {"spec": {"selector": {"matchLabels": {"app": "w"}}}},
        ["spec.selector", "selector is immutable", "added or removed"],
        id="selector-added",
    ),
    pytest.param(
        {"matchLabels": {"app": "w"}},
        {"spec": {"selector": None}},
        ["spec.selector", "selector is immutable", "added or removed"],
        id="selector-removed",
    ),
    pytest.param(
        {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
        {"spec": {"template": {"metadata": {"labels": {"app": None, "role": "w"}}}}},
        ["spec.selector", "selector.matchExpressions must match template.metadata.labels"],
        id="template-label-dropped-under-exists",
    ),
    pytest.param(
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["w"]}]},
        {"spec": {"template": {"metadata": {"labels": {"app": "w2"}}}}},
        ["spec.selector", "selector.matchExpressions must match template.metadata.labels"],
        id="template-label-changed-under-in",
    ),
]


@pytest.mark.parametrize(("selector", "patch", "words"), INVALID_UPDATES)
def test_selector_updates_are_refused_and_the_stored_object_is_unchanged(
    testbed: Testbed,
    crd: None,
    namespace: str,
    selector: dict[str, Any] | None,
    patch: dict[str, Any],
    words: list[str],
) -> None:
    manifest = fleet("stored")
    if selector is not None:
        manifest["spec"]["selector"] = selector
    testbed.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    stored = spec_of(testbed, namespace, "stored")
    result = testbed.kubectl(
        "patch", "fr/stored", "-n", namespace, "--type=merge", "-p", json.dumps(patch), check=False
    )
    assert result.returncode != 0, f"the API server accepted the update: {result.stdout}"
    for word in words:
        assert word in result.stderr, f"{word!r} not in the API server's message: {result.stderr}"
    assert spec_of(testbed, namespace, "stored") == stored
