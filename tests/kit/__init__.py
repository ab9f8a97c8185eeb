"""The test kit: what every suite needs to test cargobay from the outside.

``tests/`` is on ``sys.path`` (pytest puts the folder of the root ``conftest.py`` there), so a
test module anywhere under it writes ``from kit import ...``.

- :mod:`kit.server`: registry processes (``cargobay serve`` on a free loopback port, provisioned
  with a test administrator and token); the root ``conftest.py`` turns them into the fixtures
  ``server_factory`` (a server with the settings you pass) and ``registry`` (one shared server).
- :mod:`kit.oci`: :class:`Oci`, a client for raw ``/v2`` calls (blob uploads monolithic, in two
  steps or chunked; manifest puts and gets).
- :mod:`kit.images`: image builders (random layers, configs, OCI and Docker manifests, indexes).
- :mod:`kit.digests`: :func:`digest_of`, the one digest helper.
- :mod:`kit.operator`: the operator CLI run in batches (:func:`operator_cli`,
  :func:`operator_batch`); :mod:`kit.accounts`: :class:`Operator` to set up users, orgs and
  tokens, and the test administrator's name and scopes.
- :mod:`kit.postgres`: a fresh PostgreSQL database per test; :mod:`kit.s3`: S3 endpoints;
  :mod:`kit.media`: media types.

A new end-to-end test in ten lines (a real server, real HTTP; ``registry`` is the fixture)::

    from kit import Oci, image

    def test_a_pushed_image_is_served_back(registry):
        built = image(layers=2)
        with Oci.of(registry) as oci:
            pushed = oci.push_image("e2e/hello", "v1", built)
            got = oci.get_manifest("e2e/hello", "v1")
        assert got.status_code == 200
        assert got.content == built.manifest
        assert got.headers["docker-content-digest"] == pushed.digest

Repositories go under a namespace the test user owns (:data:`NAMESPACES`); a test that needs
settings of its own starts ``server_factory(max_blob_size=1024)``; one that needs other accounts
writes ``done = Operator().user("olga").pat("olga", "olga", "read:packages").run(server)`` and
signs in with the token ``done["olga"]``. Media types are in :mod:`kit.media`; a failed ``push_*``
step says which request failed and what came back (:func:`explain`). Assert what a user would
notice (status, bytes, headers), never a timing. ``tests/e2e/test_kit_example.py`` is this
example, run.
"""

from __future__ import annotations

from kit.accounts import ALL_SCOPES, NAMESPACES, TEST_USER, Operator, Provisioned
from kit.digests import digest_of, random_digest
from kit.images import Image, config, descriptor, encode, image, index, random_bytes
from kit.oci import Oci, Pushed, explain
from kit.operator import OperatorFailed, operator_batch, operator_cli

__all__ = [
    "ALL_SCOPES",
    "NAMESPACES",
    "TEST_USER",
    "Image",
    "Oci",
    "Operator",
    "OperatorFailed",
    "Provisioned",
    "Pushed",
    "config",
    "descriptor",
    "digest_of",
    "encode",
    "explain",
    "image",
    "index",
    "operator_batch",
    "operator_cli",
    "random_bytes",
    "random_digest",
]
