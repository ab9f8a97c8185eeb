"""Resolving the settings, and refusing mistakes: where each value comes from, and one clear
message (setting, source, bad value, what is allowed) instead of a traceback.

Sources, strongest first: command-line flags, ``CARGOBAY_*`` environment variables, the TOML
file named by ``CARGOBAY_CONFIG``, the defaults in :class:`cargobay.settings.Settings`. An
unknown variable or TOML key is a mistake (with the closest valid name), so is a
``CARGOBAY_CONFIG`` naming no file. Valid names come from the settings model itself.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import ValidationError

from cargobay.settings import Settings

PREFIX = "CARGOBAY_"
CONFIG_VARIABLE = "CARGOBAY_CONFIG"
#: ``CARGOBAY_*`` variables that are not settings: the config file's name, and the variables
#: of the test suites and benchmarks (``CARGOBAY_TEST_*``, ``CARGOBAY_BENCH_*``,
#: ``CARGOBAY_E2E_*``), which the server never reads.
NOT_SETTINGS = (CONFIG_VARIABLE,)
NOT_SETTING_PREFIXES = ("CARGOBAY_TEST_", "CARGOBAY_BENCH_", "CARGOBAY_E2E_")
_SECRET_WORDS = ("secret", "password", "private_key")


class ConfigError(Exception):
    """A configuration mistake; ``str()`` is the one- or two-line message for the operator."""


@dataclass(frozen=True, slots=True)
class Resolved:
    settings: Settings
    #: Field name -> where its value came from (``--port``, ``CARGOBAY_PORT``,
    #: ``cargobay.toml:3``); absent: the default.
    sources: dict[str, str]


def env_name(field: str) -> str:
    return PREFIX + field.upper()


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def resolve(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Resolved:
    """The effective settings and the source of each; raises :class:`ConfigError`."""
    environ = os.environ if environ is None else environ
    flags = {k: v for k, v in (overrides or {}).items() if v is not None}
    fields = Settings.model_fields
    _check_environment(environ)
    file_values, file_lines, config_path = _read_config_file(environ)
    sources: dict[str, str] = {}
    variables = {k.upper(): k for k in environ}
    for name in fields:
        if name in flags:
            sources[name] = flag_name(name)
        elif env_name(name) in variables:
            sources[name] = env_name(name)
        elif name in file_values:
            sources[name] = f"{config_path}:{file_lines.get(name, 1)}"
    try:
        settings = Settings(**flags)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, flags, environ, variables, sources)) from None
    return Resolved(settings, sources)


def _check_environment(environ: Mapping[str, str]) -> None:
    valid = [env_name(name) for name in Settings.model_fields]
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(PREFIX) or upper in NOT_SETTINGS or upper in valid:
            continue
        if upper.startswith(NOT_SETTING_PREFIXES):
            continue
        raise ConfigError(
            f"unknown setting {variable} in the environment"
            + _did_you_mean(upper, [*valid, CONFIG_VARIABLE])
        )


def _read_config_file(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, int], str]:
    """The TOML file's values, the line each key is on, and its path as given."""
    name = next((environ[k] for k in environ if k.upper() == CONFIG_VARIABLE), "")
    if not name:
        return {}, {}, ""
    path = Path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{CONFIG_VARIABLE}={name}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{CONFIG_VARIABLE}={name}: is a directory, not a TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{CONFIG_VARIABLE}={name}: cannot be read: {exc}") from None
    try:
        values = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc}") from None
    lines = _key_lines(text)
    fields = list(Settings.model_fields)
    for key in values:
        if key not in fields:
            raise ConfigError(
                f"{name}:{lines.get(key, 1)}: unknown setting {key!r}" + _did_you_mean(key, fields)
            )
    return values, lines, name


def _key_lines(text: str) -> dict[str, int]:
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = re.match(r"\s*\[*\s*([A-Za-z0-9_\-]+|\"[^\"]*\")\s*(?:=|\.|\])", line)
        if match:
            lines.setdefault(match.group(1).strip('"'), number)
    return lines


def _did_you_mean(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _describe(
    exc: ValidationError,
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    variables: Mapping[str, str],
    sources: Mapping[str, str],
) -> str:
    """The first error, as ``NAME = VALUE (from SOURCE) is not allowed: REASON``."""
    error = exc.errors()[0]
    loc = error.get("loc") or ("?",)
    field = str(loc[0])
    reason = str(error.get("msg", "invalid value"))
    reason = reason.removeprefix("Value error, ")
    reason = reason[:1].lower() + reason[1:]
    source = sources.get(field, "default")
    if field in flags:
        value: Any = flags[field]
    elif env_name(field) in variables:
        value = environ[variables[env_name(field)]]
    else:
        value = error.get("input")
    shown = "****" if is_secret(field) else repr(value) if isinstance(value, str) else value
    return f"{field} = {shown} (from {source}) is not allowed: {reason}"


def is_secret(field: str) -> bool:
    return any(word in field for word in _SECRET_WORDS)


def masked(field: str, value: Any) -> str:
    """How ``config show`` prints a value: secrets and passwords inside URLs as ``****``."""
    if value in (None, ""):
        return repr(value) if value == "" else "none"
    if is_secret(field):
        return "****"
    text = str(value)
    if "://" in text:
        parts = urlsplit(text)
        if parts.password:
            netloc = f"{parts.username or ''}:****@{parts.hostname or ''}"
            if parts.port:
                netloc += f":{parts.port}"
            text = urlunsplit(parts._replace(netloc=netloc))
    return text
