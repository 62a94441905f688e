"""The kubectl plugin's pure parts: arguments, milestones and exit codes, tables, undo's choice."""

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest

import fastrollout.api as api
from fastrollout.api import FastRolloutSpec
from fastrollout.plan.revision import revision_of, revision_source
from fastrollout.plugin import main as plugin_main
from fastrollout.plugin import milestone, names, render, undo
from fastrollout.plugin.args import EXIT_ERROR, EXIT_FAILED, EXIT_REACHED, EXIT_TIMEOUT, parse, parse_duration

# --- names and arguments -------------------------------------------------------------------------


def test_names_match_the_api() -> None:
    """The plugin keeps its own copy (no pydantic at start); it must say what the API says."""
    assert names.API_VERSION == api.API_VERSION
    assert names.PLURAL == api.PLURAL
    assert (names.LABEL_NAME, names.LABEL_VERSION, names.LABEL_REVISION) == (
        api.LABEL_NAME,
        api.LABEL_VERSION,
        api.LABEL_REVISION,
    )
    assert names.ANNOTATION_SOURCE == api.ANNOTATION_SOURCE
    assert undo.DEFAULT_GRACE_SECONDS == api.constants.DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("10m", 600, id="minutes"),
        pytest.param("90s", 90, id="seconds"),
        pytest.param("1h30m", 5400, id="compound"),
        pytest.param("2.5m", 150, id="fraction"),
        pytest.param("45", 45, id="bare-number-is-seconds"),
        pytest.param("0", 0, id="zero-no-limit"),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10x", "m", "10m junk", "-5s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(Exception, match="invalid duration"):
        parse_duration(text)


def test_status_arguments_and_defaults() -> None:
    args = parse(["status", "web", "-n", "prod", "--until", "drained", "--timeout", "2m", "--context", "c1"])
    assert (args.command, args.name, args.namespace, args.until, args.timeout, args.context) == (
        "status",
        "web",
        "prod",
        "drained",
        120,
        "c1",
    )
    defaults = parse(["status", "web"])
    assert (defaults.until, defaults.timeout, defaults.namespace, defaults.kubeconfig) == (
        "traffic-stopped",
        600,
        None,
        None,
    )


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["status"], id="missing-name"),
        pytest.param(["status", "web", "--until", "ready"], id="unknown-milestone"),
        pytest.param(["status", "web", "--timeout", "soon"], id="bad-timeout"),
        pytest.param(["rollout", "web"], id="unknown-command"),
    ],
)
def test_usage_errors_exit_3_not_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """2 is reserved for "timed out": a pipeline must not read a typo as a slow rollout."""
    with pytest.raises(SystemExit) as exited:
        parse(argv)
    assert exited.value.code == EXIT_ERROR
    assert "error" in capsys.readouterr().err


def test_undo_and_get_arguments() -> None:
    assert parse(["undo", "web", "--to-version", "v1"]).to_version == "v1"
    assert parse(["undo", "web"]).to_version is None
    assert parse(["get", "web", "-w"]).watch is True


# --- milestones and exit codes -------------------------------------------------------------------


def fr(
    *,
    generation: int = 3,
    observed: int | None = 3,
    phase: str = "Progressing",
    conditions: dict[str, str] | None = None,
    paused: bool = False,
) -> dict[str, Any]:
    status: dict[str, Any] = {
        "phase": phase,
        "version": "v2",
        "conditions": [{"type": t, "status": s} for t, s in (conditions or {}).items()],
        "versions": [{"version": "v2", "readyReplicas": 7}, {"version": "v1", "readyReplicas": 10}],
        "oldServingReplicas": 10,
        "message": "new pods not Ready within 600s; rolled back to version v1",
    }
    if observed is not None:
        status["observedGeneration"] = observed
    return {
        "metadata": {"name": "web", "generation": generation},
        "spec": {"replicas": 10, "paused": paused},
        "status": status,
    }


