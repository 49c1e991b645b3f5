"""The Hub branch of `curated_dolly`, run up to the network boundary: a local server stands in for the Hugging Face
Hub (HF_ENDPOINT), and what `huggingface_hub` sends it is checked (the repo, the records, the card).

Pushing to the real Hub is not tested here (it is unreachable from CI). `huggingface_hub` reads HF_ENDPOINT when
it is imported, so each push runs in a process of its own.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import dagster as dg
import pandas as pd
import pytest
import yaml

from curation_assets import state
from curation_assets.logic.curation import CURATED_COLUMNS, dataset_card, size_category
from curation_assets_tests.fake_hub import FakeHub
from curation_assets_tests.harness import PLAN, REFRESH, ProjectOnServer
from curation_assets_tests.reliability.harness import delete_curation_datasets, submit

pytestmark = pytest.mark.server
TOKEN = "hf_token_of_the_test_only"
REPO = "curators/dolly-curated"
SHARD = "data/train-00000-of-00001.parquet"
PROJECT = dict(name="hub_publish", annotation={"annotators": ["ana", "bruno"]})

CURATED_DOLLY_WITH_A_HUB_REPO = """
import json, sys
from pathlib import Path
from types import SimpleNamespace

import dagster as dg

from curation_assets_tests.harness import ProjectOnServer, metadata_of

url, key, folder, settings = sys.argv[1:]
with dg.instance_for_test(temp_dir=str(Path(folder) / "dagster")) as instance:
    pipeline = ProjectOnServer(SimpleNamespace(url=url, owner_api_key=key), instance, Path(folder), **json.loads(settings))
    metadata = metadata_of(pipeline.materialize(["curated_dolly"]), pipeline.node("curated_dolly"))
print(json.dumps({"hub_url": metadata["hub_url"], "records": metadata["records"]}))
"""

PUSH_TO_HUB = """
import sys
import pandas as pd
from curation_assets.defs.publishing import push_to_hub

curated_path, card_path, repo = sys.argv[1:]
print(push_to_hub(pd.read_parquet(curated_path), open(card_path, encoding="utf-8").read(), repo, private=False))
"""


def in_a_process_reaching(hub: FakeHub, code: str, *arguments: str) -> str:
    """Run `code` with the Hub at `hub.url` and a token in the environment, as a user's run would have them; its stdout."""
    environment = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": TOKEN,
        # Plain HTTP uploads (LFS), the protocol the stand-in speaks; Xet storage would go to other hosts.
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HOME": str(hub.home),
    }
    done = subprocess.run(
        [sys.executable, "-c", code, *arguments],
        env=environment,
        cwd=state.repository_root(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
def hub(tmp_path):
    with FakeHub() as hub:
        hub.home = tmp_path / "hf_home"  # no token or cache of the machine's user is read
        yield hub


def card_metadata(card: str) -> dict:
    return yaml.safe_load(card.split("\n---\n", 1)[0].removeprefix("---\n"))


def test_curated_dolly_with_a_hub_repo_pushes_its_records_and_card_to_the_hub(argilla_server, tmp_path, hub):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        pipeline = ProjectOnServer(argilla_server, instance, tmp_path, **PROJECT)
        delete_curation_datasets(pipeline)
        plan = pipeline.materialize(PLAN).output_for_node(pipeline.node("annotation_assignments"))
        pipeline.push_all_shards()
        for annotator in ("ana", "bruno"):
            mine = sorted(plan.loc[plan["annotator"] == annotator, "id"])
            submit(pipeline, annotator, mine[:3], mark="(curated, ü ✓)")
        pipeline.materialize(REFRESH)
    delete_curation_datasets(pipeline)

    # The same project, now declaring a Hub repo, as a user would edit its defs.yaml; curated_dolly runs again.
    settings = {**PROJECT, "publish": {"hub_repo_id": REPO, "license": "cc-by-sa-3.0"}}
    server = [argilla_server.url, argilla_server.owner_api_key, str(tmp_path)]
    published = json.loads(in_a_process_reaching(hub, CURATED_DOLLY_WITH_A_HUB_REPO, *server, json.dumps(settings)))

    assert published["hub_url"] == f"https://huggingface.co/datasets/{REPO}"
    repo = hub.repos[REPO]
    assert repo.private, "publish.private defaults to a private repo"
    assert sorted(repo.files) == ["README.md", SHARD]
    written = tmp_path / "output" / "curated_dolly"
    local = pd.read_parquet(written / "curated_dolly.parquet")
    pushed = pd.read_parquet(io.BytesIO(repo.files[SHARD]))
    assert published["records"] == len(local) == len(pushed) == 6
    assert pushed.to_dict("records") == local.to_dict("records"), "the records as published locally, byte for byte"
    assert list(pushed.columns) == CURATED_COLUMNS and pushed["response"].str.endswith("(curated, ü ✓)").all()

    card = repo.files["README.md"].decode("utf-8")
    assert card == (written / "README.md").read_text(encoding="utf-8"), "the card as written locally"
    metadata = card_metadata(card)
    assert metadata["license"] == "cc-by-sa-3.0"
    assert metadata["size_categories"] == [size_category(len(pushed))] == ["n<1K"]
    assert "`shipped:dolly-excerpt`" in card and "- records: 6" in card and "Databricks" in card, (
        "source and attribution"
    )
    authorized = {(r.method, r.path) for r in hub.requests if r.authorization == f"Bearer {TOKEN}"}
    assert ("POST", "/api/repos/create") in authorized and ("POST", f"/api/datasets/{REPO}/commit/main") in authorized


def test_the_card_pushed_with_1200_records_says_1k_to_10k(tmp_path, hub):
    curated = pd.DataFrame(
        [{"id": str(i), "category": "open_qa", "instruction": f"Q{i}?", "context": "", "response": f"A{i}.",
          "provenance": "human", "annotator": "ana"} for i in range(1200)]
    )  # fmt: skip
    card = dataset_card(curated, "", project="big", source="file:big.jsonl", license="apache-2.0", attribution="")
    curated.to_parquet(tmp_path / "curated.parquet")
    (tmp_path / "README.md").write_text(card, encoding="utf-8")

    url = in_a_process_reaching(
        hub, PUSH_TO_HUB, str(tmp_path / "curated.parquet"), str(tmp_path / "README.md"), "curators/big"
    )

    assert url == "https://huggingface.co/datasets/curators/big"
    repo = hub.repos["curators/big"]
    assert not repo.private
    assert len(pd.read_parquet(io.BytesIO(repo.files[SHARD]))) == 1200
    assert card_metadata(repo.files["README.md"].decode("utf-8"))["size_categories"] == ["1K<n<10K"]
