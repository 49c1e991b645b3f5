"""Declaring a curation project from the command line: write or update its defs.yaml, never a silent source switch.

`curation-quickstart --source my.jsonl` writes `curation_assets/defs/projects/my/defs.yaml`; the
next runs, the sensor and the Dagster UI read that file, so nobody has to repeat the source.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import state
from ..defs.project import DEFINITION_FILE, PROJECT_NAME, CurationProject, SourceSettings
from ..logic.source import LOCAL_FORMATS, SHIPPED_EXCERPT
from ..logic.source_guard import source_switch

COMPONENT_TYPE = f"{CurationProject.__module__}.{CurationProject.__name__}"
HEADER = (
    '# A curation project, loaded by Dagster (see the README, "Curate your own data").\n'
    "# Written by curation-quickstart; edit it freely: every run, the sensor and the UI read it.\n"
)


def projects_folder() -> Path:
    return state.repository_root() / "curation_assets" / "defs" / "projects"


def definition_path(name: str) -> Path:
    return projects_folder() / name / DEFINITION_FILE


def declared_projects() -> list[str]:
    """The names of the projects declared in this clone, in alphabetical order."""
    return sorted(path.parent.name for path in projects_folder().glob(f"*/{DEFINITION_FILE}"))


def read_attributes(name: str) -> dict:
    return (yaml.safe_load(definition_path(name).read_text(encoding="utf-8")) or {}).get("attributes") or {}


def name_for_source(source: str) -> str:
    """A project name from a source: the file's stem or the Hub dataset's name, in lower case with underscores."""
    stem = Path(source).stem if _is_file(source) else source.rstrip("/").split("/")[-1]
    name = re.sub(r"[^a-z0-9_]+", "_", stem.lower()).strip("_")
    name = name if name and name[0].isalpha() else f"project_{name}"
    return name[:40]


def source_attributes(source: str, split: str | None) -> dict:
    """The `source:` block for a path, a Hub id or the shipped excerpt's name."""
    if source == SHIPPED_EXCERPT:
        return {"shipped": SHIPPED_EXCERPT.split(":", 1)[1]}
    if _is_file(source):
        path = Path(source).expanduser().resolve()
        root = state.repository_root()
        # Inside the clone the path is stored relative to it, so the definition works in any checkout.
        return {"file": str(path.relative_to(root)) if path.is_relative_to(root) else str(path)}
    return {"hub": source, **({"split": split} if split else {})}


def _is_file(source: str) -> bool:
    return Path(source).suffix.lower() in LOCAL_FORMATS or Path(source).expanduser().exists()


@dataclass
class ProjectRequest:
    """What the command line asked to declare; None means "keep what the definition says"."""

    name: str
    source: str | None = None
    split: str | None = None
    column_mapping: dict[str, str] | None = None
    id_column: str | None = None
    categories: list[str] | str | None = None
    annotators: list[str] | str | None = None
    overlap_share: float | None = None
    overlap_annotators: int | None = None
    reviewers: list[str] | None = None
    until_adjudicated: str | None = None
    hub_repo_id: str | None = None
    replace_source: bool = False


@dataclass
class Declaration:
    name: str
    path: Path
    action: str  # "created", "updated" or "unchanged"
    source: str
    changes: list[str] = field(default_factory=list)


class SourceSwitchRefused(RuntimeError):
    """The request would switch a project's source under its annotators; the message says what to do."""


