"""Simulated annotators: they work through their queue over REST, as the web UI does.

For demos and tests only. Every edit they make says so in the text ("[simulated edit]"),
so simulated work can never pass for a person's.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass

from ..argilla_adapter.dataset_settings import REVIEW_VERDICT
from ..logic.inert_display import original_text
from ..logic.quality import remove_citation_markers
from ..logic.review import ACCEPT, DISCARD
from ..logic.vocabulary import QUESTION_FOR_FIELD, ResponseStatus
from .annotator_client import AnnotatorSession, QueuedRecord

INSTRUCTION, INPUT, RESPONSE = (QUESTION_FOR_FIELD[field] for field in ("instruction", "context", "response"))

SIMULATION_MARK = "[simulated edit]"


@dataclass(frozen=True)
class SimulationPlan:
    """Which share of each queue gets answered, and how the answers split between actions."""

    share: float = 0.3
    submit_unchanged: float = 0.4
    submit_edited: float = 0.35
    discard: float = 0.15
    # the rest becomes drafts
    seed: int = 7
    # Mean seconds on a record (0: as fast as the server answers). Each annotator works at a
    # speed of their own around it, so the pace table has people to tell apart.
    seconds_per_record: float = 0.0


def shown_text(record: QueuedRecord, field: str) -> str:
    """The text an annotator reads in a field: the pipeline pushes display copies (logic/inert_display), which an
    annotator's key sees without the marker, so the simulation, run right after the push, decodes them."""
    return original_text(record.fields.get(field) or "")


def simulated_answers(record: QueuedRecord) -> dict[str, str]:
    """An edit a careful annotator might make: citation markers out, tidy whitespace, marked as simulated."""
    instruction = " ".join(shown_text(record, "instruction").split())
    context = remove_citation_markers(shown_text(record, "context")).strip()
    response = f"{' '.join(shown_text(record, 'response').split())} {SIMULATION_MARK}"
    return {INSTRUCTION: instruction, INPUT: context, RESPONSE: response}


def unchanged_answers(record: QueuedRecord) -> dict[str, str]:
    answers = {INSTRUCTION: shown_text(record, "instruction"), RESPONSE: shown_text(record, "response")}
    if shown_text(record, "context"):
        answers[INPUT] = shown_text(record, "context")
    return answers


def choose_action(randomness: random.Random, plan: SimulationPlan) -> str:
    draw = randomness.random()
    for action, weight in (
        ("submit_unchanged", plan.submit_unchanged),
        ("submit_edited", plan.submit_edited),
        ("discard", plan.discard),
    ):
        if draw < weight:
            return action
        draw -= weight
    return "draft"


def simulate_annotator(api_url: str, api_key: str, workspace: str, plan: SimulationPlan, dataset_name: str) -> Counter:
    """Answer `plan.share` of the annotator's pending records; returns how many of each action."""
    randomness = random.Random(f"{plan.seed}:{workspace}")
    own_speed = randomness.uniform(0.5, 1.5)
    actions: Counter = Counter()
    with AnnotatorSession(api_url, api_key) as session:
        dataset_id = session.dataset_id(dataset_name, workspace)
        _, pending_total = session.queue(dataset_id, limit=1)
        budget = round(pending_total * plan.share)
        while budget > 0:
            page, _ = session.queue(dataset_id, limit=min(budget, 50))
            if not page:
                break
            for record in page:
                time.sleep(plan.seconds_per_record * own_speed * randomness.uniform(0.7, 1.3))
                action = choose_action(randomness, plan)
                if action == "submit_unchanged":
                    session.respond(record, ResponseStatus.SUBMITTED, unchanged_answers(record))
                elif action == "submit_edited":
                    session.respond(record, ResponseStatus.SUBMITTED, simulated_answers(record))
                elif action == "discard":
                    session.respond(record, ResponseStatus.DISCARDED)
                else:
                    session.respond(record, ResponseStatus.DRAFT, simulated_answers(record))
                actions[action] += 1
            budget -= len(page)
    return actions


def simulate_reviewer(api_url: str, api_key: str, reviewer: str, dataset_name: str, seed: int = 7) -> Counter:
    """Answer every pending review: mostly publish the pre-filled closest version (marked), sometimes leave the record out."""
    randomness = random.Random(f"{seed}:review:{reviewer}")
    actions: Counter = Counter()
    with AnnotatorSession(api_url, api_key) as session:
        dataset_id = session.dataset_id(dataset_name, reviewer)
        questions = {
            question["id"]: question["name"]
            for question in session.request("GET", f"/api/v1/datasets/{dataset_id}/questions")["items"]
        }
        while True:
            page, _ = session.queue(dataset_id, limit=50)
            if not page:
                return actions
            for record in page:
                prefilled = {
                    questions[question_id]: suggestion["value"]
                    for question_id, suggestion in record.suggestions.items()
                }
                verdict = prefilled.get(REVIEW_VERDICT, ACCEPT)
                if verdict == ACCEPT and randomness.random() < 0.8:
                    answers = {name: value for name, value in prefilled.items() if name != REVIEW_VERDICT}
                    answers[RESPONSE] = f"{answers.get(RESPONSE, '')} {SIMULATION_MARK}".strip()
                    session.respond(record, ResponseStatus.SUBMITTED, {REVIEW_VERDICT: ACCEPT, **answers})
                    actions["accepted"] += 1
                else:
                    session.respond(record, ResponseStatus.SUBMITTED, {REVIEW_VERDICT: DISCARD})
                    actions["left out"] += 1
