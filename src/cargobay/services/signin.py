"""Web sign-in: a password makes a server-side session; the browser holds only its secret.

Sessions are rows (revocable, checked on every request: a suspended user is out at once); the
cookie's secret is stored hashed. Each session has its own anti-CSRF token. Failed sign-ins are
limited per client address (and user name at that address); a user name alone gets a limit ten
times higher, so failing on purpose from one address can't lock its owner out.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio.to_thread

from cargobay.auth.passwords import verify_password
from cargobay.auth.principal import Kind, Principal
from cargobay.auth.ratelimit import FailureLimiter
from cargobay.auth.secrets import hash_token, same_secret
from cargobay.errors import TooManyRequests, Unauthenticated
from cargobay.ports.accounts import AccountStore, SessionStore


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    csrf: str


class SignIn:
    def __init__(
        self,
        accounts: AccountStore,
        sessions: SessionStore,
        limiter: FailureLimiter,
        *,
        ttl: float,
        on_failure: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        #: Told of each failed sign-in below the limit: ``(user name, client address)``.
        self.on_failure = on_failure
        self.accounts = accounts
        self.sessions = sessions
        self.limiter = limiter
        #: Per user name from every address: high enough that nobody can lock a user out by
        #: failing on purpose from one address, low enough to stop a spread-out guessing run.
        self.per_user = limiter.scaled(10, "web-user")
        self.ttl = timedelta(seconds=ttl)

    async def sign_in(self, login: str, password: str, client: str) -> tuple[str, str]:
        """Check the password; returns ``(cookie secret, csrf token)`` of a new session.
        Raises Unauthenticated (wrong name or password) or TooManyRequests."""
        user_key = f"web-user:{login.strip().lower()}"
        keys = (f"web-client:{client}", f"{user_key}@{client}")
        if await self.limiter.blocked(*keys) or await self.per_user.blocked(user_key):
            raise TooManyRequests("Too many failed sign-ins. Try again in a few minutes.")
        user = await self.accounts.by_login(login.strip().lower()) if login.strip() else None
        password_hash = user.password_hash if user and not user.is_org else None
        ok = await anyio.to_thread.run_sync(verify_password, password_hash, password)
        if not ok or user is None or user.suspended:
            await self.limiter.fail(*keys)
            await self.per_user.fail(user_key)
            if self.on_failure is not None:
                await self.on_failure(login, client)
            raise Unauthenticated("Incorrect username or password.")
        secret = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        await self.sessions.create(hash_token(secret), user.id, csrf, datetime.now(UTC) + self.ttl)
        return secret, csrf

    async def session(self, secret: str | None) -> Session | None:
        """The live session a cookie names, or None (expired, signed out, user suspended)."""
        if not secret or len(secret) > 100:
            return None
        found = await self.sessions.get(hash_token(secret))
        if found is None:
            return None
        user_id, csrf, expires_at = found
        if expires_at <= datetime.now(UTC):
            return None
        user = await self.accounts.by_id(user_id)
        if user is None or user.suspended:
            return None
        principal = Principal(
            kind=Kind.USER, user_id=user.id, login=user.login, site_admin=user.site_admin, web=True
        )
        return Session(principal, csrf)

    @staticmethod
    def valid_csrf(session: Session, submitted: str | None) -> bool:
        return bool(submitted) and same_secret(session.csrf, submitted or "")

    async def sign_out(self, secret: str | None) -> None:
        if secret:
            await self.sessions.delete(hash_token(secret))