@pytest.mark.parametrize(
    ("obj", "until", "code"),
    [
        pytest.param(fr(), "traffic-stopped", None, id="rolling-waits"),
        pytest.param(
            fr(conditions={"TrafficStopped": "True"}, phase="Complete"),
            "traffic-stopped",
            EXIT_REACHED,
            id="traffic-stopped",
        ),
        pytest.param(
            fr(conditions={"TrafficStopped": "True", "Drained": "False"}),
            "drained",
            None,
            id="drained-waits-for-drain",
        ),
        pytest.param(
            fr(conditions={"TrafficStopped": "True", "Drained": "True"}),
            "drained",
            EXIT_REACHED,
            id="drained",
        ),
        pytest.param(fr(phase="RolledBack"), "traffic-stopped", EXIT_FAILED, id="rolled-back"),
        pytest.param(fr(phase="Failed"), "drained", EXIT_FAILED, id="failed"),
        pytest.param(
            fr(observed=2, phase="Complete", conditions={"TrafficStopped": "True"}),
            "traffic-stopped",
            None,
            id="stale-generation-complete-is-not-reached",
        ),
        pytest.param(fr(observed=None, phase="Complete"), "traffic-stopped", None, id="no-status-yet"),
        pytest.param(fr(paused=True, phase="Paused"), "traffic-stopped", None, id="paused-keeps-waiting"),
    ],
)
def test_judge(obj: dict[str, Any], until: str, code: int | None) -> None:
    assert milestone.judge(obj, until).exit_code == code


def test_progress_line_and_failure_message() -> None:
    line = milestone.judge(fr(), "traffic-stopped").line
    assert line == "fastrollout web: version v2 Progressing, 7/10 new Ready, old serving 10, draining 0"
    failed = milestone.judge(fr(phase="RolledBack"), "traffic-stopped").line
    assert failed.endswith("rolled back to version v1")
    assert "(paused)" in milestone.judge(fr(paused=True), "traffic-stopped").line


class FakeKube:
    """Serves a list of object states: get() returns the first, watch() streams the rest."""

    def __init__(self, states: list[dict[str, Any]], watch_ends: bool = False) -> None:
        self.states = [
            {**s, "metadata": {**s["metadata"], "resourceVersion": str(i)}} for i, s in enumerate(states)
        ]
        self.gets = 0
        self.watch_ends = watch_ends

    def get(self, name: str) -> dict[str, Any]:
        self.gets += 1
        return self.states[0]

    def watch(self, name: str, resource_version: str, seconds: float) -> Any:
        yield from self.states[1:]


def run_status(kube: Any, timeout: float, clock: Any = None) -> tuple[int, str]:
    args = parse(["status", "web", "--timeout", str(timeout)])
    out = io.StringIO()
    code = plugin_main.status(kube, args, out, **({"clock": clock} if clock else {}))
    return code, out.getvalue()


def test_status_exits_0_on_the_milestone_with_plain_lines() -> None:
    kube = FakeKube(
        [fr(), fr(phase="Progressing"), fr(phase="Complete", conditions={"TrafficStopped": "True"})]
    )
    code, text = run_status(kube, 60)
    assert code == EXIT_REACHED
    lines = text.splitlines()
    assert lines[0].startswith("fastrollout web: version v2 Progressing")
    assert lines[-1].endswith(": TrafficStopped")
    assert "\r" not in text  # not a terminal: plain lines, no rewriting


def test_status_exits_1_on_rollback() -> None:
    code, text = run_status(FakeKube([fr(), fr(phase="RolledBack")]), 60)
    assert code == EXIT_FAILED
    assert "rolled back to version v1" in text


def test_status_exits_2_on_timeout() -> None:
    ticks = iter(range(0, 1000, 40))
    code, text = run_status(FakeKube([fr(), fr(), fr()]), 60, clock=lambda: float(next(ticks)))
    assert code == EXIT_TIMEOUT
    assert text.rstrip().endswith("timed out after 60s")


def test_live_progress_rewrites_one_line_on_a_terminal() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    progress = plugin_main.Progress(out)
    progress.show("a")
    progress.show("a")
    progress.done("b")
    assert out.getvalue() == "\r\033[Ka\r\033[Kb\n"


# --- tables ----------------------------------------------------------------------------------------


