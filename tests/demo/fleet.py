"""The demo's helper (standard library only; talks to the cluster through kubectl on PATH).

python3 tests/demo/fleet.py render FILE [--drain-seconds N] [--start-delay A] [--start-delay-max B]
    examples/*.yaml as JSON for `kubectl apply -f -`, adapted to the test bed's kwok nodes: the
    FastRollout's pods get nodeSelector type=kwok and the kwok stage annotations (start delay,
    drain time). The files under examples/ are not changed.
python3 tests/demo/fleet.py wait NAMESPACE NAME VERSION [--timeout S]
    Waits until the FastRollout is Complete at VERSION and no old pod drains, printing a line a second.
python3 tests/demo/fleet.py watch NAMESPACE NAME VERSION [--timeout S]
    The rollout to VERSION, just started: a line a second (phase, updated, ready, old-serving,
    draining) until Drained, then the timings, from the status timestamps and from this clock.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime
from typing import Any


def kubectl_json(*args: str) -> Any:
    out = subprocess.run(["kubectl", *args, "-o", "json"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return json.loads(out.stdout)


def render(args: argparse.Namespace) -> int:
    proc = subprocess.run(
        ["kubectl", "create", "--dry-run=client", "-o", "json", "-f", args.file],
        capture_output=True,
        text=True,
        check=True,
    )
    # One JSON object per document, concatenated (or a List).
    items: list[dict[str, Any]] = []
    decoder, text, pos = json.JSONDecoder(), proc.stdout, 0
    while pos < len(text.rstrip()):
        doc, end = decoder.raw_decode(text, pos)
        items.extend(doc["items"] if doc.get("kind") == "List" else [doc])
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    for item in items:
        if item.get("kind") != "FastRollout":
            continue
        template = item["spec"]["template"]
        template.setdefault("spec", {})["nodeSelector"] = {"type": "kwok"}
        annotations = template.setdefault("metadata", {}).setdefault("annotations", {})
        annotations["fastrollout.test/drain-seconds"] = str(args.drain_seconds)
        annotations["fastrollout.test/start-delay"] = args.start_delay
        if args.start_delay_max:
            annotations["fastrollout.test/start-delay-max"] = args.start_delay_max
    json.dump({"apiVersion": "v1", "kind": "List", "items": items}, sys.stdout)
    return 0


def ts(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def condition(status: dict[str, Any], ctype: str) -> bool:
    return any(c["type"] == ctype and c["status"] == "True" for c in status.get("conditions") or [])


def target_entry(status: dict[str, Any]) -> dict[str, Any]:
    return next((v for v in status.get("versions") or [] if v.get("version") == status.get("version")), {})


def line(elapsed: float, spec_replicas: int, status: dict[str, Any]) -> str:
    new = target_entry(status)
    return (
        f"  {elapsed:6.1f}s  {status.get('phase', '-'):<11} version {status.get('version', '-'):<13} "
        f"updated {status.get('updatedReplicas', 0):>4}/{spec_replicas:<4} "
        f"new-ready {new.get('readyReplicas', 0):>4}  ready {status.get('readyReplicas', 0):>4}  "
        f"old-serving {status.get('oldServingReplicas', 0):>4}  draining {status.get('drainingReplicas', 0):>4}"
    )


def read(namespace: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    fr = kubectl_json("get", "fastrollout", name, "-n", namespace)
    return fr, fr.get("status") or {}


def settled(fr: dict[str, Any], status: dict[str, Any], version: str) -> bool:
    return (
        status.get("version") == version
        and status.get("observedGeneration") == fr["metadata"]["generation"]
        and status.get("phase") == "Complete"
        and condition(status, "Drained")
        and status.get("drainingReplicas") == 0
    )


def wait(args: argparse.Namespace) -> int:
    start = time.monotonic()
    last = ""
    while True:
        fr, status = read(args.namespace, args.name)
        if settled(fr, status, args.version):
            print(line(time.monotonic() - start, fr["spec"]["replicas"], status), flush=True)
            return 0
        text = line(time.monotonic() - start, fr["spec"]["replicas"], status)
        if text[10:] != last[10:]:
            print(text, flush=True)
        last = text
        if status.get("phase") in ("Failed", "RolledBack") and status.get("version") == args.version:
            print(f"  rollout {status['phase']}: {status.get('message')}", file=sys.stderr)
            return 1
        if time.monotonic() - start > args.timeout:
            print(f"  timed out after {args.timeout:g}s", file=sys.stderr)
            return 1
        time.sleep(1)


def watch(args: argparse.Namespace) -> int:
    start = time.monotonic()
    seen: dict[str, float] = {}
    fr, status = read(args.namespace, args.name)
    replicas = int(fr["spec"]["replicas"])
    from_version = status.get("stableVersion") or "-"
    next_tick = start
    while True:
        now = time.monotonic()
        fr, status = read(args.namespace, args.name)
        mine = (
            status.get("version") == args.version
            and status.get("observedGeneration") == fr["metadata"]["generation"]
        )
        if mine:
            new = target_entry(status)
            if new.get("readyReplicas", 0) >= replicas:
                seen.setdefault("new pods ready", now - start)
            if condition(status, "TrafficStopped") and status.get("oldServingReplicas") == 0:
                seen.setdefault("traffic stopped", now - start)
            if status.get("phase") == "Complete":
                seen.setdefault("Complete", now - start)
            if condition(status, "Drained") and status.get("drainingReplicas") == 0:
                seen.setdefault("drained", now - start)
        print(line(now - start, replicas, status), flush=True)
        if mine and "drained" in seen and "Complete" in seen:
            break
        if mine and status.get("phase") in ("Failed", "RolledBack"):
            print(f"  rollout {status['phase']}: {status.get('message')}", file=sys.stderr)
            return 1
        if now - start > args.timeout:
            print(f"  timed out after {args.timeout:g}s", file=sys.stderr)
            return 1
        next_tick += 1.0
        time.sleep(max(0.0, next_tick - time.monotonic()))

    # The pods' own Ready times: when the last new pod turned Ready (API server clock).
    pods = kubectl_json(
        "get", "pods", "-n", args.namespace, "-l", f"fastrollout.io/revision={status['revision']}"
    )
    ready_times = [
        ts(c["lastTransitionTime"])
        for p in pods["items"]
        for c in p.get("status", {}).get("conditions") or []
        if c["type"] == "Ready" and c["status"] == "True"
    ]
    started = ts(status.get("rolloutStartedAt"))
    stopped = ts(status.get("trafficStoppedAt"))
    drained = ts(status.get("drainedAt"))

    def rel(t: datetime | None) -> str:
        return f"{(t - started).total_seconds():5.0f} s" if t and started else "    -"

    last_ready = max((t for t in ready_times if t), default=None)
    print()
    print(f"Rollout of {replicas} pods, version {from_version} -> {args.version}")
    print(
        f"  from the FastRollout's status (API server clock, 1 s resolution; rolloutStartedAt {started:%H:%M:%S}):"
    )
    print(f"    new pods ready     {rel(last_ready)}   (last new pod's Ready condition)")
    print(f"    traffic stopped    {rel(stopped)}   (trafficStoppedAt: no old pod receives new traffic)")
    print(f"    drained            {rel(drained)}   (drainedAt: the last old pod is gone)")
    print("  seen by this script (its own clock, from `kubectl apply` of the new version):")
    for what, note in (
        ("new pods ready", f"all {replicas} new pods Ready"),
        ("traffic stopped", "status TrafficStopped, old-serving 0"),
        ("Complete", "phase Complete: the next rollout may start"),
        ("drained", "status Drained, draining 0"),
    ):
        value = f"{seen[what]:5.1f} s" if what in seen else "    -"
        print(f"    {what:<18} {value}   ({note})")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render")
    r.add_argument("file")
    r.add_argument("--drain-seconds", type=int, default=15)
    r.add_argument("--start-delay", default="2")
    r.add_argument("--start-delay-max", default="")
    r.set_defaults(func=render)
    for command, func in (("wait", wait), ("watch", watch)):
        w = sub.add_parser(command)
        w.add_argument("namespace")
        w.add_argument("name")
        w.add_argument("version")
        w.add_argument("--timeout", type=float, default=600)
        w.set_defaults(func=func)
    args = parser.parse_args()
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
