"""The worker contract, proven on real processes: one request at a time, drain on SIGTERM, metrics.

Each test runs twice: against the reference worker (``python -m fastrollout.worker``) and against the
Node.js example (``examples/node-worker``), which must keep the same contract. Workers listen on
loopback with ephemeral ports (read back from their ``worker listening`` log line); tests wait on
observable conditions (metrics, probe answers, exit), never on a fixed sleep.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "operator"
COMMANDS = {
    "python": [sys.executable, "-m", "fastrollout.worker"],
    "node": ["node", str(ROOT / "examples" / "node-worker" / "server.js")],
}
LISTENING = re.compile(r"worker listening port=(\d+) metrics_port=(\d+)")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
EXIT_DEADLINE = 124
IN_FLIGHT = ("fastrollout_worker_requests_in_flight", ())

Labels = tuple[tuple[str, str], ...]
Metrics = dict[tuple[str, Labels], float]


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a real condition until it holds; fail with ``what`` after ``timeout`` seconds."""
    until = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > until:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def parse_metrics(text: str) -> Metrics:
    """A small parser of the Prometheus text format; fails on any line it does not understand."""
    typed = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    samples: Metrics = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"unparseable metrics line: {line!r}"
        name, raw_labels, value = match.groups()
        assert name in typed, f"{name} has no # TYPE line"
        labels = tuple(
            (key, re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], val))
            for key, val in LABEL.findall(raw_labels or "")
        )
        samples[name, labels] = float(value)
    return samples


class Worker:
    """One reference worker process and its log."""

    def __init__(self, command: list[str], **env: str) -> None:
        self.log: list[str] = []
        self._listening = threading.Event()
        self.port = self.metrics_port = 0
        full_env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p),
            "HOST": "127.0.0.1",
            "PORT": "0",
            "METRICS_PORT": "0",
            "WORKER_VERSION": "v-test",
            "POD_NAME": "pod-a",
            **env,
        }
        self.proc = subprocess.Popen(
            command,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)
            if match := LISTENING.search(line):
                self.port, self.metrics_port = int(match[1]), int(match[2])
                self._listening.set()

    def wait_listening(self) -> Worker:
        if not self._listening.wait(10):
            pytest.fail(f"worker did not start: {''.join(self.log)}")
        return self

    def probe(self, path: str) -> int:
        return get(self.metrics_port, path, timeout=1.0)[0]

    def metrics(self) -> Metrics:
        status, body = get(self.metrics_port, "/metrics", timeout=1.0)
        assert status == 200
        return parse_metrics(body.decode())

    def in_flight(self) -> float:
        return self.metrics()[IN_FLIGHT]

    def wait_exit(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"worker still running after {timeout}s: {''.join(self.log)}")
        self._reader.join(5)  # the whole log is in self.log once the pipe hits EOF
        return code


NODE_MISSING = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


@pytest.fixture(params=["python", pytest.param("node", marks=NODE_MISSING)])
def spawn(request: pytest.FixtureRequest) -> Iterator[Callable[..., Worker]]:
    """Start workers of one implementation; kill (by PID) any still running when the test ends."""
    started: list[Worker] = []

    def start(**env: str) -> Worker:
        worker = Worker(COMMANDS[request.param], **env)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(5)


class Call(threading.Thread):
    """A GET on a thread, keeping its answer or error."""

    def __init__(self, port: int, path: str) -> None:
        super().__init__(daemon=True)
        self.port, self.path = port, path
        self.status = 0
        self.body: dict[str, Any] = {}
        self.error: Exception | None = None
        self.start()

    def run(self) -> None:
        try:
            self.status, raw = get(self.port, self.path)
            self.body = json.loads(raw)
        except Exception as exc:
            self.error = exc


