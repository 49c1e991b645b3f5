"""The guard against silent mixing: a project's Argilla datasets remember the source they were built from.

Each annotator dataset carries the project's source identity in its Argilla metadata. A re-plan
whose declared source differs from a dataset's is refused, unless the declaration names the
old source as the one it `replaces`: then the switch is allowed once, every answer is kept, and
the records of the old source nobody answered are withdrawn.
"""

from __future__ import annotations

from dataclasses import dataclass

# Keys in an Argilla dataset's metadata.
SOURCE_STAMP = "curation_source"
PROJECT_STAMP = "curation_project"


@dataclass(frozen=True)
class SourceSwitch:
    """A dataset built from another source than the one declared."""

    project: str
    declared: str
    found: dict[str, str]  # shard (annotator) → the source its dataset was built from
    where_declared: str

    def message(self, outcome: str = "Nothing was planned or pushed, so nothing is mixed") -> str:
        previous = sorted(set(self.found.values()))
        shards = ", ".join(sorted(self.found))
        first = previous[0]
        return (
            f"project {self.project!r} declares the source {self.declared}, but its annotators' Argilla datasets "
            f"({shards}) were built from {' and '.join(previous)}. {outcome}. "
            f"Either curate {self.declared} as a project of its own (a new folder with its own defs.yaml, "
            f"e.g. `curation-quickstart --project NEW_NAME --source ...`), or replace this project's source, which "
            f"keeps every answer and withdraws the old records nobody answered: add `replaces: {first}` under "
            f"`source:` in {self.where_declared} (or rerun curation-quickstart with --replace-source)."
        )


def source_switch(
    project: str, declared: str, replaces: str | None, stamps: dict[str, str | None], where_declared: str
) -> SourceSwitch | None:
    """The refused switch, if any dataset was built from a source other than the declared one (or the one it replaces).

    A dataset without a stamp (made before datasets were stamped) is taken as built from the declared source.
    """
    allowed = {declared, replaces} - {None}
    found = {shard: stamp for shard, stamp in stamps.items() if stamp is not None and stamp not in allowed}
    if not found:
        return None
    return SourceSwitch(project=project, declared=declared, found=found, where_declared=where_declared)
