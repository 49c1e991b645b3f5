"""Quality signals per record: what looks wrong and why, so annotators see those records first."""

import dagster as dg
import numpy as np
import pandas as pd

from ...logic.markdown import markdown_table
from ...logic.quality import compute_quality_signals, flag_counts
from ..jsonl import write_jsonl
from ..project import Project


def build_quality_signals(project: Project) -> dg.AssetsDefinition:
    language = project.settings.quality.language

    @dg.asset(
        key=project.asset_key("quality_signals"),
        ins={"raw_dolly": dg.AssetIn(project.asset_key("raw_dolly"))},
        group_name=project.group,
        kinds={"pandas"},
    )
    def quality_signals(raw_dolly: pd.DataFrame) -> dg.Output[pd.DataFrame]:
        """Per record: flags with reasons (citation markers, whitespace, encoding, copies, short, context, duplicates,
        language), priority and rule-cleaned texts."""
        signals = compute_quality_signals(raw_dolly, language=language)
        # In slices: to_json builds the whole document in memory first (1.2 GiB more at 100,000 records).
        write_jsonl(signals, project.output_folder("quality") / "quality_signals.jsonl", force_ascii=False)
        # The flagged records, highest priority first (ties in record order), found on the priorities alone rather than
        # by copying every flagged row, cleaned texts included, to show ten of them.
        priority = signals["priority"].to_numpy()
        flagged = np.flatnonzero(priority > 0)
        flagged = flagged[np.argsort(-priority[flagged], kind="stable")]
        preview = signals.iloc[flagged[:10]]
        preview = preview.assign(reasons=preview["reasons"].map(lambda reasons: " / ".join(reasons)))
        return dg.Output(
            signals,
            metadata={
                "records": len(signals),
                "records_flagged": len(flagged),
                "records_with_rule_fix": int(signals["fixable"].sum()),
                "flag_counts": dg.MetadataValue.json(flag_counts(signals)),
                "duplicate_groups": int(signals.loc[signals["duplicate_group"] != "", "duplicate_group"].nunique()),
                "preview": dg.MetadataValue.md(
                    markdown_table(preview[["id", "priority", "reasons"]], limit=160)
                    if len(flagged)
                    else "_no record flagged_"
                ),
            },
        )

    return quality_signals
