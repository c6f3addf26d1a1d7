"""Signing secrets at rest: AES-256-GCM under `DELIVERY_SECRET_KEY`, bound to the webhook
they belong to (associated data), so a dump of Redis shows no secret in clear and a stored
secret copied onto another webhook does not decrypt."""

from __future__ import annotations

import base64
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, secret: str, webhook_id: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, secret.encode(), webhook_id.encode())).decode()

    def open(self, sealed: str, webhook_id: str) -> str:
        raw = base64.b64decode(sealed)
        return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], webhook_id.encode()).decode()
