"""The dashboard's login: the cluster token, asked once, kept as a signed session cookie.

A browser cannot send `Authorization: Bearer` with a page load or an EventSource, so the
login page takes the token and sets a cookie (Secure over HTTPS, HttpOnly, SameSite=Strict,
path /ui/) signed with a key derived from the cluster token: a new cluster token ends every
session. The cookie holds a CSRF token the page sends back in a header with every change.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from flask import Response, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "swarmpy_ui"
LIFETIME = 12 * 3600  # seconds a login lasts
CSRF_HEADER = "X-CSRF-Token"


def _signer(cluster_token: str) -> URLSafeTimedSerializer:
    key = hmac.new(cluster_token.encode(), b"swarmpy dashboard session", hashlib.sha256).hexdigest()
    return URLSafeTimedSerializer(key, salt="swarmpy-ui-session")


def start(response: Response, cluster_token: str) -> None:
    """Log the browser in (the caller was checked: the cluster token)."""
    value = _signer(cluster_token).dumps({"csrf": secrets.token_urlsafe(24)})
    # Secure only over HTTPS: over plain HTTP the browser would never send it back.
    response.set_cookie(COOKIE, value, max_age=LIFETIME, path="/ui/", secure=request.is_secure, httponly=True,
                        samesite="Strict")


def end(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/ui/", secure=request.is_secure, httponly=True, samesite="Strict")


def current(cluster_token: str) -> dict | None:
    """The session the request's cookie holds, or None (none, forged or expired)."""
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    try:
        session = _signer(cluster_token).loads(value, max_age=LIFETIME)
    except BadSignature:  # SignatureExpired included
        return None
    return session if isinstance(session, dict) and isinstance(session.get("csrf"), str) else None


def csrf_ok(session: dict) -> bool:
    return hmac.compare_digest(request.headers.get(CSRF_HEADER, "").encode(), session["csrf"].encode())
