"""A real annotator in a real browser: sign in, open the dataset, edit the response, submit."""

import httpx
import pytest

from curation_assets_tests.argilla_helpers import (
    DOLLY_LIKE_ROWS,
    annotator_account,
    as_records,
    create_curation_dataset,
    owner_client,
    stored_records,
)
from curation_assets_tests.browser import headless_page

pytestmark = pytest.mark.browser


def test_annotator_edits_and_submits_in_the_web_ui(argilla_server, artifacts_dir):
    dataset = create_curation_dataset(owner_client(argilla_server), "bruno", "bruno", "browser_submit")
    dataset.records.log(as_records(DOLLY_LIKE_ROWS))
    bruno = annotator_account(argilla_server, "bruno")
    edited = "Response 0, rewritten in the browser."

    with headless_page() as page:
        page.goto(f"{argilla_server.url}/sign-in")
        page.locator("input[type=text]").first.fill("bruno")
        page.locator("input[type=password]").fill(bruno.password)
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url: "sign-in" not in url, timeout=30_000)
        page.screenshot(path=artifacts_dir / "argilla_signed_in.png")

        page.goto(f"{argilla_server.url}/dataset/{dataset.id}/annotation-mode")
        response_answer = page.locator("[contenteditable=true]", has_text="Response 0.")
        response_answer.wait_for(timeout=30_000)
        response_answer.click()
        page.keyboard.press("Control+A")
        page.keyboard.type(edited)
        page.screenshot(path=artifacts_dir / "argilla_before_submit.png")
        page.get_by_role("button", name="Submit").click()
        page.get_by_text("Response 1.").first.wait_for(timeout=30_000)
        page.screenshot(path=artifacts_dir / "argilla_after_submit.png")

    records = stored_records(argilla_server, dataset.id)
    (first,) = [record for record in records if record["external_id"] == "0"]
    (response,) = first["responses"]
    assert response["status"] == "submitted"
    assert (
        response["user_id"]
        == httpx.get(f"{argilla_server.url}/api/v1/me", headers={"X-Argilla-Api-Key": bruno.api_key}).json()["id"]
    )
    assert response["values"]["new-response"]["value"] == edited
    assert response["values"]["new-instruction"]["value"] == "Instruction 0?", (
        "untouched suggestions are submitted as they are"
    )
