"""Fixtures for the /v2 API tests.

The target comes from ``CARGOBAY_TEST_TARGET`` (read in :mod:`apitest`): ``cargobay`` (default)
or ``reference`` (CNCF Distribution 2.8.2). Two markers adapt the suite to the reference:

- ``@pytest.mark.cargobay_only(reason)``: a cargobay decision where the spec is silent (our error
  codes, settings such as size limits and upload expiry); skipped against the reference.
- ``@pytest.mark.reference_deviation(reason)``: standard behaviour that Distribution 2.8.2 does
  not implement or gets wrong; expected to fail (strict xfail) against the reference.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from apitest import IS_REFERENCE, MAX_BLOB, MAX_MANIFEST, TARGET, Registry


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cargobay_only(reason): cargobay-specific behaviour or setting; skipped against the "
        "reference registry",
    )
    config.addinivalue_line(
        "markers",
        "reference_deviation(reason): standard behaviour the reference registry lacks; "
        "strict xfail against it",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not IS_REFERENCE:
        return
    for item in items:
        only = item.get_closest_marker("cargobay_only")
        if only is not None:
            reason = only.args[0] if only.args else "cargobay-specific"
            item.add_marker(pytest.mark.skip(reason=f"cargobay only: {reason}"))
        deviation = item.get_closest_marker("reference_deviation")
        if deviation is not None:
            reason = deviation.args[0] if deviation.args else "reference deviates"
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"reference: {reason}"))


@pytest.fixture(scope="session")
def target() -> str:
    return TARGET


@pytest.fixture(scope="session")
def api(registry: Any) -> Iterator[Registry]:
    """A client for the shared default registry, with the test credentials."""
    client = Registry(registry.url, registry.auth)
    yield client
    client.close()


@pytest.fixture(scope="session")
def limited(server_factory: Any) -> Iterator[tuple[Registry, Any]]:
    """A registry with small limits: 1 MiB blobs (``max_blob_size``) and 2 KiB manifests
    (``max_manifest_size``). Returns the client and the server (for ``server.data_dir``)."""
    server = server_factory(max_blob_size=MAX_BLOB, max_manifest_size=MAX_MANIFEST)
    client = Registry(server.url, server.auth)
    yield client, server
    client.close()


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A fresh repository name for this test: ``api/<test-name>-<random>``."""
    base = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80].strip("-")
    return f"api/{base}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def other_repo() -> str:
    return f"api/other-{uuid.uuid4().hex[:12]}"
