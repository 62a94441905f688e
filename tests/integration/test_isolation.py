"""Isolation: a namespace the operator may no longer list stops no other namespace, and says so.

The operator runs as a ServiceAccount with exactly the chart's namespaced rules (templates/_rbac.tpl) in
two namespaces, a and b, as the chart's watchNamespaces mode grants them. b's RoleBinding is deleted,
so every list in b is a 403: b's child watches can never sync, and neither can kopf's watch of b's
FastRollouts. A rollout in a must still go v1 -> v2, the second after kopf's default retries (54 s)
would have given up on b and stopped the whole operator; /readyz must name b's watches with the API's
message while /healthz stays 200 (a restart cannot fix RBAC, and restarting would stop a too); the
watch metrics say the same. Once the RoleBinding is back, b's watches recover and /readyz turns 200
without a restart.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rollout_helpers import REPO, Fleet, fleet_manifest, free_port

if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import OperatorProcess, Testbed

RBAC_TEMPLATE = REPO / "charts" / "fastrollout" / "templates" / "_rbac.tpl"
ACCOUNT = "fastrollout-operator"
# kopf's default API retries (1+1+2+3+5+8+13+21 s): then it failed b's FastRollout watch, which
# stopped the operator (exit 1) and with it every namespace.
KOPF_RETRY_WINDOW = 54


def chart_rules() -> list[dict[str, Any]]:
    """The chart's namespaced rules, read from the template itself (so the test tracks the chart)."""
    text = RBAC_TEMPLATE.read_text()
    body = re.search(r'define "fastrollout\.rbac\.namespacedRules" -}}\n(.*?)\{\{- end', text, re.DOTALL)
    assert body, f"no namespacedRules in {RBAC_TEMPLATE}"
    rules: list[dict[str, Any]] = yaml.safe_load(body.group(1))
    return rules


