"""The alerts and the Grafana dashboard that ship with the chart.

charts/fastrollout/files/alerts.yaml is a plain Prometheus rules file (the chart renders it into a
PrometheusRule); tests/alerts/alerts_test.yaml holds one `promtool test rules` scenario per alert.
charts/fastrollout/dashboards/fastrollout.json is the dashboard (the chart puts it in a ConfigMap).

The first tests need only Python: every PromQL expression, of the rules and of the dashboard, reads
only metrics that fastrollout.metrics exports (plus Prometheus's own `up`), and the dashboard shows
every one of them. The rest run promtool (check and unit-test the rules, parse every dashboard query),
taken from $PROMTOOL, the test bed's cache (~/.cache/fastrollout/bin/promtool-*/promtool, built by
tests/cluster/build.sh) or PATH. Without one they are skipped, saying so, unless
FASTROLLOUT_REQUIRE_PROMTOOL=1: then they fail. tests/run.sh sets it as soon as promtool is built, like
FASTROLLOUT_REQUIRE_HELM for the chart tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fastrollout.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "fastrollout"
RULES = CHART / "files" / "alerts.yaml"
RULE_TESTS = ROOT / "tests" / "alerts" / "alerts_test.yaml"
DASHBOARD = CHART / "dashboards" / "fastrollout.json"
README = ROOT / "README.md"

# Series Prometheus itself writes, which the rules and the dashboard may read besides the operator's.
PROMETHEUS_OWN = {"up"}
SAMPLE_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
PROMQL_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}

Obj = dict[str, Any]


def exported_families() -> dict[str, str]:
    """Name -> type of every metric family fastrollout.metrics registers (also with no series yet)."""
    metrics = Metrics()
    metrics.watch(list)
    return {family.name: family.type for family in metrics.registry.collect()}


def exported_series() -> set[str]:
    """The sample names Prometheus stores: a counter's _total, a histogram's _bucket/_sum/_count."""
    return {name + suffix for name, kind in exported_families().items() for suffix in SAMPLE_SUFFIXES[kind]}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads: what is left without strings, label matchers, ranges,
    grouping clauses, Grafana variables, function names and keywords.
    >>> sorted(metric_names('sum by (le) (rate(a_bucket{job=~"$job"}[5m])) / on (x) b or vector(0)'))
    ['a_bucket', 'b']
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"', " ", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][\w:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match.group().lower() in PROMQL_KEYWORDS:
            continue
        names.add(match.group())
    return names


def test_metric_names_parser() -> None:
    expr = (
        'sum by (namespace) (x{state="serving", a=~"$a"} unless on (version) y{role="target"}) '
        "/ ignoring (le) histogram_quantile(0.95, rate(z_bucket[$__rate_interval])) > bool 0.5 "
        "or absent(up) and time() - w offset 5m"
    )
    assert metric_names(expr) == {"x", "y", "z_bucket", "up", "w"}


# --- the rules file ------------------------------------------------------------------------------


def rules() -> list[Obj]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_every_alert_is_documented_and_labelled() -> None:
    alerts = rules()
    names = [rule["alert"] for rule in alerts]
    assert len(names) == len(set(names))
    for rule in alerts:
        assert rule["alert"].startswith("FastRollout"), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description"}, rule["alert"]


def test_rules_read_only_exported_metrics() -> None:
    allowed = exported_series() | PROMETHEUS_OWN
    unknown = {rule["alert"]: metric_names(rule["expr"]) - allowed for rule in rules()}
    assert {alert: names for alert, names in unknown.items() if names} == {}


def test_every_alert_has_a_firing_scenario() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    firing = {
        check["alertname"] for case in cases for check in case["alert_rule_test"] if check["exp_alerts"]
    }
    assert firing == {rule["alert"] for rule in rules()}


def test_readme_lists_every_alert() -> None:
    readme = README.read_text()
    assert [rule["alert"] for rule in rules() if f"| `{rule['alert']}` |" not in readme] == []


# --- the dashboard -------------------------------------------------------------------------------


def dashboard() -> Obj:
    loaded: Obj = json.loads(DASHBOARD.read_text())
    return loaded


def all_panels(panels: list[Obj]) -> Iterator[Obj]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def dashboard_queries(board: Obj) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and every query variable."""
    for panel in all_panels(board["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r} {target['refId']}", target["expr"]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = re.fullmatch(r"label_values\((.*), *\w+\)", variable["query"]["query"])
            assert query, variable["query"]
            yield f"variable {variable['name']}", query.group(1)


def test_dashboard_reads_only_exported_metrics() -> None:
    allowed = exported_series() | PROMETHEUS_OWN
    unknown = {where: metric_names(expr) - allowed for where, expr in dashboard_queries(dashboard())}
    assert {where: names for where, names in unknown.items() if names} == {}


def test_dashboard_shows_every_exported_metric() -> None:
    read = set().union(*(metric_names(expr) for _, expr in dashboard_queries(dashboard())))
    families = exported_families()
    shown = {name for name, kind in families.items() if any(name + s in read for s in SAMPLE_SUFFIXES[kind])}
    assert set(families) - shown == set()


def test_dashboard_is_importable_standalone() -> None:
    board = dashboard()
    assert board["uid"] == "fastrollout"
    assert "id" not in board  # Grafana assigns it; a fixed one clashes on import
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = list(all_panels(board["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel.get("description"), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
    used = {m.group(1) for _, expr in dashboard_queries(board) for m in re.finditer(r"\$(\w+)", expr)}
    assert used - {"__rate_interval"} <= set(variables)


def test_dashboard_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in all_panels(dashboard()["panels"]):
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


# --- with promtool -------------------------------------------------------------------------------


def find_promtool() -> str | None:
    if os.environ.get("PROMTOOL"):
        return os.environ["PROMTOOL"]
    cache = os.environ.get("FASTROLLOUT_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastrollout"
    )
    built = sorted(Path(cache).glob("bin/promtool-*/promtool"))
    return str(built[-1]) if built else shutil.which("promtool")


PROMTOOL = find_promtool()
REQUIRE_PROMTOOL = os.environ.get("FASTROLLOUT_REQUIRE_PROMTOOL") == "1"
WHERE_PROMTOOL = (
    "$PROMTOOL, ~/.cache/fastrollout/bin/promtool-*/promtool from tests/cluster/build.sh, or PATH"
)
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None and not REQUIRE_PROMTOOL,
    reason=f"PROMTOOL NOT FOUND ({WHERE_PROMTOOL}): alert rules NOT CHECKED; tests/run.sh runs these once "
    "the test bed has built promtool",
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None, f"FASTROLLOUT_REQUIRE_PROMTOOL=1 but no promtool found ({WHERE_PROMTOOL})"
    return subprocess.run(
        [PROMTOOL, *args], capture_output=True, text=True, check=False, timeout=120, cwd=ROOT
    )


@needs_promtool
def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", "--lint=all", "--lint-fatal", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


@needs_promtool
def test_promtool_test_rules() -> None:
    result = promtool("test", "rules", "--diff", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@needs_promtool
def test_dashboard_queries_parse(tmp_path: Path) -> None:
    # promtool parses PromQL only in rule files: each dashboard query becomes a recording rule, with
    # Grafana's variables as a dashboard would substitute them.
    queries = [expr for _, expr in dashboard_queries(dashboard())]
    recorded = [
        {
            "record": f"dashboard:query_{index}",
            "expr": re.sub(r"\$\w+", ".*", expr.replace("$__rate_interval", "2m")),
        }
        for index, expr in enumerate(queries)
    ]
    rules_file = tmp_path / "dashboard_rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": recorded}]}))
    result = promtool("check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


@needs_promtool
def test_promtool_test_rules_fails_a_wrong_expectation(tmp_path: Path) -> None:
    # The scenarios can fail: FastRolloutStuck expected at 20m, while it is only pending, fails.
    series = 'fastrollout_rollout_deadline_timestamp_seconds{namespace="shop", fastrollout="web"}'
    expected = {"exp_labels": {"severity": "critical", "namespace": "shop", "fastrollout": "web"}}
    case = {
        "interval": "1m",
        "input_series": [{"series": series, "values": "600x40"}],
        "alert_rule_test": [{"eval_time": "20m", "alertname": "FastRolloutStuck", "exp_alerts": [expected]}],
    }
    wrong = tmp_path / "wrong_test.yaml"
    wrong.write_text(yaml.safe_dump({"rule_files": [str(RULES)], "tests": [case]}))
    result = promtool("test", "rules", str(wrong))
    assert result.returncode != 0, result.stdout
    assert "FastRolloutStuck" in result.stdout + result.stderr
