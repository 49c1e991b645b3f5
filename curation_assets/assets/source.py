"""The source dataset, loaded and validated; bad rows go to a quarantine with their reasons."""


import dagster as dg
import pandas as pd
from pydantic import Field

from ..logic.source import SHIPPED_EXCERPT, load_source, validate_records
from ..storage import CurationOutputs


class DollySourceConfig(dg.Config):
    source: str = Field(
        default=SHIPPED_EXCERPT,
        description=(
            "A Hugging Face dataset id (e.g. argilla/databricks-dolly-15k-curated-multilingual), a local "
            f".jsonl/.json/.parquet/.csv path, or {SHIPPED_EXCERPT!r} for the 37 real Dolly records shipped with the package"
        ),
    )
    split: str = Field(default="en", description="Split of a Hub dataset")
    column_mapping: dict[str, str] = Field(default_factory=dict, description="Your column → ours, e.g. {'prompt': 'instruction'}")


@dg.asset(
    group_name="source",
    kinds={"huggingface", "pandas"},
    check_specs=[dg.AssetCheckSpec("no_quarantined_rows", asset="raw_dolly")],
)
def raw_dolly(context: dg.AssetExecutionContext, config: DollySourceConfig, outputs: CurationOutputs):
    """Dolly records (id, instruction, context, response, category) that passed validation."""
    valid, quarantine = validate_records(load_source(config.source, config.split, config.column_mapping))
    quarantine_path = outputs.folder("quarantine") / "raw_dolly_quarantine.jsonl"
    quarantine.to_json(quarantine_path, orient="records", lines=True, force_ascii=False, default_handler=str)
    yield dg.Output(
        valid,
        metadata={
            "source": config.source,
            "rows_valid": len(valid),
            "rows_quarantined": len(quarantine),
            "categories": dg.MetadataValue.json(valid["category"].value_counts().to_dict()),
            "quarantine_file": dg.MetadataValue.path(str(quarantine_path)),
            "preview": dg.MetadataValue.md(_preview(valid[["id", "category", "instruction"]])),
        },
    )
    yield dg.AssetCheckResult(
        check_name="no_quarantined_rows",
        passed=quarantine.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description="Rows that failed validation are kept aside, with the reason, instead of being pushed to annotators.",
        metadata={
            "rows_quarantined": len(quarantine),
            "reasons": dg.MetadataValue.md(_preview(quarantine[["id", "reason"]]) if len(quarantine) else "none"),
        },
    )


def _preview(frame: pd.DataFrame, rows: int = 10) -> str:
    shortened = frame.head(rows).astype(str).apply(lambda column: column.str.slice(0, 80))
    return shortened.to_markdown(index=False)
