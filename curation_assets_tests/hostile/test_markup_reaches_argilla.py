"""Markup and script text in the source reaches Argilla as text, byte-identical, and stays inert in the UI."""

import httpx
import pytest

from curation_assets.argilla_adapter.client import ArgillaClient
from curation_assets.argilla_adapter.dataset_settings import curation_dataset_settings
from curation_assets.argilla_adapter.mapping import feedback_rows, to_argilla_records
from curation_assets.argilla_adapter.rest import Connection
from curation_assets.defs.source_loading import load_source
from curation_assets.logic.source import validate_records
from curation_assets.quickstart.annotator_client import AnnotatorSession
from curation_assets_tests.argilla_helpers import annotator_account
from curation_assets_tests.hostile.corpus import MARKUP_TEXTS, good_row, write

DATASET = "hostile_markup"
ANNOTATOR = "chen"
# A payload that leaves a trace if it ever runs, besides the alert() calls a dialog listener catches.
TRACE_PAYLOAD = '<img src="x" onerror="window.__markup_ran = 1"><script>window.__markup_ran = 2</script>'
TEXTS = [*MARKUP_TEXTS, TRACE_PAYLOAD]
# Control characters a browser would not show as typed: checked over REST only.
CONTROL_TEXTS = ["nul \x00 bell \x07 escape \x1b[31m red", "line\u2028separator\r\nand CRLF"]


def push_markup_rows(argilla_server, folder, dataset_name, texts):
    """The markup rows pushed the pipeline's way: file → loader → validation → Argilla records → upsert."""
    rows = [
        {**good_row(index), "instruction": text, "context": text, "response": text} for index, text in enumerate(texts)
    ]
    source = write(rows, folder / "markup.jsonl")
    valid, quarantine = validate_records(load_source(str(source)))
    assert quarantine.empty and len(valid) == len(texts)
    argilla = ArgillaClient(Connection(argilla_server.url, argilla_server.owner_api_key))
    dataset = argilla.ensure_annotator_dataset(ANNOTATOR, dataset_name, curation_dataset_settings)
    argilla.upsert_records(dataset, to_argilla_records(valid))
    return argilla, dataset.id, {row["id"]: row for row in rows}


@pytest.fixture(scope="module")
def markup_dataset(argilla_server, tmp_path_factory):
    return push_markup_rows(argilla_server, tmp_path_factory.mktemp("markup"), DATASET, TEXTS + CONTROL_TEXTS)


def test_markup_is_stored_and_served_byte_identical(argilla_server, markup_dataset):
    argilla, dataset_id, sent = markup_dataset
    stored = list(argilla.iter_records(dataset_id, include=("responses", "suggestions")))
    assert sorted(record["external_id"] for record in stored) == sorted(sent)
    questions = {
        q["id"]: q["name"] for q in argilla.request("GET", f"/api/v1/datasets/{dataset_id}/questions")["items"]
    }
    for record in stored:
        original = sent[record["external_id"]]
        for field in ("instruction", "context", "response"):
            assert record["fields"][field] == original[field], "owner REST returns the exact text"
        suggested = {questions[s["question_id"]]: s["value"] for s in record["suggestions"]}
        assert suggested == {
            "new-instruction": original["instruction"],
            "new-input": original["context"],
            "new-response": original["response"],
        }

    # The annotator's view (the UI's own endpoint) and an answer written back carry the same bytes.
    chen = annotator_account(argilla_server, ANNOTATOR)
    with AnnotatorSession(argilla_server.url, chen.api_key) as session:
        queue, total = session.queue(dataset_id, limit=50)
        assert total == len(TEXTS + CONTROL_TEXTS)
        for queued in queue:
            assert queued.fields["response"] == sent[queued.external_id]["response"]
        first = queue[0]
        text = sent[first.external_id]["response"]
        session.respond(
            first, "submitted", {"new-instruction": text, "new-input": text, "new-response": text + " edited"}
        )

    owner = {"X-Argilla-Api-Key": argilla_server.owner_api_key}
    raw = httpx.get(
        f"{argilla_server.url}/api/v1/records/{first.id}", headers=owner, params={"include": "responses"}
    ).json()
    (row,) = feedback_rows([raw], ANNOTATOR, {})
    assert (row["new_instruction"], row["new_input"], row["new_response"]) == (text, text, text + " edited")


# After the page settles: did anything run, and did any element with an event handler or a script
# from the records get into the page or into an iframe of it?
INJECTION_PROBE = """() => {
  const documents = [document, ...[...document.querySelectorAll('iframe')].map(f => f.contentDocument).filter(Boolean)];
  const elements = documents.flatMap(d => [...d.querySelectorAll('*')]);
  return {
    ran: window.__markup_ran || 0,
    handlers: elements.filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).map(e => e.outerHTML.slice(0, 80)),
    scripts: elements.filter(e => e.tagName === 'SCRIPT' && /alert|__markup_ran/.test(e.textContent)).length,
    javascript_links: elements.filter(e => (e.getAttribute('href') || '').startsWith('javascript:')).length,
  };
}"""


