"""Traffic judged from the pod alone, for FastRollouts without `spec.serviceName`.

A pod receives new work while it is Ready and not terminating. The moment its deletion starts
(`metadata.deletionTimestamp` set, before the preStop sleep even begins) it counts as no longer
receiving new traffic: whatever dispatches work to it (a queue consumer in the worker itself, a
client-side balancer watching pods) is expected to stop on the same signal. Without a Service there is
no other signal in the API to go by.
"""

from collections.abc import Collection, Set

from fastrollout.observe.records import PodRecord


class PodStateJudge:
    def serving(self, pod: PodRecord) -> bool:
        return pod.ready and not pod.terminating

    def serving_without_pod(self, known: Set[str]) -> Collection[str]:  # noqa: ARG002 (the protocol's signature)
        """A deleted pod is not sent anything: without a Service the pod object is the only signal."""
        return ()
