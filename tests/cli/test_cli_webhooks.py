"""``cargobay webhook add|list|remove|deliveries``: hooks of an organization, a user or the
site, managed by the operator under the same rules as the REST API (no loopback receiver
unless allow-listed; the secret never printed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from clikit import assert_one_clear_error, cargobay, clean_env

FAILED = 1


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("webhooks") / "data"
    assert cargobay("migrate", "--data-dir", data).returncode == 0
    for args in (
        ("user", "create", "hookboss"),
        ("org", "create", "hookorg", "--owner", "hookboss"),
    ):
        done = cargobay(*args, "--data-dir", data)
        assert done.returncode == 0, done.stderr
    return data


def test_add_list_deliveries_and_remove(registry: Path) -> None:
    added = cargobay(
        "webhook",
        "add",
        "https://hooks.example.com/in",
        "--org",
        "hookorg",
        "--secret",
        "very-secret-value",
        "--event",
        "registry_package",
        "--event",
        "package",
        "--data-dir",
        registry,
    )
    assert added.returncode == 0, added.stderr
    hook_id = added.stdout.strip()
    assert hook_id.isdigit()
    listed = cargobay("webhook", "list", "--org", "hookorg", "--data-dir", registry)
    assert listed.stdout.splitlines() == [
        "id\tactive\tcontent_type\tevents\tsecret\turl",
        f"{hook_id}\tyes\tjson\tregistry_package,package\t********\thttps://hooks.example.com/in",
    ]
    assert "very-secret-value" not in listed.stdout + listed.stderr
    log = cargobay("webhook", "deliveries", hook_id, "--org", "hookorg", "--data-dir", registry)
    assert log.returncode == 0 and log.stdout.startswith("id\tguid\tevent"), log.stderr
    other = cargobay("webhook", "list", "--site", "--data-dir", registry)
    assert other.stdout.splitlines()[1:] == []
    wrong = cargobay("webhook", "remove", hook_id, "--site", "--data-dir", registry)
    assert_one_clear_error(wrong, "Not Found", code=FAILED)
    gone = cargobay("webhook", "remove", hook_id, "--org", "hookorg", "--data-dir", registry)
    assert gone.stdout == f"removed webhook {hook_id}\n"
    assert (
        cargobay("webhook", "list", "--org", "hookorg", "--data-dir", registry).stdout.count("\n")
        == 1
    )


def test_loopback_receivers_need_the_allow_list(registry: Path) -> None:
    url = "http://127.0.0.1:9/hook"
    refused = cargobay("webhook", "add", url, "--user", "hookboss", "--data-dir", registry)
    assert_one_clear_error(refused, "127.0.0.1 is a loopback address", code=FAILED)
    env = clean_env(CARGOBAY_WEBHOOK_ALLOWED_HOSTS="127.0.0.0/8")
    allowed = cargobay("webhook", "add", url, "--user", "hookboss", "--data-dir", registry, env=env)
    assert allowed.returncode == 0, allowed.stderr
    bad = cargobay(
        "webhook",
        "list",
        "--site",
        "--data-dir",
        registry,
        env=clean_env(CARGOBAY_WEBHOOK_ALLOWED_HOSTS="10.0.0.0/33"),
    )
    assert_one_clear_error(bad, "webhook_allowed_hosts")


def test_one_target_exactly(registry: Path) -> None:
    done = cargobay("webhook", "list", "--org", "hookorg", "--site", "--data-dir", registry)
    assert_one_clear_error(done, "exactly one of", code=FAILED)
    done = cargobay("webhook", "add", "ftp://x.example", "--site", "--data-dir", registry)
    assert_one_clear_error(done, "http:// or https://", code=FAILED)
