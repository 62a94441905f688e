"""`kubectl fastrollout` entry point: each command, wired from the pure parts and `kube.py`."""

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from fastrollout.plugin import milestone, render, undo
from fastrollout.plugin.args import EXIT_ERROR, EXIT_REACHED, EXIT_TIMEOUT, parse
from fastrollout.plugin.kube import Kube, KubeError, connect
from fastrollout.plugin.names import ANNOTATION_RESTARTED_AT

RELIST_PAUSE_SECONDS = 1.0
EXIT_INTERRUPTED = 130


class Progress:
    """A live line on a terminal (rewritten in place); elsewhere one plain line per change."""

    def __init__(self, out: TextIO) -> None:
        self.out, self.live, self.last = out, out.isatty(), ""

    def show(self, line: str) -> None:
        if line == self.last:
            return
        self.last = line
        if self.live:
            self.out.write(f"\r\033[K{line}")
        else:
            self.out.write(f"{line}\n")
        self.out.flush()

    def done(self, line: str) -> None:
        self.show(line)
        if self.live:
            self.out.write("\n")
            self.out.flush()


def status(
    kube: Kube, args: argparse.Namespace, out: TextIO, clock: Callable[[], float] = time.monotonic
) -> int:
    """Block until the milestone, a failure, or the timeout; the exit code says which (args.EXIT_*)."""
    deadline = clock() + args.timeout if args.timeout > 0 else None
    progress = Progress(out)
    while True:
        obj = kube.get(args.name)
        verdict = milestone.judge(obj, args.until)
        progress.show(verdict.line)
        if verdict.exit_code is not None:
            progress.done(verdict.line)
            return verdict.exit_code
        for changed in kube.watch(args.name, obj["metadata"]["resourceVersion"], _left(deadline, clock)):
            verdict = milestone.judge(changed, args.until)
            if verdict.exit_code is not None:
                progress.done(verdict.line)
                return verdict.exit_code
            progress.show(verdict.line)
            if _left(deadline, clock) <= 0:
                break
        if _left(deadline, clock) <= 0:
            progress.done(f"{progress.last}: timed out after {args.timeout:g}s")
            return EXIT_TIMEOUT
        time.sleep(RELIST_PAUSE_SECONDS)  # the watch ended (server timeout, 410 Gone): list again


def _left(deadline: float | None, clock: Callable[[], float]) -> float:
    return 3600.0 if deadline is None else deadline - clock()


def get(kube: Kube, args: argparse.Namespace, out: TextIO) -> int:
    obj = kube.get(args.name)
    out.write(render.versions_table(obj) + "\n")
    out.flush()
    while args.watch:
        for changed in kube.watch(args.name, obj["metadata"]["resourceVersion"], 3600):
            out.write("\n" + render.versions_table(changed) + "\n")
            out.flush()
        obj = kube.get(args.name)
    return EXIT_REACHED


def set_paused(paused: bool) -> Callable[[Kube, argparse.Namespace, TextIO], int]:
    def run(kube: Kube, args: argparse.Namespace, out: TextIO) -> int:
        kube.patch(args.name, {"spec": {"paused": paused}})
        out.write(f"fastrollout.fastrollout.io/{args.name} {'paused' if paused else 'resumed'}\n")
        return EXIT_REACHED

    return run


def restart(kube: Kube, args: argparse.Namespace, out: TextIO) -> int:
    """A new revision of the same template, as kubectl rollout restart does for a Deployment."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"spec": {"template": {"metadata": {"annotations": {ANNOTATION_RESTARTED_AT: now}}}}}
    kube.patch(args.name, body)
    out.write(f"fastrollout.fastrollout.io/{args.name} restarted\n")
    return EXIT_REACHED


def history(kube: Kube, args: argparse.Namespace, out: TextIO) -> int:
    obj = kube.get(args.name)
    kept = undo.kept_from(kube.replica_sets(args.name), obj["metadata"]["uid"])
    status = obj.get("status") or {}
    out.write(render.history_table(kept, status.get("revision"), status.get("stableRevision")) + "\n")
    return EXIT_REACHED


def rollback(kube: Kube, args: argparse.Namespace, out: TextIO) -> int:
    """undo: put the chosen kept revision's template back (a PUT guarded by resourceVersion)."""
    obj = kube.get(args.name)
    kept = undo.kept_from(kube.replica_sets(args.name), obj["metadata"]["uid"])
    current = (obj.get("status") or {}).get("revision")
    chosen = undo.choose(kept, current, args.to_version)
    if chosen.revision == current:
        out.write(f"fastrollout.fastrollout.io/{args.name} already at version {chosen.version}\n")
        return EXIT_REACHED
    obj["spec"] = undo.restored_spec(obj["spec"], chosen)
    _check_revision(obj["spec"], chosen)
    kube.replace(obj)
    out.write(f"fastrollout.fastrollout.io/{args.name} rolled back to version {chosen.version}\n")
    return EXIT_REACHED


def _check_revision(spec: dict[str, Any], chosen: undo.Kept) -> None:
    """The restored spec must hash to the kept revision, or the operator would start a new one."""
    from fastrollout.api import FastRolloutSpec  # pydantic: paid only by undo  # noqa: PLC0415
    from fastrollout.plan.revision import revision_of  # noqa: PLC0415

    revision = revision_of(FastRolloutSpec.model_validate(spec))
    if revision != chosen.revision:
        raise undo.UndoError(f"restored spec hashes to {revision}, not {chosen.revision}: nothing changed")


COMMANDS: dict[str, Callable[[Kube, argparse.Namespace, TextIO], int]] = {
    "status": status,
    "get": get,
    "pause": set_paused(True),
    "resume": set_paused(False),
    "restart": restart,
    "history": history,
    "undo": rollback,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    try:
        kube = connect(args.kubeconfig, args.context, args.namespace)
        return COMMANDS[args.command](kube, args, sys.stdout)
    except (KubeError, undo.UndoError) as error:
        sys.stderr.write(f"error: {error}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:  # Ctrl-C, e.g. ending `get -w`: the shell's convention for SIGINT
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
