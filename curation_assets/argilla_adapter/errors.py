"""What can go wrong talking to Argilla, told apart: a user acts differently on each, and the messages say how."""

from __future__ import annotations

LOCAL_SERVER_HINT = "start the embedded server with `curation-argilla serve` (or point ARGILLA_API_URL elsewhere)"
KEY_HINT = "for the embedded server: `curation-argilla credentials --env`"


class ArgillaError(RuntimeError):
    """A request to Argilla failed; the message names the URL and the next step."""


class ArgillaUnreachableError(ArgillaError):
    """Nothing (or not our server) answered, or the server kept failing after the retries: try again later."""


class ArgillaUnauthorizedError(ArgillaError):
    """The server refused the API key (401), or the key lacks the owner role (403): fix the key, retrying will not help."""


class ArgillaNotFoundError(ArgillaError):
    """The server has no such user, workspace, dataset or record (404)."""


class ArgillaRequestError(ArgillaError):
    """The server rejected the request itself (another 4xx, e.g. 422 for invalid values)."""

    def __init__(self, message: str, status_code: int):
        super().__init__(message)
        self.status_code = status_code
