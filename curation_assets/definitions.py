"""Everything Dagster loads: assets in pipeline order, checks, jobs, the sensor, and resources."""

import dagster as dg

from .assets.assignments import annotation_assignments
from .assets.curated import curated_dolly
from .assets.feedback import collected_feedback
from .assets.quality import quality_signals
from .assets.shards import annotator_shards
from .assets.source import raw_dolly
from .assets.statistics import change_statistics
from .checks import argilla_matches_plan, every_record_assigned_exactly_once
from .jobs import assignment_job, refresh_job, shard_job
from .resources import ArgillaResource
from .sensors import annotator_activity_sensor
from .storage import CurationOutputs

defs = dg.Definitions(
    assets=[raw_dolly, quality_signals, annotation_assignments, annotator_shards, collected_feedback, change_statistics, curated_dolly],
    asset_checks=[every_record_assigned_exactly_once, argilla_matches_plan],
    jobs=[assignment_job, shard_job, refresh_job],
    sensors=[annotator_activity_sensor],
    resources={
        "argilla": ArgillaResource(api_url=dg.EnvVar("ARGILLA_API_URL"), api_key=dg.EnvVar("ARGILLA_API_KEY")),
        "outputs": CurationOutputs(),
    },
)
