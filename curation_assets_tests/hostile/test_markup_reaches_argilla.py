"""Markup and script text in the source reaches Argilla as text: annotators see escaped display copies that Argilla's
UI shows as text, and every text the pipeline reads (fields read back, suggestions, answers) is byte-identical."""

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from curation_assets.argilla_adapter.client import ArgillaClient
from curation_assets.argilla_adapter.dataset_settings import curation_dataset_settings
from curation_assets.argilla_adapter.mapping import feedback_rows, to_argilla_records
from curation_assets.argilla_adapter.rest import Connection
from curation_assets.defs.source_loading import load_source
from curation_assets.logic.inert_display import DISPLAY_MARKER, display_copy, exact_fields, original_text
from curation_assets.logic.source import validate_records
from curation_assets.quickstart.annotator_client import AnnotatorSession
from curation_assets_tests.argilla_helpers import annotator_account
from curation_assets_tests.hostile.corpus import (
    MARKUP_TEXTS,
    SCRIPT_PAYLOADS,
    TAKEOVER_TOKEN,
    good_row,
    takeover_payloads,
    write,
)

DATASET = "hostile_markup"
ANNOTATOR = "chen"
# Control characters a browser would not show as typed: checked over REST only.
CONTROL_TEXTS = ["nul \x00 bell \x07 escape \x1b[31m red", "line\u2028separator\r\nand CRLF"]
QUESTIONS = {"new-instruction": "instruction", "new-input": "context", "new-response": "response"}


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


def test_markup_reaches_argilla_as_display_copies_and_every_text_read_back_is_exact(argilla_server, tmp_path):
    texts = [*MARKUP_TEXTS, *SCRIPT_PAYLOADS, *takeover_payloads("http://127.0.0.1:9"), *CONTROL_TEXTS]
    argilla, dataset_id, sent = push_markup_rows(argilla_server, tmp_path, DATASET, texts)
    stored = list(argilla.iter_records(dataset_id, include=("responses", "suggestions")))
    assert sorted(record["external_id"] for record in stored) == sorted(sent)
    questions = {
        q["id"]: q["name"] for q in argilla.request("GET", f"/api/v1/datasets/{dataset_id}/questions")["items"]
    }
    for record in stored:
        original = sent[record["external_id"]]
        assert record["metadata"] == DISPLAY_MARKER
        for field in QUESTIONS.values():
            assert record["fields"][field] == display_copy(original[field]), "the field holds the display copy"
            assert "<" not in record["fields"][field]
            assert exact_fields(record)[field] == original[field], "and the pipeline reads the exact text from it"
        suggested = {questions[s["question_id"]]: s["value"] for s in record["suggestions"]}
        assert suggested == {question: original[field] for question, field in QUESTIONS.items()}, "exact suggestions"

    # The annotator's view (the UI's own endpoint): display copies, exact suggestions; an answer comes back exact.
    chen = annotator_account(argilla_server, ANNOTATOR)
    with AnnotatorSession(argilla_server.url, chen.api_key) as session:
        queue, total = session.queue(dataset_id, limit=50)
        assert total == len(texts)
        for queued in queue:
            text = sent[queued.external_id]["response"]
            assert queued.fields["response"] == display_copy(text) and original_text(queued.fields["response"]) == text
            assert {questions[q]: s["value"] for q, s in queued.suggestions.items()}["new-response"] == text
        # The UI's text search finds what the annotator sees: `<img` matches the display copy `&lt;img`.
        found = session.request(
            "POST", f"/api/v1/me/datasets/{dataset_id}/records/search", json={"query": {"text": {"q": "<img onerror"}}}
        )
        expected = {
            record_id
            for record_id, row in sent.items()
            if "<img" in row["response"].lower() and "onerror" in row["response"].lower()
        }
        assert expected and {item["record"]["external_id"] for item in found["items"]} == expected
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
    assert (row["instruction"], row["context"], row["response"]) == (text, text, text), "originals read back exact"


@contextmanager
def loopback_listener():
    """An HTTP server on a free loopback port that records every request it gets (path and Referer)."""
    requests = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append((self.path, self.headers.get("Referer")))
            self.send_response(204)
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


