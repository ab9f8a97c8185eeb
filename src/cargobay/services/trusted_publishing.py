"""Trusted publishing: trust policies of source repositories, and the exchange of a CI job's
OIDC ID token for a workflow token of the repository whose policy it satisfies (RFC 8693 at
``/token``). The rules a policy applies are in :mod:`.trust_policies`; the token's signature
and lifetime are checked by :mod:`cargobay.auth.oidc`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from cargobay.auth.oidc import LEEWAY, IdTokenRejected, IdTokenVerifier, VerifiedIdToken
from cargobay.auth.oidc_keys import IssuerUnavailable
from cargobay.auth.principal import Principal
from cargobay.errors import CargobayError, NotFound
from cargobay.ports.trust import TrustPolicy, TrustStore
from cargobay.services.accounts import AccountService
from cargobay.services.administration import Administration
from cargobay.services.trust_policies import InvalidPolicy, check_conditions, mismatch

log = logging.getLogger(__name__)

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 (a type name)
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
#: Longest life of a workflow token from an exchange, seconds.
MAX_LIFETIME = 3600


class ExchangeRefused(CargobayError):
    """An RFC 6749 §5.2 error: ``error`` (``invalid_request``, ``invalid_grant``...) and the
    message as ``error_description``."""

    def __init__(self, message: str, error: str = "invalid_grant", status: int = 400) -> None:
        super().__init__(message)
        self.error = error
        self.status = status


@dataclass(frozen=True, slots=True)
class Exchanged:
    token: str
    expires_in: int
    repository: str
    policy_id: int


class TrustedPublishing:
    def __init__(
        self,
        store: TrustStore,
        accounts: AccountService,
        administration: Administration,
        verifier: IdTokenVerifier,
        *,
        default_audience: str,
    ) -> None:
        self.store = store
        self.accounts = accounts
        self.administration = administration
        self.verifier = verifier
        self.default_audience = default_audience
        self.lifetime = min(accounts.workflow_token_ttl, MAX_LIFETIME)

    # -- trust policies (operators) ------------------------------------------------------------

    async def add(
        self, full_name: str, issuer: str, audience: str | None, conditions: dict[str, str]
    ) -> TrustPolicy:
        repository = await self.accounts.source_repository(full_name)
        if not self.verifier.trusts(issuer):
            trusted = ", ".join(self.verifier.issuers) or "none"
            raise InvalidPolicy(
                f"the issuer {issuer[:200]!r} is not trusted by this registry (trusted: "
                f"{trusted}; the operator lists them in CARGOBAY_OIDC_ISSUERS)"
            )
        audience = (audience or "").strip() or None
        if audience is not None and (len(audience) > 255 or not audience.isprintable()):
            raise InvalidPolicy("the audience must be at most 255 printable characters")
        conditions = check_conditions(conditions)
        policy = await self.store.create(repository.id, issuer, audience, conditions)
        log.info("trust policy %d added to %s (issuer %s)", policy.id, repository.full_name, issuer)
        return policy

    async def policies(self, full_name: str) -> list[TrustPolicy]:
        repository = await self.accounts.source_repository(full_name)
        return await self.store.for_repository(repository.id)

    async def remove(self, full_name: str, policy_id: int) -> None:
        repository = await self.accounts.source_repository(full_name)
        if not await self.store.delete(repository.id, policy_id):
            raise NotFound(f"{repository.full_name} has no trust policy {policy_id}")
        log.info("trust policy %d of %s removed", policy_id, repository.full_name)

    # -- trust policies (repository admins: REST, pages) ---------------------------------------

    async def _admin(self, principal: Principal, full_name: str) -> str:
        return (await self.administration.repository_admin(principal, full_name)).full_name

    async def add_as(
        self,
        principal: Principal,
        full_name: str,
        issuer: str,
        audience: str | None,
        conditions: dict[str, str],
    ) -> TrustPolicy:
        return await self.add(await self._admin(principal, full_name), issuer, audience, conditions)

    async def policies_as(self, principal: Principal, full_name: str) -> list[TrustPolicy]:
        return await self.policies(await self._admin(principal, full_name))

    async def remove_as(self, principal: Principal, full_name: str, policy_id: int) -> None:
        await self.remove(await self._admin(principal, full_name), policy_id)

    # -- the exchange ----------------------------------------------------------------------------

    async def exchange(
        self,
        subject_token: str,
        subject_token_type: str,
        requested_token_type: str | None,
        scopes: Iterable[str],
    ) -> Exchanged:
        """A workflow token for the ID token ``subject_token``, or ExchangeRefused."""
        if not self.verifier.issuers:
            raise ExchangeRefused(
                "trusted publishing is not enabled on this registry (no CARGOBAY_OIDC_ISSUERS)",
                "unsupported_grant_type",
            )
        if not subject_token:
            raise ExchangeRefused("subject_token is missing", "invalid_request")
        if subject_token_type not in (ID_TOKEN_TYPE, JWT_TOKEN_TYPE):
            raise ExchangeRefused(f"subject_token_type must be {ID_TOKEN_TYPE}", "invalid_request")
        if requested_token_type not in (None, "", ACCESS_TOKEN_TYPE):
            raise ExchangeRefused(
                f"requested_token_type must be {ACCESS_TOKEN_TYPE}", "invalid_request"
            )
        wanted = _repository_of(scopes)
        try:
            token = await self.verifier.verify(subject_token)
        except IdTokenRejected as exc:
            log.info("token exchange refused: %s", exc.message)
            raise ExchangeRefused(exc.message) from None
        except IssuerUnavailable as exc:
            log.warning("token exchange failed: %s", exc.message)
            raise ExchangeRefused(exc.message, "temporarily_unavailable", 503) from None
        try:
            policy = await self._policy(token, wanted)
        except ExchangeRefused as exc:
            log.info(
                "token exchange refused: issuer=%s subject=%s: %s",
                token.issuer,
                token.subject,
                exc.message,
            )
            raise
        expires_at = token.expires_at + timedelta(seconds=LEEWAY)
        if not await self.store.first_use(token.replay_key, expires_at):
            log.info("token exchange refused: replayed ID token of %s", token.subject)
            raise ExchangeRefused(
                "this ID token was already exchanged; request a new ID token for each exchange"
            )
        created = await self.accounts.create_workflow_token(
            policy.repository,
            permission="write",
            expires=f"{self.lifetime}s",
            note=f"workflow of {policy.repository} (trust policy {policy.id}: {token.subject})"[
                :255
            ],
            exchanged={"issuer": token.issuer, "subject": token.subject, "policy": policy.id},
        )
        log.info(
            "token exchange: issuer=%s subject=%s repository=%s policy=%d workflow_token=%d",
            token.issuer,
            token.subject,
            policy.repository,
            policy.id,
            created.record.id,
        )
        return Exchanged(created.token, self.lifetime, policy.repository, policy.id)

    async def _policy(self, token: VerifiedIdToken, wanted: str | None) -> TrustPolicy:
        """The policy the token satisfies: of the ``wanted`` repository, or of the one
        repository whose policies it satisfies. Refusals never tell private repositories from
        missing ones."""
        candidates = await self.store.for_issuer(token.issuer)
        if wanted is not None:
            candidates = [p for p in candidates if p.repository == wanted]
        reasons = {
            p.id: mismatch(p, token.issuer, token.claims, self.default_audience) for p in candidates
        }
        matched = [p for p in candidates if reasons[p.id] is None]
        if wanted is not None:
            if matched:
                return matched[0]
            raise ExchangeRefused(await self._explain(wanted, token, candidates, reasons))
        repositories = {p.repository_id for p in matched}
        if len(repositories) == 1:
            return matched[0]
        if repositories:
            raise ExchangeRefused(
                f"the ID token satisfies trust policies of {len(repositories)} repositories;"
                " name one with scope=repository:OWNER/NAME:push,pull"
            )
        raise ExchangeRefused(
            f"no trust policy matches this ID token (issuer {token.issuer}, subject"
            f" {token.subject}); name the repository with scope=repository:OWNER/NAME:push,pull"
            " to learn why"
        )

    async def _explain(
        self,
        wanted: str,
        token: VerifiedIdToken,
        candidates: list[TrustPolicy],
        reasons: dict[int, str | None],
    ) -> str:
        generic = (
            f"no trust policy of {wanted} matches this ID token (issuer {token.issuer},"
            f" subject {token.subject})"
        )
        try:
            repository = await self.accounts.source_repository(wanted)
        except NotFound:
            return generic
        if repository.private:
            return generic  # only public repositories say what their policies want
        if not candidates:
            return f"no trust policy of {wanted} trusts the issuer {token.issuer}"
        if len(candidates) == 1:
            return f"no trust policy of {wanted} matches: {reasons[candidates[0].id]}"
        details = "; ".join(f"policy {p.id}: {reasons[p.id]}" for p in candidates[:5])
        return f"no trust policy of {wanted} matches: {details}"


def _repository_of(scopes: Iterable[str]) -> str | None:
    """The source repository ``OWNER/NAME`` the ``scope`` parameter names, if any."""
    names = set()
    for scope in scopes:
        parts = scope.split(":")
        if len(parts) == 3 and parts[0] == "repository":
            names.add(parts[1].lower())
        else:
            raise ExchangeRefused(
                f"invalid scope {scope[:100]!r}: use repository:OWNER/NAME:push,pull",
                "invalid_request",
            )
    if len(names) > 1:
        raise ExchangeRefused("the scope names more than one repository", "invalid_request")
    name = next(iter(names), None)
    if name is not None and (name.count("/") != 1 or not all(name.split("/"))):
        raise ExchangeRefused(
            f"the scope names {name[:100]!r}: name a source repository OWNER/NAME",
            "invalid_request",
        )
    return name
