"""Every model, imported here so that ``Base.metadata`` (and Alembic) sees the whole schema."""
from .admin_event import AdminEvent
from .case import Case, CaseCounter, Step
from .definition import ProcessDefinition
from .event import Event
from .idempotency import IdempotentResponse
from .rating import FollowUp, Rating
from .report import ElapsedRollup, RolledDay
from .timing import CalendarDay, CalendarYear, Notification, Suspension, Timer
from .user import ApiToken, User

__all__ = [
    "AdminEvent", "ApiToken", "CalendarDay", "CalendarYear", "Case", "CaseCounter", "ElapsedRollup", "Event",
    "FollowUp", "IdempotentResponse", "Notification", "ProcessDefinition", "Rating", "RolledDay", "Step", "Suspension",
    "Timer", "User",
]
