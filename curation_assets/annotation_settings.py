"""The Argilla dataset design of the curation task: fields, questions and guidelines."""

from __future__ import annotations

from pathlib import Path

import argilla as rg

GUIDELINES_PATH = Path(__file__).with_name("guidelines.md")
DATASET_NAME = "curate_dolly"

# Record fields shown to the annotator, in display order, with the tutorial's titles.
FIELD_TITLES = {
    "category": "Task category",
    "instruction": "Instruction",
    "context": "Input",
    "response": "Response",
}
# Each question rewrites one field; "submit unchanged" keeps the original.
QUESTION_FOR_FIELD = {
    "instruction": "new-instruction",
    "context": "new-input",
    "response": "new-response",
}


def load_guidelines(path: Path = GUIDELINES_PATH) -> str:
    return path.read_text(encoding="utf-8")


def curation_dataset_settings(guidelines: str | None = None) -> rg.Settings:
    """Settings of the tutorial's dataset: four text fields and three rewriting questions.

    The fields are markdown fields because that is the one way Argilla 2.8's UI sanitizes a field
    (DOMPurify): as plain text it sets the text as innerHTML, or as an unsandboxed iframe when it
    looks like HTML, so `<img onerror=...>` in a source record would run in the annotator's session.
    """
    return rg.Settings(
        guidelines=guidelines if guidelines is not None else load_guidelines(),
        fields=[
            rg.TextField(name="category", title=FIELD_TITLES["category"], use_markdown=True),
            rg.TextField(name="instruction", title=FIELD_TITLES["instruction"], use_markdown=True),
            rg.TextField(name="context", title=FIELD_TITLES["context"], required=False, use_markdown=True),
            rg.TextField(name="response", title=FIELD_TITLES["response"], use_markdown=True),
        ],
        questions=[
            rg.TextQuestion(
                name="new-instruction",
                title="Final instruction:",
                description="The instruction as it should be. Keep the suggestion if it is already right.",
                required=True,
            ),
            rg.TextQuestion(
                name="new-input",
                title="Final input:",
                description="The input (context) as it should be; leave empty if the task needs none.",
                required=False,
            ),
            rg.TextQuestion(
                name="new-response",
                title="Final response:",
                description="The response as it should be: correct, complete, concise.",
                required=True,
            ),
        ],
    )