def send(port: int, path: str) -> http.client.HTTPConnection:
    """Connect and send a request now; read the answer later with ``getresponse()``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    return conn


def test_answers_with_version_and_pod(spawn: Callable[..., Worker]) -> None:
    worker = spawn(WORKER_VERSION="2026.11.27-1", POD_NAME="bank-workers-7c9d5-abcde").wait_listening()
    status, body = get(worker.port, "/")
    assert status == 200
    assert json.loads(body)["version"] == "2026.11.27-1"
    assert json.loads(body)["pod"] == "bank-workers-7c9d5-abcde"


def test_serves_one_request_at_a_time_and_queues_the_next(spawn: Callable[..., Worker]) -> None:
    worker = spawn().wait_listening()
    first = Call(worker.port, "/?sleep=1")
    wait_for(lambda: worker.in_flight() == 1, 5, "the first request to be in flight")
    assert worker.probe("/readyz") == 200, "probes must answer while a request is in flight"
    second = send(worker.port, "/?sleep=0")
    assert first.is_alive(), "the second request must be sent while the first is in flight"
    response = second.getresponse()
    first.join(10)
    assert (first.status, first.error, response.status) == (200, None, 200)
    assert json.loads(response.read())["started"] >= first.body["finished"]


def test_sigterm_finishes_in_flight_and_queued_requests_then_exits_0(spawn: Callable[..., Worker]) -> None:
    worker = spawn().wait_listening()
    slow = Call(worker.port, "/?sleep=2")
    wait_for(lambda: worker.in_flight() == 1, 5, "the slow request to be in flight")
    queued = send(worker.port, "/?sleep=0")  # accepted by the kernel, waiting in the backlog
    worker.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: worker.probe("/readyz") == 503, 1, "readiness to fail right after SIGTERM")
    assert slow.is_alive(), "readiness must fail while the request is still in flight"
    assert worker.probe("/livez") == 200, "liveness must hold while draining"
    assert worker.metrics()["fastrollout_worker_draining", ()] == 1
    assert queued.getresponse().status == 200
    slow.join(10)
    assert (slow.status, slow.error, slow.body["sleep"]) == (200, None, 2)
    assert worker.wait_exit(5) == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", worker.port), timeout=1).close()


def test_sigterm_answers_every_connection_already_queued(spawn: Callable[..., Worker]) -> None:
    worker = spawn().wait_listening()
    queued = [send(worker.port, "/?sleep=0.005") for _ in range(100)]  # all connected before SIGTERM
    worker.proc.send_signal(signal.SIGTERM)
    statuses = []
    for conn in queued:
        try:
            statuses.append(conn.getresponse().status)
        except (ConnectionError, http.client.HTTPException) as exc:
            statuses.append(repr(exc))
    assert statuses == [200] * len(queued)
    assert worker.wait_exit(5) == 0


def test_drain_delay_keeps_accepting_before_stopping(spawn: Callable[..., Worker]) -> None:
    worker = spawn(WORKER_DRAIN_DELAY_SECONDS="1").wait_listening()
    signalled = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: worker.probe("/readyz") == 503, 1, "readiness to fail right after SIGTERM")
    assert get(worker.port, "/")[0] == 200, "requests still in transit during the delay are served"
    assert worker.wait_exit(5) == 0
    assert time.monotonic() - signalled >= 1


def sigterm_with_a_stuck_request_exits_at_the_deadline(worker: Worker) -> Call:
    """SIGTERM while a 30 s request is in flight: the worker exits 124 within 3 s (a 0.5 s deadline).
    Returns the stuck call, joined."""
    stuck = Call(worker.port, "/?sleep=30")
    wait_for(lambda: worker.in_flight() == 1, 5, "the request to be in flight")
    signalled = time.monotonic()
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.wait_exit(5) == EXIT_DEADLINE
    assert time.monotonic() - signalled < 3
    stuck.join(5)
    return stuck


def test_hard_deadline_exits_nonzero(spawn: Callable[..., Worker]) -> None:
    worker = spawn(WORKER_DRAIN_DEADLINE_SECONDS="0.5").wait_listening()
    stuck = sigterm_with_a_stuck_request_exits_at_the_deadline(worker)
    assert stuck.error is not None, "the unfinished request is cut off, not answered"


def test_metrics_parse_and_count_requests(spawn: Callable[..., Worker]) -> None:
    version, pod = 'v"1\\x', "pod\nb"  # label values that need escaping
    worker = spawn(WORKER_VERSION=version, POD_NAME=pod).wait_listening()
    assert [get(worker.port, p)[0] for p in ("/", "/", "/nope", "/?sleep=x")] == [200, 200, 404, 400]
    metrics = worker.metrics()
    total = "fastrollout_worker_requests_total"
    assert metrics[total, (("code", "200"),)] == 2
    assert metrics[total, (("code", "404"),)] == 1
    assert metrics[total, (("code", "400"),)] == 1
    assert metrics["fastrollout_worker_version_info", (("version", version), ("pod", pod))] == 1
    assert metrics[IN_FLIGHT] == 0
    assert metrics["fastrollout_worker_draining", ()] == 0
    assert metrics["fastrollout_worker_ready", ()] == 1


def test_crash_on_start_exits_1(spawn: Callable[..., Worker]) -> None:
    worker = spawn(WORKER_CRASH_ON_START="1")
    assert worker.wait_exit(10) == 1
    assert not any(LISTENING.search(line) for line in worker.log)
    assert any("WORKER_CRASH_ON_START" in line for line in worker.log)


class Trickle(threading.Thread):
    """Sends ``data`` one byte every ``every`` seconds; notes when the worker answers or closes."""

    def __init__(self, port: int, data: bytes, every: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.data, self.every = data, every
        self.started = time.monotonic()
        self.cut_after: float | None = None
        self.answer = b""
        self.start()

    def run(self) -> None:
        self.sock.setblocking(False)
        try:
            for i in range(len(self.data)):
                try:
                    if chunk := self.sock.recv(4096):
                        self.answer += chunk
                    break  # an answer, or the worker closed
                except BlockingIOError:
                    pass
                self.sock.send(self.data[i : i + 1])
                time.sleep(self.every)
        except OSError:
            pass
        finally:
            self.cut_after = time.monotonic() - self.started
            self.sock.close()


SLOW = {
    "headers": b"GET / HTTP/1.1\r\nHost: w\r\nX-Slow: " + b"a" * 1000,
    "body": b"POST / HTTP/1.1\r\nHost: w\r\nContent-Length: 1000\r\n\r\n" + b"a" * 1000,
}


@pytest.mark.parametrize("phase", SLOW)
def test_trickling_client_is_cut_off_and_frees_the_slot(spawn: Callable[..., Worker], phase: str) -> None:
    """One byte per 100 ms never trips a per-read timeout; the whole-request deadlines cut it anyway."""
    worker = spawn(WORKER_HEADER_TIMEOUT_SECONDS="1", WORKER_BODY_TIMEOUT_SECONDS="1").wait_listening()
    slow = Trickle(worker.port, SLOW[phase])
    wait_for(
        lambda: worker.in_flight() == 1 or "node" in worker.proc.args[0], 5, "the slow client to be served"
    )
    asked = time.monotonic()
    status, _ = get(worker.port, "/")
    waited = time.monotonic() - asked
    slow.join(10)
    bound = 1.0 if phase == "headers" else 2.0  # header deadline, or header + body deadlines
    assert status == 200
    assert waited < bound + 1.0, f"a request behind the slow client waited {waited:.1f}s"
    assert slow.cut_after is not None
    assert slow.cut_after < bound + 1.5, f"the slow client was cut after {slow.cut_after:.1f}s"
    assert slow.answer == b"" or slow.answer.startswith(b"HTTP/1.1 408 "), slow.answer[:60]
    assert worker.proc.poll() is None


def test_sigterm_with_a_slow_client_still_finishes_in_flight_and_exits_0(
    spawn: Callable[..., Worker],
) -> None:
    worker = spawn(WORKER_HEADER_TIMEOUT_SECONDS="1").wait_listening()
    busy = Call(worker.port, "/?sleep=1")
    wait_for(lambda: worker.in_flight() == 1, 5, "the request to be in flight")
    slow = Trickle(worker.port, SLOW["headers"])  # queued (Python) or being read (Node)
    worker.proc.send_signal(signal.SIGTERM)
    busy.join(10)
    assert (busy.status, busy.error) == (200, None)
    assert worker.wait_exit(5) == 0
    slow.join(5)
    assert slow.cut_after is not None


def test_fastrollout_drain_seconds_sets_the_deadline_and_worker_variable_wins(
    spawn: Callable[..., Worker],
) -> None:
    worker = spawn(FASTROLLOUT_DRAIN_SECONDS="0.5").wait_listening()
    sigterm_with_a_stuck_request_exits_at_the_deadline(worker)
    explicit = spawn(FASTROLLOUT_DRAIN_SECONDS="0.5", WORKER_DRAIN_DEADLINE_SECONDS="30").wait_listening()
    slow = Call(explicit.port, "/?sleep=1.5")
    wait_for(lambda: explicit.in_flight() == 1, 5, "the request to be in flight")
    explicit.proc.send_signal(signal.SIGTERM)
    slow.join(10)
    assert (slow.status, slow.error) == (200, None), (
        "WORKER_DRAIN_DEADLINE_SECONDS wins over the injected value"
    )
    assert explicit.wait_exit(5) == 0


def test_help_prints_usage_and_exits_0(spawn: Callable[..., Worker], request: pytest.FixtureRequest) -> None:
    command = COMMANDS[request.node.callspec.params["spawn"]]
    done = subprocess.run([*command, "--help"], capture_output=True, text=True, timeout=10, check=False)
    assert done.returncode == 0
    assert "usage" in done.stdout.lower()


def test_accept_errors_back_off_and_serving_goes_on() -> None:
    """EMFILE: with 40 descriptors, lingering answered connections use them up; accept must wait, not die."""
    limited = (
        "import resource, runpy; resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40)); "
        "runpy.run_module('fastrollout.worker', run_name='__main__', alter_sys=True)"
    )
    worker = Worker([sys.executable, "-c", limited]).wait_listening()
    try:
        clients = [send(worker.port, "/") for _ in range(60)]  # none closes until all are answered
        wait_for(lambda: any("accept failed" in line for line in worker.log), 5, "accept to fail with EMFILE")
        responses = [conn.getresponse() for conn in clients]  # kept, so their sockets stay open
        assert [response.status for response in responses] == [200] * 60
        assert worker.proc.poll() is None
        for conn in clients:
            conn.close()
        assert get(worker.port, "/")[0] == 200
    finally:
        worker.proc.kill()
        worker.proc.wait(5)


def test_admin_connections_are_bounded_and_idle_ones_cut(spawn: Callable[..., Worker]) -> None:
    """40 idle admin connections: at most 32 threads serve them, each is cut after 2 s, then probes pass."""
    worker = spawn().wait_listening()
    idle = [socket.create_connection(("127.0.0.1", worker.metrics_port)) for _ in range(40)]
    try:
        asked = time.monotonic()
        if "node" not in worker.proc.args[0]:
            wait_for(lambda: worker_threads(worker) >= 32, 5, "the admin port to take 32 idle connections")
            time.sleep(0.2)
            assert worker_threads(worker) <= 40, "no thread per connection beyond the bound"
        assert get(worker.metrics_port, "/readyz", timeout=10)[0] == 200
        assert time.monotonic() - asked < 4, "a probe waits at most for one round of 2 s header deadlines"
    finally:
        for sock in idle:
            sock.close()


def worker_threads(worker: Worker) -> int:
    status = Path(f"/proc/{worker.proc.pid}/status").read_text()
    return int(re.search(r"Threads:\s+(\d+)", status)[1])