def test_versions_table() -> None:
    obj = {
        "metadata": {"name": "web"},
        "spec": {"replicas": 4},
        "status": {
            "version": "v2",
            "stableVersion": "v1",
            "phase": "Progressing",
            "versions": [
                {
                    "version": "v2",
                    "replicaSet": "web-7c9d5",
                    "replicas": 4,
                    "readyReplicas": 3,
                    "servingReplicas": 3,
                    "drainingReplicas": 0,
                },
                {
                    "version": "v1",
                    "replicaSet": "web-5f2a1",
                    "replicas": 0,
                    "readyReplicas": 0,
                    "servingReplicas": 0,
                    "drainingReplicas": 4,
                },
            ],
        },
    }
    assert render.versions_table(obj).splitlines() == [
        "web: version v2, phase Progressing, desired 4, stable v1",
        "VERSION   ROLE     REPLICASET   PODS   READY   SERVING   DRAINING",
        "v2        target   web-7c9d5    4      3       3         0",
        "v1        old      web-5f2a1    0      0       0         4",
    ]


def kept(version: str, revision: str, hour: int | None, source: dict[str, Any] | None = None) -> undo.Kept:
    created = None if hour is None else datetime(2026, 11, 30, hour, tzinfo=UTC)
    return undo.Kept(f"web-{revision}", revision, version, 0, created, source)


def test_history_table_oldest_first_with_current_marks() -> None:
    rows = [kept("v3", "ccc", 11), kept("v1", "aaa", 9), kept("v2", "bbb", 10), kept("v0", "zzz", None)]
    assert render.history_table(rows, "ccc", "bbb").splitlines() == [
        "VERSION   REVISION   REPLICASET   CREATED                REPLICAS   CURRENT",
        "v0        zzz        web-zzz      -                      0",
        "v1        aaa        web-aaa      2026-11-30T09:00:00Z   0",
        "v2        bbb        web-bbb      2026-11-30T10:00:00Z   0          stable",
        "v3        ccc        web-ccc      2026-11-30T11:00:00Z   0          target",
    ]


# --- undo --------------------------------------------------------------------------------------------

HISTORY = [kept("v1", "aaa", 9), kept("v2", "bbb", 10), kept("v3", "ccc", 11)]


@pytest.mark.parametrize(
    ("current", "to_version", "expected"),
    [
        pytest.param("ccc", None, "v2", id="previous-of-newest"),
        pytest.param("bbb", None, "v3", id="after-an-undo-undo-goes-forward"),
        pytest.param("ccc", "v1", "v1", id="to-version"),
        pytest.param("new", None, "v3", id="target-not-created-yet"),
    ],
)
def test_choose(current: str, to_version: str | None, expected: str) -> None:
    assert undo.choose(HISTORY, current, to_version).version == expected


def test_choose_newest_of_a_repeated_version() -> None:
    rows = [kept("v1", "aaa", 9), kept("v1", "aab", 12), kept("v2", "bbb", 10)]
    assert undo.choose(rows, "bbb", "v1").revision == "aab"


@pytest.mark.parametrize(
    ("rows", "to_version", "message"),
    [
        pytest.param([kept("v3", "ccc", 11)], None, "no previous version", id="only-current"),
        pytest.param(HISTORY, "v9", "version v9 is not in the revision history", id="unknown-version"),
    ],
)
def test_choose_errors(rows: list[undo.Kept], to_version: str | None, message: str) -> None:
    with pytest.raises(undo.UndoError, match=message):
        undo.choose(rows, "ccc", to_version)


def spec_dict(image: str, **extra: Any) -> dict[str, Any]:
    return {
        "replicas": 3,
        "template": {
            "metadata": {"labels": {"app": "w"}},
            "spec": {"containers": [{"name": "w", "image": image}]},
        },
        "drain": {"preStopSleepSeconds": 5},
        **extra,
    }


@pytest.mark.parametrize(
    ("old", "current"),
    [
        pytest.param(spec_dict("w:1", version="v1"), spec_dict("w:2", version="v2"), id="versions"),
        pytest.param(spec_dict("w:1"), spec_dict("w:2", version="v2"), id="old-had-no-version"),
        pytest.param(
            spec_dict("w:1", drain={"preStopSleepSeconds": 2, "terminationGracePeriodSeconds": 30}),
            spec_dict("w:2", drain={"preStopSleepSeconds": 5}),
            id="drain-differs",
        ),
        pytest.param(
            {
                **spec_dict("w:1"),
                "template": {
                    **spec_dict("w:1")["template"],
                    "metadata": {"labels": {"app": "w"}, "annotations": {"x": "1"}},
                },
            },
            spec_dict("w:2", paused=True),
            id="template-keys-removed-since-come-back",
        ),
    ],
)
def test_restored_spec_hashes_to_the_kept_revision(old: dict[str, Any], current: dict[str, Any]) -> None:
    """Undo must land on the kept revision exactly, so the operator reuses its ReplicaSet."""
    old_spec = FastRolloutSpec.model_validate(old)
    chosen = kept(old_spec.version or "", revision_of(old_spec), 9, json.loads(revision_source(old_spec)))
    restored = undo.restored_spec(current, chosen)
    assert revision_of(FastRolloutSpec.model_validate(restored)) == chosen.revision
    assert restored["replicas"] == 3
    assert restored.get("paused") == current.get("paused")


