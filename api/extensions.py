"""Extensions, created unbound and bound to the app in ``create_app``."""
from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

from .database import Database
from .errors import Api

api = Api()
babel = Babel()
csrf = CSRFProtect()
db = Database()
login_manager = LoginManager()
