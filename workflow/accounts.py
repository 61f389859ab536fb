"""Staff accounts: users, argon2 password hashes and API tokens (stored only as digests)."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from .actors import Role
from .clock import utcnow
from .errors import Invalid, NotFound, Unauthenticated
from .models import ApiToken, User

_hasher = PasswordHasher()
TOKEN_PREFIX = "ow_"


def known_departments(session: Session) -> set[str]:
    """Every department named by a published process definition (or the packaged default)."""
    from .definitions import store

    return set(store.current(session).departments)


def create_user(session: Session, username: str, password: str, role: Role | str,
                department: str | None = None, display_name: str | None = None) -> User:
    """Create a staff user; refuse unknown departments, weak passwords and duplicate names."""
    role = Role(role)
    errors: dict[str, list[str]] = {}
    if not username or len(username) > 64:
        errors["username"] = ["must be 1 to 64 characters"]
    elif session.scalar(select(User.id).where(User.username == username)) is not None:
        errors["username"] = [f"user {username} already exists"]
    if len(password) < 8:
        errors["password"] = ["must be at least 8 characters"]
    if role is not Role.admin and not department:
        errors["department"] = ["clerks and supervisors need a department"]
    elif department and department not in known_departments(session):
        errors["department"] = [f"unknown department {department}"]
    if errors:
        raise Invalid(errors)
    user = User(username=username, display_name=display_name or username, role=role,
                department=department, password_hash=_hasher.hash(password))
    session.add(user)
    session.flush()
    return user


def check_password(user: User, password: str) -> bool:
    """Whether ``password`` is the user's, in constant time."""
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in: the user, or a refusal fit to show (``locked`` says which kind)."""

    user: User | None
    refusal: str | None = None
    locked: bool = False


def sign_in(session: Session, username: str, password: str) -> SignIn:
    """Check a password; lock the account for 15 minutes after 5 wrong ones in a row.

    The caller commits whatever the outcome: a wrong password is a change (the count) to keep.
    An unknown user and a wrong password get the same refusal, so names cannot be probed.
    """
    now = utcnow()
    user = session.scalar(select(User).where(User.username == username).with_for_update())
    if user is None:
        _hasher.hash(password)  # take as long as a real check
        return SignIn(None, "wrong username or password")
    if user.locked_until is not None and user.locked_until > now:
        return SignIn(None, "account locked after repeated wrong passwords; try again in 15 minutes", locked=True)
    if not check_password(user, password):
        user.failed_logins += 1
        locked = user.failed_logins >= MAX_FAILED_LOGINS
        if locked:
            user.failed_logins, user.locked_until = 0, now + LOCKOUT
        session.flush()
        if locked:
            return SignIn(None, "account locked after repeated wrong passwords; try again in 15 minutes", locked=True)
        return SignIn(None, "wrong username or password")
    if not user.active:
        return SignIn(None, "this account is disabled")
    user.failed_logins, user.locked_until = 0, None
    session.flush()
    return SignIn(user)


def _digest(token: str) -> str:
    # Tokens carry 256 random bits, so a plain SHA-256 is as good as a slow hash here and keeps
    # every API request cheap.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, username: str, label: str = "") -> str:
    """Issue a new API token for ``username``; the plain token is returned once and never stored."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_hash=_digest(token), label=label))
    session.flush()
    return token


def user_for_token(session: Session, token: str) -> User:
    """The active user a bearer token belongs to, or Unauthenticated."""
    row = session.execute(
        select(ApiToken, User).join(User).where(ApiToken.token_hash == _digest(token))
    ).first()
    if row is None or row.ApiToken.revoked_at is not None or not row.User.active:
        raise Unauthenticated("unknown, revoked or disabled token")
    return row.User


def revoke_token(session: Session, token: str) -> None:
    """Revoke a token so that it no longer authenticates."""
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(token)))
    if row is None:
        raise NotFound("no such token")
    row.revoked_at = utcnow()
