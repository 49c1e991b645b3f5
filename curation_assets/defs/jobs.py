"""The runs people and the sensor launch."""

import dagster as dg

from .assets.partitions import annotator_partitions

# Source → plan: what the Quickstart materializes first, before shards exist.
assignment_job = dg.define_asset_job(
    "plan_assignments",
    selection=dg.AssetSelection.assets("raw_dolly", "quality_signals", "annotation_assignments"),
    description="Load and validate the source, compute its quality signals, then plan which annotator gets which record.",
)
shard_job = dg.define_asset_job(
    "push_shards",
    selection=dg.AssetSelection.assets("annotator_shards"),
    partitions_def=annotator_partitions,
    description="Push one annotator's share to their Argilla dataset.",
)
refresh_job = dg.define_asset_job(
    "refresh_curation",
    selection=dg.AssetSelection.assets("collected_feedback", "change_statistics", "curated_dolly"),
    description="Collect responses, chart the changes and publish the curated dataset.",
)
