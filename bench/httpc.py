"""A small HTTP/1.1 client on raw sockets, built so that it is not the bottleneck.

Bodies are sent with `sendall` of large buffers (8 MiB) and received with `recv_into`
a reused buffer when the caller only wants to count bytes. Keep-alive is the default.
Also: blob data generation and registry bearer-token discovery.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import ssl
import struct
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

MiB = 1 << 20
GiB = 1 << 30
CHUNK = 8 * MiB
RECV_BUF = 4 * MiB

Body = bytes | bytearray | memoryview


class HTTPError(Exception):
    pass


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    nbytes: int = 0  # body length, also when discarded

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


class Conn:
    """One keep-alive connection. Not thread-safe: one per thread."""

    def __init__(
        self, host: str, port: int, timeout: float = 300.0, tls: ssl.SSLContext | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.tls = tls
        self.sock: socket.socket | None = None
        self._rbuf = bytearray()
        self._scratch = bytearray(RECV_BUF)
        self.extra_headers: dict[str, str] = {}

    # -- connection -------------------------------------------------------------------
    def _connect(self) -> socket.socket:
        if self.sock is None:
            s = socket.create_connection((self.host, self.port), timeout=self.timeout)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                s = self.tls.wrap_socket(s, server_hostname=self.host)
            self.sock = s
            self._rbuf.clear()
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------
    def _fill(self) -> None:
        assert self.sock is not None
        n = self.sock.recv_into(self._scratch, RECV_BUF)
        if n == 0:
            raise HTTPError("connection closed by server")
        self._rbuf += self._scratch[:n]

    def _read_until(self, marker: bytes) -> bytes:
        start = 0
        while True:
            i = self._rbuf.find(marker, start)
            if i >= 0:
                out = bytes(self._rbuf[: i + len(marker)])
                del self._rbuf[: i + len(marker)]
                return out
            start = max(0, len(self._rbuf) - len(marker) + 1)
            self._fill()

    def _read_exact(self, n: int, keep: bool) -> bytes:
        """Read n body bytes; return them if keep, else discard into the scratch buffer."""
        assert self.sock is not None
        if keep:
            while len(self._rbuf) < n:
                self._fill()
            out = bytes(self._rbuf[:n])
            del self._rbuf[:n]
            return out
        take = min(n, len(self._rbuf))
        del self._rbuf[:take]
        left = n - take
        view = memoryview(self._scratch)
        sock = self.sock
        while left:
            got = sock.recv_into(view, min(left, RECV_BUF))
            if got == 0:
                raise HTTPError("connection closed mid-body")
            left -= got
        return b""

    def _read_to_eof(self, keep: bool) -> tuple[bytes, int]:
        assert self.sock is not None
        chunks = [bytes(self._rbuf)] if keep else []
        total = len(self._rbuf)
        self._rbuf.clear()
        while True:
            got = self.sock.recv_into(self._scratch, RECV_BUF)
            if got == 0:
                break
            total += got
            if keep:
                chunks.append(bytes(self._scratch[:got]))
        self.close()
        return b"".join(chunks), total

    def _read_chunked(self, keep: bool) -> tuple[bytes, int]:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self._read_until(b"\r\n")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                # trailers until an empty line
                while self._read_until(b"\r\n") != b"\r\n":
                    pass
                return b"".join(parts), total
            data = self._read_exact(size, keep)
            total += size
            if keep:
                parts.append(data)
            self._read_exact(2, False)

    # -- request ----------------------------------------------------------------------
    def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: Body | Iterable[Body] | None = None,
        length: int | None = None,
        keep_body: bool = True,
    ) -> Response:
        """Send one request and read the whole response.

        body: bytes-like (sent with the headers) or an iterable of buffers (then
        `length` is the Content-Length). With keep_body=False the response body is
        only counted, never stored.
        """
        sock = self._connect()
        hdrs = {"Host": f"{self.host}:{self.port}", **self.extra_headers, **(headers or {})}
        single: Body | None = None
        chunks: Iterable[Body] | None = None
        if isinstance(body, bytes | bytearray | memoryview):
            single = body
            length = len(body)
        elif body is not None:
            chunks = body
        if length is not None:
            hdrs["Content-Length"] = str(length)
        elif method in ("POST", "PUT", "PATCH"):
            hdrs["Content-Length"] = "0"
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
        head_b = (head + "\r\n").encode("latin-1")
        try:
            if single is not None and len(single) <= 64 * 1024:
                sock.sendall(head_b + bytes(single))
            else:
                sock.sendall(head_b)
                if single is not None:
                    sock.sendall(single)
                elif chunks is not None:
                    sent = 0
                    for buf in chunks:
                        sock.sendall(buf)
                        sent += len(buf)
                    if sent != length:
                        raise HTTPError(f"body generator gave {sent} bytes, declared {length}")
            return self._read_response(method, keep_body)
        except BaseException:
            self.close()
            raise

    def _read_response(self, method: str, keep_body: bool) -> Response:
        while True:
            raw = self._read_until(b"\r\n\r\n").decode("latin-1")
            lines = raw.split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            if status != 100:
                break
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            k, _, v = line.partition(":")
            key = k.strip().lower()
            headers[key] = f"{headers[key]}, {v.strip()}" if key in headers else v.strip()
        body = b""
        nbytes = 0
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body, nbytes = self._read_chunked(keep_body)
        elif "content-length" in headers:
            nbytes = int(headers["content-length"])
            body = self._read_exact(nbytes, keep_body)
        else:
            body, nbytes = self._read_to_eof(keep_body)
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, headers, body, nbytes)


# -- URLs ---------------------------------------------------------------------------


def path_of(location: str) -> str:
    """Path + query of a Location header (absolute or relative)."""
    u = urllib.parse.urlsplit(location)
    return u.path + (f"?{u.query}" if u.query else "")


def add_query(target: str, **params: str) -> str:
    sep = "&" if "?" in target else "?"
    return target + sep + urllib.parse.urlencode(params)


def expect(resp: Response, *ok: int, what: str = "") -> Response:
    if resp.status not in ok:
        snippet = resp.body[:300].decode("utf-8", "replace") if resp.body else ""
        raise HTTPError(f"{what}: HTTP {resp.status} (expected {ok}) {snippet}".strip())
    return resp


# -- generated blob data ------------------------------------------------------------

_BASE: bytearray | None = None


def _base() -> bytearray:
    global _BASE
    if _BASE is None:
        _BASE = bytearray(os.urandom(CHUNK))
    return _BASE


@dataclass
class BlobData:
    """Deterministic blob content of `size` bytes, generated chunk by chunk.

    Every 8 MiB chunk is one shared random buffer whose first 16 bytes are (seed,
    index), so distinct seeds give distinct digests and nothing large is held.
    """

    seed: int
    size: int
    _digest: str | None = field(default=None, repr=False)

    def chunks(self, chunk: int = CHUNK) -> Iterator[memoryview]:
        base = _base()
        buf = bytearray(base[:chunk]) if chunk < CHUNK else bytearray(base)
        view = memoryview(buf)
        off = 0
        i = 0
        while off < self.size:
            n = min(chunk, self.size - off)
            buf[0:16] = struct.pack("<QQ", self.seed, i)
            yield view[:n]
            off += n
            i += 1

    @property
    def digest(self) -> str:
        if self._digest is None:
            h = hashlib.sha256()
            for c in self.chunks():
                h.update(c)
            self._digest = "sha256:" + h.hexdigest()
        return self._digest

    def sent_in(self, chunk: int) -> BlobData:
        """The same blob with the digest of what `chunks(chunk)` yields (content below 8 MiB
        chunks depends on the chunk size)."""
        h = hashlib.sha256()
        for c in self.chunks(chunk):
            h.update(c)
        return BlobData(self.seed, self.size, "sha256:" + h.hexdigest())

    def to_bytes(self) -> bytes:
        return b"".join(bytes(c) for c in self.chunks())


# -- registry operations --------------------------------------------------------------


def upload_put(conn: Conn, repo: str, blob: BlobData) -> None:
    """POST to open an upload, then one PUT ?digest= carrying the whole body."""
    r = expect(conn.request("POST", f"/v2/{repo}/blobs/uploads/"), 202, what="POST upload")
    loc = path_of(r.header("location"))
    target = add_query(loc, digest=blob.digest)
    expect(
        conn.request(
            "PUT",
            target,
            {"Content-Type": "application/octet-stream"},
            body=blob.chunks(),
            length=blob.size,
        ),
        201,
        what="PUT upload",
    )


def upload_small(conn: Conn, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = expect(conn.request("POST", f"/v2/{repo}/blobs/uploads/"), 202, what="POST upload")
    loc = path_of(r.header("location"))
    expect(
        conn.request(
            "PUT",
            add_query(loc, digest=digest),
            {"Content-Type": "application/octet-stream"},
            body=data,
        ),
        201,
        what="PUT upload",
    )
    return digest


def upload_chunked(conn: Conn, repo: str, blob: BlobData, chunk: int = CHUNK) -> None:
    """POST, PATCH every `chunk` bytes with Content-Range, then PUT ?digest= (no body)."""
    r = expect(conn.request("POST", f"/v2/{repo}/blobs/uploads/"), 202, what="POST upload")
    loc = path_of(r.header("location"))
    off = 0
    for part in blob.chunks(chunk):
        n = len(part)
        r = expect(
            conn.request(
                "PATCH",
                loc,
                {
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{off}-{off + n - 1}",
                },
                body=part,
            ),
            202,
            what=f"PATCH @{off}",
        )
        loc = path_of(r.header("location", loc))
        off += n
    expect(conn.request("PUT", add_query(loc, digest=blob.digest)), 201, what="PUT close")


def download(conn: Conn, target: str, rng: str | None = None) -> int:
    """GET a blob, discarding the body; follows one loopback redirect. Returns bytes."""
    headers = {"Range": rng} if rng else {}
    r = conn.request("GET", target, headers, keep_body=False)
    if r.status in (301, 302, 303, 307, 308):
        loc = r.header("location")
        u = urllib.parse.urlsplit(loc)
        if u.hostname not in (None, "", "127.0.0.1", "localhost", "::1"):
            raise HTTPError(f"refusing non-loopback redirect to {u.hostname}")
        if u.port and u.port != conn.port:
            with Conn(u.hostname or conn.host, u.port) as other:
                r = other.request("GET", path_of(loc), headers, keep_body=False)
        else:
            r = conn.request("GET", path_of(loc), headers, keep_body=False)
    expect(r, 206 if rng else 200, what=f"GET {target}")
    return r.nbytes


# -- auth ---------------------------------------------------------------------------


@dataclass
class Auth:
    """Bearer token discovery as docker does it, done once per server (refreshed on expiry)."""

    host: str
    port: int
    repos: list[str]
    realm: str | None = None
    service: str | None = None
    token: str | None = None
    expires_at: float = 0.0
    basic: str | None = None
    tls: ssl.SSLContext | None = None

    def discover(self) -> Auth:
        with Conn(self.host, self.port, timeout=30, tls=self.tls) as c:
            r = c.request("GET", "/v2/")
        if r.status == 200:
            return self
        chal = r.header("www-authenticate")
        if r.status != 401 or not chal.lower().startswith("bearer "):
            raise HTTPError(f"GET /v2/: HTTP {r.status}, challenge {chal!r}")
        params = _parse_challenge(chal[7:])
        self.realm = params.get("realm")
        self.service = params.get("service")
        user = os.environ.get("CARGOBAY_BENCH_USER")
        secret = os.environ.get("CARGOBAY_BENCH_TOKEN")
        if user and secret:
            self.basic = "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()
        self.fetch()
        return self

    @property
    def enabled(self) -> bool:
        return self.realm is not None

    def realm_target(self) -> tuple[str, int, str]:
        """(host, port, path?query) of the token request for the bench scopes."""
        assert self.realm
        u = urllib.parse.urlsplit(self.realm)
        if u.hostname not in ("127.0.0.1", "localhost", "::1", None, ""):
            raise HTTPError(f"token realm {self.realm} is not on loopback: refusing")
        host = u.hostname or self.host
        port = u.port or (self.port if not u.hostname else 80)
        query: list[tuple[str, str]] = []
        if self.service:
            query.append(("service", self.service))
        query += [("scope", f"repository:{r}:pull,push,delete") for r in self.repos]
        path = (u.path or "/") + "?" + urllib.parse.urlencode(query)
        return host, port, path

    def fetch(self) -> None:
        host, port, path = self.realm_target()
        with Conn(host, port, timeout=30, tls=self.tls) as c:
            r = c.request("GET", path, {"Authorization": self.basic} if self.basic else {})
        expect(r, 200, what="token request")
        doc = json.loads(r.body)
        self.token = doc.get("token") or doc.get("access_token")
        if not self.token:
            raise HTTPError("token response without token")
        self.expires_at = time.time() + float(doc.get("expires_in", 60)) - 20

    def headers(self) -> dict[str, str]:
        if not self.enabled:
            return {}
        if time.time() > self.expires_at:
            self.fetch()
        return {"Authorization": f"Bearer {self.token}"}


def _parse_challenge(s: str) -> dict[str, str]:
    out: dict[str, str] = {}
    i = 0
    while i < len(s):
        eq = s.find("=", i)
        if eq < 0:
            break
        key = s[i:eq].strip().strip(",").strip()
        if eq + 1 < len(s) and s[eq + 1] == '"':
            end = s.index('"', eq + 2)
            val = s[eq + 2 : end]
            i = end + 1
        else:
            end = s.find(",", eq)
            end = len(s) if end < 0 else end
            val = s[eq + 1 : end].strip()
            i = end
        out[key.lower()] = val
        i = s.find(",", i)
        if i < 0:
            break
        i += 1
    return out
