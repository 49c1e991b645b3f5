"""What changed in Argilla since the sensor's last look: new annotators, new submissions or discards, webhook news.

The sensor acts on two signals. Polling counts each dataset's finished responses (cheap, no record
is read) every POLL_SECONDS; a webhook receiver records, per dataset name, a mark that moves when a
finished response is created, edited or deleted, and the sensor reads those marks every few seconds.
A moved mark triggers a poll and a refresh at once (an edit moves no count, so the mark alone asks
for it); without marks (no receiver, a lost delivery, a server without webhooks), the next poll
finds any new submission or discard, only later. At most one refresh runs at a time: news that
arrives while one runs is owed, and asked for once it has ended, however many answers came meanwhile.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

CURSOR_VERSION = 2
# Polled this long after the last poll: the daemon evaluates sensors every 5 s, so "30 s" is met to within a tick.
POLL_SECONDS = 30.0
DAEMON_LOOP_SECONDS = 5.0


@dataclass
class ArgillaActivity:
    """What one poll saw: the annotators, and per annotator dataset the counts of finished responses."""

    annotators: list[str]
    finished_by_dataset: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class SensorMemory:
    """What the sensor's cursor keeps between ticks."""

    finished_by_dataset: dict[str, dict[str, int]] = field(default_factory=dict)
    # Dataset name → the receiver's mark the last poll acted on.
    webhook_marks: dict[str, str] = field(default_factory=dict)
    polled_at: float | None = None
    # News seen while a refresh was running: a refresh is asked for as soon as it has ended.
    refresh_owed: bool = False

    @classmethod
    def from_cursor(cls, cursor: str | None) -> SensorMemory:
        previous = json.loads(cursor) if cursor else {}
        if previous.get("version") != CURSOR_VERSION:
            # A cursor written before webhooks: the counts per dataset alone.
            return cls(finished_by_dataset=previous)
        return cls(
            finished_by_dataset=previous["finished"],
            webhook_marks=previous["webhook_marks"],
            polled_at=previous["polled_at"],
            refresh_owed=previous["refresh_owed"],
        )

    def to_cursor(self) -> str:
        return json.dumps(
            {
                "version": CURSOR_VERSION,
                "finished": self.finished_by_dataset,
                "webhook_marks": self.webhook_marks,
                "polled_at": self.polled_at,
                "refresh_owed": self.refresh_owed,
            },
            sort_keys=True,
        )

    def refresh_key(self) -> str:
        """What a refresh asked for now would publish: the counts and marks (not when they were polled).

        The refresh's run key: the same news asked for on two ticks (a retry after a failure) is one run.
        """
        return json.dumps({"finished": self.finished_by_dataset, "webhook_marks": self.webhook_marks}, sort_keys=True)

    def marks_moved(self, marks: dict[str, str]) -> list[str]:
        """The datasets whose webhook mark moved since the last poll."""
        return sorted(name for name, mark in marks.items() if self.webhook_marks.get(name) != mark)

    def poll_is_due(self, now: float) -> bool:
        return self.polled_at is None or now - self.polled_at >= POLL_SECONDS - DAEMON_LOOP_SECONDS / 2


def needs_a_poll(cursor: str | None, marks: dict[str, str], now: float) -> str | None:
    """Why this tick should poll Argilla (None: it need not, nothing can have changed that it would act on yet)."""
    memory = SensorMemory.from_cursor(cursor)
    moved = memory.marks_moved(marks)
    if moved:
        return f"webhook: answers changed in {', '.join(moved)}"
    if memory.refresh_owed:
        return "a refresh is owed"
    if memory.poll_is_due(now):
        return "time to poll"
    return None


@dataclass
class SensorDecision:
    new_annotators: list[str]
    refresh: bool
    cursor: str
    reason: str


def decide(
    activity: ArgillaActivity,
    known_partitions: set[str],
    cursor: str | None,
    *,
    webhook_marks: dict[str, str] | None = None,
    refresh_running: bool = False,
    now: float | None = None,
) -> SensorDecision:
    """Compare this poll (and the webhook marks read just before it) with what the cursor recorded.

    `webhook_marks` must be read before polling: an answer marked after the poll is then acted on
    by the next tick, never skipped.
    """
    memory = SensorMemory.from_cursor(cursor)
    marks = webhook_marks or {}
    new_annotators = sorted(set(activity.annotators) - known_partitions)
    changed = sorted(
        shard
        for shard, counts in activity.finished_by_dataset.items()
        if memory.finished_by_dataset.get(shard) != counts
    )
    signalled = memory.marks_moved(marks)
    wanted = bool(changed or signalled or memory.refresh_owed)
    reason = []
    if new_annotators:
        reason.append(f"new annotators: {', '.join(new_annotators)}")
    if changed:
        reason.append(f"new submissions or discards in: {', '.join(changed)}")
    if signalled:
        reason.append(f"webhook: answers changed in {', '.join(signalled)}")
    if memory.refresh_owed and not changed and not signalled:
        reason.append("news seen while the last refresh ran")
    if wanted and refresh_running:
        reason.append("a refresh is running: the next one is asked for when it ends")
    return SensorDecision(
        new_annotators=new_annotators,
        refresh=wanted and not refresh_running,
        cursor=SensorMemory(
            finished_by_dataset=activity.finished_by_dataset,
            webhook_marks={**memory.webhook_marks, **marks},
            polled_at=now,
            refresh_owed=wanted and refresh_running,
        ).to_cursor(),
        reason="; ".join(reason) or "no new annotators, submissions or discards",
    )
