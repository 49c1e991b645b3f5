"""A curation project: one `defs.yaml` declares it, and this component turns it into Dagster definitions.

Everything a run needs to know (the source, the team, the Argilla dataset, where outputs go,
what to publish) lives in the declaration, so the first materialization, the sensor's
re-plans and refreshes and a Materialize click in the UI all curate the same data. Two
projects are two declarations: their asset keys, jobs, sensor, Argilla dataset and outputs
are their own; only the Argilla server may be shared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import dagster as dg
from pydantic import Field, field_validator, model_validator

from .. import state
from ..logic.curation import ReviewPolicy
from ..logic.source import DOLLY_CATEGORIES, SHIPPED_EXCERPT
from ..webhooks.marks import default_marks_dir

PROJECT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DEFINITION_FILE = "defs.yaml"


class SourceSettings(dg.Model):
    """Where the records come from: exactly one of `file`, `hub` or `shipped`."""

    file: str | None = Field(
        default=None, description="A local .jsonl/.json/.parquet/.csv file; relative paths start at the repository root"
    )
    hub: str | None = Field(
        default=None, description="A Hugging Face dataset id, e.g. argilla/databricks-dolly-15k-curated-multilingual"
    )
    split: str = Field(default="train", description="Split of a Hub dataset")
    shipped: Literal["dolly-excerpt"] | None = Field(
        default=None, description="The 37 real Dolly records shipped with the package"
    )
    column_mapping: dict[str, str] = Field(
        default_factory=dict,
        description="Your column → ours (instruction, context, response, category), e.g. {prompt: instruction}",
    )
    categories: Literal["dolly", "any"] | list[str] = Field(
        default="dolly",
        description="The task categories a record may have: Dolly's eight, 'any', or a list of your own",
    )
    id_column: str = Field(
        default="auto",
        description=(
            "The column holding each record's id; 'derive' to derive ids from the record's content; "
            "'auto': the column 'id' if there is one, else derive"
        ),
    )
    replaces: str | None = Field(
        default=None,
        description=(
            "The source this one replaces (as shown by the guard, e.g. 'shipped:dolly-excerpt'): allows the switch "
            "once; every answer is kept, records of the old source nobody answered are withdrawn"
        ),
    )

    @model_validator(mode="after")
    def _exactly_one_origin(self) -> SourceSettings:
        given = [name for name in ("file", "hub", "shipped") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(f"a source needs exactly one of file, hub or shipped; got {given or 'none'}")
        return self

    @property
    def identity(self) -> str:
        """How the source is named in Argilla and in messages: the guard compares these."""
        if self.shipped:
            return f"shipped:{self.shipped}"
        if self.hub:
            return f"hub:{self.hub}@{self.split}"
        return f"file:{self.file}"

    @property
    def kind(self) -> str:
        """ "shipped", "file" or "hub": how the source is read."""
        return "shipped" if self.shipped else "hub" if self.hub else "file"

    @property
    def known_categories(self) -> frozenset[str] | None:
        """The categories validation accepts; None: any."""
        if self.categories == "any":
            return None
        return DOLLY_CATEGORIES if self.categories == "dolly" else frozenset(self.categories)

    def location(self, root: Path) -> str:
        """What the loader reads: the shipped excerpt's name, a Hub id, or the file's absolute path."""
        if self.shipped:
            return SHIPPED_EXCERPT
        if self.hub:
            return self.hub
        path = Path(self.file).expanduser()
        return str(path if path.is_absolute() else root / path)


class WebhookSettings(dg.Model):
    """Argilla's answer webhooks wake the sensor within seconds; polling every 30 s stays the fallback.

    A receiver (`curation-webhooks serve`, started by the Quickstart) checks each delivery's signature
    and leaves a mark per dataset in `marks_dir`; the sensor looks at the marks every few seconds.
    """

    enabled: bool = Field(
        default=True,
        description="Look for webhook marks every few seconds (false: poll Argilla every 30 s only, as without a receiver)",
    )
    marks_dir: str | None = Field(
        default=None,
        description="Where the receiver leaves its marks, as given to `curation-webhooks serve --marks-dir` "
        "(default: .local/webhooks/marks); relative paths start at the repository root",
    )
    receiver_url: str | None = Field(
        default=None,
        description="The URL Argilla posts to, for `curation-webhooks register --project` "
        "(default: the local receiver, http://127.0.0.1:6910/argilla); a remote Argilla needs one it can reach",
    )


class ArgillaSettings(dg.Model):
    """Which Argilla server and dataset; the URL and the owner's API key come from the environment."""

    url_env: str = Field(default="ARGILLA_API_URL", description="Environment variable holding the server's URL")
    api_key_env: str = Field(default="ARGILLA_API_KEY", description="Environment variable holding an owner's API key")
    dataset: str | None = Field(
        default=None, description="Name of each annotator's dataset (default: the project's name)"
    )
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)


