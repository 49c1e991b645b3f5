"""What changed in Argilla since the sensor's last look: new annotators, new submissions or discards."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class ArgillaActivity:
    """What one poll saw: the annotators, and per annotator dataset the counts of finished responses."""

    annotators: list[str]
    finished_by_dataset: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class SensorDecision:
    new_annotators: list[str]
    refresh: bool
    cursor: str
    reason: str


def decide(activity: ArgillaActivity, known_partitions: set[str], cursor: str | None) -> SensorDecision:
    """Compare this poll with the last one recorded in the cursor."""
    previous = json.loads(cursor) if cursor else {}
    new_annotators = sorted(set(activity.annotators) - known_partitions)
    changed = sorted(shard for shard, counts in activity.finished_by_dataset.items() if previous.get(shard) != counts)
    reason = []
    if new_annotators:
        reason.append(f"new annotators: {', '.join(new_annotators)}")
    if changed:
        reason.append(f"new submissions or discards in: {', '.join(changed)}")
    return SensorDecision(
        new_annotators=new_annotators,
        refresh=bool(changed),
        cursor=json.dumps(activity.finished_by_dataset, sort_keys=True),
        reason="; ".join(reason) or "no new annotators, submissions or discards",
    )
