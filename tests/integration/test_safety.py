"""The safety invariants (DESIGN.md 1b, README "Safety"), each tried the way a user or a fault breaks it.

Every test here reproduces a way the operator used to lose capacity, cut a Service off or stall in
silence, and asserts what the real cluster shows: ready endpoints and Ready pods at every change the
API delivered (recorded by a watch, not sampled), the status, the events and the metrics.
"""

from __future__ import annotations

import copy
import json
import re
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rollout_helpers import (
    Fleet,
    condition,
    fleet_manifest,
    free_port,
    is_ready,
    is_terminating,
    recording,
    revision,
    service_manifest,
    slow_version,
    version_of,
)

from fastrollout.api import FastRolloutSpec
from fastrollout.plan import revision_of

if TYPE_CHECKING:
    from conftest import OperatorProcess, Testbed

DEADLINE = 20


def start_operator(
    operator_process: Callable[..., OperatorProcess], namespace: str, env: dict[str, str] | None = None
) -> tuple[OperatorProcess, int]:
    """An operator for `namespace` whose metrics port the test knows."""
    metrics_port = free_port()
    op = operator_process(
        "--namespace",
        namespace,
        "--metrics-port",
        str(metrics_port),
        "--health-port",
        str(free_port()),
        env=env,
    )
    op.wait_for_log(r"started \d+ child watches", timeout=60)
    return op, metrics_port


