"""Webhook secrets are encrypted at rest: a real ``cargobay serve`` with a hook created through
the REST API never writes the secret into its data directory (database, WAL, any file), keeps it
sealed with a key from a 0600 key file, and still signs every delivery with it. A secret stored
in plain text (as before encryption existed) is sealed when the server starts and keeps
signing; a sealed secret whose key was taken out of the key file makes deliveries fail with the
reason in the delivery log, never unsigned requests.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clients import ON_REFERENCE
from cryptography.fernet import Fernet
from test_webhooks import ORG, Receiver, api, create_hook, settled_log

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(ON_REFERENCE, reason="the reference registry has no webhooks"),
]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.stop()


def stored_secret(server: Any, hook_id: int) -> str:
    with sqlite3.connect(server.data_dir / "cargobay.db") as db:
        (value,) = db.execute("SELECT secret FROM webhooks WHERE id = ?", (hook_id,)).fetchone()
    return str(value)


def files_holding(directory: Path, needle: bytes) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and needle in p.read_bytes()]


def ping(server: Any, hook_id: int) -> None:
    with api(server) as client:
        assert client.post(f"/orgs/{ORG}/hooks/{hook_id}/pings").status_code == 204


def signed_with(secret: str, request: dict[str, Any]) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(request["headers"].get("x-hub-signature-256", ""), expected)


def test_the_secret_is_never_stored_in_clear_and_deliveries_are_signed_with_it(
    server_factory: Any, receiver: Receiver
) -> None:
    server = server_factory(webhook_allowed_hosts="127.0.0.1", webhook_interval=0.2)
    secret = f"whsec-{secrets.token_hex(16)}"
    hook = create_hook(server, receiver.url, config={"secret": secret})
    ping(server, hook["id"])
    receiver.wait_for(lambda: len(receiver.deliveries("ping")) >= 1)
    assert signed_with(secret, receiver.deliveries("ping")[0])

    assert stored_secret(server, hook["id"]).startswith("sealed:v1:")
    assert files_holding(server.data_dir, secret.encode()) == []
    keys = server.data_dir / "secret-keys"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert secret not in server.log()


def test_a_secret_stored_in_plain_text_is_sealed_at_start_and_keeps_signing(
    server_factory: Any, restart_server: Any, receiver: Receiver
) -> None:
    server = server_factory(webhook_allowed_hosts="127.0.0.1", webhook_interval=0.2)
    hook = create_hook(server, receiver.url, config={"secret": "to be replaced"})
    server.stop()
    legacy = f"legacy-{secrets.token_hex(16)}"
    with sqlite3.connect(server.data_dir / "cargobay.db") as db:
        db.execute("UPDATE webhooks SET secret = ? WHERE id = ?", (legacy, hook["id"]))
    server = restart_server(server)
    ping(server, hook["id"])
    receiver.wait_for(lambda: len(receiver.deliveries("ping")) >= 1)
    assert signed_with(legacy, receiver.deliveries("ping")[0])
    assert stored_secret(server, hook["id"]).startswith("sealed:v1:")


def test_a_secret_whose_key_is_gone_fails_its_deliveries_with_the_reason(
    server_factory: Any, restart_server: Any, receiver: Receiver
) -> None:
    server = server_factory(webhook_allowed_hosts="127.0.0.1", webhook_interval=0.2)
    hook = create_hook(server, receiver.url, config={"secret": secrets.token_hex(8)})
    server.stop()
    (server.data_dir / "secret-keys").write_text(Fernet.generate_key().decode() + "\n")
    server = restart_server(server)
    ping(server, hook["id"])
    log = settled_log(server, hook["id"], lambda log: bool(log) and log[0]["attempts"] >= 1)
    assert "can't be decrypted" in log[0]["status"], log
    assert log[0]["state"] == "pending"
    assert receiver.deliveries() == []
