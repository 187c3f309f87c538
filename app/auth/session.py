"""The signed-in user, resolved once per request from the session cookie.

The cookie holds the user id, the time of sign-in and the time of the last
activity. The user row is read on every request, so disabling a user ends their
sessions at the next click. A session ends after ``IDLE_TIMEOUT`` without activity
and ``ABSOLUTE_TIMEOUT`` after sign-in, whatever the activity: a cookie copied from
a shared computer stops working on its own.
"""

from __future__ import annotations

import datetime as dt
import functools
import uuid
from collections.abc import Callable
from typing import Any

from flask import g, redirect, request, session, url_for

from app.db import db, utcnow
from tenants.models import User

SESSION_USER = "uid"
SESSION_AUTH_AT = "auth_at"
SESSION_SEEN_AT = "seen_at"
SESSION_GENERATION = "gen"
IDLE_TIMEOUT = dt.timedelta(hours=2)
ABSOLUTE_TIMEOUT = dt.timedelta(hours=12)
# Refresh "last seen" at most this often, so the cookie is not re-issued on every click.
SEEN_RESOLUTION = dt.timedelta(minutes=1)


def _expired(now: dt.datetime) -> bool:
    try:
        auth_at = dt.datetime.fromisoformat(session[SESSION_AUTH_AT])
        seen_at = dt.datetime.fromisoformat(session.get(SESSION_SEEN_AT, session[SESSION_AUTH_AT]))
    except (KeyError, TypeError, ValueError):
        return True
    return now - auth_at > ABSOLUTE_TIMEOUT or now - seen_at > IDLE_TIMEOUT


def current_user() -> User | None:
    if "user" in g:
        return g.user
    user = None
    raw = session.get(SESSION_USER)
    now = utcnow()
    if raw and _expired(now):
        session.clear()
        raw = None
    if raw:
        try:
            user = db.session.get(User, uuid.UUID(raw))
        except ValueError:
            user = None
        if (user is None or not user.is_active
                or session.get(SESSION_GENERATION) != user.session_generation):
            session.clear()
            user = None
        else:
            seen = dt.datetime.fromisoformat(session.get(SESSION_SEEN_AT, session[SESSION_AUTH_AT]))
            if now - seen >= SEEN_RESOLUTION:
                session[SESSION_SEEN_AT] = now.isoformat()
    g.user = user
    return user


def sign_in(user: User) -> None:
    """Start a fresh session for ``user``: anything from before sign-in is dropped."""
    session.clear()
    session[SESSION_USER] = str(user.id)
    session[SESSION_AUTH_AT] = session[SESSION_SEEN_AT] = utcnow().isoformat()
    session[SESSION_GENERATION] = user.session_generation
    session.permanent = True
    g.user = user


def sign_out() -> None:
    session.clear()
    g.user = None


def sign_out_everywhere(user: User) -> None:
    """End every session of ``user`` on every device, this one included."""
    user.session_generation = User.session_generation + 1
    db.session.commit()
    sign_out()


def safe_next(target: str | None) -> str | None:
    """Only same-origin relative paths: ``/t/acme/``, never ``//evil`` or ``https://``."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 32 for c in target):
        return None
    return target


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper
