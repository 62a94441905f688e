"""The `fastrollout` command: `run` starts the operator, `crd` prints (or checks) the CRD.

    fastrollout run [--kubeconfig PATH] [--namespace NS]... [--metrics-port 8080] [--health-port 8081] [--verbose]
                    [--leader-elect [--leader-elect-namespace NS] [--leader-elect-lease-name fastrollout]
                     [--leader-elect-identity ID] [--leader-elect-lease-duration 15]
                     [--leader-elect-renew-deadline 10] [--leader-elect-retry-period 2]]
    fastrollout crd [--check crds/fastrollout.io_fastrollouts.yaml]

Credentials: --kubeconfig if given, else the pod's service account (in-cluster), else the default
kubeconfig ($KUBECONFIG or ~/.kube/config). kopf and the operator's own client use the same ones.

Leader election is off unless `--leader-elect` is given (kubebuilder's `--leader-elect` convention: one
process for development and tests; the chart always passes it). The Lease's namespace defaults to
$POD_NAMESPACE and the identity to $POD_NAME (both from the downward API in the chart); outside a pod the
identity is the host name plus a random suffix, so two local processes never share one.
"""

import argparse
import difflib
import logging
import os
import secrets
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from fastrollout import __version__
from fastrollout.api import GROUP, PLURAL, VERSION
from fastrollout.crd import render_yaml
from fastrollout.leader import LeaseConfig

logger = logging.getLogger("fastrollout")

EXIT_DRIFT = 1
EXIT_NO_CRD = 2
EXIT_USAGE = 64
DEFAULT_LEASE_NAME = "fastrollout"


def election_config(args: argparse.Namespace) -> LeaseConfig | None:
    """The Lease settings asked for, or None without --leader-elect; ValueError when incomplete."""
    if not args.leader_elect:
        return None
    namespace = args.leader_elect_namespace or os.environ.get("POD_NAMESPACE", "")
    if not namespace:
        raise ValueError("--leader-elect needs --leader-elect-namespace (or $POD_NAMESPACE)")
    identity = (
        args.leader_elect_identity
        or os.environ.get("POD_NAME", "")
        or f"{socket.gethostname()}_{secrets.token_hex(4)}"
    )
    return LeaseConfig(
        name=args.leader_elect_lease_name,
        namespace=namespace,
        identity=identity,
        lease_duration=args.leader_elect_lease_duration,
        renew_deadline=args.leader_elect_renew_deadline,
        retry_period=args.leader_elect_retry_period,
    )


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
    try:
        election = election_config(args)
    except ValueError as error:
        logger.error("%s", error)  # noqa: TRY400 -- a usage error, not a crash: no traceback
        return EXIT_USAGE
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
        election=election,
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
    election = run_cmd.add_argument_group("leader election (for more than one replica)")
    election.add_argument(
        "--leader-elect",
        action="store_true",
        help="only the holder of a coordination.k8s.io Lease reconciles; others stand by (default: off)",
    )
    election.add_argument(
        "--leader-elect-namespace", metavar="NS", help="namespace of the Lease (default: $POD_NAMESPACE)"
    )
    election.add_argument(
        "--leader-elect-lease-name",
        metavar="NAME",
        default=DEFAULT_LEASE_NAME,
        help=f"name of the Lease (default {DEFAULT_LEASE_NAME})",
    )
    election.add_argument(
        "--leader-elect-identity",
        metavar="ID",
        help="this replica's name in the Lease (default: $POD_NAME, else host name + random suffix)",
    )
    election.add_argument(
        "--leader-elect-lease-duration",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="a standby takes over a lease not renewed for this long (default 15)",
    )
    election.add_argument(
        "--leader-elect-renew-deadline",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="the leader stops writing when it could not renew for this long; < lease duration (default 10)",
    )
    election.add_argument(
        "--leader-elect-retry-period",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how often to try to acquire or renew (default 2)",
    )
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
