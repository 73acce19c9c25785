"""Pick one healthy instance of an agent, so callers balance across replicas."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict

from registry.models import InstanceRecord, Policy

__all__ = ["Selector"]


class Selector:
    """Round-robin state is per registry process: each replica balances its own callers."""

    def __init__(self) -> None:
        self._turns: defaultdict[str, itertools.count[int]] = defaultdict(itertools.count)

    def pick(self, agent_id: str, instances: list[InstanceRecord], policy: Policy) -> InstanceRecord:
        if not instances:
            raise ValueError("no instance to pick from")
        ordered = sorted(instances, key=lambda i: i.id)
        if policy is Policy.random:
            return random.choice(ordered)
        if policy is Policy.least_in_flight:
            fewest = min(i.in_flight for i in ordered)
            ordered = [i for i in ordered if i.in_flight == fewest]  # ties still rotate
        return ordered[next(self._turns[agent_id]) % len(ordered)]
