"""The window clerk's new-application form (issue 5, in progress)."""
from flask import Blueprint

bp = Blueprint("window", __name__)
