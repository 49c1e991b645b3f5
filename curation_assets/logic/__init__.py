"""Pure curation logic over plain data frames: no Dagster, no Argilla, no network."""
