"""Encryption of secrets the app must read back (webhook signing secrets, IdP client
secrets): Fernet (AES-128-CBC + HMAC-SHA256) with a key derived from SECRET_KEY.

The derivation is HKDF with a purpose label, so the session-signing key and the
encryption key are never the same bytes, and rotating SECRET_KEY makes stored
secrets unreadable (re-enter them) rather than silently weak.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class SecretUnreadable(ValueError):
    """The stored secret was encrypted under another key, or was altered."""


def _fernet(secret_key: str, purpose: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
               info=f"erp:{purpose}:v1".encode()).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt(secret_key: str, purpose: str, plaintext: str) -> bytes:
    return _fernet(secret_key, purpose).encrypt(plaintext.encode())


def decrypt(secret_key: str, purpose: str, token: bytes) -> str:
    try:
        return _fernet(secret_key, purpose).decrypt(bytes(token)).decode()
    except InvalidToken:
        raise SecretUnreadable(f"cannot decrypt a stored {purpose} secret") from None