# Once a record is shown and its handlers had time to fire: is any field's content more than text, did any element of
# a payload get into the page (or an iframe), did any script run, did the page's look change?
INJECTION_PROBE = """(token) => {
  const documents = [document, ...[...document.querySelectorAll('iframe')].map(f => f.contentDocument).filter(Boolean)];
  const elements = documents.flatMap(d => [...d.querySelectorAll('*')]);
  const shown = [...document.querySelectorAll('.content-area')].map(area => area.firstElementChild);
  return {
    elements_in_fields: shown.flatMap(div => [...div.querySelectorAll('*')]).map(e => e.outerHTML.slice(0, 80)),
    field_texts: shown.map(div => div.textContent),
    payload_elements: elements.filter(e => [...e.attributes].some(a => a.value.includes(token))
                                           || (e.tagName === 'STYLE' && e.textContent.includes(token)))
                              .map(e => e.outerHTML.slice(0, 80)),
    forms: elements.filter(e => e.matches('form:not(.questions-form), input[type=password], iframe, object, embed, video, audio'))
                   .map(e => e.outerHTML.slice(0, 120)),
    handlers: elements.filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).map(e => e.outerHTML.slice(0, 80)),
    javascript_links: elements.filter(e => /^\\s*javascript:/i.test(e.getAttribute('href') || '')).length,
    body_background: getComputedStyle(document.body).backgroundColor,
  };
}"""


@pytest.mark.browser
def test_markup_stays_inert_in_the_annotation_ui(argilla_server, tmp_path, artifacts_dir):
    """Forms with password boxes, style sheets, overlays, remote images (HTML, markdown, CSS) and 15 script payloads,
    each in a record's fields: the annotator sees them as text, nothing becomes an element, nothing is fetched, no
    script runs, and the annotator submits every record through the UI, answers byte-identical to the source."""
    from curation_assets_tests.browser import headless_page

    with loopback_listener() as (origin, fetched):
        texts = [*SCRIPT_PAYLOADS, *takeover_payloads(origin), *MARKUP_TEXTS[3:]]
        _, dataset_id, sent = push_markup_rows(argilla_server, tmp_path, f"{DATASET}_ui", texts)
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
            unstyled = None
            for number, text in enumerate(texts):
                # The queue lists records in the order pushed; the second field shown is the instruction.
                page.wait_for_function(
                    "text => document.querySelectorAll('.content-area')[1]?.firstElementChild?.textContent === text",
                    arg=text,
                    timeout=30_000,
                )
                page.wait_for_timeout(300)  # time for an injected handler, style or image to take effect
                finding = page.evaluate(INJECTION_PROBE, TAKEOVER_TOKEN)
                unstyled = unstyled or finding["body_background"]
                findings.append(finding)
                if TAKEOVER_TOKEN in text and "fixed" in text:
                    page.screenshot(path=artifacts_dir / "argilla_markup_inert_overlay.png")
                # The annotator edits the exact text: the answer box holds it literally, angle brackets and all.
                assert page.locator("[contenteditable=true]").last.inner_text() == text, number
                # Usable: nothing covers the button (Playwright clicks only what would receive the click).
                page.get_by_role("button", name="Submit").click(timeout=10_000)
            page.wait_for_function(
                "() => !document.querySelector('.content-area')", timeout=30_000
            )  # the queue is empty
            page.screenshot(path=artifacts_dir / "argilla_markup_inert_done.png")

        assert dialogs == [], "no script ran"
        assert fetched == [], "nothing was fetched from another host"
    for text, finding in zip(texts, findings):
        assert finding == {
            "elements_in_fields": [],
            "field_texts": [finding["field_texts"][0], text, text, text],
            "payload_elements": [],
            "forms": [],
            "handlers": [],
            "javascript_links": 0,
            "body_background": unstyled,
        }, text
    assert unstyled != "rgb(255, 0, 0)"

    # Every record was submitted through the UI with the pre-filled answers: byte-identical to the source.
    owner = ArgillaClient(Connection(argilla_server.url, argilla_server.owner_api_key))
    rows = feedback_rows(list(owner.iter_records(dataset_id)), ANNOTATOR, {})
    assert {row["status"] for row in rows} == {"submitted"} and len(rows) == len(texts)
    for row in rows:
        original = sent[row["record_id"]]
        assert (row["new_instruction"], row["new_input"], row["new_response"]) == (
            original["instruction"],
            original["context"],
            original["response"],
        )