@pytest.mark.browser
def test_markup_stays_inert_in_the_annotation_ui(argilla_server, tmp_path, artifacts_dir):
    from curation_assets_tests.browser import headless_page

    _, dataset_id, _ = push_markup_rows(argilla_server, tmp_path, f"{DATASET}_ui", TEXTS)
    chen = annotator_account(argilla_server, ANNOTATOR)
    dialogs, findings = [], []
    with headless_page() as page:
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(f"{argilla_server.url}/sign-in")
        page.locator("input[type=text]").first.fill(ANNOTATOR)
        page.locator("input[type=password]").fill(chen.password)
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "sign-in" not in url, timeout=30_000)
        page.goto(f"{argilla_server.url}/dataset/{dataset_id}/annotation-mode")
        for page_number in range(1, len(TEXTS) + 1):
            if page_number > 1:
                page.locator(".pagination__button").last.click()
            current = page.locator("[aria-label='Current Record']")
            page.wait_for_function("n => document.querySelector(\"[aria-label='Current Record']\")?.textContent.trim() === String(n)",
                                   arg=page_number, timeout=30_000)  # fmt: skip
            page.wait_for_timeout(500)  # time for an injected onerror handler to fire
            # The annotator edits the exact text: the answer boxes hold it literally, angle brackets and all.
            assert page.locator("[contenteditable=true]").last.inner_text() == TEXTS[page_number - 1], (
                current.inner_text()
            )
            findings.append(page.evaluate(INJECTION_PROBE))
        page.screenshot(path=artifacts_dir / "argilla_markup_inert.png")
    assert dialogs == [], "no alert() ran"
    assert findings == [{"ran": 0, "handlers": [], "scripts": 0, "javascript_links": 0}] * len(TEXTS)


def test_annotator_shards_switches_a_dataset_made_with_plain_text_fields_to_sanitized_display(argilla_server, tmp_path):
    """A dataset an earlier version made with plain text fields (markup ran in the UI), with an answered markup
    record in it: the next run of annotator_shards itself switches every field to sanitized display."""
    import dagster as dg

    from curation_assets_tests.harness import PLAN, ProjectOnServer
    from curation_assets_tests.reliability.harness import submit

    def unsafe_settings():
        settings = curation_dataset_settings()
        for field in settings.fields:
            field.use_markdown = False
        return settings

    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        pipeline = ProjectOnServer(
            argilla_server, instance, tmp_path, name="sanitize_upgrade", annotation={"annotators": [ANNOTATOR]}
        )
        argilla = pipeline.argilla
        for dataset in pipeline.datasets().values():
            argilla.delete_dataset(dataset)
        old = argilla.ensure_annotator_dataset(ANNOTATOR, pipeline.dataset_name, unsafe_settings)
        excerpt = load_source("shipped:dolly-excerpt").head(2).assign(instruction=[TRACE_PAYLOAD, MARKUP_TEXTS[0]])
        argilla.upsert_records(old, to_argilla_records(excerpt))
        assert not any(
            field["settings"]["use_markdown"]
            for field in argilla.request("GET", f"/api/v1/datasets/{old.id}/fields")["items"]
        )
        submit(pipeline, ANNOTATOR, [excerpt["id"].iloc[0]], mark="(answered while the fields were plain text)")

        pipeline.materialize(PLAN)
        upgraded = pipeline.materialize(["annotator_shards"], partition_key=ANNOTATOR)
        fields = argilla.request("GET", f"/api/v1/datasets/{old.id}/fields")["items"]
        assert {field["name"]: field["settings"]["use_markdown"] for field in fields} == {
            field.name: True for field in curation_dataset_settings().fields
        }
        warnings = [
            entry.user_message for entry in instance.all_logs(upgraded.run_id) if "unsanitized" in entry.user_message
        ]
        assert len(warnings) == 1 and "now markdown (sanitized)" in warnings[0] and "'instruction'" in warnings[0], (
            warnings
        )
        stored = {record["external_id"]: record for record in argilla.iter_records(old.id)}
        assert stored[excerpt["id"].iloc[0]]["fields"]["instruction"] == TRACE_PAYLOAD, "the text itself is untouched"
        assert stored[excerpt["id"].iloc[0]]["responses"], "and its answer kept"

        # The next push finds nothing left to switch.
        again = pipeline.materialize(["annotator_shards"], partition_key=ANNOTATOR)
        assert not [entry for entry in instance.all_logs(again.run_id) if "unsanitized" in entry.user_message]
        argilla.delete_dataset(pipeline.datasets()[ANNOTATOR])
