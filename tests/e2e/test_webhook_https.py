"""Webhooks over HTTPS, against real TLS receivers on 127.0.0.1: a receiver whose certificate
is signed by a CA the server trusts (named by ``SSL_CERT_FILE``, OpenSSL's standard variable)
gets signed deliveries; a receiver with a certificate no trusted CA signed gets nothing, and
its deliveries are logged as failed certificate checks and stay queued for retries.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import secrets
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from clients import ON_REFERENCE
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from test_webhooks import ORG, api, create_hook, settled_log

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(ON_REFERENCE, reason="the reference registry has no webhooks"),
]


@dataclass
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def make(cls, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, directory: Path) -> tuple[Path, Path]:
        """A server certificate for 127.0.0.1, as (certificate, key) PEM files."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        name = secrets.token_hex(4)
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return cert_path, key_path


class TlsReceiver:
    """An HTTPS webhook receiver on 127.0.0.1 that records every request it gets."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.received: list[dict[str, Any]] = []
        self.arrived = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.arrived:
                    outer.received.append(
                        {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                    )
                    outer.arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout: float = 60) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.received) >= count, timeout)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("webhook-tls")


@pytest.fixture(scope="module")
def trusted_ca(tls_dir: Path) -> Authority:
    return Authority.make("cargobay test webhook CA")


@pytest.fixture(scope="module")
def hooked(server_factory: Any, trusted_ca: Authority, tls_dir: Path) -> Any:
    """A registry that trusts only ``trusted_ca`` for outgoing TLS (the variable is set for
    the server's process only)."""
    bundle = tls_dir / "trusted.pem"
    bundle.write_bytes(trusted_ca.pem())
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SSL_CERT_FILE", str(bundle))
        return server_factory(webhook_allowed_hosts="127.0.0.1", webhook_interval=0.2)


def test_an_https_receiver_with_a_trusted_certificate_gets_signed_deliveries(
    hooked: Any, trusted_ca: Authority, tls_dir: Path
) -> None:
    receiver = TlsReceiver(*trusted_ca.issue(tls_dir))
    try:
        secret = secrets.token_hex(16)
        hook = create_hook(hooked, receiver.url, config={"secret": secret})
        with api(hooked) as client:
            assert client.post(f"/orgs/{ORG}/hooks/{hook['id']}/pings").status_code == 204
        receiver.wait_for(1)
        (got,) = receiver.received
        expected = "sha256=" + hmac.new(secret.encode(), got["body"], hashlib.sha256).hexdigest()
        assert hmac.compare_digest(got["headers"]["x-hub-signature-256"], expected)
        log = settled_log(
            hooked, hook["id"], lambda log: bool(log) and log[0]["state"] != "pending"
        )
        assert log[0]["state"] == "delivered" and log[0]["status_code"] == 200, log
    finally:
        receiver.stop()


def test_an_https_receiver_with_an_untrusted_certificate_gets_nothing_and_is_retried(
    hooked: Any, tls_dir: Path
) -> None:
    stranger = Authority.make("nobody trusts this CA")
    receiver = TlsReceiver(*stranger.issue(tls_dir))
    try:
        hook = create_hook(hooked, receiver.url, config={"secret": secrets.token_hex(8)})
        with api(hooked) as client:
            assert client.post(f"/orgs/{ORG}/hooks/{hook['id']}/pings").status_code == 204
        # Retried: a second attempt, after the back-off, fails the same way.
        log = settled_log(hooked, hook["id"], lambda log: bool(log) and log[0]["attempts"] >= 2)
        assert "CERTIFICATE_VERIFY_FAILED" in log[0]["status"], log
        assert log[0]["state"] == "pending" and not log[0]["status_code"], log
        assert receiver.received == []
    finally:
        receiver.stop()
