"""Fixtures for the web UI tests: one real ``cargobay serve`` per test module, one headless
Chromium (Debian's ``chromium``, driven by Playwright) for the whole session, skopeo with an
isolated configuration.

Chromium is Debian's (``scripts/test`` installs the ``chromium`` package); Playwright's own
browser downloads are never used. Without ``/usr/bin/chromium`` the browser tests are skipped;
the plain-HTTP ones still run. The reference registry has no pages: the folder is skipped
against it.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from clients import make_clients
from playwright.sync_api import Browser, Playwright, sync_playwright
from webui import Skopeo

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
#: The first failed step of an ``incremental`` module (its later steps are skipped).
_FAILED_STEP = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "incremental: ordered steps; after a failed step the rest are skipped"
    )


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    if call.excinfo is not None and call.when == "call" and "incremental" in item.keywords:
        item.parent.stash[_FAILED_STEP] = item.name  # type: ignore[union-attr]


def pytest_runtest_setup(item: pytest.Item) -> None:
    if "incremental" in item.keywords and item.parent is not None:
        failed = item.parent.stash.get(_FAILED_STEP, None)
        if failed is not None:
            pytest.skip(f"an earlier step failed: {failed}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CARGOBAY_TEST_TARGET", "cargobay") != "reference":
        return
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.path).startswith(here):
            item.add_marker(pytest.mark.skip(reason="the reference registry has no web pages"))


@pytest.fixture(scope="module")
def server(server_factory: Any) -> Iterator[Any]:
    """A fresh server for this module (``tester`` is its site administrator)."""
    started = server_factory(download_flush_interval=0.2)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Module-scoped: Playwright's sync API runs an event loop in this thread until it stops,
    and tests of other directories that run their own loop must not find it still running."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (Debian: apt-get install chromium chromium-driver)")
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def skopeo(tmp_path_factory: pytest.TempPathFactory, server: Any) -> Skopeo:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is missing (Debian: apt-get install skopeo)")
    return Skopeo(make_clients(tmp_path_factory.mktemp("web-clients")), server.address)
