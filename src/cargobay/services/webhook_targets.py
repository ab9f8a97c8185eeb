"""Where webhooks may deliver, and the HTTP request that delivers (SSRF-safe).

A receiver's host name is resolved once; every address it resolves to is checked, and the
connection goes to the checked address (the request keeps the original ``Host`` header and
TLS server name), so a DNS answer that changes between the check and the connection
(rebinding) can't reach anything else. Loopback, link-local, private, shared, multicast,
reserved and unspecified addresses are refused unless the operator's allow-list
(``webhook_allowed_hosts``) names the host or a network holding the address. Redirects are not
followed unless enabled, and then each hop is checked the same way. Timeouts are short and the
answer kept is capped.

Blocking code (sockets): callers run :func:`post` in a worker thread.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Bytes of a receiver's answer kept in the delivery log (the rest is read and dropped, up to
#: :data:`MAX_READ`).
MAX_KEPT = 16 * 1024
MAX_READ = 1024 * 1024
MAX_REDIRECTS = 5
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")


class TargetRefused(Exception):
    """The receiver's address is one webhooks may not reach (the message says why)."""


@dataclass(frozen=True, slots=True)
class AllowList:
    """Hosts and networks webhooks may reach although they are not public."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, value: str) -> AllowList:
        """``127.0.0.1,10.0.0.0/8,hooks.internal``: commas or blanks between entries. Raises
        ValueError naming an entry that is neither an address, a network nor a host name."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in re.split(r"[\s,]+", value.strip()):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            name = entry.lower().rstrip(".")
            if not all(_LABEL.fullmatch(label) for label in name.split(".")):
                raise ValueError(f"{entry!r} is neither a host name, an address nor a network")
            hosts.add(name)
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, address: IPAddress) -> bool:
        return host in self.hosts or any(address in net for net in self.networks)


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def kind_of(address: IPAddress) -> str | None:
    """Why ``address`` is not a public one (e.g. ``"a loopback"``), or None if it is."""
    address = _unmapped(address)
    for kind, test in (
        ("an unspecified", address.is_unspecified),
        ("a loopback", address.is_loopback),
        ("a link-local", address.is_link_local),
        ("a multicast", address.is_multicast),
        ("a private", address.is_private),
        ("a reserved", address.is_reserved),
    ):
        if test:
            return kind
    if not address.is_global:
        return "a non-public"
    return None


def check_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a receiver URL; ValueError if it is no http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"invalid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("must not hold credentials (use the secret to authenticate)")
    scheme = parts.scheme
    return scheme, parts.hostname.lower().rstrip("."), port or (443 if scheme == "https" else 80)


def check_literal(url: str, allowed: AllowList) -> None:
    """What can be checked without resolving names (when a hook is saved): a URL naming an
    address or ``localhost`` that webhooks may not reach. Raises ValueError."""
    _, host, _ = check_url(url)
    if host == "localhost" or host.endswith(".localhost"):
        address: IPAddress = ipaddress.ip_address("127.0.0.1")
    else:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return  # a name: checked after resolution, at every delivery
    kind = kind_of(address)
    if kind and not allowed.allows(host, address):
        raise ValueError(f"{host} is {kind} address; an administrator may allow it")


Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def pick_address(host: str, port: int, allowed: AllowList, resolver: Resolver = resolve) -> str:
    """The address to connect to: resolved once; the first one allowed. Raises TargetRefused
    when none is (every address is named in the message), OSError when the name has none."""
    refused = []
    for text in resolver(host, port):
        address = _unmapped(ipaddress.ip_address(text.split("%", 1)[0]))
        kind = kind_of(address)
        if kind is None or allowed.allows(host, address):
            return str(address)
        refused.append(f"{address} ({kind[2:] if kind.startswith('a ') else kind[3:]})")
    raise TargetRefused(
        f"refused: {host} resolves to {', '.join(refused) or 'nothing'}, not a public address;"
        " an administrator may allow it with webhook_allowed_hosts"
    )


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to ``address`` whatever ``host`` resolves to now; ``Host`` stays ``host``."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(_PinnedHTTP):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, address, timeout)
        self.context = ssl.create_default_context()

    def connect(self) -> None:
        super().connect()
        self.sock = self.context.wrap_socket(self.sock, server_hostname=self.host)


@dataclass(slots=True)
class Answer:
    """What a delivery attempt got: a status (None when no answer came) and why it failed."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    error: str | None = None
    duration: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allowed: AllowList,
    timeout: float,
    follow_redirects: bool = False,
    resolver: Resolver = resolve,
) -> Answer:
    """POST ``body`` to ``url`` (blocking). Never raises for network trouble: the answer
    carries the error."""
    start = time.monotonic()
    answer = Answer()
    try:
        for _ in range(MAX_REDIRECTS + 1):
            answer = _post_once(url, body, headers, allowed, timeout, resolver)
            location = answer.headers.get("location")
            if answer.status not in (301, 302, 303, 307, 308) or not location:
                break
            if not follow_redirects:
                answer.error = "redirects are not followed (webhook_follow_redirects is off)"
                break
            url = urljoin(url, location)
        else:
            answer.error = f"more than {MAX_REDIRECTS} redirects"
    except TargetRefused as exc:
        answer = Answer(error=str(exc))
    except ValueError as exc:
        answer = Answer(error=f"invalid URL: {exc}")
    except (OSError, http.client.HTTPException) as exc:
        answer = Answer(error=f"{type(exc).__name__}: {exc}"[:250])
    answer.duration = time.monotonic() - start
    return answer


def _post_once(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    allowed: AllowList,
    timeout: float,
    resolver: Resolver,
) -> Answer:
    scheme, host, port = check_url(url)
    address = pick_address(host, port, allowed, resolver)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kind = _PinnedHTTPS if scheme == "https" else _PinnedHTTP
    connection = kind(host, port, address, timeout)
    try:
        connection.request("POST", target, body=body, headers=dict(headers))
        response = connection.getresponse()
        data = response.read(MAX_READ)
        kept = data[:MAX_KEPT].decode("utf-8", "replace")
        if len(data) > MAX_KEPT:
            kept += "\n[truncated]"
        return Answer(
            status=response.status,
            headers={k.lower(): v[:1024] for k, v in response.getheaders()[:50]},
            body=kept,
        )
    finally:
        connection.close()
