"""The committed CRD is exactly what the pydantic models render, and it is a structural schema."""

from pathlib import Path
from typing import Any

import pytest
import yaml

from fastrollout import crd

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "crds" / "fastrollout.io_fastrollouts.yaml"


def test_committed_crd_matches_models() -> None:
    assert COMMITTED.read_text() == crd.render_yaml(), (
        "crds/ drifted from operator/fastrollout/api: run `fastrollout crd > crds/fastrollout.io_fastrollouts.yaml`"
    )


def walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for key, value in node.items():
            found.extend(walk(value, f"{path}.{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(walk(value, f"{path}[{index}]"))
    return found


def schema() -> dict[str, Any]:
    rendered: dict[str, Any] = yaml.safe_load(crd.render_yaml())
    return rendered["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_schema_is_structural() -> None:
    for path, node in walk(schema()):
        if path.endswith((".properties", ".x-kubernetes-validations")) or "x-kubernetes-validations[" in path:
            continue
        assert "$ref" not in node, path
        assert "anyOf" not in node, path
        assert "title" not in node, path
        is_schema_node = "type" in node or "x-kubernetes-int-or-string" in node
        if any(k in node for k in ("properties", "items", "minimum", "pattern", "enum")):
            assert is_schema_node, f"{path} has no type"


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        pytest.param("replicas", 1, id="replicas"),
        pytest.param("completeWhen", "TrafficStopped", id="completeWhen"),
        pytest.param("progressDeadlineSeconds", 600, id="progressDeadline"),
        pytest.param("rollbackOnFailure", True, id="rollbackOnFailure"),
        pytest.param("paused", False, id="paused"),
    ],
)
def test_spec_defaults_are_applied_by_the_api_server(field: str, expected: object) -> None:
    assert schema()["properties"]["spec"]["properties"][field]["default"] == expected


def test_contract_names() -> None:
    rendered = yaml.safe_load(crd.render_yaml())
    spec = rendered["spec"]
    assert rendered["metadata"]["name"] == "fastrollouts.fastrollout.io"
    assert spec["names"]["shortNames"] == ["fr"]
    assert spec["names"]["categories"] == ["all"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"]["scale"] == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    columns = [column["name"].upper() for column in version["additionalPrinterColumns"]]
    assert columns == ["VERSION", "DESIRED", "READY", "UPDATED", "OLD-SERVING", "DRAINING", "PHASE", "AGE"]


# The API server refuses anything but name and generateName under the root's metadata, a description
# included; it publishes ObjectMeta's own description there.
NO_DESCRIPTION_ALLOWED = {"fastrollout.metadata"}


def undescribed(node: dict[str, Any], path: str) -> list[str]:
    """Paths of schema properties (at any depth: objects, list items, map values) without a description."""
    missing: list[str] = []
    for name, prop in node.get("properties", {}).items():
        if not prop.get("description") and f"{path}.{name}" not in NO_DESCRIPTION_ALLOWED:
            missing.append(f"{path}.{name}")
        missing.extend(undescribed(prop, f"{path}.{name}"))
    if isinstance(node.get("items"), dict):
        missing.extend(undescribed(node["items"], f"{path}[]"))
    if isinstance(node.get("additionalProperties"), dict):
        missing.extend(undescribed(node["additionalProperties"], f"{path}{{}}"))
    return missing


def test_every_property_has_a_description() -> None:
    # `kubectl explain fastrollout.<path>` prints these; an empty one is a field nobody can look up.
    root = schema()
    assert root.get("description")
    assert undescribed(root, "fastrollout") == []


def test_undescribed_finds_a_nested_gap() -> None:
    node = {"properties": {"a": {"description": "x", "items": {"properties": {"b": {"type": "string"}}}}}}
    assert undescribed(node, "r") == ["r.a[].b"]


def test_printer_columns_are_described() -> None:
    columns = yaml.safe_load(crd.render_yaml())["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in columns if not c.get("description")] == []


@pytest.mark.parametrize("field", ["rolloutStartedAt", "trafficStoppedAt", "drainedAt"])
def test_status_timestamps_are_date_times(field: str) -> None:
    assert schema()["properties"]["status"]["properties"][field]["format"] == "date-time"


def test_conditions_follow_metav1_condition() -> None:
    condition = schema()["properties"]["status"]["properties"]["conditions"]["items"]["properties"]
    assert condition["lastTransitionTime"]["format"] == "date-time"
    assert condition["status"]["enum"] == ["True", "False", "Unknown"]


def test_selector_is_atomic_like_metav1_label_selector() -> None:
    selector = schema()["properties"]["spec"]["properties"]["selector"]
    assert selector["x-kubernetes-map-type"] == "atomic"
    assert selector["properties"]["matchExpressions"]["x-kubernetes-list-type"] == "atomic"
    assert "ANDed" in selector["properties"]["matchLabels"]["description"]


def test_max_surge_is_bounded() -> None:
    # The CEL rule's regex match is costed from this bound; "100%" is the longest valid value.
    surge = schema()["properties"]["spec"]["properties"]["strategy"]["properties"]["maxSurge"]
    assert surge["x-kubernetes-int-or-string"] is True
    assert surge["maxLength"] == 8
