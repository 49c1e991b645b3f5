"""What `dagster dev` loads for bench/freshness.py: two copies of the same project, one woken by webhooks, one polling.

The projects are the product's own definitions (build_project_definitions, as defs.yaml builds them), with
the Argilla URL and key from the environment and outputs in $CURATION_STATE_DIR, as in the Quickstart. They differ in one setting only.
"""

import os

import dagster as dg

from curation_assets.defs.build import build_project_definitions
from curation_assets.defs.project import Project

ANNOTATOR = os.environ.get("FRESHNESS_ANNOTATOR", "ana")
WEBHOOK_PROJECT, POLLING_PROJECT = "fresh_webhook", "fresh_polling"


def project(name: str, webhooks: bool) -> Project:
    return Project.in_code(
        name,
        source={"shipped": "dolly-excerpt"},
        annotation={"annotators": [ANNOTATOR]},
        argilla={"webhooks": {"enabled": webhooks}},
    )


defs = dg.Definitions.merge(
    build_project_definitions(project(WEBHOOK_PROJECT, webhooks=True)),
    build_project_definitions(project(POLLING_PROJECT, webhooks=False)),
)
