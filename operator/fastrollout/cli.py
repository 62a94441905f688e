"""The `fastrollout` command: `run` starts the operator, `crd` prints (or checks) the CRD.

    fastrollout run [--kubeconfig PATH] [--namespace NS]... [--metrics-port 8080] [--health-port 8081] [--verbose]
    fastrollout crd [--check crds/fastrollout.io_fastrollouts.yaml]

Credentials: --kubeconfig if given, else the pod's service account (in-cluster), else the default
kubeconfig ($KUBECONFIG or ~/.kube/config). kopf and the operator's own client use the same ones.
"""

import argparse
import difflib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from fastrollout import __version__
from fastrollout.api import GROUP, PLURAL, VERSION
from fastrollout.crd import render_yaml

logger = logging.getLogger("fastrollout")

EXIT_DRIFT = 1
EXIT_NO_CRD = 2


def load_configuration(kubeconfig: str | None) -> client.Configuration:
    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
        return configuration
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


def crd_served(configuration: client.Configuration) -> bool:
    """Whether the API server serves FastRollouts (the CRD is installed and established)."""
    with client.ApiClient(configuration) as api:
        try:
            resources = client.CustomObjectsApi(api).get_api_resources(GROUP, VERSION)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
    return any(resource.name == PLURAL for resource in resources.resources or ())


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    if not args.verbose:
        # kopf logs every handler call at INFO: one line per FastRollout event, i.e. per status write.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    configuration = load_configuration(args.kubeconfig)
    if not crd_served(configuration):
        logger.error(
            "%s.%s/%s is not served: install the CRD first (fastrollout crd | kubectl apply -f -)",
            PLURAL,
            GROUP,
            VERSION,
        )
        return EXIT_NO_CRD
    # kopf is a heavy import: only `run` needs it.
    from fastrollout.handlers import Options  # noqa: PLC0415
    from fastrollout.handlers import run as run_operator  # noqa: PLC0415

    options = Options(
        configuration=configuration,
        namespaces=tuple(dict.fromkeys(args.namespace or ())),
        metrics_port=args.metrics_port,
        health_port=args.health_port,
    )
    run_operator(options)
    return 0


def crd(args: argparse.Namespace) -> int:
    rendered = render_yaml()
    if args.check is None:
        sys.stdout.write(rendered)
        return 0
    path = Path(args.check)
    stored = path.read_text() if path.exists() else ""
    if stored == rendered:
        return 0
    diff = difflib.unified_diff(
        stored.splitlines(keepends=True), rendered.splitlines(keepends=True), str(path), "fastrollout crd"
    )
    sys.stderr.writelines(diff)
    sys.stderr.write(f"{path} is out of date: run `fastrollout crd > {path}`\n")
    return EXIT_DRIFT


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="fastrollout", description="Bulk rollouts of single-request worker fleets."
    )
    root.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = root.add_subparsers(dest="command", required=True)

    run_cmd = commands.add_parser("run", help="run the operator")
    run_cmd.add_argument(
        "--kubeconfig", help="kubeconfig file (default: in-cluster, else $KUBECONFIG or ~/.kube/config)"
    )
    run_cmd.add_argument(
        "--namespace", action="append", metavar="NS", help="watch this namespace (repeatable; default: all)"
    )
    run_cmd.add_argument(
        "--metrics-port", type=int, default=8080, help="Prometheus metrics port (default 8080)"
    )
    run_cmd.add_argument(
        "--health-port",
        type=int,
        default=8081,
        help="/healthz (liveness) and /readyz (readiness) (default 8081)",
    )
    run_cmd.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    run_cmd.set_defaults(func=run)

    crd_cmd = commands.add_parser("crd", help="print the CustomResourceDefinition")
    crd_cmd.add_argument(
        "--check", metavar="PATH", help="exit 1 (with a diff) if PATH differs from the rendered CRD"
    )
    crd_cmd.set_defaults(func=crd)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `fastrollout` console script; returns the exit code."""
    args = parser().parse_args(argv)
    code: int = args.func(args)
    return code
