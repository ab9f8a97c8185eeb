"""Accounts for tests: the site administrator every test server is provisioned with, and
:class:`Operator`, which collects the operator commands that set up users, organizations, tokens
and repositories and runs them in one process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kit.operator import operator_cli

#: The site administrator the suites act as, and the scopes of its personal access token.
TEST_USER = "tester"
ALL_SCOPES = "read:packages,write:packages,delete:packages"
#: Namespaces (first path segments) the suites push to; each is created as an organization.
#: A test with a namespace of its own creates it with ``server.create_namespace(name)``.
NAMESPACES = ("api", "e2e", "crash", "scale", "big", "real")
#: How the tokens ``token create`` and ``token workflow`` print begin.
TOKEN_PREFIXES = ("cbp_", "cbw_")


class HasDataDir(Protocol):
    """A server as the operator CLI needs it: its data directory and settings."""

    @property
    def data_dir(self) -> Path: ...

    @property
    def env(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class Provisioned:
    """What an :class:`Operator` run printed: ``done[i]`` is the i-th command's output,
    ``done["key"]`` the token made by ``pat("key", ...)`` or ``workflow("key", ...)``."""

    outputs: list[str]
    tokens: dict[str, str]

    def __getitem__(self, key: int | str) -> str:
        return self.tokens[key] if isinstance(key, str) else self.outputs[key]


@dataclass
class Operator:
    """Collects operator commands and runs them in one process, e.g.::

    setup = Operator().user("olga", "a long password").org("acme", "olga")
    done = setup.pat("olga", "olga", "write:packages").run(server)
    token = done["olga"]
    """

    commands: list[list[str]] = field(default_factory=list)
    passwords: list[str] = field(default_factory=list)
    token_keys: dict[str, int] = field(default_factory=dict)

    def add(self, *args: str) -> Operator:
        self.commands.append(list(args))
        return self

    def user(self, login: str, password: str | None = None, *, admin: bool = False) -> Operator:
        """A user; with ``password`` one who can sign in to the pages."""
        args = ["user", "create", login, *(["--admin"] if admin else [])]
        if password is None:
            return self.add(*args)
        self.passwords.append(password)
        return self.add(*args, "--password-stdin")

    def org(self, name: str, owner: str) -> Operator:
        return self.add("org", "create", name, "--owner", owner)

    def pat(self, key: str, user: str, scopes: str) -> Operator:
        """A personal access token of ``user``, found under ``key`` in the result."""
        self.token_keys[key] = len(self.commands)
        return self.add("token", "create", "--user", user, "--scopes", scopes)

    def workflow(self, key: str, repository: str, permission: str = "write") -> Operator:
        """A workflow token of source repository ``repository``, found under ``key``."""
        self.token_keys[key] = len(self.commands)
        return self.add("token", "workflow", "--repository", repository, "--permission", permission)

    def run(self, server: HasDataDir) -> Provisioned:
        stdin = "".join(f"{p}\n" for p in self.passwords) or None
        outputs = operator_cli(server.data_dir, server.env, self.commands, stdin=stdin)
        tokens = {key: outputs[i] for key, i in self.token_keys.items()}
        for key, token in tokens.items():
            assert token.startswith(TOKEN_PREFIXES) and len(token.split()) == 1, (key, token)
        return Provisioned(outputs, tokens)
