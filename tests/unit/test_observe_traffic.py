"""The two ways of judging "receives new traffic"."""

import pytest

from fastrollout.observe.records import EndpointState, PodRecord
from fastrollout.observe.traffic_endpoints import EndpointSliceJudge
from fastrollout.observe.traffic_pods import PodStateJudge


def pod(name: str = "p", *, ready: bool = True, terminating: bool = False) -> PodRecord:
    return PodRecord("ns", "web", name, "r1", "v1", terminating=terminating, ready=ready, crashing=False)


READY = EndpointState(ready=True, serving=True, terminating=False)
DRAINING = EndpointState(ready=False, serving=True, terminating=True)
DRAINED = EndpointState(ready=False, serving=False, terminating=True)
NOT_READY = EndpointState(ready=False, serving=False, terminating=False)


@pytest.mark.parametrize(
    ("ready", "terminating", "serving"),
    [
        pytest.param(True, False, True, id="ready"),
        pytest.param(False, False, False, id="not-ready"),
        pytest.param(True, True, False, id="terminating-ready"),
        pytest.param(False, True, False, id="terminating"),
    ],
)
def test_pod_state_judge(ready: bool, terminating: bool, serving: bool) -> None:
    assert PodStateJudge().serving(pod(ready=ready, terminating=terminating)) is serving


@pytest.mark.parametrize(
    ("endpoints", "serving"),
    [
        pytest.param({"p": READY}, True, id="ready-endpoint"),
        pytest.param({"p": NOT_READY, "other": READY}, False, id="not-ready-endpoint"),
        pytest.param({"p": DRAINING, "other": READY}, False, id="terminating-while-others-ready"),
        pytest.param({"p": DRAINING, "other": NOT_READY}, True, id="terminating-fallback-no-ready-endpoint"),
        pytest.param({"p": DRAINED, "other": NOT_READY}, False, id="terminating-not-serving"),
        pytest.param({"other": READY}, False, id="not-in-service"),
        pytest.param({}, False, id="empty-service"),
    ],
)
def test_endpoint_slice_judge(endpoints: dict[str, EndpointState], serving: bool) -> None:
    assert EndpointSliceJudge(endpoints).serving(pod("p")) is serving


def test_endpoint_slice_judge_names_served_endpoints_whose_pod_is_gone() -> None:
    judge = EndpointSliceJudge(
        {"alive": READY, "gone": READY, "gone-drained": DRAINED, "gone-off": NOT_READY}
    )
    assert sorted(judge.serving_without_pod({"alive"})) == ["gone"]


def test_pod_state_judge_never_serves_a_deleted_pod() -> None:
    assert list(PodStateJudge().serving_without_pod(set())) == []
