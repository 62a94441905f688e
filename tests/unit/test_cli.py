"""The `fastrollout` command line, without a cluster."""

from pathlib import Path

import pytest

from fastrollout.cli import EXIT_DRIFT, main, parser
from fastrollout.crd import render_yaml

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
