"""The test bed itself: a real apiserver, controllers and scheduler, kwok nodes and pod lifecycles.

Each test checks what the cluster shows, with timings measured against the stage settings in
tests/cluster/kwok-stages.yaml, so a bed that silently skips a stage (pods Ready at once, deleted pods
gone at once, never-ready pods Ready anyway) fails here rather than making operator tests pass vacuously.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest import OperatorProcess, Testbed

IMAGE = "registry.invalid/fastrollout/worker:v1"  # never pulled: kwok runs no containers


def pod_manifest(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    grace: int = 30,
) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
            "spec": {
                "nodeSelector": {"type": "kwok"},
                "terminationGracePeriodSeconds": grace,
                "containers": [{"name": "worker", "image": IMAGE}],
            },
        }
    )


def get_pod(bed: Testbed, ns: str, name: str) -> dict[str, Any] | None:
    proc = bed.kubectl("get", "pod", name, "-n", ns, "-o", "json", "--ignore-not-found")
    return json.loads(proc.stdout) if proc.stdout.strip() else None


def condition(pod: dict[str, Any] | None, ctype: str) -> str | None:
    if not pod:
        return None
    for c in pod.get("status", {}).get("conditions", []):
        if c["type"] == ctype:
            return str(c["status"])
    return None


def is_ready(pod: dict[str, Any] | None) -> bool:
    return condition(pod, "Ready") == "True"


def is_running(pod: dict[str, Any] | None) -> bool:
    return pod is not None and pod["status"].get("phase") == "Running" and bool(pod["status"].get("podIP"))


def time_until_ready(bed: Testbed, ns: str, name: str, timeout: float = 30) -> float:
    """Seconds from now until the pod reports Ready (polled every 50 ms)."""
    t0 = time.monotonic()
    bed.wait_for(
        lambda: is_ready(get_pod(bed, ns, name)), timeout=timeout, interval=0.05, message=f"pod {name} Ready"
    )
    return time.monotonic() - t0


def kwok_nodes(bed: Testbed) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = bed.kubectl_json("get", "nodes", "-l", "type=kwok")["items"]
    return items


# ----------------------------------------------------------------------------------------------- nodes


def test_kwok_nodes_are_ready_and_large(testbed: Testbed) -> None:
    nodes = kwok_nodes(testbed)
    expected = int(os.environ.get("KWOK_NODES", "4"))
    assert len(nodes) == expected, [n["metadata"]["name"] for n in nodes]
    for node in nodes:
        name = node["metadata"]["name"]
        assert node["metadata"]["annotations"].get("kwok.x-k8s.io/node") == "fake", name
        assert condition(node, "Ready") == "True", (name, node["status"].get("conditions"))
        # The apiserver canonicalises quantities: 5000 comes back as "5k".
        assert node["status"]["allocatable"]["pods"] in ("5000", "5k"), name
        assert not node["spec"].get("taints"), (name, node["spec"].get("taints"))
        # kwok keeps the node alive through its Lease (renewed every ~10 s), as a kubelet does.
        lease = testbed.kubectl_json("get", "lease", name, "-n", "kube-node-lease")
        renewed = datetime.fromisoformat(lease["spec"]["renewTime"].replace("Z", "+00:00"))
        assert (datetime.now(UTC) - renewed).total_seconds() < 40, lease["spec"]


def test_control_plane_versions_match_the_pins(testbed: Testbed) -> None:
    version = testbed.kubectl_json("version")
    pinned = subprocess.run(
        ["bash", "-c", f'. "{testbed.cluster_dir}/versions.sh" && printf %s "$K8S_VERSION"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert version["serverVersion"]["gitVersion"] == pinned
    assert version["clientVersion"]["gitVersion"] == pinned


# ----------------------------------------------------------------------------------------------- pods


def test_deployment_of_50_pods_becomes_ready_on_kwok_nodes(testbed: Testbed, namespace: str) -> None:
    testbed.apply(
        textwrap.dedent(
            f"""
            apiVersion: apps/v1
            kind: Deployment
            metadata: {{name: fleet}}
            spec:
              replicas: 50
              selector: {{matchLabels: {{app: fleet}}}}
              template:
                metadata: {{labels: {{app: fleet}}}}
                spec:
                  nodeSelector: {{type: kwok}}
                  containers: [{{name: worker, image: "{IMAGE}"}}]
            """
        ),
        namespace,
    )

    def all_ready() -> list[dict[str, Any]] | None:
        pods = testbed.kubectl_json("get", "pods", "-n", namespace, "-l", "app=fleet")["items"]
        ready = [p for p in pods if is_ready(p) and not p["metadata"].get("deletionTimestamp")]
        return ready if len(ready) == 50 else None

    pods = testbed.wait_for(all_ready, timeout=120, interval=0.5, message="50 Ready pods")
    node_names = {n["metadata"]["name"] for n in kwok_nodes(testbed)}
    assert {p["spec"]["nodeName"] for p in pods} <= node_names
    assert len({p["spec"]["nodeName"] for p in pods}) > 1, "the scheduler spread pods over the kwok nodes"
    ips = [p["status"]["podIP"] for p in pods]
    assert len(set(ips)) == 50, "every pod has its own IP"
    for p in pods:
        assert p["status"]["phase"] == "Running"
        assert [c["ready"] for c in p["status"]["containerStatuses"]] == [True]
    deploy = testbed.kubectl_json("get", "deployment", "fleet", "-n", namespace)
    testbed.wait_for(
        lambda: (
            testbed.kubectl_json("get", "deployment", "fleet", "-n", namespace)["status"].get(
                "availableReplicas"
            )
            == 50
        ),
        timeout=30,
        message="Deployment status availableReplicas=50",
    )
    assert deploy["spec"]["replicas"] == 50


def test_pod_goes_running_then_ready_after_the_default_and_annotated_delays(
    testbed: Testbed, namespace: str
) -> None:
    testbed.apply(pod_manifest("default-delay"), namespace)
    testbed.apply(pod_manifest("slow", annotations={"fastrollout.test/start-delay": "4"}), namespace)
    # Running with an IP before Ready: the bed reproduces the window in which a pod exists but serves nothing.

    def slow_running() -> dict[str, Any] | None:
        pod = get_pod(testbed, namespace, "slow")
        return pod if is_running(pod) else None

    running = testbed.wait_for(
        slow_running,
        timeout=30,
        interval=0.05,
        message="slow pod Running",
    )
    assert condition(running, "Ready") == "False"
    t_default = time_until_ready(testbed, namespace, "default-delay")
    t_slow = time_until_ready(testbed, namespace, "slow")
    assert t_default < 3, f"default start delay is ~1 s, took {t_default:.1f}s"
    # Measured from when we saw it Running (up to ~0.3 s after kwok started the delay) plus the time
    # the default pod took, so the lower bound leaves room.
    assert 2.5 < t_default + t_slow < 7, f"start-delay 4 s, took {t_default + t_slow:.1f}s"


def test_never_ready_pod_runs_but_never_becomes_ready(testbed: Testbed, namespace: str) -> None:
    testbed.apply(pod_manifest("broken", labels={"fastrollout.test/never-ready": "true"}), namespace)
    testbed.apply(pod_manifest("control"), namespace)
    testbed.wait_for(
        lambda: is_running(get_pod(testbed, namespace, "broken")), timeout=30, message="broken pod Running"
    )
    # The control pod, created at the same time, becomes Ready; the broken one must not, for much longer
    # than the default 1 s start delay.
    time_until_ready(testbed, namespace, "control", timeout=30)
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        pod = get_pod(testbed, namespace, "broken")
        assert is_running(pod), pod
        assert condition(pod, "Ready") == "False", pod and pod["status"]
        time.sleep(0.25)


# ----------------------------------------------------------------------------------------------- deletion


def delete_and_time_until_gone(
    bed: Testbed, ns: str, name: str, grace: int | None = None
) -> tuple[float, float]:
    """Delete a Ready pod; returns (seconds it was seen Terminating, seconds until it was gone)."""
    args = ["delete", "pod", name, "-n", ns, "--wait=false"]
    if grace is not None:
        args.append(f"--grace-period={grace}")
    t0 = time.monotonic()
    bed.kubectl(*args)
    last_terminating = 0.0
    while True:
        pod = get_pod(bed, ns, name)
        now = time.monotonic() - t0
        if pod is None:
            return last_terminating, now
        assert pod["metadata"].get("deletionTimestamp"), "a deleted pod is Terminating until kwok removes it"
        last_terminating = now
        assert now < 60, f"pod {name} still Terminating after 60 s"
        time.sleep(0.1)


def test_deleted_pod_drains_for_drain_seconds_then_goes(testbed: Testbed, namespace: str) -> None:
    testbed.apply(pod_manifest("drainer", annotations={"fastrollout.test/drain-seconds": "5"}), namespace)
    time_until_ready(testbed, namespace, "drainer")
    terminating, gone = delete_and_time_until_gone(testbed, namespace, "drainer", grace=30)
    # deletionTimestamp has whole-second precision, so the drain may end up to 1 s early.
    assert terminating > 3.5, f"Terminating for only {terminating:.1f}s, drain-seconds is 5"
    assert gone < 8, f"gone after {gone:.1f}s, drain-seconds is 5 (grace 30 must not apply)"


def test_deleted_pod_without_drain_annotation_stays_for_its_grace_period(
    testbed: Testbed, namespace: str
) -> None:
    testbed.apply(pod_manifest("graceful", grace=3), namespace)
    time_until_ready(testbed, namespace, "graceful")
    terminating, gone = delete_and_time_until_gone(testbed, namespace, "graceful")
    assert terminating > 1.5, f"Terminating for only {terminating:.1f}s, grace period is 3 s"
    assert gone < 6, f"gone after {gone:.1f}s, grace period is 3 s"


def test_drain_longer_than_grace_period_is_cut_at_the_grace_period(testbed: Testbed, namespace: str) -> None:
    testbed.apply(
        pod_manifest("slowdrain", annotations={"fastrollout.test/drain-seconds": "60"}, grace=2), namespace
    )
    time_until_ready(testbed, namespace, "slowdrain")
    _, gone = delete_and_time_until_gone(testbed, namespace, "slowdrain")
    assert gone < 5, f"gone after {gone:.1f}s; a kubelet kills at the 2 s grace period"


def test_pod_with_finalizer_is_still_removed_after_its_drain(testbed: Testbed, namespace: str) -> None:
    manifest = json.loads(pod_manifest("finalized", annotations={"fastrollout.test/drain-seconds": "1"}))
    manifest["metadata"]["finalizers"] = ["fastrollout.test/hold"]
    testbed.apply(json.dumps(manifest), namespace)
    time_until_ready(testbed, namespace, "finalized")
    _, gone = delete_and_time_until_gone(testbed, namespace, "finalized", grace=30)
    assert gone < 5, f"gone after {gone:.1f}s"


# ----------------------------------------------------------------------------------------------- endpoints


def endpoints_by_pod(bed: Testbed, ns: str, service: str) -> dict[str, dict[str, Any]]:
    slices = bed.kubectl_json(
        "get", "endpointslices", "-n", ns, "-l", f"kubernetes.io/service-name={service}"
    )
    out = {}
    for s in slices["items"]:
        for ep in s.get("endpoints") or []:
            ref = ep.get("targetRef") or {}
            out[ref.get("name", "?")] = ep
    return out


def test_endpointslices_list_ready_kwok_pods_and_mark_deleted_ones_terminating(
    testbed: Testbed, namespace: str
) -> None:
    testbed.apply(
        textwrap.dedent(
            """
            apiVersion: v1
            kind: Service
            metadata: {name: web}
            spec:
              selector: {app: web}
              ports: [{port: 80, targetPort: 8080}]
            """
        ),
        namespace,
    )
    names = ["web-0", "web-1", "web-2"]
    for n in names:
        testbed.apply(
            pod_manifest(n, labels={"app": "web"}, annotations={"fastrollout.test/drain-seconds": "6"}),
            namespace,
        )

    def all_ready() -> dict[str, dict[str, Any]] | None:
        eps = endpoints_by_pod(testbed, namespace, "web")
        ok = set(eps) == set(names) and all(e["conditions"].get("ready") is True for e in eps.values())
        return eps if ok else None

    eps = testbed.wait_for(all_ready, timeout=30, message="3 ready endpoints")
    for n in names:
        pod = get_pod(testbed, namespace, n)
        assert pod is not None
        assert eps[n]["addresses"] == [pod["status"]["podIP"]]
        assert eps[n]["nodeName"] == pod["spec"]["nodeName"]

    testbed.kubectl("delete", "pod", "web-0", "-n", namespace, "--wait=false", "--grace-period=30")

    def terminating() -> dict[str, Any] | None:
        ep = endpoints_by_pod(testbed, namespace, "web").get("web-0")
        return ep if ep and ep["conditions"].get("terminating") is True else None

    ep = testbed.wait_for(terminating, timeout=10, interval=0.1, message="web-0 endpoint terminating")
    assert ep["conditions"].get("ready") is False
    assert ep["conditions"].get("serving") is True, "still Ready while draining, so still serving"
    others = endpoints_by_pod(testbed, namespace, "web")
    assert all(others[n]["conditions"].get("ready") is True for n in ("web-1", "web-2"))
    # After the drain kwok removes the pod, and the endpoint disappears.
    testbed.wait_for(
        lambda: "web-0" not in endpoints_by_pod(testbed, namespace, "web"),
        timeout=15,
        interval=0.2,
        message="web-0 endpoint removed after its drain",
    )


# ----------------------------------------------------------------------------------------------- settings


def test_controller_manager_and_scheduler_run_with_the_requested_qps(testbed: Testbed) -> None:
    args = testbed.cmdline_of("kube-controller-manager")
    assert f"--kube-api-qps={os.environ.get('KCM_QPS', '20')}" in args, args
    assert f"--kube-api-burst={os.environ.get('KCM_BURST', '30')}" in args, args
    sched_args = testbed.cmdline_of("kube-scheduler")
    config_path = next(a.split("=", 1)[1] for a in sched_args if a.startswith("--config="))
    config = testbed.state_dir.joinpath(config_path).read_text()
    assert f"qps: {os.environ.get('SCHED_QPS', '50')}\n" in config, config
    assert f"burst: {os.environ.get('SCHED_BURST', '100')}\n" in config, config
    apiserver = testbed.cmdline_of("kube-apiserver")
    assert "--delete-collection-workers=10" in apiserver


def test_up_is_idempotent_and_fast_when_running(testbed: Testbed) -> None:
    pids = {
        c: testbed.pid_of(c)
        for c in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
    }
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(testbed.cluster_dir / "up.sh")], capture_output=True, text=True, timeout=120, check=False
    )
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    assert f"export KUBECONFIG={testbed.kubeconfig}" in proc.stdout
    assert "already up" in proc.stderr, proc.stderr
    assert {c: testbed.pid_of(c) for c in pids} == pids, "nothing restarted"
    assert took < 10, f"up.sh on a running bed took {took:.1f}s"


# ----------------------------------------------------------------------------------------------- fixtures


def test_operator_process_fixture_kills_restarts_and_keeps_logs(
    operator_process: Callable[..., OperatorProcess], testbed: Testbed
) -> None:
    # A stand-in for the operator that proves the fixture's mechanics against the bed: it reads the
    # environment the operator gets, talks to the apiserver, and logs.
    script = (
        "import os, subprocess, time;"
        "print('kubeconfig', os.environ['KUBECONFIG'], flush=True);"
        "print(subprocess.run(['kubectl', 'get', 'ns', 'default', '-o', 'name'], capture_output=True, text=True).stdout.strip(), flush=True);"
        "time.sleep(600)"
    )
    op = operator_process(command=[sys.executable, "-c", script])
    op.wait_for_log(r"namespace/default", timeout=30)
    assert f"kubeconfig {testbed.kubeconfig}" in op.log_text()
    first_pid = op.pid
    assert op.kill() == -9
    assert not op.alive
    op.restart()
    assert op.alive
    assert op.pid != first_pid
    testbed.wait_for(
        lambda: op.log_text().count("namespace/default") == 2, timeout=30, message="second start logged"
    )
    assert "SIGKILL" in op.log_text()
