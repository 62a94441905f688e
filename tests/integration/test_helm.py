"""The Helm chart against the test bed, for real: lint, install, upgrade, `helm test`, uninstall.

The operator image is the one built locally from this checkout (``fastrollout/operator:dev-<input hash>``,
``tests/cluster/images.sh ref operator``, imagePullPolicy Never; not the shared ``:dev``, which another
checkout using the bed may re-point at its own code meanwhile), so the release's pods run on the bed's
real node (kubelet + containerd); without a real node the install tests are skipped, saying so
(``tests/cluster/up.sh --real-node`` adds it; ``tests/run.sh`` does).

- ``test_helm_lint``: ``helm lint --strict`` with the default values and with the values used here.
- ``test_helm_install_upgrade_test_uninstall``: one release in the test's namespace, managing only that
  namespace (``watchNamespaces``), so it never acts on other tests' rollouts: the CRD is served, the RBAC
  objects exist and grant the operator's ServiceAccount exactly what ``templates/_rbac.tpl`` lists
  (``kubectl auth can-i --as``) and not what the operator never does; the in-cluster operator drives a
  small rollout to Complete; ``helm upgrade`` of a value replaces the pod; ``helm test`` passes;
  ``helm uninstall`` removes everything but the CRD (``crds.keep``).
- ``test_cluster_wide_rbac``: the default mode (a ClusterRole), checked with ``can-i`` only: the release's
  operator pod is kept Pending (a nodeSelector no node has), so no cluster-wide operator ever runs on a
  shared bed.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:
    from conftest import Testbed

pytestmark = pytest.mark.realnode

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "fastrollout"
CRD_NAME = "fastrollouts.fastrollout.io"
REAL_NODE_LABEL = "fastrollout.test/node=real"

# What the operator never does, whatever the rules say: (verb, resource[.group], subresource).
NEVER = [
    ("create", "pods", None),
    ("delete", "pods", None),  # the cutover is one DeleteCollection, never single deletes
    ("update", "pods", None),
    ("get", "secrets", None),
    ("list", "secrets", None),
    ("delete", "deployments.apps", None),
    ("create", "deployments.apps", None),
    ("create", "fastrollouts.fastrollout.io", None),
    ("delete", "fastrollouts.fastrollout.io", None),
    ("update", "fastrollouts.fastrollout.io", None),
    ("create", "services", None),
    ("delete", "endpointslices.discovery.k8s.io", None),
    ("create", "roles.rbac.authorization.k8s.io", None),
]
NEVER_CLUSTER = [
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", None),
    ("delete", "namespaces", None),
    ("delete", "customresourcedefinitions.apiextensions.k8s.io", None),
    ("get", "nodes", None),
]


def real_node_or_skip(bed: Testbed) -> str:
    nodes = bed.kubectl_json("get", "nodes", "-l", REAL_NODE_LABEL)["items"]
    for n in nodes:
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", [])):
            return str(n["metadata"]["name"])
    pytest.skip(
        f"no Ready node labelled {REAL_NODE_LABEL} on the bed at {bed.state_dir}: the chart's operator image "
        "runs only on the real node (start the bed with `tests/cluster/up.sh --real-node`; tests/run.sh does)"
    )


def values_file(tmp: Path, watch_namespaces: list[str], image: str, **extra: Any) -> Path:
    """Values for the bed: ``image`` (a full reference, ``Testbed.own_image``) on the real node."""
    repository, _, tag = image.rpartition(":")
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "nodeSelector": {"fastrollout.test/node": "real"},
        "tolerations": [{"key": "fastrollout.test/real", "operator": "Exists", "effect": "NoSchedule"}],
        "watchNamespaces": watch_namespaces,
    }
    values.update(extra)
    path = tmp / f"values-{secrets.token_hex(3)}.json"
    path.write_text(json.dumps(values))
    return path


def manifest_objects(bed: Testbed, release: str, namespace: str) -> list[dict[str, Any]]:
    text = bed.helm("get", "manifest", release, "-n", namespace).stdout
    return [d for d in yaml.safe_load_all(text) if d]


def can_i(
    bed: Testbed, sa: str, verb: str, resource: str, subresource: str | None, namespace: str | None
) -> bool:
    args = ["auth", "can-i", verb, resource, f"--as={sa}"]
    if subresource:
        args.append(f"--subresource={subresource}")
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    out = bed.kubectl(*args, check=False)
    assert out.stdout.strip() in ("yes", "no"), f"kubectl {' '.join(args)}: {out.stdout} {out.stderr}"
    return out.stdout.strip() == "yes"


def rule_checks(rules: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    """(verb, resource[.group], subresource) for every verb of every rule."""
    checks = []
    for rule in rules:
        for group in rule.get("apiGroups", [""]):
            for res in rule["resources"]:
                name, _, sub = res.partition("/")
                full = f"{name}.{group}" if group else name
                checks.extend((verb, full, sub or None) for verb in rule["verbs"])
    return checks


def check_rbac(
    bed: Testbed, objects: list[dict[str, Any]], sa: str, namespace: str, other_namespace: str
) -> dict[str, int]:
    """Every verb of the release's Roles/ClusterRoles is granted to ``sa`` where the role applies, and
    nothing in NEVER is granted anywhere. Returns how many checks of each kind ran."""
    kinds = {o["kind"] for o in objects}
    bindings = [o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert "ServiceAccount" in kinds, kinds
    assert bindings, f"no RoleBinding/ClusterRoleBinding in the release: {kinds}"
    for b in bindings:
        subjects = [f"system:serviceaccount:{s['namespace']}:{s['name']}" for s in b["subjects"]]
        assert sa in subjects, f"{b['kind']} {b['metadata']['name']} binds {subjects}, not {sa}"
    yes = no = 0
    missing = []
    for role in (o for o in objects if o["kind"] in ("Role", "ClusterRole")):
        where = role["metadata"].get("namespace") if role["kind"] == "Role" else None
        for verb, resource, sub in rule_checks(role["rules"]):
            yes += 1
            if not can_i(bed, sa, verb, resource, sub, where):
                missing.append((role["kind"], where, verb, resource, sub))
    assert not missing, f"the ServiceAccount lacks what its roles list: {missing}"
    granted = []
    for ns in (namespace, other_namespace):
        for verb, resource, sub in NEVER:
            no += 1
            if can_i(bed, sa, verb, resource, sub, ns):
                granted.append((ns, verb, resource))
    for verb, resource, sub in NEVER_CLUSTER:
        no += 1
        if can_i(bed, sa, verb, resource, sub, None):
            granted.append(("cluster", verb, resource))
    assert not granted, f"the operator's ServiceAccount may do what it never needs: {granted}"
    return {"granted_checked": yes, "denied_checked": no}


def test_helm_lint(testbed: Testbed, tmp_path: Path) -> None:
    for args in ([], ["-f", str(values_file(tmp_path, ["a", "b"], "fastrollout/operator:dev"))]):
        out = testbed.helm("lint", "--strict", str(CHART), *args)
        assert "0 chart(s) failed" in out.stdout, out.stdout


def _ready_operator_pods(bed: Testbed, release: str, namespace: str) -> list[dict[str, Any]]:
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=operator"
    return [
        p
        for p in bed.kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]
        if not p["metadata"].get("deletionTimestamp")
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]


def _lease_holder(bed: Testbed, release: str, namespace: str) -> str:
    lease = bed.kubectl("get", "lease", f"{release}-fastrollout", "-n", namespace, "-o", "json", check=False)
    return str(json.loads(lease.stdout)["spec"].get("holderIdentity") or "") if lease.returncode == 0 else ""


def _diagnostics(bed: Testbed, release: str, namespace: str) -> str:
    """What the release's operator pods, the Lease and the namespace show: for a failure message."""
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=operator"
    parts = []
    for args in (
        ("get", "pods,replicasets,fastrollouts,leases", "-n", namespace, "-o", "wide"),
        ("get", "lease", f"{release}-fastrollout", "-n", namespace, "-o", "yaml"),
        ("get", "events", "-n", namespace, "--sort-by=.lastTimestamp"),
        ("logs", "-n", namespace, "-l", selector, "--prefix", "--tail=200", "--timestamps"),
    ):
        out = bed.kubectl(*args, check=False)
        parts.append(f"$ kubectl {' '.join(args)}\n{out.stdout}{out.stderr}")
    return "\n".join(parts)


