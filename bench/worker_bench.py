"""The worker library's own cost: requests/s and latency of an empty handler on loopback.

    python bench/worker_bench.py                      # hardened worker, the worker before issue 9, Node
    python bench/worker_bench.py --seconds 5 --rounds 5 --clients 4

Three workers, each started fresh per round and measured in turn (rounds interleave, so drift in
the machine's load hits all three alike):

* ``hardened``: ``fastrollout.worker`` from this tree, serving ``Response(200, {}, b"")``;
* ``before``: the same handler on ``fastrollout.worker`` as of ``--before`` (default: the last commit
  before the strict reader and deadlines), exported with ``git archive`` into a temporary directory;
* ``node``: ``examples/node-worker/server.js`` answering ``GET /`` (its handler is a tiny JSON body).

Load: ``--clients`` processes, each opening one connection per request (workers close after every
response, as the contract says), sending ``GET / HTTP/1.1`` and reading to EOF. A worker serves one
request at a time, so requests/s is its serial throughput; latency is connect to EOF, as a client
sees it, so it includes the wait behind the other clients' requests (p50 ~ clients / throughput).
Results print as a table and go to ``bench/results/worker_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "abffb0907163d47232538df1ec80a104bc583ce0"
LISTENING = re.compile(r"worker listening port=(\d+)")
EMPTY = (
    "import logging; logging.basicConfig(level=logging.INFO); "
    "from fastrollout.worker import Response, serve; "
    "serve(lambda request: Response(200, {}, b''), version='bench', port=0, metrics_port=0, host='127.0.0.1')"
)
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def export_before(rev: str, into: Path) -> Path:
    """``operator/`` of ``rev``, unpacked under ``into``; returns the source root to put on PYTHONPATH."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "operator/fastrollout"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "operator"


def start(command: list[str], pythonpath: Path | None) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": "0", "METRICS_PORT": "0", "WORKER_VERSION": "bench"}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if match := LISTENING.search(line):
            return proc, int(match[1])
    raise RuntimeError(f"worker {command} did not start")


def client(port: int, until: float, out: multiprocessing.Queue[list[float]]) -> None:
    """One load process: sequential requests until ``until``; puts its latencies (seconds)."""
    latencies: list[float] = []
    while (started := time.perf_counter()) < until:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(REQUEST)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        if not answer.startswith(b"HTTP/1.1 200 "):
            raise RuntimeError(f"unexpected answer {answer[:60]!r}")
        latencies.append(time.perf_counter() - started)
    out.put(latencies)


def measure(port: int, clients: int, seconds: float) -> dict[str, float]:
    warmup = time.perf_counter() + 0.5
    queue: multiprocessing.Queue[list[float]] = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=client, args=(port, warmup, queue)) for _ in range(clients)]
    for proc in procs:
        proc.start()
    for _ in procs:
        queue.get()
    for proc in procs:
        proc.join()
    until = time.perf_counter() + seconds
    procs = [multiprocessing.Process(target=client, args=(port, until, queue)) for _ in range(clients)]
    for proc in procs:
        proc.start()
    latencies = sorted(latency for _ in procs for latency in queue.get())
    for proc in procs:
        proc.join()
    return {
        "requests_per_second": len(latencies) / seconds,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "requests": len(latencies),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measured time per worker and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median round is reported")
    parser.add_argument("--clients", type=int, default=4, help="concurrent load processes")
    parser.add_argument("--before", default=BEFORE, help="git revision of the worker to compare with")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "worker_bench.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="worker-bench-") as tmp:
        workers = {
            "hardened": ([sys.executable, "-c", EMPTY], ROOT / "operator"),
            "before": ([sys.executable, "-c", EMPTY], export_before(args.before, Path(tmp))),
            "node": (["node", str(ROOT / "examples" / "node-worker" / "server.js")], None),
        }
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in workers}
        for number in range(args.rounds):
            for name, (command, pythonpath) in workers.items():
                proc, port = start(command, pythonpath)
                try:
                    rounds[name].append(measure(port, args.clients, args.seconds))
                finally:
                    proc.terminate()
                    proc.wait(10)
                print(
                    f"round {number + 1} {name:9s} {rounds[name][-1]['requests_per_second']:8.0f} req/s",
                    flush=True,
                )
    report = {name: median_round(results) for name, results in rounds.items()}
    report["hardened"]["vs_before"] = (
        report["hardened"]["requests_per_second"] / report["before"]["requests_per_second"]
    )
    print(f"\n{'worker':9s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s}")
    for name, result in report.items():
        print(
            f"{name:9s} {result['requests_per_second']:8.0f} {result['p50_ms']:8.2f} {result['p99_ms']:8.2f}"
        )
    print(f"hardened / before throughput: {report['hardened']['vs_before']:.3f}")
    meta = {
        "clients": args.clients,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "before": args.before,
        "python": platform.python_version(),
        "node": subprocess.run(
            ["node", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip(),
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": report, "rounds": rounds}, indent=2) + "\n")
    return 0


def median_round(results: list[dict[str, float]]) -> dict[str, float]:
    """The round with the median throughput (its latencies belong to the same run)."""
    middle = statistics.median_low(result["requests_per_second"] for result in results)
    return dict(next(result for result in results if result["requests_per_second"] == middle))


if __name__ == "__main__":
    sys.exit(main())
