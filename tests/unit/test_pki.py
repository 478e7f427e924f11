"""The cluster CA and the managers' certificates."""

from __future__ import annotations

import ssl

from cryptography import x509

from swarmpy import pki


def test_a_certificate_the_ca_signs_for_the_managers_addresses(tmp_path):
    pki.create_ca(tmp_path / "ca.crt", tmp_path / "ca.key", "test")
    assert oct((tmp_path / "ca.key").stat().st_mode & 0o777) == "0o600"
    addresses = ["10.1.2.3", "127.0.0.1", "localhost"]
    assert pki.needs_certificate(tmp_path / "api.crt", addresses)
    pki.issue(tmp_path / "ca.crt", tmp_path / "ca.key", tmp_path / "api.crt", tmp_path / "api.key", addresses)
    assert not pki.needs_certificate(tmp_path / "api.crt", addresses)
    assert pki.needs_certificate(tmp_path / "api.crt", ["10.9.9.9", "127.0.0.1", "localhost"])  # moved: a new one
    cert = x509.load_pem_x509_certificate((tmp_path / "api.crt").read_bytes())
    ca = x509.load_pem_x509_certificate((tmp_path / "ca.crt").read_bytes())
    cert.verify_directly_issued_by(ca)
    # and Python's TLS stack accepts the pair for a server, trusting the CA alone
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "api.crt", tmp_path / "api.key")
    client = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    assert client.cert_store_stats()["x509_ca"] == 1