def test_restored_spec_needs_the_source_annotation() -> None:
    with pytest.raises(undo.UndoError, match=r"no fastrollout\.io/source annotation"):
        undo.restored_spec(spec_dict("w:2"), kept("v1", "aaa", 9))


def test_kept_from_counts_only_owned_replica_sets() -> None:
    def replica_set(name: str, uid: str) -> dict[str, Any]:
        return {
            "metadata": {
                "name": name,
                "creationTimestamp": "2026-11-30T09:00:00Z",
                "labels": {names.LABEL_REVISION: "aaa", names.LABEL_VERSION: "v1"},
                "annotations": {names.ANNOTATION_SOURCE: '{"template": {}}'},
                "ownerReferences": [{"controller": True, "uid": uid}],
            },
            "spec": {"replicas": 0},
        }

    rows = undo.kept_from([replica_set("web-aaa", "u1"), replica_set("impostor", "u2")], "u1")
    assert rows == [kept("v1", "aaa", 9, {"template": {}})]


class HistoryKube:
    """A FastRollout at v2 with v1 and v2 kept, for the undo and history commands."""

    def __init__(self) -> None:
        self.v1 = FastRolloutSpec.model_validate(spec_dict("w:1", version="v1"))
        self.v2 = FastRolloutSpec.model_validate(spec_dict("w:2", version="v2"))
        self.obj: dict[str, Any] = {
            "metadata": {"name": "web", "uid": "u1", "resourceVersion": "7"},
            "spec": spec_dict("w:2", version="v2"),
            "status": {"revision": revision_of(self.v2), "stableRevision": revision_of(self.v2)},
        }
        self.replaced: list[dict[str, Any]] = []

    def get(self, name: str) -> dict[str, Any]:
        return json.loads(json.dumps(self.obj))

    def replica_sets(self, name: str) -> list[dict[str, Any]]:
        def rs(spec: FastRolloutSpec, hour: int) -> dict[str, Any]:
            return {
                "metadata": {
                    "name": f"web-{revision_of(spec)}",
                    "creationTimestamp": f"2026-11-30T{hour:02d}:00:00Z",
                    "labels": {names.LABEL_REVISION: revision_of(spec), names.LABEL_VERSION: spec.version},
                    "annotations": {names.ANNOTATION_SOURCE: revision_source(spec)},
                    "ownerReferences": [{"controller": True, "uid": "u1"}],
                },
                "spec": {"replicas": 0 if spec is self.v1 else 3},
            }

        return [rs(self.v1, 9), rs(self.v2, 10)]

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.replaced.append(obj)
        return obj


def test_undo_command_replaces_the_spec_with_the_previous_revision() -> None:
    kube = HistoryKube()
    out = io.StringIO()
    assert plugin_main.rollback(kube, parse(["undo", "web"]), out) == EXIT_REACHED
    (written,) = kube.replaced
    assert written["metadata"]["resourceVersion"] == "7"  # guarded against concurrent edits
    assert revision_of(FastRolloutSpec.model_validate(written["spec"])) == revision_of(kube.v1)
    assert out.getvalue() == "fastrollout.fastrollout.io/web rolled back to version v1\n"


def test_history_command_lists_kept_versions() -> None:
    out = io.StringIO()
    assert plugin_main.history(HistoryKube(), parse(["history", "web"]), out) == EXIT_REACHED
    rows = [line.split() for line in out.getvalue().splitlines()]
    assert [(r[0], r[-1]) for r in rows[1:]] == [("v1", "0"), ("v2", "target,stable")]
