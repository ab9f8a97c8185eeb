"""Audit-log retention on a server of its own (two workers, entries kept 3 s, the retention
job every 0.5 s): old entries go, recent ones stay, and the job runs in one worker at a time."""

from __future__ import annotations

import time
from typing import Any

from rwkit import Pkg, World, expect, unique, wait_for

NAMESPACE = "api"


def test_old_entries_are_removed_recent_ones_kept(server_factory: Any) -> None:
    server = server_factory(workers=2, audit_retention=3, audit_prune_interval=0.5)
    world = World(server.url, {"admin": server.token}, server.user, me="admin")
    try:
        old = Pkg(NAMESPACE, unique("old"))
        world.push_image("admin", old.full, "v1")

        def entries(package: Pkg) -> list[Any]:
            resp = world.client("admin").get(
                "/api/v3/admin/audit-log", params={"phrase": f"package:{package.full}"}
            )
            body: list[Any] = expect(resp, 200).json()
            return body

        assert len(entries(old)) == 3
        time.sleep(2)
        recent = Pkg(NAMESPACE, unique("recent"))
        world.push_image("admin", recent.full, "v1")
        wait_for(lambda: not entries(old), "the retention job to remove old entries", 20)
        assert len(entries(recent)) == 3
        locks = list((server.data_dir / "locks").glob("*.lock"))
        assert [p.name for p in locks] == ["jobs.lock"]
        holder = int(locks[0].read_text().strip())
        assert holder != server.process.pid, "a worker holds the job lock, not the supervisor"
    finally:
        world.close()
        server.stop()
