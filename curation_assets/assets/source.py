"""The source dataset, loaded and validated; bad rows go to a quarantine with their reasons."""


import html

import dagster as dg
import pandas as pd
from pydantic import Field

from ..logic.source import SHIPPED_EXCERPT, SourceError, defect_counts, load_source, validate_records
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
    try:
        loaded = load_source(config.source, config.split, config.column_mapping)
    except SourceError as error:
        # A Failure shows its description as the run's error in the UI, not a stack trace to decode.
        raise dg.Failure(description=str(error), metadata={"source": config.source}, allow_retries=False) from error
    valid, quarantine = validate_records(loaded)
    quarantine_path = outputs.folder("quarantine") / "raw_dolly_quarantine.jsonl"
    quarantine.to_json(quarantine_path, orient="records", lines=True, force_ascii=False, default_handler=str)
    if len(quarantine):
        context.log.warning(f"{len(quarantine)} row(s) of {config.source} quarantined with their reasons in {quarantine_path}")
    defects = dg.MetadataValue.json(defect_counts(quarantine))
    yield dg.Output(
        valid,
        metadata={
            "source": config.source,
            "rows_valid": len(valid),
            "rows_quarantined": len(quarantine),
            "quarantine_defects": defects,
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
            "defects": defects,
            "quarantine_file": dg.MetadataValue.path(str(quarantine_path)),
            "reasons": dg.MetadataValue.md(_preview(quarantine[["location", "id", "reason"]]) if len(quarantine) else "none"),
        },
    )


def _preview(frame: pd.DataFrame, rows: int = 10) -> str:
    """A markdown table of the first rows; source text is escaped so markup in it shows as text in the UI."""
    shortened = frame.head(rows).astype(str).apply(lambda column: column.map(_table_cell))
    return shortened.to_markdown(index=False)


def _table_cell(text: str) -> str:
    one_line = " ".join(text[:80].split())
    return html.escape(one_line).replace("|", "\\|").replace("*", "\\*").replace("_", "\\_").replace("[", "\\[")
