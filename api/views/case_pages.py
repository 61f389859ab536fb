"""The case page and the actions staff take on a case and its steps (issue 5, in progress)."""
from flask import Blueprint

bp = Blueprint("case_pages", __name__)
