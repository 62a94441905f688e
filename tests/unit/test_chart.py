"""The Helm chart: CRD copy, documented values, strict schema, and (with helm) what it renders.

The chart ships the generated CRD as `charts/fastrollout/files/crd.yaml` (templates cannot read outside
the chart). When the API changes, refresh both copies with:

    fastrollout crd > crds/fastrollout.io_fastrollouts.yaml && \
        cp crds/fastrollout.io_fastrollouts.yaml charts/fastrollout/files/crd.yaml

The first tests need only Python (and jsonschema, a dev dependency). The rest render the chart with
`helm template`; helm is taken from $HELM, the test bed's cache (tests/cluster/versions.sh:
~/.cache/fastrollout/bin/*/helm, built by tests/cluster/build.sh) or PATH. Without one they are skipped,
saying so, unless FASTROLLOUT_REQUIRE_HELM=1: then they fail. tests/run.sh sets it (with $HELM, the bed's
own helm) as soon as helm is built, so a full run never skips them: it runs them with the other unit
tests when helm is already cached, otherwise right after the test bed has built it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "fastrollout"
GENERATED_CRD = ROOT / "crds" / "fastrollout.io_fastrollouts.yaml"
CHART_CRD = CHART / "files" / "crd.yaml"
RELEASE, NAMESPACE = "fr", "fastrollout-system"
# helm built with `go install` (as the test bed does) assumes Kubernetes v1.20 for `helm template`,
# below the chart's kubeVersion; render for the test bed's pinned release instead.
KUBE_VERSION = "v1.36.3"

# What the operator may do, and nothing more (charts/fastrollout/templates/_rbac.tpl says why).
NAMESPACED_GRANTS = {
    ("fastrollout.io", "fastrollouts"): {"get", "list", "watch", "patch"},
    ("fastrollout.io", "fastrollouts/status"): {"patch"},
    ("fastrollout.io", "fastrollouts/finalizers"): {"update"},
    ("apps", "replicasets"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "pods"): {"list", "watch", "deletecollection"},
    ("discovery.k8s.io", "endpointslices"): {"list", "watch"},
    ("", "services"): {"list", "watch", "patch"},
    ("", "events"): {"create"},
}
# Leader election's Lease: a Role in the release namespace only (also in cluster-wide mode).
LEASE_GRANTS = {("coordination.k8s.io", "leases"): {"get", "create", "update"}}
LEASE_ROLE = "fr-fastrollout-leader-election"

Obj = dict[str, Any]


# --- without helm -------------------------------------------------------------------------------


def test_chart_crd_is_the_generated_crd() -> None:
    assert CHART_CRD.read_bytes() == GENERATED_CRD.read_bytes(), (
        f"{CHART_CRD.relative_to(ROOT)} differs from {GENERATED_CRD.relative_to(ROOT)}; refresh it: "
        f"cp {GENERATED_CRD.relative_to(ROOT)} {CHART_CRD.relative_to(ROOT)}"
    )


def test_generated_crd_metadata_is_only_its_name() -> None:
    # templates/crd.yaml writes metadata itself and takes only `spec:` from the file.
    crd = yaml.safe_load(GENERATED_CRD.read_text())
    assert set(crd) == {"apiVersion", "kind", "metadata", "spec"}
    assert crd["metadata"] == {"name": "fastrollouts.fastrollout.io"}


def documented_paths(values_text: str) -> set[str]:
    """Dotted paths of the keys in values.yaml that carry a helm-docs `# --` comment right above."""
    documented: set[str] = set()
    stack: list[str] = []
    pending = False
    for line in values_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            pending = True
            continue
        if stripped.startswith("#"):
            continue
        key = re.match(r"^( *)([A-Za-z][\w.-]*):", line)
        if key:
            depth = len(key.group(1)) // 2
            stack = [*stack[:depth], key.group(2)]
            if pending:
                documented.add(".".join(stack))
        pending = False
    return documented


def undocumented(values: Obj, documented: set[str], prefix: str = "") -> Iterator[str]:
    """Keys neither documented nor a parent of documented keys (a map documented whole counts once)."""
    for key, value in values.items():
        path = f"{prefix}{key}"
        if path in documented:
            continue
        if isinstance(value, dict) and value:
            yield from undocumented(value, documented, f"{path}.")
        else:
            yield path


def test_every_value_is_documented() -> None:
    text = (CHART / "values.yaml").read_text()
    assert list(undocumented(yaml.safe_load(text), documented_paths(text))) == []


def schema_mismatches(values: Any, schema: Obj, path: str = "<root>") -> Iterator[str]:
    """Values keys missing from the schema, and schema objects that would accept unknown keys."""
    if schema.get("type") == "object" and "additionalProperties" not in schema:
        yield f"{path}: object without additionalProperties"
    if "properties" in schema and schema.get("additionalProperties") is not False:
        yield f"{path}: properties listed but unknown keys accepted"
    for name, sub in schema.get("properties", {}).items():
        yield from schema_mismatches(
            values.get(name) if isinstance(values, dict) else None, sub, f"{path}.{name}"
        )
    if "properties" in schema and isinstance(values, dict):
        yield from (f"{path}.{k}: not in the schema" for k in values if k not in schema["properties"])


def test_schema_lists_every_value_and_rejects_unknown_keys() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    # Free-form Kubernetes objects inside affinity and tolerations are the only open maps.
    found = [
        m for m in schema_mismatches(values, schema) if ".affinity." not in m and ".tolerations" not in m
    ]
    assert found == []


def test_schema_accepts_the_defaults() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.validate(yaml.safe_load((CHART / "values.yaml").read_text()), schema)


def test_icon_is_the_committed_svg_inlined() -> None:
    icon = yaml.safe_load((CHART / "Chart.yaml").read_text())["icon"]
    prefix = "data:image/svg+xml;base64,"
    assert icon.startswith(prefix)
    svg = CHART / "icon.svg"
    assert base64.b64decode(icon.removeprefix(prefix)) == svg.read_bytes(), (
        "Chart.yaml's icon differs from charts/fastrollout/icon.svg; refresh it: "
        "echo data:image/svg+xml;base64,$(base64 -w0 charts/fastrollout/icon.svg)"
    )
    assert svg.stat().st_size < 2048
    root = ElementTree.fromstring(svg.read_bytes())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_readme_lists_every_documented_value() -> None:
    readme = (CHART / "README.md").read_text()
    paths = documented_paths((CHART / "values.yaml").read_text())
    assert [p for p in sorted(paths) if f"| `{p}` |" not in readme] == []


# --- with helm ----------------------------------------------------------------------------------


def find_helm() -> str | None:
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    cache = os.environ.get("FASTROLLOUT_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastrollout"
    )
    built = sorted(Path(cache).glob("bin/*/helm"))
    return str(built[-1]) if built else shutil.which("helm")


HELM = find_helm()
REQUIRE_HELM = os.environ.get("FASTROLLOUT_REQUIRE_HELM") == "1"
WHERE_HELM = "$HELM, ~/.cache/fastrollout/bin/*/helm from tests/cluster/build.sh, or PATH"
needs_helm = pytest.mark.skipif(
    HELM is None and not REQUIRE_HELM,
    reason=f"HELM NOT FOUND ({WHERE_HELM}): chart rendering NOT TESTED; tests/run.sh runs these once the "
    "test bed has built helm",
)


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None, f"FASTROLLOUT_REQUIRE_HELM=1 but no helm found ({WHERE_HELM})"
    return subprocess.run([HELM, *args], capture_output=True, text=True, check=False, timeout=120)


def render(*sets: str, api_versions: tuple[str, ...] = ()) -> list[Obj]:
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION]
    for value in sets:
        args += ["--set", value]
    for api in api_versions:
        args += ["--api-versions", api]
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(objects: list[Obj], kind: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} {kind} objects"
    return found[0]


def of_kind(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def grants(rules: list[Obj]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs; any wildcard, resourceNames or nonResourceURLs fails."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def operator_container(objects: list[Obj]) -> Obj:
    containers = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


@needs_helm
def test_helm_lint() -> None:
    result = helm("lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    namespaced = helm("lint", "--strict", str(CHART), "--set", "watchNamespaces={a,b}")
    assert namespaced.returncode == 0, namespaced.stdout + namespaced.stderr


@needs_helm
def test_cluster_wide_rbac_is_exactly_what_the_operator_uses() -> None:
    objects = render()
    assert grants(one(objects, "ClusterRole")["rules"]) == NAMESPACED_GRANTS
    assert_lease_rbac_only_in_the_release_namespace(objects)
    binding = one(objects, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == one(objects, "ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "fr-fastrollout", "namespace": NAMESPACE}
    ]
    assert not [a for a in operator_container(objects)["args"] if a.startswith("--namespace")]


@needs_helm
def test_watch_namespaces_get_a_role_each_and_nothing_cluster_wide() -> None:
    objects = render("watchNamespaces={team-a,team-b}")
    assert of_kind(objects, "ClusterRole") == []
    assert of_kind(objects, "ClusterRoleBinding") == []
    assert_lease_rbac_only_in_the_release_namespace(objects)
    roles = [r for r in of_kind(objects, "Role") if r["metadata"]["name"] != LEASE_ROLE]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert grants(role["rules"]) == NAMESPACED_GRANTS
    bindings = [b for b in of_kind(objects, "RoleBinding") if b["metadata"]["name"] != LEASE_ROLE]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "fr-fastrollout",
        }
        assert binding["subjects"][0]["namespace"] == NAMESPACE
    args = operator_container(objects)["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=team-a", "--namespace=team-b"]


def assert_lease_rbac_only_in_the_release_namespace(objects: list[Obj]) -> None:
    leases = [r for r in of_kind(objects, "Role") if r["metadata"]["name"] == LEASE_ROLE]
    assert len(leases) == 1
    assert leases[0]["metadata"]["namespace"] == NAMESPACE
    assert grants(leases[0]["rules"]) == LEASE_GRANTS
    for role in of_kind(objects, "Role") + of_kind(objects, "ClusterRole"):
        if role is not leases[0]:
            assert ("coordination.k8s.io", "leases") not in grants(role["rules"])
    binding = next(b for b in of_kind(objects, "RoleBinding") if b["metadata"]["name"] == LEASE_ROLE)
    assert binding["metadata"]["namespace"] == NAMESPACE
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": LEASE_ROLE}
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "fr-fastrollout", "namespace": NAMESPACE}
    ]


@needs_helm
def test_two_replicas_elect_a_leader_roll_and_spread() -> None:
    objects = render()
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    container = operator_container(objects)
    assert [a for a in container["args"] if a.startswith("--leader-elect")] == [
        "--leader-elect",
        "--leader-elect-lease-name=fr-fastrollout",
        "--leader-elect-lease-duration=15",
        "--leader-elect-renew-deadline=10",
        "--leader-elect-retry-period=2",
    ]
    env = {e["name"]: e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") for e in container["env"]}
    assert env["POD_NAME"] == "metadata.name"
    assert env["POD_NAMESPACE"] == "metadata.namespace"
    pdb = one(objects, "PodDisruptionBudget")
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert pdb["spec"] == {"minAvailable": 1, "selector": {"matchLabels": selector}}
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    preferred = anti["preferredDuringSchedulingIgnoredDuringExecution"]
    assert preferred[0]["podAffinityTerm"] == {
        "topologyKey": "kubernetes.io/hostname",
        "labelSelector": {"matchLabels": selector},
    }
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti
    # A user's affinity replaces the default one.
    custom = one(render("affinity.nodeAffinity.x=y"), "Deployment")["spec"]["template"]["spec"]["affinity"]
    assert custom == {"nodeAffinity": {"x": "y"}}


@needs_helm
def test_without_leader_election_one_replica_recreated() -> None:
    objects = render("leaderElection.enabled=false", "replicaCount=1")
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert not [a for a in operator_container(objects)["args"] if a.startswith("--leader-elect")]
    assert [r for r in of_kind(objects, "Role") if r["metadata"]["name"] == LEASE_ROLE] == []
    assert of_kind(objects, "PodDisruptionBudget") == []
    assert "affinity" not in deployment["spec"]["template"]["spec"]
    single = render("replicaCount=1")  # election on, one replica: rolling, no budget (it would block drains)
    assert one(single, "Deployment")["spec"]["strategy"]["type"] == "RollingUpdate"
    assert of_kind(single, "PodDisruptionBudget") == []


@needs_helm
@pytest.mark.parametrize(
    ("bad", "message"),
    [
        pytest.param(
            "leaderElection.enabled=false", "replicaCount > 1 needs leaderElection", id="two-without-election"
        ),
        pytest.param(
            "leaderElection.renewDeadline=15",
            "retryPeriod < renewDeadline < leaseDuration",
            id="renew-not-below-lease",
        ),
    ],
)
def test_unsafe_election_values_fail_to_render(bad: str, message: str) -> None:
    result = helm("template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, "--set", bad)
    assert result.returncode != 0, f"--set {bad} was accepted"
    assert message in result.stderr, result.stderr


@needs_helm
def test_rbac_create_false_renders_no_rbac() -> None:
    objects = render("rbac.create=false")
    assert [o["kind"] for o in objects if "Role" in o["kind"]] == []


@needs_helm
def test_operator_pod_is_locked_down_and_budgeted() -> None:
    objects = render()
    deployment = one(objects, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = operator_container(objects)
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["runAsUser"] == 65532
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"memory": "512Mi"},
    }
    assert container["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"][0]["name"] == "tmp"
    assert "emptyDir" in pod["volumes"][0]
    # Liveness is the process; readiness the watches (a namespace's 403 must not restart the operator).
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    assert container["command"] == ["fastrollout", "run"]
    assert container["args"][:2] == ["--metrics-port=8080", "--health-port=8081"]
    assert container["image"] == "fastrollout/operator:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"


@needs_helm
def test_image_and_scheduling_values_reach_the_pod() -> None:
    objects = render(
        "image.repository=registry.example/fastrollout",
        "image.tag=1.2.3",
        "image.pullPolicy=Never",
        "priorityClassName=system-cluster-critical",
        "extraArgs={--verbose}",
        "podAnnotations.team=platform",
    )
    container = operator_container(objects)
    assert container["image"] == "registry.example/fastrollout:1.2.3"
    assert container["imagePullPolicy"] == "Never"
    assert container["args"][-1] == "--verbose"
    template = one(objects, "Deployment")["spec"]["template"]
    assert template["spec"]["priorityClassName"] == "system-cluster-critical"
    assert template["metadata"]["annotations"] == {"team": "platform"}
    test_pod = one(objects, "Pod")
    assert test_pod["spec"]["containers"][0]["image"] == "registry.example/fastrollout:1.2.3"
    digest = "sha256:" + "a" * 64
    assert operator_container(render(f"image.digest={digest}"))["image"] == f"fastrollout/operator@{digest}"


@needs_helm
def test_crd_is_the_generated_crd_kept_on_uninstall() -> None:
    crd = one(render(), "CustomResourceDefinition")
    metadata = crd.pop("metadata")
    assert metadata["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert metadata["labels"]["app.kubernetes.io/managed-by"] == "Helm"
    generated = yaml.safe_load(GENERATED_CRD.read_text())
    assert metadata["name"] == generated.pop("metadata")["name"]
    assert crd == generated


@needs_helm
def test_crd_policy_values() -> None:
    unkept = one(render("crds.keep=false"), "CustomResourceDefinition")
    assert "annotations" not in unkept["metadata"]
    assert of_kind(render("crds.enabled=false"), "CustomResourceDefinition") == []


@needs_helm
def test_metrics_service_and_optional_service_monitor() -> None:
    objects = render()
    service = one(objects, "Service")
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    assert of_kind(objects, "ServiceMonitor") == []
    monitor = one(render("metrics.serviceMonitor.enabled=true"), "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    broken = helm(
        "template",
        RELEASE,
        str(CHART),
        "--kube-version",
        KUBE_VERSION,
        "--set",
        "metrics.serviceMonitor.enabled=true,metrics.service.enabled=false",
    )
    assert broken.returncode != 0
    assert "metrics.service.enabled" in broken.stderr


@needs_helm
def test_dashboard_config_map_is_optional_and_labelled_for_the_sidecar() -> None:
    assert of_kind(render(), "ConfigMap") == []
    config_map = one(
        render("grafana.dashboard.enabled=true", "grafana.dashboard.annotations.grafana_folder=Kubernetes"),
        "ConfigMap",
    )
    assert config_map["metadata"]["name"] == "fr-fastrollout-dashboard"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "Kubernetes"}
    dashboard = (CHART / "dashboards" / "fastrollout.json").read_text()
    assert config_map["data"] == {"fastrollout.json": dashboard.rstrip("\n")}


@needs_helm
def test_prometheus_rule_is_the_rules_file_with_the_scrape_job() -> None:
    assert of_kind(render(), "PrometheusRule") == []
    rules_file = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    rule = one(render("prometheusRule.enabled=true", "prometheusRule.labels.release=kps"), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kps"
    assert rule["spec"] == {"groups": rules_file["groups"]}  # job="fastrollout": the chart name
    # The job follows the chart name (the ServiceMonitor's jobLabel), or prometheusRule.job.
    for sets, job in [(("nameOverride=rollouts",), "rollouts"), (("prometheusRule.job=ops",), "ops")]:
        rendered = json.dumps(one(render("prometheusRule.enabled=true", *sets), "PrometheusRule")["spec"])
        assert 'job=\\"fastrollout\\"' not in rendered
        assert rendered.count(f'job=\\"{job}\\"') == json.dumps(rules_file).count('job=\\"fastrollout\\"')


@needs_helm
def test_service_monitor_keeps_the_fastrollout_namespace_label() -> None:
    # The per-FastRollout series carry the FastRollout's namespace; the dashboard and alerts read it.
    monitor = one(render("metrics.serviceMonitor.enabled=true"), "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
    assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/name"


@needs_helm
def test_chart_test_pod_lists_fastrollouts_with_the_operator_identity() -> None:
    objects = render("watchNamespaces={team-a}")
    pod = one(objects, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["serviceAccountName"] == one(objects, "ServiceAccount")["metadata"]["name"]
    container = pod["spec"]["containers"][0]
    assert container["image"] == operator_container(objects)["image"]
    assert container["command"][:2] == ["python3", "-c"]
    assert {"name": "WATCH_NAMESPACES", "value": "team-a"} in container["env"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    compile(container["command"][2], "test-crd-served", "exec")
    # The test pod must not be selected by the metrics Service.
    selector = one(objects, "Service")["spec"]["selector"]
    assert not selector.items() <= pod["metadata"]["labels"].items()


@needs_helm
@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("bogus=1", id="unknown-top-level-key"),
        pytest.param("image.bogus=x", id="unknown-nested-key"),
        pytest.param("metrics.serviceMonitor.bogus=true", id="unknown-deep-key"),
        pytest.param("replicaCount=0", id="no-replica"),
        pytest.param("leaderElection.bogus=1", id="unknown-election-key"),
        pytest.param("image.pullPolicy=Sometimes", id="bad-pull-policy"),
        pytest.param("watchNamespaces={Not_A_Namespace}", id="bad-namespace"),
        pytest.param("networkPolicy.bogus=true", id="unknown-network-policy-key"),
        pytest.param("networkPolicy.apiServer.cidrs={10.0.0.1}", id="api-server-cidr-without-prefix"),
        pytest.param("networkPolicy.metricsFrom[0].bogus.x=y", id="unknown-peer-kind"),
        pytest.param("prometheusRule.bogus=true", id="unknown-rule-key"),
        pytest.param("grafana.dashboard.bogus=true", id="unknown-dashboard-key"),
        pytest.param('prometheusRule.job=a"b', id="quote-in-job"),
    ],
)
def test_schema_rejects_bad_values(bad: str) -> None:
    result = helm("template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, "--set", bad)
    assert result.returncode != 0, f"--set {bad} was accepted"
    assert "schema" in result.stderr.lower(), result.stderr


@needs_helm
def test_equal_health_and_metrics_ports_fail_with_a_clear_message() -> None:
    result = helm(
        "template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION, "--set", "health.port=8080"
    )
    assert result.returncode != 0, "health.port == metrics.port was accepted"
    assert "health.port and metrics.port are both 8080" in result.stderr, result.stderr
    moved = operator_container(render("health.port=9000", "metrics.port=9001"))
    assert {p["name"]: p["containerPort"] for p in moved["ports"]} == {"metrics": 9001, "health": 9000}


@needs_helm
def test_readiness_is_not_liveness() -> None:
    # Readiness is the child watches (/readyz), liveness the process (/healthz): a namespace's 403 takes
    # the operator out of its Service without restarting it.
    container = operator_container(render())
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"


@needs_helm
def test_network_policy_is_off_by_default() -> None:
    assert of_kind(render(), "NetworkPolicy") == []


@needs_helm
def test_network_policy_opens_only_the_metrics_port_and_the_api_server() -> None:
    objects = render("networkPolicy.enabled=true")
    policy = one(objects, "NetworkPolicy")["spec"]
    deployment = one(objects, "Deployment")
    assert policy["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    # The chart test pod is not the operator: the policy leaves it alone.
    assert (
        not policy["podSelector"]["matchLabels"].items() <= one(objects, "Pod")["metadata"]["labels"].items()
    )
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    # Any source, but only the port named "metrics" (the container's metrics port).
    assert policy["ingress"] == [{"ports": [{"port": "metrics", "protocol": "TCP"}]}]
    assert "metrics" in {p["name"] for p in operator_container(objects)["ports"]}
    assert policy["egress"] == [
        {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}]}
    ]


@needs_helm
def test_network_policy_peers_and_api_server_addresses_are_configurable() -> None:
    peer = "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=monitoring"
    objects = render(
        "networkPolicy.enabled=true",
        peer,
        "networkPolicy.metricsFrom[1].ipBlock.cidr=192.0.2.0/24",
        "networkPolicy.apiServer.cidrs={10.0.0.10/32,fd00::1/128}",
        "networkPolicy.apiServer.ports={6443}",
    )
    policy = one(objects, "NetworkPolicy")["spec"]
    assert policy["ingress"] == [
        {
            "ports": [{"port": "metrics", "protocol": "TCP"}],
            "from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
                {"ipBlock": {"cidr": "192.0.2.0/24"}},
            ],
        }
    ]
    assert policy["egress"] == [
        {
            "ports": [{"port": 6443, "protocol": "TCP"}],
            "to": [{"ipBlock": {"cidr": "10.0.0.10/32"}}, {"ipBlock": {"cidr": "fd00::1/128"}}],
        }
    ]
