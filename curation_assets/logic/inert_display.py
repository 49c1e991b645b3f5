"""What annotators see of a record: an HTML-escaped display copy of each field, shown by Argilla as plain text.

Argilla 2.8's UI renders every field as live HTML: a plain text field with `innerHTML` (or an
unsandboxed iframe when it looks like HTML), a markdown field through marked, KaTeX and DOMPurify,
whose default configuration keeps forms, password inputs, `<style>`, `style=` overlays and remote
images (argilla-frontend `TextField.vue`, `RenderMarkdown.base.component.vue`). A plain text field
whose value is escaped (`&`, `<`, `>`) is the one way it shows text as text: the escaped value parses
to a single text node, and the field's `white-space: pre-wrap` keeps every space and line break.
Markdown syntax (`![](http://...)`, links, `$math$`) is not interpreted in a plain text field.

The exact text lives where the pipeline reads it: the escaping is exactly invertible, and each
record pushed this way carries `DISPLAY_MARKER` in its metadata (extra metadata: owners and admins
read it, annotators do not). A record without the marker was pushed before this rule and holds its
exact text unescaped. Suggestions and answers are never escaped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

# Record metadata saying that the record's fields hold display copies (owners read it; annotators never see it).
DISPLAY_METADATA_KEY = "field_display"
ESCAPED_HTML = "escaped-html"
DISPLAY_MARKER = {DISPLAY_METADATA_KEY: ESCAPED_HTML}

_ESCAPED = re.compile(r"&(amp|lt|gt);")
_UNESCAPED = {"amp": "&", "lt": "<", "gt": ">"}


def display_copy(text: str | None) -> str | None:
    """The text as a plain text field must hold it to be shown literally: `&`, `<` and `>` escaped, nothing else."""
    return None if text is None else html.escape(text, quote=False)


def original_text(shown: str | None) -> str | None:
    """The exact inverse of `display_copy`: one pass, so `&amp;lt;` gives back `&lt;`, as it was."""
    if shown is None or "&" not in shown:  # most texts hold no entity: nothing to substitute
        return shown
    return _ESCAPED.sub(lambda match: _UNESCAPED[match.group(1)], shown)


def shows_display_copies(record: dict) -> bool:
    """Whether a raw record (as the server returns it to an owner) holds display copies in its fields."""
    return (record.get("metadata") or {}).get(DISPLAY_METADATA_KEY) == ESCAPED_HTML


def exact_fields(record: dict, names: Iterable[str] | None = None) -> dict:
    """A raw record's fields as the exact texts that were pushed, whether it holds display copies or predates them.

    `names`: only these fields (those the record has), for a caller that reads a few of many.
    """
    fields = record.get("fields") or {}
    if names is not None:
        fields = {name: fields[name] for name in names if name in fields}
    if not shows_display_copies(record):
        return dict(fields)
    return {name: original_text(value) if isinstance(value, str) else value for name, value in fields.items()}


def metadata_without_marker(record: dict) -> dict:
    """A raw record's metadata as the pipeline set it (the quality signals), without the display marker."""
    return {key: value for key, value in (record.get("metadata") or {}).items() if key != DISPLAY_METADATA_KEY}