def declare(request: ProjectRequest, dataset_stamps: dict[str, str | None]) -> Declaration:
    """Create or update the project's defs.yaml with the request.

    `dataset_stamps` are the sources the project's Argilla datasets were built from (by
    annotator); a different source is refused unless `replace_source` is set, in which case the
    definition records the old source under `replaces:` and every answer is kept.
    """
    if not PROJECT_NAME.match(request.name):
        raise ValueError(f"project name {request.name!r}: use lower-case letters, digits and _, starting with a letter")
    path = definition_path(request.name)
    existing = read_attributes(request.name) if path.exists() else None
    # A deep copy: the request edits nested blocks (annotation, review, publish), and a change made in `existing` too
    # would compare equal to it below and never be written.
    attributes = copy.deepcopy(existing or {})
    if existing is None and request.source is None:
        raise ValueError(f"there is no project {request.name!r} yet ({path}): give its --source to declare it")

    changes = []
    if request.source is not None:
        new_source = {**source_attributes(request.source, request.split)}
        old_source = dict(attributes.get("source") or {})
        for kept in ("column_mapping", "id_column", "categories"):
            if kept in old_source:
                new_source[kept] = old_source[kept]
        if _origin(old_source) != _origin(new_source):
            new_identity = SourceSettings(**new_source).identity
            switch = source_switch(request.name, new_identity, None, dataset_stamps, _shown(path))
            if switch is not None and not request.replace_source:
                raise SourceSwitchRefused(switch.message("Nothing was changed, so nothing is mixed"))
            if switch is not None:
                new_source["replaces"] = sorted(set(switch.found.values()))[0]
            changes.append(f"source: {new_identity}")
        elif "replaces" in old_source:
            new_source["replaces"] = old_source["replaces"]
        attributes["source"] = new_source
    source = dict(attributes["source"])
    if request.column_mapping is not None:
        source["column_mapping"] = request.column_mapping
        changes.append(f"column_mapping: {request.column_mapping}")
    if request.id_column is not None:
        source["id_column"] = request.id_column
        changes.append(f"id_column: {request.id_column}")
    if request.categories is not None:
        source["categories"] = request.categories
        changes.append(f"categories: {request.categories}")
    attributes["source"] = source
    if request.annotators is not None:
        attributes.setdefault("annotation", {})["annotators"] = request.annotators
        changes.append(f"annotators: {request.annotators}")
    if request.overlap_share is not None:
        attributes.setdefault("annotation", {}).setdefault("overlap", {})["share"] = request.overlap_share
        changes.append(f"annotation.overlap.share: {request.overlap_share}")
    if request.overlap_annotators is not None:
        attributes.setdefault("annotation", {}).setdefault("overlap", {})["annotators_per_record"] = (
            request.overlap_annotators
        )
        changes.append(f"annotation.overlap.annotators_per_record: {request.overlap_annotators}")
    if request.reviewers is not None:
        attributes.setdefault("review", {})["reviewers"] = request.reviewers
        changes.append(f"review.reviewers: {request.reviewers}")
    if request.until_adjudicated is not None:
        attributes.setdefault("review", {})["until_adjudicated"] = request.until_adjudicated
        changes.append(f"review.until_adjudicated: {request.until_adjudicated}")
    if request.hub_repo_id is not None:
        attributes.setdefault("publish", {})["hub_repo_id"] = request.hub_repo_id
        changes.append(f"publish.hub_repo_id: {request.hub_repo_id or '(files only)'}")

    # The same validation Dagster applies when it loads the file: a bad value fails here, not at the next run.
    settings = CurationProject(**attributes)
    if existing is not None and attributes == existing:
        return Declaration(request.name, path, "unchanged", settings.source.identity)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump({"type": COMPONENT_TYPE, "attributes": attributes}, sort_keys=False, allow_unicode=True)
    path.write_text(HEADER + body, encoding="utf-8")
    return Declaration(
        request.name, path, "created" if existing is None else "updated", settings.source.identity, changes
    )


def _origin(source: dict) -> tuple:
    return tuple(source.get(key) for key in ("file", "hub", "split", "shipped"))


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(state.repository_root()))
    except ValueError:
        return str(path)


def parse_column_mapping(text: str) -> dict[str, str]:
    """`prompt=instruction,answer=response` → {"prompt": "instruction", "answer": "response"}."""
    pairs = [pair.strip() for pair in text.split(",") if pair.strip()]
    mapping = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--column-mapping: {pair!r} is not YOUR_COLUMN=OUR_COLUMN (e.g. prompt=instruction)")
        yours, ours = (part.strip() for part in pair.split("=", 1))
        mapping[yours] = ours
    return mapping
