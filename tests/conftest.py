"""Shared fixtures: real server processes on free loopback ports.

``server_factory(**settings)`` starts ``cargobay serve`` in a fresh data directory with the given
settings (as ``CARGOBAY_*`` environment variables) and returns a :class:`~kit.server.Server`.
Processes are stopped by PID at the end of the test session. With
``CARGOBAY_TEST_TARGET=reference`` the same fixtures start Debian's ``docker-registry`` instead
(to check a test against the reference).

cargobay asks for credentials: every new data directory is provisioned with the operator CLI
(``python -m cargobay user/token/org create``) with a site administrator ``tester``, a personal
access token with every scope and one organization per namespace in :data:`NAMESPACES` (the
first path segment of every repository the suites push to). ``server.user``/``server.token``
(``server.auth`` for httpx) carry them; a server restarted on the same data directory keeps
them. The reference registry has no accounts: its credentials are None and clients send none.

The helpers behind these fixtures live in the test kit (``tests/kit``, see its docstring).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kit.accounts import ALL_SCOPES, NAMESPACES, TEST_USER
from kit.operator import operator_cli
from kit.s3 import S3Service, new_bucket_name
from kit.server import (
    SECRETS,
    SERVER_LOGS,
    TARGET,
    TOKEN_SHAPES,
    Server,
    ServerFactory,
    free_port,
    remember_secret,
    start_cargobay,
    start_reference,
)

__all__ = [
    "ALL_SCOPES",
    "NAMESPACES",
    "TEST_USER",
    "S3Service",
    "Server",
    "free_port",
    "new_bucket_name",
    "operator_cli",
    "remember_secret",
    "start_cargobay",
]


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say where the real backing services come from, before anything runs."""
    postgres = os.environ.get(
        "CARGOBAY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    s3 = os.environ.get("CARGOBAY_TEST_S3_ENDPOINT")
    return [
        f"cargobay: PostgreSQL tests use {postgres} (a fresh database per test or run; they "
        "skip, saying so, if it does not answer; set CARGOBAY_TEST_POSTGRES_URL)",
        "cargobay: S3 tests use "
        + (f"{s3} (CARGOBAY_TEST_S3_ENDPOINT)" if s3 else "a Ceph RGW started by scripts/ceph-rgw")
        + "; browser tests use /usr/bin/chromium",
    ]


@pytest.fixture(scope="session")
def remember_secrets() -> Callable[..., None]:
    """``remember(value, user=None)``: :func:`remember_secret` for tests (tokens they create,
    passwords they set)."""
    return remember_secret


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_server_log() -> Iterator[None]:
    """After the whole session (every server stopped), grep every server log for the secrets
    handed out and for anything shaped like a token."""
    yield
    leaks = []
    for path in sorted(SERVER_LOGS):
        if not path.exists():
            continue
        text = path.read_text(errors="replace")
        leaks += [f"{path}: a secret handed out to a test" for s in SECRETS if s in text]
        leaks += [f"{path}: {m.group()[:6]}… (a token)" for m in TOKEN_SHAPES.finditer(text)]
    assert not leaks, "secrets reached server logs:\n" + "\n".join(sorted(set(leaks)))


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start registry processes; all are stopped (SIGTERM, then SIGKILL) at session end."""
    started: list[Server] = []
    start = start_reference if TARGET == "reference" else start_cargobay

    def factory(**settings: Any) -> Server:
        server = start(tmp_path_factory.mktemp("registry") / "data", **settings)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def registry(server_factory: ServerFactory) -> Server:
    """One registry with default settings, shared by the whole session."""
    return server_factory()


# -- S3 (a Ceph RGW started by scripts/ceph-rgw, or any S3 named by the environment) ------------

CEPH_RGW = Path(__file__).resolve().parent.parent / "scripts" / "ceph-rgw"


@pytest.fixture(scope="session")
def s3_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Service]:
    """S3 for the session: ``CARGOBAY_TEST_S3_ENDPOINT`` (with ``..._ACCESS_KEY`` and
    ``..._SECRET_KEY``) if set, else a one-node Ceph RGW started with ``scripts/ceph-rgw`` and
    stopped at the end of the session. Skips when neither is to be had."""
    endpoint = os.environ.get("CARGOBAY_TEST_S3_ENDPOINT")
    if endpoint:
        yield S3Service(
            endpoint,
            os.environ.get("CARGOBAY_TEST_S3_ACCESS_KEY", ""),
            os.environ.get("CARGOBAY_TEST_S3_SECRET_KEY", ""),
        )
        return
    missing = [t for t in ("ceph-mon", "ceph-osd", "radosgw") if shutil.which(t) is None]
    if missing:
        pytest.skip(
            f"no S3 to test against: {', '.join(missing)} not installed (Debian: ceph radosgw "
            "ceph-common) and CARGOBAY_TEST_S3_ENDPOINT not set"
        )
    directory = tmp_path_factory.mktemp("ceph") / "cluster"
    started = subprocess.run(
        [str(CEPH_RGW), "start", str(directory)],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    try:
        if started.returncode != 0:
            pytest.skip(f"no S3 to test against: scripts/ceph-rgw start failed:\n{started.stderr}")
        values = dict(
            line.split("=", 1) for line in (directory / "env").read_text().splitlines() if line
        )
        yield S3Service(
            values["CARGOBAY_TEST_S3_ENDPOINT"],
            values["CARGOBAY_TEST_S3_ACCESS_KEY"],
            values["CARGOBAY_TEST_S3_SECRET_KEY"],
        )
    finally:
        subprocess.run(
            [str(CEPH_RGW), "stop", str(directory)], capture_output=True, timeout=120, check=False
        )


@pytest.fixture
def s3_bucket(s3_service: S3Service) -> Iterator[str]:
    """A fresh, empty bucket on ``s3_service`` (the test may leave it to the store to create);
    it is removed, with what is in it, after the test."""
    bucket = new_bucket_name()
    yield bucket
    try:
        s3_service.remove_bucket(bucket)
    except Exception as e:  # a bucket the test never created, or already removed
        if "NoSuchBucket" not in str(e):
            raise


# -- parallel runs (pytest-xdist) --------------------------------------------------------------

#: A test on the session's S3 (a Ceph RGW that takes a while to start, and that the scale tests
#: stop and restart): its node id names S3, or it is in ``tests/scale/``.
_ON_S3 = re.compile(r"(?:^|[^a-z0-9])s3(?:[^a-z0-9]|$)")


def xdist_scope(nodeid: str) -> str:
    """The unit of work a parallel worker takes whole: a module (its module-scoped servers
    start once), except that every test on S3 goes to one worker (one Ceph RGW per run)."""
    module = nodeid.split("::", 1)[0]
    if module.startswith("tests/scale/") or _ON_S3.search(nodeid.lower()):
        return "s3"
    return module


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return xdist_scope(nodeid)

    return ModuleScheduling(config, log)
