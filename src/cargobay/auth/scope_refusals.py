"""Which registry tokens were already refused which request, for how to say it next time.

Container clients disagree on how a registry asks for a new token (see
``docs/permissions.md``): the Docker family fetches a new token after a 401 with
``error="insufficient_scope"`` (or ``"invalid_token"``) and never sends the refused token
again with that request; the ORAS Python SDK sends the same request with the same token once
more and fetches a new one only after a 403. So the first refusal is a 401, and the same token
with the same request again is a 403. Per process and bounded: a client's repeat on its
keep-alive connection reaches the same process; one that lands elsewhere gets the 401 again.
"""

from __future__ import annotations

import time

_LIMIT = 10_000


class ScopeRefusals:
    def __init__(self, limit: int = _LIMIT) -> None:
        self.limit = limit
        #: (token id, what was refused) -> until when the refusal is worth remembering
        self._refused: dict[tuple[str, str], float] = {}

    def repeated(self, token: str, refused: str, keep_until: float) -> bool:
        """Whether ``token`` was already refused ``refused`` (a scope and a request); remembers
        this refusal until ``keep_until`` if not."""
        now = time.time()
        key = (token, refused)
        if self._refused.get(key, 0.0) > now:
            return True
        if len(self._refused) >= self.limit:
            self._refused = {k: exp for k, exp in self._refused.items() if exp > now}
            if len(self._refused) >= self.limit:
                self._refused.clear()
        self._refused[key] = keep_until
        return False
