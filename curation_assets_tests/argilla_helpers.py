"""Test helpers shared by the server tests: clients and a small tutorial-shaped dataset."""

from __future__ import annotations

import argilla as rg
import httpx

from curation_assets.argilla_adapter.dataset_settings import curation_dataset_settings
from curation_assets.local_argilla.bootstrap import Account

DOLLY_LIKE_ROWS = [
    {
        "id": str(index),
        "category": category,
        "instruction": f"Instruction {index}?",
        "context": context,
        "response": f"Response {index}.",
    }
    for index, (category, context) in enumerate(
        [
            ("open_qa", ""),
            ("closed_qa", "Virgin Australia commenced services on 31 August 2000.[3]"),
            ("brainstorming", ""),
            ("summarization", "A long context about lakes and rivers."),
            ("classification", ""),
            ("information_extraction", "Tomoaki Komorida was born on July 10, 1981."),
        ]
    )
]


def owner_client(server) -> rg.Argilla:
    return rg.Argilla(api_url=server.url, api_key=server.owner_api_key)


def annotator_account(server, username: str) -> Account:
    return next(account for account in server.credentials.annotators if account.username == username)


def create_curation_dataset(client: rg.Argilla, workspace_name: str, annotator: str, dataset_name: str) -> rg.Dataset:
    """A workspace named after the annotator with the tutorial's dataset in it, as the pipeline lays it out."""
    workspace = client.workspaces(workspace_name) or rg.Workspace(name=workspace_name, client=client).create()
    user = client.users(username=annotator)
    if user.username not in [member.username for member in workspace.users]:
        workspace.add_user(user)
    dataset = rg.Dataset(name=dataset_name, workspace=workspace, settings=curation_dataset_settings(), client=client)
    return dataset.create()


def as_records(rows: list[dict]) -> list[rg.Record]:
    """Records with the originals pre-filled as suggestions, so an unchanged submit means "no change"."""
    return [
        rg.Record(
            id=row["id"],
            fields={name: row[name] for name in ("category", "instruction", "context", "response")},
            suggestions=[
                rg.Suggestion("new-instruction", row["instruction"], agent="original"),
                rg.Suggestion("new-response", row["response"], agent="original"),
            ]
            + ([rg.Suggestion("new-input", row["context"], agent="original")] if row["context"] else []),
        )
        for row in rows
    ]


def stored_records(server, dataset_id) -> list[dict]:
    """A dataset's records (up to 100) with their responses, as the owner reads them over REST: raw models, because
    the client crashes on discards without values (see the notes), the API does not."""
    return httpx.get(
        f"{server.url}/api/v1/datasets/{dataset_id}/records",
        headers={"X-Argilla-Api-Key": server.owner_api_key},
        params={"include": "responses", "limit": 100},
    ).json()["items"]
