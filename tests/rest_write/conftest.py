"""Fixtures for the REST write tests: one server (download counts flushed every 0.2 s, public
packages protected past 2 downloads) with the world of :mod:`rwkit`, shared by the modules of
this directory (the servers with short restore windows live in their own module).

The fixtures are session-scoped but visible to this directory only: the server starts once, when
the first test here needs it, and ``server_factory`` stops it at the end of the session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kit import operator_cli
from rwkit import PAT_RE, PROTECTED_DOWNLOADS, WORKFLOW_RE, World, world_commands


def build_world(server: Any) -> World:
    """Provision :mod:`rwkit`'s world on ``server`` with one operator-CLI process."""
    assert server.user is not None and server.token is not None
    commands = world_commands()
    outputs = operator_cli(server.data_dir, server.env, [args for _, args in commands])
    secrets = {"admin": server.token}
    for (actor, _), output in zip(commands, outputs, strict=True):
        if actor is not None:
            pattern = WORKFLOW_RE if actor.startswith("wf_") else PAT_RE
            assert pattern.fullmatch(output), (actor, output)
            secrets[actor] = output
    return World(server.url, secrets, server.user)


@pytest.fixture(scope="session")
def world_server(server_factory: Any) -> Any:
    return server_factory(
        protected_downloads=PROTECTED_DOWNLOADS,
        download_flush_interval=0.2,
        # trust policies may name it; nothing here exchanges a token, so it is never contacted
        oidc_issuers=CI_ISSUER,
    )


#: An OIDC issuer the shared server trusts (for the trust-policy endpoints).
CI_ISSUER = "https://ci.example.com"


@pytest.fixture(scope="session")
def world(world_server: Any) -> Iterator[World]:
    built = build_world(world_server)
    yield built
    built.close()