class OverlapSettings(dg.Model):
    """A share of the records dealt to several annotators, to measure how much they agree (off by default, as in the
    tutorial)."""

    share: float = Field(default=0.0, description="Share of the records that several annotators get, 0 to 1 (0: none)")
    annotators_per_record: int = Field(
        default=2, description="How many annotators get each of those records (2 or more)"
    )

    @model_validator(mode="after")
    def _sensible(self) -> OverlapSettings:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"overlap share {self.share}: give a share from 0 to 1 (e.g. 0.1 for 10% of the records)")
        if self.annotators_per_record < 2:
            raise ValueError(f"overlap annotators_per_record {self.annotators_per_record}: an overlap needs 2 or more")
        return self


class AnnotationSettings(dg.Model):
    annotators: list[str] | Literal["all"] = Field(
        default="all", description="Annotator usernames, or 'all': every Argilla user with the annotator role"
    )
    seed: int = Field(default=42, description="Seed of the shuffle; the same seed and inputs give the same plan")
    overlap: OverlapSettings = Field(default_factory=OverlapSettings)
    pause_minutes: float = Field(
        default=10.0, description="A gap between an annotator's answers longer than this is a break, not work (pace)"
    )


class ReviewSettings(dg.Model):
    """Who settles records on which annotators disagree, and what the curated dataset takes until they have."""

    reviewers: list[str] = Field(
        default_factory=list, description="Usernames who adjudicate disagreements (none: no review)"
    )
    similarity_threshold: float = Field(
        default=0.8, description="Two submitted versions under this word-level similarity (0 to 1) in a field disagree"
    )
    until_adjudicated: Literal["hold_out", "majority"] = Field(
        default="hold_out", description="A disagreement not adjudicated yet: left out, or the majority's version"
    )


class QualitySettings(dg.Model):
    language: str = Field(
        default="en", description="The dataset's language, for the other-language flag (another code turns it off)"
    )


class PublishSettings(dg.Model):
    hub_repo_id: str = Field(
        default="", description="Hub dataset repo to push the curated dataset to (needs HF_TOKEN); empty: files only"
    )
    private: bool = Field(default=True, description="Create the Hub repo as private")
    license: str = Field(
        default="other", description="The curated dataset's licence, as a Hub licence id (e.g. cc-by-sa-3.0)"
    )
    attribution: str = Field(default="", description="Attribution text for the dataset card (markdown)")
    apply_rule_fixes_to_unannotated: bool = Field(
        default=False,
        description=(
            "Also publish records nobody annotated yet when a safe rule cleaned them (citation markers removed, "
            "whitespace and encoding repaired), with provenance 'rule'. Off: only submitted records are published."
        ),
    )