def test_helm_install_upgrade_test_uninstall(testbed: Testbed, namespace: str, tmp_path: Path) -> None:
    node = real_node_or_skip(testbed)
    release = "fr-helm"
    values = values_file(tmp_path, [namespace], testbed.own_image("operator"))  # this checkout's code
    started = time.monotonic()
    # --take-ownership: on a shared bed the CRD may exist already (applied by kubectl, or kept by an
    # uninstalled release); it is annotated helm.sh/resource-policy: keep, so this never deletes it.
    testbed.helm(
        "install", release, str(CHART), "-n", namespace, "-f", str(values),
        "--take-ownership", "--wait", "--timeout", "180s",
    )  # fmt: skip
    status = json.loads(testbed.helm("status", release, "-n", namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    pods = _ready_operator_pods(testbed, release, namespace)
    assert len(pods) == 2, pods
    image = testbed.own_image("operator")
    assert {c["image"] for p in pods for c in p["spec"]["containers"]} == {image}
    assert {p["spec"]["nodeName"] for p in pods} == {node}  # one real node: the anti-affinity is a preference
    holder = testbed.wait_for(
        lambda: _lease_holder(testbed, release, namespace), timeout=60, message="a leader"
    )
    assert holder in {p["metadata"]["name"] for p in pods}
    installed_in = time.monotonic() - started

    # The CRD is served (and Established), from the chart.
    crd = testbed.kubectl_json("get", "crd", CRD_NAME)
    assert any(c["type"] == "Established" and c["status"] == "True" for c in crd["status"]["conditions"])
    assert crd["metadata"]["annotations"].get("helm.sh/resource-policy") == "keep"
    resources = testbed.kubectl("api-resources", "--api-group=fastrollout.io", "-o", "name").stdout.split()
    assert "fastrollouts.fastrollout.io" in resources, resources
    testbed.kubectl("get", "fastrollouts", "-n", namespace)

    # RBAC: the objects exist and grant exactly the listed verbs, to the operator's ServiceAccount.
    objects = manifest_objects(testbed, release, namespace)
    sa_name = next(o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount")
    testbed.kubectl("get", "serviceaccount", sa_name, "-n", namespace)
    for o in objects:
        if o["kind"] in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"):
            ns = ["-n", o["metadata"]["namespace"]] if o["metadata"].get("namespace") else []
            testbed.kubectl("get", o["kind"].lower(), o["metadata"]["name"], *ns)
    assert any(o["kind"] == "Role" and o["metadata"]["namespace"] == namespace for o in objects)
    sa = f"system:serviceaccount:{namespace}:{sa_name}"
    counts = check_rbac(testbed, objects, sa, namespace, other_namespace="default")
    # watchNamespaces mode: nothing outside the watched namespace.
    for verb, resource in (
        ("list", "fastrollouts.fastrollout.io"),
        ("list", "pods"),
        ("create", "replicasets.apps"),
    ):
        assert not can_i(testbed, sa, verb, resource, None, "default"), f"{verb} {resource} in default"

    # The in-cluster operator, with only that RBAC, drives a rollout (kwok pods: quick, no containers).
    fr = {
        "apiVersion": "fastrollout.io/v1alpha1",
        "kind": "FastRollout",
        "metadata": {"name": "helm-smoke", "namespace": namespace},
        "spec": {
            "replicas": 3,
            "version": "v1",
            "drain": {"preStopSleepSeconds": 1, "terminationGracePeriodSeconds": 30},
            "template": {
                "metadata": {"labels": {"app": "helm-smoke"}},
                "spec": {
                    "nodeSelector": {"type": "kwok"},
                    "containers": [{"name": "worker", "image": "registry.invalid/fastrollout/worker:1"}],
                },
            },
        },
    }
    testbed.apply(json.dumps(fr))

    def complete() -> bool:
        st = testbed.kubectl_json("get", "fastrollout", "helm-smoke", "-n", namespace).get("status") or {}
        return st.get("phase") == "Complete" and st.get("readyReplicas") == 3

    try:
        testbed.wait_for(
            complete, timeout=90, message="FastRollout helm-smoke Complete, driven by the in-cluster operator"
        )
    except AssertionError as error:
        raise AssertionError(f"{error}\n{_diagnostics(testbed, release, namespace)}") from error

    # helm upgrade with a changed value: the Deployment gets it and its pods are replaced (RollingUpdate:
    # each new pod stands by until Ready; an old leader hands the Lease over when it gets SIGTERM).
    before = {p["metadata"]["uid"] for p in pods}
    testbed.helm(
        "upgrade", release, str(CHART), "-n", namespace, "-f", str(values), "--set", "verbose=true",
        "--wait", "--timeout", "180s",
    )  # fmt: skip
    status = json.loads(testbed.helm("status", release, "-n", namespace, "-o", "json").stdout)
    assert status["version"] == 2
    assert status["info"]["status"] == "deployed"
    deploy = next(o for o in manifest_objects(testbed, release, namespace) if o["kind"] == "Deployment")
    live = testbed.kubectl_json("get", "deployment", deploy["metadata"]["name"], "-n", namespace)
    assert "--verbose" in live["spec"]["template"]["spec"]["containers"][0]["args"]

    def upgraded() -> list[dict[str, Any]] | None:
        ready = _ready_operator_pods(testbed, release, namespace)
        new = [p for p in ready if p["metadata"]["uid"] not in before]
        return new if len(new) == len(ready) == 2 else None

    pods = testbed.wait_for(
        upgraded, timeout=180, message="both upgraded operator pods Ready, the old ones gone"
    )
    assert pods[0]["spec"]["nodeName"] == node
    assert {c["image"] for p in pods for c in p["spec"]["containers"]} == {image}
    testbed.wait_for(
        lambda: _lease_holder(testbed, release, namespace) in {p["metadata"]["name"] for p in pods},
        timeout=60,
        message="an upgraded pod leads",
    )

    # helm test: the chart's test pod (the operator image, the operator's ServiceAccount) lists FastRollouts.
    # (No --logs: the hook's delete policy hook-succeeded removes the pod before helm could read them.)
    out = testbed.helm("test", release, "-n", namespace, "--timeout", "120s")
    assert re.search(r"TEST SUITE:\s+\S+-test-crd-served", out.stdout), out.stdout
    assert re.search(r"Phase:\s+Succeeded", out.stdout), out.stdout

    # helm uninstall: every object of the release is gone, except the CRD (crds.keep).
    testbed.helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "120s")
    assert release not in testbed.helm("list", "-n", namespace, "-q").stdout.split()
    for o in objects:
        if o["kind"] == "CustomResourceDefinition":
            continue
        ns = ["-n", o["metadata"]["namespace"]] if o["metadata"].get("namespace") else []
        left = testbed.kubectl(
            "get", o["kind"].lower(), o["metadata"]["name"], *ns, "--ignore-not-found", "-o", "name"
        )
        assert not left.stdout.strip(), f"left after uninstall: {left.stdout}"
    testbed.kubectl("get", "crd", CRD_NAME)  # kept
    print(f"\n[helm] installed in {installed_in:.1f}s; RBAC {counts}")


def test_cluster_wide_rbac(testbed: Testbed, namespace: str, tmp_path: Path) -> None:
    real_node_or_skip(testbed)
    release = f"fr-rbac-{secrets.token_hex(2)}"  # cluster-scoped names derive from it: unique per run
    # Default mode (watchNamespaces empty), but the pod can be scheduled nowhere: RBAC without an operator.
    image = testbed.own_image("operator")
    values = values_file(
        tmp_path, [], image, nodeSelector={"fastrollout.test/none": "true"}, crds={"enabled": False}
    )
    testbed.helm("install", release, str(CHART), "-n", namespace, "-f", str(values))
    try:
        objects = manifest_objects(testbed, release, namespace)
        kinds = {o["kind"] for o in objects}
        assert {"ClusterRole", "ClusterRoleBinding", "ServiceAccount"} <= kinds, kinds
        # The only Role: leader election's Lease, in the release namespace.
        roles = [o for o in objects if o["kind"] == "Role"]
        assert [(r["metadata"]["name"], r["metadata"]["namespace"]) for r in roles] == [
            (f"{release}-fastrollout-leader-election", namespace)
        ], roles
        sa_name = next(o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount")
        sa = f"system:serviceaccount:{namespace}:{sa_name}"
        check_rbac(testbed, objects, sa, namespace, other_namespace="default")
        # Cluster-wide: the namespaced rules hold in any namespace.
        assert can_i(testbed, sa, "list", "pods", None, "default")
        assert can_i(testbed, sa, "deletecollection", "pods", None, "default")
        assert not can_i(testbed, sa, "update", "leases.coordination.k8s.io", None, "default")
        assert not _ready_operator_pods(testbed, release, namespace), "the operator must not run in this test"
    finally:
        testbed.helm("uninstall", release, "-n", namespace, "--wait", "--timeout", "60s", check=False)
