"""Fixtures for the scale tests: cargobay scaled out for real, as docs/deployment.md describes it.

* ``make_replicas(count=3, database_url=None, **settings)`` (module scope): a fresh PostgreSQL
  database on the machine's server (``CARGOBAY_TEST_POSTGRES_URL``, default the local
  server as user postgres: see ``kit.postgres``) unless ``database_url`` names one, a fresh
  bucket on the session's S3 (``s3_service``), one shared token key file and registry-token
  service name (``cargobay-scale``), ``cargobay migrate``
  once, then ``count`` replicas started at once (each with a data directory of its own that
  holds nothing shared), and the test user, its token and the organization ``scale``
  provisioned once with the operator CLI. Replicas are stopped by PID, the bucket and the
  database removed, at the end of the module.
* ``scale_clients``: skopeo & co. with private configuration (``scalekit.sign_in``).
* ``radosgw``: the radosgw process serving the session's S3, to pause, resume, kill, restart.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

from clients import Clients, make_clients
from kit import ALL_SCOPES, TEST_USER, operator_cli
from kit.postgres import fresh_database
from kit.s3 import new_bucket_name
from kit.server import SERVER_LOGS, free_port, remember_secret
from scalekit import RadosGateway, ReplicaSet, find_radosgw

MakeReplicas = Callable[..., ReplicaSet]


@pytest.fixture(scope="module")
def make_replicas(
    request: pytest.FixtureRequest,
    s3_service: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MakeReplicas]:
    sets: list[ReplicaSet] = []
    buckets: list[str] = []
    with contextlib.ExitStack() as cleanup:

        def make(count: int = 3, database_url: str | None = None, **settings: Any) -> ReplicaSet:
            if database_url is None:
                database_url = cleanup.enter_context(fresh_database("cargobay_scale"))
            bucket = new_bucket_name()
            buckets.append(bucket)
            root = tmp_path_factory.mktemp("replicas")
            key_file = root / "registry-token.key"
            key_file.write_text(secrets.token_bytes(32).hex())
            key_file.chmod(0o600)
            values = {
                **s3_service.settings(bucket),
                "database_url": database_url,
                "token_key_file": key_file,
                # One service name, as behind a load balancer: registry tokens one replica
                # issues are good on every replica.
                "service": "cargobay-scale",
                **settings,
            }
            replica_set = ReplicaSet(
                root, {f"CARGOBAY_{k.upper()}": str(v) for k, v in values.items()}
            )
            sets.append(replica_set)
            replica_set.migrate()
            replica_set.add(count, free_port)
            replica_set.provision(operator_cli, TEST_USER, ALL_SCOPES)
            # Checked for in every server log at the end of the session.
            remember_secret(replica_set.token, replica_set.user)
            return replica_set

        try:
            yield make
        finally:
            for replica_set in sets:
                replica_set.stop()
                # Grepped for secrets at the end of the session, as every server's log.
                SERVER_LOGS.update(replica.log_path for replica in replica_set.replicas)
            for bucket in buckets:
                with contextlib.suppress(Exception):
                    s3_service.remove_bucket(bucket)


@pytest.fixture(scope="module")
def scale_clients(tmp_path_factory: pytest.TempPathFactory) -> Clients:
    return make_clients(tmp_path_factory.mktemp("scale-clients"))


@pytest.fixture(scope="module")
def radosgw(s3_service: Any, tmp_path_factory: pytest.TempPathFactory) -> RadosGateway:
    """The radosgw process of the session's S3: the one ``s3_service`` started with
    ``scripts/ceph-rgw``, or for ``CARGOBAY_TEST_S3_ENDPOINT`` the ``scripts/ceph-rgw`` cluster
    directory named by ``CARGOBAY_TEST_S3_CEPH_DIR``. Skips when there is none."""
    named = os.environ.get("CARGOBAY_TEST_S3_CEPH_DIR")
    clusters = [Path(named)] if named else tmp_path_factory.getbasetemp().glob("ceph*/cluster")
    for cluster in clusters:
        found = find_radosgw(cluster, s3_service.endpoint)
        if found is not None:
            return found
    pytest.skip(f"{s3_service.endpoint} is not served by a radosgw this session may stop")
