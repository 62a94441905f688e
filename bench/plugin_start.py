"""Start time of a kubectl plugin: import of the client + one GET of a namespaced custom resource list.

Each sample runs in a fresh interpreter (what a user pays per `kubectl fastrollout ...`), alternating the
two clients so both see the same machine load. Prints the median and min of each phase.

    KUBECONFIG=/tmp/fastrollout-testbed/kubeconfig python bench/plugin_start.py [--runs 15]
"""

import argparse
import json
import statistics
import subprocess
import sys
import time

PYKUBE = """
import time
t0 = time.perf_counter()
import pykube
t1 = time.perf_counter()
api = pykube.HTTPClient(pykube.KubeConfig.from_env())
r = api.get(version="fastrollout.io/v1alpha1", namespace="default", url="fastrollouts")
r.raise_for_status()
r.json()
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""

KUBERNETES = """
import time
t0 = time.perf_counter()
from kubernetes import client, config
t1 = time.perf_counter()
config.load_kube_config()
api = client.CustomObjectsApi()
api.list_namespaced_custom_object("fastrollout.io", "v1alpha1", "default", "fastrollouts")
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""

CLIENTS = {"pykube-ng": PYKUBE, "kubernetes": KUBERNETES}


def sample(code: str) -> tuple[float, float, float]:
    """(import s, first request s, whole process wall s) of one fresh interpreter."""
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - start
    imported, request = (float(x) for x in out.split())
    return imported, request, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    args = parser.parse_args()
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in CLIENTS}
    for code in CLIENTS.values():  # warm the page cache once, not counted
        sample(code)
    for _ in range(args.runs):
        for name, code in CLIENTS.items():
            samples[name].append(sample(code))
    result = {
        name: {
            phase: {
                "median_ms": round(statistics.median(s[i] for s in rows) * 1000, 1),
                "min_ms": round(min(s[i] for s in rows) * 1000, 1),
            }
            for i, phase in enumerate(("import", "first_request", "process"))
        }
        for name, rows in samples.items()
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.runs} fresh interpreters per client, Python {sys.version.split()[0]}")
    print(f"{'client':<12} {'import':>16} {'first request':>16} {'whole process':>16}   (median / min, ms)")
    for name, phases in result.items():
        cells = [f"{p['median_ms']:>7.1f} /{p['min_ms']:>7.1f}" for p in phases.values()]
        print(f"{name:<12} {cells[0]:>16} {cells[1]:>16} {cells[2]:>16}")


if __name__ == "__main__":
    main()
