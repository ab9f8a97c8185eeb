"""Fixtures for end-to-end tests with real container clients against a real registry.

* ``clients``: skopeo, buildah, podman and docker with storage, configuration and caches private
  to the session (see ``clients.make_clients``), signed in to ``registry`` with the test
  credentials (an auth file and a docker config);
* ``repo``: a repository name unique to the test; ``http``: an httpx client on ``registry``
  (with the test credentials);
* ``restart_server``: start a registry again on a killed server's data dir and port.
"""

from __future__ import annotations

import re
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from clients import ON_REFERENCE, Clients, make_clients
from kit.server import start_cargobay, start_reference


@pytest.fixture(scope="session")
def clients(tmp_path_factory: pytest.TempPathFactory, registry: Any) -> Clients:
    """skopeo, buildah, podman and docker with storage and config private to this session,
    signed in to the shared registry (when it has accounts)."""
    clients = make_clients(tmp_path_factory.mktemp("clients"))
    if registry.auth is not None:
        clients.store_credentials(registry.address, *registry.auth)
    return clients


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name unique to this test (and to this run)."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    return f"e2e/{slug}-{secrets.token_hex(3)}"


@pytest.fixture(scope="session")
def http(registry: Any) -> Iterator[httpx.Client]:
    """Plain HTTP client on the shared registry (for checks behind the container clients),
    with the test credentials."""
    with httpx.Client(base_url=registry.url, timeout=30, auth=registry.auth) as client:
        yield client


RestartServer = Callable[[Any], Any]


@pytest.fixture(scope="session")
def restart_server() -> Iterator[RestartServer]:
    """``restart(server)``: start a new registry on a killed server's data dir and port.

    Uses ``start_cargobay`` of the test kit (``start_reference`` on the reference);
    the new process keeps the old one's settings and credentials (``server.auth``) and is
    stopped at the end of the session.
    """
    started: list[Any] = []

    def restart(old: Any) -> Any:
        assert old.process.poll() is not None, "stop (kill) the old server first"
        if ON_REFERENCE:
            server = start_reference(old.data_dir, port=old.port)
        else:
            settings = {k.removeprefix("CARGOBAY_").lower(): v for k, v in old.env.items()}
            server = start_cargobay(old.data_dir, port=old.port, **settings)
        started.append(server)
        return server

    yield restart
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def start_server_at() -> Iterator[Callable[..., Any]]:
    """``start(data_dir, **settings)``: a cargobay on a data directory the test chose (e.g. a
    small tmpfs); stopped at the end of the session if the test did not stop it."""
    started: list[Any] = []

    def start(data_dir: Path, **settings: Any) -> Any:
        server = start_cargobay(data_dir, **settings)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
