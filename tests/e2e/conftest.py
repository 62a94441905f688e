"""Fixtures for end-to-end tests on the test bed's real node (kubelet + containerd + kube-proxy).

- ``testbed`` (session): the shared fixture of tests/integration/conftest.py (starts or reuses the bed
  at ``$FASTROLLOUT_STATE``, default /tmp/fastrollout-testbed), loaded from that file.
- ``real_node`` (session): the Ready node labelled ``fastrollout.test/node=real``; skips every test that
  uses it, with the reason, when the bed has none (``tests/cluster/up.sh --real-node`` adds it;
  ``tests/run.sh`` does).
- ``e2e_namespace`` (session): a namespace for the fleets, created before the operator is installed.
- ``operator_release`` (session): the chart installed with **helm** into ``fastrollout-system``, running
  the operator image built from this checkout (``Testbed.own_image``) on the real node, with its real RBAC,
  managing ``e2e_namespace`` only (``watchNamespaces``), so it never acts on other tests' rollouts.
- ``e2e_report`` (session): a dict the tests put their numbers in; written as JSON under pytest's tmp
  dir and printed in the terminal summary (with or without ``-s``).

Helpers (the load generator, the watch recorder, the analysis) are plain modules in this directory,
imported as ``tests.e2e.<module>``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `from tests.e2e import load` in the test modules

# The shared bed fixtures live in tests/integration/conftest.py; a conftest only serves its own
# directory, so load that file under a name of its own and re-export the fixture (no copy of it here).
_spec = importlib.util.spec_from_file_location(
    "fastrollout_integration_conftest", REPO / "tests" / "integration" / "conftest.py"
)
assert _spec is not None
assert _spec.loader is not None
integration = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = integration
_spec.loader.exec_module(integration)
testbed = integration.testbed
wait_for = integration.wait_for
Testbed = integration.Testbed

REAL_NODE_LABEL = "fastrollout.test/node=real"
REAL_NODE_TOLERATION = {"key": "fastrollout.test/real", "operator": "Exists", "effect": "NoSchedule"}
OPERATOR_NAMESPACE = "fastrollout-system"
RELEASE = "fastrollout-e2e"
CHART = REPO / "charts" / "fastrollout"
REPORT_KEY = pytest.StashKey[dict[str, Any]]()
REPORT_PATH_KEY = pytest.StashKey[Path]()


# ------------------------------------------------------------------------------------------ real node


@pytest.fixture(scope="session")
def real_node(testbed: Any) -> str:
    nodes = testbed.kubectl_json("get", "nodes", "-l", REAL_NODE_LABEL)["items"]
    ready = [
        n["metadata"]["name"]
        for n in nodes
        if any(
            c["type"] == "Ready" and c["status"] == "True" for c in n.get("status", {}).get("conditions", [])
        )
    ]
    if not ready:
        pytest.skip(
            f"the test bed at {testbed.state_dir} has no Ready node labelled {REAL_NODE_LABEL} "
            f"({len(nodes)} labelled, not Ready): start it with `tests/cluster/up.sh --real-node` "
            "(tests/run.sh does)"
        )
    return str(ready[0])


# ------------------------------------------------------------------------------------------ namespace


@pytest.fixture(scope="session")
def e2e_namespace(testbed: Any, real_node: str) -> Iterator[str]:
    name = f"e2e-{secrets.token_hex(3)}"
    testbed.kubectl("create", "namespace", name)
    testbed.kubectl("label", "namespace", name, "fastrollout.test/owner=pytest-e2e")
    wait_for(
        lambda: testbed.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
        timeout=30,
        message=f"ServiceAccount default in namespace {name}",
    )
    yield name
    if os.environ.get("FASTROLLOUT_KEEP_NAMESPACES") != "1":
        testbed.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


# ------------------------------------------------------------------------------------------ operator


def operator_values(image: str, watch_namespaces: list[str], **extra: Any) -> dict[str, Any]:
    """Helm values that run the operator image built from this checkout (``image``: its full reference,
    ``Testbed.own_image``) on the real node."""
    repository, _, tag = image.rpartition(":")
    values: dict[str, Any] = {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "nodeSelector": {"fastrollout.test/node": "real"},
        "tolerations": [REAL_NODE_TOLERATION],
        "watchNamespaces": watch_namespaces,
    }
    values.update(extra)
    return values


def helm_install(
    bed: Any, release: str, namespace: str, values: dict[str, Any], tmp: Path, *, upgrade: bool = False
) -> str:
    """``helm upgrade --install`` (or ``upgrade``) with ``values`` written to a file; waits until Ready.

    ``--take-ownership``: the CRD may already exist on a shared bed, applied by kubectl (the admission
    tests do) or by another release. It is annotated ``helm.sh/resource-policy: keep``, so taking it over
    never leads to its deletion when this release is uninstalled.
    """
    values_file = tmp / f"{release}-values-{secrets.token_hex(2)}.json"
    values_file.write_text(json.dumps(values))
    args = ["upgrade", release, str(CHART), "-n", namespace, "-f", str(values_file)]
    if not upgrade:
        args += ["--install", "--create-namespace"]
    args += ["--take-ownership", "--wait", "--timeout", "180s"]
    return str(bed.helm(*args, timeout=240).stdout)


@pytest.fixture(scope="session")
def operator_release(
    testbed: Any, real_node: str, e2e_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("operator")
    started = time.monotonic()
    values = operator_values(testbed.own_image("operator"), [e2e_namespace])
    helm_install(testbed, RELEASE, OPERATOR_NAMESPACE, values, tmp)
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=operator"
    pods = wait_for(
        lambda: [
            p
            for p in testbed.kubectl_json("get", "pods", "-n", OPERATOR_NAMESPACE, "-l", selector)["items"]
            if p["spec"].get("nodeName") == real_node
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p.get("status", {}).get("conditions", [])
            )
        ],
        timeout=120,
        message=f"operator pod of release {RELEASE} Ready on {real_node}",
    )
    sys.stderr.write(
        f"\n[e2e] operator installed with helm (release {RELEASE}, pod {pods[0]['metadata']['name']} on "
        f"{real_node}) in {time.monotonic() - started:.1f}s; it manages namespace {e2e_namespace}\n"
    )
    yield {"release": RELEASE, "namespace": OPERATOR_NAMESPACE, "pod": pods[0]["metadata"]["name"]}
    # Keep the operator's log with the run's artifacts, then uninstall (the CRD stays: crds.keep).
    # Every replica's log (leader and standby), each line prefixed with its pod.
    logs = testbed.kubectl(
        "logs", "-n", OPERATOR_NAMESPACE, "-l", selector, "--prefix", "--tail=-1", check=False, timeout=60
    )
    (tmp / "operator.log").write_text(logs.stdout + logs.stderr)
    sys.stderr.write(f"\n[e2e] operator log: {tmp / 'operator.log'}\n")
    if os.environ.get("FASTROLLOUT_KEEP_OPERATOR") != "1":
        testbed.helm(
            "uninstall", RELEASE, "-n", OPERATOR_NAMESPACE, "--wait", "--timeout", "120s", check=False
        )


# ------------------------------------------------------------------------------------------ report


@pytest.fixture(scope="session")
def e2e_report(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    report: dict[str, Any] = {}
    path = tmp_path_factory.getbasetemp() / "e2e-last-run.json"
    request.config.stash[REPORT_KEY] = report
    request.config.stash[REPORT_PATH_KEY] = path
    yield report
    path.write_text(json.dumps(report, indent=2, default=str))


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    report = config.stash.get(REPORT_KEY, None)
    if not report:
        return
    path = config.stash.get(REPORT_PATH_KEY, None)
    if path is not None:
        path.write_text(json.dumps(report, indent=2, default=str))
    terminalreporter.section("fastrollout end-to-end numbers")
    for line in report.get("summary_lines", []):
        terminalreporter.write_line(line)
    if path is not None:
        terminalreporter.write_line(f"full numbers: {path}")
