"""Argilla's webhook deliveries, as plain functions: is a delivery genuine, and does it change what a refresh publishes.

argilla-server 2.8 signs each delivery the Standard Webhooks way (`argilla_server/webhooks/v1/commons.py`,
with the `standardwebhooks` package): headers `webhook-id`, `webhook-timestamp` (Unix seconds) and
`webhook-signature` = `v1,` + base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}")), where the
secret is the base64 text Argilla generated for the webhook (`whsec_` prefix optional). The body
is `{"type", "version", "timestamp", "data"}`; for response events, `data` is the response with its
status, its record and the record's dataset.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from .vocabulary import FINISHED_STATUSES

# As the standardwebhooks package allows: older deliveries are replays, newer ones come from a wrong clock.
TIMESTAMP_TOLERANCE_SECONDS = 5 * 60
RESPONSE_EVENTS = ("response.created", "response.updated", "response.deleted")
SECRET_PREFIX = "whsec_"


class WebhookRejected(ValueError):
    """A delivery that is not provably from the Argilla holding the secret; the message says why (never the secret)."""


def secret_key(secret: str) -> bytes:
    """The HMAC key of a webhook secret as Argilla hands it out (base64, optionally prefixed `whsec_`)."""
    text = secret.strip().removeprefix(SECRET_PREFIX)
    try:
        # Padding added as standardwebhooks does: unpadded base64 is accepted there too.
        key = base64.b64decode(text + "==", validate=False)
    except (binascii.Error, ValueError) as error:
        raise ValueError("the webhook secret is not base64 text (copy it as Argilla shows it)") from error
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value Argilla sends for this delivery."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verify(keys: list[bytes], headers: dict[str, str], body: bytes, now: float) -> str:
    """The delivery's message id if one of `keys` signed exactly this body recently; else WebhookRejected."""
    headers = {name.lower(): value for name, value in headers.items()}
    message_id = headers.get("webhook-id")
    timestamp_text = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (message_id and timestamp_text and signatures):
        raise WebhookRejected("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(timestamp_text)
    except ValueError as error:
        raise WebhookRejected("webhook-timestamp is not a whole number of seconds") from error
    if abs(now - timestamp) > TIMESTAMP_TOLERANCE_SECONDS:
        raise WebhookRejected(
            f"webhook-timestamp is {now - timestamp:+.0f} s away from this clock "
            f"(more than {TIMESTAMP_TOLERANCE_SECONDS} s: a replay, or a clock to fix)"
        )
    offered = [part.split(",", 1)[1] for part in signatures.split() if part.startswith("v1,")]
    for key in keys:
        expected = sign(key, message_id, timestamp, body).split(",", 1)[1]
        if any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in offered):
            return message_id
    raise WebhookRejected("no signature matches the configured webhook secret")


@dataclass(frozen=True)
class ResponseChange:
    """A genuine response event that a refresh has to see: in which dataset (by name), and what happened."""

    dataset: str
    event: str
    status: str


def change_to_refresh(event: dict) -> ResponseChange | None:
    """The dataset whose curated output this event changes, or None when it changes nothing published.

    Submissions and discards (new or edited) and deleted responses count. A draft saved or edited
    does not (the UI saves drafts as people type, and the curated dataset takes submitted answers
    only); a submitted answer turned back into a draft changes the sensor's counts, so polling
    still finds it.
    """
    kind = event.get("type")
    if kind not in RESPONSE_EVENTS:
        return None
    data = event.get("data") or {}
    status = str(data.get("status") or "")
    if kind != "response.deleted" and status not in FINISHED_STATUSES:
        return None
    dataset = ((data.get("record") or {}).get("dataset") or {}).get("name")
    if not isinstance(dataset, str) or not dataset:
        return None
    return ResponseChange(dataset=dataset, event=kind, status=status)
