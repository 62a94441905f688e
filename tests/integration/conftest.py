"""Fixtures for integration tests: a real Kubernetes API (tests/cluster/up.sh) with kwok nodes.

- ``testbed`` (session): starts the bed, or reuses a running one (up.sh is idempotent and takes about a
  second when the bed is already up). Left running after the session so the next run starts in seconds;
  set ``FASTROLLOUT_TESTBED_TEARDOWN=1`` to run down.sh at the end (CI).
- ``namespace``: a fresh namespace per test, deleted afterwards (``FASTROLLOUT_KEEP_NAMESPACES=1`` keeps it).
- ``operator_process``: factory that starts ``python -m fastrollout run --kubeconfig ...`` as a real
  subprocess; its log tail is attached to the report of a failing test.
- ``wait_for`` (function and fixture): poll a predicate against the cluster until true or a clear timeout.
- ``crd``, ``rollout_operator``, ``fleet``: defined in rollout_helpers.py, registered here for every module.

Every test collected under tests/integration is marked ``integration``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CLUSTER_DIR = REPO / "tests" / "cluster"
UP_TIMEOUT_S = 3600  # a cold machine builds Kubernetes from source first (minutes on 2 cores)

T = TypeVar("T")


# --------------------------------------------------------------------------------------------- markers


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees every collected item of the session, not only ours: mark by location.
    for item in items:
        if Path(str(item.path)).resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


# --------------------------------------------------------------------------------------------- waiting


class WaitTimeoutError(AssertionError):
    """A polled condition did not hold in time (an AssertionError, so pytest shows it as a failure)."""


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float = 30.0,
    interval: float = 0.2,
    message: str | None = None,
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that value.

    Exceptions raised by the predicate count as "not yet" (a cluster is eventually consistent, and
    kubectl may fail while an object does not exist yet), but the last one is reported on timeout,
    together with the last value, so a timeout says what was seen rather than only that it failed.
    """
    what = message or getattr(predicate, "__name__", repr(predicate))
    deadline = time.monotonic() + timeout
    last_value: T | None = None
    last_error: BaseException | None = None
    attempts = 0
    while True:
        attempts += 1
        try:
            last_value = predicate()
        except Exception as exc:  # reported below on timeout
            last_error = exc
        else:
            if last_value:
                return last_value
        if time.monotonic() >= deadline:
            detail = f"last value: {last_value!r}"
            if last_error is not None:
                detail += f"; last error: {type(last_error).__name__}: {last_error}"
            raise WaitTimeoutError(
                f"timed out after {timeout:g}s ({attempts} polls) waiting for {what}; {detail}"
            )
        time.sleep(interval)


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., Any]:
    """The :func:`wait_for` helper, for tests that prefer a fixture to importing from conftest."""
    return wait_for


# --------------------------------------------------------------------------------------------- testbed


class CommandError(subprocess.CalledProcessError):
    """A failed kubectl/helm call whose message includes what the tool printed."""

    def __str__(self) -> str:
        cmd = " ".join(str(c) for c in self.cmd) if isinstance(self.cmd, list | tuple) else str(self.cmd)
        return f"`{cmd}` exited {self.returncode}\nstdout: {self.stdout}\nstderr: {self.stderr}"