class CurationProject(dg.Component, dg.Model, dg.Resolvable):
    """A curation project: a source curated by a team in Argilla, then published (one `defs.yaml` each)."""

    name: str | None = Field(
        default=None, description="Prefix of its asset keys, jobs and sensor (default: the folder's name)"
    )
    description: str = Field(default="", description="What is curated and why, shown in the Dagster UI")
    source: SourceSettings
    annotation: AnnotationSettings = Field(default_factory=AnnotationSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    argilla: ArgillaSettings = Field(default_factory=ArgillaSettings)
    quality: QualitySettings = Field(default_factory=QualitySettings)
    publish: PublishSettings = Field(default_factory=PublishSettings)
    output_dir: str | None = Field(default=None, description="Where published files go (default: .local/output/<name>)")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str | None) -> str | None:
        if name is not None and not PROJECT_NAME.match(name):
            raise ValueError(f"project name {name!r}: use lower-case letters, digits and _, starting with a letter")
        return name

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        from .build import build_project_definitions

        project = Project.declared(self, context.path, context.project_root)
        return build_project_definitions(project)


@dataclass(frozen=True)
class Project:
    """A declared project with the names derived from it: what every asset, check, job and sensor of it shares."""

    name: str
    settings: CurationProject
    root: Path
    definition_file: Path | None = None

    @classmethod
    def declared(cls, settings: CurationProject, folder: Path, root: Path) -> Project:
        name = settings.name or folder.name
        if not PROJECT_NAME.match(name):
            raise ValueError(
                f"the project folder {folder} gives the name {name!r}: rename the folder, or set `name:` in its "
                f"{DEFINITION_FILE} (lower-case letters, digits and _, starting with a letter)"
            )
        return cls(name=name, settings=settings, root=root, definition_file=folder / DEFINITION_FILE)

    @classmethod
    def in_code(cls, name: str, root: Path | None = None, **settings) -> Project:
        """A project built in Python (tests, benchmarks): the same settings a defs.yaml holds."""
        return cls(name=name, settings=CurationProject(name=name, **settings), root=root or state.repository_root())

    # -- names in Dagster ----------------------------------------------------------------

    def asset_key(self, asset: str) -> dg.AssetKey:
        return dg.AssetKey([self.name, asset])

    @property
    def group(self) -> str:
        return self.name

    @property
    def argilla_resource_key(self) -> str:
        return f"{self.name}_argilla"

    @property
    def annotator_partitions(self) -> dg.DynamicPartitionsDefinition:
        """One partition per annotator: each owns a workspace and a dataset in Argilla."""
        return dg.DynamicPartitionsDefinition(name=f"{self.name}_annotators")

    @property
    def reviewer_partitions(self) -> dg.DynamicPartitionsDefinition:
        """One partition per reviewer: each owns a review dataset in their workspace."""
        return dg.DynamicPartitionsDefinition(name=f"{self.name}_reviewers")

    def job_name(self, job: str) -> str:
        return f"{self.name}_{job}"

    # -- names and places outside Dagster ------------------------------------------------

    @property
    def dataset_name(self) -> str:
        return self.settings.argilla.dataset or self.name

    @property
    def review_dataset_name(self) -> str:
        return f"{self.dataset_name}_review"

    @property
    def review_policy(self) -> ReviewPolicy:
        review = self.settings.review
        return ReviewPolicy(review.similarity_threshold, review.until_adjudicated)

    @property
    def source(self) -> SourceSettings:
        return self.settings.source

    @property
    def where_declared(self) -> str:
        if self.definition_file is None:
            return f"project {self.name!r} (declared in code)"
        try:
            return str(self.definition_file.relative_to(self.root))
        except ValueError:
            return str(self.definition_file)

    @property
    def webhook_marks_dir(self) -> Path | None:
        """Where the sensor reads the webhook receiver's marks; None when the project polls only."""
        webhooks = self.settings.argilla.webhooks
        if not webhooks.enabled:
            return None
        if not webhooks.marks_dir:
            return default_marks_dir()
        folder = Path(webhooks.marks_dir).expanduser()
        return folder if folder.is_absolute() else self.root / folder

    def output_folder(self, name: str) -> Path:
        """A folder of this project's published files, created on first use (resolved when a run writes)."""
        configured = self.settings.output_dir
        if configured:
            base = Path(configured).expanduser()
            base = base if base.is_absolute() else self.root / base
        else:
            base = state.project_output_dir(self.name)
        folder = base / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder
