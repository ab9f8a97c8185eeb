"""Upload ids: the one format every store accepts, safe as a path segment."""

from __future__ import annotations

import re
import uuid

_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


def new_upload_id() -> str:
    return uuid.uuid4().hex


def valid_upload_id(value: str) -> bool:
    return _UPLOAD_ID.fullmatch(value) is not None
