"""A declared project's definitions: its assets in pipeline order, checks, jobs, sensor and Argilla resource."""

import dagster as dg

from .assets.agreement import build_annotator_agreement
from .assets.assignments import build_annotation_assignments
from .assets.curated import build_curated_dolly
from .assets.feedback import build_collected_feedback
from .assets.pace import build_annotator_pace
from .assets.quality import build_quality_signals
from .assets.review import build_collected_reviews, build_review_queue, build_review_shards
from .assets.shards import build_annotator_shards
from .assets.source import build_raw_dolly
from .assets.statistics import build_change_statistics
from .checks import build_checks
from .jobs import build_jobs
from .project import Project
from .resources import ArgillaResource
from .sensors import build_activity_sensor

# The pipeline, in order: each builder makes one asset of a project.
ASSET_BUILDERS = (
    build_raw_dolly,
    build_quality_signals,
    build_annotation_assignments,
    build_annotator_shards,
    build_collected_feedback,
    build_change_statistics,
    build_annotator_agreement,
    build_annotator_pace,
    build_review_queue,
    build_review_shards,
    build_collected_reviews,
    build_curated_dolly,
)
ASSET_NAMES = tuple(builder.__name__.removeprefix("build_") for builder in ASSET_BUILDERS)


def argilla_resource_from_environment(project: Project) -> ArgillaResource:
    """The project's Argilla, its URL and owner key read from the environment variables the project names."""
    settings = project.settings.argilla
    return ArgillaResource(api_url=dg.EnvVar(settings.url_env), api_key=dg.EnvVar(settings.api_key_env))


def build_project_definitions(project: Project, argilla: ArgillaResource | None = None) -> dg.Definitions:
    jobs = build_jobs(project)
    return dg.Definitions(
        assets=[build(project) for build in ASSET_BUILDERS],
        asset_checks=build_checks(project),
        jobs=jobs.all(),
        sensors=[build_activity_sensor(project, jobs)],
        resources={project.argilla_resource_key: argilla or argilla_resource_from_environment(project)},
    )
