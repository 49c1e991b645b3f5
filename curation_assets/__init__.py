"""Curate an instruction dataset for supervised fine-tuning with Argilla, as Dagster assets."""
