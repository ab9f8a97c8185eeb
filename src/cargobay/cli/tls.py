"""``cargobay tls init``: a local certificate authority and a certificate for the site and the
registry host, so clients talk HTTPS to a new instance without insecure-registry settings."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Annotated

import typer

from cargobay.settings import Settings

tls_cli = typer.Typer(help="HTTPS: a local certificate authority and server certificate.")

CA_DAYS = 3650
CERT_DAYS = 825  # the longest validity clients accept for a server certificate


def _write(path: Path, data: bytes, private: bool) -> None:
    """Write ``data``; private keys are created 0600 (never readable by others, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, mode)


def _names(hostname: str, registry_hostname: str) -> list[str]:
    settings = Settings(hostname=hostname, registry_hostname=registry_hostname)
    return [settings.hostname, settings.registry_host_name]


@tls_cli.command("init")
def init(
    hostname: Annotated[str, typer.Option(help="The site's host name (e.g. cargobay.localhost).")],
    registry_hostname: Annotated[
        str, typer.Option(help="The registry's host name (default containers.HOSTNAME).")
    ] = "",
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the CA and the certificate are written.")
    ] = Path("./cargobay-tls"),
    force: Annotated[bool, typer.Option(help="Replace existing files (a new CA).")] = False,
) -> None:
    """Write ca.crt/ca.key (a local CA) and server.crt/server.key for HOSTNAME and its registry
    host, then print how to serve with them and how to make clients trust the CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    try:
        site, registry = _names(hostname, registry_hostname)
    except ValueError as exc:
        typer.echo(f"cargobay: {exc}", err=True)
        raise typer.Exit(2) from None
    directory = directory.resolve()
    paths = {n: directory / n for n in ("ca.crt", "ca.key", "server.crt", "server.key")}
    if not force and any(p.exists() for p in paths.values()):
        typer.echo(f"cargobay: {directory} already holds TLS files; use --force to replace them")
        raise typer.Exit(1)

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"cargobay local CA ({site})")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(site), x509.DNSName(registry)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, site)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    private = {
        "encoding": pem,
        "format": serialization.PrivateFormat.PKCS8,
        "encryption_algorithm": serialization.NoEncryption(),
    }
    _write(paths["ca.key"], ca_key.private_bytes(**private), private=True)  # type: ignore[arg-type]
    _write(paths["ca.crt"], ca_cert.public_bytes(pem), private=False)
    _write(paths["server.key"], key.private_bytes(**private), private=True)  # type: ignore[arg-type]
    _write(paths["server.crt"], cert.public_bytes(pem), private=False)
    typer.echo(trust_instructions(directory, site, registry))


def trust_instructions(directory: Path, site: str, registry: str) -> str:
    ca = directory / "ca.crt"
    return f"""\
Wrote a local CA and a certificate for {site} and {registry} in {directory}
(ca.key and server.key are readable by their owner only; keep ca.key secret).

Serve HTTPS with it:
  cargobay serve --hostname {site} --port 443 --host 0.0.0.0 \\
    --tls-cert {directory / "server.crt"} --tls-key {directory / "server.key"}
  (another port: add :PORT to every address below, e.g. certs.d/{registry}:PORT)

Trust the CA (as root):
  docker:          mkdir -p /etc/docker/certs.d/{registry} && \\
                   cp {ca} /etc/docker/certs.d/{registry}/ca.crt
  podman, skopeo, buildah:
                   mkdir -p /etc/containers/certs.d/{registry} && \\
                   cp {ca} /etc/containers/certs.d/{registry}/ca.crt
                   (or per command: --cert-dir DIR, with DIR holding ca.crt)
  system store (browsers, curl), Debian/Ubuntu:
                   cp {ca} /usr/local/share/ca-certificates/cargobay-{site}.crt && \\
                   update-ca-certificates
  Fedora/RHEL:     cp {ca} /etc/pki/ca-trust/source/anchors/cargobay-{site}.crt && \\
                   update-ca-trust
  macOS:           security add-trusted-cert -d -r trustRoot \\
                     -k /Library/Keychains/System.keychain {ca}

Then: docker login {registry}   and open https://{site}/ in a browser.
"""
