"""Who is asking, and on which URL: the one place that decides the client address, the scheme and
the requested host of a request.

``X-Forwarded-For``, ``X-Forwarded-Proto`` and ``X-Forwarded-Host`` are believed only when the
connection comes from a trusted proxy (``trusted_proxies``: addresses or CIDR networks); then the
ASGI scope is rewritten (``client``, ``scheme``, the ``host`` header) so everything downstream
(the sign-in limiter, ``request.url``, host routing) sees the public request. From anyone else
the headers are removed, so nothing downstream can be fooled by them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.types import Scope

from cargobay.settings import proxy_networks

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded")


def _address(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # [v6]:port
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # v4:port
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


class ForwardedHeaders:
    """Applies the trusted proxies' ``X-Forwarded-*`` headers to a request's scope."""

    def __init__(self, trusted: str | Iterable[str]) -> None:
        entries = proxy_networks(trusted) if isinstance(trusted, str) else list(trusted)
        self.networks: list[IPNetwork] = [ipaddress.ip_network(e, strict=False) for e in entries]

    def trusts(self, address: str) -> bool:
        parsed = _address(address)
        return parsed is not None and any(parsed in network for network in self.networks)

    def apply(self, scope: Scope) -> None:
        """Rewrite an HTTP ``scope`` in place; see the module docstring."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        forwarded: dict[bytes, str] = {
            name: value.decode("latin-1") for name, value in headers if name in _FORWARDED
        }
        if not forwarded:
            return
        scope["headers"] = [(n, v) for n, v in headers if n not in _FORWARDED]
        client = scope.get("client")
        if not self.networks or not client or not self.trusts(client[0]):
            return
        if chain := forwarded.get(b"x-forwarded-for"):
            scope["client"] = (self.client_of(chain, client[0]), 0)
        proto = _last(forwarded.get(b"x-forwarded-proto")).lower()
        if proto in ("http", "https"):
            scope["scheme"] = proto
        if host := _last(forwarded.get(b"x-forwarded-host")):
            scope["headers"] = [(n, v) for n, v in scope["headers"] if n != b"host"]
            scope["headers"].append((b"host", host.encode("latin-1")))

    def client_of(self, chain: str, peer: str) -> str:
        """The first address, from the right, that is not a trusted proxy (each proxy appends
        the address it saw; only the entries the trusted ones added can be believed)."""
        hops = [hop.strip() for hop in chain.split(",") if hop.strip()]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                return peer  # garbage in the chain: stay with what the connection says
            if not self.trusts(str(address)):
                return str(address)
        return str(_address(hops[0])) if hops else peer


def _last(value: str | None) -> str:
    """The value the nearest proxy added (the last one of a comma-separated list)."""
    if not value:
        return ""
    return value.rsplit(",", 1)[-1].strip()
