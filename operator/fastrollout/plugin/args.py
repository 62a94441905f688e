"""Command-line arguments of `kubectl fastrollout`. Pure: no API access."""

import argparse
import re
from collections.abc import Sequence
from typing import NoReturn

EXIT_REACHED, EXIT_FAILED, EXIT_TIMEOUT, EXIT_ERROR = 0, 1, 2, 3
UNTIL = ("traffic-stopped", "drained")
_UNITS = {"h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([hms])")


def parse_duration(text: str) -> float:
    """Seconds in a kubectl-style duration: "10m", "90s", "1h30m", "2.5m"; a bare number is seconds.
    "0" is no limit (like kubectl rollout status --timeout=0)."""
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (examples: 90s, 10m, 1h30m)")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 3, so that 2 means only "timed out" to a pipeline running `status`."""

    def error(self, message: str) -> NoReturn:
        self.print_usage()
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("-n", "--namespace", help="namespace (default: the context's, else default)")
    common.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    common.add_argument("--context", help="kubeconfig context (default: the current one)")

    parser = _Parser(
        prog="kubectl fastrollout",
        description="Watch and steer FastRollouts.",
        epilog="status exits 0 when the milestone is reached, 1 when the rollout Failed or RolledBack, "
        "2 on timeout, 3 on any other error.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    status = commands.add_parser(
        "status", parents=[common], help="wait for a rollout, like kubectl rollout status"
    )
    status.add_argument("name")
    status.add_argument("--until", choices=UNTIL, default="traffic-stopped", help="milestone to wait for")
    status.add_argument(
        "--timeout", type=parse_duration, default=parse_duration("10m"), help="e.g. 90s, 10m (0: none)"
    )

    get = commands.add_parser("get", parents=[common], help="one row per version: ready, serving, draining")
    get.add_argument("name")
    get.add_argument("-w", "--watch", action="store_true", help="print again on every change")

    for verb, text in (
        ("pause", "set spec.paused: the operator takes no step"),
        ("resume", "clear spec.paused"),
        ("restart", "a new rollout of the same template (annotation fastrollout.io/restartedAt)"),
        ("history", "the versions kept by spec.revisionHistoryLimit"),
    ):
        commands.add_parser(verb, parents=[common], help=text).add_argument("name")

    undo = commands.add_parser(
        "undo", parents=[common], help="roll back to the previous kept version, or to --to-version"
    )
    undo.add_argument("name")
    undo.add_argument("--to-version", metavar="V", help="a version listed by `history`")
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))
