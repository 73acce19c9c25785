"""Per-agent, per-skill request metrics through the OTel metrics API (exported like the spans)."""

from __future__ import annotations

from functools import cache

from opentelemetry import metrics

__all__ = ["SkillMetrics", "skill_metrics"]


class SkillMetrics:
    def __init__(self, meter: metrics.Meter) -> None:
        self.requests = meter.create_counter("mesh.skill.requests", unit="{request}", description="Skill calls")
        self.errors = meter.create_counter("mesh.skill.errors", unit="{request}", description="Skill calls that failed")
        self.duration = meter.create_histogram("mesh.skill.duration", unit="s", description="Skill call duration")
        self.in_flight = meter.create_up_down_counter("mesh.skill.in_flight", unit="{request}", description="Skill calls running")

    def started(self, attributes: dict[str, str]) -> None:
        self.in_flight.add(1, attributes)

    def finished(self, attributes: dict[str, str], seconds: float, error_type: str | None) -> None:
        self.in_flight.add(-1, attributes)
        self.requests.add(1, attributes)
        self.duration.record(seconds, attributes)
        if error_type is not None:
            self.errors.add(1, {**attributes, "error.type": error_type})


@cache
def skill_metrics() -> SkillMetrics:
    return SkillMetrics(metrics.get_meter("agent-mesh"))
