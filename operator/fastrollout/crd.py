"""Renders the FastRollout CRD from the pydantic models in `fastrollout.api`.

`crds/fastrollout.io_fastrollouts.yaml` is this module's output, committed; a test fails when the two
differ. Kubernetes wants a *structural* schema: no `$ref`, no `anyOf` with null, `type` on every node,
and `x-kubernetes-*` markers where pydantic's JSON Schema says "anything" or "int or string".
"""

from typing import Any

import yaml

from fastrollout.api import constants
from fastrollout.api.spec import NAME_DESCRIPTION, ROOT_VALIDATIONS, SPEC_VALIDATIONS, FastRolloutSpec
from fastrollout.api.status import FastRolloutStatus

JsonSchema = dict[str, Any]

PRINTER_COLUMNS = [
    {
        "name": "Version",
        "type": "string",
        "jsonPath": ".status.version",
        "description": "The target version.",
    },
    {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas", "description": "Desired pods."},
    {
        "name": "Ready",
        "type": "integer",
        "jsonPath": ".status.readyReplicas",
        "description": "Ready non-terminating pods of all versions.",
    },
    {
        "name": "Updated",
        "type": "integer",
        "jsonPath": ".status.updatedReplicas",
        "description": "Non-terminating pods of the target version.",
    },
    {
        "name": "Old-Serving",
        "type": "integer",
        "jsonPath": ".status.oldServingReplicas",
        "description": "Pods of other versions still able to receive new traffic.",
    },
    {
        "name": "Draining",
        "type": "integer",
        "jsonPath": ".status.drainingReplicas",
        "description": "Terminating pods (any version) still running.",
    },
    {
        "name": "Phase",
        "type": "string",
        "jsonPath": ".status.phase",
        "description": "Pending, Progressing, Paused, Complete, Failed or RolledBack.",
    },
    {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
        "description": "Time since the FastRollout was created.",
    },
]


API_VERSION_DESCRIPTION = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
    "recognized schemas to the latest internal value, and may reject unrecognized values. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"
)
KIND_DESCRIPTION = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this "
    "from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
)


def structural(node: Any, defs: dict[str, JsonSchema]) -> Any:
    """Rewrites one pydantic JSON Schema node into Kubernetes' structural OpenAPI v3 subset."""
    if isinstance(node, list):
        return [structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return structural(merged, defs)
    out: JsonSchema = {}
    for key, value in node.items():
        if key == "title" or (key == "default" and value is None):
            continue
        if key == "anyOf":
            out.update(_collapse_any_of(value, defs))
            continue
        if key == "properties":
            out[key] = {name: structural(prop, defs) for name, prop in value.items()}
            continue
        out[key] = structural(value, defs)
    if out.get("additionalProperties") is True:
        # "any object" in JSON Schema; Kubernetes spells it preserve-unknown-fields.
        del out["additionalProperties"]
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _collapse_any_of(options: list[JsonSchema], defs: dict[str, JsonSchema]) -> JsonSchema:
    """`X | None` becomes X (absence is how Kubernetes says null); `int | str` becomes int-or-string."""
    kept = [option for option in options if option.get("type") != "null"]
    if len(kept) == 1:
        return dict(structural(kept[0], defs))
    if sorted(option.get("type", "") for option in kept) == ["integer", "string"]:
        return {"x-kubernetes-int-or-string": True}
    raise ValueError(f"no structural form for anyOf {options!r}")


def model_schema(model: type[FastRolloutSpec] | type[FastRolloutStatus]) -> JsonSchema:
    raw = model.model_json_schema(by_alias=True)
    defs = raw.pop("$defs", {})
    schema: JsonSchema = structural(raw, defs)
    return schema


def openapi_schema() -> JsonSchema:
    spec = model_schema(FastRolloutSpec)
    spec["x-kubernetes-validations"] = SPEC_VALIDATIONS
    return {
        "type": "object",
        "required": ["spec"],
        "description": "A fleet of pods rolled out in bulk: complete once old pods stop receiving new traffic.",
        "properties": {
            # The standard texts of every Kubernetes type (apimachinery's TypeMeta).
            "apiVersion": {"type": "string", "description": API_VERSION_DESCRIPTION},
            "kind": {"type": "string", "description": KIND_DESCRIPTION},
            # Declared so the root rule's fieldPath can name metadata.name (the only fields allowed here:
            # no description either; the API server publishes ObjectMeta's own).
            "metadata": {
                "type": "object",
                "properties": {"name": {"type": "string", "description": NAME_DESCRIPTION}},
            },
            "spec": spec,
            "status": model_schema(FastRolloutStatus),
        },
        "x-kubernetes-validations": ROOT_VALIDATIONS,
    }


def render() -> JsonSchema:
    """The CustomResourceDefinition as a dict."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{constants.PLURAL}.{constants.GROUP}"},
        "spec": {
            "group": constants.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": constants.KIND,
                "listKind": f"{constants.KIND}List",
                "plural": constants.PLURAL,
                "singular": constants.SINGULAR,
                "shortNames": list(constants.SHORT_NAMES),
                "categories": list(constants.CATEGORIES),
            },
            "versions": [
                {
                    "name": constants.VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                    "subresources": {
                        "status": {},
                        "scale": {
                            "specReplicasPath": ".spec.replicas",
                            "statusReplicasPath": ".status.replicas",
                            "labelSelectorPath": ".status.selector",
                        },
                    },
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                }
            ],
        },
    }


def render_yaml() -> str:
    header = "# Generated by `fastrollout crd` from operator/fastrollout/api. Do not edit by hand.\n"
    return header + yaml.safe_dump(render(), sort_keys=False, width=120)
