"""``cargobay tls init``: a CA, a certificate for both host names, private keys 0600, the trust
commands printed."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from cargobay.cli import cli


def test_writes_a_ca_and_a_certificate_for_site_and_registry(tmp_path: Path) -> None:
    out = tmp_path / "tls"
    done = CliRunner().invoke(
        cli, ["tls", "init", "--hostname", "Reg.Example.com", "--dir", str(out)]
    )
    assert done.exit_code == 0, done.output
    for key in ("ca.key", "server.key"):
        assert stat.S_IMODE((out / key).stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate((out / "ca.crt").read_bytes())
    cert = x509.load_pem_x509_certificate((out / "server.crt").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [
        "reg.example.com",
        "containers.reg.example.com",
    ]
    assert cert.issuer == ca.subject
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    text = done.output
    assert "/etc/docker/certs.d/containers.reg.example.com/ca.crt" in text
    assert "/etc/containers/certs.d/containers.reg.example.com/ca.crt" in text
    assert "--cert-dir" in text and "update-ca-certificates" in text
    assert "docker login containers.reg.example.com" in text


def test_refuses_to_overwrite_and_bad_names(tmp_path: Path) -> None:
    out = tmp_path / "tls"
    runner = CliRunner()
    assert (
        runner.invoke(cli, ["tls", "init", "--hostname", "a.test", "--dir", str(out)]).exit_code
        == 0
    )
    before = (out / "ca.crt").read_bytes()
    again = runner.invoke(cli, ["tls", "init", "--hostname", "a.test", "--dir", str(out)])
    assert again.exit_code == 1 and (out / "ca.crt").read_bytes() == before
    forced = runner.invoke(
        cli, ["tls", "init", "--hostname", "a.test", "--dir", str(out), "--force"]
    )
    assert forced.exit_code == 0 and (out / "ca.crt").read_bytes() != before
    bad = runner.invoke(
        cli, ["tls", "init", "--hostname", "https://a.test/", "--dir", str(tmp_path / "x")]
    )
    assert bad.exit_code == 2
    assert not (tmp_path / "x").exists()