@dataclasses.dataclass(frozen=True)
class Testbed:
    """A running test bed: where its kubeconfig and binaries are, and how to call kubectl/helm on it."""

    state_dir: Path
    kubeconfig: Path
    bin_dir: Path
    up_output: str

    @property
    def env(self) -> dict[str, str]:
        """Environment for anything run against the bed: KUBECONFIG, the bed's kubectl/helm first on PATH,
        and kubectl/helm caches inside the state dir (so down.sh leaves nothing in $HOME)."""
        env = dict(os.environ)
        env.update(
            KUBECONFIG=str(self.kubeconfig),
            PATH=f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}",
            KUBECACHEDIR=str(self.state_dir / "cache" / "kube"),
            HELM_CACHE_HOME=str(self.state_dir / "cache" / "helm"),
            HELM_CONFIG_HOME=str(self.state_dir / "config" / "helm"),
            HELM_DATA_HOME=str(self.state_dir / "data" / "helm"),
        )
        return env

    def _run(
        self, tool: str, args: Sequence[str], *, check: bool, input: str | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bin_dir / tool), *map(str, args)]
        proc = subprocess.run(
            cmd, input=input, capture_output=True, text=True, env=self.env, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise CommandError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    def kubectl(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the bed's kubectl (same version as the apiserver) with the admin kubeconfig."""
        return self._run("kubectl", args, check=check, input=input, timeout=timeout)

    def kubectl_json(self, *args: str, timeout: float = 60) -> Any:
        """``kubectl <args> -o json``, parsed."""
        return json.loads(self.kubectl(*args, "-o", "json", timeout=timeout).stdout)

    def apply(self, manifest: str, namespace: str | None = None) -> subprocess.CompletedProcess[str]:
        """``kubectl apply -f -`` of a YAML/JSON string."""
        ns = ["-n", namespace] if namespace else []
        return self.kubectl("apply", *ns, "-f", "-", input=manifest)

    def helm(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run the bed's helm (built from its Go module at the pinned version)."""
        return self._run("helm", args, check=check, input=input, timeout=timeout)

    def pid_of(self, component: str) -> int:
        """Pid of a control-plane component up.sh started (etcd, kube-apiserver, kube-controller-manager,
        kube-scheduler, kwok), checked to be alive."""
        pid = int((self.state_dir / "pids" / f"{component}.pid").read_text().strip())
        os.kill(pid, 0)  # raises if it is gone
        return pid

    def cmdline_of(self, component: str) -> list[str]:
        """The live command line of a component, read from /proc through its pid file."""
        raw = Path(f"/proc/{self.pid_of(component)}/cmdline").read_bytes()
        return [a.decode() for a in raw.split(b"\0") if a]

    def log_path(self, component: str) -> Path:
        return self.state_dir / "logs" / f"{component}.log"

    # Test modules reach helpers through fixtures, not `from conftest import ...`: pytest imports every
    # conftest.py under the module name "conftest", so such an import is ambiguous once there are two.
    wait_for = staticmethod(wait_for)
    cluster_dir = CLUSTER_DIR

    @staticmethod
    def own_image(image: str) -> str:
        """This checkout's own name of a bed image ("operator", "worker"): see :func:`own_image`."""
        return own_image(image)


@functools.cache
def own_image(image: str) -> str:
    """This checkout's own name of a test bed image, e.g. ``fastrollout/operator:dev-3b2d420a4d350be4``
    (``tests/cluster/images.sh ref``: built and imported if needed, ~1 s when it is).

    Pods must run that name, not ``fastrollout/operator:dev``: the shared name is whichever checkout
    imported last, and on a bed that several checkouts use (worktrees, a CI clone) another one's
    up.sh re-points it at its own code in the middle of this run.
    """
    proc = subprocess.run(
        [str(CLUSTER_DIR / "images.sh"), "ref", image],
        capture_output=True,
        text=True,
        timeout=UP_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    ref = proc.stdout.strip()
    if proc.returncode != 0 or not ref:
        pytest.fail(f"tests/cluster/images.sh ref {image} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return ref


def _bin_dir() -> Path:
    # versions.sh is the single source of the pinned versions and of the cache layout.
    out = subprocess.run(
        ["bash", "-c", f'. "{CLUSTER_DIR}/versions.sh" && printf %s "$BIN_DIR"'],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout)


@pytest.fixture(scope="session")
def testbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Testbed]:
    """Start the test bed (or reuse the running one) once per session."""
    log = tmp_path_factory.mktemp("testbed") / "up.log"
    started = time.monotonic()
    with log.open("w") as fh:
        proc = subprocess.run(
            [str(CLUSTER_DIR / "up.sh")],
            stdout=fh,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=UP_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    output = log.read_text()
    if proc.returncode != 0:
        pytest.fail(
            f"tests/cluster/up.sh failed ({proc.returncode}); output ({log}):\n{output[-6000:]}",
            pytrace=False,
        )
    match = re.search(r"^export KUBECONFIG=(\S+)$", output, re.MULTILINE)
    if not match:
        pytest.fail(f"up.sh printed no `export KUBECONFIG=` line:\n{output[-3000:]}", pytrace=False)
    kubeconfig = Path(match.group(1))
    bed = Testbed(state_dir=kubeconfig.parent, kubeconfig=kubeconfig, bin_dir=_bin_dir(), up_output=output)
    sys.stderr.write(f"\n[testbed] ready in {time.monotonic() - started:.1f}s: KUBECONFIG={kubeconfig}\n")
    yield bed
    if os.environ.get("FASTROLLOUT_TESTBED_TEARDOWN") == "1":
        subprocess.run([str(CLUSTER_DIR / "down.sh")], check=False, stdin=subprocess.DEVNULL)


def _namespace_name(nodeid: str) -> str:
    # Readable (the test's name) and unique (a random suffix): DNS-1123 label, at most 63 characters.
    base = re.sub(r"[^a-z0-9]+", "-", nodeid.rsplit("::", 1)[-1].lower()).strip("-")
    return f"t-{base[:48].rstrip('-')}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(testbed: Testbed, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test; deleted afterwards without waiting for its pods to drain."""
    name = _namespace_name(request.node.nodeid)
    testbed.kubectl("create", "namespace", name)
    testbed.kubectl("label", "namespace", name, "fastrollout.test/owner=pytest")
    # Pods are rejected until the ServiceAccount controller has created `default` in the namespace.
    wait_for(
        lambda: testbed.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
        timeout=30,
        message=f"ServiceAccount default in namespace {name}",
    )
    yield name
    if os.environ.get("FASTROLLOUT_KEEP_NAMESPACES") == "1":
        return
    # --wait=false: kwok keeps deleted pods Terminating for their grace period, as a kubelet would;
    # the next test has its own namespace, so nobody needs to wait for that.
    # The operator that would release a FastRollout's finalizer (held while a Service's selector is
    # pinned, cutover ServiceSelector) has stopped by now: drop it, or the namespace stays Terminating.
    held = testbed.kubectl(
        "get", "fastrollouts", "-n", name, "-o", "name", "--ignore-not-found", check=False
    ).stdout.split()
    for obj in held:
        testbed.kubectl(
            "patch", obj, "-n", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False
        )
    testbed.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


# --------------------------------------------------------------------------------------------- operator


class OperatorProcess:
    """The operator as a real OS process against the bed. Logs (stdout+stderr) go to ``log_path``."""

    def __init__(self, command: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.command = list(command)
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # lifecycle
    def start(self) -> OperatorProcess:
        if self.alive:
            raise RuntimeError(f"operator already running (pid {self.pid})")
        self.starts += 1
        with self.log_path.open("ab") as fh:
            fh.write(f"\n===== start #{self.starts}: {' '.join(self.command)}\n".encode())
            fh.flush()
            # Own session: ^C or signals aimed at pytest's group do not reach it, and kill() hits only it.
            self.proc = subprocess.Popen(
                self.command,
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=REPO,
                start_new_session=True,
            )
        return self

    def kill(self) -> int | None:
        """SIGKILL, like a node crash or OOM kill: no shutdown handlers run. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._note(f"SIGKILL pid {self.proc.pid}")
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=30)

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM (graceful shutdown), then SIGKILL after ``timeout`` seconds."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._note(f"SIGTERM pid {self.proc.pid}")
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._note(f"no exit {timeout:g}s after SIGTERM; SIGKILL")
                return self.kill()
        return self.proc.returncode

    def restart(self) -> OperatorProcess:
        """Start again with the same command and environment (stopping it first if it still runs)."""
        self.stop()
        return self.start()

    # state
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    # logs
    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wait_for_log(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """Wait until the log matches the regex ``pattern``; fails early if the process exited."""
        rx = re.compile(pattern)

        def seen() -> re.Match[str] | None:
            # Only what the process wrote: the fixture's own "===== start: <command>" lines would
            # otherwise match any pattern that also appears in the command line.
            output = "\n".join(ln for ln in self.log_text().splitlines() if not ln.startswith("===== "))
            found = rx.search(output)
            if not found and not self.alive:
                raise WaitTimeoutError(f"operator exited ({self.returncode}) before logging /{pattern}/")
            return found

        try:
            return wait_for(seen, timeout=timeout, message=f"operator log to match /{pattern}/")
        except WaitTimeoutError as exc:
            raise WaitTimeoutError(f"{exc}\n--- operator log tail ---\n{self.log_tail(40)}") from None

    def _note(self, text: str) -> None:
        with contextlib.suppress(OSError), self.log_path.open("a") as fh:
            fh.write(f"===== [pytest] {text}\n")


OPERATORS_KEY = pytest.StashKey[list[OperatorProcess]]()


@pytest.fixture
def operator_process(
    testbed: Testbed, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    """Factory: ``op = operator_process(*extra_args, env={...}, command=None)`` starts the operator.

    Default command: ``python -m fastrollout run --kubeconfig <bed kubeconfig> *extra_args`` with KUBECONFIG
    set too. ``command`` replaces the whole command line (for testing the fixture itself). Every process is
    stopped at teardown; if the test failed, the report shows each one's log tail (files stay in tmp_path).
    """
    started: list[OperatorProcess] = []
    request.node.stash[OPERATORS_KEY] = started

    def start(
        *extra_args: str, env: dict[str, str] | None = None, command: Sequence[str] | None = None
    ) -> OperatorProcess:
        full_env = testbed.env
        # Run the package from this checkout even when it is not pip-installed.
        full_env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO / "operator"), full_env.get("PYTHONPATH", "")) if p
        )
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env or {})
        cmd = (
            list(command)
            if command is not None
            else [
                sys.executable,
                "-m",
                "fastrollout",
                "run",
                "--kubeconfig",
                str(testbed.kubeconfig),
                *extra_args,
            ]
        )
        op = OperatorProcess(cmd, full_env, tmp_path / f"operator-{len(started)}.log")
        started.append(op)
        return op.start()

    yield start
    for op in started:
        op.stop(timeout=10)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        operators: list[OperatorProcess] = item.stash.get(OPERATORS_KEY, [])
        for i, op in enumerate(operators):
            state = "running" if op.alive else f"exited {op.returncode}"
            report.sections.append(
                (f"operator #{i} log tail ({state}; full log: {op.log_path})", op.log_tail(80) or "(empty)")
            )
    return report


# ------------------------------------------------------------------------------------ rollout fixtures
# Registered here once rather than imported by each test module. tests/integration is on sys.path for the
# test modules' `from rollout_helpers import ...` as well.
sys.path.insert(0, str(HERE))
from rollout_helpers import crd_fixture, fleet_fixture, rollout_operator_fixture  # noqa: E402

__all__ = ["crd_fixture", "fleet_fixture", "rollout_operator_fixture"]
