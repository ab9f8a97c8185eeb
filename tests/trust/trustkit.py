"""Plumbing for the trusted-publishing tests: the world the ``trust`` fixture builds and a
client for the token exchange. (A unique module name: ``tests/`` is not a package.)"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from oidc_issuer import Issuer

ORG = "octo"
#: ``oidc_keys_refresh`` of the server: least seconds between two fetches of an issuer's keys.
REFRESH = 3.0
GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"

#: repository -> (private, [(issuer name, claim conditions...)])
REPOSITORIES: dict[str, tuple[bool, list[tuple[str, list[str]]]]] = {
    "octo/app": (False, [("listed", ["repository=octo/app", "ref=refs/heads/main"])]),
    "octo/secret": (True, [("listed", ["repository=octo/secret"])]),
    "octo/lib": (False, [("other", ["repository=octo/lib", "ref=refs/tags/v*"])]),
    "octo/gl": (False, [("listed", ["project_path=octo/gl", "ref_protected=true"])]),
    "octo/nopolicy": (False, []),
    "octo/managed": (False, []),  # the policy-management tests add and remove its policies
}


@dataclass
class Trust:
    server: Any
    listed: Issuer
    other: Issuer
    unlisted: Issuer
    #: ``operator_cli`` of ``tests/conftest.py``
    operator_cli: Callable[..., list[str]]

    @property
    def audience(self) -> str:
        return str(self.server.url)

    def exchange(
        self, subject_token: str | None, *, scope: str | None = None, **more: str
    ) -> httpx.Response:
        form = {"grant_type": GRANT_TYPE, "subject_token_type": ID_TOKEN_TYPE, **more}
        if subject_token is not None:
            form["subject_token"] = subject_token
        if scope is not None:
            form["scope"] = scope
        return httpx.post(f"{self.server.url}/token", data=form, timeout=30)

    def cli(self, *commands: list[str]) -> list[str]:
        """Operator commands in one process; each one's stdout (each must succeed)."""
        outputs: list[str] = self.operator_cli(
            self.server.data_dir, self.server.env, list(commands)
        )
        return outputs

    def cli_run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """One operator command (``python -m cargobay ARGS --data-dir D``), success or not."""
        return subprocess.run(
            [sys.executable, "-m", "cargobay", *args, "--data-dir", str(self.server.data_dir)],
            env={**os.environ, **self.server.env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def counts(self) -> tuple[int, int]:
        """(tokens, exchanged ID tokens) in the registry's database, behind its back."""
        with sqlite3.connect(self.server.data_dir / "cargobay.db") as db:
            tokens = db.execute("SELECT count(*) FROM tokens").fetchone()[0]
            seen = db.execute("SELECT count(*) FROM seen_id_tokens").fetchone()[0]
        return int(tokens), int(seen)
