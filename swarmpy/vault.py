"""Encryption at rest of what must not be read from Redis: secrets' content and
nodes' SSH identities. One symmetric cluster key (Fernet: AES-128-CBC with
HMAC-SHA256) lives in the state dir of each manager machine, never in Redis.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class VaultError(Exception):
    pass


class Vault:
    def __init__(self, key: bytes):
        self._fernet = Fernet(key)

    @classmethod
    def create_key(cls, path: Path) -> "Vault":
        """Write a new cluster key (mode 0600) unless one is there; return the vault."""
        path = Path(path)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
        return cls.from_file(path)

    @classmethod
    def from_file(cls, path: Path) -> "Vault":
        try:
            return cls(Path(path).read_bytes().strip())
        except OSError as e:
            raise VaultError(f"cannot read the cluster key {path}: {e.strerror}") from e

    def encrypt(self, data: bytes) -> str:
        return self._fernet.encrypt(data).decode("ascii")

    def decrypt(self, token: str) -> bytes:
        try:
            return self._fernet.decrypt(token.encode("ascii"))
        except InvalidToken as e:
            raise VaultError("cannot decrypt: this cluster key did not encrypt it") from e
