"""Fixtures for trusted publishing: three real OIDC issuers on 127.0.0.1 (``listed`` and
``other`` in ``CARGOBAY_OIDC_ISSUERS``, ``unlisted`` not) and one registry trusting the first two,
with the organization ``octo``, its repositories and their trust policies
(:data:`trustkit.REPOSITORIES`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from kit import operator_cli
from oidc_issuer import Issuer
from trustkit import ORG, REFRESH, REPOSITORIES, Trust

ON_REFERENCE = os.environ.get("CARGOBAY_TEST_TARGET", "cargobay") == "reference"


@pytest.fixture(scope="session")
def trust(server_factory: Any) -> Iterator[Trust]:
    if ON_REFERENCE:
        pytest.skip("the reference registry has no accounts nor token exchange")
    issuers = {name: Issuer.start() for name in ("listed", "other", "unlisted")}
    try:
        server = server_factory(
            oidc_issuers=f"{issuers['listed'].url}, {issuers['other'].url}",
            oidc_keys_refresh=REFRESH,
        )
        commands = [["org", "create", ORG, "--owner", "tester"]]
        for repository, (private, policies) in REPOSITORIES.items():
            commands.append(["repo", "create", repository, *(["--private"] if private else [])])
            for issuer, conditions in policies:
                claims = [arg for c in conditions for arg in ("--claim", c)]
                commands.append(
                    ["repo", "trust", "add", repository, "--issuer", issuers[issuer].url, *claims]
                )
        operator_cli(server.data_dir, server.env, commands)
        yield Trust(server, issuers["listed"], issuers["other"], issuers["unlisted"], operator_cli)
    finally:
        for issuer in issuers.values():
            issuer.stop()
