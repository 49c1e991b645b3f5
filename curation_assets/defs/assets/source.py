"""The source dataset, loaded and validated; bad rows go to a quarantine with their reasons."""

import dagster as dg
import pandas as pd

from ...logic.markdown import markdown_table
from ...logic.source import SourceError, defect_counts, validate_records
from ..project import Project
from ..source_loading import load_source


def build_raw_dolly(project: Project) -> dg.AssetsDefinition:
    source = project.source

    @dg.asset(
        key=project.asset_key("raw_dolly"),
        group_name=project.group,
        kinds={"huggingface", "pandas"},
        check_specs=[dg.AssetCheckSpec("no_quarantined_rows", asset=project.asset_key("raw_dolly"))],
        description=f"The records of {source.identity} (id, instruction, context, response, category) that passed validation.",
        metadata={"source": source.identity, "declared_in": project.where_declared},
    )
    def raw_dolly(context: dg.AssetExecutionContext):
        location = source.location(project.root)
        try:
            loaded = load_source(location, source.split, source.column_mapping, source.id_column, kind=source.kind)
        except SourceError as error:
            # A Failure shows its description as the run's error in the UI, not a stack trace to decode.
            raise dg.Failure(
                description=str(error), metadata={"source": source.identity}, allow_retries=False
            ) from error
        valid, quarantine = validate_records(loaded, source.known_categories)
        quarantine_path = project.output_folder("quarantine") / "raw_dolly_quarantine.jsonl"
        quarantine.to_json(quarantine_path, orient="records", lines=True, force_ascii=False, default_handler=str)
        if valid.empty and len(quarantine):
            # Nothing to curate: a plan from no records would take every unanswered record out of Argilla. The
            # previous materialization stays the one downstream assets use.
            raise dg.Failure(
                description=(
                    f"no valid record in {source.identity}: all {len(quarantine)} row(s) failed validation, e.g. "
                    f"{quarantine['location'].iloc[0]}: {quarantine['reason'].iloc[0]}. Every row and its reason is in "
                    f"{quarantine_path}; fix the source or the project's declaration, then run again"
                ),
                metadata={
                    "source": source.identity,
                    "quarantine_defects": dg.MetadataValue.json(defect_counts(quarantine)),
                },
                allow_retries=False,
            )
        if len(quarantine):
            context.log.warning(
                f"{len(quarantine)} row(s) of {source.identity} quarantined with their reasons in {quarantine_path}"
            )
        defects = dg.MetadataValue.json(defect_counts(quarantine))
        yield dg.Output(
            valid,
            metadata={
                "source": source.identity,
                "ids": _id_origin(source.id_column, loaded),
                "rows_valid": len(valid),
                "rows_quarantined": len(quarantine),
                "quarantine_defects": defects,
                "categories": dg.MetadataValue.json(valid["category"].value_counts().to_dict()),
                "quarantine_file": dg.MetadataValue.path(str(quarantine_path)),
                "preview": dg.MetadataValue.md(markdown_table(valid[["id", "category", "instruction"]])),
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
                "reasons": dg.MetadataValue.md(
                    markdown_table(quarantine[["location", "id", "reason"]]) if len(quarantine) else "none"
                ),
            },
        )

    return raw_dolly


def _id_origin(id_column: str, loaded: pd.DataFrame) -> str:
    if id_column == "derive" or (id_column == "auto" and loaded.attrs.get("ids_derived")):
        return "derived from each record's content (BLAKE2b of category, instruction, context, response)"
    return f"the source's column {'id' if id_column == 'auto' else id_column!r}"