def grant(bed: Testbed, namespace: str, account_namespace: str) -> None:
    """The chart's Role and RoleBinding in `namespace`, for the ServiceAccount in `account_namespace`."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": ACCOUNT, "namespace": namespace},
        "rules": chart_rules(),
    }
    bed.apply(json.dumps(role))
    bind(bed, namespace, account_namespace)


def bind(bed: Testbed, namespace: str, account_namespace: str) -> None:
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": ACCOUNT, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ACCOUNT},
        "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": account_namespace}],
    }
    bed.apply(json.dumps(binding))


def can_list_pods(bed: Testbed, namespace: str, account_namespace: str) -> bool:
    user = f"system:serviceaccount:{account_namespace}:{ACCOUNT}"
    answer = bed.kubectl("auth", "can-i", "list", "pods", "-n", namespace, "--as", user, check=False)
    return answer.stdout.strip() == "yes"


def account_kubeconfig(bed: Testbed, account_namespace: str, path: Path) -> Path:
    """A kubeconfig for the ServiceAccount: the bed's server and CA, a token from the TokenRequest API."""
    token = bed.kubectl("create", "token", ACCOUNT, "-n", account_namespace, "--duration=1h").stdout.strip()
    admin = bed.kubectl_json("config", "view", "--raw", "--minify")
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bed", "cluster": cluster}],
        "users": [{"name": ACCOUNT, "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "bed", "user": ACCOUNT}}],
        "current-context": "operator",
    }
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return path


def get(port: int, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text: str = response.read().decode()
        return text


def test_a_namespace_without_rbac_stops_no_other_and_fails_readiness_only(
    testbed: Testbed,
    crd: None,
    namespace: str,
    operator_process: Callable[..., OperatorProcess],
    tmp_path: Path,
) -> None:
    a = namespace
    b = f"{a[:56]}-b"
    testbed.kubectl("create", "namespace", b)
    try:
        testbed.kubectl("label", "namespace", b, "fastrollout.test/owner=pytest")
        testbed.kubectl("create", "serviceaccount", ACCOUNT, "-n", a)
        grant(testbed, a, a)
        grant(testbed, b, a)
        # RBAC revoked in b: the Role stays, the binding goes (as when someone removes a namespace
        # from the chart's watchNamespaces but not from the operator's flags, or an admin revokes it).
        testbed.kubectl("delete", "rolebinding", ACCOUNT, "-n", b)
        testbed.wait_for(
            lambda: can_list_pods(testbed, a, a) and not can_list_pods(testbed, b, a),
            timeout=30,
            message="RBAC: pods listable in a, forbidden in b",
        )

        health_port, metrics_port = free_port(), free_port()
        kubeconfig = account_kubeconfig(testbed, a, tmp_path / "operator.kubeconfig")
        started = time.monotonic()
        op = operator_process(
            "--kubeconfig",  # the last --kubeconfig wins: the ServiceAccount, not the bed's admin
            str(kubeconfig),
            "--namespace",
            a,
            "--namespace",
            b,
            "--metrics-port",
            str(metrics_port),
            "--health-port",
            str(health_port),
        )
        op.wait_for_log(r"started \d+ child watches", timeout=60)

        # --- a rolls out v1 while b cannot even be listed
        fleet = Fleet(testbed, a)
        fleet.apply(fleet_manifest(replicas=5, version="v1", drain_seconds=1))
        fleet.wait_complete("v1", timeout=60)
        first = time.monotonic() - started
        sys.stderr.write(f"\n[isolation] a: v1 Complete {first:.1f}s after the operator started\n")

        # --- liveness: the process is fine (a restart would not fix RBAC, and would stop a too)
        status, body = get(health_port, "/healthz")
        assert status == 200, body
        assert op.alive, "the operator must keep running"

        # --- readiness: names every one of b's child watches, with the API's own message
        status, body = get(health_port, "/readyz")
        assert status == 503, body
        behind = {(w["kind"], w["scope"]) for w in body["watches"]}
        assert {scope for _, scope in behind} == {b}, body
        assert {"pods", "replicasets", "endpointslices"} <= {kind for kind, _ in behind}, body
        for watch in body["watches"]:
            assert watch["synced"] is False
            assert watch["error"].startswith("Forbidden: "), watch
            assert f'in the namespace "{b}"' in watch["error"], watch
        assert re.search(rf"watch-pods-{b} failed: Forbidden: pods is forbidden", op.log_text())

        # --- metrics say the same
        text = metrics_text(metrics_port)
        assert f'fastrollout_watch_synced{{kind="pods",scope="{a}"}} 1.0' in text
        assert f'fastrollout_watch_synced{{kind="pods",scope="{b}"}} 0.0' in text
        forbidden = re.search(
            rf'fastrollout_watch_errors_total{{kind="pods",reason="Forbidden",scope="{b}"}} (\d+)', text
        )
        assert forbidden, text
        assert int(forbidden.group(1)) >= 1

        # --- past kopf's retry window the operator still runs, and a still rolls out: v1 -> v2
        time.sleep(max(0.0, started + KOPF_RETRY_WINDOW + 10 - time.monotonic()))
        assert op.alive, f"the operator stopped:\n{op.log_tail(20)}"
        fleet.patch({"version": "v2"})
        bumped = time.monotonic()
        done = fleet.wait_complete("v2", timeout=60)
        second = time.monotonic() - bumped
        assert (done["updatedReplicas"], done["readyReplicas"]) == (5, 5), done
        sys.stderr.write(
            f"[isolation] a: v2 Complete {second:.1f}s after the bump, {bumped - started:.0f}s in\n"
        )
        assert get(health_port, "/healthz")[0] == 200
        assert get(health_port, "/readyz")[0] == 503

        # --- RBAC back: b's watches list on their next retry (backoff at most 30 s), no restart
        bind(testbed, b, a)
        restored = time.monotonic()
        testbed.wait_for(lambda: get(health_port, "/readyz")[0] == 200, timeout=60, message="/readyz 200")
        sys.stderr.write(f"[isolation] /readyz 200 {time.monotonic() - restored:.1f}s after RBAC was back\n")
        # ... and kopf, still retrying b's FastRollout watch, sees b's FastRollouts: b rolls out too.
        fleet_b = Fleet(testbed, b)
        fleet_b.apply(fleet_manifest(replicas=3, version="v1", drain_seconds=1))
        fleet_b.wait_complete("v1", timeout=90)
        assert op.alive
        assert op.starts == 1
    finally:
        testbed.kubectl("delete", "namespace", b, "--wait=false", "--ignore-not-found", check=False)
