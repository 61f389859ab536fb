"""Staff accounts: users, argon2 password hashes and API tokens (stored only as digests).

What an administrator does to an account (create, disable, enable, reset its password, issue or
revoke a token) takes the admin as ``by`` or ``actor`` and is written to the administrators' log
(``AdminEvent``), in the caller's transaction like every other change.
"""
from __future__ import annotations

import hashlib
import secrets
import threading
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from .actors import Actor, Role
from .clock import utcnow
from .errors import Forbidden, IllegalAction, Invalid, NotFound, Unauthenticated
from .models import AdminEvent, ApiToken, User

_hasher = PasswordHasher()
# argon2id holds its whole memory cost (64 MiB in argon2-cffi's RFC 9106 profile) while it hashes or
# verifies, so N sign-ins at once would take a worker N × 64 MiB higher: one at a time per process.
# A check takes a few tens of milliseconds; sign-ins are rare enough that the queue never shows.
_hashing = threading.Lock()
TOKEN_PREFIX = "ow_"


def _hash(password: str) -> str:
    with _hashing:
        return _hasher.hash(password)


def known_departments(session: Session) -> set[str]:
    """Every department named by a published process definition (or the packaged default)."""
    from .definitions import store

    return set(store.current(session).departments)


def _password_errors(password: str) -> list[str]:
    """What is wrong with a new password (the same rule when creating a user and resetting one)."""
    return ["must be at least 8 characters"] if len(password) < 8 else []


def create_user(session: Session, username: str, password: str, role: Role | str,
                department: str | None = None, display_name: str | None = None, *, by: Actor | None = None) -> User:
    """Create a staff user; refuse unknown departments, weak passwords and duplicate names.

    ``by`` is the administrator doing it, logged; seeding and tests leave it out.
    """
    if by is not None:
        _admin_only(by)
    errors: dict[str, list[str]] = {}
    try:
        role = Role(role)
    except ValueError:
        raise Invalid({"role": [f"unknown role {role}"]}) from None
    if not username or len(username) > 64:
        errors["username"] = ["must be 1 to 64 characters"]
    elif "/" in username or any(unicodedata.category(c) == "Cc" for c in username):
        # A user's page is /admin/users/<username>: a slash would make it unreachable.
        errors["username"] = ["must not contain / or control characters"]
    elif session.scalar(select(User.id).where(User.username == username)) is not None:
        errors["username"] = [f"user {username} already exists"]
    if display_name is not None and len(display_name) > 64:
        errors["display_name"] = ["must be at most 64 characters"]
    if problems := _password_errors(password):
        errors["password"] = problems
    if role is not Role.admin and not department:
        errors["department"] = ["clerks and supervisors need a department"]
    elif department and department not in known_departments(session):
        errors["department"] = [f"unknown department {department}"]
    if errors:
        raise Invalid(errors)
    user = User(username=username, display_name=display_name or username, role=role,
                department=department, password_hash=_hash(password))
    session.add(user)
    session.flush()
    if by is not None:
        _log(session, by, "user_created", user, role=role.value, department=department)
    return user


def check_password(user: User, password: str) -> bool:
    """Whether ``password`` is the user's, in constant time."""
    try:
        with _hashing:
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
        _hash(password)  # take as long as a real check
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


def create_token(session: Session, username: str, label: str = "", *, by: Actor | None = None) -> str:
    """Issue a new API token for ``username``; the plain token is returned once and never stored.

    ``by`` is the administrator issuing it, logged with the token's id and label.
    """
    if by is not None:
        _admin_only(by)
    user = get_user(session, username)
    if not user.active:
        raise IllegalAction(f"user {username} is disabled; enable the account before issuing a token",
                            state="disabled")
    if len(label) > 64:
        raise Invalid({"label": ["must be at most 64 characters"]})
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, token_hash=_digest(token), label=label)
    session.add(row)
    session.flush()
    if by is not None:
        _log(session, by, "token_issued", user, token_id=row.id, label=label)
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


# ---------------------------------------------------------------- what administrators do

def _admin_only(actor: Actor) -> None:
    if actor.role is not Role.admin:
        raise Forbidden("only admins manage accounts")


def _log(session: Session, actor: Actor, action: str, user: User, **details) -> None:
    session.add(AdminEvent(at=utcnow(), actor=actor.username, actor_id=actor.user_id, action=action,
                           subject=user.username, details=details))
    session.flush()


def get_user(session: Session, username: str) -> User:
    """The user called ``username``, or NotFound."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise NotFound(f"no user {username}")
    return user


def list_users(session: Session) -> list[User]:
    """Every user: admins first, then by department and username."""
    return list(session.scalars(select(User).order_by(User.department.is_not(None), User.department,
                                                      User.username)))


def set_active(session: Session, actor: Actor, username: str, active: bool) -> User:
    """Enable or disable an account (admins). A disabled user is signed out on the next request and
    its tokens stop working; enabling it again brings both back. Doing it twice changes nothing.
    """
    _admin_only(actor)
    user = get_user(session, username)
    if not active and user.id == actor.user_id:
        raise IllegalAction("you cannot disable your own account", state="active")
    if user.active != active:
        user.active = active
        _log(session, actor, "user_enabled" if active else "user_disabled", user)
    return user


def disable_user(session: Session, actor: Actor, username: str) -> User:
    """Disable an account (admins; never one's own)."""
    return set_active(session, actor, username, False)


def enable_user(session: Session, actor: Actor, username: str) -> User:
    """Enable a disabled account again (admins)."""
    return set_active(session, actor, username, True)


def reset_password(session: Session, actor: Actor, username: str, password: str) -> User:
    """Set a new password (admins; the same rule as a new account's) and lift any lockout."""
    _admin_only(actor)
    user = get_user(session, username)
    if problems := _password_errors(password):
        raise Invalid({"password": problems})
    user.password_hash = _hash(password)
    user.failed_logins, user.locked_until = 0, None
    _log(session, actor, "password_reset", user)
    return user


def tokens_of(session: Session, username: str) -> list[ApiToken]:
    """A user's API tokens, newest first, revoked ones included (only digests are stored)."""
    user = get_user(session, username)
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def revoke_token_by_id(session: Session, actor: Actor, token_id: int) -> ApiToken:
    """Revoke a token by its id (admins); revoking it again keeps the first revocation."""
    _admin_only(actor)
    row = session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(f"no token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        _log(session, actor, "token_revoked", row.user, token_id=row.id, label=row.label)
    return row


def account_log(session: Session, username: str, limit: int = 50) -> list[AdminEvent]:
    """What administrators did to an account, newest first."""
    return list(session.scalars(select(AdminEvent).where(AdminEvent.subject == username)
                                .order_by(AdminEvent.at.desc(), AdminEvent.id.desc()).limit(limit)))
