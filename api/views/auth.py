"""Staff sign-in and sign-out at ``/`` and ``/signout``: a session cookie, CSRF-protected forms.

The password check, the failure count and the 15-minute lockout are the engine's
(``workflow.accounts.sign_in``); this module only turns them into a page and a Flask-Login session.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, session as cookie, url_for
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from workflow import accounts
from workflow.actors import Role
from workflow.models import User

from ..database import session
from ..extensions import login_manager

bp = Blueprint("auth", __name__)

HOMES = {Role.clerk: "staff.queue", Role.supervisor: "staff.board", Role.admin: "dashboard.show"}

# The engine's refusals, as the page says them (an unknown name and a wrong password read the same).
REFUSALS = {
    "wrong username or password": _l("Wrong username or password."),
    "this account is disabled": _l("This account is disabled. Ask an administrator."),
}
LOCKED = _l("This account is locked after 5 wrong passwords in a row. Try again in 15 minutes.")


class StaffUser(UserMixin):
    """Flask-Login's view of a database user, reloaded on every request."""

    def __init__(self, user: User):
        self.user = user

    def get_id(self) -> str:
        return str(self.user.id)

    @property
    def is_active(self) -> bool:
        return self.user.active

    @property
    def role(self) -> Role:
        return self.user.role

    def as_actor(self):
        return self.user.as_actor()


@login_manager.user_loader
def load_user(user_id: str) -> StaffUser | None:
    """The signed-in user, or nobody if the account is gone or disabled since."""
    user = session().get(User, int(user_id)) if user_id.isdigit() else None
    return StaffUser(user) if user is not None and user.active else None


login_manager.login_view = "auth.sign_in"
login_manager.login_message = None  # the sign-in page itself says what to do


class SignInForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(_l("Enter your username.")), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Enter your password."))])


def home_of(user: StaffUser) -> str:
    return url_for(HOMES[user.role])


def _safe_next(target: str | None) -> str | None:
    """A ``next`` page on this site only (no scheme, no host, no ``//`` or ``\\`` tricks)."""
    if not target or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


@bp.route("/", methods=["GET", "POST"])
def sign_in():
    """Show the sign-in form; check the password and send the user to their role's home."""
    if current_user.is_authenticated:
        return redirect(home_of(current_user))
    form = SignInForm()
    refusal, locked = None, False
    if form.validate_on_submit():
        result = accounts.sign_in(session(), form.username.data, form.password.data)
        if result.user is not None:
            lang = cookie.get("lang")
            cookie.clear()  # nothing from before the sign-in carries over, except the language
            if lang:
                cookie["lang"] = lang
            user = StaffUser(result.user)
            login_user(user)
            return redirect(_safe_next(request.args.get("next")) or home_of(user))
        locked = result.locked
        refusal = LOCKED if locked else REFUSALS.get(result.refusal, result.refusal)
    # A refused sign-in answers 200 with the form again, on purpose: the request commits below 400
    # (api.database), and the refusal changed the failure count, which must be kept to lock the
    # account after 5 wrong passwords. No view commits on its own.
    return render_template("auth/sign_in.html", form=form, refusal=refusal, locked=locked)


@bp.post("/signout")
def sign_out():
    """End the session (a POST with the CSRF token, so no other site can sign staff out)."""
    lang = cookie.get("lang")
    logout_user()
    cookie.clear()
    if lang:
        cookie["lang"] = lang
    return redirect(url_for("auth.sign_in"))
