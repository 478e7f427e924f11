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


def test_the_stores_config_has_tls_only_and_a_user_per_part_with_the_default_off():
    from swarmpy.store import replication
    users = replication.new_users()
    tls = {"ca": "/s/ca.crt", "cert": "/s/tls/store.crt", "key": "/s/tls/store.key"}
    conf = replication.redis_conf(6380, ["127.0.0.1", "10.1.0.2"], users, tls, "/s/redis", "/s/run/redis.log")
    lines = conf.splitlines()
    assert "port 0" in lines and "tls-port 6380" in lines and "tls-auth-clients yes" in lines
    assert "tls-replication yes" in lines and any(line.startswith("user default off ") for line in lines)
    assert "masteruser replica" in lines and f"masterauth {users['replica']}" in lines
    for name in ("manager", "worker", "lb", "replica", "sentinel"):
        assert any(line.startswith(f"user {name} on #") for line in lines)
        assert users[name] not in conf or name == "replica"  # kept as hashes, but the replica's own login
    sentinel = replication.sentinel_conf(26380, ["127.0.0.1"], users, tls, "/s/sentinel", "/s/run/s.log",
                                         "10.1.0.2", ("10.1.0.2", 6380), 3).splitlines()
    assert "tls-port 26380" in sentinel and f"requirepass {users['sentinel-access']}" in sentinel
    assert "sentinel auth-user swarmpy sentinel" in sentinel
    plain = replication.redis_conf(6380, ["127.0.0.1"], users, {}, "/s/redis", "/s/log")
    assert "port 6380" in plain.splitlines() and "tls" not in plain
