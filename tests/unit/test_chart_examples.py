"""examples/ and kind-config.yaml: what users apply first must be valid and consistent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from fastrollout.api import FastRolloutSpec

ROOT = Path(__file__).resolve().parents[2]
FLEETS = [ROOT / "examples" / "fleet.yaml", ROOT / "examples" / "fleet-v2.yaml"]

Obj = dict[str, Any]


def objects(path: Path) -> dict[str, Obj]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(path.read_text()) if doc}


@pytest.mark.parametrize("path", FLEETS, ids=lambda p: p.name)
def test_fleet_is_valid_and_consistent(path: Path) -> None:
    by_kind = objects(path)
    assert set(by_kind) == {"Namespace", "Service", "FastRollout"}
    rollout, service = by_kind["FastRollout"], by_kind["Service"]
    spec = FastRolloutSpec.model_validate(rollout["spec"])
    assert spec.replicas == 300
    namespace = by_kind["Namespace"]["metadata"]["name"]
    assert rollout["metadata"]["namespace"] == service["metadata"]["namespace"] == namespace
    assert rollout["spec"]["serviceName"] == service["metadata"]["name"]
    pod = rollout["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    container = pod["spec"]["containers"][0]
    named_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in named_ports
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # The version a pod reports is the version the FastRollout declares.
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["WORKER_VERSION"] == rollout["spec"]["version"]


def test_fleet_v2_changes_only_the_version() -> None:
    v1, v2 = (objects(p) for p in FLEETS)
    assert v1["Service"] == v2["Service"]
    assert v1["Namespace"] == v2["Namespace"]
    assert v1["FastRollout"]["spec"]["version"] != v2["FastRollout"]["spec"]["version"]
    dumped = yaml.safe_dump(v2["FastRollout"]).replace(
        v2["FastRollout"]["spec"]["version"], v1["FastRollout"]["spec"]["version"]
    )
    assert yaml.safe_load(dumped) == v1["FastRollout"]


def test_kind_config_patches_are_kubeadm_v1beta4_and_mounts_exist() -> None:
    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker", "worker", "worker"]
    patches = {p["kind"]: p for p in map(yaml.safe_load, config["kubeadmConfigPatches"])}
    cluster = patches["ClusterConfiguration"]
    assert cluster["apiVersion"] == "kubeadm.k8s.io/v1beta4"
    args = {
        component: {a["name"]: a["value"] for a in cluster[component]["extraArgs"]}
        for component in ("apiServer", "controllerManager", "scheduler")
    }
    assert args["controllerManager"] == {"kube-api-qps": "200", "kube-api-burst": "300"}
    assert "delete-collection-workers" in args["apiServer"]
    # The scheduler reads its QPS from a file mounted node <- host, then static pod <- node.
    mount = config["nodes"][0]["extraMounts"][0]
    assert (ROOT / mount["hostPath"]).is_file()
    volume = cluster["scheduler"]["extraVolumes"][0]
    assert volume["hostPath"] == mount["containerPath"] == args["scheduler"]["config"]
    scheduler = yaml.safe_load((ROOT / mount["hostPath"]).read_text())
    assert scheduler["kind"] == "KubeSchedulerConfiguration"
    assert (scheduler["clientConnection"]["qps"], scheduler["clientConnection"]["burst"]) == (200, 300)
    assert scheduler["clientConnection"]["kubeconfig"] == "/etc/kubernetes/scheduler.conf"
