"""Extensions, created unbound and bound to the app in ``create_app``."""
from .database import Database
from .errors import Api

api = Api()
db = Database()
