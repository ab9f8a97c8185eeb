"""Fixtures for the REST API tests (``/api/v3``): one real ``cargobay serve`` for the folder.

Each test module builds its own world on it (module-scoped ``world`` fixtures) with users and
organizations no other module uses, so modules do not see each other's packages; a module run
alone starts the server itself. One server instead of one per module: a server start and its
provisioning cost about 3 s of CPU, which on a busy machine doubled the folder's run time.

The reference registry has no REST API: the whole folder is skipped against it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from resttest import Rest

#: Download counts are flushed this often (seconds) on the test servers: tests poll for them.
FLUSH_INTERVAL = 0.2


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CARGOBAY_TEST_TARGET", "cargobay") != "reference":
        return
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.skip(reason="the reference registry has no REST API"))


@pytest.fixture(scope="session")
def server(server_factory: Any) -> Iterator[Any]:
    """The server of the REST tests (``tester`` is its site administrator)."""
    # Dead tokens are refused many times on purpose: no sign-in limit gets in the way.
    started = server_factory(download_flush_interval=FLUSH_INTERVAL, sign_in_failures=1_000_000)
    yield started
    started.stop()


@pytest.fixture(scope="session")
def rest(server: Any) -> Iterator[Rest]:
    client = Rest(server.url)
    yield client
    client.close()
