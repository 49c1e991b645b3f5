"""The Argilla dataset design of the curation task: fields, questions and guidelines."""

from __future__ import annotations

from pathlib import Path

import argilla as rg

from ..logic.quality import FLAGS, NO_FLAG
from ..logic.vocabulary import QUESTION_FOR_FIELD

GUIDELINES_PATH = Path(__file__).with_name("guidelines.md")

# Record fields shown to the annotator, in display order, with the tutorial's titles.
FIELD_TITLES = {
    "category": "Task category",
    "instruction": "Instruction",
    "context": "Input",
    "response": "Response",
}
QUALITY_FIELD = "quality_notes"  # why the record was flagged, shown under the record


def load_guidelines(path: Path = GUIDELINES_PATH) -> str:
    return path.read_text(encoding="utf-8")


def quality_metadata_properties() -> list:
    """The quality signals as metadata: filterable and sortable in the UI (sort by priority, descending, to start with the
    worst)."""
    return [
        rg.TermsMetadataProperty(
            "flags", options=[*FLAGS, NO_FLAG], title="Quality flags", visible_for_annotators=True
        ),
        rg.IntegerMetadataProperty(
            "priority", min=0, title="Review priority (higher first)", visible_for_annotators=True
        ),
        rg.IntegerMetadataProperty(
            "duplicate_group_size", min=0, title="Duplicate group size", visible_for_annotators=True
        ),
        rg.TermsMetadataProperty("duplicate_group", title="Duplicate group", visible_for_annotators=True),
        rg.IntegerMetadataProperty("citation_markers", min=0, title="Citation markers", visible_for_annotators=True),
        rg.IntegerMetadataProperty("instruction_words", min=0, title="Instruction words", visible_for_annotators=True),
        rg.IntegerMetadataProperty("context_words", min=0, title="Input words", visible_for_annotators=True),
        rg.IntegerMetadataProperty("response_words", min=0, title="Response words", visible_for_annotators=True),
    ]


def curation_dataset_settings(guidelines: str | None = None) -> rg.Settings:
    """Settings of the tutorial's dataset: four text fields and three rewriting questions, plus the quality signals.

    The fields are plain text fields that hold display copies (logic/inert_display): Argilla 2.8's UI
    renders a field as live HTML, and an escaped value in a plain text field is the one thing it shows as
    text. Extra metadata is allowed for the marker that says a record holds display copies.
    """
    return rg.Settings(
        guidelines=guidelines if guidelines is not None else load_guidelines(),
        fields=[
            rg.TextField(name="category", title=FIELD_TITLES["category"], use_markdown=False),
            rg.TextField(name="instruction", title=FIELD_TITLES["instruction"], use_markdown=False),
            rg.TextField(name="context", title=FIELD_TITLES["context"], required=False, use_markdown=False),
            rg.TextField(name="response", title=FIELD_TITLES["response"], use_markdown=False),
            rg.TextField(name=QUALITY_FIELD, title="Quality flags (automatic)", required=False, use_markdown=False),
        ],
        allow_extra_metadata=True,
        metadata=quality_metadata_properties(),
        questions=[
            rg.TextQuestion(
                name=QUESTION_FOR_FIELD["instruction"],
                title="Final instruction:",
                description="The instruction as it should be. Keep the suggestion if it is already right.",
                required=True,
            ),
            rg.TextQuestion(
                name=QUESTION_FOR_FIELD["context"],
                title="Final input:",
                description="The input (context) as it should be; leave empty if the task needs none.",
                required=False,
            ),
            rg.TextQuestion(
                name=QUESTION_FOR_FIELD["response"],
                title="Final response:",
                description="The response as it should be: correct, complete, concise.",
                required=True,
            ),
        ],
    )


REVIEW_GUIDELINES = """# Reviewing disagreements

Two or more annotators answered each record here and did not agree: one discarded it and another
submitted it, or their final texts differ. The original record and every annotator's version are
shown. The answers below start from the version closest to the others.

- **Verdict**: *publish* the final texts below, or *leave the record out* (it cannot be saved).
- **Final instruction / input / response**: keep the pre-filled version, paste another annotator's,
  or write the text as it should be.

Your answer is what the curated dataset publishes for this record (provenance `adjudicated`).
"""
REVIEW_VERDICT = "verdict"
REVIEW_FIELD_TITLES = {
    "category": "Task category",
    "original": "Original record",
    "versions": "The annotators' versions",
    "reason": "Why this is here",
}


def review_dataset_settings() -> rg.Settings:
    """A reviewer's dataset: the record, every annotator's version, a verdict, and the final texts (plain text fields
    that hold display copies, as in `curation_dataset_settings`)."""
    return rg.Settings(
        guidelines=REVIEW_GUIDELINES,
        fields=[
            rg.TextField(name=name, title=title, use_markdown=False, required=name != "reason")
            for name, title in REVIEW_FIELD_TITLES.items()
        ],
        allow_extra_metadata=True,
        questions=[
            rg.LabelQuestion(
                name=REVIEW_VERDICT,
                title="Verdict",
                labels={"accept": "Publish the final texts below", "discard": "Leave the record out"},
                required=True,
            ),
            # Not required: a reviewer who leaves the record out has no final texts to give.
            rg.TextQuestion(name=QUESTION_FOR_FIELD["instruction"], title="Final instruction:", required=False),
            rg.TextQuestion(name=QUESTION_FOR_FIELD["context"], title="Final input:", required=False),
            rg.TextQuestion(name=QUESTION_FOR_FIELD["response"], title="Final response:", required=False),
        ],
    )


# The names `quality_metadata_properties` declares, for checks that build no SDK object (building one needs a connected
# client); curation_assets_tests/pipeline/test_direct_push.py checks that the two agree.
QUALITY_METADATA_NAMES = (
    "flags",
    "priority",
    "duplicate_group_size",
    "duplicate_group",
    "citation_markers",
    "instruction_words",
    "context_words",
    "response_words",
)
