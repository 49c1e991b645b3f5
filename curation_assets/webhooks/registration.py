"""Telling an Argilla server to post answers to the receiver: one webhook, found again by its description."""

from __future__ import annotations

from ..argilla_adapter.client import ArgillaClient
from ..logic.webhook_events import RESPONSE_EVENTS
from .receiver import DEFAULT_PORT, PATH

DESCRIPTION = "curation_assets: answers wake the curation sensor (curation-webhooks)"
DEFAULT_RECEIVER_URL = f"http://127.0.0.1:{DEFAULT_PORT}{PATH}"


def register(argilla: ArgillaClient, receiver_url: str) -> dict:
    """The server's webhook for answers, posting to `receiver_url`, enabled; its `secret` verifies deliveries."""
    return argilla.ensure_webhook(receiver_url, RESPONSE_EVENTS, DESCRIPTION)
