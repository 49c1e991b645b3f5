"""Quality signals per record: what looks wrong and why, so annotators see those records first."""


import dagster as dg
import pandas as pd
from pydantic import Field

from ..logic.quality import LANGUAGE_STOPWORDS, compute_quality_signals, flag_counts
from ..storage import CurationOutputs


class QualitySignalsConfig(dg.Config):
    language: str = Field(
        default="en",
        description=f"The dataset's language, for the other-language flag ({', '.join(sorted(LANGUAGE_STOPWORDS))}; any other code turns the flag off)",
    )


@dg.asset(group_name="annotation", kinds={"pandas"})
def quality_signals(config: QualitySignalsConfig, raw_dolly: pd.DataFrame, outputs: CurationOutputs) -> dg.Output[pd.DataFrame]:
    """Per record: flags with reasons (citation markers, whitespace, encoding, copies, short, context, duplicates, language), priority and rule-cleaned texts."""
    signals = compute_quality_signals(raw_dolly, language=config.language)
    signals.to_json(
        outputs.folder("quality") / "quality_signals.jsonl", orient="records", lines=True, force_ascii=False
    )
    flagged = signals[signals["priority"] > 0].sort_values("priority", ascending=False, kind="stable")
    preview = flagged.head(10).assign(reasons=flagged["reasons"].map(lambda reasons: " / ".join(reasons)[:160]))
    return dg.Output(
        signals,
        metadata={
            "records": len(signals),
            "records_flagged": len(flagged),
            "records_with_rule_fix": int(signals["fixable"].sum()),
            "flag_counts": dg.MetadataValue.json(flag_counts(signals)),
            "duplicate_groups": int(signals.loc[signals["duplicate_group"] != "", "duplicate_group"].nunique()),
            "preview": dg.MetadataValue.md(
                preview[["id", "priority", "reasons"]].to_markdown(index=False) if len(flagged) else "_no record flagged_"
            ),
        },
    )