def test_annotator_shards_gives_display_copies_to_a_dataset_made_before_them(argilla_server, tmp_path):
    """A dataset an earlier version made (markdown fields, raw text, no marker), with an answered markup record in
    it: the next run of annotator_shards itself rewrites every record as display copies, keeps the answer, and then
    switches the fields to plain text; what the pipeline reads stays byte-identical."""
    import argilla as rg
    import dagster as dg

    from curation_assets.argilla_adapter.mapping import suggestions_for
    from curation_assets.logic.vocabulary import TEXT_FIELDS
    from curation_assets_tests.harness import PLAN, ProjectOnServer
    from curation_assets_tests.reliability.harness import submit

    def earlier_settings():
        settings = curation_dataset_settings()
        for field in settings.fields:
            field.use_markdown = True
        settings.allow_extra_metadata = False
        return settings

    def earlier_records(frame):
        """As an earlier version pushed them: the raw text in the fields, the originals suggested, no marker."""
        return [
            rg.Record(
                id=row["id"], fields={name: row[name] for name in TEXT_FIELDS}, suggestions=suggestions_for(row, None)
            )
            for row in frame.to_dict("records")
        ]

    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        pipeline = ProjectOnServer(
            argilla_server, instance, tmp_path, name="display_upgrade", annotation={"annotators": [ANNOTATOR]}
        )
        argilla = pipeline.argilla
        for dataset in pipeline.datasets().values():
            argilla.delete_dataset(dataset)
        old = argilla.ensure_annotator_dataset(ANNOTATOR, pipeline.dataset_name, earlier_settings)
        excerpt = load_source("shipped:dolly-excerpt").head(2).assign(instruction=[SCRIPT_PAYLOADS[1], MARKUP_TEXTS[3]])
        argilla.upsert_records(old, earlier_records(excerpt))
        assert argilla.markdown_fields(old)
        answered_id = excerpt["id"].iloc[0]
        sent = submit(pipeline, ANNOTATOR, [answered_id], mark="(answered before display copies)")
        assert sent[answered_id]["new-instruction"] == f"{SCRIPT_PAYLOADS[1]} (answered before display copies)"

        pipeline.materialize(PLAN)
        upgraded = pipeline.materialize(["annotator_shards"], partition_key=ANNOTATOR)
        assert argilla.markdown_fields(old) == [], "every field is plain text now"
        warnings = [
            entry.user_message for entry in instance.all_logs(upgraded.run_id) if "live HTML" in entry.user_message
        ]
        assert len(warnings) == 1 and "1 answered record(s) held raw text" in warnings[0], warnings
        stored = {
            record["external_id"]: record
            for record in argilla.iter_records(old.id, include=("responses", "suggestions"))
        }
        assert all(record["metadata"].get("field_display") == "escaped-html" for record in stored.values())
        answered = stored[answered_id]
        assert answered["fields"]["instruction"] == display_copy(SCRIPT_PAYLOADS[1])
        assert exact_fields(answered)["instruction"] == SCRIPT_PAYLOADS[1], "the text itself is untouched"
        assert [response["values"]["new-instruction"]["value"] for response in answered["responses"]] == [
            sent[answered_id]["new-instruction"]
        ], "and its answer kept"
        pushed = suggestions_for(excerpt.iloc[0].to_dict(), None)
        assert sorted(s["value"] for s in answered["suggestions"]) == sorted(s.value for s in pushed), "and suggestions"
        (row,) = [row for row in feedback_rows([answered], ANNOTATOR, {}) if row["status"] == "submitted"]
        assert row["instruction"] == SCRIPT_PAYLOADS[1]

        # The next push finds nothing left to do.
        again = pipeline.materialize(["annotator_shards"], partition_key=ANNOTATOR)
        assert not [entry for entry in instance.all_logs(again.run_id) if "live HTML" in entry.user_message]
        assert (
            again.asset_materializations_for_node(f"{pipeline.name}__annotator_shards")[0]
            .metadata["skipped_unchanged_since_last_push"]
            .value
        )
        argilla.delete_dataset(pipeline.datasets()[ANNOTATOR])
