"""One partition per annotator: each owns a workspace and a dataset in Argilla."""

import dagster as dg

annotator_partitions = dg.DynamicPartitionsDefinition(name="annotators")
