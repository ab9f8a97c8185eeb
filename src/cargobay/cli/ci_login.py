"""``cargobay ci-login``: in a CI job, get the job's OIDC ID token, exchange it at the
registry's ``/token`` for a workflow token (trusted publishing), and sign ``docker`` or
``podman`` in with it. Standard library only, so it runs wherever cargobay is installed."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from typing import Annotated, Any

import typer

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105 (a type name)
TIMEOUT = 30


def _fail(message: str) -> typer.Exit:
    typer.echo(f"cargobay ci-login: {message}", err=True)
    return typer.Exit(1)


def _call(request: urllib.request.Request) -> Any:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            body = json.loads(exc.read())
            detail = body.get("error_description") or body.get("message") or body
            error = body.get("error", exc.code)
        except ValueError:
            detail, error = exc.reason, exc.code
        raise _fail(f"{request.full_url.split('?')[0]} answered {error}: {detail}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise _fail(f"{request.full_url.split('?')[0]}: {exc}") from None


def id_token(audience: str, variable: str) -> str:
    """The job's ID token: ``$variable`` (GitLab CI ``id_tokens``, any CI), else requested from
    GitHub/Forgejo Actions (``ACTIONS_ID_TOKEN_REQUEST_URL`` and ``..._TOKEN``)."""
    given = os.environ.get(variable, "").strip()
    if given:
        return given
    url = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    bearer = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not url or not bearer:
        raise _fail(
            f"no ID token: set ${variable} (GitLab CI: id_tokens), or run in GitHub Actions with"
            " `permissions: id-token: write` / Forgejo Actions with `enable-openid-connect: true`"
        )
    separator = "&" if "?" in url else "?"
    request = urllib.request.Request(  # noqa: S310 (the CI's own URL)
        f"{url}{separator}audience={urllib.parse.quote(audience, safe='')}",
        headers={"Authorization": f"Bearer {bearer}", "Accept": "application/json"},
    )
    value = _call(request).get("value")
    if not isinstance(value, str):
        raise _fail("the Actions token endpoint answered no ID token")
    return value


def exchange(registry: str, token: str, repository: str | None) -> str:
    form = {"grant_type": GRANT_TYPE, "subject_token": token, "subject_token_type": ID_TOKEN_TYPE}
    if repository:
        form["scope"] = f"repository:{repository}:push,pull"
    request = urllib.request.Request(  # noqa: S310 (the registry's URL, given by the user)
        f"{registry}/token",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    access_token = _call(request).get("access_token")
    if not isinstance(access_token, str):
        raise _fail("the registry answered no access_token")
    return access_token


def ci_login(
    registry: Annotated[
        str, typer.Argument(help="The registry's base URL, e.g. https://cr.example.com")
    ],
    repository: Annotated[
        str | None, typer.Option(help="The source repository OWNER/NAME whose policy to use.")
    ] = None,
    audience: Annotated[
        str | None, typer.Option(help="The aud to request (default: the registry's base URL).")
    ] = None,
    client: Annotated[
        str, typer.Option(help="docker, podman, or none (print the token instead).")
    ] = "docker",
    id_token_variable: Annotated[
        str, typer.Option("--id-token-env", help="Environment variable holding the ID token.")
    ] = "CARGOBAY_ID_TOKEN",  # noqa: S107 (a variable name)
) -> None:
    """Exchange this CI job's OIDC ID token for a workflow token and sign a client in with it."""
    registry = registry.rstrip("/")
    parts = urllib.parse.urlsplit(registry)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise _fail(f"{registry!r} is not the registry's base URL (https://HOST[:PORT])")
    if client not in ("docker", "podman", "none"):
        raise _fail("--client must be docker, podman or none")
    token = exchange(registry, id_token(audience or registry, id_token_variable), repository)
    if client == "none":
        typer.echo(token)
        return
    command = [client, "login", parts.netloc, "-u", "x-access-token", "--password-stdin"]
    if client == "podman" and parts.scheme == "http":
        command.insert(2, "--tls-verify=false")
    done = subprocess.run(command, input=token, text=True, capture_output=True, check=False)
    if done.returncode != 0:
        raise _fail(f"{client} login failed: {(done.stderr or done.stdout).strip()}")
    typer.echo(f"signed {client} in to {parts.netloc} with a workflow token")
