"""Sign-in sessions and CSRF tokens, kept by no one: every value is signed, so any console
instance can check it and none has to remember it.

The signing key is derived from `ADMIN_TOKEN`: changing the token ends every session. A session
cookie is `<session_id>.<expires_at>.<signature>`; a form's CSRF token is a signature of the
session ID (before sign-in, of the nonce in the short-lived sign-in cookie), so a page of
another site can neither read nor forge one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

SESSION_COOKIE = "console_session"
SIGNIN_COOKIE = "console_signin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True)
class Session:
    """A signed-in operator's session."""

    session_id: str
    expires_at: int


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class SessionSigner:
    """Issues and checks session cookies and CSRF tokens with a key derived from the admin token."""

    def __init__(self, admin_token: str | None, lifetime_seconds: float) -> None:
        token = (admin_token or "").encode()
        self._token = token or None  # no token configured: nobody signs in
        self._key = hmac.new(token, b"cohort-console session key v1", hashlib.sha256).digest() if token else None
        self.lifetime_seconds = lifetime_seconds

    def _sign(self, purpose: str, value: str) -> str:
        assert self._key is not None
        return _b64(hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).digest())

    def token_matches(self, given: str) -> bool:
        """Whether `given` is the admin token (in constant time; always false with none configured)."""
        return self._token is not None and hmac.compare_digest(given.strip().encode(), self._token)

    def issue(self, session_id: str, now: float) -> str:
        """The cookie value of a new session."""
        expires_at = int(now + self.lifetime_seconds)
        return f"{session_id}.{expires_at}.{self._sign('session', f'{session_id}.{expires_at}')}"

    def read(self, cookie: str | None, now: float) -> Session | None:
        """The session a cookie carries, or None if it is missing, forged, malformed or expired."""
        if self._key is None or not cookie or cookie.count(".") != 2:
            return None
        session_id, expires, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign("session", f"{session_id}.{expires}")):
            return None
        if not expires.isdigit() or int(expires) <= now:
            return None
        return Session(session_id, int(expires))

    def csrf_token(self, session_id: str) -> str:
        """The token every form of this session carries."""
        return self._sign("csrf", session_id) if self._key is not None else ""

    def csrf_ok(self, session_id: str, given: str | None) -> bool:
        return self._key is not None and bool(given) and hmac.compare_digest(given, self._sign("csrf", session_id))

    def signin_token(self, nonce: str) -> str:
        """The sign-in form's CSRF token, bound to the nonce of the sign-in cookie."""
        return self._sign("signin", nonce) if self._key is not None else ""

    def signin_ok(self, nonce: str | None, given: str | None) -> bool:
        return (self._key is not None and bool(nonce) and bool(given)
                and hmac.compare_digest(given, self._sign("signin", nonce or "")))
