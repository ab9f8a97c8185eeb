"""Which registry tokens were already told ``insufficient_scope``, for how to say it next time.

Container clients disagree on how a registry asks for a wider token (see
``docs/permissions.md``): the Docker family fetches a new token after a 401 with
``error="insufficient_scope"`` and never sends the refused token again for that request; the
ORAS Python SDK sends the same token once more and fetches a new one only after a 403. So the
first refusal of a token for a scope is a 401, and the same token for the same scope again is a
403. Per process and bounded: a client's retry on its keep-alive connection reaches the same
process; a retry that lands elsewhere gets the 401 again.
"""

from __future__ import annotations

import time

_LIMIT = 10_000


class ScopeRefusals:
    def __init__(self, limit: int = _LIMIT) -> None:
        self.limit = limit
        #: (token id, scope) -> when the token expires (its entry is useless after that)
        self._refused: dict[tuple[str, str], float] = {}

    def repeated(self, token: str, scope: str, expires_at: float) -> bool:
        """Whether ``token`` was already refused ``scope``; remembers this refusal if not."""
        now = time.time()
        key = (token, scope)
        if self._refused.get(key, 0.0) > now:
            return True
        if len(self._refused) >= self.limit:
            self._refused = {k: exp for k, exp in self._refused.items() if exp > now}
            if len(self._refused) >= self.limit:
                self._refused.clear()
        self._refused[key] = expires_at
        return False
