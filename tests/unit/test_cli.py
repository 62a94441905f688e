"""The `fastrollout` command line, without a cluster."""

from pathlib import Path

import pytest

from fastrollout.cli import EXIT_DRIFT, EXIT_USAGE, election_config, main, parser
from fastrollout.crd import render_yaml
from fastrollout.leader import LeaseConfig

REPO = Path(__file__).resolve().parents[2]


def test_crd_prints_the_rendered_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crd"]) == 0
    assert capsys.readouterr().out == render_yaml()


def test_crd_check_passes_on_the_committed_crd() -> None:
    assert main(["crd", "--check", str(REPO / "crds" / "fastrollout.io_fastrollouts.yaml")]) == 0


def test_crd_check_fails_on_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stale = tmp_path / "crd.yaml"
    stale.write_text(render_yaml().replace("FastRollout", "SlowRollout"))
    assert main(["crd", "--check", str(stale)]) == EXIT_DRIFT
    assert "out of date" in capsys.readouterr().err
    assert main(["crd", "--check", str(tmp_path / "missing.yaml")]) == EXIT_DRIFT


def test_run_defaults() -> None:
    args = parser().parse_args(["run"])
    assert (args.kubeconfig, args.namespace, args.metrics_port, args.health_port, args.verbose) == (
        None,
        None,
        8080,
        8081,
        False,
    )


def test_run_repeats_namespace() -> None:
    args = parser().parse_args(["run", "--namespace", "a", "--namespace", "b", "--kubeconfig", "/k"])
    assert args.namespace == ["a", "b"]
    assert args.kubeconfig == "/k"


def test_leader_election_is_off_unless_asked_for() -> None:
    assert election_config(parser().parse_args(["run"])) is None


def test_leader_election_defaults_come_from_the_downward_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "fastrollout-system")
    monkeypatch.setenv("POD_NAME", "fr-fastrollout-7c9d5-abcde")
    config = election_config(parser().parse_args(["run", "--leader-elect"]))
    assert config == LeaseConfig(
        name="fastrollout",
        namespace="fastrollout-system",
        identity="fr-fastrollout-7c9d5-abcde",
        lease_duration=15.0,
        renew_deadline=10.0,
        retry_period=2.0,
    )


def test_leader_election_options_override_and_identities_are_unique_outside_a_pod(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    monkeypatch.delenv("POD_NAME", raising=False)
    args = [
        "run", "--leader-elect", "--leader-elect-namespace", "ops", "--leader-elect-lease-name", "fr",
        "--leader-elect-lease-duration", "4", "--leader-elect-renew-deadline", "3",
        "--leader-elect-retry-period", "1",
    ]  # fmt: skip
    first = election_config(parser().parse_args(args))
    second = election_config(parser().parse_args(args))
    assert first is not None
    assert second is not None
    assert (first.name, first.namespace, first.lease_duration, first.renew_deadline, first.retry_period) == (
        "fr", "ops", 4.0, 3.0, 1.0,
    )  # fmt: skip
    assert first.identity != second.identity  # two local processes never share an identity


def test_leader_election_without_a_namespace_or_with_unsafe_timings_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("POD_NAMESPACE", raising=False)
    assert main(["run", "--leader-elect"]) == EXIT_USAGE
    unsafe = [
        "run",
        "--leader-elect",
        "--leader-elect-namespace",
        "ops",
        "--leader-elect-renew-deadline",
        "20",
    ]
    assert main(unsafe) == EXIT_USAGE