def metric(port: int, name: str, **labels: str) -> float:
    """One sample of the operator's /metrics (0 when absent)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    pattern = re.compile(rf"^{re.escape(name)}\{{{re.escape(wanted)}\}} (\S+)$", re.MULTILINE)
    found = pattern.search(text)
    return float(found.group(1)) if found else 0.0


def ready_endpoints(slices: dict[str, dict[str, Any]]) -> int:
    """Ready endpoints of a Service across its slices (an absent `ready` means true)."""
    return sum(
        1
        for s in slices.values()
        for e in s.get("endpoints") or []
        if (e.get("conditions") or {}).get("ready") is not False
    )


def ready_pods(pods: dict[str, dict[str, Any]]) -> int:
    return sum(1 for p in pods.values() if not is_terminating(p) and is_ready(p))


def warnings(fleet: Fleet, reason: str) -> list[dict[str, Any]]:
    return [e for e in fleet.events() if e["reason"] == reason and e["type"] == "Warning"]


def live_uids(fleet: Fleet, version: str) -> set[str]:
    return {
        p["metadata"]["uid"]
        for p in fleet.pods()
        if version_of(p) == version and not is_terminating(p) and is_ready(p)
    }


# ---------------------------------------------------------------------------------------- traffic


def test_service_that_stops_selecting_the_new_pods_is_never_cut_off(testbed: Testbed, fleet: Fleet) -> None:
    """v2 renames a label the Service selects on; the FastRollout's own selector still matches. The
    Service must keep its ready endpoints throughout, the status must name the Service and what it
    selects on, one Warning event must say so, and the deadline must roll back."""
    service = service_manifest("w")
    service["spec"]["selector"] = {"app": "w", "role": "worker"}
    testbed.apply(json.dumps(service), fleet.namespace)
    manifest = fleet_manifest(
        replicas=10, version="v1", drain_seconds=5, serviceName="w", progressDeadlineSeconds=DEADLINE
    )
    manifest["spec"]["template"]["metadata"]["labels"]["role"] = "worker"
    fleet.apply(manifest)
    fleet.wait_complete("v1")
    testbed.wait_for(
        lambda: ready_endpoints({s["metadata"]["name"]: s for s in fleet.endpoint_slices("w")}) == 10,
        timeout=30,
        message="10 ready endpoints of v1",
    )
    v1_uids = live_uids(fleet, "v1")

    renamed = copy.deepcopy(manifest)
    renamed["spec"]["version"] = "v2"
    labels = renamed["spec"]["template"]["metadata"]["labels"]
    labels["kind"] = labels.pop("role")
    with recording(testbed, fleet.namespace, "endpointslices", "kubernetes.io/service-name=w") as slices:
        fleet.apply(renamed)
        held = fleet.wait_status(
            lambda s: (
                s.get("version") == "v2"
                and s.get("updatedReplicas") == 10
                and condition(s, "Progressing").get("reason") == "NewPodsNotInService"
            ),
            timeout=DEADLINE,
            message="v2 Ready but held: not behind Service w",
        )
        rolled_back = fleet.wait_status(
            lambda s: s.get("phase") == "RolledBack", timeout=DEADLINE + 30, message="RolledBack"
        )
        testbed.wait_for(
            lambda: not [p for p in fleet.pods() if version_of(p) == "v2" and not is_terminating(p)],
            timeout=30,
            message="v2 pods removed",
        )

    initial = ready_endpoints({seen.name: seen.obj for seen in slices.events() if seen.type == "LISTED"})
    assert initial == 10
    counts = [initial, *(ready_endpoints(state) for _, state in slices.snapshots())]
    assert min(counts) >= 10, f"Service w fell to {min(counts)} ready endpoints"
    message = condition(held, "Progressing")["message"]
    assert "Service w" in message, message
    assert "role=worker" in message, message
    assert "kind=worker" in message, message
    assert held["stableVersion"] == "v1"
    assert held["oldServingReplicas"] == 10
    assert live_uids(fleet, "v1") == v1_uids, "v1 pods were touched"
    assert condition(rolled_back, "Progressing")["reason"] == "ProgressDeadlineExceeded"
    assert "Service w" in rolled_back["message"], rolled_back["message"]
    assert len(warnings(fleet, "NewPodsNotInService")) == 1, fleet.event_reasons()
    assert not [e for e in fleet.events() if e["reason"] == "CutOver" and "v2" in e["message"]]


# ------------------------------------------------------------------------------------- visibility


def test_template_the_api_refuses_shows_in_status_event_and_metric(
    testbed: Testbed, namespace: str, crd: None, operator_process: Callable[..., OperatorProcess]
) -> None:
    """`resources.limits.memory: lots` passes admission (the template is opaque to the CRD) but the
    ReplicaSet create is refused (400: the quantity does not decode): within 5 s the status carries ReplicaFailure/FailedCreate
    with the API's message, one Warning event (not one per pass), the error counter moves, and the
    progress deadline still rolls back to the serving version."""
    _op, metrics_port = start_operator(operator_process, namespace)
    fleet = Fleet(testbed, namespace)
    fleet.apply(fleet_manifest(replicas=5, version="v1", drain_seconds=2, progressDeadlineSeconds=DEADLINE))
    fleet.wait_complete("v1")

    original = copy.deepcopy(fleet.manifest)
    broken = copy.deepcopy(original)
    broken["spec"]["version"] = "v2"
    broken["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"memory": "lots"}}
    fleet.apply(broken)
    applied = time.monotonic()
    refused = fleet.wait_status(
        lambda s: s.get("version") == "v2" and condition(s, "ReplicaFailure").get("reason") == "FailedCreate",
        timeout=5,
        message="ReplicaFailure/FailedCreate within 5 s",
    )
    assert time.monotonic() - applied <= 5
    failure = condition(refused, "ReplicaFailure")
    assert failure["status"] == "True"
    assert "quantities must match" in failure["message"], failure["message"]  # the API's own words
    assert "HTTP 400" in failure["message"], failure["message"]
    assert refused["stableVersion"] == "v1"
    # Several passes later (they retry with backoff): still one event, and the counter counts them.
    time.sleep(6)
    assert len(warnings(fleet, "FailedCreate")) == 1, fleet.event_reasons()
    assert metric(metrics_port, "fastrollout_reconcile_errors_total", reason="FailedCreate") >= 2
    # The deadline keeps running: rolled back, v1 untouched.
    done = fleet.wait_status(
        lambda s: s.get("phase") == "RolledBack", timeout=DEADLINE + 20, message="RolledBack"
    )
    assert done["readyReplicas"] == 5
    assert len(live_uids(fleet, "v1")) == 5
    # A fixed template clears the condition.
    fixed = copy.deepcopy(original)
    fixed["spec"]["version"] = "v3"
    fleet.apply(fixed)
    clean = fleet.wait_complete("v3")
    assert not condition(clean, "ReplicaFailure"), clean["conditions"]


# --------------------------------------------------------------------------------------- capacity


def test_waves_rollback_at_the_deadline_never_drops_ready_pods(testbed: Testbed, fleet: Fleet) -> None:
    """maxSurge 25% of 20: the first wave of v2 turns Ready (v1 shrinks to 15), later v2 pods never do.
    At the deadline the rollback must scale v1 back to 20 and keep v2's Ready pods until v1 serves
    alone: Ready pods never below 20 (before the fix they fell to 15)."""
    replicas = 20
    fleet.apply(
        fleet_manifest(
            replicas=replicas,
            version="v1",
            drain_seconds=3,
            start_delay="2",
            strategy={"maxSurge": "25%"},
            progressDeadlineSeconds=DEADLINE,
        )
    )
    fleet.wait_complete("v1", timeout=90)
    with recording(testbed, fleet.namespace, "pods") as pods:
        fleet.patch(slow_version("v2", 4))
        testbed.wait_for(
            lambda: any(version_of(rs) == "v2" for rs in fleet.replica_sets()), timeout=20, message="v2 RS"
        )
        v2_rs = next(rs for rs in fleet.replica_sets() if version_of(rs) == "v2")
        testbed.wait_for(
            lambda: len([p for p in fleet.pods() if version_of(p) == "v2"]) >= 5,
            timeout=20,
            message="first wave of v2 created",
        )
        # Pods the v2 ReplicaSet makes from now on never turn Ready (the kwok stage skips them).
        testbed.kubectl(
            "patch",
            "rs",
            v2_rs["metadata"]["name"],
            "-n",
            fleet.namespace,
            "--type=merge",
            "-p",
            json.dumps(
                {"spec": {"template": {"metadata": {"labels": {"fastrollout.test/never-ready": "true"}}}}}
            ),
        )
        fleet.wait_status(
            lambda s: s.get("phase") == "RolledBack", timeout=DEADLINE + 40, message="RolledBack"
        )
        testbed.wait_for(
            lambda: not [p for p in fleet.pods() if version_of(p) == "v2" and not is_terminating(p)],
            timeout=60,
            message="v2 pods removed once v1 serves alone",
        )
        testbed.wait_for(
            lambda: len(live_uids(fleet, "v1")) == replicas, timeout=30, message="v1 back at 20 Ready"
        )

    samples = [(ready_pods(state), seen) for seen, state in pods.snapshots()]
    assert samples, "no pod change recorded"
    shrunk = [
        seen
        for seen, state in pods.snapshots()
        if len([p for p in state.values() if version_of(p) == "v1" and not is_terminating(p)]) < replicas
    ]
    assert shrunk, "v1 never shrank: the scenario did not reach a wave"
    low = min(samples, key=lambda sample: sample[0])
    assert low[0] >= replicas, f"Ready pods fell to {low[0]} at {low[1].type} of {low[1].name}"


# ------------------------------------------------------------------------------------- durability


def test_operator_killed_right_after_the_cutover_never_undoes_it(
    testbed: Testbed, namespace: str, crd: None, operator_process: Callable[..., OperatorProcess]
) -> None:
    """SIGKILL right after the collection delete of the old pods. The stored status must already name
    the new version stable; a later failing rollout (while the old pods still drain) must roll back to
    the version that serves, not to the one whose pods are all terminating."""
    op, _ = start_operator(operator_process, namespace, env={"FASTROLLOUT_TEST_KILL_AFTER": "DeletePods"})
    fleet = Fleet(testbed, namespace)
    fleet.apply(fleet_manifest(replicas=10, version="v1", drain_seconds=60, progressDeadlineSeconds=10))
    fleet.wait_complete("v1")  # a first rollout deletes nothing: the operator lives on
    assert op.alive
    fleet.patch({"version": "v2"})
    testbed.wait_for(lambda: not op.alive, timeout=60, message="operator killed after the cutover's delete")
    status = fleet.status()
    assert status["stableVersion"] == "v2", f"the cutover was not recorded before the delete: {status}"
    v2_uids = live_uids(fleet, "v2")
    assert len(v2_uids) == 10
    assert [p for p in fleet.pods() if version_of(p) == "v1" and is_terminating(p)], "v1 should be draining"

    # While v1 drains: a version that never becomes Ready, then the operator comes back.
    fleet.patch(
        {"version": "v3", "template": {"metadata": {"labels": {"fastrollout.test/never-ready": "true"}}}}
    )
    start_operator(operator_process, namespace)
    with recording(testbed, fleet.namespace, "pods") as pods:
        done = fleet.wait_status(lambda s: s.get("phase") == "RolledBack", timeout=60, message="RolledBack")
        testbed.wait_for(
            lambda: not [p for p in fleet.pods() if version_of(p) == "v3" and not is_terminating(p)],
            timeout=30,
            message="v3 removed",
        )
    assert done["stableVersion"] == "v2", done
    assert live_uids(fleet, "v2") == v2_uids, "the serving version's pods were replaced"
    v1_rs = [rs for rs in fleet.replica_sets() if version_of(rs) == "v1"]
    assert all(rs["spec"]["replicas"] == 0 for rs in v1_rs), "v1 was scaled back up"
    low = min((ready_pods(state) for _, state in pods.snapshots()), default=10)
    assert low >= 10, f"Ready pods fell to {low}"


# -------------------------------------------------------------------------------------- ownership


def _replica_set(
    name: str, labels: dict[str, str], replicas: int, selector: dict[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"type": "kwok"},
                    "containers": [{"name": "other", "image": "other:1"}],
                },
            },
        },
    }


def test_unowned_replica_set_with_the_expected_name_is_reported_not_adopted(
    testbed: Testbed, fleet: Fleet
) -> None:
    """Someone else's ReplicaSet already has the name the operator derives for v1. The collision must
    show in status (ReplicaFailure/ReplicaSetCollision naming it) and in one Warning event, and the
    other ReplicaSet must stay exactly as it was: not adopted, not scaled, not deleted."""
    manifest = fleet_manifest(replicas=3, version="v1", drain_seconds=2, progressDeadlineSeconds=DEADLINE)
    rev = revision_of(FastRolloutSpec.model_validate(manifest["spec"]))
    squatter = _replica_set(f"w-{rev}", {"team": "other"}, 2, {"team": "other"})
    testbed.apply(json.dumps(squatter), fleet.namespace)
    fleet.apply(manifest)
    status = fleet.wait_status(
        lambda s: condition(s, "ReplicaFailure").get("reason") == "ReplicaSetCollision",
        timeout=5,
        message="ReplicaSetCollision within 5 s",
    )
    assert f"w-{rev}" in condition(status, "ReplicaFailure")["message"]
    time.sleep(4)  # several passes
    assert len(warnings(fleet, "ReplicaSetCollision")) == 1, fleet.event_reasons()
    other = testbed.kubectl_json("get", "rs", f"w-{rev}", "-n", fleet.namespace)
    assert other["spec"]["replicas"] == 2
    assert not other["metadata"].get("ownerReferences"), other["metadata"].get("ownerReferences")
    assert other["metadata"]["labels"] == {"team": "other"}
    # The deadline still runs: a first rollout with nothing to roll back to fails, and says why.
    failed = fleet.wait_status(lambda s: s.get("phase") == "Failed", timeout=DEADLINE + 20, message="Failed")
    assert f"ReplicaSet w-{rev} already exists" in failed["message"], failed["message"]


def test_pods_with_our_labels_but_another_owner_are_not_counted_or_deleted(
    testbed: Testbed, fleet: Fleet
) -> None:
    """A foreign ReplicaSet whose pods carry v1's fastrollout.io labels: they are not counted as v1,
    the cutover to v2 does not delete them (no label-selected collection delete), and status says so."""
    fleet.apply(fleet_manifest(replicas=5, version="v1", drain_seconds=2))
    fleet.wait_complete("v1")
    (rs1,) = fleet.replica_sets()
    labels = {k: v for k, v in rs1["metadata"]["labels"].items() if k.startswith("fastrollout.io/")}
    impostor = _replica_set("impostor", {**labels, "app": "impostor"}, 2, {"app": "impostor"})
    testbed.apply(json.dumps(impostor), fleet.namespace)
    testbed.wait_for(
        lambda: (
            len(
                [
                    p
                    for p in testbed.kubectl_json("get", "pods", "-n", fleet.namespace, "-l", "app=impostor")[
                        "items"
                    ]
                    if is_ready(p)
                ]
            )
            == 2
        ),
        timeout=30,
        message="2 impostor pods Ready",
    )
    impostor_uids = {
        p["metadata"]["uid"]
        for p in testbed.kubectl_json("get", "pods", "-n", fleet.namespace, "-l", "app=impostor")["items"]
    }
    status = fleet.wait_status(
        lambda s: condition(s, "ReplicaFailure").get("reason") == "ForeignPods",
        timeout=10,
        message="ForeignPods",
    )
    assert status["replicas"] == 5, "foreign pods were counted"
    fleet.patch({"version": "v2"})
    fleet.wait_complete("v2")
    testbed.wait_for(
        lambda: (
            not [
                p
                for p in fleet.pods()
                if revision(p) == revision(rs1) and p["metadata"]["labels"].get("app") != "impostor"
            ]
        ),
        timeout=60,
        message="v1's own pods gone",
    )
    now = testbed.kubectl_json("get", "pods", "-n", fleet.namespace, "-l", "app=impostor")["items"]
    assert {p["metadata"]["uid"] for p in now} == impostor_uids
    assert not [p for p in now if is_terminating(p)], "an impostor pod was deleted"
