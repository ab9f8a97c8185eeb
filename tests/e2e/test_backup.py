"""``cargobay backup`` while pushes go on, then ``cargobay restore`` into a new data directory:
every image the backup holds pulls byte for byte from a registry started on it, and every image
pushed before the backup began is among them."""

from __future__ import annotations

import json
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from clients import ON_REFERENCE
from fsckkit import Image, cargobay, fsck, pull_problems, push_image, run_cargobay

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(600),
    pytest.mark.skipif(ON_REFERENCE, reason="cargobay's own command"),
]

REPO = "e2e/backup"


class Pusher(threading.Thread):
    """Pushes image after image (tags ``t0``, ``t1``...) until stopped."""

    def __init__(self, server: Any, base: bytes) -> None:
        super().__init__(daemon=True)
        self.server, self.base = server, base
        self.pushed: list[Image] = []
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(base_url=self.server.url, auth=self.server.auth, timeout=60) as h:
                while not self.stop.is_set():
                    tag = f"t{len(self.pushed)}"
                    self.pushed.append(push_image(h, REPO, tag, self.base, size=256 * 1024))
        except BaseException as exc:  # reported by the test
            self.error = exc

    def wait_for(self, count: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while len(self.pushed) < count and self.error is None:
            assert time.monotonic() < deadline, f"only {len(self.pushed)} pushes"
            time.sleep(0.05)
        assert self.error is None, self.error


def test_a_backup_taken_during_pushes_restores_every_image(
    server_factory: Any, start_server_at: Any, tmp_path: Path
) -> None:
    server = server_factory(workers=2)
    pusher = Pusher(server, secrets.token_bytes(128 * 1024))
    pusher.start()
    try:
        pusher.wait_for(3)
        before = list(pusher.pushed)
        code, out = cargobay(server, "backup", str(tmp_path / "backup"), "--json")
        assert code == 0, out
        report = json.loads(out)
        pusher.wait_for(len(pusher.pushed) + 2)
    finally:
        pusher.stop.set()
        pusher.join(timeout=120)
    assert pusher.error is None, pusher.error
    assert report["blobs"] >= 1 + 2 * len(before) and report["database_bytes"] > 0
    assert not list((tmp_path / "backup").rglob("*.partial"))

    # Restore into a data directory of its own, refusing one that holds a registry.
    restored = tmp_path / "restored"
    done = run_cargobay(restored, server.env, "restore", str(tmp_path / "backup"))
    assert done.returncode == 0, done.stderr
    again = run_cargobay(restored, server.env, "restore", str(tmp_path / "backup"))
    assert again.returncode == 1 and "already holds a registry" in again.stderr
    # The restored database has the test user and token already.
    shutil.copy(
        server.data_dir.parent / f"{server.data_dir.name}-credentials.json",
        restored.parent / f"{restored.name}-credentials.json",
    )
    settings = {k.removeprefix("CARGOBAY_").lower(): v for k, v in server.env.items()}
    copy = start_server_at(restored, **settings)
    with httpx.Client(base_url=copy.url, auth=server.auth, timeout=60) as http:
        r = http.get(f"/v2/{REPO}/tags/list", params={"n": 10000})
        assert r.status_code == 200, r.text
        present = set(r.json()["tags"])
        by_tag = {image.tag: image for image in pusher.pushed}
        assert {image.tag for image in before} <= present
        assert present <= set(by_tag), "nothing but what was pushed"
        for tag in sorted(present):
            assert pull_problems(http, by_tag[tag]) == [], tag
        # A registry that goes on: it takes pushes.
        assert pull_problems(http, push_image(http, REPO, "after", b"base")) == []
    code, checked = fsck(copy, "--verify")
    assert code == 0 and checked["problems"] == 0, checked
    copy.stop()


def test_backup_refuses_a_directory_that_is_not_empty(server_factory: Any, tmp_path: Path) -> None:
    server = server_factory()
    target = tmp_path / "full"
    target.mkdir()
    (target / "something").write_text("x")
    done = run_cargobay(server.data_dir, server.env, "backup", str(target))
    assert done.returncode == 1 and "not empty" in done.stderr
    assert sorted(p.name for p in target.iterdir()) == ["something"]
