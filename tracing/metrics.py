"""Per-agent, per-skill request metrics through the OTel metrics API (exported like the spans).

Instruments: ``mesh.skill.duration`` (histogram, seconds; its count is the request count, so no
separate request counter is paid for), ``mesh.skill.errors`` (counter, failures only) and
``mesh.skill.in_flight`` (observed from a plain counter): one measurement per successful call. ``tracing.configure`` installs an SDK meter provider only
when metrics are exported (OTLP); otherwise these are the API's no-ops.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache

from opentelemetry import metrics
from opentelemetry.metrics import CallbackOptions, Observation

__all__ = ["SkillMetrics", "skill_metrics"]

Labels = tuple[tuple[str, str], ...]


class SkillMetrics:
    def __init__(self, meter: metrics.Meter) -> None:
        self.errors = meter.create_counter("mesh.skill.errors", unit="{request}", description="Skill calls that failed")
        self.duration = meter.create_histogram(
            "mesh.skill.duration", unit="s", description="Skill call duration; its count is the number of calls"
        )
        self.running: Counter[Labels] = Counter()
        meter.create_observable_up_down_counter(
            "mesh.skill.in_flight", callbacks=[self._observe_running], unit="{request}", description="Skill calls running"
        )

    def _observe_running(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(count, dict(labels)) for labels, count in list(self.running.items())]

    def started(self, attributes: dict[str, str]) -> None:
        self.running[tuple(attributes.items())] += 1

    def finished(self, attributes: dict[str, str], seconds: float, error_type: str | None) -> None:
        self.running[tuple(attributes.items())] -= 1
        self.duration.record(seconds, attributes)
        if error_type is not None:
            self.errors.add(1, {**attributes, "error.type": error_type})


@cache
def skill_metrics() -> SkillMetrics:
    return SkillMetrics(metrics.get_meter("agent-mesh"))
